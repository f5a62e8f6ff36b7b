"""What the speed work in engine/kernels must not change (correctness only, never timings).

* float32 training follows float64 training closely (the fast float32 paths:
  polynomial tanh/exp/expm1, float32 reductions, small products as loops);
* the float32 tanh/exp/expm1 stay within ~1 ulp of the exact values;
* kernels compute with flush-to-zero/denormals-are-zero and give the caller's
  floating-point state back untouched;
* products computed by loops and by BLAS agree; views alias the right memory;
* kernel calls leave the calling thread's BLAS thread setting as they found it.
"""
import ctypes
import math

import numpy as np
import pytest
from numba import njit

from engine.spec.experiment import resolve_experiment
from engine.kernels import activations as A
from engine.kernels import fpu
from engine.kernels import network as NK
from engine.kernels.views import view_1d, view_2d
from engine.training.trainer import Trainer

from helpers import network


def _trainer(dtype, layers, optimizer, seed=5, batch=16):
    exp = resolve_experiment({"seed": seed, "data": {"name": "moons", "n_samples": 400, "noise": 0.2},
                              "model": {"layers": layers},
                              "optimizer": optimizer,
                              "training": {"epochs": 3, "batch_size": batch, "dtype": dtype, "log_every": 5}})
    return Trainer(exp)


@pytest.mark.parametrize("layers,optimizer", [
    ([{"units": 32, "activation": "tanh", "batch_norm": "before"}, {"units": 16, "activation": "logistic"}],
     {"name": "nesterov", "learning_rate": 0.05, "momentum": 0.9}),
    ([{"units": 32, "activation": "tanh"}, {"units": 16, "activation": "gelu"}],
     {"name": "adam", "learning_rate": 0.005}),
    ([{"units": 32, "activation": "elu"}, {"units": 32, "activation": "selu"},
      {"units": 16, "activation": "relu", "batch_norm": "after"}],
     {"name": "momentum", "learning_rate": 0.05}),
    ([{"units": 64, "activation": "relu", "dropout": 0.2}, {"units": 16, "activation": "leaky_relu"}],
     {"name": "sgd", "learning_rate": 0.1}),
])
def test_float32_training_follows_float64(layers, optimizer):
    """Same start (float64 weights rounded to float32), same batches, masks and
    rates: the float32 run stays within float32 rounding of the float64 one.
    (Adam on a net with dead ReLUs is left out on purpose: it rescales the
    exactly-zero float64 gradients that are ~1e-9 in float32 into full-size
    steps, so those two runs drift apart by ~1e-3, before and after the speed
    work alike.)"""
    t64 = _trainer("float64", layers, optimizer)
    t32 = _trainer("float32", layers, optimizer)
    t32.net.load_state_dict(t64.net.state_dict())
    e64 = [e for e in t64.run() if type(e).__name__ == "StepMetrics"]
    e32 = [e for e in t32.run() if type(e).__name__ == "StepMetrics"]
    l64 = np.concatenate([e.losses for e in e64])
    l32 = np.concatenate([e.losses for e in e32])
    assert l64.size == l32.size > 50
    np.testing.assert_allclose(l32, l64, rtol=1e-5)
    w64, w32 = t64.net.theta, t32.net.theta.astype(np.float64)
    assert np.linalg.norm(w32 - w64) <= 1e-5 * np.linalg.norm(w64)


@njit
def _apply(which, x, out):
    for i in range(x.size):
        if which == 0:
            out[i] = A.tanh(x[i])
        elif which == 1:
            out[i] = A.exp(x[i])
        else:
            out[i] = A.expm1(x[i])


@pytest.mark.parametrize("which,exact,low", [(0, np.tanh, -30.0), (1, np.exp, -87.0), (2, np.expm1, -30.0)])
def test_float32_fast_math_is_within_about_one_ulp(which, exact, low):
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(low, 30.0 if which != 1 else 88.0, 400_001), rng.standard_normal(200_000) * 4,
                        np.geomspace(1e-9, 1, 20_000), -np.geomspace(1e-9, 1, 20_000)]).astype(np.float32)
    out = np.empty_like(x)
    _apply(which, x, out)
    ref = exact(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - ref) / ulp) <= 1.5
    # float64 keeps the C library's functions
    xs = np.linspace(-3, 3, 13)
    out64 = np.empty_like(xs)
    _apply(which, xs, out64)
    assert list(out64) == [(math.tanh, math.exp, math.expm1)[which](v) for v in xs]


