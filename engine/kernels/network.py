"""Forward and backward passes of a stack of dense layers.

The network is described by the layer tables of :mod:`.layout`; parameters
live in the flat vector ``theta`` (trainable) and ``buffers`` (BN moving
statistics).  Intermediate values live in two workspaces sized for at most
``Bmax`` rows:

* ``ws``  (N_WS, Bmax * total_units): per-example values, one row per kind;
  layer i uses columns ``UNIT_OFFSET[i] * Bmax`` onwards as a (B, units) block;
* ``uws`` (N_UWS, total_units): per-unit values.

Matrix products go through ``np.dot`` (BLAS via SciPy); everything else is
plain loops that LLVM vectorizes.
"""
import math

import numpy as np
from numba import njit

from . import activations as A
from .layout import (ACT, ACT_P0, ACT_P1, ALPHA, ALPHA_DROPOUT, BETA, BIAS, BN, BN_AFTER, BN_BEFORE,
                     BN_EPSILON, BN_MOMENTUM, DROPOUT, FAN_IN, GAMMA, KERNEL, L1, L2, LOSS_BINARY_CE,
                     LOSS_MSE, LOSS_SOFTMAX_CE, MOVING_MEAN, MOVING_VAR, TRAINABLE, UNIT_OFFSET, UNITS)
from .rng import uniform

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
N_UWS = 2

# forward modes
MODE_INFERENCE = 0   # moving BN statistics, no dropout, RReLU at its mean slope
MODE_TRAIN = 1       # batch BN statistics (moving averages updated), dropout, random RReLU slopes
MODE_PROBE = 2       # batch BN statistics without updating them, no dropout
MODE_MC_DROPOUT = 3  # inference, but dropout kept on (Monte Carlo dropout)

SELU_ALPHA_PRIME = -A.SELU_SCALE * A.SELU_ALPHA


@njit(cache=True, nogil=True)
def block(ws, row, ints, i, B, Bmax):
    """The (B, units) block of layer i in workspace row ``row``."""
    start = ints[i, UNIT_OFFSET] * Bmax
    units = ints[i, UNITS]
    return ws[row, start:start + B * units].reshape((B, units))


@njit(cache=True, nogil=True)
def kernel_of(theta, ints, i):
    """The (fan_in, units) kernel of layer i, a view into theta."""
    start = ints[i, KERNEL]
    return theta[start:start + ints[i, FAN_IN] * ints[i, UNITS]].reshape((ints[i, FAN_IN], ints[i, UNITS]))


@njit(cache=True, nogil=True)
def _fill_slopes(ints, floats, theta, uws, i, mode, rng):
    """Negative-side slopes of layer i for this pass (uws[U_SLOPES] block)."""
    code = ints[i, ACT]
    units = ints[i, UNITS]
    off = ints[i, UNIT_OFFSET]
    slopes = uws[U_SLOPES, off:off + units]
    if code == A.LEAKY_RELU:
        slopes[:] = floats[i, ACT_P0]
    elif code == A.RRELU:
        lower = floats[i, ACT_P0]
        upper = floats[i, ACT_P1]
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
    """out = gamma * (values - mean) / sqrt(var + eps) + beta, xhat saved for backward."""
    B, units = values.shape
    off = ints[i, UNIT_OFFSET]
    istd = uws[U_ISTD, off:off + units]
    gamma = theta[ints[i, GAMMA]:ints[i, GAMMA] + units]
    beta = theta[ints[i, BETA]:ints[i, BETA] + units]
    mm = buffers[ints[i, MOVING_MEAN]:ints[i, MOVING_MEAN] + units]
    mv = buffers[ints[i, MOVING_VAR]:ints[i, MOVING_VAR] + units]
    eps = floats[i, BN_EPSILON]
    momentum = floats[i, BN_MOMENTUM]
    for u in range(units):
        if use_batch_stats:
            mean = 0.0
            for b in range(B):
                mean += values[b, u]
            mean /= B
            var = 0.0
            for b in range(B):
                d = values[b, u] - mean
                var += d * d
            var /= B  # biased, as Keras uses for both normalizing and the moving average
            if update_moving:
                mm[u] = momentum * mm[u] + (1.0 - momentum) * mean
                mv[u] = momentum * mv[u] + (1.0 - momentum) * var
        else:
            mean = mm[u]
            var = mv[u]
        inv = 1.0 / math.sqrt(var + eps)
        istd[u] = inv
        g = gamma[u]
        bt = beta[u]
        for b in range(B):
            xh = (values[b, u] - mean) * inv
            xhat[b, u] = xh
            out[b, u] = g * xh + bt


