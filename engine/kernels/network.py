"""Forward and backward passes of a stack of dense layers.

The network is described by the layer tables of :mod:`.layout`; parameters
live in the flat vector ``theta`` (trainable) and ``buffers`` (BN moving
statistics).  Intermediate values live in two workspaces sized for at most
``Bmax`` rows:

* ``ws``  (N_WS, Bmax * total_units): per-example values, one row per kind;
  layer i uses columns ``UNIT_OFFSET[i] * Bmax`` onwards as a (B, units) block;
* ``uws`` (N_UWS, total_units): per-unit values.

Where the time goes, and why the code looks the way it does:

* Matrix products go through :func:`matmul`, :func:`matmul_tn` and
  :func:`matmul_nt`: ``np.dot`` (BLAS via SciPy) writing straight into the
  workspace (``np.dot(a, b, out)``: no temporary array, no copy), except for
  tiny products, where a BLAS call costs more than the arithmetic and plain
  loops win (a 2-8-8-1 network never calls BLAS).
* BLAS threads: every product sets OpenBLAS's thread count for the calling
  thread (``openblas_set_num_threads_local``) and restores it afterwards:
  one thread unless the product is large (M*N*K >= :data:`PARALLEL_MNK`).
  A product split between threads waits for the slowest part; on two cores
  shared with a window, tests or another run, that thread is often
  descheduled, and OpenBLAS's default (threads from M*N*K > 262,144) made
  784-300-100-10 steps at batch 32 take 50 ms instead of 0.7 ms.  Large
  products gain ~1.4x from a second core when it is free (batch 128 and up,
  the 3072-wide first layer of the 20x100 net), so they keep it.  Threaded
  and single-threaded OpenBLAS products round differently, so the threshold
  is a fixed size, never a run-time measurement: runs stay reproducible.
* FTZ/DAZ: the kernels' entry points set them on the calling thread
  (:mod:`.fpu`); at import, OpenBLAS's worker pool is re-created from a
  thread with FTZ/DAZ on, so the parts of threaded products computed by
  workers flush denormals too (new threads inherit the control word).
* Per-element loops (bias, BN, masks, reductions) run over rows with the
  unit index innermost, so LLVM vectorizes them, and use constants of the
  array's dtype (``dt(...)``) so float32 networks stay in float32.
"""
import ctypes
import math

import llvmlite.binding as llvm
import numpy as np
import scipy.linalg.cython_blas as cython_blas
from numba import cfunc, njit, types

from engine.kernels import activations as A
from engine.kernels import fpu
from engine.kernels.layout import (ACT, ACT_ALPHA, ACT_LOWER, ACT_UPPER, ACT_USES_OUTPUT, ALPHA, ALPHA_DROPOUT,
                                   BETA, BIAS, BN, BN_AFTER, BN_BEFORE, BN_EPSILON, BN_MOMENTUM, DROPOUT, FAN_IN,
                                   GAMMA, KERNEL, L1, L2, LOSS_BINARY_CE, LOSS_MSE, LOSS_SOFTMAX_CE, MOVING_MEAN,
                                   MOVING_VAR, TRAINABLE, UNIT_OFFSET, UNITS)
from engine.kernels.rng import uniform
from engine.kernels.views import view_2d

# rows of ws
WS_PRE = 0     # input of the activation
WS_OUT = 1     # layer output (after BN-after and dropout): the next layer's input
WS_XHAT = 2    # BN-normalized values
WS_H = 3       # activation output (before BN-after and dropout)
WS_MASK = 4    # dropout multiplier
WS_DELTA = 5   # d loss / d layer output, turned in place into d loss / d dense output
N_WS = 6
# rows of uws
U_ISTD = 0     # 1 / sqrt(var + eps) used by BN
U_SLOPES = 1   # negative-side slopes in use (leaky, RReLU, PReLU)
U_MEAN = 2     # BN: batch mean (forward); sum of deltas (backward)
U_SUM = 3      # BN: sum of delta * xhat (backward)
U_SCALE = 4    # BN: gamma * istd (backward)
N_UWS = 5

