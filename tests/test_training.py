"""The training loop: reproducibility, control, divergence, stopping, constraints."""
import threading
import time

import numpy as np
import pytest

from engine.control import RunControl
from engine.events import EpochEnd, RunFinished, RunStarted, StepMetrics
from engine.kernels.train import STAT_GRAD_KERNEL
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer


def small(**changes):
    exp = {"seed": 3, "data": {"name": "moons", "n_samples": 300, "noise": 0.1},
           "model": {"layers": [{"units": 16, "activation": "elu", "batch_norm": "before", "dropout": 0.1},
                                {"units": 16, "activation": "rrelu"}]},
           "optimizer": {"name": "adam", "learning_rate": 0.01},
           "training": {"epochs": 3, "batch_size": 16}}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(exp.get(key), dict):
            exp[key] = {**exp[key], **value}
        else:
            exp[key] = value
    return resolve_experiment(exp)


def run(exp, control=None, **kw):
    events = list(Trainer(exp, **kw).run(control))
    return events, events[-1]


def test_same_seed_gives_bit_identical_weights_and_a_new_seed_does_not():
    _, a = run(small())
    _, b = run(small())
    _, c = run(small(seed=4))
    for name in a.weights:
        assert np.array_equal(a.weights[name], b.weights[name]), name
    assert any(not np.array_equal(a.weights[n], c.weights[n]) for n in a.weights)


def test_chunking_does_not_change_the_math():
    _, every_step = run(small(training={"log_every": 1}))
    _, rarely = run(small(training={"log_every": 1000}))
    for name in every_step.weights:
        assert np.array_equal(every_step.weights[name], rarely.weights[name]), name


def test_event_stream_shape_and_immutability():
    events, fin = run(small())
    assert isinstance(events[0], RunStarted)
    assert isinstance(fin, RunFinished) and fin.status == "finished"
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    metrics = [e for e in events if isinstance(e, StepMetrics)]
    assert metrics and all(m.grad_norm.shape == (3,) for m in metrics)
    assert sum(len(m.losses) for m in metrics) == fin.step
    with pytest.raises(ValueError):
        metrics[0].grad_norm[0] = 1.0
    with pytest.raises(ValueError):
        fin.weights["layers.0.kernel"][0, 0] = 1.0
    assert epochs[-1].val_accuracy > 0.8


def test_divergence_ends_the_run_and_keeps_the_last_finite_weights():
    exp = small(optimizer={"name": "sgd", "learning_rate": 1e6},
                model={"layers": [{"units": 16, "activation": "relu"}] * 4})
    events, fin = run(exp)
    assert fin.status == "diverged"
    assert "step" in fin.reason and "learning rate" in fin.reason
    assert all(np.all(np.isfinite(w)) for w in fin.weights.values())
    assert fin.step < 3 * 19


def _hand_set(exp, first_kernel: float):
    """A trainer whose first kernel is ``first_kernel`` everywhere (the other weights as drawn)."""
    trainer = Trainer(exp)
    trainer.net.tensor("layers.0.kernel")[...] = first_kernel
    return trainer


@pytest.mark.parametrize("dtype,kernel,optimizer,cause", [
    # Kernel 1e155 makes the hidden outputs ~1e155: the loss (~1e155) and every gradient entry are
    # finite in float64, but their squares are not, so the norm the record reports is infinite.
    # Before the rule, such a run went on and ended "finished" with grad_norm = inf in every record.
    ("float64", 1e155, {"name": "adam", "learning_rate": 0.001}, "the gradient norm became infinite"),
    # float32: a kernel of 1e18 gives gradients ~1e18 (their squares still fit), and SGD at rate
    # 1e25 moves the weights by ~1e43, past float32's 3.4e38; the overflowed update used to be kept
    ("float32", 1e18, {"name": "sgd", "learning_rate": 1e25}, "the update made a weight NaN or infinite"),
])
def test_a_non_finite_gradient_norm_or_weight_diverges_at_once_and_keeps_the_weights(dtype, kernel, optimizer,
                                                                                    cause):
    exp = small(model={"layers": [{"units": 4, "activation": "relu"}]}, training={"dtype": dtype},
                optimizer=optimizer)
    trainer = _hand_set(exp, kernel)
    before = trainer.net.state_dict()
    fin = list(trainer.run())[-1]
    assert fin.status == "diverged" and fin.step == 0
    assert fin.reason.startswith(cause) and "step 1 " in fin.reason
    for name, value in fin.weights.items():
        assert np.array_equal(value, before[name]), name


