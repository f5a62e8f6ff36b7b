"""Activation functions and their derivatives, selected by integer code.

``pre`` is the activation's input (B, U), ``out`` its output (B, U).
``slopes`` (U,) holds the negative-side slope per unit for leaky ReLU,
RReLU (drawn per step in training) and PReLU (learned).  ``p0`` is the
scalar parameter of ELU (alpha).
"""
import math

import numpy as np
from numba import njit

LINEAR = 0
LOGISTIC = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
RRELU = 5
PRELU = 6
ELU = 7
SELU = 8
GELU = 9
SWISH = 10
SOFTMAX = 11   # output layer only; its derivative is folded into the loss

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
_INV_SQRT2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


@njit(cache=True, nogil=True)
def sigmoid(z):
    """Logistic function without overflow for large |z|."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@njit(cache=True, nogil=True)
def _scalar_forward(code, z, slope, p0):
    if code == LINEAR:
        return z
    if code == LOGISTIC:
        return sigmoid(z)
    if code == TANH:
        return math.tanh(z)
    if code == RELU:
        return z if z > 0.0 else 0.0
    if code == LEAKY_RELU or code == RRELU or code == PRELU:
        return z if z > 0.0 else slope * z
    if code == ELU:
        return z if z > 0.0 else p0 * math.expm1(z)
    if code == SELU:
        return SELU_SCALE * (z if z > 0.0 else SELU_ALPHA * math.expm1(z))
    if code == GELU:
        return 0.5 * z * (1.0 + math.erf(z * _INV_SQRT2))
    if code == SWISH:
        return z * sigmoid(z)
    return z


@njit(cache=True, nogil=True)
def _scalar_derivative(code, z, a, slope, p0):
    """d out / d pre at pre=z, given out=a."""
    if code == LINEAR:
        return 1.0
    if code == LOGISTIC:
        return a * (1.0 - a)
    if code == TANH:
        return 1.0 - a * a
    if code == RELU:
        return 1.0 if z > 0.0 else 0.0
    if code == LEAKY_RELU or code == RRELU or code == PRELU:
        return 1.0 if z > 0.0 else slope
    if code == ELU:
        return 1.0 if z > 0.0 else a + p0
    if code == SELU:
        return SELU_SCALE if z > 0.0 else a + SELU_SCALE * SELU_ALPHA
    if code == GELU:
        return 0.5 * (1.0 + math.erf(z * _INV_SQRT2)) + z * _INV_SQRT_2PI * math.exp(-0.5 * z * z)
    if code == SWISH:
        s = sigmoid(z)
        return s + z * s * (1.0 - s)
    return 1.0


@njit(cache=True, nogil=True)
def activation_forward(code, pre, out, slopes, p0):
    """out[b, u] = f(pre[b, u]); pre, out: (B, U); slopes: (U,)."""
    B, U = pre.shape
    if code == RELU:  # the common case, kept branch-light so it vectorizes
        for b in range(B):
            for u in range(U):
                z = pre[b, u]
                out[b, u] = z if z > 0 else 0
        return
    for b in range(B):
        for u in range(U):
            out[b, u] = _scalar_forward(code, pre[b, u], slopes[u], p0)


@njit(cache=True, nogil=True)
def activation_backward(code, pre, out, dout, slopes, p0, dpre, dslopes):
    """dpre = dout * f'(pre); for PReLU also dslopes[u] += sum_b dout * min(pre, 0).

    pre, out, dout, dpre: (B, U); slopes, dslopes: (U,).  dpre may alias dout.
    """
    B, U = pre.shape
    if code == RELU:
        for b in range(B):
            for u in range(U):
                dpre[b, u] = dout[b, u] if pre[b, u] > 0 else 0
        return
    if code == PRELU:
        for b in range(B):
            for u in range(U):
                z = pre[b, u]
                if z <= 0.0:
                    dslopes[u] += dout[b, u] * z
    for b in range(B):
        for u in range(U):
            dpre[b, u] = dout[b, u] * _scalar_derivative(code, pre[b, u], out[b, u], slopes[u], p0)
