"""Param-driven editors, the model builder and the display check, with real widgets (offscreen)."""
import math

import pytest
from PySide6.QtCore import QModelIndex

from engine.spec.experiment import resolve_experiment
from engine.spec.sections import LAYER_PARAMS
from engine.catalog.optimizers import OPTIMIZERS
from engine.params import Param
from engine.catalog.schedules import SCHEDULES

pytestmark = pytest.mark.gui


# ------------------------------------------------------------------ editors

def test_number_editor_refuses_out_of_range_values_and_says_why(qtbot):
    from gui.widgets.params import NumberEditor

    editor = NumberEditor(LAYER_PARAMS["dropout"], "layer.dropout")
    qtbot.addWidget(editor)
    changes = []
    editor.changed.connect(lambda: changes.append(editor.value()))
    assert editor.type_text("0.25") is None
    assert editor.value() == 0.25 and changes == [0.25]
    for bad in ("1", "1.5", "-0.1", "abc"):
        message = editor.type_text(bad)
        assert message and "layer.dropout" in message
        assert editor.value() == 0.25                        # refused: the last good value stays
        assert editor.spin.lineEdit().text() == "0.25"
        assert "Refused" in editor.spin.toolTip() and editor.param.doc in editor.spin.toolTip()
    assert "< 1" in editor.type_text("1")
    assert changes == [0.25]
    assert editor.type_text("0.5") is None and "Refused" not in editor.spin.toolTip()


def test_integer_and_optional_editors(qtbot):
    from gui.widgets.params import NumberEditor

    units = NumberEditor(LAYER_PARAMS["units"], "layer.units")
    qtbot.addWidget(units)
    assert units.type_text("0") is not None and units.value() == 100
    assert units.type_text("2.5") is not None
    assert units.type_text("64") is None and units.value() == 64 and isinstance(units.value(), int)
    units.spin.stepBy(1)
    assert units.value() == 65

    max_norm = NumberEditor(LAYER_PARAMS["max_norm"], "layer.max_norm")
    qtbot.addWidget(max_norm)
    assert max_norm.value() is None and not max_norm.spin.isEnabled()
    max_norm.enabled_box.setChecked(True)
    assert max_norm.value() is not None
    assert max_norm.type_text("0") is not None             # must be > 0
    assert max_norm.type_text("3") is None and max_norm.value() == 3.0
    max_norm.enabled_box.setChecked(False)
    assert max_norm.value() is None


def test_log_scale_steps_follow_1_2_5(qtbot):
    from gui.widgets.params import NumberEditor

    lr = NumberEditor(Param(0.01, "lr", low=0.0, low_open=True, log=True), "optimizer.learning_rate")
    qtbot.addWidget(lr)
    seen = []
    for _ in range(3):
        lr.spin.stepBy(1)
        seen.append(lr.value())
    assert seen == [0.02, 0.05, 0.1]
    for _ in range(4):
        lr.spin.stepBy(-1)
    assert lr.value() == 0.005


def test_forms_are_built_from_the_registries(qtbot):
    """Every optimizer and schedule gets exactly its own hyperparameters, with tooltips."""
    from gui.panels import OptimizerPanel

    panel = OptimizerPanel()
    qtbot.addWidget(panel)
    for name, cls in OPTIMIZERS.items():
        panel.combo.setCurrentIndex(panel.combo.findData(name))
        assert set(panel.form.editors) == {"learning_rate", *cls.hyperparameters}
        assert panel.form.values()["learning_rate"] == cls.learning_rate_param().default
        for key, editor in panel.form.editors.items():
            assert editor.base_tooltip.startswith((cls.hyperparameters.get(key) or cls.learning_rate_param()).doc)
        optimizer, _ = panel.config()
        resolve_experiment({"optimizer": optimizer})   # the defaults are valid
    for name, cls in SCHEDULES.items():
        panel.schedule_combo.setCurrentIndex(panel.schedule_combo.findData(name))
        assert set(panel.schedule_form.editors) == set(cls.hyperparameters)


