"""Optimizers and gradient clipping.

Every test that takes ``name`` runs for each registered optimizer, so a new
registry entry is exercised at once (and fails until it has golden numbers).
The golden numbers are re-derived here in plain Python floats, one straight
line of arithmetic per optimizer, independently of the kernels.
"""
import json
import math

import numpy as np
import pytest

from engine.errors import ExperimentError
from engine.kernels import optim
from engine.catalog.optimizers import (CLIP_KEYS, OPTIMIZERS, Adam, Momentum, OptimizerState,
                               make_optimizer, optimizer_from_config)

NAMES = OPTIMIZERS.names()
THETA0 = [0.3, -0.7, 1.2]
GRADS = [[0.5, -1.0, 2.0], [-0.25, 0.5, 1.5], [1.0, 0.0, -0.75]]


# ---------------------------------------------------------------- references
# Each takes the configuration and returns theta after each of the 3 steps.

def ref_sgd(c):
    lr, w, out = c["learning_rate"], list(THETA0), []
    for g in GRADS:
        w = [wi - lr * gi for wi, gi in zip(w, g)]
        out.append(w)
    return out


def ref_momentum(c):
    # the book's Equation 11-4 (m = beta*m - lr*g; theta += m): the same
    # trajectory as the torch form when the learning rate is constant
    lr, beta = c["learning_rate"], c.get("momentum", 0.9)
    w, m, out = list(THETA0), [0.0] * 3, []
    for g in GRADS:
        m = [beta * mi - lr * gi for mi, gi in zip(m, g)]
        w = [wi + mi for wi, mi in zip(w, m)]
        out.append(w)
    return out


def ref_nesterov(c):
    lr, mu = c["learning_rate"], c.get("momentum", 0.9)
    w, b, out = list(THETA0), [0.0] * 3, []
    for g in GRADS:
        b = [mu * bi + gi for bi, gi in zip(b, g)]
        w = [wi - lr * (gi + mu * bi) for wi, gi, bi in zip(w, g, b)]
        out.append(w)
    return out


def ref_adagrad(c):
    lr, eps = c["learning_rate"], c.get("epsilon", 1e-10)
    s = [c.get("initial_accumulator_value", 0.0)] * 3
    w, out = list(THETA0), []
    for g in GRADS:
        s = [si + gi * gi for si, gi in zip(s, g)]
        w = [wi - lr * gi / (math.sqrt(si) + eps) for wi, gi, si in zip(w, g, s)]
        out.append(w)
    return out


def ref_rmsprop(c):
    lr, rho, eps = c["learning_rate"], c.get("rho", 0.9), c.get("epsilon", 1e-8)
    mu, centered = c.get("momentum", 0.0), c.get("centered", False)
    w, s, mg, b, out = list(THETA0), [0.0] * 3, [0.0] * 3, [0.0] * 3, []
    for g in GRADS:
        for i in range(3):
            s[i] = rho * s[i] + (1 - rho) * g[i] ** 2
            if centered:
                mg[i] = rho * mg[i] + (1 - rho) * g[i]
                d = math.sqrt(s[i] - mg[i] ** 2) + eps
            else:
                d = math.sqrt(s[i]) + eps
            if mu > 0:
                b[i] = mu * b[i] + g[i] / d
                w[i] -= lr * b[i]
            else:
                w[i] -= lr * g[i] / d
        out.append(list(w))
    return out