def test_a_huge_but_finite_loss_is_not_divergence():
    # the rule is about non-finite values: a loss of ~1e6 with finite gradients trains on
    exp = small(model={"layers": [{"units": 4, "activation": "relu"}]}, training={"dtype": "float64", "epochs": 1},
                optimizer={"name": "sgd", "learning_rate": 1e-12})
    trainer = _hand_set(exp, 1e5)
    events = list(trainer.run())
    metrics = [e for e in events if isinstance(e, StepMetrics)]
    assert events[-1].status == "finished"
    assert metrics[0].loss > 1e3 and all(np.isfinite(m.grad_norm).all() for m in metrics)


def test_early_stopping_restores_the_best_weights():
    exp = small(training={"epochs": 200, "early_stopping": {"patience": 2, "monitor": "val_loss"}},
                optimizer={"name": "sgd", "learning_rate": 0.5})
    events, fin = run(exp)
    assert fin.status == "early_stopped"
    val = [e.val_loss for e in events if isinstance(e, EpochEnd)]
    assert fin.epoch == len(val) < 200
    assert fin.summary["final_val_loss"] == pytest.approx(min(val), rel=1e-6)


def test_frozen_layers_and_their_bn_statistics_do_not_move():
    exp = small(model={"layers": [{"units": 8, "activation": "tanh", "batch_norm": "after", "trainable": False},
                                  {"units": 8, "activation": "relu"}]})
    trainer = Trainer(exp)
    before = trainer.net.state_dict()
    fin = list(trainer.run())[-1]
    for name in before:
        same = np.array_equal(before[name], fin.weights[name])
        assert same == name.startswith("layers.0."), name


def test_max_norm_holds_after_every_step():
    exp = small(model={"layers": [{"units": 16, "activation": "relu", "max_norm": 0.5}]},
                optimizer={"name": "sgd", "learning_rate": 0.5})
    fin = run(exp)[1]
    norms = np.linalg.norm(fin.weights["layers.0.kernel"], axis=0)
    assert norms.max() <= 0.5 + 1e-5
    assert norms.max() > 0.45  # the constraint was actually active


def test_pause_step_and_stop_from_another_thread():
    control = RunControl(paused=True)
    trainer = Trainer(small(training={"epochs": 50, "log_every": 1}))
    events = []
    worker = threading.Thread(target=lambda: events.extend(trainer.run(control)))
    worker.start()
    control.step(5)
    _wait_for(lambda: trainer.step == 5)
    assert trainer.step == 5
    control.stop()
    worker.join(timeout=30)
    assert not worker.is_alive()
    fin = events[-1]
    assert fin.status == "stopped" and fin.step == 5


def test_learning_rate_change_takes_effect_at_the_next_step():
    control = RunControl(paused=True)
    trainer = Trainer(small(training={"epochs": 5, "log_every": 1}))
    events = []
    worker = threading.Thread(target=lambda: events.extend(trainer.run(control)))
    worker.start()
    control.step(3)
    _wait_for(lambda: trainer.step == 3)
    control.set_learning_rate(0.123)
    control.step(2)
    _wait_for(lambda: trainer.step == 5)
    control.stop()
    worker.join(timeout=30)
    lrs = {e.step: e.learning_rate for e in events if isinstance(e, StepMetrics)}
    assert lrs[3] == pytest.approx(0.01) and lrs[4] == pytest.approx(0.123)


def test_step_limit():
    fin = run(small(), max_steps=7)[1]
    assert fin.step == 7 and fin.status == "finished" and "step limit" in fin.reason


def _wait_for(condition, timeout=60.0):
    import time
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.005)


def test_a_command_ends_a_long_compiled_chunk_after_the_step_in_progress():
    """Chunks run up to CHUNK_SECONDS without returning to Python; Pause, Stop or a new learning
    rate must not wait for them: the kernel reads the control's flag before every step."""
    trainer = Trainer(small(training={"epochs": 100_000, "log_every": 10**9}))
    control = RunControl()
    order, starts = trainer._epoch_order()
    assert starts[0] == 0 and starts[-1] == len(order)
    starts = np.concatenate([starts] + [starts[1:] + starts[-1] * k for k in range(1, 20000)])
    order = np.tile(order, 20000)
    n = len(starts) - 1                              # ~380,000 steps: tens of seconds of compiled work
    trainer.run_steps(order, starts, 0, 1, control)  # compiled (or loaded) before the measurement
    result = {}
    before = trainer.net.theta.copy()
    worker = threading.Thread(target=lambda: result.update(done=trainer.run_steps(order, starts, 1, n - 1,
                                                                                   control)[0]))
    worker.start()
    _wait_for(lambda: not np.array_equal(trainer.net.theta, before))   # the chunk is under way (no fixed sleep)
    control.pause()
    worker.join(timeout=30)
    assert 0 < result["done"] < n - 1 and not trainer.chunk_diverged
    # an interrupted chunk measured its last step (what the pause record shows)
    assert np.isfinite(trainer.layer_stats).all() and (trainer.layer_stats[:, STAT_GRAD_KERNEL] > 0).all()


