"""The Data tab's augmentation panel (issue 15): editors from the Params, a live grid of the
same images re-drawn as settings move, the data section round trip, run notes, preset 15 in the window."""
import numpy as np
import pytest

from engine.data import load_dataset
from engine.spec.experiment import load_experiment, preset_paths, resolve_experiment

pytestmark = pytest.mark.gui

TINY_IMAGES = {"name": "fashion_mnist", "classes": [0, 5, 7], "per_class": 12, "val_per_class": 4,
               "test_per_class": 4}


@pytest.fixture(scope="module")
def images():
    return load_dataset(TINY_IMAGES, 1)


def test_the_grid_redraws_the_same_images_as_a_slider_moves(qtbot, images):
    from gui.augment_panel import N_IMAGES, N_VERSIONS, AugmentPanel

    panel = AugmentPanel()
    qtbot.addWidget(panel)
    panel.set_dataset(images)
    assert panel.config() == {} and panel.mosaic() is None      # off: no augment key, nothing drawn
    panel.setChecked(True)
    assert set(panel.config()["augment"]) == {"shift", "rotation", "scale", "flip", "flip_exclude", "crop_padding",
                                              "brightness", "contrast", "noise"}
    h, w = images.image_shape
    plain = panel.mosaic()
    assert plain.shape == (N_IMAGES * (h + 2), (w + 2))         # every setting at 0: the originals alone
    slider = panel.form.editor("rotation").slider
    slider.setValue(slider.maximum() // 6)                        # dragging, not yet released
    rotated = panel.mosaic()
    assert rotated.shape == (N_IMAGES * (h + 2), (1 + N_VERSIONS) * (w + 2))
    assert np.array_equal(rotated[:, :w + 2], plain, equal_nan=True)   # the first column stays the original
    assert np.array_equal(rotated, panel.mosaic(), equal_nan=True)     # same draws on every redraw
    assert not np.array_equal(rotated[:, w + 2:2 * (w + 2)], plain, equal_nan=True)
    assert f"rotation ±{panel.form.editor('rotation').value():g}°" in panel.summary.text()
    assert panel.image.image is not None


def test_the_panel_offers_itself_only_for_images(qtbot):
    from gui.augment_panel import AugmentPanel

    panel = AugmentPanel()
    qtbot.addWidget(panel)
    panel.set_dataset(load_dataset({"name": "moons"}, 1))
    assert not panel.isEnabled()


def test_run_notes_say_which_augmentation_was_on():
    from gui.augment_panel import augment_note

    exp = resolve_experiment({"data": dict(TINY_IMAGES, augment={"shift": 2, "noise": 0.1})})
    assert augment_note(exp) == ["Data augmentation: shift ±2 px, Gaussian noise σ=0.1"]
    assert augment_note(resolve_experiment({"data": TINY_IMAGES})) == []


def test_preset_15_loads_in_the_window_and_its_variants_round_trip(qtbot, tmp_path):
    from PySide6.QtCore import QSettings
    from gui.main_window import MainWindow

    exp = resolve_experiment(load_experiment(str(preset_paths()["15-data-augmentation"])))
    w = MainWindow(exp, run_root=tmp_path / "runs", settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat),
                   load_previous_runs=False)
    w._closing = True
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.data_panel.info is not None, timeout=60_000)
    panel = w.data_panel.augment
    assert panel.isEnabled() and not panel.isChecked()
    variant = exp["compare"]["variants"][-1]["overrides"]["data"]["augment"]
    w.data_panel.set_config(dict(exp["data"], augment=variant))
    qtbot.waitUntil(lambda: w.data_panel.info is not None, timeout=60_000)
    config = w.data_panel.config()
    assert config["augment"]["flip_exclude"] == [5, 7, 9] and config["augment"]["rotation"] == 10.0
    assert resolve_experiment({"data": config})["data"]["augment"]["scale"] == 0.1
    assert panel.mosaic() is not None
