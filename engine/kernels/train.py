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
from typing import NamedTuple

import numpy as np
from numba import njit

from engine.kernels import fpu
from engine.kernels.layout import FAN_IN, KERNEL, BIAS, MAX_NORM, TRAINABLE, UNITS
from engine.kernels.network import MODE_TRAIN, copy_into, loss_and_gradient
from engine.kernels.optim import apply_update, clip_gradients

# columns of layer_stats (L, N_STATS), measured at the last step of a chunk
STAT_GRAD_KERNEL = 0   # norm of the kernel's gradient (before clipping)
STAT_GRAD_BIAS = 1     # norm of the bias's gradient, 0 without a bias
STAT_UPDATE = 2        # norm of the kernel's change in that step
STAT_WEIGHT = 3        # norm of the kernel after it
N_STATS = 4

# entries of clip (3,); <= 0 turns one off
CLIP_VALUE = 0
CLIP_NORM = 1
CLIP_GLOBAL_NORM = 2
N_CLIP = 3

# entries of flags (2,) int64, shared with engine.control.RunControl.flags
FLAG_INTERRUPT = 0     # set by another thread: end the chunk after the step in progress
FLAG_DIVERGED = 1      # set here to one of the DIVERGED_* causes below (0: no divergence)

# what made a step diverge (the value written to flags[FLAG_DIVERGED]); the step is not applied
DIVERGED_LOSS = 1      # the loss (data + penalty) is NaN or infinite
DIVERGED_GRADIENT = 2  # the gradient's norm (as the records report it) is not finite: a NaN/inf entry, or
#                        squares beyond the weights' float type (float32: an entry above ~1.8e19)
DIVERGED_WEIGHTS = 3   # the update made a weight or a BN moving statistic NaN or infinite


# The arguments of train_steps, grouped by what they describe.  In compiled code
# a tuple of arrays and scalars is a plain struct (reading a field costs
# nothing; the step loop sees ordinary arrays), and cached compilations key on
# the field types, so cache=True keeps working.  Keep each field's dtype,
# layout and writability fixed: a different one compiles another copy.

class NetArgs(NamedTuple):
    """The network (engine.training.network.Network)."""
    ints: np.ndarray       # (L, N_INT) int64 layer table, engine.kernels.layout
    floats: np.ndarray     # (L, N_FLOAT) float64 layer table
    theta: np.ndarray      # (P,) trainable parameters, updated in place
    buffers: np.ndarray    # BN moving statistics, updated in place
    loss_code: int         # LOSS_* of engine.kernels.layout
    lowest: int            # lowest layer that needs gradients (L: none)


class OptArgs(NamedTuple):
    """The optimizer and its state."""
    code: int              # kernel code of engine.kernels.optim
    slots: np.ndarray      # (k, P) optimizer state, updated in place
    first_step: int        # updates done before this call
    hyper: np.ndarray      # (HYPER_SIZE,) hyperparameters; hyper[0] replaced by moms[s] when >= 0 (1cycle)
    ranges: np.ndarray     # (R, 2) int64 [lo, hi) trainable index ranges of theta
    tensor_bounds: np.ndarray  # (T+1,) tensor boundaries in theta, for per-tensor clipping
    clip: np.ndarray       # (N_CLIP,) CLIP_VALUE, CLIP_NORM, CLIP_GLOBAL_NORM


class DataArgs(NamedTuple):
    """The training set (read-only)."""
    x: np.ndarray          # (N, D) inputs
    y_int: np.ndarray      # (N,) labels, or empty for regression
    y_float: np.ndarray    # (N, K) targets, or empty for classification


class ChunkArgs(NamedTuple):
    """What this call runs: step s trains on rows order[starts[s]:starts[s+1]] at rate lrs[s]."""
    order: np.ndarray      # row indices of the epoch
    starts: np.ndarray     # (n+1,) batch boundaries in order
    lrs: np.ndarray        # (n,) learning rates
    moms: np.ndarray       # (n,) cycled momentum (1cycle), < 0: the optimizer's own


