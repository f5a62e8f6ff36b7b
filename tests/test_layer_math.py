"""Layer arithmetic and diagnostics on hand-set weights with answers known in advance.

Finite differences (test_gradients) check that the backward pass matches the
forward pass, not that the forward pass is the right function: dropout
without its 1/keep scaling or BN moving averages with the momentum swapped
are perfectly consistent with their own gradients.  These tests pin the
values themselves: the exact dropout mask, Monte Carlo dropout against the
plain prediction on a linear net, BN's moving statistics after one step, and
the probe's dead units, saturation and spread, and a run's gradient-norm and
update-ratio records.
"""
import numpy as np
import pytest

from engine.events import StepMetrics
from engine.kernels.network import MODE_TRAIN, loss_and_gradient
from engine.kernels.rng import new_state
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer

from helpers import network, random_problem


def _linear_regression_net(units, rate, n_inputs):
    """Hidden linear layer with identity kernel and dropout, identity linear output layer, no biases."""
    net = network([{"units": units, "activation": "linear", "dropout": rate, "use_bias": False}],
                  n_inputs=n_inputs, task="regression", n_classes=0, n_targets=units, output="linear",
                  data={"name": "regression_1d"})
    net.tensor("layers.0.kernel")[...] = np.eye(n_inputs, units)
    net.tensor("layers.1.kernel")[...] = np.eye(units)
    net.tensor("layers.1.bias")[...] = 0
    return net


def test_dropout_mask_is_zero_or_one_over_keep():
    """Inverted dropout: a kept unit is multiplied by exactly 1/keep, a dropped one is 0."""
    rate = 0.2
    net = _linear_regression_net(4, rate, 4)
    samples = net.mc_predict(np.ones((50, 4)), samples=20, seed=3)   # each output = that unit's mask value
    values = set(np.unique(samples).tolist())
    assert values == {0.0, 1.0 / (1.0 - rate)}
    kept = np.mean(samples != 0)
    assert 0.7 < kept < 0.9                                            # about 1 - rate of them kept


def test_mc_dropout_mean_equals_the_plain_prediction_on_a_linear_net():
    """On a linear net, E[dropout(h)] = h exactly when kept units are scaled by 1/keep, so the
    Monte Carlo mean converges to the prediction without dropout (unscaled: keep times it)."""
    rng = np.random.default_rng(0)
    net = _linear_regression_net(6, 0.5, 3)
    net.tensor("layers.0.kernel")[...] = rng.normal(size=(3, 6))
    net.tensor("layers.1.kernel")[...] = rng.normal(size=(6, 6))
    x = rng.normal(size=(5, 3))
    plain = net.predict(x)
    mean = net.predict(x, mc_samples=20_000, seed=1)
    scale = np.abs(plain).max()
    assert np.max(np.abs(mean - plain)) < 0.05 * scale            # MC error ~1% of the scale; a missing 1/keep: 50%


