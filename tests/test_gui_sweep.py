"""A sweep in the Compare tab: the metric against the swept rate on a log axis, one line per
optimizer with its seed band, filled in as runs finish, the trials' table, a click that opens a
trial's runs; a heat map for two numeric keys."""
import copy
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from engine.jobs.sweep_report import read_sweep, summarize_sweep, sweep_plot_data
from engine.spec.experiment import resolve_experiment
from engine.spec.sweep import sweep_trials

from test_gui_compare import compare_tab
from test_gui_window import FIRST_RUN_TIMEOUT, SMALL

pytestmark = pytest.mark.gui

# two optimizers x three log-spaced rates on the tiny moons net, 2 seeds, 3 epochs of 9 steps
SWEEP = dict(copy.deepcopy(SMALL), name="sweep", training={"epochs": 3, "batch_size": 20},
             sweep={"parameters": {"optimizer.name": {"values": ["sgd", "adam"]},
                                   "optimizer.learning_rate": {"log_grid": {"low": 0.001, "high": 0.1, "num": 3}}},
                    "seeds": 2})


def legend_items(view):
    """Legend label -> its line (a PlotDataItem)."""
    return {label.text: sample.item for sample, label in view.legend.items}


def bands(view):
    """The FillBetweenItems' (lower, upper) edge data, in drawing order."""
    out = []
    for item in view.items:
        if type(item).__name__ == "FillBetweenItem":
            lo, hi = item.curves
            out.append((np.asarray(lo.xData), np.asarray(lo.yData), np.asarray(hi.yData)))
    return out


def click(qtbot, view, trial):
    """A real left click on the trial's point in the plot (once the plot has taken its range)."""
    QApplication.processEvents()
    pos = view.plot_widget.mapFromScene(view.point_scene_pos(trial))
    qtbot.mouseClick(view.plot_widget.viewport(), Qt.LeftButton, pos=QPoint(pos.x(), pos.y()))


def test_a_sweep_runs_in_the_compare_tab_and_plots_the_summary(qtbot, tmp_path):
    w, tab, snapshots = compare_tab(qtbot, tmp_path, SWEEP)
    assert w.current_experiment()["sweep"] is not None       # the editors keep the section (PASS_THROUGH)
    assert "6 trials" in tab.plan.text() and "× 2 seeds = 12 runs" in tab.plan.text()
    assert tab.run_button.text() == "Run sweep"
    request = tab.start()
    assert request is not None and Path(request.out).name.endswith("-sweep")
    qtbot.waitUntil(lambda: not tab.running, timeout=FIRST_RUN_TIMEOUT)
    view = tab.sweep_view
    assert tab.pages.currentWidget() is view and not view.snapshot.failed, view.snapshot.message
    # live: a snapshot after every finished run, then the final one
    assert [s.done for s in snapshots if s.summary is not None] == list(range(1, 13)) + [12]
    saved = read_sweep(request.out)
    assert view.summary["ranking"] == saved["ranking"]
    data = sweep_plot_data(saved)
    assert data["kind"] == "lines" and data["log_x"] and data["x"] == "optimizer.learning_rate"
    # the log axis, and one line per optimizer with its points at the swept rates
    assert view.plot.getAxis("bottom").logMode and view.plot.ctrl.logXCheck.isChecked()
    lines = legend_items(view)
    assert set(lines) == {"sgd (2 seeds)", "adam (2 seeds)"}
    drawn_bands = bands(view)
    assert len(drawn_bands) == 2
    for line, (bx, lo, hi) in zip(data["lines"], drawn_bands):
        item = lines[f"{line['label']} (2 seeds)"]
        np.testing.assert_array_equal(item.xData, line["x"])
        np.testing.assert_allclose(item.yData, 100 * np.array(line["mean"], float), rtol=1e-12)
        np.testing.assert_array_equal(bx, line["x"])
        np.testing.assert_allclose(lo, 100 * np.array(line["min"], float), rtol=1e-12)
        np.testing.assert_allclose(hi, 100 * np.array(line["max"], float), rtol=1e-12)
    # the table: every trial by rank, its mean ± std and its verdict vs the best
    rows = view.table_rows()
    assert [r[1] for r in rows] == [saved["trials"][i]["name"] for i in saved["ranking"]]
    assert rows[0][-1] == "best mean" and all(r[4] == "2 (finished 2)" for r in rows)
    # clicking a point selects its trial: ringed, its row selected, its two runs drawn
    target = data["lines"][1]["trials"][2]          # adam at the highest rate
    selected = []
    view.trial_selected.connect(selected.append)
    click(qtbot, view, target)
    assert selected == [target] and view.selected == target
    assert view._row_trial(view.table.currentRow()) == target
    assert len(view.curve_items) == 2 and all(len(c.yData) == 3 for c in view.curve_items)
    assert saved["trials"][target]["name"] in view.trial_title.text()
    # a row click selects too
    row = next(r for r in range(view.table.rowCount()) if view._row_trial(r) != target)
    qtbot.mouseClick(view.table.viewport(), Qt.LeftButton,
                     pos=view.table.visualItemRect(view.table.item(row, 1)).center())
    assert view.selected == view._row_trial(row) != target
    w.close()


