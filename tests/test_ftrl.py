"""FTRL-Proximal: McMahan et al.'s zero rule, and the restart of its first step.

The references here are McMahan et al. (2013), Algorithm 1, written out per
coordinate in plain Python floats, independently of the kernel.
"""
import dataclasses
import math

import numpy as np
import pytest

from engine.catalog.optimizers import make_optimizer
from engine.data import load_dataset
from engine.events import RunFinished
from engine.kernels import optim
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer


def mcmahan_weight(z, n, lr, l1, beta=0.0, l2=0.0):
    """Algorithm 1's weight from the per-coordinate state (z, n): 0 while |z| <= l1, and 0 for a
    coordinate whose denominator is 0 (no gradient seen, beta = l2 = 0); Keras' 2*l2 convention."""
    denominator = (beta + math.sqrt(n)) / lr + 2 * l2
    if abs(z) <= l1 or denominator == 0.0:
        return 0.0
    return -(z - math.copysign(l1, z)) / denominator


def mcmahan_step(w, z, n, g, lr, l1):
    """One update of Algorithm 1 (power -1/2, beta = l2 = 0): the new (w, z, n)."""
    n_new = n + g * g
    sigma = (math.sqrt(n_new) - math.sqrt(n)) / lr
    z_new = z + g - sigma * w
    return mcmahan_weight(z_new, n_new, lr, l1), z_new, n_new


def test_kernel_on_hand_set_values_gives_algorithm_1s_weights():
    lr, l1 = 0.5, 0.1
    #        never seen   inside l1   first gradient   old, no new gradient   old, outside l1
    w = np.array([0.3, 0.0, 0.2, -0.1, 0.4])
    z = np.array([0.0, 0.05, 0.0, 0.07, -0.8])
    n = np.array([0.0, 0.0, 0.0, 0.25, 0.25])
    g = np.array([0.0, 0.0, 0.2, 0.0, 0.3])
    expected = [mcmahan_step(*args, lr, l1) for args in zip(w, z, n, g)]
    slots = np.stack([n, z])
    hyper = make_optimizer({"name": "ftrl", "learning_rate": lr, "l1": l1,
                            "initial_accumulator_value": 0.0}).hyper_array()
    optim.ftrl_kernel(w, g, slots, 0, w.size, 1, lr, hyper)
    assert np.all(np.isfinite(w))                   # the first two were 0/0 before
    assert w[0] == 0.0 and w[1] == 0.0 and w[3] == 0.0
    assert w.tolist() == pytest.approx([e[0] for e in expected], rel=1e-14, abs=0.0)
    assert slots[1].tolist() == pytest.approx([e[1] for e in expected], rel=1e-14, abs=0.0)
    assert slots[0].tolist() == [e[2] for e in expected]


def test_a_zero_denominator_with_shrinkage_gives_weight_zero_not_infinity():
    # l2_shrinkage moves z even without a gradient; with n = 0 and nothing else in the
    # denominator the weight is still the one of a coordinate without history: 0
    opt = make_optimizer({"name": "ftrl", "learning_rate": 0.1, "initial_accumulator_value": 0.0,
                          "l2_shrinkage": 0.5})
    theta, state = np.array([0.7, -0.2]), opt.build(2)
    opt.update_step(theta, np.zeros(2), state)
    assert theta.tolist() == [0.0, 0.0]
    assert state.slots[1].tolist() == pytest.approx([0.7, -0.2])   # z = 2 * shrinkage * w


