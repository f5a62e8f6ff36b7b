"""The training step's divergence checks, done inside passes that already touch the data.

The step used to copy every weight before the update (to restore an overflowing
one), sum the gradient's squares and scan the weights after the update: three
passes over every parameter, more time than the forward and backward passes of
a 784-300-100-10 net at batch 1.  Now the update kernels save the weights they
overwrite and report whether the new ones are finite, and the gradient's norm
is summed only when a square could overflow.  These tests pin that the shortcuts
decide exactly as the full computations did.
"""
import math

import numpy as np
import pytest

from engine.catalog.optimizers import OPTIMIZERS
from engine.kernels import optim
from engine.kernels.train import DIVERGED_WEIGHTS, _all_finite, _norm_is_finite, _outside_finite, _sum_squares
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer

F32_SQUARE_EDGE = np.float32(1.8446743e19)   # about sqrt(float32 max): squares in float32 overflow just above


def _boundary_vectors():
    """Vectors around each overflow edge of the squares and of their float64 sum."""
    out = []
    for dt in (np.float32, np.float64):
        base = np.random.default_rng(0).standard_normal(1003).astype(dt)
        out.append(base)
        for bad in (np.nan, np.inf, -np.inf):
            v = base.copy()
            v[517] = bad
            out.append(v)
    edge = F32_SQUARE_EDGE
    for x in (np.nextafter(edge, np.float32(0)), edge, np.nextafter(edge, np.float32(np.inf)),
              np.float32(1e19), np.float32(2e19), np.float32(3e38)):
        v = np.ones(1003, np.float32)
        v[1001] = x       # in the remainder after the groups of 8
        out.append(v)
        w = np.ones(1003, np.float32)
        w[8] = -x
        out.append(w)
    out.append(np.full(1003, np.nextafter(edge, np.float32(0))))   # squares near float32's max, added in float64
    for x in (1e139, 1e140, 1e150, 1.3e154, 1.35e154):
        out.append(np.full(1003, x))      # each square finite near 1e308, the sum of 1003 not
        out.append(np.full(1, x))
        v = np.zeros(1003)
        v[3] = x
        out.append(v)
    return out


@pytest.mark.parametrize("v", _boundary_vectors(), ids=lambda v: f"{v.dtype}-{np.nanmax(np.abs(v)):.3g}")
def test_the_norm_check_decides_as_the_sum_of_squares(v):
    assert _norm_is_finite(v) == math.isfinite(_sum_squares(v, 0, v.size))


def test_float32_squares_overflow_at_about_1_8e19():
    # the rule the records report: a float32 gradient entry past ~1.8e19 has an infinite square
    assert _norm_is_finite(np.full(5, 1e19, np.float32))
    assert not _norm_is_finite(np.full(5, 2e19, np.float32))


def test_finite_checks_of_ranges_and_of_what_lies_outside_them():
    v = np.arange(20, dtype=np.float32)
    v[3] = np.nan
    assert not _all_finite(v) and _all_finite(v, 4) and _all_finite(v, 0, 3) and not _all_finite(v, 2, 5)
    assert _outside_finite(v, np.array([[2, 6], [10, 12]], dtype=np.int64))
    assert not _outside_finite(v, np.array([[5, 20]], dtype=np.int64))
    assert _outside_finite(v, np.array([[0, 4]], dtype=np.int64))
    v[19] = np.inf
    assert not _outside_finite(v, np.array([[0, 4]], dtype=np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS.names()))
def test_kernels_keep_the_old_weights_and_report_non_finite_new_ones(name, dtype):
    opt = OPTIMIZERS.get(name)(learning_rate=0.02)
    hyper = opt.hyper_array()
    rng = np.random.default_rng(1)
    theta = rng.normal(size=40).astype(dtype)
    grad = rng.normal(size=40).astype(dtype)
    plain, kept = theta.copy(), theta.copy()
    slots_plain, slots_kept = opt.build(40, dtype).slots, opt.build(40, dtype).slots
    keep = np.full(40, 7.0, dtype)
    assert optim.apply_update(opt.kernel_code, plain, grad, slots_plain, 5, 33, 1, 0.02, hyper)
    assert optim.apply_update(opt.kernel_code, kept, grad, slots_kept, 5, 33, 1, 0.02, hyper, keep)
    assert np.array_equal(plain, kept) and np.array_equal(slots_plain, slots_kept)   # the same arithmetic
    assert np.array_equal(keep[5:33], theta[5:33]) and np.all(keep[:5] == 7.0) and np.all(keep[33:] == 7.0)
    grad[20] = np.nan
    before = kept.copy()
    assert not optim.apply_update(opt.kernel_code, kept, grad, slots_kept, 5, 33, 2, 0.02, hyper, keep)
    assert np.array_equal(keep[5:33], before[5:33])
    grad[20] = 0.0
    kept[:], slots_kept[:] = theta, slots_plain   # every value finite again ...
    kept[30] = np.inf   # ... but one outside the range: not the kernel's to report
    assert optim.apply_update(opt.kernel_code, kept, grad, slots_kept, 5, 30, 3, 0.02, hyper, keep)


def _trainer(layers, dtype="float32"):
    return Trainer(resolve_experiment({
        "seed": 3, "data": {"name": "moons", "n_samples": 300, "noise": 0.1},
        "model": {"layers": layers}, "optimizer": {"name": "sgd", "learning_rate": 0.01},
        "training": {"epochs": 3, "batch_size": 16, "dtype": dtype}}))


@pytest.mark.parametrize("layers", [
    [{"units": 6, "activation": "relu"}, {"units": 5, "activation": "relu", "trainable": False}],
    [{"units": 6, "activation": "relu", "max_norm": 1e6}, {"units": 5, "activation": "relu"}],
])
def test_an_overflowing_update_in_the_middle_of_a_chunk_restores_every_weight(layers):
    """Step 3 of 6 overflows (an infinite rate): the chunk stops after 2 steps and every
    weight, frozen ones included, is what 2 steps left (the update saved only the ranges it wrote;
    with a max-norm constraint the step copies every weight)."""
    a, b = _trainer(layers), _trainer(layers)
    order, starts = a._epoch_order()
    b._epoch_order()
    rates = np.array([0.01, 0.01, np.inf, 0.01, 0.01, 0.01])
    a.learning_rates = lambda first, n, control: rates[first:first + n]
    done = a.run_steps(order, starts, 0, 6)[0]
    assert done == 2 and a.diverged_cause == DIVERGED_WEIGHTS
    assert b.run_steps(order, starts, 0, 2)[0] == 2
    assert np.array_equal(a.net.theta, b.net.theta) and np.array_equal(a.net.buffers, b.net.buffers)