@njit(cache=True, nogil=True)
def _batch_norm_backward(d, xhat, theta, grad, ints, uws, i, used_batch_stats, write_grads):
    """In place: d (B, units) = dL/d BN output  ->  dL/d BN input."""
    B, units = d.shape
    off = ints[i, UNIT_OFFSET]
    istd = uws[U_ISTD, off:off + units]
    g0 = ints[i, GAMMA]
    b0 = ints[i, BETA]
    for u in range(units):
        sum_d = 0.0
        sum_dx = 0.0
        for b in range(B):
            sum_d += d[b, u]
            sum_dx += d[b, u] * xhat[b, u]
        if write_grads:
            grad[g0 + u] = sum_dx
            grad[b0 + u] = sum_d
        gamma = theta[g0 + u]
        inv = istd[u]
        if used_batch_stats:
            # d/dz of gamma * (z - mean(z)) / std(z): the batch statistics depend on every row
            scale = gamma * inv / B
            for b in range(B):
                d[b, u] = scale * (B * d[b, u] - sum_d - xhat[b, u] * sum_dx)
        else:
            for b in range(B):
                d[b, u] = d[b, u] * gamma * inv


@njit(cache=True, nogil=True)
def forward(ints, floats, theta, buffers, xb, B, Bmax, ws, uws, rng, mode):
    """Run the network on xb (B, n_inputs); returns the (B, n_outputs) logits block.

    Fills the workspaces that :func:`backward` needs.  The output layer's
    activation (softmax/logistic/linear) is not applied: losses work on logits.
    """
    L = ints.shape[0]
    x = xb
    for i in range(L):
        units = ints[i, UNITS]
        W = kernel_of(theta, ints, i)
        pre = block(ws, WS_PRE, ints, i, B, Bmax)
        out = block(ws, WS_OUT, ints, i, B, Bmax)
        z = np.dot(x, W)
        bias = ints[i, BIAS]
        if bias >= 0:
            for b in range(B):
                for u in range(units):
                    z[b, u] += theta[bias + u]
        if i == L - 1:
            pre[:, :] = z
            out[:, :] = z
            return out
        bn = ints[i, BN]
        batch_stats = (mode == MODE_TRAIN or mode == MODE_PROBE) and ints[i, TRAINABLE] == 1
        update_moving = mode == MODE_TRAIN and ints[i, TRAINABLE] == 1
        code = ints[i, ACT]
        slopes = _fill_slopes(ints, floats, theta, uws, i, mode, rng)
        p0 = floats[i, ACT_P0]
        if bn == BN_BEFORE:
            xhat = block(ws, WS_XHAT, ints, i, B, Bmax)
            _batch_norm_forward(z, xhat, pre, theta, buffers, ints, floats, uws, i, batch_stats, update_moving)
            A.activation_forward(code, pre, out, slopes, p0)
        elif bn == BN_AFTER:
            pre[:, :] = z
            h = block(ws, WS_H, ints, i, B, Bmax)
            A.activation_forward(code, pre, h, slopes, p0)
            xhat = block(ws, WS_XHAT, ints, i, B, Bmax)
            _batch_norm_forward(h, xhat, out, theta, buffers, ints, floats, uws, i, batch_stats, update_moving)
        else:
            pre[:, :] = z
            A.activation_forward(code, pre, out, slopes, p0)
        rate = floats[i, DROPOUT]
        if rate > 0.0 and (mode == MODE_TRAIN or mode == MODE_MC_DROPOUT):
            _dropout_forward(out, block(ws, WS_MASK, ints, i, B, Bmax), rate, ints[i, ALPHA_DROPOUT] == 1, rng)
        x = out
    return x