def _ref_adam_family(c, nesterov, weight_decay):
    lr, b1, b2 = c["learning_rate"], c.get("beta_1", 0.9), c.get("beta_2", 0.999)
    eps, psi = c.get("epsilon", 1e-8), c.get("momentum_decay", 0.0)
    w, m, v, out = list(THETA0), [0.0] * 3, [0.0] * 3, []
    product = 1.0   # Dozat's product of the momentum schedule's coefficients so far

    def mu(t):
        return b1 * (1 - 0.5 * 0.96 ** (t * psi))

    for t, g in enumerate(GRADS, start=1):
        product *= mu(t)
        for i in range(3):
            w[i] -= lr * weight_decay * w[i]
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            v_hat = v[i] / (1 - b2 ** t)
            if nesterov and psi > 0:  # Dozat's Algorithm 2: the momentum coefficient warms up
                m_hat = mu(t + 1) * m[i] / (1 - product * mu(t + 1)) + (1 - mu(t)) * g[i] / (1 - product)
            elif nesterov:  # no schedule: look-ahead mix of next momentum and current gradient
                m_hat = b1 * m[i] / (1 - b1 ** (t + 1)) + (1 - b1) * g[i] / (1 - b1 ** t)
            else:
                m_hat = m[i] / (1 - b1 ** t)
            w[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(list(w))
    return out


def ref_adamax(c):
    lr, b1, b2 = c["learning_rate"], c.get("beta_1", 0.9), c.get("beta_2", 0.999)
    eps = c.get("epsilon", 1e-8)
    w, m, u, out = list(THETA0), [0.0] * 3, [0.0] * 3, []
    for t, g in enumerate(GRADS, start=1):
        for i in range(3):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            u[i] = max(b2 * u[i], abs(g[i]) + eps)
            w[i] -= lr / (1 - b1 ** t) * m[i] / u[i]
        out.append(list(w))
    return out


def ref_ftrl(c):
    # McMahan et al. Algorithm 1 with Keras' extras (power, shrinkage, 2*l2)
    lr, p = c["learning_rate"], -c.get("learning_rate_power", -0.5)
    l1, l2, beta = c.get("l1", 0.0), c.get("l2", 0.0), c.get("beta", 0.0)
    shrink = c.get("l2_shrinkage", 0.0)
    n = [c.get("initial_accumulator_value", 0.1)] * 3
    w, z, out = list(THETA0), [0.0] * 3, []
    if c.get("keep_initial_weights"):   # the initial proximal term centred on the initial weights
        z = [-(ni ** p) / lr * wi for ni, wi in zip(n, w)]
    for g in GRADS:
        for i in range(3):
            n_new = n[i] + g[i] ** 2
            sigma = (n_new ** p - n[i] ** p) / lr
            z[i] += g[i] + 2 * shrink * w[i] - sigma * w[i]
            n[i] = n_new
            if abs(z[i]) <= l1:
                w[i] = 0.0
            else:
                w[i] = (math.copysign(l1, z[i]) - z[i]) / ((beta + n_new ** p) / lr + 2 * l2)
        out.append(list(w))
    return out


REFERENCES = {
    "sgd": ref_sgd,
    "momentum": ref_momentum,
    "nesterov": ref_nesterov,
    "adagrad": ref_adagrad,
    "rmsprop": ref_rmsprop,
    "adam": lambda c: _ref_adam_family(c, False, 0.0),
    "nadam": lambda c: _ref_adam_family(c, True, 0.0),
    "adamw": lambda c: _ref_adam_family(c, False, c.get("weight_decay", 0.01)),
    "adamax": ref_adamax,
    "ftrl": ref_ftrl,
}

ADAM_VARIANT = {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-3}
GOLDEN_CASES = {
    "sgd": [{"learning_rate": 0.1}],
    "momentum": [{"learning_rate": 0.1}, {"learning_rate": 0.05, "momentum": 0.5}],
    "nesterov": [{"learning_rate": 0.1}, {"learning_rate": 0.05, "momentum": 0.5}],
    "adagrad": [{"learning_rate": 0.1},
                {"learning_rate": 0.1, "initial_accumulator_value": 0.2, "epsilon": 1e-3}],
    "rmsprop": [{"learning_rate": 0.01}, {"learning_rate": 0.01, "momentum": 0.5},
                {"learning_rate": 0.01, "momentum": 0.5, "centered": True, "rho": 0.8},
                {"learning_rate": 0.01, "centered": True, "epsilon": 1e-3}],
    "adam": [{"learning_rate": 0.01}, ADAM_VARIANT],
    "nadam": [{"learning_rate": 0.01}, ADAM_VARIANT, {"learning_rate": 0.01, "momentum_decay": 0.004},
              {**ADAM_VARIANT, "momentum_decay": 1.0}],
    "adamw": [{"learning_rate": 0.01}, {**ADAM_VARIANT, "weight_decay": 0.2}],
    "adamax": [{"learning_rate": 0.01}, ADAM_VARIANT],
    "ftrl": [{"learning_rate": 0.1}, {"learning_rate": 0.5, "learning_rate_power": -0.3},
             {"learning_rate": 0.5, "l1": 0.3, "l2": 0.1, "beta": 0.5, "l2_shrinkage": 0.2,
              "initial_accumulator_value": 0.3},
             {"learning_rate": 0.5, "l1": 0.3, "l2": 0.1, "l2_shrinkage": 0.2, "keep_initial_weights": True}],
}


def golden_params():
    for name in NAMES:
        for i, cfg in enumerate(GOLDEN_CASES.get(name, [None])):
            yield pytest.param(name, cfg, id=f"{name}-{i}")


@pytest.mark.parametrize("name,cfg", list(golden_params()))
def test_golden_three_steps(name, cfg):
    assert cfg is not None and name in REFERENCES, f"add a hand derivation for optimizer {name!r}"
    opt = make_optimizer({"name": name, **cfg})
    theta = np.array(THETA0)
    state = opt.build(3)
    for step, (g, expected) in enumerate(zip(GRADS, REFERENCES[name](cfg)), start=1):
        opt.update_step(theta, np.array(g), state)
        assert state.step == step
        assert theta.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_ftrl_l1_case_produces_exact_zeros():
    # keeps the golden FTRL l1 case meaningful: some weight must hit the l1 clip
    w = ref_ftrl(GOLDEN_CASES["ftrl"][2])
    assert any(v == 0.0 for step in w for v in step)
    assert any(v != 0.0 for step in w for v in step)


# ---------------------------------------------------------------- torch
def _torch_optimizer(torch, name, params, c):
    o = torch.optim
    lr = c["learning_rate"]
    betas = (c.get("beta_1", 0.9), c.get("beta_2", 0.999))
    eps = c.get("epsilon")
    if name == "sgd":
        return o.SGD(params, lr=lr)
    if name in ("momentum", "nesterov"):
        return o.SGD(params, lr=lr, momentum=c.get("momentum", 0.9), nesterov=name == "nesterov")
    if name == "adagrad":
        return o.Adagrad(params, lr=lr, eps=eps or 1e-10,
                         initial_accumulator_value=c.get("initial_accumulator_value", 0.0))
    if name == "rmsprop":
        return o.RMSprop(params, lr=lr, alpha=c.get("rho", 0.9), eps=eps or 1e-8,
                         momentum=c.get("momentum", 0.0), centered=c.get("centered", False))
    if name == "adam":
        return o.Adam(params, lr=lr, betas=betas, eps=eps or 1e-8, foreach=False)
    if name == "adamw":
        return o.AdamW(params, lr=lr, betas=betas, eps=eps or 1e-8,
                       weight_decay=c.get("weight_decay", 0.01), foreach=False)
    if name == "nadam":
        # momentum_decay 0 here is no schedule; an enormous one makes torch's mu_t equal beta_1 too
        return o.NAdam(params, lr=lr, betas=betas, eps=eps or 1e-8,
                       momentum_decay=c.get("momentum_decay") or 1e12, foreach=False)
    if name == "adamax":
        return o.Adamax(params, lr=lr, betas=betas, eps=eps or 1e-8, foreach=False)
    return None


NOT_IN_TORCH = {"ftrl"}   # torch.optim has no FTRL: its golden numbers are the only oracle


@pytest.mark.parametrize("name,cfg", [p for p in golden_params() if p.values[0] not in NOT_IN_TORCH])
def test_matches_torch_for_20_steps(name, cfg):
    import torch   # the oracle is a test requirement (requirements-dev.txt): missing means failed, not skipped
    # torch keeps scalar state (NAdam's mu_product) in the default dtype
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _compare_with_torch(torch, name, cfg)
    finally:
        torch.set_default_dtype(previous)


def _compare_with_torch(torch, name, cfg):
    rng = np.random.default_rng(7)
    theta0 = rng.normal(size=5)
    grads = rng.normal(size=(20, 5))
    p = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    reference = _torch_optimizer(torch, name, [p], cfg)
    assert reference is not None, f"map {name!r} to its torch.optim class (or list it in NOT_IN_TORCH)"
    opt = make_optimizer({"name": name, **cfg})
    theta, state = theta0.copy(), opt.build(5)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        reference.step()
        opt.update_step(theta, g.copy(), state)
        np.testing.assert_allclose(theta, p.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cfg", [{"learning_rate": 0.01, "momentum_decay": 0.004},
                                 {"learning_rate": 0.003, "beta_1": 0.99, "momentum_decay": 0.004}])
