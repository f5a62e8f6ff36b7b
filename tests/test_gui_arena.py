"""The optimizer arena tab, driven through its real widgets (offscreen).

The tab builds on its own, races run (step by step and on the timer), every
racer's path grows on the map, clicking the map moves the start, the
pickers come from the registries, and exports write files.
"""
import csv

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel

from engine.arena.race import MAX_RACERS, arena_preset_paths
from engine.catalog.optimizers import OPTIMIZERS
from engine.arena.surfaces import SURFACES

pytestmark = pytest.mark.gui


@pytest.fixture
def tab(qtbot):
    from gui.arena import ArenaTab

    widget = ArenaTab()
    qtbot.addWidget(widget)
    widget.resize(1400, 900)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _path_lengths(tab):
    return [item["path"].getData()[0].size for item in tab._racer_items]


def test_tab_builds_standalone_with_the_first_lesson(tab):
    first = next(iter(arena_preset_paths()))
    assert tab.preset_combo.currentData() == first
    assert tab.explanation.text()
    assert tab.arena is not None and len(tab.arena.racers) == tab.racer_list.count()
    assert tab.image.image is not None and tab.image.image.shape[0] > 50
    assert tab.table.rowCount() == len(tab.arena.racers)
    assert tab.preset_combo.count() == len(arena_preset_paths()) + 1  # + "(your own race)"


@pytest.mark.parametrize("name", list(arena_preset_paths()))
def test_every_preset_races_and_every_path_grows(tab, name):
    tab.load_preset(name)
    assert tab.arena.steps == 0
    assert all(n == 1 for n in _path_lengths(tab))
    tab.step_race(5)
    tab.step_race(1)
    assert tab.arena.steps == 6
    assert all(r.path.shape == (7, 2) for r in tab.arena.racers)
    assert _path_lengths(tab) == [7] * len(tab.arena.racers)
    assert tab.table.item(0, 2).text() == "6"
    assert tab.step_label.text() == "step 6"


def test_run_on_the_timer_and_stop_at_the_limit(tab, qtbot):
    tab.max_steps_box.setValue(40)
    tab.speed_slider.setValue(10)  # 10 steps per frame
    tab.run()
    assert tab.running
    qtbot.waitUntil(lambda: not tab.running, timeout=30_000)
    assert tab.arena.steps == 40
    assert all(n == 41 for n in _path_lengths(tab))
    # a finished race can be extended: raise the limit and run on
    first_path = tab.arena.racers[0].path.copy()
    tab.max_steps_box.setValue(60)
    assert tab.arena.steps == 40
    tab.run()
    qtbot.waitUntil(lambda: not tab.running, timeout=30_000)
    assert tab.arena.steps == 60
    np.testing.assert_array_equal(tab.arena.racers[0].path[:41], first_path)
    # Run again after the end starts over (with the schedules planned for 60 steps)
    tab.run()
    qtbot.waitUntil(lambda: not tab.running, timeout=30_000)
    assert tab.arena.steps == 60 and tab.arena.horizon == 60


def test_pause_and_reset(tab, qtbot):
    tab.max_steps_box.setValue(100000)
    tab.run()
    qtbot.waitUntil(lambda: tab.arena.steps > 10, timeout=30_000)
    tab.pause()
    steps = tab.arena.steps
    qtbot.wait(100)
    assert tab.arena.steps == steps and not tab.running
    tab.reset()
    assert tab.arena.steps == 0 and _path_lengths(tab) == [1] * len(tab.arena.racers)


def test_clicking_the_map_moves_the_start(tab, qtbot):
    tab.load_preset("03-adagrad-vs-gradient-descent")
    tab.step_race(10)
    vb = tab.map_plot.getPlotItem().vb
    target = (4.0, -3.0)
    scene_point = vb.mapViewToScene(pg_point(*target))
    widget_point = tab.map_plot.mapFromScene(scene_point)
    qtbot.mouseClick(tab.map_plot.viewport(), Qt.LeftButton, pos=QPoint(widget_point.x(), widget_point.y()))
    qtbot.waitUntil(lambda: tab.arena.steps == 0, timeout=30_000)
    # one pixel of the map is well under 0.1 units here
    np.testing.assert_allclose(tab.arena.start, target, atol=0.1)
    for racer in tab.arena.racers:
        np.testing.assert_allclose(racer.path[0], tab.arena.start)
    assert tab.start_x.value() == pytest.approx(tab.arena.start[0])
    assert tab.preset_combo.currentData() is None  # now the user's own race
    tab.step_race(3)
    assert _path_lengths(tab) == [4] * len(tab.arena.racers)


def pg_point(x, y):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_setting_the_start_in_the_boxes(tab):
    assert tab.start_x.type_text("2.5") is None
    assert tab.start_y.type_text("-1.5") is None
    np.testing.assert_allclose(tab.arena.start, [2.5, -1.5])
    tab.set_start((1.0, 1.0))
    np.testing.assert_allclose(tab.arena.racers[0].path[0], [1.0, 1.0])


