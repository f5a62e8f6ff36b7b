"""Where a training step's time goes: each kernel of the step timed alone on a
configuration's real shapes, then what the Python loop and the run around it add.

Per step (microseconds):

* the compiled parts: gathering the batch rows, each dense product (forward
  x @ W, kernel gradient x.T @ delta, delta below delta @ W.T), bias, batch
  normalization and activation kernels both ways, the loss, the optimizer's
  pass over every parameter (saving the weights it overwrites and checking the
  new ones, as the step does) and the finite check of the gradient's norm; each
  is run in a compiled loop (no Python dispatch), FTZ/DAZ on as in training;
  the rows gathered are new random rows each time (from memory, as in training);
* "other compiled": the chunk's measured per-step time minus those parts
  (the layer statistics of a chunk's last step, loop overhead, cache effects);
* "Python between chunks": the loop's measured step minus the chunk's;
* "diagnostics record": one record (probe forward pass, statistics, event)
  spread over the ``log_every`` steps between records;
* "epoch-end evaluation": accuracy on the training rows and the validation
  split, the confusion matrix (images) or decision surface (2-D), per step;
* "other end to end": ``main.py run``'s per-step time (from the row's end-to-end
  measurement) minus the loop's and the evaluation's: events, history rows,
  run-folder writes.
"""
from __future__ import annotations

import time

import numpy as np
from numba import njit

from engine.kernels import activations as A
from engine.kernels import fpu
from engine.kernels import network as N
from engine.kernels.layout import BIAS, BN, BN_NONE, FAN_IN, UNITS
from engine.kernels.optim import apply_update
from engine.kernels.train import _norm_is_finite
from runners import DescentRun, random_data

PROFILED = ("tiny", "fmnist-b1-momentum", "fmnist-b32-momentum", "fmnist-b32-adam-bn", "fmnist-b128-adam",
            "fmnist-b1024-momentum", "deep")


@njit(cache=True)
def _rep_gemm(kind, a, b, out, n):
    fp = fpu.enter()
    for _ in range(n):
        if kind == 0:
            N.matmul(a, b, out)
        elif kind == 1:
            N.matmul_tn(a, b, out)
        else:
            N.matmul_nt(a, b, out)
    fpu.leave(fp)


@njit(cache=True)
def _rep_bias(z, theta, start, n):
    fp = fpu.enter()
    B, units = z.shape
    g = np.zeros(units, z.dtype)
    for _ in range(n):
        N._add_bias(z, theta, start)
        g[:] = 0
        for b in range(B):
            for u in range(units):
                g[u] += z[b, u]
    fpu.leave(fp)


@njit(cache=True)
def _rep_act(forward, ints, floats, i, pre, out, d, slopes, dslopes, n):
    fp = fpu.enter()
    for _ in range(n):
        if forward:
            A.activation_forward(ints, floats, i, pre, out, slopes)
        else:
            A.activation_backward(ints, floats, i, pre, out, d, slopes, d, dslopes)
    fpu.leave(fp)


@njit(cache=True)
def _rep_bn(forward, z, xhat, pre, d, theta, buffers, grad, ints, floats, uws, i, n):
    fp = fpu.enter()
    for _ in range(n):
        if forward:
            N._batch_norm_forward(z, xhat, pre, theta, buffers, ints, floats, uws, i, True, True)
        else:
            N._batch_norm_backward(d, xhat, theta, grad, ints, uws, i, True, True)
    fpu.leave(fp)


@njit(cache=True)
def _rep_loss(code, logits, y_int, y_float, rows, delta, n):
    fp = fpu.enter()
    for _ in range(n):
        N.loss_and_delta(code, logits, y_int, y_float, rows, delta)
    fpu.leave(fp)


@njit(cache=True)
def _rep_gather(x, rows, xs, n):
    """rows (R, B): repetition k gathers rows[k % R], so the rows come from memory as in training."""
    for k in range(n):
        r = rows[k % rows.shape[0]]
        for b in range(r.size):
            N.copy_into(xs[b], x[r[b]])