def test_schedule_preview_comes_from_the_engine_schedule(qtbot):
    from gui.panels import OptimizerPanel

    panel = OptimizerPanel()
    qtbot.addWidget(panel)
    panel.combo.setCurrentIndex(panel.combo.findData("sgd"))
    panel.set_plan(n_train=1000, batch_size=100, epochs=10, max_steps=None)   # 100 steps
    panel.schedule_combo.setCurrentIndex(panel.schedule_combo.findData("exponential"))
    panel.schedule_form.editor("s").type_text("50")
    x, y = panel.preview_curve.getData()
    assert len(x) == 100 and y[0] == pytest.approx(0.01) and y[50] == pytest.approx(0.001)
    # a cross-key error is shown, not applied
    panel.schedule_combo.setCurrentIndex(panel.schedule_combo.findData("piecewise"))
    panel.schedule_form.editor("boundaries").type_text("5, 8")
    assert "one learning rate per boundary" in panel.schedule_problem()
    panel.schedule_form.editor("values").type_text("0.001, 0.0001")
    assert panel.schedule_problem() is None


# ------------------------------------------------------------------ builder

def test_building_a_network_gives_the_expected_experiment(qtbot):
    from gui.builder import ModelBuilder
    from gui.panels import DataInfo

    b = ModelBuilder()
    qtbot.addWidget(b)
    b.set_model({"layers": [], "output": {"activation": "auto"}})
    b.set_data_info(DataInfo("moons", 2, "classification", 2, 1, 180, 20, ("a", "b"), None))
    b.add_layer()
    f = b.form
    assert f.editor("units").type_text("64") is None
    f.editor("activation").combo.setCurrentIndex(f.editor("activation").combo.findData("leaky_relu"))
    assert set(b.act_form.editors) == {"alpha"}             # the activation's own parameters appear
    assert b.act_form.editor("alpha").type_text("0.2") is None
    f.editor("batch_norm").combo.setCurrentIndex(f.editor("batch_norm").combo.findData("after"))
    assert f.editor("dropout").type_text("0.25") is None
    assert f.editor("l2").type_text("0.0001") is None
    f.editor("max_norm").enabled_box.setChecked(True)
    assert f.editor("max_norm").type_text("3") is None
    b.add_layer()                                           # below the selected one
    assert f.editor("units").type_text("16") is None
    f.editor("activation").combo.setCurrentIndex(f.editor("activation").combo.findData("tanh"))
    f.editor("initializer").combo.setCurrentIndex(f.editor("initializer").combo.findData("glorot_normal"))
    f.editor("trainable").box.setChecked(False)
    b.duplicate_layer()
    assert b.layer_count() == 3
    b.remove_layer()
    b.select_layer(1)
    b.move_layer(-1)                                        # the tanh layer goes first
    model = resolve_experiment({"model": b.model()})["model"]
    first, second = model["layers"]
    assert (first["units"], first["activation"], first["initializer"], first["trainable"]) == \
        (16, "tanh", "glorot_normal", False)
    assert (second["units"], second["activation"], second["activation_params"], second["batch_norm"],
            second["dropout"], second["l2"], second["max_norm"], second["trainable"]) == \
        (64, "leaky_relu", {"alpha": 0.2}, "after", 0.25, 0.0001, 3.0, True)
    assert second["initializer"] == "he_normal"             # auto: Table 11-1's match for leaky ReLU
    # parameter counts, by hand: 2*16+16 | 16*64+64 + BN 2*64 | 64*2+2
    assert b.counts == [48, 16 * 64 + 64 + 128, 130]
    assert "1,394 trainable parameters" in b.total_label.text()
    assert "[48 params]" in b.list.item(0).text() and "FROZEN" in b.list.item(0).text()
    assert "softmax" in b.output_button.text() and "follows the task" in b.output_button.text()


