"""Issue 14, items 4-10: the window as a student reads it (offscreen, no wall-clock asserts).

The window fits a laptop and remembers its layout; the preset's explanation is whole; per-layer
plots separate layer (colour) from run (line style) with keys outside the data and count layers
from 1; curves hold exactly the records they came from; autoscaling survives a blown-up run and
marks what is off the scale; the confusion matrix shows every column; the Compare tab, the
toolbar and the run notes agree with the state.
"""
import copy

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, QSettings, Qt

from engine.events import ConfusionReport
from engine.spec.experiment import load_experiment, resolve_experiment
from tests.test_gui_window import FIRST_RUN_TIMEOUT, SMALL, current, make_window

pytestmark = pytest.mark.gui

LAPTOPS = [(1280, 720), (1366, 768)]


def panels_of(w):
    """Every panel a student must be able to reach on the Train tab."""
    d = w.dashboard
    return {"header": w.header, "editors": w.config_tabs, "run list": w.runs, "notes": d.notes, "coach": d.coach,
            **{f"plot {p.title.text()}": p for p in d.panels}}


def reachable(w, widget) -> bool:
    """Visible, at least 60 px in each direction, and inside the window once its scroll area (if
    any) scrolls to it."""
    from PySide6.QtWidgets import QScrollArea

    if not widget.isVisible() or widget.width() < 60 or widget.height() < 40:
        return False
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    if parent is not None:
        parent.ensureWidgetVisible(widget, 0, 0)
        viewport = parent.viewport()
        top_left = widget.mapTo(viewport, QPoint(0, 0))
        if not viewport.rect().intersects(QRect(top_left, widget.size())):
            return False
        corner = viewport.mapTo(w, QPoint(0, 0))
        visible = QRect(corner, viewport.size())
    else:
        visible = w.rect()
    top_left = widget.mapTo(w, QPoint(0, 0))
    return QRect(top_left, widget.size()).intersected(visible).height() >= 40 and w.rect().contains(visible.topLeft())


@pytest.mark.parametrize("size", LAPTOPS)
def test_the_window_fits_a_laptop_and_every_panel_is_reachable(qtbot, tmp_path, size):
    w = make_window(qtbot, tmp_path, SMALL)
    w.resize(*size)
    qtbot.waitUntil(lambda: (w.width(), w.height()) == size, timeout=10_000)
    assert w.minimumSizeHint().width() <= size[0] and w.minimumSizeHint().height() <= size[1]
    for name, widget in panels_of(w).items():
        assert reachable(w, widget), f"{name} cannot be reached at {size}"
    # the plots keep a readable size (the grid scrolls instead of squeezing them)
    for panel in w.dashboard.panels:
        assert panel.width() >= 250 and panel.height() >= 190
    # every y-axis title is whole: pyqtgraph clips a rotated label longer than its axis (the
    # dead-units plot read "% of the layer's un")
    for panel in w.dashboard.panels:
        for plot in (getattr(panel, "plot", None), getattr(panel, "lr_plot", None)):
            if plot is None or not hasattr(plot, "getAxis"):
                continue
            axis = plot.getAxis("left")
            if axis.isVisible() and axis.labelText:
                assert axis.label.boundingRect().width() <= axis.size().height(), \
                    f"{panel.title.text()}: y label {axis.labelText!r} is cut at {size}"


def test_the_window_opens_within_the_available_screen(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, SMALL)
    available = w.screen().availableGeometry()
    assert w.width() <= available.width() and w.height() <= available.height()


def test_the_layout_is_remembered_between_launches(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, SMALL)
    w.resize(760, 540)   # inside the offscreen platform's 800x600 screen (larger would be clamped to it)
    w.train_split.setSizes([250, 510])
    qtbot.waitUntil(lambda: w.width() == 760, timeout=10_000)
    left = w.train_split.sizes()[0]
    w.close()   # saves the layout into the test's own settings file (make_window's temporary one)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    assert settings.value("layout/geometry") is not None
    again = make_window(qtbot, tmp_path, SMALL)
    assert (again.width(), again.height()) == (760, 540)
    assert abs(again.train_split.sizes()[0] - left) <= 2


def test_the_header_shows_the_whole_explanation_without_hovering(qtbot, tmp_path):
    exp = load_experiment("default")   # the longest description of the shipped presets
    w = make_window(qtbot, tmp_path, SMALL)
    w.set_experiment(exp)
    w.resize(1280, 720)
    text = w.header.toPlainText()
    assert exp["description"] in text and exp["look_at"] in text
    assert not w.header.toolTip()
    qtbot.waitUntil(lambda: w.header.viewport().height() > 0, timeout=5_000)
    doc_height = w.header.document().size().height()
    bar = w.header.verticalScrollBar()
    # all of it can be read: it fits, or the area scrolls over the rest (no 160-px cap cutting it)
    assert doc_height <= w.header.viewport().height() + 2 or bar.maximum() + bar.pageStep() >= doc_height - 2


