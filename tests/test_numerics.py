"""Numerical edge cases: extreme logits, degenerate batches, precision modes, activations."""
import math

import numpy as np
import pytest

from engine.catalog.activations import ACTIVATIONS, hidden_activation_names
from engine.errors import ExperimentError
from engine.kernels import activations as K
from engine.kernels.layout import LOSS_BINARY_CE, LOSS_SOFTMAX_CE
from engine.kernels.network import loss_and_delta

from helpers import network, random_problem


def reference(name, z, params):
    """Straight NumPy definitions, written independently of the kernels."""
    a = params.get("alpha", 0.0)
    return {
        "linear": lambda: z,
        "logistic": lambda: 1 / (1 + np.exp(-z)),
        "tanh": lambda: np.tanh(z),
        "relu": lambda: np.maximum(z, 0),
        "leaky_relu": lambda: np.where(z > 0, z, a * z),
        "rrelu": lambda: np.where(z > 0, z, (params["lower"] + params["upper"]) / 2 * z),
        "prelu": lambda: np.where(z > 0, z, params["alpha_initializer"] * z),
        "elu": lambda: np.where(z > 0, z, a * (np.exp(z) - 1)),
        "selu": lambda: 1.0507009873554805 * np.where(z > 0, z, 1.6732632423543772 * (np.exp(z) - 1)),
        "gelu": lambda: 0.5 * z * (1 + np.vectorize(math.erf)(z / np.sqrt(2))),
        "swish": lambda: z / (1 + np.exp(-z)),
    }[name]()


@pytest.mark.parametrize("name", hidden_activation_names())
def test_activation_values_match_their_definitions(name):
    """One linear-kernel layer with identity weights exposes the activation (inference mode)."""
    act = ACTIVATIONS.get(name)
    params = {k: p.default for k, p in act.params.items()}
    net = network([{"units": 3, "activation": name, "activation_params": params, "use_bias": False}], n_inputs=3)
    net.tensor("layers.0.kernel")[...] = np.eye(3)
    net.tensor("layers.1.kernel")[...] = np.eye(3)
    net.tensor("layers.1.bias")[...] = 0
    z = np.linspace(-4, 4, 30).reshape(10, 3)
    expected = reference(name, z, params)
    logits = np.log(net.predict(z))  # identity output layer + softmax: log-probabilities = a - logsumexp(a)
    shifted = expected - np.log(np.exp(expected).sum(axis=1, keepdims=True))
    # rtol=0: np.allclose's default 1e-5 relative slack let a SELU alpha truncated to 1.6733 pass
    assert np.allclose(logits, shifted, rtol=0, atol=1e-9)


NON_DEFAULT_PARAMS = {"leaky_relu": {"alpha": 0.2}, "elu": {"alpha": 0.3}, "prelu": {"alpha_initializer": 0.1},
                      "rrelu": {"lower": 0.05, "upper": 0.15}}


@pytest.mark.parametrize("name", sorted(NON_DEFAULT_PARAMS))
def test_activation_values_with_non_default_parameters(name):
    """The defaults (ELU's alpha = 1) hide a kernel that ignores its parameter: check other values too."""
    act = ACTIVATIONS.get(name)
    params = {**{k: p.default for k, p in act.params.items()}, **NON_DEFAULT_PARAMS[name]}
    assert params != {k: p.default for k, p in act.params.items()}
    net = network([{"units": 3, "activation": name, "activation_params": params, "use_bias": False}], n_inputs=3)
    net.tensor("layers.0.kernel")[...] = np.eye(3)
    net.tensor("layers.1.kernel")[...] = np.eye(3)
    net.tensor("layers.1.bias")[...] = 0
    z = np.linspace(-4, 4, 30).reshape(10, 3)
    expected = reference(name, z, params)
    shifted = expected - np.log(np.exp(expected).sum(axis=1, keepdims=True))
    assert np.allclose(np.log(net.predict(z)), shifted, rtol=0, atol=1e-9)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]])
    delta = np.zeros_like(logits)
    loss = loss_and_delta(LOSS_SOFTMAX_CE, logits, np.array([0, 0]), np.zeros((0, 1)), np.arange(2), delta)
    assert math.isfinite(loss) and loss == pytest.approx(2e4 / 2)
    assert np.all(np.isfinite(delta))
    assert delta[1, 0] == pytest.approx(-0.5) and delta[1, 1] == pytest.approx(0.5)


def test_binary_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4], [-1e4]])
    delta = np.zeros_like(logits)
    loss = loss_and_delta(LOSS_BINARY_CE, logits, np.array([0, 0]), np.zeros((0, 1)), np.arange(2), delta)
    assert loss == pytest.approx(1e4 / 2) and np.all(np.isfinite(delta))


@pytest.mark.parametrize("placement", ["before", "after"])
def test_batch_norm_on_identical_rows_stays_finite(placement):
    net = network([{"units": 5, "activation": "elu", "batch_norm": placement}], dtype="float32")
    x = np.ones((8, 3))
    stats = net.probe(x)
    assert np.all(np.isfinite(stats["mean"])) and np.all(np.isfinite(stats["std"]))
    assert np.all(np.isfinite(net.predict(x)))


def test_float32_and_float64_train_to_nearly_the_same_weights():
    from engine.spec.experiment import resolve_experiment
    from engine.training.trainer import Trainer

    def final(dtype):
        exp = resolve_experiment({"seed": 2, "data": {"name": "moons", "n_samples": 200},
                                  "model": {"layers": [{"units": 8, "activation": "tanh"}]},
                                  "optimizer": {"name": "sgd", "learning_rate": 0.1},
                                  "training": {"epochs": 2, "dtype": dtype, "shuffle": False}})
        return list(Trainer(exp).run())[-1].weights

    w32, w64 = final("float32"), final("float64")
    assert w32["layers.0.kernel"].dtype == np.float32 and w64["layers.0.kernel"].dtype == np.float64
    for name in w64:
        assert np.allclose(w32[name], w64[name], atol=1e-4), name


def test_a_network_too_large_for_memory_is_refused_before_allocation(monkeypatch):
    monkeypatch.setenv("DESCENT_MEMORY_LIMIT_MB", "10")
    with pytest.raises(ExperimentError, match=r"parameters and would need about .* GiB.*DESCENT_MEMORY_LIMIT_MB"):
        network([{"units": 2000}, {"units": 2000}], n_inputs=784)
