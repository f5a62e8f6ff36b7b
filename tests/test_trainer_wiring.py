"""The trainer's wiring, replayed step by step against the kernels called by hand.

The kernels are checked against their equations elsewhere (test_optimizers,
test_gradients); what those tests cannot see is the trainer handing them the
wrong thing: ``clipnorm`` in the global-norm slot, or 1cycle's momentum
computed and reported but never given to the update.  Here each compiled step
of a real Trainer is repeated in Python with the same batch: gradient
(loss_and_gradient), clipping (clip_gradients with the experiment's values)
and update (apply_update with the schedule's rate and momentum); the weights
must agree after every step.
"""
import numpy as np
import pytest

from engine.kernels.network import MODE_TRAIN, loss_and_gradient
from engine.kernels.optim import H_MOMENTUM, apply_update, clip_gradients
from engine.kernels.rng import new_state
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer

STEPS = 12


def _trainer(optimizer, schedule=None):
    exp = resolve_experiment({
        "seed": 5, "data": {"name": "moons", "n_samples": 200, "noise": 0.2},
        "model": {"layers": [{"units": 6, "activation": "tanh"}, {"units": 5, "activation": "tanh"}]},
        "optimizer": optimizer, "schedule": schedule or {"name": "constant"},
        "training": {"epochs": 3, "batch_size": 16, "dtype": "float64", "log_every": 1}})
    return Trainer(exp)


def _replay(t: Trainer, clip: tuple[float, float, float]):
    """Run STEPS compiled steps one at a time and repeat each by hand; returns the hand-passed momenta."""
    net = t.net
    order, starts = t._epoch_order()
    slots = t.opt_state.slots.copy()
    theta = net.theta.copy()
    hyper = t.optimizer.hyper_array().copy()
    base_momentum = hyper[H_MOMENTUM]
    ws, uws, xb = net.workspace(t.batch_size)
    momenta = []
    for k in range(STEPS):
        rows = order[starts[k]:starts[k + 1]]
        grad = np.zeros_like(theta)
        loss_and_gradient(net.ints, net.floats, theta, grad, net.buffers.copy(), t.x, t.y_int, t.y_float,
                          net.loss_code, rows, new_state(1), ws, uws, xb, 0, MODE_TRAIN)
        clip_gradients(grad, net.tensor_bounds(), *clip)
        lr = float(t.schedule.learning_rates(k, 1)[0])
        cycled = t.schedule.momenta(k, 1)
        hyper[H_MOMENTUM] = base_momentum if cycled is None else float(cycled[0])
        momenta.append(hyper[H_MOMENTUM])
        for lo, hi in net.trainable_ranges():
            apply_update(t.optimizer.kernel_code, theta, grad, slots, lo, hi, k + 1, lr, hyper)
        done = t.run_steps(order, starts, k, 1)[0]
        assert done == 1
        np.testing.assert_allclose(net.theta, theta, rtol=1e-10, atol=1e-13, err_msg=f"step {k + 1}")
    return momenta


@pytest.mark.parametrize("clipnorm,global_clipnorm", [(0.05, 0.0), (0.0, 0.05), (0.08, 0.1)])
def test_clipping_reaches_the_kernel_in_its_own_slot(clipnorm, global_clipnorm):
    """Per-tensor and global clipping differ (thresholds small enough that every step clips),
    so swapping the two settings on their way to the kernel changes the weights."""
    opt = {"name": "momentum", "learning_rate": 0.5, "momentum": 0.9}
    if clipnorm:
        opt["clipnorm"] = clipnorm
    if global_clipnorm:
        opt["global_clipnorm"] = global_clipnorm
    _replay(_trainer(opt), (0.0, clipnorm, global_clipnorm))


def test_clipvalue_reaches_the_kernel():
    _replay(_trainer({"name": "sgd", "learning_rate": 0.5, "clipvalue": 0.01}), (0.01, 0.0, 0.0))


def test_onecycle_momentum_is_what_the_update_uses():
    """SGD with momentum 0.9 under 1cycle: every update uses the schedule's momentum of that step
    (it differs from 0.9 on every step of the cycle, so a dropped value shows)."""
    t = _trainer({"name": "momentum", "learning_rate": 0.05, "momentum": 0.9},
                 {"name": "onecycle", "max_lr": 0.3})
    momenta = _replay(t, (0.0, 0.0, 0.0))
    assert all(m != 0.9 for m in momenta) and len(set(momenta)) == STEPS