def test_the_compare_header_follows_a_preset_loaded_while_it_is_shown(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, SMALL)
    w.tabs.setCurrentWidget(w.comparison)
    assert "declares no variants" in w.comparison.plan.text()
    w.set_experiment(load_experiment("04-dying-relus"))
    plan = w.comparison.plan.text()
    assert "declares no variants" not in plan and "variants" in plan
    assert load_experiment("04-dying-relus")["title"].split(":")[0] in plan


def test_a_long_compare_status_wraps_instead_of_widening_the_page(qtbot, tmp_path):
    """'done: ... written to <a long folder>' pushed the Compare page past 1600 px, hiding the plot's
    right end and the verdict column behind a horizontal scrollbar."""
    w = make_window(qtbot, tmp_path, SMALL)
    page = w.comparison
    narrow = page.minimumSizeHint().width()
    page._set_status("done: 15 runs in 38 s on 2 processes; written to " + "/very-long-folder-name" * 12)
    page.layout().invalidate()   # the label asks for a new geometry through a posted event: measure now
    page.layout().activate()
    assert page.minimumSizeHint().width() <= max(narrow, 1280)
    assert "very-long-folder-name" in page.status.toolTip()   # the whole text is still there


def test_pausing_shows_one_resume_and_the_notes_say_paused(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, dict(SMALL, training={"epochs": 5000, "batch_size": 20}))
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: record.step > 0, timeout=FIRST_RUN_TIMEOUT)
    w.pause_resume()
    qtbot.waitUntil(lambda: w.active.control.paused, timeout=10_000)
    w.redraw()
    texts = [a.text() for a in w.toolbar.actions() if a.isVisible() and a.isEnabled()]
    assert texts.count("Resume") == 1 and "Train" not in texts
    assert "paused" in w.dashboard.notes.text() and "running" not in w.dashboard.notes.text()
    assert w.runs.items[record.run_id].text(3) == "paused"
    w.pause_resume()
    w.redraw()
    assert "paused" not in w.dashboard.notes.text()
    w.stop()
    qtbot.waitUntil(lambda: w.active is None, timeout=30_000)


def test_the_arena_tab_hides_the_training_toolbar(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, SMALL)
    if w.arena is None:
        pytest.skip("no arena tab")
    w.tabs.setCurrentWidget(w.arena)
    assert not w.toolbar.isVisible() and not w.space_action.isEnabled()
    steps = [b for b in w.findChildren(type(w.arena.step_button)) if b.text() == "Step" and b.isVisible()]
    assert steps == [w.arena.step_button]
    w.tabs.setCurrentIndex(0)
    assert w.toolbar.isVisible() and w.space_action.isEnabled()


# ------------------------------------------------------------------ plots from synthetic records

def fake_record(run_id, experiment, scale=1.0, nan_from=None, steps=40):
    """A finished record filled by hand: known values in every buffer the plots read."""
    from gui.records import RunRecord

    r = RunRecord(run_id, experiment)
    n_layers = len(r.layers)
    s = np.arange(1, steps + 1)
    r.log_step.extend(s)
    r.loss_step.extend(s)
    r.loss.extend(2.0 / s)
    r.lr.extend(np.full(steps, 0.05))
    for key in r.per_layer:
        values = np.tile(np.linspace(0.1, 0.9, n_layers), (steps, 1)) * scale
        if nan_from is not None:
            values[nan_from:] = np.nan
        r.per_layer[key].extend(values)
    epochs = np.array([10, 20, 30, 40])
    r.epochs["step"].extend(epochs)
    r.epochs["train_loss"].extend([1.0, 0.6, 0.4, 0.3])
    r.epochs["val_loss"].extend([1.1, 0.7, 0.5, np.nan if nan_from is not None else 0.45])
    r.epochs["train_accuracy"].extend([0.5, 0.7, 0.8, 0.85])
    r.epochs["val_accuracy"].extend([0.45, 0.65, 0.75, 0.8])
    if nan_from is not None:
        r.diverged_step = int(s[nan_from])
    r.total_steps, r.step, r.status = steps, steps, "finished" if nan_from is None else "diverged"
    r.version = r.step_version = r.epoch_version = 1
    return r