def test_nadam_with_dozats_schedule_matches_torch_over_a_long_run(cfg):
    # long enough for the momentum product to drop below NEGLIGIBLE_PRODUCT, where the kernel stops
    # multiplying: torch's 1 - product must already be exactly 1.0 there
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        rng = np.random.default_rng(8)
        theta0, grads = rng.normal(size=6), rng.normal(size=(600, 6))
        p = torch.nn.Parameter(torch.tensor(theta0))
        reference = _torch_optimizer(torch, "nadam", [p], cfg)
        opt = make_optimizer({"name": "nadam", **cfg})
        theta, state = theta0.copy(), opt.build(6)
        for step, g in enumerate(grads, start=1):
            p.grad = torch.tensor(g)
            reference.step()
            opt.update_step(theta, g.copy(), state)
            np.testing.assert_allclose(theta, p.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=f"step {step}")
        assert reference.state[p]["mu_product"] < optim.NEGLIGIBLE_PRODUCT
    finally:
        torch.set_default_dtype(previous)


KERAS_NADAM = """
import json, os, sys
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np, keras
keras.config.set_floatx("float64")
c = json.loads(sys.stdin.read())
var = keras.Variable(np.array(c["theta0"]), dtype="float64")
opt = keras.optimizers.Nadam(learning_rate=c["lr"], beta_1=c["beta_1"], beta_2=c["beta_2"], epsilon=c["epsilon"])
out = []
for g in c["grads"]:
    opt.apply_gradients([(keras.ops.convert_to_tensor(np.array(g), dtype="float64"), var)])
    out.append(keras.ops.convert_to_numpy(var).tolist())
print(json.dumps(out))
"""