class WorkArgs(NamedTuple):
    """Scratch space and the random state the steps advance."""
    grad: np.ndarray       # (P,) gradient
    before: np.ndarray     # (P,) theta before the last update, of the updated ranges (every weight on a chunk's
    #                        last step, for the update's size per layer; with a max-norm constraint, every step)
    buffers_before: np.ndarray  # BN moving statistics before the last step (restored if it diverged)
    ws: np.ndarray         # workspaces of engine.kernels.network
    uws: np.ndarray
    xb: np.ndarray         # (Bmax, D) the batch's inputs
    rng: np.ndarray        # (2,) uint64: dropout masks, RReLU slopes


class OutArgs(NamedTuple):
    """What the call reports."""
    losses: np.ndarray     # (n,) total loss (data + penalty) per step
    regs: np.ndarray       # (n,) penalty per step
    layer_stats: np.ndarray  # (L, N_STATS) of the last step run
    flags: np.ndarray      # (2,) int64: FLAG_INTERRUPT (read once per step), FLAG_DIVERGED (written)


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
def _all_finite(v, lo=0, hi=-1):
    """True when no entry of v[lo:hi] (hi < 0: to the end) is NaN or infinite.
    A comparison OR-reduced, so it vectorizes (NaN compares false)."""
    part = v[lo:] if hi < 0 else v[lo:hi]
    big = part.dtype.type(math.inf)
    bad = False
    for j in range(part.size):
        bad |= not abs(part[j]) < big
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def _norm_is_finite(v):
    """math.isfinite(_sum_squares(v, 0, v.size)), mostly without summing.

    _sum_squares squares in v's dtype and adds in float64.  In float32 every
    square that is finite is below 3.5e38, and float64 cannot overflow adding
    fewer than 1e269 of them; in float64, squares below 1e280 cannot overflow
    the sum in any order for fewer than 1e28 terms.  So when every square is
    below that bound the sum is finite; the squares compared (not summed)
    vectorize, ~5x faster.  Otherwise the sum decides, exactly as before."""
    dt = v.dtype.type
    safe = dt(math.inf) if v.itemsize <= 4 else dt(1e280)
    bad = False
    for j in range(v.size):
        x = v[j]
        bad |= not x * x < safe
    return not bad or math.isfinite(_sum_squares(v, 0, v.size))


@njit(cache=True, nogil=True)
def _outside_finite(theta, ranges):
    """True when every entry of theta outside the [lo, hi) rows of ranges (sorted,
    disjoint: the frozen parameters, which no step changes) is finite."""
    ok = True
    start = 0
    for r in range(ranges.shape[0]):
        ok &= _all_finite(theta, start, ranges[r, 0])
        start = ranges[r, 1]
    return ok and _all_finite(theta, start, theta.size)


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


def train_steps(net: NetArgs, opt: OptArgs, data: DataArgs, chunk: ChunkArgs, work: WorkArgs,
                out: OutArgs) -> int:
    """Run ``n = chunk.lrs.size`` training steps in place.

    Returns the number of steps applied: n, fewer when interrupted, or s
    when step s diverged (``out.flags[FLAG_DIVERGED]`` is one of the ``DIVERGED_*``
    causes) and was *not* applied, so theta and the BN statistics still hold the
    last finite values.  A step diverges when its loss, its gradient's norm or
    the weights after its update are not finite.  Runs in compiled code
    without the GIL.
    """
    # Numba types a named tuple argument in Python on every call (~0.2 us a field, 6 us for
    # these 30: a one-step chunk of a tiny net took 45% longer), a plain tuple in C as fast as
    # separate arguments.  So they travel as plain tuples and are named again inside.
    return _train_steps(tuple(net), tuple(opt), tuple(data), tuple(chunk), tuple(work), tuple(out))