@pytest.fixture
def dashboard(qtbot):
    from gui.dashboard import Dashboard

    d = Dashboard()
    qtbot.addWidget(d)
    d.resize(1100, 700)
    d.show()
    return d


def test_curves_hold_the_records_they_came_from(dashboard):
    r = fake_record(1, resolve_experiment(SMALL))
    dashboard.refresh([r], r)
    items = dashboard.curve_items()
    train, val = items[("loss", (1, "train"))], items[("loss", (1, "val"))]
    assert np.allclose(train.yData, r.epochs["train_loss"].data) and np.allclose(val.yData, r.epochs["val_loss"].data)
    assert not np.allclose(train.yData, val.yData)                        # training is not validation
    acc = items[("accuracy", (1, "val"))]
    assert np.allclose(acc.yData, 100 * r.epochs["val_accuracy"].data)     # percent, from fractions
    grad = items[("grad", (1, 0))]
    assert np.allclose(10 ** grad.yData, r.per_layer["grad_norm"].data[:, 0])   # stored as log10 on a log axis
    assert np.array_equal(grad.xData, r.log_step.data)


def test_single_run_keys_name_layers_from_one_outside_the_plot(dashboard):
    r = fake_record(1, resolve_experiment(SMALL))
    dashboard.refresh([r], r)
    names = [label.text for _, label in dashboard.grad.legend.items]
    assert names == ["layer 1 (relu)", "layer 2 (tanh)", "output (auto)"] or names[:2] == ["layer 1 (relu)",
                                                                                           "layer 2 (tanh)"]
    assert len(names) == 3
    assert [label.text for _, label in dashboard.loss.legend.items] == ["train (each step)", "train (epoch mean)",
                                                                        "validation"]
    for panel in dashboard.panels[:6]:   # no legend drawn over the data: the key is a line above the plot
        assert getattr(panel.widget, "getPlotItem", lambda: None)() is None or \
            panel.widget.getPlotItem().legend is None
    assert dashboard.grad.keyline.isVisibleTo(dashboard) and "layer 1" in dashboard.grad.keyline.text().replace("&nbsp;", " ")


def test_several_runs_colour_is_the_layer_and_style_is_the_run(dashboard):
    exp = resolve_experiment(SMALL)
    a, b = fake_record(1, exp), fake_record(2, copy.deepcopy(exp))
    dashboard.refresh([a, b], b)
    items = dashboard.grad.items
    pen = {key: items[key].opts["pen"] for key in [(1, 0), (1, 1), (2, 0), (2, 1)]}
    assert pen[(1, 0)].color().rgb() == pen[(2, 0)].color().rgb()             # same layer, same colour
    assert pen[(2, 0)].style() == Qt.SolidLine and pen[(1, 0)].style() != Qt.SolidLine   # focus run solid
    c1, c2 = pen[(2, 0)].color(), pen[(2, 1)].color()
    assert abs(c1.hueF() - c2.hueF()) > 0.2                                     # layers 1 and 2 look unalike
    names = [label.text for _, label in dashboard.grad.legend.items]
    assert names[:3] == ["layer 1 (relu)", "layer 2 (tanh)", "output (auto)"]
    assert names[3:] == [a.label, f"{b.label} (shown solid)"]                 # 3 layers + 2 runs
    bands = [k for k in dashboard.activation.items if k[1] == "band"]
    assert bands and {k[0] for k in bands} == {2}                               # bands: the focus run only
    assert len(dashboard.loss.legend.items) == 2


def test_a_blown_up_run_does_not_flatten_the_others_and_is_marked(dashboard):
    exp = resolve_experiment(SMALL)
    a, b, c = fake_record(1, exp), fake_record(2, exp), fake_record(3, exp, scale=1e6)
    dashboard.refresh([a, b, c], a)
    (_, _), (y0, y1) = dashboard.activation.plot.getViewBox().viewRange()
    assert y1 < 100          # scaled to the two sane runs (their values are 0.1..0.9)
    marker = dashboard.activation.offscale[id(dashboard.activation.plot)]
    assert marker.isVisible() and len(marker.data) > 0
    assert np.all(marker.data["y"] <= y1) and np.all(marker.data["y"] >= y0 + 0.9 * (y1 - y0))   # the top edge


def test_non_finite_values_show_as_markers_at_the_top_never_a_blank_plot(dashboard):
    r = fake_record(1, resolve_experiment(SMALL), nan_from=0)   # not a single finite diagnostic
    dashboard.refresh([r], r)
    for panel in (dashboard.grad, dashboard.activation):
        marker = panel.offscale.get(id(panel.plot))
        assert marker is not None and marker.isVisible() and len(marker.data) > 0, panel.title.text()
        (_, _), (y0, y1) = panel.plot.getViewBox().viewRange()
        assert np.all(marker.data["y"] >= y0 + 0.9 * (y1 - y0))


