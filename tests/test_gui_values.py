"""The data behind each curve equals the records it came from.

The window tests count points and check shapes; a curve fed the wrong column
(validation loss drawn as "train"), a missing percent scaling, a legend
showing a stale count or a path with x and y swapped all keep the counts
right.  These tests feed the panels a real run's records and compare the
curves' arrays with them, value for value.
"""
import numpy as np
import pytest

from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer

pytestmark = pytest.mark.gui

# a wide ReLU layer at a high learning rate: units die during the run, so the first and the
# latest dead counts differ; train and validation losses differ at every epoch
EXPERIMENT = {
    "seed": 3, "data": {"name": "moons", "n_samples": 300, "noise": 0.25},
    "model": {"layers": [{"units": 24, "activation": "relu"}, {"units": 8, "activation": "tanh"}]},
    "optimizer": {"name": "sgd", "learning_rate": 0.8},
    "training": {"epochs": 6, "batch_size": 20, "log_every": 2},
}


@pytest.fixture(scope="module")
def record():
    from gui.records import RunRecord

    exp = resolve_experiment(EXPERIMENT)
    events = list(Trainer(exp, run_id=1).run())
    r = RunRecord(1, exp)
    r.ingest(events)
    assert r.finished
    return r


def _synced(qtbot, panel_class, record):
    panel = panel_class()
    qtbot.addWidget(panel)
    panel.sync([record], False, record)
    return panel


def test_loss_curves_are_the_train_and_validation_records(qtbot, record):
    from gui.metric_plots import LossPanel

    ep = record.epochs
    train, val = ep["train_loss"].data, ep["val_loss"].data
    assert len(train) == EXPERIMENT["training"]["epochs"] and not np.allclose(train, val)
    panel = _synced(qtbot, LossPanel, record)
    for key, expected in (("train", train), ("val", val)):
        item = panel.items[(record.run_id, key)]
        np.testing.assert_array_equal(item.xData, ep["step"].data)
        np.testing.assert_allclose(item.yData, expected, rtol=1e-12)
    steps = panel.items[(record.run_id, "step")]
    np.testing.assert_array_equal(steps.yData, record.loss.data)


def test_accuracy_curves_are_in_percent(qtbot, record):
    from gui.metric_plots import AccuracyPanel

    ep = record.epochs
    panel = _synced(qtbot, AccuracyPanel, record)
    for key, column in (("train", "train_accuracy"), ("val", "val_accuracy")):
        fraction = ep[column].data
        assert 0 < fraction.max() <= 1
        np.testing.assert_allclose(panel.items[(record.run_id, key)].yData, 100 * fraction, rtol=1e-12)


def test_dead_unit_curves_and_legend_show_the_records_and_the_latest_count(qtbot, record):
    from gui.layer_plots import DeadPanel

    counts = record.per_layer["dead_count"].data
    assert counts[0, 0] != counts[-1, 0], "the run should kill some ReLU units (first count == latest)"
    panel = _synced(qtbot, DeadPanel, record)
    curve = panel.items[(record.run_id, "dead", 0)]
    np.testing.assert_allclose(curve.yData, 100 * record.per_layer["dead_fraction"].data[:, 0], rtol=1e-12)
    np.testing.assert_array_equal(curve.xData, record.log_step.data)
    labels = [label.text for _, label in panel.legend.items]
    units = EXPERIMENT["model"]["layers"][0]["units"]
    assert any(f": {int(counts[-1, 0])}/{units} dead" in text for text in labels), labels


def test_arena_paths_are_the_racers_coordinates(qtbot):
    from gui.arena import ArenaTab

    tab = ArenaTab()
    qtbot.addWidget(tab)
    tab.step_race(25)
    for racer, items in zip(tab.arena.racers, tab._racer_items):
        x, y = items["path"].getData()
        assert not np.allclose(racer.path[:, 0], racer.path[:, 1])   # x and y distinguishable
        np.testing.assert_array_equal(x, racer.path[:, 0])
        np.testing.assert_array_equal(y, racer.path[:, 1])