# forward modes
MODE_INFERENCE = 0   # moving BN statistics, no dropout, RReLU at its mean slope
MODE_TRAIN = 1       # batch BN statistics (moving averages updated), dropout, random RReLU slopes
MODE_PROBE = 2       # batch BN statistics without updating them, no dropout
MODE_MC_DROPOUT = 3  # inference, but dropout kept on (Monte Carlo dropout)

SELU_ALPHA_PRIME = -A.SELU_SCALE * A.SELU_ALPHA

SMALL_MNK = 8192           # products with M*N*K at most this run as plain loops
PARALLEL_MNK = 1 << 24     # products with M*N*K at least this may use every BLAS thread


# ---------------------------------------------------------------------------- BLAS threads

_BLAS_THREADS_SYMBOL = "descent_blas_set_threads_local"


def _no_thread_control(n):
    return 0


def _blas_library():
    """ctypes handle on the extension module whose BLAS Numba's np.dot calls
    (SciPy's cython_blas; its own dependencies, e.g. libscipy_openblas, are
    searched too)."""
    try:
        return ctypes.CDLL(cython_blas.__file__)
    except OSError:
        return None


def _register_blas_thread_control():
    """Point the symbol compiled code calls at openblas_set_num_threads_local
    (OpenBLAS >= 0.3.27), or at a no-op for other BLAS libraries.  Done
    before any kernel is loaded, so cached kernels link against it."""
    lib = _blas_library()
    address = None
    if lib is not None:
        try:
            address = ctypes.cast(lib.openblas_set_num_threads_local, ctypes.c_void_p).value
        except AttributeError:
            address = None
    found = address is not None
    if not found:   # another BLAS library: thread control becomes a no-op
        address = cfunc(types.intc(types.intc), cache=True)(_no_thread_control).address
    llvm.add_symbol(_BLAS_THREADS_SYMBOL, address)
    return found


BLAS_THREAD_CONTROL = _register_blas_thread_control()
_set_blas_threads_local = types.ExternalFunction(_BLAS_THREADS_SYMBOL, types.intc(types.intc))


@njit(cache=True, nogil=True)
def _restart_blas_workers(a, out):
    prev = fpu.enter()
    threads = _set_blas_threads_local(0)
    np.dot(a, a, out)
    _set_blas_threads_local(threads)
    fpu.leave(prev)


def _blas_workers_flush_denormals():
    """MXCSR is per thread and OpenBLAS's worker threads were created when
    SciPy loaded it, without FTZ/DAZ.  Shut the pool down and let the next
    threaded product re-create it from a thread that has FTZ/DAZ on (new
    threads inherit the creator's floating-point control word), so products
    split between threads flush denormals in every part.  Side effect: SciPy
    BLAS calls elsewhere in this process also flush denormals in the parts
    its worker threads compute."""
    lib = _blas_library()
    if lib is None or not fpu.X86:
        return False
    try:
        shutdown = lib.blas_thread_shutdown_
    except AttributeError:
        return False
    shutdown()
    a = np.ones((128, 128))
    _restart_blas_workers(a, np.empty_like(a))
    return True


BLAS_WORKERS_FLUSH = _blas_workers_flush_denormals()


def blas_threads() -> int | None:
    """Threads in this process's OpenBLAS pool: how many a large product (:data:`PARALLEL_MNK`)
    is split between.  Another count rounds those products differently, so a job whose runs
    train in other processes (a cluster's workers, whose BLAS gets one thread by default) gives
    them this count to get the same weights.  None for another BLAS library."""
    lib = _blas_library()
    for name in ("openblas_get_num_threads", "scipy_openblas_get_num_threads", "scipy_openblas_get_num_threads64_"):
        try:
            get = getattr(lib, name)
        except AttributeError:
            continue
        get.restype = ctypes.c_int
        return int(get())
    return None


