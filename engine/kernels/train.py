"""The fused training loop: many optimizer steps in one compiled call.

A step of a small network costs microseconds, far less than a Python
round-trip, so the Python loop hands over a chunk of steps (with their
learning rates and batch rows) and gets control back between chunks to
log, honour pause/stop and change the learning rate.

The call runs with flush-to-zero / denormals-are-zero on the calling thread
(:mod:`.fpu`): dead ReLUs leave optimizer state decaying into float32
denormals, which would otherwise slow every later step down.
"""
import math

import numpy as np
from numba import njit

from engine.kernels import fpu
from engine.kernels.layout import FAN_IN, KERNEL, BIAS, MAX_NORM, TRAINABLE, UNITS
from engine.kernels.network import MODE_TRAIN, loss_and_gradient
from engine.kernels.optim import apply_update, clip_gradients

# columns of layer_stats
STAT_GRAD_KERNEL = 0
STAT_GRAD_BIAS = 1
STAT_UPDATE = 2
STAT_WEIGHT = 3
N_STATS = 4


@njit(cache=True, nogil=True, error_model="numpy")
def _sum_squares(v, start, n, w=None):
    """sum over start <= j < start + n of v[j]**2 (or of (v[j] - w[j])**2), in float64.

    Eight independent partial sums: a single float accumulator is a chain of
    dependent additions that LLVM may not reorder, ~4 cycles per element; these
    statistics cover every parameter after each chunk of steps."""
    acc = np.zeros(8)
    x = v[start:start + n]
    full = n - n % 8
    for j in range(0, full, 8):
        for k in range(8):
            d = float(x[j + k]) if w is None else float(x[j + k]) - float(w[start + j + k])
            acc[k] += d * d
    for j in range(full, n):
        d = float(x[j]) if w is None else float(x[j]) - float(w[start + j])
        acc[0] += d * d
    return acc.sum()


@njit(cache=True, nogil=True, error_model="numpy")
def _all_finite(v):
    """True when no entry of v is NaN or infinite (x - x is 0 exactly for finite x).
    An integer OR-reduction, so it vectorizes, unlike a float sum of squares."""
    bad = 0
    for j in range(v.size):
        x = v[j]
        bad |= (x - x) != 0
    return bad == 0


@njit(cache=True, nogil=True)
def _apply_max_norm(ints, floats, theta):
    """Rescale each unit's incoming weights (a kernel column) to norm <= max_norm."""
    for i in range(ints.shape[0]):
        c = floats[i, MAX_NORM]
        if c <= 0.0 or ints[i, TRAINABLE] == 0:
            continue
        W = theta[ints[i, KERNEL]:ints[i, KERNEL] + ints[i, FAN_IN] * ints[i, UNITS]].reshape(
            (ints[i, FAN_IN], ints[i, UNITS]))
        for u in range(W.shape[1]):
            s = 0.0
            for r in range(W.shape[0]):
                s += W[r, u] * W[r, u]
            norm = math.sqrt(s)
            if norm > c:
                scale = c / norm
                for r in range(W.shape[0]):
                    W[r, u] *= scale


@njit(cache=True, nogil=True)
def train_steps(ints, floats, theta, grad, buffers, opt_code, slots, first_step, hyper, lrs, moms,
                ranges, tensor_bounds, clip, x, y_int, y_float, loss_code, order, starts, rng,
                ws, uws, xb, lowest, losses, regs, layer_stats, before, flags):
    """Run ``n = lrs.size`` training steps in place.

    theta, grad: (P,) parameters and gradient scratch; buffers: BN moving stats;
    slots: (k, P) optimizer state; first_step: number of updates done before
    this call; hyper: (8,) optimizer hyperparameters, hyper[0] replaced by
    moms[s] when moms[s] >= 0 (1cycle); lrs, moms: (n,);
    ranges: (R, 2) [lo, hi) trainable index ranges of theta;
    tensor_bounds: (T+1,) tensor boundaries for per-tensor clipping;
    clip: (3,) clipvalue, clipnorm, global_clipnorm (<= 0 off);
    x: (N, D) inputs; y_int (N,) labels or y_float (N, K) targets;
    order: row indices, batch s = order[starts[s]:starts[s+1]];
    rng: (2,) uint64 state; ws/uws/xb: workspaces (see network.py), xb (Bmax, D);
    lowest: lowest layer that needs gradients;
    losses, regs: (n,) out: total loss (data + penalty) and penalty per step;
    layer_stats: (L, N_STATS) out, measured at the last step run;
    before: (P,) scratch to measure the last step's update;
    flags: (2,) int64: flags[0] != 0 asks the chunk to end after the step in
    progress (the window's Pause, Stop or a new learning rate, set from
    another thread; read once per step), flags[1] is set to 1 here when a
    step had a non-finite loss or gradient.

    Returns the number of steps applied: n, fewer when interrupted, or s
    when step s diverged (flags[1] == 1) and was *not* applied, so theta still
    holds the last finite weights.
    """
    n = lrs.size
    L = ints.shape[0]
    h = hyper.copy()
    clipping = clip[0] > 0.0 or clip[1] > 0.0 or clip[2] > 0.0
    mode = np.int64(MODE_TRAIN)   # a run-time value: a literal would compile a second copy of the network code
    fp = fpu.enter()
    done = n
    for s in range(n):
        rows = order[starts[s]:starts[s + 1]]
        loss, reg = loss_and_gradient(ints, floats, theta, grad, buffers, x, y_int, y_float, loss_code, rows,
                                      rng, ws, uws, xb, lowest, mode)
        if not math.isfinite(loss + reg):
            done = s
            flags[1] = 1
            break
        last = s == n - 1 or flags[0] != 0   # an interrupted chunk measures its last step too
        if last:
            for i in range(L):
                fan_units = ints[i, FAN_IN] * ints[i, UNITS]
                if ints[i, TRAINABLE] == 1:
                    layer_stats[i, 0] = math.sqrt(_sum_squares(grad, ints[i, KERNEL], fan_units))
                    layer_stats[i, 1] = math.sqrt(_sum_squares(grad, ints[i, BIAS], ints[i, UNITS])) \
                        if ints[i, BIAS] >= 0 else 0.0
                else:
                    layer_stats[i, 0] = 0.0
                    layer_stats[i, 1] = 0.0
            before[:] = theta
        if clipping:
            if not math.isfinite(clip_gradients(grad, tensor_bounds, clip[0], clip[1], clip[2])):
                done = s
                flags[1] = 1
                break
        elif not _all_finite(grad):
            done = s
            flags[1] = 1
            break
        if moms[s] >= 0.0:
            h[0] = moms[s]
        for r in range(ranges.shape[0]):
            apply_update(opt_code, theta, grad, slots, ranges[r, 0], ranges[r, 1], first_step + s + 1, lrs[s], h)
        _apply_max_norm(ints, floats, theta)
        losses[s] = loss + reg
        regs[s] = reg
        if last:
            for i in range(L):
                k0 = ints[i, KERNEL]
                fan_units = ints[i, FAN_IN] * ints[i, UNITS]
                layer_stats[i, 2] = math.sqrt(_sum_squares(theta, k0, fan_units, before))
                layer_stats[i, 3] = math.sqrt(_sum_squares(theta, k0, fan_units))
            done = s + 1
            break
    fpu.leave(fp)
    return done