def test_pickers_come_from_the_registries(tab):
    names = [tab.editor.optimizer_combo.itemData(i) for i in range(tab.editor.optimizer_combo.count())]
    assert names == OPTIMIZERS.names()
    surfaces = [tab.surface_combo.itemData(i) for i in range(tab.surface_combo.count())]
    assert surfaces == SURFACES.names()
    # hyperparameter widgets carry the Param docs as tooltips
    tab.editor.optimizer_combo.setCurrentIndex(names.index("adam"))
    cls = OPTIMIZERS.get("adam")
    for key, param in cls.hyperparameters.items():
        assert param.doc in tab.editor.hyper_form.editor(key).base_tooltip


def test_a_registered_optimizer_is_offered_under_its_own_title(qtbot):
    """Titles come from the registry entries: an optimizer registered by a
    test shows up, titled, with no change to the arena's code."""
    from engine.catalog.optimizers import AdamW, register_optimizer
    from gui.arena_racers import RacerEditor

    class Throwaway(AdamW):
        name = "throwaway"
        title = "Throwaway AdamW"

    register_optimizer(Throwaway)
    try:
        editor = RacerEditor()
        qtbot.addWidget(editor)
        combo = editor.optimizer_combo
        assert [combo.itemText(i) for i in range(combo.count())] == [cls.title for _, cls in OPTIMIZERS.items()]
        combo.setCurrentIndex(combo.findData("throwaway"))
        assert editor.label_edit.text() == "Throwaway AdamW"
        assert editor.spec().optimizer["name"] == "throwaway"
    finally:
        OPTIMIZERS.remove("throwaway")


def test_editing_a_racer_changes_the_race(tab):
    tab.load_preset("01-momentum-vs-gradient-descent")
    tab.racer_list.setCurrentRow(1)
    assert tab.editor.hyper_form.editor("learning_rate").type_text("0.25") is None
    assert tab.arena.racers[1].optimizer.learning_rate == pytest.approx(0.25)
    assert tab.editor.hyper_form.editor("momentum").type_text("0.5") is None
    assert tab.arena.racers[1].optimizer.hyper["momentum"] == pytest.approx(0.5)
    names = [tab.editor.optimizer_combo.itemData(i) for i in range(tab.editor.optimizer_combo.count())]
    tab.editor.optimizer_combo.setCurrentIndex(names.index("rmsprop"))
    assert tab.arena.racers[1].optimizer.name == "rmsprop"
    # schedules and clipping reach the engine too
    tab.editor.schedule_combo.setCurrentIndex(tab.editor.schedule_combo.findData("exponential"))
    assert tab.editor.schedule_form.editor("s").type_text("100") is None
    tab.editor.clip_form.editor("clipnorm").enabled_box.setChecked(True)   # clipping is ticked on
    assert tab.editor.clip_form.editor("clipnorm").type_text("0.5") is None
    spec = tab.arena.racers[1].spec
    assert spec.schedule == {"name": "exponential", "s": 100.0}
    assert spec.clip == {"clipnorm": 0.5}
    tab.step_race(20)
    assert np.all(np.linalg.norm(tab.arena.racers[1].gradients, axis=1) <= 0.5 + 1e-12)


def test_add_duplicate_and_remove_racers(tab):
    tab.load_preset("01-momentum-vs-gradient-descent")
    while len(tab.arena.racers) < MAX_RACERS:
        tab.add_racer()
    assert len(tab.arena.racers) == MAX_RACERS == tab.table.rowCount()
    assert not tab.add_button.isEnabled() and not tab.copy_button.isEnabled()
    assert len({s.color for s in tab._specs}) == MAX_RACERS  # distinct colours
    tab.step_race(3)
    assert all(r.steps == 3 and r.stopped is None for r in tab.arena.racers)
    tab.racer_list.setCurrentRow(4)
    tab.remove_button.click()
    assert len(tab.arena.racers) == MAX_RACERS - 1
    tab.racer_list.setCurrentRow(0)
    tab.copy_button.click()
    assert tab.arena.racers[-1].spec.optimizer == tab.arena.racers[0].spec.optimizer


@pytest.mark.parametrize("name", SURFACES.names())
def test_every_surface_is_drawn_with_its_minima(tab, name):
    tab.surface_combo.setCurrentIndex(tab.surface_combo.findData(name))
    assert tab.arena.surface.name == name
    assert len(tab.minima_item.data) == len(tab.arena.surface.minima)
    assert np.isfinite(tab.image.image).all()
    assert tab.contours.getData()[0].size > 0
    tab.step_race(10)
    assert all(n == 11 for n in _path_lengths(tab))