@njit(cache=True, nogil=True, inline="always")
def _blas_threads_for(m, n, k):
    """Set the calling thread's BLAS thread count for an (m, k) x (k, n)
    product; returns the previous setting."""
    return _set_blas_threads_local(0 if m * n * k >= PARALLEL_MNK else 1)


@njit(cache=True, nogil=True)
def matmul(a, b, out):
    """out (M, N) = a (M, K) @ b (K, N)."""
    M, K = a.shape
    N = b.shape[1]
    if M * N * K <= SMALL_MNK:
        for i in range(M):
            ai0 = a[i, 0]
            for j in range(N):
                out[i, j] = ai0 * b[0, j]
            for k in range(1, K):
                aik = a[i, k]
                for j in range(N):
                    out[i, j] += aik * b[k, j]
        return
    prev = _blas_threads_for(M, N, K)
    np.dot(a, b, out)
    _set_blas_threads_local(prev)


@njit(cache=True, nogil=True)
def matmul_tn(a, b, out):
    """out (M, N) = a.T @ b for a (R, M), b (R, N): the kernel gradient x.T @ delta."""
    R, M = a.shape
    N = b.shape[1]
    if R == 1 or M * N * R <= SMALL_MNK:   # R == 1: an outer product, nothing to reduce
        for i in range(M):
            a0i = a[0, i]
            for j in range(N):
                out[i, j] = a0i * b[0, j]
        for r in range(1, R):
            for i in range(M):
                ari = a[r, i]
                for j in range(N):
                    out[i, j] += ari * b[r, j]
        return
    prev = _blas_threads_for(M, N, R)
    np.dot(a.T, b, out)
    _set_blas_threads_local(prev)


@njit(cache=True, nogil=True)
def matmul_nt(a, b, out):
    """out (M, N) = a @ b.T for a (M, K), b (N, K): the delta below, delta @ W.T."""
    M, K = a.shape
    N = b.shape[0]
    if M * N * K <= SMALL_MNK:
        for i in range(M):
            for j in range(N):
                s = out.dtype.type(0)
                for k in range(K):
                    s += a[i, k] * b[j, k]
                out[i, j] = s
        return
    prev = _blas_threads_for(M, N, K)
    np.dot(a, b.T, out)
    _set_blas_threads_local(prev)


# ---------------------------------------------------------------------------- layers

@njit(cache=True, nogil=True, inline="always")
def copy_into(dst, src):
    """dst[:] = src for 1-D arrays of one size, as a plain loop.  Numba's slice
    assignment checks the two for overlap and indexes generically, 2-3x slower:
    gathering a batch of 1024 random rows of 784 float32 took 1.0 ms that way,
    0.4 ms this way (the rows come from memory either way)."""
    for j in range(dst.size):
        dst[j] = src[j]



@njit(cache=True, nogil=True, inline="always")
def block(ws, row, ints, i, B, Bmax):
    """The (B, units) block of layer i in workspace row ``row``."""
    start = ints[i, UNIT_OFFSET] * Bmax
    units = ints[i, UNITS]
    return view_2d(ws[row, start:start + B * units], B, units)


@njit(cache=True, nogil=True, inline="always")
def kernel_of(theta, ints, i):
    """The (fan_in, units) kernel of layer i, a view into theta."""
    start = ints[i, KERNEL]
    fan_in = ints[i, FAN_IN]
    units = ints[i, UNITS]
    return view_2d(theta[start:start + fan_in * units], fan_in, units)


@njit(cache=True, nogil=True)
def _fill_slopes(ints, floats, theta, uws, i, mode, rng):
    """Negative-side slopes of layer i for this pass (uws[U_SLOPES] block)."""
    code = ints[i, ACT]
    units = ints[i, UNITS]
    off = ints[i, UNIT_OFFSET]
    slopes = uws[U_SLOPES, off:off + units]
    if code == A.LEAKY_RELU:
        slopes[:] = floats[i, ACT_ALPHA]
    elif code == A.RRELU:
        lower = floats[i, ACT_LOWER]
        upper = floats[i, ACT_UPPER]
        if mode == MODE_TRAIN:
            for u in range(units):
                slopes[u] = lower + (upper - lower) * uniform(rng)
        else:
            slopes[:] = 0.5 * (lower + upper)
    elif code == A.PRELU:
        start = ints[i, ALPHA]
        slopes[:] = theta[start:start + units]
    return slopes