@njit(cache=True, nogil=True)
def _dropout_forward(out, mask, rate, alpha_dropout, rng):
    """Inverted dropout (or alpha dropout for SELU nets), mask saved for backward."""
    B, units = out.shape
    keep = 1.0 - rate
    if alpha_dropout:
        # keeps SELU's fixed point: dropped units go to the negative saturation value
        a = 1.0 / math.sqrt(keep * (1.0 + rate * SELU_ALPHA_PRIME * SELU_ALPHA_PRIME))
        shift = -a * SELU_ALPHA_PRIME * rate
        for b in range(B):
            for u in range(units):
                if uniform(rng) < keep:
                    mask[b, u] = a
                    out[b, u] = a * out[b, u] + shift
                else:
                    mask[b, u] = 0.0
                    out[b, u] = a * SELU_ALPHA_PRIME + shift
    else:
        scale = 1.0 / keep
        for b in range(B):
            for u in range(units):
                if uniform(rng) < keep:
                    mask[b, u] = scale
                    out[b, u] *= scale
                else:
                    mask[b, u] = 0.0
                    out[b, u] = 0.0


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
            rate = floats[i, DROPOUT]
            if rate > 0.0 and mode == MODE_TRAIN:
                mask = block(ws, WS_MASK, ints, i, B, Bmax)
                for b in range(B):
                    for u in range(units):
                        d[b, u] *= mask[b, u]
            code = ints[i, ACT]
            off = ints[i, UNIT_OFFSET]
            slopes = uws[U_SLOPES, off:off + units]
            p0 = floats[i, ACT_P0]
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
                A.activation_backward(code, pre, h, d, slopes, p0, d, dslopes)
            elif bn == BN_BEFORE:
                out = block(ws, WS_OUT, ints, i, B, Bmax)
                _activation_output(code, pre, out, slopes, p0, floats[i, DROPOUT] > 0.0 and mode == MODE_TRAIN,
                                   block(ws, WS_H, ints, i, B, Bmax))
                A.activation_backward(code, pre, block(ws, WS_H, ints, i, B, Bmax), d, slopes, p0, d, dslopes)
                _batch_norm_backward(d, xhat, theta, grad, ints, uws, i, batch_stats, trainable)
            else:
                out = block(ws, WS_OUT, ints, i, B, Bmax)
                _activation_output(code, pre, out, slopes, p0, floats[i, DROPOUT] > 0.0 and mode == MODE_TRAIN,
                                   block(ws, WS_H, ints, i, B, Bmax))
                A.activation_backward(code, pre, block(ws, WS_H, ints, i, B, Bmax), d, slopes, p0, d, dslopes)
        x = xb if i == 0 else block(ws, WS_OUT, ints, i - 1, B, Bmax)
        W = kernel_of(theta, ints, i)
        if trainable:
            k0 = ints[i, KERNEL]
            gW = grad[k0:k0 + ints[i, FAN_IN] * units].reshape((ints[i, FAN_IN], units))
            gW[:, :] = np.dot(x.T, d)
            l1 = floats[i, L1]
            l2 = floats[i, L2]
            if l1 != 0.0 or l2 != 0.0:
                for j in range(k0, k0 + ints[i, FAN_IN] * units):
                    w = theta[j]
                    sign = 1.0 if w > 0.0 else (-1.0 if w < 0.0 else 0.0)
                    grad[j] += l1 * sign + 2.0 * l2 * w
            bias = ints[i, BIAS]
            if bias >= 0:
                for u in range(units):
                    s = 0.0
                    for b in range(B):
                        s += d[b, u]
                    grad[bias + u] = s
        if i > lowest:
            below = block(ws, WS_DELTA, ints, i - 1, B, Bmax)
            below[:, :] = np.dot(d, W.T)


@njit(cache=True, nogil=True)
def _activation_output(code, pre, out, slopes, p0, dropped, h):
    """Put the activation's own output in h: the derivatives of logistic,
    tanh, ELU and SELU are cheapest from it.  Without dropout it is the
    layer output; with dropout the mask changed ``out``, so recompute."""
    if code == A.LOGISTIC or code == A.TANH or code == A.ELU or code == A.SELU:
        if dropped:
            A.activation_forward(code, pre, h, slopes, p0)
        else:
            h[:, :] = out


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
    D = x.shape[1]
    L = ints.shape[0]
    xs = xb[:B]
    for b in range(B):
        r = rows[b]
        for j in range(D):
            xs[b, j] = x[r, j]
    logits = forward(ints, floats, theta, buffers, xs, B, Bmax, ws, uws, rng, mode)
    delta = block(ws, WS_DELTA, ints, L - 1, B, Bmax)
    loss = loss_and_delta(loss_code, logits, y_int, y_float, rows, delta)
    reg = regularization(ints, floats, theta)
    if math.isfinite(loss + reg) and lowest < L:
        backward(ints, floats, theta, grad, xs, B, Bmax, ws, uws, lowest, mode)
    return loss, reg
