"""The Compare tab: variants x seeds trained from the window, mean lines with min-max bands,
and the same table and verdicts as the headless report."""
import copy
import json

import numpy as np
import pytest

from engine.jobs.compare_report import format_stat, nan_stats
from engine.spec.experiment import resolve_experiment

from test_gui_window import FIRST_RUN_TIMEOUT, SMALL, make_window

pytestmark = pytest.mark.gui

# two optimizers on the tiny moons net, 2 seeds, 3 epochs of 9 steps
RACE = dict(copy.deepcopy(SMALL), name="race", training={"epochs": 3, "batch_size": 20},
            compare={"variants": [{"name": "sgd"},
                                  {"name": "adam", "overrides": {"optimizer": {"name": "adam",
                                                                               "learning_rate": 0.01}}}],
                     "seeds": 2})
SLOW_RACE = dict(copy.deepcopy(RACE), name="slow-race", training={"epochs": 5000, "batch_size": 20})


def compare_tab(qtbot, tmp_path, experiment, workers=1):
    w = make_window(qtbot, tmp_path, experiment)
    w.tabs.setCurrentWidget(w.comparison)
    view = w.comparison
    view.workers = workers
    snapshots = []
    view.updated.connect(snapshots.append)
    return w, view, snapshots


def mean_lines(view):
    """Legend label -> the mean line's finite y values."""
    return {label.text: np.asarray(sample.item.yData, float) for sample, label in view.legend.items}


def test_a_comparison_trains_every_variant_and_seed_and_reports_like_the_headless_runner(qtbot, tmp_path):
    w, view, snapshots = compare_tab(qtbot, tmp_path, RACE)
    assert "2 variants (sgd, adam) × 2 seeds = 4 runs" in view.plan.text()
    request = view.start()
    assert request is not None and not view.run_button.isEnabled() and view.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not view.running, timeout=FIRST_RUN_TIMEOUT)
    assert not view.snapshot.failed, view.snapshot.message
    # live: a snapshot after every finished run, not only at the end
    assert [s.done for s in snapshots if s.summary is not None] == [1, 2, 3, 4, 4]
    folder = request.out
    saved = nan_stats(json.loads((tmp_path / "runs" / folder.split("/runs/")[-1] / "comparison.json")
                                 .read_text()))
    rows = view.table_rows()
    assert [r[0] for r in rows] == saved["ranking"]
    for row in rows:
        v = saved["variants"][row[0]]
        assert row[1] == "2 (finished 2)"
        assert row[2] == format_stat(v["final_val_accuracy"], True)
        assert row[-1] == v["vs_best"]["verdict"]
    assert rows[0][-1] == "best mean"
    assert rows[1][-1].startswith(("not distinguishable at 2 seeds", "worse by"))
    assert "Rule:" in view.report.text()
    # one mean line per variant with a point per epoch, inside its band
    lines = mean_lines(view)
    assert set(lines) == {"sgd (2 seeds)", "adam (2 seeds)"}
    for y in lines.values():
        assert len(y) == 3 and np.isfinite(y).all() and (0 <= y).all() and (y <= 100).all()
    bands = [i for i in view.items if type(i).__name__ == "FillBetweenItem"]
    assert len(bands) == 2
    # another metric redraws from the same snapshot
    view.metric_box.setCurrentIndex(view.metric_box.findData("val_loss"))
    assert all((y > 0).all() and (y < 10).all() for y in mean_lines(view).values())
    assert view.plot.getAxis("left").labelText == "validation loss"
    w.close()


def test_an_earlier_comparison_folder_shows_the_same_table(qtbot, tmp_path):
    w, view, _ = compare_tab(qtbot, tmp_path, RACE)
    request = view.start()
    qtbot.waitUntil(lambda: not view.running, timeout=FIRST_RUN_TIMEOUT)
    live = view.table_rows()
    live_lines = mean_lines(view)
    from gui.compare import ComparisonView

    other = ComparisonView()
    qtbot.addWidget(other)
    assert other.open_folder(request.out)
    assert other.table_rows() == live
    for label, y in mean_lines(other).items():
        np.testing.assert_allclose(y, live_lines[label], rtol=1e-9)
    # the newest comparison of the loaded experiment is shown when a fresh tab opens on it
    fresh = ComparisonView(lambda: resolve_experiment(RACE), tmp_path / "runs")
    qtbot.addWidget(fresh)
    assert fresh.snapshot is not None and fresh.snapshot.folder == request.out
    # a folder without a comparison says what it expected
    assert not other.open_folder(tmp_path)
    assert "no comparison.json" in other.status.text()
    w.close()


def test_stop_ends_every_run_and_the_table_reports_them(qtbot, tmp_path):
    w, view, snapshots = compare_tab(qtbot, tmp_path, SLOW_RACE)
    view.start()
    qtbot.waitUntil(lambda: any(s.total for s in snapshots), timeout=FIRST_RUN_TIMEOUT)
    view.stop()
    qtbot.waitUntil(lambda: not view.running, timeout=FIRST_RUN_TIMEOUT)
    summary = view.snapshot.summary
    assert summary is not None and not view.snapshot.failed
    statuses = {k for v in summary["variants"].values() for k in v["statuses"]}
    assert statuses == {"stopped"}
    assert all(r[1] == "2 (stopped 2)" for r in view.table_rows())
    assert view.run_button.isEnabled()
    w.close()


def test_an_experiment_without_variants_runs_over_seeds_in_two_processes(qtbot, tmp_path):
    w, view, _ = compare_tab(qtbot, tmp_path, dict(copy.deepcopy(SMALL), training={"epochs": 2, "batch_size": 20}),
                             workers=2)
    assert "no variants" in view.plan.text()
    assert view.seeds.type_text("2") is None
    view.start()
    qtbot.waitUntil(lambda: not view.running, timeout=FIRST_RUN_TIMEOUT)
    assert not view.snapshot.failed, view.snapshot.message
    assert view.snapshot.summary["workers"] == 2
    rows = view.table_rows()
    assert len(rows) == 1 and rows[0][0] == "tiny" and rows[0][1] == "2 (finished 2)"
    w.close()


def test_an_invalid_experiment_is_refused_with_its_reason(qtbot, tmp_path):
    from engine.errors import ExperimentError

    w, view, _ = compare_tab(qtbot, tmp_path, RACE)

    def broken():
        raise ExperimentError("optimizer.learning_rate must be > 0, got -1")

    view.experiment_source = broken
    assert view.start() is None
    assert "cannot compare: optimizer.learning_rate must be > 0" in view.status.text() and not view.running
    w.close()


def test_a_quick_look_shorter_than_an_epoch_plots_the_training_loss_of_every_record(qtbot, tmp_path):
    w, view, _ = compare_tab(qtbot, tmp_path, dict(RACE, training={"epochs": 3, "batch_size": 20, "log_every": 1}))
    view.max_steps.enabled_box.setChecked(True)
    assert view.max_steps.type_text("5") is None  # an epoch is 9 steps: at most one epoch point per run
    view.start()
    qtbot.waitUntil(lambda: not view.running, timeout=FIRST_RUN_TIMEOUT)
    assert not view.snapshot.failed, view.snapshot.message
    assert view.metric_box.currentData() == "loss"
    lines = mean_lines(view)
    assert set(lines) == {"sgd (2 seeds)", "adam (2 seeds)"}
    assert all(len(y) == 5 and np.isfinite(y).all() for y in lines.values())
    assert all(r[1] == "2 (finished 2)" for r in view.table_rows())
    w.close()
