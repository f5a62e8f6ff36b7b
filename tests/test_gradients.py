"""Backpropagation checked against central finite differences (float64).

Every hidden activation, both batch-norm placements, dropout (with a fixed
mask: the random state is reset before each evaluation), alpha dropout,
RReLU with fixed slopes, every loss and every penalty.
"""
import numpy as np
import pytest

from engine.catalog.activations import ACTIVATIONS, hidden_activation_names
from engine.kernels.network import MODE_TRAIN, loss_and_gradient
from engine.kernels.rng import new_state

from helpers import network, random_problem

TOLERANCE = 1e-6


def check_gradient(net, x, y, step=1e-6):
    """Max relative error between backprop and central differences over all of theta."""
    y_int, y_float = net.split_targets(y)
    ws, uws, xb = net.workspace(len(x))
    rows = np.arange(len(x), dtype=np.int64)

    def loss_grad(theta):
        grad = np.zeros_like(theta)
        loss, reg = loss_and_gradient(net.ints, net.floats, theta, grad, net.buffers.copy(), x, y_int, y_float,
                                      net.loss_code, rows, new_state(11), ws, uws, xb, 0, MODE_TRAIN)
        return loss + reg, grad

    theta = net.theta.copy()
    _, analytic = loss_grad(theta)
    numeric = np.zeros_like(theta)
    for j in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus[j] += step
        minus[j] -= step
        numeric[j] = (loss_grad(plus)[0] - loss_grad(minus)[0]) / (2 * step)
    scale = np.linalg.norm(numeric) + np.linalg.norm(analytic)
    assert scale > 0, "a zero gradient checks nothing"
    return np.linalg.norm(numeric - analytic) / scale


def layer(activation, **kw):
    return dict({"units": 4, "activation": activation}, **kw)


@pytest.mark.parametrize("activation", hidden_activation_names())
@pytest.mark.parametrize("batch_norm", ["none", "before", "after"])
def test_every_activation_with_every_bn_placement(activation, batch_norm):
    net = network([layer(activation, batch_norm=batch_norm), layer(activation, batch_norm=batch_norm)])
    x, y = random_problem()
    assert check_gradient(net, x, y) < TOLERANCE


@pytest.mark.parametrize("activation,params", [("elu", {"alpha": 0.3}), ("elu", {"alpha": 2.5}),
                                               ("leaky_relu", {"alpha": 0.2}), ("prelu", {"alpha_initializer": 0.1})])
@pytest.mark.parametrize("batch_norm", ["none", "after"])
def test_activations_with_non_default_parameters(activation, params, batch_norm):
    """alpha = 1 (ELU's default) makes 'out + alpha' and 'out + 1' equal: other values expose a kernel
    that ignores its parameter."""
    net = network([layer(activation, activation_params=params, batch_norm=batch_norm),
                   layer(activation, activation_params=params)])
    x, y = random_problem()
    assert check_gradient(net, x, y) < TOLERANCE


@pytest.mark.parametrize("output,task,classes,targets", [("softmax", "classification", 3, 0),
                                                        ("logistic", "classification", 2, 0),
                                                        ("linear", "regression", 0, 2)])
def test_every_loss(output, task, classes, targets):
    data = {"name": "regression_1d"} if task == "regression" else None
    net = network([layer("tanh")], task=task, n_classes=classes, n_targets=max(targets, 1), output=output,
                  data=data)
    x, y = random_problem(classes=max(classes, 2), regression_targets=targets)
    assert check_gradient(net, x, y) < TOLERANCE


def test_dropout_with_a_fixed_mask():
    net = network([layer("elu", dropout=0.3), layer("relu", dropout=0.5, batch_norm="before")])
    x, y = random_problem()
    assert check_gradient(net, x, y) < TOLERANCE


def test_alpha_dropout_for_selu():
    net = network([layer("selu", dropout=0.2, alpha_dropout=True), layer("selu", dropout=0.1, alpha_dropout=True)])
    x, y = random_problem()
    assert check_gradient(net, x, y) < TOLERANCE


def test_rrelu_with_fixed_slopes_and_prelu_slopes():
    net = network([layer("rrelu", activation_params={"lower": 0.1, "upper": 0.4}), layer("prelu")])
    x, y = random_problem()
    assert "layers.1.prelu.alpha" in net.by_name
    assert check_gradient(net, x, y) < TOLERANCE


@pytest.mark.parametrize("penalty", [{"l1": 0.01}, {"l2": 0.05}, {"l1": 0.01, "l2": 0.02}])
def test_penalties(penalty):
    net = network([layer("tanh", **penalty), layer("relu", **penalty)],
                  )
    x, y = random_problem()
    assert check_gradient(net, x, y) < TOLERANCE


def test_frozen_layer_gets_no_gradient_and_lower_layers_still_do():
    net = network([layer("tanh"), layer("tanh", trainable=False), layer("tanh")])
    x, y = random_problem()
    y_int, y_float = net.split_targets(y)
    ws, uws, xb = net.workspace(len(x))
    grad = np.zeros_like(net.theta)
    loss_and_gradient(net.ints, net.floats, net.theta, grad, net.buffers, x, y_int, y_float, net.loss_code,
                      np.arange(len(x)), new_state(1), ws, uws, xb, net.lowest_trainable_layer(), MODE_TRAIN)
    frozen = net.by_name["layers.1.kernel"]
    assert not np.any(grad[frozen.offset:frozen.offset + 16])
    below = net.by_name["layers.0.kernel"]
    assert np.any(grad[below.offset:below.offset + 12])
    ranges = net.trainable_ranges()
    assert all(not (lo <= frozen.offset < hi) for lo, hi in ranges)


def test_registry_metadata_is_consistent():
    for name, act in ACTIVATIONS.items():
        assert act.name == name
        assert act.hidden or act.output
