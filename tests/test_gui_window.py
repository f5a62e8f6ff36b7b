"""The main window trains for real (offscreen): plots fill, controls act, runs end cleanly."""
import copy
import json
import math
import threading

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from engine.control import RunControl
from engine.spec.experiment import resolve_experiment

pytestmark = pytest.mark.gui

# 180 training points, batch 20: 9 steps per epoch, diagnostics every step.
# A ReLU layer (dead units) and a tanh layer (saturation) so every plot has something to draw.
SMALL = {
    "name": "tiny", "title": "tiny test net", "description": "two small layers on moons", "seed": 3,
    "data": {"name": "moons", "n_samples": 200, "noise": 0.1},
    "model": {"layers": [{"units": 8, "activation": "relu"}, {"units": 8, "activation": "tanh"}]},
    "optimizer": {"name": "sgd", "learning_rate": 0.05},
    "training": {"epochs": 4, "batch_size": 20},
}
LONG = dict(copy.deepcopy(SMALL), training={"epochs": 5000, "batch_size": 20})
FIRST_RUN_TIMEOUT = 120_000  # the first run of a session may load (or compile) the Numba kernels


def make_window(qtbot, tmp_path, experiment):
    from gui.main_window import MainWindow

    w = MainWindow(resolve_experiment(experiment), run_root=tmp_path / "runs",
                   settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat), load_previous_runs=False)
    w._closing = True  # no modal boxes in tests: problems go to the status bar
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.data_panel.info is not None, timeout=30_000)
    return w


@pytest.fixture
def window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path, SMALL)


@pytest.fixture
def long_window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path, LONG)


def current(w):
    return w.active.record if w.active is not None else max(w.records.values(), key=lambda r: r.run_id)


def points(item):
    """Finite points an item holds (all of its data, not just what is in view)."""
    y = item.yData
    return 0 if y is None else int(np.isfinite(np.asarray(y, dtype=float)).sum())


def test_train_streams_into_every_plot(window, qtbot):
    w = window
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: record.finished, timeout=FIRST_RUN_TIMEOUT)
    assert record.status == "finished", record.reason
    w.redraw()
    items = w.dashboard.curve_items()
    rid = record.run_id
    assert points(items[("loss", (rid, "step"))]) == 36            # every step's loss
    assert points(items[("loss", (rid, "train"))]) == 4             # one per epoch
    assert points(items[("loss", (rid, "val"))]) == 4
    assert points(items[("accuracy", (rid, "train"))]) == 4
    assert points(items[("accuracy", (rid, "val"))]) == 4
    logged = len(record.log_step)                                   # diagnostics records (engine's interval)
    assert logged >= 4
    for layer in range(3):                                          # 2 hidden layers + output
        assert points(items[("grad", (rid, layer))]) == logged
        assert points(items[("ratio", (rid, layer))]) >= logged - 1
    assert points(items[("dead", (rid, "dead", 0))]) == logged      # ReLU layer: dead units
    assert points(items[("dead", (rid, "sat", 1))]) == logged       # tanh layer: saturation
    assert ("dead", (rid, "dead", 1)) not in items                  # not ReLU: nothing drawn
    assert points(items[("activation", (rid, "mean", 0))]) == logged
    assert items[("activation", (rid, "band", 0))].bounds is not None
    assert points(items[("ratio", (rid, "lr"))]) == logged
    boundary = w.dashboard.output.boundary
    assert w.dashboard.output.stack.currentWidget() is boundary
    assert boundary.image.image is not None and boundary.image.image.shape[:2] == (100, 100)
    assert sum(len(s.data) for s in boundary.scatters) == 180
    # the heat map of one layer's pre-activations
    panel = w.dashboard.activation
    panel.mode.setCurrentIndex(panel.mode.findData(0))
    w.redraw()
    assert panel.image is not None and panel.image.image.shape == (48, logged)
    # the run folder is written like the headless runner's
    assert json.loads((record.folder / "summary.json").read_text())["status"] == "finished"
    assert (record.folder / "history.csv").read_text().count("\n") == logged + 1
    assert "finished" in w.runs.items[rid].text(3)
    assert w.runs.items[rid].text(2).endswith("%")