def test_a_finished_sweep_folder_opens_in_a_fresh_tab(qtbot, tmp_path):
    w, tab, _ = compare_tab(qtbot, tmp_path, SWEEP)
    tab.max_steps.enabled_box.setChecked(True)
    assert tab.max_steps.type_text("5") is None  # an epoch is 9 steps: one epoch point per run
    request = tab.start()
    qtbot.waitUntil(lambda: not tab.running, timeout=FIRST_RUN_TIMEOUT)
    from gui.compare import ComparisonView

    fresh = ComparisonView(lambda: resolve_experiment(SWEEP), tmp_path / "runs")
    qtbot.addWidget(fresh)
    assert fresh.pages.currentWidget() is fresh.sweep_view
    assert fresh.sweep_view.snapshot.folder == request.out
    assert fresh.sweep_view.table_rows() == tab.sweep_view.table_rows()
    fresh.sweep_view.select_trial(0)     # a quick look of one epoch: the trial's runs show their training loss
    assert fresh.sweep_view.curves.getAxis("left").labelText.startswith("training loss")
    w.close()


def fake_summary(tmp_path):
    """A finished two-key numeric grid (no training): rate x batch size, 2 seeds, one cell diverged."""
    exp = resolve_experiment(dict(copy.deepcopy(SMALL), sweep={"parameters": {
        "optimizer.learning_rate": {"log_grid": {"low": 0.001, "high": 0.1, "num": 3}},
        "training.batch_size": {"values": [16, 32]}}, "seeds": 2}))
    trials = sweep_trials(exp)
    records = []
    for t in trials:
        for seed in exp["sweep"]["seeds"]:
            diverged = t.params["optimizer.learning_rate"] == 0.1 and t.params["training.batch_size"] == 16
            acc = 0.5 + 0.05 * t.index + 0.01 * seed
            records.append({"variant": t.name, "seed": seed, "folder": f"{t.name}-seed{seed}",
                            "status": "diverged" if diverged else "finished", "steps": 10, "final_val_accuracy": acc,
                            "final_val_loss": 1 - acc, "best_val_accuracy": acc, "best_val_loss": 1 - acc,
                            "test_accuracy": acc, "wall_seconds": 1.0})
    return summarize_sweep(records, trials, exp["sweep"])


def test_two_numeric_keys_draw_a_heat_map_whose_cells_select_their_trial(qtbot, tmp_path):
    from gui.sweep_view import SweepSnapshot, SweepView

    summary = fake_summary(tmp_path)
    view = SweepView()
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    view.show_snapshot(SweepSnapshot(str(tmp_path), 12, 12, summary, "done", finished=True))
    data = view.data
    assert data["kind"] == "heatmap" and data["log_x"] and not data["log_y"]
    panel = data["panels"][0]
    assert len(view.cells) == 6 and not view.plot.getAxis("bottom").logMode
    image = next(i for i in view.items if type(i).__name__ == "ImageItem")
    assert image.image.shape[:2] == (2, 3)        # rows: batch sizes, columns: rates
    texts = sorted(i.textItem.toPlainText() for i in view.items if type(i).__name__ == "TextItem")
    means = [m for row in panel["mean"] for m in row if m == m]
    assert texts == sorted([f"{m * 100:.1f}" for m in means] + ["div"])
    target = panel["trials"][1][2]                 # batch 32, rate 0.1
    click(qtbot, view, target)
    assert view.selected == target
    assert view.table_rows()[0][1] == summary["trials"][summary["best"]]["name"]
    assert not view.curve_items                    # no run folders here: nothing to draw, no error


def test_the_train_tab_races_a_sweeps_trials_at_the_first_seed(qtbot, tmp_path):
    from test_gui_window import make_window

    race = dict(copy.deepcopy(SWEEP), training={"epochs": 2, "batch_size": 20},
                sweep={"parameters": {"optimizer.name": {"values": ["sgd", "adam"]}}, "seeds": 2})
    w = make_window(qtbot, tmp_path, race)
    w.train_or_pause()
    job = w.active
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    sgd, adam = job.records
    assert (sgd.tag, adam.tag) == ("sgd", "adam") and sgd.status == adam.status == "finished"
    assert adam.experiment["optimizer"]["name"] == "adam"
    assert read_sweep(sgd.folder)["seeds"] == [3] and (sgd.folder / "adam-seed3" / "weights.safetensors").is_file()
    w.close()