@njit
def _inside_kernel(values, out):
    previous = fpu.enter()
    flushing = fpu.flushing()
    for i in range(values.size):
        out[i] = values[i] * np.float32(0.5)
    fpu.leave(previous)
    return flushing


@pytest.mark.skipif(not fpu.X86, reason="FTZ/DAZ are x86 MXCSR bits")
def test_kernels_flush_denormals_and_restore_the_callers_state():
    before = fpu.control_word()
    assert not fpu.flushing()            # Python's own thread computes with IEEE denormals
    values = np.full(8, 2e-38, np.float32)   # halving gives a denormal
    out = np.ones(8, np.float32)
    assert _inside_kernel(values, out)
    assert not np.any(out)               # flushed to zero inside the kernel
    assert (fpu.control_word() & fpu.FTZ_DAZ) == (before & fpu.FTZ_DAZ)
    assert np.all(values * np.float32(0.5) > 0)   # and not outside


@pytest.mark.skipif(not fpu.X86, reason="FTZ/DAZ are x86 MXCSR bits")
def test_entry_points_read_denormal_inputs_as_zero():
    net = network([{"units": 300, "activation": "tanh"}, {"units": 20, "activation": "elu"}], n_inputs=64,
                  dtype="float32")
    tiny = np.full((40, 64), 1e-39, np.float32)
    before = fpu.control_word()
    assert np.array_equal(net.predict(tiny), net.predict(np.zeros_like(tiny)))
    assert (fpu.control_word() & fpu.FTZ_DAZ) == (before & fpu.FTZ_DAZ)


@njit
def _flushed_product(a, b, out):
    previous = fpu.enter()
    NK.matmul(a, b, out)
    fpu.leave(previous)


@pytest.mark.skipif(not (fpu.X86 and NK.BLAS_WORKERS_FLUSH), reason="needs OpenBLAS worker control on x86")
def test_threaded_products_flush_denormals_in_every_part():
    # large enough for OpenBLAS to split the product between its threads
    assert 512 * 1024 * 512 >= NK.PARALLEL_MNK
    a = np.full((512, 1024), 1e-42, np.float32)   # 1024 * 1e-42 = 1e-39: a denormal sum of denormal products
    out = np.ones((512, 512), np.float32)
    _flushed_product(a, np.ones((1024, 512), np.float32), out)
    assert not np.any(out)                        # every row, whichever thread computed it


@njit
def _products(a, b, out_nn, bt, out_nt, at, out_tn):
    NK.matmul(a, b, out_nn)
    NK.matmul_nt(a, bt, out_nt)
    NK.matmul_tn(at, b, out_tn)


@pytest.mark.parametrize("m,k,n", [(1, 3, 2), (10, 8, 8), (10, 2, 1), (1, 784, 300), (32, 100, 10),
                                   (64, 100, 100), (7, 300, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_by_loops_and_by_blas_agree(m, k, n, dtype):
    rng = np.random.default_rng(m * 1000 + k + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    out_nn, out_nt, out_tn = (np.full((m, n), np.nan, dtype) for _ in range(3))
    _products(a, b, out_nn, np.ascontiguousarray(b.T), out_nt, np.ascontiguousarray(a.T), out_tn)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for out in (out_nn, out_nt, out_tn):
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * np.sqrt(k))


@njit
def _views(flat, rows, cols):
    v = view_2d(flat, rows, cols)
    v[rows - 1, cols - 1] = -1.0
    return v, view_1d(v)


def test_views_alias_the_right_memory():
    flat = np.arange(20, dtype=np.float32)
    v, back = _views(flat, 3, 4)
    assert v.shape == (3, 4) and v.flags["C_CONTIGUOUS"]
    assert np.array_equal(v, np.arange(12).reshape(3, 4).astype(np.float32) * (v >= 0) - (v < 0))
    assert flat[11] == -1.0 and back.shape == (12,) and back[11] == -1.0
    flat[0] = 42.0
    assert v[0, 0] == 42.0


@pytest.mark.skipif(not NK.BLAS_THREAD_CONTROL, reason="needs OpenBLAS's thread-local thread count")
def test_kernels_leave_the_blas_thread_setting_as_they_found_it():
    lib = NK._blas_library()
    set_local = lib.openblas_set_num_threads_local
    set_local.restype, set_local.argtypes = ctypes.c_int, [ctypes.c_int]
    previous = set_local(3)
    try:
        trainer = _trainer("float32", [{"units": 600, "activation": "relu"}, {"units": 200, "activation": "relu"}],
                           {"name": "sgd", "learning_rate": 0.01}, batch=300)
        for _ in trainer.run():
            pass
        assert set_local(3) == 3
    finally:
        set_local(previous)