class ProbedControl(RunControl):
    """Knows when the training loop is blocked inside it (paused, no step budget)."""

    def __init__(self, paused=False):
        super().__init__(paused)
        self.waiting = False

    def allowed_steps(self, to_epoch_end, timeout=None):
        self.waiting = self.paused           # entered while paused: it waits unless a Step is pending
        try:
            return super().allowed_steps(to_epoch_end, timeout)
        finally:
            self.waiting = False

    @property
    def blocked(self):
        return self.waiting and self.paused


def test_pause_step_resume_stop_reset(long_window, qtbot):
    w = long_window
    w.control_factory = ProbedControl
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: record.step > 20, timeout=FIRST_RUN_TIMEOUT)
    w.pause_action.trigger()
    assert w.active.control.paused and w.pause_action.text() == "Resume"
    control = w.active.control
    qtbot.waitUntil(lambda: control.blocked, timeout=30_000)   # its last events are on their way
    qtbot.wait(200)
    paused_at = record.step
    qtbot.wait(300)
    assert record.step == paused_at                                  # paused means paused
    w.step_action.trigger()
    qtbot.waitUntil(lambda: record.step > paused_at, timeout=30_000)
    qtbot.waitUntil(lambda: control.blocked, timeout=30_000)
    qtbot.wait(200)
    assert record.step == paused_at + 1, (record.step, paused_at)   # exactly one step
    w.step_epoch_action.trigger()
    qtbot.waitUntil(lambda: record.step > paused_at + 1 and control.blocked, timeout=30_000)
    # the epoch's record arrives in a batch after its last step's
    qtbot.waitUntil(lambda: len(record.epochs["epoch"]) == record.step // 9, timeout=30_000)
    stepped_to = record.step
    qtbot.wait(300)
    assert record.step == stepped_to and stepped_to % 9 == 0    # stopped exactly at the epoch's end
    w.pause_action.trigger()                                         # resume
    assert not w.active.control.paused
    qtbot.waitUntil(lambda: record.step > paused_at + 40, timeout=30_000)
    w.stop_action.trigger()
    qtbot.waitUntil(lambda: record.finished, timeout=30_000)
    assert record.status == "stopped"
    qtbot.waitUntil(lambda: w.active is None and "stopped" in w.runs.items[record.run_id].text(3), timeout=30_000)
    first_losses = record.loss.data[:3].copy()
    # Reset: the next run starts again from the same initial weights (same seed)
    w.train_or_pause()
    second = current(w)
    qtbot.waitUntil(lambda: second.step > 5, timeout=30_000)
    w.reset_action.trigger()
    assert w.active is None and not w.runs.is_checked(second.run_id)
    qtbot.waitUntil(lambda: second.finished, timeout=30_000)
    w.redraw()
    assert not [k for k in w.dashboard.curve_items() if k[1][0] == second.run_id]   # cleared from view
    w.step_action.trigger()                                          # Step from idle: a paused run, one step
    third = current(w)
    assert third.run_id not in (record.run_id, second.run_id)
    qtbot.waitUntil(lambda: third.step == 1, timeout=30_000)
    np.testing.assert_array_equal(third.loss.data[:1], first_losses[:1])
    w.stop_action.trigger()
    qtbot.waitUntil(lambda: third.finished, timeout=30_000)


def test_learning_rate_change_mid_run_shows_in_the_lr_plot(long_window, qtbot):
    w = long_window
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: record.step > 10, timeout=FIRST_RUN_TIMEOUT)
    assert record.lr.data[-1] == pytest.approx(0.05)
    assert w.lr_editor.type_text("0.002") is None
    qtbot.waitUntil(lambda: record.lr.data[-1] == pytest.approx(0.002), timeout=30_000)
    w.redraw()
    y = w.dashboard.curve_items()[("ratio", (record.run_id, "lr"))].yData
    assert y[0] == pytest.approx(0.05) and y[-1] == pytest.approx(0.002)
    assert w.lr_editor.type_text("-1") is not None                   # refused
    w.stop_action.trigger()
    qtbot.waitUntil(lambda: record.finished, timeout=30_000)