@njit(cache=True, nogil=True)
def _batch_norm_forward(values, xhat, out, theta, buffers, ints, floats, uws, i, use_batch_stats, update_moving):
    """out = gamma * (values - mean) / sqrt(var + eps) + beta, xhat saved for backward.

    values may be the same array as xhat (normalized in place)."""
    B, units = values.shape
    dt = values.dtype.type
    off = ints[i, UNIT_OFFSET]
    istd = uws[U_ISTD, off:off + units]
    mean = uws[U_MEAN, off:off + units]
    gamma = theta[ints[i, GAMMA]:ints[i, GAMMA] + units]
    beta = theta[ints[i, BETA]:ints[i, BETA] + units]
    mm = buffers[ints[i, MOVING_MEAN]:ints[i, MOVING_MEAN] + units]
    mv = buffers[ints[i, MOVING_VAR]:ints[i, MOVING_VAR] + units]
    eps = floats[i, BN_EPSILON]
    momentum = floats[i, BN_MOMENTUM]
    if use_batch_stats:
        inv_b = dt(1.0 / B)
        mean[:] = 0
        for b in range(B):
            for u in range(units):
                mean[u] += values[b, u]
        for u in range(units):
            mean[u] *= inv_b
        var = istd   # the variance, turned into 1/std below
        var[:] = 0
        for b in range(B):
            for u in range(units):
                d = values[b, u] - mean[u]
                var[u] += d * d
        for u in range(units):
            var[u] *= inv_b   # biased, as Keras uses for both normalizing and the moving average
        if update_moving:
            for u in range(units):
                mm[u] = momentum * mm[u] + (1.0 - momentum) * mean[u]
                mv[u] = momentum * mv[u] + (1.0 - momentum) * var[u]
        for u in range(units):
            istd[u] = 1.0 / math.sqrt(var[u] + eps)
    else:
        for u in range(units):
            mean[u] = mm[u]
            istd[u] = 1.0 / math.sqrt(mv[u] + eps)
    for b in range(B):
        for u in range(units):
            xh = (values[b, u] - mean[u]) * istd[u]
            xhat[b, u] = xh
            out[b, u] = gamma[u] * xh + beta[u]


@njit(cache=True, nogil=True)
def _batch_norm_backward(d, xhat, theta, grad, ints, uws, i, used_batch_stats, write_grads):
    """In place: d (B, units) = dL/d BN output  ->  dL/d BN input."""
    B, units = d.shape
    dt = d.dtype.type
    off = ints[i, UNIT_OFFSET]
    istd = uws[U_ISTD, off:off + units]
    sum_d = uws[U_MEAN, off:off + units]
    sum_dx = uws[U_SUM, off:off + units]
    scale = uws[U_SCALE, off:off + units]
    g0 = ints[i, GAMMA]
    b0 = ints[i, BETA]
    gamma = theta[g0:g0 + units]
    sum_d[:] = 0
    sum_dx[:] = 0
    for b in range(B):
        for u in range(units):
            sum_d[u] += d[b, u]
            sum_dx[u] += d[b, u] * xhat[b, u]
    if write_grads:
        grad[g0:g0 + units] = sum_dx
        grad[b0:b0 + units] = sum_d
    for u in range(units):
        scale[u] = gamma[u] * istd[u]
    if used_batch_stats:
        # d/dz of gamma * (z - mean(z)) / std(z): the batch statistics depend on every row
        #   = gamma * istd * (d - mean_b(d) - xhat * mean_b(d * xhat))
        inv_b = dt(1.0 / B)
        for u in range(units):
            sum_d[u] *= inv_b
            sum_dx[u] *= inv_b
        for b in range(B):
            for u in range(units):
                d[b, u] = scale[u] * (d[b, u] - sum_d[u] - xhat[b, u] * sum_dx[u])
    else:
        for b in range(B):
            for u in range(units):
                d[b, u] *= scale[u]