def test_drag_reorder_and_invalid_layer_values(qtbot):
    from gui.builder import ModelBuilder

    b = ModelBuilder()
    qtbot.addWidget(b)
    b.set_model({"layers": [{"units": 10}, {"units": 20}, {"units": 30}]})
    b.list.model().moveRow(QModelIndex(), 0, QModelIndex(), 3)   # what a drag does
    assert [layer["units"] for layer in b.model()["layers"]] == [20, 30, 10]
    assert b.list.item(0).text().startswith("1.  20 units")
    b.select_layer(0)
    assert b.form.editor("units").type_text("0") is not None
    assert b.form.editor("units").type_text("100001") is not None
    assert b.form.editor("dropout").type_text("1.0") is not None
    assert [layer["units"] for layer in b.model()["layers"]] == [20, 30, 10]
    assert all(layer.get("dropout", 0.0) == 0.0 for layer in b.model()["layers"])


def test_output_layer_follows_the_task(qtbot):
    from gui.builder import ModelBuilder
    from gui.panels import DataInfo

    b = ModelBuilder()
    qtbot.addWidget(b)
    b.set_data_info(DataInfo("regression_1d", 1, "regression", 0, 1, 900, 100, (), None))
    assert "linear" in b.output_button.text() and "MSE" in b.output_button.text()
    b.set_data_info(DataInfo("fashion_mnist", 784, "classification", 10, 1, 54000, 6000, tuple("abcdefghij"),
                             (28, 28)))
    assert "10 softmax units" in b.output_button.text()
    assert "28×28 image" in b.input_label.text()


# ------------------------------------------------------------------ display check

def test_display_problem_names_the_missing_packages():
    from gui.display import display_problem

    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    message = display_problem({}, "linux")
    assert "no display" in message and "python main.py run" in message
    missing = display_problem({"DISPLAY": ":0"}, "linux", find=lambda lib: None if lib == "xcb-cursor" else lib,
                              reachable=lambda d: True)
    assert "libxcb-cursor0" in missing and "apt-get install" in missing
    assert display_problem({"DISPLAY": ":0"}, "linux", find=lambda lib: lib, reachable=lambda d: True) is None
    assert "no X server answers" in display_problem({"DISPLAY": ":0"}, "linux", find=lambda lib: lib,
                                                    reachable=lambda d: False)
    assert display_problem({}, "darwin") is None


def test_main_explains_a_missing_display_instead_of_aborting(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, str(root / "main.py")], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 2
    assert "no display" in out.stderr and "python main.py run" in out.stderr
    assert "Aborted" not in out.stderr and "qt.qpa" not in out.stderr


def test_data_sliders_move_the_value_in_range(qtbot):
    from gui.panels import DataPanel

    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_config({"name": "moons", "noise": 0.1, "n_samples": 1000})
    noise, size = panel.form.editor("noise"), panel.form.editor("n_samples")
    assert noise.slider is not None and size.slider is not None
    changes = []
    panel.changed.connect(lambda: changes.append(panel.config()))
    noise.slider.setValue(noise.slider.maximum())        # keyboard/click moves commit at once
    assert panel.config()["noise"] == 5.0 and changes
    size.slider.setValue(0)
    assert panel.config()["n_samples"] == 10           # log slider, lower bound
    size.slider.setValue(size.slider.maximum() // 2)
    assert 500 < panel.config()["n_samples"] < 20_000  # middle of a log scale: ~3,000
    assert size.type_text("250") is None and size.slider.value() == pytest.approx(200 * (math.log10(250) - 1) / 5, abs=1)
    panel.wait_loaded()


def test_an_editor_class_without_value_or_set_value_is_refused():
    from gui.widgets.params import ParamEditor

    with pytest.raises(TypeError, match="must define value, set_value"):
        class Half(ParamEditor):
            pass

    class Whole(ParamEditor):
        def value(self):
            return 1

        def set_value(self, value):
            pass