def test_adaptive_racers_get_an_ellipse_and_momentum_an_arrow(tab):
    tab.set_racers([("GD", {"name": "sgd", "learning_rate": 0.5}),
                    ("Momentum", {"name": "momentum", "learning_rate": 0.5}),
                    ("AdaGrad", {"name": "adagrad", "learning_rate": 1.0})])
    tab.step_race(5)
    gd, momentum, adagrad = tab._racer_items
    assert gd["arrow"].getData()[0] is None or gd["arrow"].getData()[0].size == 0
    assert momentum["arrow"].getData()[0].size == 6
    assert adagrad["ellipse"].getData()[0].size > 10
    assert gd["ellipse"].getData()[0] is None or gd["ellipse"].getData()[0].size == 0
    tab.velocity_check.setChecked(False)
    assert momentum["arrow"].getData()[0] is None or momentum["arrow"].getData()[0].size == 0


def test_a_bad_setting_is_explained_and_the_race_kept(tab):
    tab.racer_list.setCurrentRow(0)
    tab.editor.schedule_combo.setCurrentIndex(tab.editor.schedule_combo.findData("piecewise"))
    before = tab.arena  # piecewise with no boundaries is valid (a constant rate)
    assert tab.editor.schedule_form.editor("boundaries").type_text("10, 20") is None
    assert tab.error_label.isVisibleTo(tab)
    assert "one learning rate per boundary" in tab.error_label.text()
    assert tab.arena is before
    assert tab.editor.schedule_form.editor("values").type_text("0.1, 0.01") is None
    assert not tab.error_label.isVisibleTo(tab) and tab.arena is not before


def test_a_diverging_racer_is_reported_and_does_not_flatten_the_loss_plot(tab):
    tab.set_racers([("too fast", {"name": "sgd", "learning_rate": 2.5}),
                    ("fine", {"name": "sgd", "learning_rate": 0.5})])
    tab.step_race(400)
    bad, good = tab.arena.racers
    assert bad.stopped == "diverged" and good.steps == 400
    assert tab.table.item(0, 3).text() == "diverged"
    drawn = tab._racer_items[0]["loss"].yData  # raw values (getData returns their log)
    assert drawn.max() <= 1e3 * bad.losses[0] * (1 + 1e-9) < bad.losses.max()


def test_export_writes_png_and_csv(tab, tmp_path):
    tab.step_race(12)
    png, table = tmp_path / "arena.png", tmp_path / "paths.csv"
    tab.export_png(png)
    tab.export_csv(table)
    image = QImage(str(png))
    assert not image.isNull() and image.width() > 300 and image.height() > 300
    rows = list(csv.reader(table.open()))
    assert rows[0][:4] == ["racer", "label", "optimizer", "step"]
    assert len(rows) == 1 + len(tab.arena.racers) * 13


def test_many_qt_calls_do_not_exhaust_none(tab):
    """PySide6 6.12.0 on Python 3.11 loses a reference to None on every
    void call; the guard in gui.compat (applied when the gui package is
    imported) must be in force for the arena's animation to survive."""
    label = QLabel()
    for _ in range(20000):
        label.setText("x")


def test_map_orientation_survives_a_global_row_major_option(tab):
    import pyqtgraph as pg

    old = pg.getConfigOption("imageAxisOrder")
    pg.setConfigOptions(imageAxisOrder="row-major")  # what the main window's plots set
    try:
        tab.set_surface({"name": "bowl", "condition_number": 100.0, "angle": 0.0})
        assert tab.image.axisOrder == "col-major"
        image = tab.image.image  # [ix, iy]: the valley runs along x, so rows differ little
        middle = image.shape[1] // 2
        assert np.ptp(image[:, middle]) < np.ptp(image[image.shape[0] // 2, :])
    finally:
        pg.setConfigOptions(imageAxisOrder=old)


def test_shutdown_stops_the_timer(tab, qtbot):
    tab.max_steps_box.setValue(100000)
    tab.run()
    qtbot.waitUntil(lambda: tab.arena.steps > 0, timeout=30_000)
    tab.shutdown()
    assert not tab.running


def test_contour_segments_trace_a_closed_circle():
    from gui.arena_widgets import contour_segments

    xs = ys = np.linspace(-1.0, 1.0, 101)
    values = xs[:, None] ** 2 + ys[None, :] ** 2
    level = 0.23  # r = 0.4796, off the grid nodes
    points = contour_segments(values, xs, ys, level)
    assert points.shape[0] % 2 == 0 and points.shape[0] > 100
    np.testing.assert_allclose(np.hypot(points[:, 0], points[:, 1]), np.sqrt(level), atol=2e-3)
    # closed: every end point is shared by exactly two segments
    _, counts = np.unique(np.round(points, 9), axis=0, return_counts=True)
    assert set(counts) == {2}
