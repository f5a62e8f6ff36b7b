"""Evaluation, prediction and the diagnostic probe: forward passes only.

Modes are passed to ``forward`` as run-time int64 values (``np.int64(...)``):
a literal constant would make Numba compile a separate copy of the whole
network code for each mode.  Each entry point runs with flush-to-zero / denormals-are-zero on the calling
thread (:mod:`.fpu`) and restores the caller's floating-point state on return.
"""
import math

import numpy as np
from numba import njit

from engine.kernels import activations as A
from engine.kernels import fpu
from engine.kernels.layout import ACT, BN, BN_AFTER, LOSS_BINARY_CE, LOSS_MSE, LOSS_SOFTMAX_CE, UNITS
from engine.kernels.network import (MODE_INFERENCE, MODE_PROBE, WS_DELTA, WS_H, WS_OUT, WS_PRE, block, copy_into,
                      count_correct, forward, loss_and_delta)


@njit(cache=True, nogil=True)
def evaluate(ints, floats, theta, buffers, x, y_int, y_float, loss_code, ws, uws, xb, rng):
    """Mean loss (data term only) and accuracy of the whole set in inference mode.

    x: (N, D); batches of xb.shape[0] rows.  Returns (mean_loss, accuracy);
    accuracy is NaN for regression.
    """
    N, D = x.shape
    Bmax = xb.shape[0]
    L = ints.shape[0]
    total = 0.0
    correct = 0
    rows = np.empty(Bmax, dtype=np.int64)
    fp = fpu.enter()
    for start in range(0, N, Bmax):
        B = min(Bmax, N - start)
        for b in range(B):
            rows[b] = start + b
        for b in range(B):
            copy_into(xb[b], x[start + b])
        logits = forward(ints, floats, theta, buffers, xb[:B], B, Bmax, ws, uws, rng, np.int64(MODE_INFERENCE))
        delta = block(ws, WS_DELTA, ints, L - 1, B, Bmax)
        total += loss_and_delta(loss_code, logits, y_int, y_float, rows[:B], delta) * B
        correct += count_correct(loss_code, logits, y_int, rows[:B])
    fpu.leave(fp)
    if N == 0:
        return math.nan, math.nan
    accuracy = math.nan if loss_code == LOSS_MSE else correct / N
    return total / N, accuracy


@njit(cache=True, nogil=True)
def predict(ints, floats, theta, buffers, x, ws, uws, xb, rng, mode, out):
    """Network outputs for x (N, D) into out (N, K): softmax probabilities,
    logistic probability of the positive class, or linear values.
    mode: MODE_INFERENCE, or MODE_MC_DROPOUT for one Monte Carlo sample."""
    N, D = x.shape
    Bmax = xb.shape[0]
    L = ints.shape[0]
    code = ints[L - 1, ACT]
    fp = fpu.enter()
    for start in range(0, N, Bmax):
        B = min(Bmax, N - start)
        for b in range(B):
            copy_into(xb[b], x[start + b])
        logits = forward(ints, floats, theta, buffers, xb[:B], B, Bmax, ws, uws, rng, mode)
        K = logits.shape[1]
        for b in range(B):
            if code == A.SOFTMAX:
                m = logits[b, 0]
                for k in range(1, K):
                    m = max(m, logits[b, k])
                s = 0.0
                for k in range(K):
                    s += math.exp(logits[b, k] - m)
                for k in range(K):
                    out[start + b, k] = math.exp(logits[b, k] - m) / s
            elif code == A.LOGISTIC:
                for k in range(K):
                    out[start + b, k] = A.sigmoid(logits[b, k])
            else:
                for k in range(K):
                    out[start + b, k] = logits[b, k]
    fpu.leave(fp)


@njit(cache=True, nogil=True)
def probe(ints, floats, theta, buffers, x, ws, uws, rng, edges, dead, comatose, mean, std, saturated, hist):
    """Activation statistics of every hidden layer on a fixed probe batch.

    x: (B, D) probe rows (B <= workspace rows); BN uses the probe batch's own
    statistics without touching the moving averages, dropout is off.
    Outputs per layer (L,): dead = units whose activation output is exactly 0
    for every row (a ReLU there has a zero gradient: it cannot recover);
    comatose = units whose activation input is <= 0 for every row (every dead
    ReLU, but also leaky/ELU units, which keep a small gradient there and can
    wake up; with batch norm after the activation both are counted before
    it, on the activation itself); mean/std of the activation output; saturated = fraction of
    logistic outputs within 0.01 of 0 or 1 and of tanh outputs within 0.02 of
    +-1 (1% of their range), NaN for other activations; hist (L, nbins)
    counts of the activation input over the uniform bins ``edges`` (nbins+1,),
    values outside falling in the end bins.  The output layer's row
    describes its logits.
    """
    B = x.shape[0]
    Bmax = ws.shape[1] // max(1, uws.shape[1])
    fp = fpu.enter()
    forward(ints, floats, theta, buffers, x, B, Bmax, ws, uws, rng, np.int64(MODE_PROBE))
    L = ints.shape[0]
    nb = edges.size - 1
    lo = edges[0]
    width = (edges[nb] - edges[0]) / nb
    for i in range(L):
        units = ints[i, UNITS]
        if i == L - 1:
            pre = block(ws, WS_OUT, ints, i, B, Bmax)   # the logits
            act = pre
            code = A.LINEAR
        else:
            pre = block(ws, WS_PRE, ints, i, B, Bmax)
            code = ints[i, ACT]
            act = block(ws, WS_H, ints, i, B, Bmax) if ints[i, BN] == BN_AFTER else block(ws, WS_OUT, ints, i, B, Bmax)
        n_dead = 0
        n_comatose = 0
        for u in range(units):
            alive = False
            awake = False
            for b in range(B):
                if act[b, u] != 0.0:
                    alive = True
                if pre[b, u] > 0.0:
                    awake = True
                if alive and awake:
                    break
            if not alive:
                n_dead += 1
            if not awake:
                n_comatose += 1
        dead[i] = n_dead
        comatose[i] = n_comatose
        s = 0.0
        ss = 0.0
        n_sat = 0
        for b in range(B):
            for u in range(units):
                a = act[b, u]
                s += a
                ss += a * a
                if code == A.LOGISTIC:
                    if a < 0.01 or a > 0.99:
                        n_sat += 1
                elif code == A.TANH:
                    if a < -0.98 or a > 0.98:
                        n_sat += 1
        count = B * units
        m = s / count
        mean[i] = m
        std[i] = math.sqrt(max(ss / count - m * m, 0.0))
        saturated[i] = n_sat / count if (code == A.LOGISTIC or code == A.TANH) else math.nan
        for k in range(nb):
            hist[i, k] = 0.0
        for b in range(B):
            for u in range(units):
                k = int(math.floor((pre[b, u] - lo) / width)) if math.isfinite(pre[b, u]) else 0
                k = min(max(k, 0), nb - 1)
                hist[i, k] += 1.0
    fpu.leave(fp)