def test_invalid_input_is_refused(window, qtbot):
    w = window
    assert w.builder.form.editor("units").type_text("0") is not None
    assert w.optimizer_panel.form.editor("learning_rate").type_text("0") is not None
    assert w.training_panel.form.editor("batch_size").type_text("-5") is not None
    assert w.data_panel.form.editor("noise").type_text("99") is not None
    exp = w.current_experiment()
    assert exp["model"]["layers"][0]["units"] == 8 and exp["optimizer"]["learning_rate"] == 0.05
    # a cross-key problem: Train refuses to start and says why
    w.optimizer_panel.schedule_combo.setCurrentIndex(w.optimizer_panel.schedule_combo.findData("piecewise"))
    w.optimizer_panel.schedule_form.editor("boundaries").type_text("2")
    assert w.start_run() is None and not w.records
    assert "boundary" in w.statusBar().currentMessage()


def test_a_diverging_run_ends_as_diverged_and_the_window_keeps_working(qtbot, tmp_path):
    diverging = dict(copy.deepcopy(SMALL), name="diverging",
                     model={"layers": [{"units": 16, "activation": "relu"}] * 2},
                     optimizer={"name": "sgd", "learning_rate": 1e6})
    w = make_window(qtbot, tmp_path, diverging)
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    assert record.status == "diverged" and record.diverged_step is not None
    assert len(record.loss) == record.diverged_step - 1      # every finite step's loss, up to the blow-up
    w.redraw()
    assert "diverged" in w.runs.items[record.run_id].text(3)
    marker = w.dashboard.loss.items[(record.run_id, "diverged", id(w.dashboard.loss.plot))]
    assert marker.value() == record.diverged_step
    assert "learning rate" in w.dashboard.notes.text()
    assert "diverged" in w.statusBar().currentMessage()
    # still usable: fix the learning rate and train again
    assert w.lr_editor.type_text("0.05") is None
    w.train_or_pause()
    second = current(w)
    assert second is not record
    qtbot.waitUntil(lambda: second.finished, timeout=30_000)
    assert second.status == "finished" and math.isfinite(second.loss.data[-1])