@njit(cache=True, nogil=True)
def _add_bias(z, theta, start):
    B, units = z.shape
    bias = theta[start:start + units]
    for b in range(B):
        for u in range(units):
            z[b, u] += bias[u]


@njit(cache=True, nogil=True)
def forward(ints, floats, theta, buffers, xb, B, Bmax, ws, uws, rng, mode):
    """Run the network on xb (B, n_inputs); returns the (B, n_outputs) logits block.

    Fills the workspaces that :func:`backward` needs.  The output layer's
    activation (softmax/logistic/linear) is not applied: losses work on logits,
    which are the output layer's WS_OUT block.
    """
    L = ints.shape[0]
    x = xb
    for i in range(L):
        W = kernel_of(theta, ints, i)
        out = block(ws, WS_OUT, ints, i, B, Bmax)
        bias = ints[i, BIAS]
        if i == L - 1:
            matmul(x, W, out)
            if bias >= 0:
                _add_bias(out, theta, bias)
            return out
        pre = block(ws, WS_PRE, ints, i, B, Bmax)
        bn = ints[i, BN]
        batch_stats = (mode == MODE_TRAIN or mode == MODE_PROBE) and ints[i, TRAINABLE] == 1
        update_moving = mode == MODE_TRAIN and ints[i, TRAINABLE] == 1
        slopes = _fill_slopes(ints, floats, theta, uws, i, mode, rng)
        if bn == BN_BEFORE:
            z = block(ws, WS_XHAT, ints, i, B, Bmax)   # normalized in place
            matmul(x, W, z)
            if bias >= 0:
                _add_bias(z, theta, bias)
            _batch_norm_forward(z, z, pre, theta, buffers, ints, floats, uws, i, batch_stats, update_moving)
            A.activation_forward(ints, floats, i, pre, out, slopes)
        elif bn == BN_AFTER:
            matmul(x, W, pre)
            if bias >= 0:
                _add_bias(pre, theta, bias)
            h = block(ws, WS_H, ints, i, B, Bmax)
            A.activation_forward(ints, floats, i, pre, h, slopes)
            xhat = block(ws, WS_XHAT, ints, i, B, Bmax)
            _batch_norm_forward(h, xhat, out, theta, buffers, ints, floats, uws, i, batch_stats, update_moving)
        else:
            matmul(x, W, pre)
            if bias >= 0:
                _add_bias(pre, theta, bias)
            A.activation_forward(ints, floats, i, pre, out, slopes)
        rate = floats[i, DROPOUT]
        if rate > 0.0 and (mode == MODE_TRAIN or mode == MODE_MC_DROPOUT):
            _dropout_forward(out, block(ws, WS_MASK, ints, i, B, Bmax), rate, ints[i, ALPHA_DROPOUT] == 1, rng)
        x = out
    return x


@njit(cache=True, nogil=True)
def _dropout_forward(out, mask, rate, alpha_dropout, rng):
    """Inverted dropout (or alpha dropout for SELU nets), mask saved for backward."""
    B, units = out.shape
    dt = out.dtype.type
    keep = 1.0 - rate
    zero = dt(0)
    if alpha_dropout:
        # keeps SELU's fixed point: dropped units go to the negative saturation value
        a = 1.0 / math.sqrt(keep * (1.0 + rate * SELU_ALPHA_PRIME * SELU_ALPHA_PRIME))
        shift = dt(-a * SELU_ALPHA_PRIME * rate)
        dropped = dt(a * SELU_ALPHA_PRIME) + shift
        a = dt(a)
        for b in range(B):
            for u in range(units):
                if uniform(rng) < keep:
                    mask[b, u] = a
                    out[b, u] = a * out[b, u] + shift
                else:
                    mask[b, u] = zero
                    out[b, u] = dropped
    else:
        scale = dt(1.0 / keep)
        for b in range(B):
            for u in range(units):
                if uniform(rng) < keep:
                    mask[b, u] = scale
                    out[b, u] *= scale
                else:
                    mask[b, u] = zero
                    out[b, u] = zero


