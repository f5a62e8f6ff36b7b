"""Early stopping's rule, pinned on scripted validation losses and checked
against Keras's own ``EarlyStopping`` callback on the same sequences, and its
state surviving a checkpoint.

The rule is Keras's: stop once ``wait >= patience`` (the patience-th epoch in
a row without an improvement larger than min_delta)."""
import json
import math
import os

import numpy as np
import pytest

from engine.errors import ExperimentError
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


def test_stops_at_the_patience_th_epoch_without_improvement():
    es = EarlyStopping("val_loss", patience=2)
    #                      1    2     3     4     5     6
    assert stop_epoch(es, [1.0, 0.75, 0.875, 0.8, 0.78, 0.5]) == 4   # epochs 3 and 4 miss: wait 2 >= 2
    assert es.best_epoch == 2 and es.best_value == 0.75 and es.wait == 2


def test_the_message_counts_the_epochs_without_improvement():
    es = EarlyStopping("val_loss", patience=3)
    decisions = [es.update(epoch, {"val_loss": v}) for epoch, v in enumerate([1.0, 0.5, 0.6, 0.7, 0.8], 1)]
    assert [d.stop for d in decisions] == [False, False, False, False, True]
    assert decisions[-1].reason == "val_loss did not improve for 3 epochs (best at epoch 2)"
    one = EarlyStopping("val_loss", patience=1)
    assert stop_epoch(one, [1.0, 2.0]) == 2
    assert one.update(3, {"val_loss": 3.0}).reason == "val_loss did not improve for 2 epochs (best at epoch 1)"


def test_an_improvement_resets_the_count():
    es = EarlyStopping("val_loss", patience=2)
    assert stop_epoch(es, [1.0, 1.5, 0.5, 0.75, 0.25, 0.375, 0.375]) == 7
    assert es.best_epoch == 5


@pytest.mark.parametrize("patience", [0, 1])
def test_patience_zero_and_one_stop_at_the_first_epoch_without_improvement(patience):
    es = EarlyStopping("val_loss", patience=patience)
    assert stop_epoch(es, [1.0, 0.5, 0.5]) == 3


def test_min_delta_is_the_smallest_change_that_counts():
    # 0.75 is exactly min_delta below 1.0: not an improvement (strictly better by more than min_delta)
    es = EarlyStopping("val_loss", patience=2, min_delta=0.25)
    assert stop_epoch(es, [1.0, 0.75, 0.5]) is None
    assert es.best_epoch == 3 and es.wait == 0
    assert stop_epoch(es, [0.375, 0.3125], first_epoch=4) == 5   # gains smaller than min_delta do not count


def test_min_delta_is_a_size_in_the_metric_s_good_direction():
    # an accuracy must rise by more than min_delta: a fall never counts, however large
    es = EarlyStopping("val_accuracy", patience=2, min_delta=0.125)
    assert stop_epoch(es, [0.5, 0.625, 0.25], monitor="val_accuracy") == 3
    assert es.best_epoch == 1
    es = EarlyStopping("val_accuracy", patience=2, min_delta=0.125)
    assert stop_epoch(es, [0.5, 0.75, 0.8125, 0.9375], monitor="val_accuracy") is None
    assert es.best_epoch == 4 and es.wait == 0
    # a negative min_delta is refused by the schema (Keras takes its absolute value)
    with pytest.raises(ExperimentError, match="min_delta"):
        _experiment(early_stopping={"patience": 2, "min_delta": -0.1})


def test_accuracy_is_better_when_higher_and_nan_never_improves():
    es = EarlyStopping("val_accuracy", patience=2)
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
    whole = EarlyStopping("val_loss", patience=3, min_delta=0.0625)
    expected = stop_epoch(whole, values)
    assert expected == 5
    first = EarlyStopping("val_loss", patience=3, min_delta=0.0625)
    assert stop_epoch(first, values[:cut]) is None
    state = json.loads(json.dumps(first.state_dict()))   # as a checkpoint stores it
    resumed = EarlyStopping("val_loss", patience=3, min_delta=0.0625)
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
        "training": {"epochs": 200, "batch_size": 16, "early_stopping": {"patience": 3}, **training}})


def test_a_run_resumed_mid_count_stops_where_an_uninterrupted_one_does():
    whole = Trainer(_experiment())
    events = list(whole.run())
    val = [e.val_loss for e in events if isinstance(e, EpochEnd)]
    fin = events[-1]
    assert fin.status == "early_stopped" and fin.epoch == len(val)
    es = whole.early_stopping
    assert fin.epoch == es.best_epoch + es.patience and val[es.best_epoch - 1] == min(val)
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


def test_a_missing_validation_set_or_an_accuracy_of_a_regression_is_an_input_error():
    no_val = _experiment()
    no_val["data"] = dict(no_val["data"], validation_split=0.0)
    with pytest.raises(ExperimentError, match="training.early_stopping.monitor.*no validation set"):
        Trainer(resolve_experiment(no_val))
    regression = resolve_experiment({
        "data": {"name": "regression_1d", "n_samples": 200}, "model": {"layers": [{"units": 8}]},
        "training": {"early_stopping": {"monitor": "val_accuracy"}}})
    with pytest.raises(ExperimentError, match="'val_accuracy'.*regression.*val_loss"):
        Trainer(regression)


# ----------------------------------------------------------------------------- Keras as the oracle

SEQUENCES = [   # (monitor, patience, min_delta, values): dyadic numbers, so both sides round alike
    ("val_loss", 2, 0.0, [1.0, 0.75, 0.875, 0.8, 0.78, 0.5]),
    ("val_loss", 0, 0.0, [1.0, 0.5, 0.5, 0.25]),
    ("val_loss", 1, 0.0, [1.0, 0.5, 0.25, 0.25]),
    ("val_loss", 3, 0.0, [1.0, 1.5, 0.5, 0.75, 0.25, 0.375, 0.375, 0.5, 0.125]),
    ("val_loss", 2, 0.25, [1.0, 0.75, 0.5, 0.375, 0.3125, 0.0625]),
    ("val_loss", 2, 0.0625, [1.0, 0.75, 0.875, 0.7, 0.72, 0.5, 0.625]),
    ("val_loss", 4, 0.0, [2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ("val_accuracy", 2, 0.0, [0.5, 0.75, 0.625, 0.875, 0.75, 0.75, 1.0]),
    ("val_accuracy", 1, 0.125, [0.5, 0.625, 0.75, 0.875, 0.875]),
    ("val_accuracy", 3, 0.125, [0.5, 0.25, 0.75, 0.8125, 0.875, 0.9375, 0.5]),
]


def keras_stop_epoch(monitor, patience, min_delta, values):
    """The 1-based epoch at which Keras's EarlyStopping sets stop_training on these values, or None."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")

    class Model:
        stop_training = False

        def get_weights(self):
            return []

    model = Model()
    callback = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta,
                                             mode="min" if monitor == "val_loss" else "max")
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            return epoch + 1
    return None


@pytest.mark.parametrize("monitor,patience,min_delta,values", SEQUENCES)
def test_the_rule_stops_where_keras_does(monitor, patience, min_delta, values):
    ours = stop_epoch(EarlyStopping(monitor, patience, min_delta), values, monitor=monitor)
    assert ours == keras_stop_epoch(monitor, patience, min_delta, values)
