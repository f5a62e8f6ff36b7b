"""Early stopping's rule, pinned on scripted validation losses, and its state
surviving a checkpoint.

The rule is today's: stop once ``wait > patience`` (patience + 1 epochs in a
row without an improvement larger than min_delta).  Keras stops at
``wait >= patience``; switching to it is meant to be a visible change: one
line in engine/training/early_stopping.py and the stop epochs here."""
import json
import math

import numpy as np
import pytest

from engine.events import EpochEnd
from engine.spec.experiment import resolve_experiment
from engine.training.early_stopping import EarlyStopping
from engine.training.trainer import Trainer


def stop_epoch(es, values, first_epoch=1, monitor="val_loss"):
    """Feed one value per epoch; the epoch at which the rule stops, or None."""
    for epoch, value in enumerate(values, first_epoch):
        if es.update(epoch, {monitor: value}).stop:
            return epoch
    return None


def test_stops_after_patience_plus_one_epochs_without_improvement():
    es = EarlyStopping("val_loss", patience=2)
    #                      1    2     3     4     5     6
    assert stop_epoch(es, [1.0, 0.75, 0.875, 0.8, 0.78, 0.5]) == 5   # Keras's wait >= patience: epoch 4
    assert es.best_epoch == 2 and es.best_value == 0.75 and es.wait == 3


def test_an_improvement_resets_the_count():
    es = EarlyStopping("val_loss", patience=1)
    assert stop_epoch(es, [1.0, 1.5, 0.5, 0.75, 0.25, 0.375, 0.375]) == 7
    assert es.best_epoch == 5


def test_patience_zero_stops_at_the_first_epoch_without_improvement():
    es = EarlyStopping("val_loss", patience=0)
    assert stop_epoch(es, [1.0, 0.5, 0.5]) == 3


def test_min_delta_is_the_smallest_change_that_counts():
    # 0.75 is exactly min_delta below 1.0: not an improvement (strictly better by more than min_delta)
    es = EarlyStopping("val_loss", patience=1, min_delta=0.25)
    assert stop_epoch(es, [1.0, 0.75, 0.5]) is None
    assert es.best_epoch == 3 and es.wait == 0
    assert stop_epoch(es, [0.375, 0.3125], first_epoch=4) == 5   # gains smaller than min_delta do not count


def test_accuracy_is_better_when_higher_and_nan_never_improves():
    es = EarlyStopping("val_accuracy", patience=1)
    assert stop_epoch(es, [0.5, 0.75, 0.625, 0.875, math.nan, math.nan], monitor="val_accuracy") == 6
    assert es.best_epoch == 4 and es.best_value == -0.875


def test_best_weights_are_taken_only_for_a_new_best_and_only_with_restore_best():
    calls = []

    def weights():
        calls.append(len(calls))
        return {"w": np.full(2, float(len(calls)))}

    es = EarlyStopping("val_loss", patience=5)
    for epoch, value in enumerate([1.0, 2.0, 0.5, 0.75], 1):
        es.update(epoch, {"val_loss": value}, weights)
    assert len(calls) == 2 and es.best_weights["w"][0] == 2.0
    off = EarlyStopping("val_loss", patience=5, restore_best=False)
    off.update(1, {"val_loss": 1.0}, weights)
    assert len(calls) == 2 and off.best_weights is None


@pytest.mark.parametrize("cut", range(1, 5))
def test_resuming_from_the_state_dict_mid_count_stops_at_the_same_epoch(cut):
    values = [1.0, 0.75, 0.875, 0.7, 0.72, 0.5]   # epoch 4 gains 0.05, less than min_delta
    whole = EarlyStopping("val_loss", patience=2, min_delta=0.0625)
    expected = stop_epoch(whole, values)
    assert expected == 5
    first = EarlyStopping("val_loss", patience=2, min_delta=0.0625)
    assert stop_epoch(first, values[:cut]) is None
    state = json.loads(json.dumps(first.state_dict()))   # as a checkpoint stores it
    resumed = EarlyStopping("val_loss", patience=2, min_delta=0.0625)
    resumed.load_state_dict(state)
    assert stop_epoch(resumed, values[cut:], first_epoch=cut + 1) == expected
    assert (resumed.best_epoch, resumed.best_value, resumed.wait) == (whole.best_epoch, whole.best_value, whole.wait)


def test_a_fresh_state_has_no_best_value_in_json():
    state = EarlyStopping().state_dict()
    assert state == {"best_value": None, "best_epoch": 0, "wait": 0}
    es = EarlyStopping()
    es.load_state_dict(state)
    assert es.best_value == math.inf


def test_unknown_monitor_is_refused():
    with pytest.raises(ValueError, match="val_loss"):
        EarlyStopping("train_loss")


# ----------------------------------------------------------------------------- in a run

def _experiment(**training):
    return resolve_experiment({
        "seed": 3, "data": {"name": "moons", "n_samples": 300, "noise": 0.1},
        "model": {"layers": [{"units": 16, "activation": "relu"}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.5},
        "training": {"epochs": 200, "batch_size": 16, "early_stopping": {"patience": 2}, **training}})


def test_a_run_resumed_mid_count_stops_where_an_uninterrupted_one_does():
    whole = Trainer(_experiment())
    events = list(whole.run())
    val = [e.val_loss for e in events if isinstance(e, EpochEnd)]
    fin = events[-1]
    assert fin.status == "early_stopped" and fin.epoch == len(val)
    es = whole.early_stopping
    assert fin.epoch == es.best_epoch + es.patience + 1 and val[es.best_epoch - 1] == min(val)
    # cut the run one epoch after its best, with the count running, and 3 batches into the next epoch
    spe = whole.steps_per_epoch
    first = Trainer(_experiment(), max_steps=(es.best_epoch + 1) * spe + 3)
    list(first.run())
    resumed = Trainer(_experiment())
    checkpoint = first.checkpoint()
    checkpoint["state"] = json.loads(json.dumps(checkpoint["state"]))   # as the checkpoint file stores it
    resumed.restore(checkpoint)
    assert resumed.early_stopping.wait == 1 and resumed.early_stopping.best_epoch == es.best_epoch
    rest = list(resumed.run())[-1]
    assert (rest.status, rest.epoch, rest.step) == (fin.status, fin.epoch, fin.step)
    assert rest.summary["final_val_loss"] == fin.summary["final_val_loss"] == min(val)
    for name, value in fin.weights.items():
        assert np.array_equal(rest.weights[name], value), name