def test_the_confusion_matrix_shows_every_column_and_whole_names(qtbot):
    from gui.predictions import ConfusionView
    from gui.records import RunRecord

    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot")
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(380, 520)    # a tall, narrow cell of the grid: the shape that clipped columns 0 and 9
    view.show()
    r = RunRecord(1, resolve_experiment(SMALL))
    r.class_names = names
    rng = np.random.default_rng(0)
    r.confusion = ConfusionReport(1, 3, rng.integers(0, 50, (10, 10)), rng.random((3, 28, 28)),
                                  np.array([4, 9, 0]), np.array([2, 7, 6]))
    view.show_run(r)
    qtbot.waitUntil(lambda: view.matrix.width() > 0, timeout=5_000)
    (x0, x1), (y0, y1) = view.matrix_plot.getViewBox().viewRange()
    assert x0 <= 0 and x1 >= 10 and y0 <= 0 and y1 >= 10   # all ten columns and rows in view
    ticks = [text for _, text in view.matrix_plot.getAxis("left")._tickLevels[0]]
    assert "9 Ankle boot" in ticks and "0 T-shirt/top" in ticks
    assert view.labels[0].text() == "Coat\n→ Pullover"


def test_a_constant_schedule_preview_shows_the_rate_above_zero(qtbot):
    from gui.panels import OptimizerPanel

    panel = OptimizerPanel()
    qtbot.addWidget(panel)
    panel.set_config({"name": "sgd", "learning_rate": 0.02}, {"name": "constant"})
    panel.set_plan(1000, 16, 10, None)
    (_, _), (y0, y1) = panel.preview.getPlotItem().getViewBox().viewRange()
    assert y0 == 0 and 0.02 < y1 < 0.05


def test_the_loss_help_explains_training_loss_above_validation():
    from gui.metric_plots import LOSS_HELP, train_above_validation

    assert "batch normalization" in LOSS_HELP and "dropout" in LOSS_HELP
    r = fake_record(1, resolve_experiment(dict(SMALL, model={"layers": [{"units": 8, "batch_norm": "before"}]})))
    r.epochs["train_loss"]._a[3], r.epochs["val_loss"]._a[3] = 1.2, 0.2
    assert "6.0× the validation loss" in train_above_validation(r) and "batch norm" in train_above_validation(r)
    plain = fake_record(2, resolve_experiment(SMALL))
    plain.epochs["train_loss"]._a[3], plain.epochs["val_loss"]._a[3] = 1.2, 0.2
    assert train_above_validation(plain) == ""   # without batch norm or dropout there is no such cause


def test_runs_from_disk_show_their_title_and_best_figure_unticked(tmp_path):
    from gui.records import record_from_folder

    folder = tmp_path / "20261203-140210-dying-relus-ReLU-coach-dead_relus"
    folder.mkdir()
    exp = resolve_experiment(dict(SMALL, title="Dying ReLUs"))
    import json

    (folder / "experiment.json").write_text(json.dumps(exp))
    (folder / "summary.json").write_text(json.dumps({"status": "finished", "best_val_accuracy": 0.8765}))
    r = record_from_folder(folder, -5)
    assert r.name == "Dying ReLUs · 3 Dec 14:02"
    assert not r.loaded and r.best_val_text() == "87.6%" or r.best_val_text() == "87.7%"


def test_the_coach_variant_is_named_by_what_changed_and_compare_offers_it(qtbot, tmp_path):
    from engine.coach import Finding
    from gui.main_window import coach_comparison

    w = make_window(qtbot, tmp_path, SMALL)
    original = resolve_experiment(SMALL)
    overrides = {"optimizer": {"learning_rate": 0.005}}
    section = coach_comparison(original, None, overrides)
    assert section["variants"][1]["overrides"] == {"optimizer": {"learning_rate": 0.05}}   # put back
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    finding = Finding(**{**{f: None for f in Finding.__dataclass_fields__},
                         "detector": "lr", "try_it": overrides, "try_it_label": "Divide the learning rate by 10"})
    w.try_finding(record, finding)
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    new = max(w.records.values(), key=lambda r: r.run_id)
    assert new.name == f"#{new.run_id} coach: Divide the learning rate by 10"
    assert "-coach-" not in new.name and record.name in new.changes
    w.tabs.setCurrentWidget(w.comparison)
    plan = w.comparison.plan.text()
    assert "declares no variants" not in plan and "coach" in plan and "as it was" in plan