def test_interrupted_chunks_give_the_same_weights():
    """A chunk cut short by a command and resumed trains exactly what an uninterrupted run trains."""
    _, straight = run(small(training={"epochs": 500}))
    control = RunControl()
    trainer = Trainer(small(training={"epochs": 500}))
    events = []
    worker = threading.Thread(target=lambda: events.extend(trainer.run(control)))
    worker.start()
    interrupts = 0
    while worker.is_alive():   # what every command does to a running chunk, a thousand times a second
        control.flags[0] = 1
        interrupts += 1
        time.sleep(0.001)
    worker.join(timeout=60)
    assert interrupts > 20 and events[-1].status == "finished"
    for name in straight.weights:
        assert np.array_equal(events[-1].weights[name], straight.weights[name]), name


def test_run_again_after_a_stop_continues_the_unfinished_epoch():
    """A stopped trainer's next run() picks up at the batch it stopped at, with the same batch order."""
    _, straight = run(small())
    trainer = Trainer(small(training={"log_every": 1}))
    control = RunControl()
    for event in trainer.run(control):
        if isinstance(event, StepMetrics) and event.step == 7:   # mid-epoch (19 steps per epoch)
            control.stop()
    assert event.status == "stopped" and trainer.step == 7 and trainer.epoch == 0
    fin = list(trainer.run())[-1]
    assert fin.status == "finished" and fin.step == straight.step
    for name in straight.weights:
        assert np.array_equal(fin.weights[name], straight.weights[name]), name


def test_without_validation_data_the_performance_schedule_watches_the_training_loss():
    exp = small(data={"validation_split": 0.0}, optimizer={"name": "sgd", "learning_rate": 0.05},
                schedule={"name": "performance", "patience": 1, "factor": 0.5},
                model={"layers": [{"units": 16, "activation": "elu"}]}, training={"epochs": 6})
    epochs = [e for e in run(exp)[0] if isinstance(e, EpochEnd)]
    assert all(np.isnan(e.val_loss) for e in epochs)
    losses = [e.train_loss for e in epochs]
    assert all(b < a for a, b in zip(losses, losses[1:]))        # the training loss keeps falling ...
    assert [e.learning_rate for e in epochs] == [0.05] * 6       # ... so the rate stays (it used to halve every epoch)


# ----------------------------------------------------------------------------- dead and comatose units

# Four units on three non-negative rows.  Pre-activations: unit 0 positive everywhere; unit 1
# negative everywhere (a leaky unit still outputs something: comatose, not dead); unit 2 exactly
# 0 everywhere (output 0 for every activation: dead, and comatose); unit 3 positive on one row.
PROBE_ROWS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
KERNEL = np.array([[1.0, -1.0, 0.0, 1.0],
                   [1.0, -1.0, 0.0, -1.0]])


def _probe_counts(activation, batch_norm="none", beta=0.0, alpha=0.1):
    from tests.helpers import network
    layer = {"units": 4, "activation": activation, "batch_norm": batch_norm, "use_bias": batch_norm == "none"}
    if activation in ("leaky_relu", "elu"):
        layer["activation_params"] = {"alpha": alpha}
    net = network([layer], n_inputs=2)
    net.tensor("layers.0.kernel")[...] = KERNEL
    if batch_norm != "none":
        net.tensor("layers.0.bn.beta")[...] = beta
    stats = net.probe(PROBE_ROWS)
    return int(stats["dead"][0]), int(stats["comatose"][0])


@pytest.mark.parametrize("activation,expected", [("relu", (2, 2)), ("leaky_relu", (1, 2)), ("elu", (1, 2))])
def test_dead_units_output_zero_comatose_units_have_no_positive_input(activation, expected):
    assert _probe_counts(activation) == expected     # (dead, comatose)


def test_with_batch_norm_after_the_activation_both_are_counted_on_the_activation_itself():
    # BN after a ReLU with beta 0.5 turns each constant-0 column into 0.5: counted after BN, no
    # unit would be dead.  BN standardizes unit 3's column (0, 1, 0) -> it stays awake.
    assert _probe_counts("relu", "after", beta=0.5) == (2, 2)
    assert _probe_counts("leaky_relu", "after", beta=0.5) == (1, 2)


def test_with_batch_norm_before_the_activation_comatose_reads_the_normalized_input():
    # BN before: the activation's input is beta + gamma * standardized z; beta = -10 pushes every
    # unit below 0 on every row, so all four are comatose, and a ReLU's are all dead
    assert _probe_counts("relu", "before", beta=-10.0) == (4, 4)
    assert _probe_counts("leaky_relu", "before", beta=-10.0) == (0, 4)