@njit(cache=True, nogil=True)
def loss_and_delta(loss_code, logits, y_int, y_float, rows, delta):
    """Mean loss over the batch and its gradient w.r.t. the logits.

    logits, delta: (B, K); rows (B,) index into y_int (N,) labels or
    y_float (N, K) targets.  Cross-entropies use log-sum-exp / softplus so
    logits of +-1e4 stay finite.
    """
    B, K = logits.shape
    total = 0.0
    if loss_code == LOSS_SOFTMAX_CE:
        for b in range(B):
            m = logits[b, 0]
            for k in range(1, K):
                m = max(m, logits[b, k])
            s = 0.0
            for k in range(K):
                s += math.exp(logits[b, k] - m)
            lse = m + math.log(s)
            label = y_int[rows[b]]
            total += lse - logits[b, label]
            for k in range(K):
                delta[b, k] = math.exp(logits[b, k] - lse) / B
            delta[b, label] -= 1.0 / B
    elif loss_code == LOSS_BINARY_CE:
        for b in range(B):
            z = logits[b, 0]
            y = float(y_int[rows[b]])
            total += max(z, 0.0) - z * y + math.log1p(math.exp(-abs(z)))
            delta[b, 0] = (A.sigmoid(z) - y) / B
    else:
        for b in range(B):
            for k in range(K):
                diff = logits[b, k] - y_float[rows[b], k]
                total += diff * diff / K
                delta[b, k] = 2.0 * diff / (B * K)
    return total / B


@njit(cache=True, nogil=True)
def count_correct(loss_code, logits, y_int, rows):
    """Number of rows whose predicted class equals the label (classification)."""
    B, K = logits.shape
    correct = 0
    if loss_code == LOSS_MSE:
        return 0
    for b in range(B):
        if loss_code == LOSS_BINARY_CE:
            pred = 1 if logits[b, 0] > 0.0 else 0
        else:
            pred = 0
            for k in range(1, K):
                if logits[b, k] > logits[b, pred]:
                    pred = k
        if pred == y_int[rows[b]]:
            correct += 1
    return correct


@njit(cache=True, nogil=True)
def regularization(ints, floats, theta):
    """sum over layers of l1 * sum|W| + l2 * sum W^2 (kernels only)."""
    total = 0.0
    for i in range(ints.shape[0]):
        l1 = floats[i, L1]
        l2 = floats[i, L2]
        if l1 == 0.0 and l2 == 0.0:
            continue
        start = ints[i, KERNEL]
        for j in range(start, start + ints[i, FAN_IN] * ints[i, UNITS]):
            w = theta[j]
            total += l1 * abs(w) + l2 * w * w
    return total