@pytest.mark.parametrize("placement", ["before", "after"])
def test_bn_moving_statistics_after_one_step(placement):
    """moving = momentum * old + (1 - momentum) * batch statistic (biased variance, as Keras)."""
    momentum = 0.8   # far from 0.5 so that swapping momentum and 1 - momentum shows
    net = network([{"units": 4, "activation": "relu", "batch_norm": placement, "bn_momentum": momentum}])
    x, y = random_problem(n=16)
    old_mean = np.array([0.5, -1.0, 2.0, 0.0])
    old_var = np.array([1.5, 0.5, 2.0, 1.0])
    net.tensor("layers.0.bn.moving_mean")[...] = old_mean
    net.tensor("layers.0.bn.moving_variance")[...] = old_var
    z = x @ net.tensor("layers.0.kernel")
    if "layers.0.bias" in net.by_name:
        z = z + net.tensor("layers.0.bias")
    batch = z if placement == "before" else np.maximum(z, 0)      # BN after the activation sees relu(z)
    y_int, y_float = net.split_targets(y)
    ws, uws, xb = net.workspace(len(x))
    grad = np.zeros_like(net.theta)
    loss_and_gradient(net.ints, net.floats, net.theta, grad, net.buffers, x, y_int, y_float, net.loss_code,
                      np.arange(len(x)), new_state(1), ws, uws, xb, 0, MODE_TRAIN)
    np.testing.assert_allclose(net.tensor("layers.0.bn.moving_mean"),
                               momentum * old_mean + (1 - momentum) * batch.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(net.tensor("layers.0.bn.moving_variance"),
                               momentum * old_var + (1 - momentum) * batch.var(axis=0), rtol=1e-12)


# ---------------------------------------------------------------- the probe's diagnostics

def _probe_net(activation, placement="none", units=3):
    net = network([{"units": units, "activation": activation, "batch_norm": placement}], n_inputs=units)
    net.tensor("layers.0.kernel")[...] = np.eye(units)
    if "layers.0.bias" in net.by_name:
        net.tensor("layers.0.bias")[...] = 0
    return net


@pytest.mark.parametrize("placement", ["none", "after"])
def test_dead_units_on_hand_set_weights(placement):
    """Unit 0's input is negative on every probe row: its ReLU output is 0 everywhere (dead).
    With BN after the activation, BN's shift (beta) makes its *normalized* output non-zero,
    but the unit is dead all the same: counting happens on the activation output."""
    net = _probe_net("relu", placement)
    if placement == "after":
        net.tensor("layers.0.bn.beta")[...] = [0.3, 0.1, -0.2]
    rng = np.random.default_rng(2)
    x = np.column_stack([-1 - rng.random(40), rng.normal(size=40), 1 + rng.random(40)])
    stats = net.probe(x)
    assert stats["dead"][0] == 1
    net.tensor("layers.0.kernel")[0, 0] = -1.0                      # unit 0 now sees 1 + ..., alive
    assert net.probe(x)["dead"][0] == 0


@pytest.mark.parametrize("activation,z,expected", [
    ("logistic", [-6.0, -3.0, 0.0], 1 / 3),     # sigmoid: 0.0025 (saturated), 0.047 and 0.5 (not)
    ("tanh", [2.5, 2.0, -2.6], 2 / 3),          # tanh: 0.987 and -0.989 (saturated), 0.964 (not)
])
def test_saturation_is_within_one_percent_of_the_range(activation, z, expected):
    net = _probe_net(activation)
    x = np.tile(z, (8, 1))
    assert net.probe(x)["saturated"][0] == pytest.approx(expected)


def test_activation_mean_and_spread_of_the_probe():
    net = _probe_net("linear")
    x = np.random.default_rng(3).normal(loc=2.0, size=(30, 3))     # a mean far from 0
    stats = net.probe(x)
    assert stats["mean"][0] == pytest.approx(x.mean(), rel=1e-12)
    assert stats["std"][0] == pytest.approx(x.std(), rel=1e-10)


def test_gradient_norm_and_update_ratio_records_match_the_weights():
    """Plain SGD without clipping: the kernel's step is -lr * gradient, so the recorded kernel
    gradient norm is |dW| / lr and the update ratio |dW| / |W| (new weights), per layer."""
    lr = 0.1
    exp = resolve_experiment({"seed": 4, "data": {"name": "moons", "n_samples": 100},
                              "model": {"layers": [{"units": 5, "activation": "tanh"}]},
                              "optimizer": {"name": "sgd", "learning_rate": lr},
                              "training": {"epochs": 1, "batch_size": 20, "log_every": 1, "dtype": "float64"}})
    t = Trainer(exp, max_steps=1)
    kernels = [f"layers.{i}.kernel" for i in range(t.net.n_layers)]
    before = {k: t.net.tensor(k).copy() for k in kernels}
    record = next(e for e in t.run() if isinstance(e, StepMetrics))
    assert record.step == 1
    for i, k in enumerate(kernels):
        moved = np.linalg.norm(t.net.tensor(k) - before[k])
        assert moved > 0
        assert record.grad_norm[i] == pytest.approx(moved / lr, rel=1e-9)
        assert record.update_ratio[i] == pytest.approx(moved / np.linalg.norm(t.net.tensor(k)), rel=1e-9)