@njit(cache=True, nogil=True)
def _train_steps(net, opt, data, chunk, work, out):
    """:func:`train_steps` compiled; each argument the plain tuple of its named tuple."""
    net, opt, data = NetArgs(*net), OptArgs(*opt), DataArgs(*data)
    chunk, work, out = ChunkArgs(*chunk), WorkArgs(*work), OutArgs(*out)
    ints, theta, grad, clip = net.ints, net.theta, work.grad, opt.clip
    layer_stats, flags = out.layer_stats, out.flags
    n = chunk.lrs.size
    L = ints.shape[0]
    h = opt.hyper.copy()
    clipping = clip[CLIP_VALUE] > 0.0 or clip[CLIP_NORM] > 0.0 or clip[CLIP_GLOBAL_NORM] > 0.0
    mode = np.int64(MODE_TRAIN)   # a run-time value: a literal would compile a second copy of the network code
    # The update saves the weights it overwrites into work.before and reports whether the new
    # ones are finite, in its own pass (see engine.kernels.optim); the frozen weights never
    # change, so they are checked once.  A max-norm constraint rescales weights after the
    # update, so with one the step copies and checks every weight apart, as it always did.
    constrained = False
    for i in range(L):
        constrained |= not (net.floats[i, MAX_NORM] <= 0.0 or ints[i, TRAINABLE] == 0)   # _apply_max_norm's test
    frozen_finite = _outside_finite(theta, opt.ranges)
    fp = fpu.enter()
    done = n
    for s in range(n):
        rows = chunk.order[chunk.starts[s]:chunk.starts[s + 1]]
        if constrained:
            copy_into(work.before, theta)   # the last finite weights, should this step's update overflow
        copy_into(work.buffers_before, net.buffers)
        loss, reg = loss_and_gradient(ints, net.floats, theta, grad, net.buffers, data.x, data.y_int, data.y_float,
                                      net.loss_code, rows, work.rng, work.ws, work.uws, work.xb, net.lowest, mode)
        if not math.isfinite(loss + reg):
            cause = DIVERGED_LOSS
        elif not _norm_is_finite(grad):
            # every entry finite is not enough: their squares can overflow (in float32 above ~1.8e19,
            # in float64 above ~1.3e154), and the norm the record reports (and a clipping rule
            # divides by) would be infinite
            cause = DIVERGED_GRADIENT
        else:
            cause = 0
        if cause != 0:
            copy_into(net.buffers, work.buffers_before)   # the forward pass moved the BN statistics
            done = s
            flags[FLAG_DIVERGED] = cause
            break
        last = s == n - 1 or flags[FLAG_INTERRUPT] != 0   # an interrupted chunk measures its last step too
        if last:
            copy_into(work.before, theta)   # every weight, frozen ones too: the update's size per layer
            for i in range(L):
                fan_units = ints[i, FAN_IN] * ints[i, UNITS]
                if ints[i, TRAINABLE] == 1:
                    layer_stats[i, STAT_GRAD_KERNEL] = math.sqrt(_sum_squares(grad, ints[i, KERNEL], fan_units))
                    layer_stats[i, STAT_GRAD_BIAS] = math.sqrt(_sum_squares(grad, ints[i, BIAS], ints[i, UNITS])) \
                        if ints[i, BIAS] >= 0 else 0.0
                else:
                    layer_stats[i, STAT_GRAD_KERNEL] = 0.0
                    layer_stats[i, STAT_GRAD_BIAS] = 0.0
        if clipping:
            clip_gradients(grad, opt.tensor_bounds, clip[CLIP_VALUE], clip[CLIP_NORM], clip[CLIP_GLOBAL_NORM])
        if chunk.moms[s] >= 0.0:
            h[0] = chunk.moms[s]
        finite = frozen_finite
        for r in range(opt.ranges.shape[0]):
            finite &= apply_update(opt.code, theta, grad, opt.slots, opt.ranges[r, 0], opt.ranges[r, 1],
                                   opt.first_step + s + 1, chunk.lrs[s], h, work.before)
        if constrained:
            _apply_max_norm(ints, net.floats, theta)
            finite = _all_finite(theta)
        if not (finite and _all_finite(net.buffers)):
            if constrained or last:
                copy_into(theta, work.before)
            else:   # work.before holds the updated ranges only
                for r in range(opt.ranges.shape[0]):
                    lo, hi = opt.ranges[r, 0], opt.ranges[r, 1]
                    copy_into(theta[lo:hi], work.before[lo:hi])
            copy_into(net.buffers, work.buffers_before)
            done = s
            flags[FLAG_DIVERGED] = DIVERGED_WEIGHTS
            break
        out.losses[s] = loss + reg
        out.regs[s] = reg
        if last:
            for i in range(L):
                k0 = ints[i, KERNEL]
                fan_units = ints[i, FAN_IN] * ints[i, UNITS]
                layer_stats[i, STAT_UPDATE] = math.sqrt(_sum_squares(theta, k0, fan_units, work.before))
                layer_stats[i, STAT_WEIGHT] = math.sqrt(_sum_squares(theta, k0, fan_units))
            done = s + 1
            break
    fpu.leave(fp)
    return done