def test_closing_mid_run_leaves_no_thread(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, LONG)
    before = {t.ident for t in threading.enumerate()}
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: record.step > 5, timeout=FIRST_RUN_TIMEOUT)
    w.close()
    assert not w.worker.thread.isRunning()
    assert not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    summary = json.loads((record.folder / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert (record.folder / "weights.safetensors").is_file()
    # the next session lists the run (from its folder) and can overlay its curves
    from gui.main_window import MainWindow

    again = MainWindow(resolve_experiment(LONG), run_root=tmp_path / "runs",
                       settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(again)
    (old,) = again.records.values()
    assert old.folder == record.folder and old.status == "stopped" and not again.runs.is_checked(old.run_id)
    again.runs.set_checked(old.run_id, True)
    again.redraw()
    assert points(again.dashboard.loss.items[(old.run_id, "step")]) == len(old.log_step) > 0
    assert again.dashboard.grad.items[(old.run_id, 0)].yData is not None


def test_files_presets_and_exports(window, qtbot, tmp_path):
    w = window
    path = tmp_path / "mine.json"
    w.builder.form.editor("units").type_text("12")
    w.save_experiment_as(str(path))
    saved = json.loads(path.read_text())
    assert saved["model"]["layers"][0]["units"] == 12
    w.builder.form.editor("units").type_text("5")
    w.open_experiment(str(path))
    assert w.builder.model()["layers"][0]["units"] == 12
    assert str(path.resolve()) in [a.toolTip() for a in w.recent_menu.actions()]
    # presets: grouped by section, loading one shows its description
    sections = [a.text() for a in w.presets_menu.actions()]
    assert "Built in" in sections
    builtin = next(a.menu() for a in w.presets_menu.actions() if a.text() == "Built in")
    builtin.actions()[0].trigger()
    assert w.meta["name"] == "spiral-default" and "He initialization" in w.header.text()
    # a finished run exports weights, plots and curves
    w.open_experiment(str(path))
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: record.finished, timeout=FIRST_RUN_TIMEOUT)
    w.runs.setCurrentItem(w.runs.items[record.run_id])
    out = w.export_weights(str(tmp_path / "w.npz"))
    with np.load(out) as npz:
        assert npz["layers.0.kernel"].shape == (2, 12)
    assert w.export_plots(str(tmp_path / "plots.png")).stat().st_size > 10_000
    files = w.export_csv(str(tmp_path / "curves.csv"))
    assert [f.name for f in files] == ["curves-steps.csv", "curves-epochs.csv"]
    assert files[1].read_text().count("\n") == 5
    # reload the run into the editors after changing them
    w.builder.form.editor("units").type_text("7")
    w.load_record_into_editors(record)
    assert w.builder.model()["layers"][0]["units"] == 12


def test_a_staged_experiment_lists_one_run_per_stage(qtbot, tmp_path):
    elu_bn = {"units": 8, "activation": "elu", "batch_norm": "before", "use_bias": False}
    staged = {
        "name": "tiny-stages", "seed": 7, "data": {"name": "moons", "n_samples": 300},
        "model": {"layers": [elu_bn, elu_bn]}, "optimizer": {"name": "sgd", "learning_rate": 0.05},
        "training": {"epochs": 2, "batch_size": 32},
        "stages": {"seeds": 1, "list": [
            {"name": "a", "title": "source"},
            {"name": "reuse", "data": {"n_samples": 100}, "reuse": {"from": "a", "layers": "all_but_output"},
             "phases": [{"name": "frozen", "epochs": 2},
                        {"name": "unfrozen", "epochs": 2, "freeze": "none", "learning_rate_factor": 0.1}]}]},
    }
    w = make_window(qtbot, tmp_path, staged)
    w.train_or_pause()
    job = w.active
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    first, second = job.records
    assert first.name.endswith(" a (seed 7)") and second.name.endswith(" reuse (seed 7)")   # "#1 a (seed 7)"
    assert first.status == second.status == "finished"
    # the reuse stage's two phases share one time axis: 4 epochs on one record, steps increasing
    assert len(second.epochs["epoch"]) == 4 and np.all(np.diff(second.log_step.data) > 0)
    # ... and the plots mark where the unfrozen phase starts: after the frozen phase's 2 epochs
    boundary = int(second.epochs["step"].data[1])
    assert second.phases == [(0, "frozen"), (boundary, "unfrozen")] and first.phases == []
    w.runs.set_checked(first.run_id, False)
    w.runs.set_checked(second.run_id, True)
    w.redraw()
    for panel in (w.dashboard.loss, w.dashboard.accuracy, w.dashboard.grad, w.dashboard.ratio):
        lines = [item for key, item in panel.items.items() if key[:2] == (second.run_id, "phase")]
        assert len(lines) == len(panel.follows) and all(line.value() == boundary for line in lines), panel
    loss_line = next(item for key, item in w.dashboard.loss.items.items() if key[1] == "phase")
    assert loss_line.label.format == "frozen | unfrozen"
    w.runs.setCurrentItem(w.runs.items[second.run_id])
    w.redraw()
    assert w.progress_label.text().startswith("epoch 4.00/4 ·")     # both phases' epochs, not the last one's
    assert (first.folder / "summary.json").is_file()
    # saving keeps the stages section although the editors do not show it
    w.save_experiment_as(str(tmp_path / "staged.json"))
    assert json.loads((tmp_path / "staged.json").read_text())["stages"]["list"][1]["name"] == "reuse"


def test_checked_runs_overlay_with_one_colour_each(window, qtbot):
    w = window
    records = []
    for lr in ("0.05", "0.2"):
        assert w.lr_editor.type_text(lr) is None
        w.train_or_pause()
        records.append(current(w))
        qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    first, second = records
    assert not w.runs.is_checked(first.run_id) and w.runs.is_checked(second.run_id)   # newest only
    w.runs.set_checked(first.run_id, True)
    w.redraw()
    loss = w.dashboard.loss
    assert {key[0] for key in loss.items} == {first.run_id, second.run_id}
    pens = {rid: loss.items[(rid, "train")].opts["pen"].color().name() for rid in (first.run_id, second.run_id)}
    assert pens[first.run_id] != pens[second.run_id]
    assert pens[first.run_id] == first.color and pens[second.run_id] == second.color
    names = [label.text for _, label in loss.legend.items]
    assert names == [f"#{first.run_id} lr 0.05", f"#{second.run_id} lr 0.2"]   # what differs between them
    assert second.experiment["optimizer"]["learning_rate"] == 0.2


def test_keyboard_shortcuts(long_window, qtbot):
    from PySide6.QtCore import Qt

    w = long_window
    w.activateWindow()
    w.dashboard.setFocus()
    qtbot.keyClick(w.dashboard, Qt.Key_Space)                        # Space: train
    assert w.active is not None
    record = current(w)
    qtbot.waitUntil(lambda: record.step > 0, timeout=FIRST_RUN_TIMEOUT)
    qtbot.keyClick(w.dashboard, Qt.Key_Space)                        # Space: pause
    assert w.active.control.paused
    qtbot.keyClick(w.dashboard, Qt.Key_Space)                        # Space: resume
    assert not w.active.control.paused
    qtbot.keyClick(w.dashboard, Qt.Key_Escape)                       # Esc: stop
    qtbot.waitUntil(lambda: w.active is None, timeout=30_000)
    assert record.status == "stopped"
    w.builder.form.editor("units").spin.setFocus()
    qtbot.keyClick(w.builder.form.editor("units").spin.lineEdit(), Qt.Key_Space)   # typing, not training
    assert w.active is None


def test_image_data_shows_a_confusion_matrix_and_misclassified_images(qtbot, tmp_path):
    from engine.data import load_dataset
    from engine.errors import DescentError

    images = dict(copy.deepcopy(SMALL), name="fashion-tiny",
                  data={"name": "fashion_mnist", "classes": [0, 2, 6], "per_class": 40, "val_per_class": 20,
                        "test_per_class": 5},
                  model={"layers": [{"units": 16, "activation": "relu"}]}, training={"epochs": 2, "batch_size": 20})
    try:
        load_dataset(resolve_experiment(images)["data"], 3)
    except DescentError as exc:
        pytest.skip(f"Fashion-MNIST files not available: {exc}")
    w = make_window(qtbot, tmp_path, images)
    assert "28×28 image" in w.builder.input_label.text()
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    assert record.status == "finished" and record.confusion is not None
    w.redraw()
    view = w.dashboard.output.confusion
    assert w.dashboard.output.stack.currentWidget() is view
    assert view.matrix_image.image.shape == (3, 3)
    assert int(np.asarray(record.confusion.matrix).sum()) == 60           # every validation image counted
    shown = [c for c in view.cells if c.pixmap() is not None and not c.pixmap().isNull()]
    assert len(shown) == min(len(record.confusion.examples), view.CELLS) > 0
    assert "→" in view.labels[0].text()


def test_a_comparison_trains_its_variants_one_after_another_overlaid(qtbot, tmp_path):
    compared = dict(copy.deepcopy(SMALL), name="race", training={"epochs": 2, "batch_size": 20},
                    compare={"variants": [{"name": "sgd"},
                                          {"name": "adam", "overrides": {"optimizer": {"name": "adam"}}}],
                             "seeds": 2})
    w = make_window(qtbot, tmp_path, compared)
    w.train_or_pause()
    job = w.active
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    sgd, adam = job.records
    assert (sgd.tag, adam.tag) == ("sgd", "adam") and sgd.status == adam.status == "finished"
    assert adam.experiment["optimizer"]["name"] == "adam" and sgd.experiment["optimizer"]["name"] == "sgd"
    assert w.runs.is_checked(sgd.run_id) and w.runs.is_checked(adam.run_id)
    w.redraw()
    names = [label.text for _, label in w.dashboard.loss.legend.items]
    assert names == [f"#{sgd.run_id} sgd", f"#{adam.run_id} adam"]
    assert (sgd.folder / "sgd-seed3" / "summary.json").is_file()


def test_mc_dropout_uncertainty_map_can_be_shown(qtbot, tmp_path):
    mc = dict(copy.deepcopy(SMALL), name="mc",
              model={"layers": [{"units": 16, "activation": "relu", "dropout": 0.3}]},
              training={"epochs": 2, "batch_size": 20, "mc_dropout_samples": 8})
    w = make_window(qtbot, tmp_path, mc)
    w.train_or_pause()
    record = current(w)
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    assert record.surface is not None and record.surface.uncertainty is not None
    w.redraw()
    out = w.dashboard.output
    assert out.uncertainty_box.isVisibleTo(out)
    classes = out.boundary.image.image.copy()
    out.uncertainty_box.setChecked(True)
    assert not np.array_equal(out.boundary.image.image, classes)      # now the uncertainty map


def test_a_frame_waits_for_enough_new_records_or_another_event(window, qtbot, monkeypatch):
    """Large networks log one diagnostics record per batch: a frame per single new point cost
    the training thread a fifth of a core (one GIL), so frames wait for FRAME_MIN_RECORDS records,
    for another kind of event, or for FRAME_MAX_SECONDS.  The window's clock is a fake that only
    moves when the test moves it: a descheduled test process cannot age a frame by accident."""
    import types

    import gui.main_window as main_window
    from engine.events import EpochEnd, RunStarted, StepMetrics
    from engine.training.trainer import Trainer
    from gui.main_window import FRAME_MAX_SECONDS, FRAME_MIN_RECORDS, ActiveRun
    from gui.records import RunRecord

    clock = types.SimpleNamespace(now=1000.0)
    monkeypatch.setattr(main_window, "time", types.SimpleNamespace(monotonic=lambda: clock.now))

    w = window
    every_step = dict(SMALL, training={"epochs": 2, "batch_size": 20, "log_every": 1})
    events = list(Trainer(resolve_experiment(every_step), run_id=999).run(RunControl()))
    started = next(e for e in events if isinstance(e, RunStarted))
    steps = [e for e in events if isinstance(e, StepMetrics)]
    epoch_end = next(e for e in events if isinstance(e, EpochEnd))
    record = RunRecord(999, w.current_experiment())
    w.jobs[999] = ActiveRun(999, record, RunControl(), [record])
    frames = []
    refresh = w.dashboard.refresh
    monkeypatch.setattr(w.dashboard, "refresh", lambda *a, **k: (frames.append(1), refresh(*a, **k)))
    w.timer.stop()

    def deliver(batch, age):
        w.frames.started, w.frames.cpu = clock.now - age, lambda: 0.0   # drawing costs nothing: 33 ms frames
        before = len(frames)
        w.on_batch(999, tuple(batch))
        return len(frames) - before

    k = FRAME_MIN_RECORDS
    assert k >= 2 and len(steps) >= 2 * k + 3
    assert deliver([started], 0.05) == 1                          # a run starts: drawn at once
    for i in range(k - 1):
        assert deliver(steps[i:i + 1], 0.05) == 0                 # too few new points: wait
    assert deliver(steps[k - 1:k], 0.05) == 1                     # enough of them: draw
    assert deliver(steps[k:k + 1], 0.05) == 0
    assert deliver([epoch_end], 0.05) == 1                        # epoch results: draw
    assert deliver(steps[k + 1:k + 2], FRAME_MAX_SECONDS + 0.01) == 1   # a slow run still gets frames
    assert deliver(steps[k + 2:2 * k + 3], 0.0) == 0              # never faster than REDRAW_MS
    clock.now += FRAME_MAX_SECONDS                                # time passes ...
    w.timer.start()
    qtbot.waitUntil(lambda: len(frames) == 5, timeout=30_000)   # ... the timer draws what was left
    w.jobs.pop(999)