@njit(cache=True, nogil=True)
def backward(ints, floats, theta, grad, xb, B, Bmax, ws, uws, lowest, mode):
    """Backpropagate the logits' delta (already in the output layer's WS_DELTA
    block) down to layer ``lowest``, writing gradients of trainable layers
    into ``grad`` (same layout as theta), regularization included."""
    L = ints.shape[0]
    for i in range(L - 1, lowest - 1, -1):
        units = ints[i, UNITS]
        d = block(ws, WS_DELTA, ints, i, B, Bmax)
        trainable = ints[i, TRAINABLE] == 1
        if i < L - 1:
            dropped = floats[i, DROPOUT] > 0.0 and mode == MODE_TRAIN
            if dropped:
                mask = block(ws, WS_MASK, ints, i, B, Bmax)
                for b in range(B):
                    for u in range(units):
                        d[b, u] *= mask[b, u]
            off = ints[i, UNIT_OFFSET]
            slopes = uws[U_SLOPES, off:off + units]
            pre = block(ws, WS_PRE, ints, i, B, Bmax)
            has_alpha = ints[i, ALPHA] >= 0 and trainable
            dslopes = grad[ints[i, ALPHA]:ints[i, ALPHA] + units] if has_alpha else uws[U_ISTD, 0:0]
            if has_alpha:
                dslopes[:] = 0.0
            batch_stats = (mode == MODE_TRAIN or mode == MODE_PROBE) and trainable
            bn = ints[i, BN]
            xhat = block(ws, WS_XHAT, ints, i, B, Bmax)
            if bn == BN_AFTER:
                _batch_norm_backward(d, xhat, theta, grad, ints, uws, i, batch_stats, trainable)
                h = block(ws, WS_H, ints, i, B, Bmax)
                A.activation_backward(ints, floats, i, pre, h, d, slopes, d, dslopes)
            else:
                # the activation's own output: some derivatives are cheapest from it (logistic,
                # tanh, ELU, SELU: the entry's uses_output).  It is the layer output unless
                # dropout changed it; then it is computed again for those that read it.
                act = block(ws, WS_OUT, ints, i, B, Bmax)
                if dropped and ints[i, ACT_USES_OUTPUT] == 1:
                    act = block(ws, WS_H, ints, i, B, Bmax)
                    A.activation_forward(ints, floats, i, pre, act, slopes)
                A.activation_backward(ints, floats, i, pre, act, d, slopes, d, dslopes)
                if bn == BN_BEFORE:
                    _batch_norm_backward(d, xhat, theta, grad, ints, uws, i, batch_stats, trainable)
        x = xb if i == 0 else block(ws, WS_OUT, ints, i - 1, B, Bmax)
        W = kernel_of(theta, ints, i)
        if trainable:
            k0 = ints[i, KERNEL]
            fan_in = ints[i, FAN_IN]
            gW = view_2d(grad[k0:k0 + fan_in * units], fan_in, units)
            matmul_tn(x, d, gW)
            l1 = floats[i, L1]
            l2 = floats[i, L2]
            if l1 != 0.0 or l2 != 0.0:
                for j in range(k0, k0 + fan_in * units):
                    w = theta[j]
                    sign = 1.0 if w > 0.0 else (-1.0 if w < 0.0 else 0.0)
                    grad[j] += l1 * sign + 2.0 * l2 * w
            bias = ints[i, BIAS]
            if bias >= 0:
                gb = grad[bias:bias + units]
                gb[:] = 0
                for b in range(B):
                    for u in range(units):
                        gb[u] += d[b, u]
        if i > lowest:
            matmul_nt(d, W, block(ws, WS_DELTA, ints, i - 1, B, Bmax))


@njit(cache=True, nogil=True)
def loss_and_gradient(ints, floats, theta, grad, buffers, x, y_int, y_float, loss_code, rows, rng,
                      ws, uws, xb, lowest, mode):
    """One forward/backward pass on the rows ``rows`` (B,) of x (N, D).

    Writes the gradient of (mean loss + penalty) into grad (P,) for trainable
    layers >= lowest and returns (data loss, penalty).  With the same rng
    state, dropout masks and RReLU slopes repeat exactly, which is what
    finite-difference checks need.
    """
    B = rows.size
    Bmax = xb.shape[0]
    L = ints.shape[0]
    xs = xb[:B]
    for b in range(B):
        copy_into(xs[b], x[rows[b]])
    logits = forward(ints, floats, theta, buffers, xs, B, Bmax, ws, uws, rng, mode)
    delta = block(ws, WS_DELTA, ints, L - 1, B, Bmax)
    loss = loss_and_delta(loss_code, logits, y_int, y_float, rows, delta)
    reg = regularization(ints, floats, theta)
    if math.isfinite(loss + reg) and lowest < L:
        backward(ints, floats, theta, grad, xs, B, Bmax, ws, uws, lowest, mode)
    return loss, reg