def _constant_zero_feature(exp):
    data = load_dataset(exp["data"], exp["seed"])

    def widen(x):
        return np.ascontiguousarray(np.hstack([x, np.zeros((x.shape[0], 1), x.dtype)]))

    return dataclasses.replace(data, x_train=widen(data.x_train), x_val=widen(data.x_val),
                               x_test=widen(data.x_test), mean=np.append(data.mean, 0.0),
                               std=np.append(data.std, 1.0),
                               feature_names=tuple(data.feature_names) + ("always 0",))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_constant_zero_input_feature_trains_without_nan(dtype):
    exp = resolve_experiment({"seed": 4, "data": {"name": "moons", "n_samples": 200},
                              "model": {"layers": [{"units": 8, "activation": "elu"}]},
                              "optimizer": {"name": "ftrl", "learning_rate": 0.1, "l1": 0.001,
                                            "initial_accumulator_value": 0.0},
                              "training": {"epochs": 2, "batch_size": 20, "dtype": dtype}})
    trainer = Trainer(exp, dataset=_constant_zero_feature(exp))
    last = list(trainer.run())[-1]
    assert isinstance(last, RunFinished) and last.status == "finished", last.reason
    kernel = last.weights["layers.0.kernel"]
    assert all(np.all(np.isfinite(w)) for w in last.weights.values())
    assert kernel.shape[0] == 3 and np.all(kernel[2] == 0.0)      # the feature never seen: weight 0
    assert np.any(kernel[:2] != 0.0)                              # the others did learn


# ---------------------------------------------------------------- the restart of the first step

def _one_step(theta0, grad, **hyper):
    opt = make_optimizer({"name": "ftrl", "learning_rate": 0.1, **hyper})   # initial accumulator 0.1
    theta, state = theta0.copy(), opt.build(theta0.size)
    opt.update_step(theta, grad.copy(), state)
    return theta


def test_the_first_step_forgets_the_initial_weights_unless_told_to_keep_them():
    rng = np.random.default_rng(0)
    w0 = rng.normal(0.0, 0.05, 2000)         # He-like initial weights
    g = rng.normal(0.0, 1e-3, 2000)          # small gradients: g*g << initial_accumulator_value
    restarted, from_zero = _one_step(w0, g), _one_step(np.zeros_like(w0), g)
    norm = np.linalg.norm
    assert norm(restarted) < 0.05 * norm(w0)                            # the kernel norm collapses...
    assert norm(restarted - from_zero) < 1e-2 * norm(from_zero)         # ...to where a zero start goes
    n1 = 0.1 + g * g
    np.testing.assert_allclose(restarted, w0 * (1 - np.sqrt(0.1 / n1)) - 0.1 * g / np.sqrt(n1), rtol=1e-9)
    kept = _one_step(w0, g, keep_initial_weights=True)
    np.testing.assert_allclose(kept, w0 - 0.1 * g / np.sqrt(n1), rtol=1e-12)   # a plain first step from w0
    assert abs(norm(kept) / norm(w0) - 1) < 0.01
    # nothing to forget from a zero start: the flag changes nothing there
    assert np.array_equal(_one_step(np.zeros_like(w0), g, keep_initial_weights=True), from_zero)


def _kernel_norms_after(steps, **hyper):
    exp = resolve_experiment({"seed": 5, "data": {"name": "moons", "n_samples": 400},
                              "model": {"layers": [{"units": 64, "activation": "elu", "initializer": "he_normal"},
                                                   {"units": 64, "activation": "elu", "initializer": "he_normal"}]},
                              "optimizer": {"name": "ftrl", "learning_rate": 0.1, **hyper},
                              "training": {"epochs": 1, "batch_size": 32, "max_steps": steps}})
    trainer = Trainer(exp)
    before = {t.name: np.linalg.norm(trainer.net.tensor(t.name)) for t in trainer.net.tensors
              if t.name.endswith(".kernel")}
    last = list(trainer.run())[-1]
    return {name: (value, np.linalg.norm(last.weights[name])) for name, value in before.items()}


def test_one_training_step_of_ftrl_restarts_a_deep_net_from_near_zero():
    restarted = _kernel_norms_after(1)
    kept = _kernel_norms_after(1, keep_initial_weights=True)
    for name, (initial, after) in restarted.items():
        # the hidden kernels, whose gradients are small, keep under a fifth of their norm; the
        # output kernel, with larger gradients, about half
        assert after < (0.6 if name == "layers.2.kernel" else 0.2) * initial, (name, initial, after)
        assert 0.9 * initial < kept[name][1] < 1.1 * initial, (name, kept[name])