def test_nadam_with_momentum_decay_1_is_keras_nadam():
    """Keras 3's Nadam warms its momentum up as b1 * (1 - 0.5 * 0.96^t): momentum_decay 1."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    rng = np.random.default_rng(9)
    theta0, grads = rng.normal(size=4), rng.normal(size=(40, 4))
    c = {"lr": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    done = subprocess.run([sys.executable, "-c", KERAS_NADAM], capture_output=True, text=True, check=True,
                          input=json.dumps({**c, "theta0": theta0.tolist(), "grads": grads.tolist()}))
    expected = json.loads(done.stdout.strip().splitlines()[-1])
    opt = make_optimizer({"name": "nadam", "learning_rate": c["lr"], "epsilon": c["epsilon"], "momentum_decay": 1.0})
    theta, state = theta0.copy(), opt.build(4)
    for g, want in zip(grads, expected):
        opt.update_step(theta, g.copy(), state)
        np.testing.assert_allclose(theta, want, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- behaviour
CURVATURE = np.array([1.0, 10.0, 100.0])  # condition number 100
CONVERGENCE_LR = {"sgd": 0.01, "momentum": 0.005, "nesterov": 0.005, "adagrad": 0.3,
                  "rmsprop": 0.001, "adam": 0.03, "nadam": 0.03, "adamw": 0.03,
                  "adamax": 0.03, "ftrl": 0.3}


@pytest.mark.parametrize("name", NAMES)
def test_converges_on_ill_conditioned_quadratic(name):
    assert name in CONVERGENCE_LR, f"choose a convergence learning rate for {name!r}"
    opt = make_optimizer({"name": name, "learning_rate": CONVERGENCE_LR[name]})
    theta, state = np.array([1.0, -0.5, 0.25]), opt.build(3)
    losses = []
    for _ in range(2000):
        opt.update_step(theta, CURVATURE * theta, state)
        losses.append(0.5 * float(np.sum(CURVATURE * theta ** 2)))
        if losses[-1] < 1e-4:
            break
    assert losses[-1] < 1e-4, f"{name}: loss {losses[-1]:.3g} after {len(losses)} steps"


def _random_run(opt, dtype, steps=50, n=7, seed=3):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n).astype(dtype)
    state = opt.build(n, dtype)
    for _ in range(steps):
        opt.update_step(theta, rng.normal(size=n).astype(dtype), state)
    return theta, state


@pytest.mark.parametrize("name", NAMES)
def test_float32_tracks_float64(name):
    opt = OPTIMIZERS.get(name)(learning_rate=0.01)
    theta32, state32 = _random_run(opt, np.float32)
    theta64, state64 = _random_run(opt, np.float64)
    assert theta32.dtype == np.float32 and state32.slots.dtype == np.float32
    assert np.all(np.isfinite(theta32))
    np.testing.assert_allclose(theta32, theta64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state32.slots, state64.slots, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_ranges_leave_other_entries_and_slots_alone(name):
    opt = OPTIMIZERS.get(name)(learning_rate=0.05)
    rng = np.random.default_rng(11)
    theta0 = rng.normal(size=6)
    grads = rng.normal(size=(3, 6))
    partial, full = theta0.copy(), theta0.copy()
    s_partial, s_full = opt.build(6), opt.build(6)
    initial_slots = s_partial.slots.copy()
    for g in grads:
        opt.update_step(partial, g.copy(), s_partial, ranges=[(0, 2), (4, 6)])
        opt.update_step(full, g.copy(), s_full)
    assert s_partial.step == 3
    assert np.array_equal(partial[2:4], theta0[2:4])
    assert np.array_equal(s_partial.slots[:, 2:4], initial_slots[:, 2:4])
    if name not in ("adagrad", "ftrl"):  # these start their accumulators elsewhere
        assert not np.any(s_partial.slots[:, 2:4])
    inside = [0, 1, 4, 5]  # every optimizer here is element-wise
    np.testing.assert_array_equal(partial[inside], full[inside])
    np.testing.assert_array_equal(s_partial.slots[:, inside], s_full.slots[:, inside])
    assert not np.array_equal(partial[inside], theta0[inside])


def _non_default(param):
    if param.kind == "bool":
        return not param.default
    return param.default * 0.8 if param.default else 0.05


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    cls = OPTIMIZERS.get(name)
    hyper = {k: _non_default(p) for k, p in cls.hyperparameters.items()}
    opt = cls(learning_rate=0.0123, **hyper)
    config = opt.get_config()
    assert config == {"name": name, "learning_rate": 0.0123, **hyper}
    text = json.dumps(config)
    clip = {"clipvalue": 1.0, "clipnorm": 0.0, "global_clipnorm": 5.0}
    for rebuilt in (make_optimizer(json.loads(text)), optimizer_from_config(json.loads(text)),
                    make_optimizer({**json.loads(text), **clip})):
        assert type(rebuilt) is cls and rebuilt.get_config() == config
        np.testing.assert_array_equal(rebuilt.hyper_array(), opt.hyper_array())
        a, _ = _random_run(opt, np.float64, steps=5)
        b, _ = _random_run(rebuilt, np.float64, steps=5)
        np.testing.assert_array_equal(a, b)


def _bad_values(param):
    if param.kind == "bool":
        return ["yes", 1]
    bad = ["0.5", None]
    if param.low is not None:
        bad.append(param.low if param.low_open else param.low - 1.0)
    if param.high is not None:
        bad.append(param.high if param.high_open else param.high + 1.0)
    return bad


@pytest.mark.parametrize("name", NAMES)
def test_bad_hyperparameters_name_the_key(name):
    cls = OPTIMIZERS.get(name)
    for key, param in cls.hyperparameters.items():
        assert param.low is not None or param.high is not None or param.kind == "bool", key
        for value in _bad_values(param):
            with pytest.raises(ExperimentError, match=rf"optimizer\.{key}\b"):
                make_optimizer({"name": name, key: value})
            with pytest.raises(ExperimentError, match=rf"optimizer\.{key}\b"):
                cls(**{key: value})
    for lr in (0.0, -1.0, float("nan"), "fast"):
        with pytest.raises(ExperimentError, match=r"optimizer\.learning_rate"):
            make_optimizer({"name": name, "learning_rate": lr})
    with pytest.raises(ExperimentError, match=r"optimizer\.bogus"):
        make_optimizer({"name": name, "bogus": 1})


def test_error_messages_read_well():
    with pytest.raises(ExperimentError, match=r"optimizer\.beta_1 must be a number >= 0 and < 1, got 1\.5"):
        make_optimizer({"name": "adam", "beta_1": 1.5})
    with pytest.raises(ExperimentError, match="did you mean 'learning_rate'"):
        make_optimizer({"name": "adam", "learning_rat": 0.1})
    with pytest.raises(ExperimentError, match="did you mean 'adam'"):
        make_optimizer({"name": "adan"})
    with pytest.raises(ExperimentError, match="optimizer.name"):
        make_optimizer({"learning_rate": 0.1})
    with pytest.raises(ExperimentError, match="did you mean 'beta_1'"):
        Adam(beta1=0.9)


@pytest.mark.parametrize("name", NAMES)
def test_dispatcher_matches_update_step(name):
    opt = OPTIMIZERS.get(name)(learning_rate=0.02)
    rng = np.random.default_rng(5)
    theta0, grads = rng.normal(size=9), rng.normal(size=(4, 9))
    a, b = theta0.copy(), theta0.copy()
    sa, sb = opt.build(9), opt.build(9)
    hyper = opt.hyper_array()
    for step, g in enumerate(grads, start=1):
        opt.update_step(a, g, sa, ranges=[(0, 4), (6, 9)])
        for lo, hi in [(0, 4), (6, 9)]:
            optim.apply_update(opt.kernel_code, b, g, sb.slots, lo, hi, step, 0.02, hyper)
    assert np.array_equal(a, b) and np.array_equal(sa.slots, sb.slots)
    assert not np.array_equal(a, theta0)


def test_dispatcher_rejects_unknown_code():
    theta = np.zeros(2)
    with pytest.raises(ValueError):
        optim.apply_update(99, theta, theta.copy(), np.zeros((2, 2)), 0, 2, 1, 0.1, np.zeros(optim.HYPER_SIZE))


@pytest.mark.parametrize("name", NAMES)
def test_class_contract(name):
    cls = OPTIMIZERS.get(name)
    opt = cls()
    assert opt.name == name and opt.learning_rate == cls.default_learning_rate
    assert isinstance(cls.kernel_code, int)
    same_code = [OPTIMIZERS.get(n) for n in NAMES if OPTIMIZERS.get(n).kernel_code == cls.kernel_code]
    assert all(other.kernel is cls.kernel for other in same_code)
    assert set(opt.get_config()) == {"name", "learning_rate", *cls.hyperparameters}
    for key, param in cls.hyperparameters.items():
        assert param.doc and "\n" not in param.doc, key
        assert param.check(param.default, key) == param.default
    hyper = opt.hyper_array()
    assert hyper.shape == (optim.HYPER_SIZE,) and hyper.dtype == np.float64
    if cls.cycled is not None:
        assert hyper[optim.H_MOMENTUM] == opt.hyper[cls.cycled]
    for key, column in cls.hyper_slots.items():
        assert hyper[column] == float(opt.hyper[key]), key
    assert isinstance(cls.title, str) and cls.title and "title" in vars(cls)
    state = opt.build(4, np.float32)
    assert isinstance(state, OptimizerState) and state.step == 0
    assert state.slots.shape == (len(cls.slot_names), 4) and state.slots.dtype == np.float32


def test_defaults_from_the_brief():
    assert OPTIMIZERS.get("sgd").default_learning_rate == 0.01
    assert OPTIMIZERS.get("momentum")().hyper["momentum"] == 0.9
    adam = OPTIMIZERS.get("adam")()
    assert (adam.learning_rate, adam.hyper["beta_1"], adam.hyper["beta_2"],
            adam.hyper["epsilon"]) == (0.001, 0.9, 0.999, 1e-8)
    assert OPTIMIZERS.get("rmsprop")().get_config()["rho"] == 0.9
    assert OPTIMIZERS.get("adagrad")().learning_rate == 0.01
    assert OPTIMIZERS.get("adamw")().hyper["weight_decay"] == 0.01
    assert OPTIMIZERS.get("adamax")().learning_rate == 0.002
    assert OPTIMIZERS.get("nadam")().learning_rate == 0.002
    ftrl = OPTIMIZERS.get("ftrl")().hyper
    assert (ftrl["learning_rate_power"], ftrl["initial_accumulator_value"], ftrl["beta"]) == (-0.5, 0.1, 0.0)


def test_variants_are_flags_not_copies():
    for variant, base in (("nesterov", "momentum"), ("nadam", "adam"), ("adamw", "adam")):
        v, b = OPTIMIZERS.get(variant), OPTIMIZERS.get(base)
        assert issubclass(v, b) and v.kernel is b.kernel and v.kernel_code == b.kernel_code
        assert v().get_config()["name"] == variant
    assert OPTIMIZERS.get("nesterov")().hyper_array()[optim.H_NESTEROV] == 1.0
    assert OPTIMIZERS.get("nadam")().hyper_array()[optim.H_NESTEROV] == 1.0
    assert Momentum().hyper_array()[optim.H_NESTEROV] == 0.0
    assert OPTIMIZERS.get("adam")().hyper_array()[optim.H_WEIGHT_DECAY] == 0.0
    assert OPTIMIZERS.get("adamw")().hyper_array()[optim.H_WEIGHT_DECAY] == 0.01


@pytest.mark.parametrize("name", [n for n in NAMES if OPTIMIZERS.get(n).cycled])
def test_cycled_value_overrides_hyper0_for_one_step(name):
    cls = OPTIMIZERS.get(name)
    rng = np.random.default_rng(2)
    theta0, g = rng.normal(size=4), rng.normal(size=4)
    a, b = theta0.copy(), theta0.copy()
    cls(learning_rate=0.01).update_step(a, g, cls(learning_rate=0.01).build(4), cycled_value=0.5)
    other = cls(learning_rate=0.01, **{cls.cycled: 0.5})
    other.update_step(b, g, other.build(4))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_lr_argument_overrides_configured_rate(name):
    rng = np.random.default_rng(4)
    theta0, g = rng.normal(size=4), rng.normal(size=4)
    a, b = theta0.copy(), theta0.copy()
    opt = OPTIMIZERS.get(name)(learning_rate=0.5)
    opt.update_step(a, g, opt.build(4), lr=0.03)
    ref = OPTIMIZERS.get(name)(learning_rate=0.03)
    ref.update_step(b, g, ref.build(4))
    assert np.array_equal(a, b)


def test_update_step_rejects_mismatched_arrays():
    opt = Adam()
    state = opt.build(3)
    with pytest.raises(ValueError):
        opt.update_step(np.zeros(3), np.zeros(3, np.float32), state)
    with pytest.raises(ValueError):
        opt.update_step(np.zeros(3), np.zeros(3), opt.build(4))
    with pytest.raises(ValueError):
        opt.update_step(np.zeros(3), np.zeros(3), state, ranges=[(2, 5)])
    assert state.step == 0


def test_clip_keys_are_the_documented_ones():
    assert CLIP_KEYS == ("clipvalue", "clipnorm", "global_clipnorm")


# ---------------------------------------------------------------- clipping
BOUNDS = np.array([0, 3, 5, 9], dtype=np.int64)


def _grad(dtype=np.float64):
    return np.array([3.0, -4.0, 12.0, 0.5, -0.5, 1.0, 2.0, -2.0, 4.0], dtype=dtype)


def test_clip_disabled_returns_norm_and_leaves_grad():
    g = _grad()
    norm = optim.clip_gradients(g, BOUNDS, 0.0, -1.0, 0.0)
    assert norm == pytest.approx(np.linalg.norm(_grad()), rel=1e-14)
    assert np.array_equal(g, _grad())


def test_clip_by_value():
    g = _grad()
    optim.clip_gradients(g, BOUNDS, 1.5, 0.0, 0.0)
    np.testing.assert_array_equal(g, np.clip(_grad(), -1.5, 1.5))


def test_clip_per_tensor_norm():
    g = _grad()
    norm = optim.clip_gradients(g, BOUNDS, 0.0, 2.0, 0.0)
    expected = _grad()
    for lo, hi in zip(BOUNDS[:-1], BOUNDS[1:]):
        n = np.linalg.norm(expected[lo:hi])
        if n > 2.0:
            expected[lo:hi] *= 2.0 / n
    np.testing.assert_allclose(g, expected, rtol=1e-14)
    assert np.linalg.norm(g[3:5]) == pytest.approx(np.linalg.norm(_grad()[3:5]))  # under the limit
    assert norm == pytest.approx(np.linalg.norm(_grad()), rel=1e-14)


def test_clip_global_norm():
    g = _grad()
    optim.clip_gradients(g, BOUNDS, 0.0, 0.0, 5.0)
    np.testing.assert_allclose(g, _grad() * 5.0 / np.linalg.norm(_grad()), rtol=1e-14)
    assert np.linalg.norm(g) == pytest.approx(5.0, rel=1e-14)


def test_clip_order_value_then_tensor_then_global():
    g = _grad()
    norm = optim.clip_gradients(g, BOUNDS, 3.5, 3.0, 4.0)
    expected = np.clip(_grad(), -3.5, 3.5)
    for lo, hi in zip(BOUNDS[:-1], BOUNDS[1:]):
        n = np.linalg.norm(expected[lo:hi])
        if n > 3.0:
            expected[lo:hi] *= 3.0 / n
    expected *= 4.0 / np.linalg.norm(expected)
    np.testing.assert_allclose(g, expected, rtol=1e-13)
    assert norm == pytest.approx(np.linalg.norm(_grad()), rel=1e-14)


def test_clip_float32():
    g32 = _grad(np.float32)
    optim.clip_gradients(g32, BOUNDS, 0.0, 2.0, 3.0)
    g64 = _grad()
    optim.clip_gradients(g64, BOUNDS, 0.0, 2.0, 3.0)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, g64, rtol=1e-6)


def test_clip_rejects_bounds_that_do_not_cover_the_vector():
    with pytest.raises(ValueError):
        optim.clip_gradients(_grad(), np.array([0, 3, 5], dtype=np.int64), 0.0, 1.0, 0.0)