@njit(cache=True)
def _rep_update(code, theta, grad, slots, ranges, lr, hyper, keep, n):
    fp = fpu.enter()
    for s in range(n):
        for r in range(ranges.shape[0]):
            apply_update(code, theta, grad, slots, ranges[r, 0], ranges[r, 1], s + 1, lr, hyper, keep)
    fpu.leave(fp)


@njit(cache=True)
def _rep_finite(grad, n):
    ok = True
    for _ in range(n):
        ok &= _norm_is_finite(grad)
    return ok


def per_call(fn, *args, budget: float = 0.04) -> float:
    """Seconds per repetition of ``fn(*args, n)``: the fastest of three timings of ~budget s (the
    one least disturbed by other processes on a shared machine)."""
    fn(*args, 1)   # compile / load
    t0 = time.perf_counter()
    fn(*args, 3)
    n = max(1, min(200_000, int(budget / max((time.perf_counter() - t0) / 3, 1e-9))))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn(*args, n)
        times.append((time.perf_counter() - t0) / n)
    return min(times)


def compiled_parts(trainer) -> tuple[dict, list]:
    """Per-step seconds of each compiled part on a copy of the trainer's arrays; and the per-GEMM list."""
    net = trainer.net
    ints, floats = net.ints, net.floats
    theta, buffers = net.theta.copy(), net.buffers.copy()
    grad = np.zeros_like(theta)
    B, dt = trainer.batch_size, net.dtype
    rng = np.random.default_rng(0)
    parts = dict.fromkeys(("gather rows", "forward GEMMs", "bias", "BN forward", "activation forward", "loss",
                           "activation backward", "BN backward", "kernel-gradient GEMMs", "delta GEMMs",
                           "optimizer", "finite check"), 0.0)
    gemms = []
    rows = rng.integers(0, trainer.n_train, B).astype(np.int64)
    xs = np.zeros((B, net.n_inputs), dt)
    row_sets = rng.integers(0, trainer.n_train, (max(1, min(4096, trainer.n_train // B)), B)).astype(np.int64)
    parts["gather rows"] = per_call(_rep_gather, trainer.x, row_sets, xs)
    fan_in_x = rng.standard_normal((B, net.n_inputs)).astype(dt)
    L = ints.shape[0]
    for i in range(L):
        fi, units = int(ints[i, FAN_IN]), int(ints[i, UNITS])
        x = fan_in_x if i == 0 else rng.standard_normal((B, fi)).astype(dt)
        W = N.kernel_of(theta, ints, i)
        z = rng.standard_normal((B, units)).astype(dt)
        out, d = np.empty_like(z), rng.standard_normal((B, units)).astype(dt) * dt.type(1e-3)
        t = per_call(_rep_gemm, 0, x, W, out)
        parts["forward GEMMs"] += t
        gW = np.empty((fi, units), dt)
        tg = per_call(_rep_gemm, 1, x, d, gW)
        parts["kernel-gradient GEMMs"] += tg
        td = 0.0
        if i > 0:
            td = per_call(_rep_gemm, 2, d, W, np.empty((B, fi), dt))
            parts["delta GEMMs"] += td
        gemms.append(f"{fi}x{units}: {1e6 * t:.1f}/{1e6 * tg:.1f}/{1e6 * td:.1f}")
        if ints[i, BIAS] >= 0:
            parts["bias"] += per_call(_rep_bias, z, theta, int(ints[i, BIAS]))
        if i == L - 1:
            break
        slopes = np.zeros(units, dt)
        dslopes = np.zeros(0, dt)
        parts["activation forward"] += per_call(_rep_act, True, ints, floats, i, z, out, d, slopes, dslopes)
        parts["activation backward"] += per_call(_rep_act, False, ints, floats, i, z, out, d.copy(), slopes,
                                                 dslopes)
        if ints[i, BN] != BN_NONE:
            uws = np.zeros((N.N_UWS, net.total_units), dt)
            xhat, pre = np.empty_like(z), np.empty_like(z)
            parts["BN forward"] += per_call(_rep_bn, True, z, xhat, pre, d, theta, buffers, grad, ints, floats,
                                            uws, i)
            parts["BN backward"] += per_call(_rep_bn, False, z, xhat, pre, d.copy(), theta, buffers, grad, ints,
                                             floats, uws, i)
    logits = rng.standard_normal((B, int(ints[L - 1, UNITS]))).astype(dt)
    parts["loss"] = per_call(_rep_loss, net.loss_code, logits, trainer.y_int, trainer.y_float, rows,
                             np.empty_like(logits))
    opt = trainer.optimizer
    slots = trainer.opt_state.slots.copy()
    grad[:] = rng.standard_normal(grad.size).astype(dt) * dt.type(1e-3)
    parts["optimizer"] = per_call(_rep_update, opt.kernel_code, theta, grad, slots, net.trainable_ranges(),
                                  1e-3, opt.hyper_array(), np.empty_like(theta))
    parts["finite check"] = per_call(_rep_finite, grad)
    return {k: v for k, v in parts.items() if v > 0}, gemms


def chunk_step_seconds(trainer, seconds: float = 0.3) -> float:
    """Per-step seconds of the compiled chunk alone (train_steps over many steps)."""
    order, starts = trainer._epoch_order()
    best = []
    for _ in range(3):
        n = max(1, min(trainer.steps_per_epoch - 1, int(seconds / 3 * max(trainer.steps_per_second, 10))))
        t0 = time.perf_counter()
        done = trainer.run_steps(order, starts, 0, n)[0]
        best.append((time.perf_counter() - t0) / done)
    return min(best)


def profile(cfg, row: dict | None, args) -> dict:
    data = random_data(cfg)
    run = DescentRun(cfg, data)
    run.advance(max(1, int(row["descent_steps_per_s"] * 0.2)) if row else 200)   # warm up
    rates = []
    for _ in range(3):
        res = run.advance(max(1, int((row["descent_steps_per_s"] if row else 1000) * args.round_seconds / 2)))
        rates.append(res["steps"] / res["seconds"])
    loop_step = 1 / max(rates)
    t = run.trainer
    parts, gemms = compiled_parts(t)
    chunk = chunk_step_seconds(t)
    parts["other compiled"] = chunk - sum(parts.values())
    record = per_call(lambda n: [t._record([(np.zeros(1), np.zeros(1))], 1e-3, -1.0, 1) for _ in range(n)])
    parts["diagnostics record"] = record / t.log_every
    parts["Python between chunks"] = max(0.0, loop_step - chunk - parts["diagnostics record"])

    def epoch_end(n):
        for _ in range(n):
            t.evaluate_split("train")
            t.evaluate_split("val")
            t.diagnostics.confusion(1)
            t.decision_surface()
    parts["epoch-end evaluation"] = per_call(epoch_end, budget=0.2) / t.steps_per_epoch
    out = {"config": f"profile:{cfg.key}", "label": cfg.label, "step_seconds": loop_step,
           "chunk_step_seconds": chunk, "log_every": t.log_every, "steps_per_epoch": t.steps_per_epoch,
           "gemms": gemms}
    if row and "e2e_steps_per_s" in row:
        e2e_step = 1 / row["e2e_steps_per_s"]
        parts["other end to end"] = e2e_step - loop_step - parts["epoch-end evaluation"]
        out["e2e_step_seconds"] = e2e_step
    out["parts"] = parts
    out["notes"] = ("GEMMs per layer (in x out: forward/kernel-gradient/delta us): " + "; ".join(gemms) +
                    f"; records every {t.log_every} steps, {t.steps_per_epoch} steps per epoch")
    return out


def profile_all(cfgs: list, args, rows: dict | None = None) -> list:
    rows = rows or {}
    return [profile(c, rows.get(c.key), args) for c in cfgs if c.key in PROFILED]
