"""Activation functions and their derivatives, selected by integer code.

``pre`` is the activation's input (B, U), ``out`` its output (B, U).  The
layer's row of the layout tables (:mod:`.layout`) says which activation
(``ints[i, ACT]``) and with which parameters (``floats[i, ACT_P0]``,
``floats[i, ACT_P1]``, named per activation there).  ``slopes`` (U,) holds
the negative-side slope per unit for leaky ReLU, RReLU (drawn per step in
training) and PReLU (learned).

Activations defined outside this module (code :data:`EXTENSION`) bring a
scalar forward ``f(z, p0, p1)`` and derivative ``f'(z, a, p0, p1)``
(a = f(z)), compiled by Numba as C functions (``cfunc``); the layer's row
holds their addresses (``ACT_FORWARD``, ``ACT_DERIVATIVE``) and the loops
below call them through those pointers: native calls, no Python, no
recompilation of these kernels, and the cached machine code stays valid
because the addresses are data, not constants.  The built-in activations
keep their own vectorized loops.

Speed: each common activation has its own loop, with the code tested once
outside it and constants of the array's dtype, so LLVM vectorizes it.  The C
library's tanh/exp/expm1 are scalar calls (15-20 ns each, more than the rest
of a small network's step); for float32 arrays :func:`tanh`, :func:`exp` and
:func:`expm1` below are branch-free polynomial versions that vectorize
(accurate to a few float32 ulp, see tests/test_speed_invariants.py).  Float64
arrays keep the C library's functions, so the float64 gradient checks see
exactly the same functions as before.
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from engine.kernels.layout import ACT, ACT_ALPHA, ACT_DERIVATIVE, ACT_FORWARD, ACT_P0, ACT_P1
from engine.kernels.views import view_1d

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
EXTENSION = 100  # compiled elsewhere: scalar functions called through the layer's pointers

# C signatures of an EXTENSION activation's scalar functions
EXTENSION_FORWARD = types.float64(types.float64, types.float64, types.float64)                  # (z, p0, p1)
EXTENSION_DERIVATIVE = types.float64(types.float64, types.float64, types.float64, types.float64)  # (z, a, p0, p1)

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
_INV_SQRT2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


# ---------------------------------------------------------------------------- float32 fast math

@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret the low 32 bits of an integer as a float32."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        low = context.cast(builder, args[0], signature.args[0], types.int32)
        return builder.bitcast(low, ir.FloatType())
    return types.float32(bits), codegen


_F = np.float32
# exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then Cephes' expf polynomial
_EXP_HI = _F(88.3762626647949)
_EXP_LO = _F(-87.3365447504019)     # exp(_EXP_LO) ~ 1.18e-38, the smallest normal float32
_LOG2E = _F(1.44269504088896341)
_LN2_HI = _F(0.693359375)
_LN2_LO = _F(-2.12194440e-4)
_EXP_P = (_F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3), _F(4.1665795894e-2),
          _F(1.6666665459e-1), _F(5.0000001201e-1))
# tanh: Cephes' tanhf polynomial for |x| < 0.625
_TANH_P = (_F(-5.70498872745e-3), _F(2.06390887954e-2), _F(-5.37397155531e-2), _F(1.33314422036e-1),
           _F(-3.33332819422e-1))


@njit(cache=True, nogil=True, error_model="numpy")
def _exp32(x):
    """e^x for float32 x, within ~1 ulp; saturates to the smallest normal below -87.3
    (the true value is a denormal, flushed to zero by the kernels anyway) and to
    +inf above 88.4."""
    over = x > _EXP_HI
    x = min(max(x, _EXP_LO), _EXP_HI)
    n = math.floor(x * _LOG2E + _F(0.5))
    r = x - n * _LN2_HI - n * _LN2_LO
    p = _EXP_P[0]
    p = p * r + _EXP_P[1]
    p = p * r + _EXP_P[2]
    p = p * r + _EXP_P[3]
    p = p * r + _EXP_P[4]
    p = p * r + _EXP_P[5]
    y = p * (r * r) + r + _F(1.0)
    scale = _float32_from_bits(np.int32(n + _F(127.0)) << 23)
    return _F(np.inf) if over else y * scale


@njit(cache=True, nogil=True, error_model="numpy")
def _expm1_32(x):
    """e^x - 1 for float32 x: a degree-8 Taylor polynomial for |x| < 0.5
    (no cancellation near 0), e^x - 1 elsewhere."""
    p = _F(1.0 / 40320.0)
    p = p * x + _F(1.0 / 5040.0)
    p = p * x + _F(1.0 / 720.0)
    p = p * x + _F(1.0 / 120.0)
    p = p * x + _F(1.0 / 24.0)
    p = p * x + _F(1.0 / 6.0)
    p = p * x + _F(0.5)
    small = (p * x) * x + x
    large = _exp32(x) - _F(1.0)
    return small if abs(x) < _F(0.5) else large


@njit(cache=True, nogil=True, error_model="numpy")
def _tanh32(x):
    """tanh for float32 x, as Cephes' tanhf: an odd polynomial for |x| < 0.625,
    1 - 2 / (e^(2|x|) + 1) beyond (no cancellation there)."""
    z = x * x
    p = _TANH_P[0]
    p = p * z + _TANH_P[1]
    p = p * z + _TANH_P[2]
    p = p * z + _TANH_P[3]
    p = p * z + _TANH_P[4]
    small = (p * z) * x + x
    a = abs(x)
    big = _F(1.0) - _F(2.0) / (_exp32(_F(2.0) * min(a, _F(9.0))) + _F(1.0))   # tanh(9) rounds to 1
    big = big if x >= _F(0.0) else -big
    return small if a < _F(0.625) else big


def tanh(x):
    """tanh: vectorizable polynomial for float32, math.tanh otherwise."""
    return math.tanh(x)


def exp(x):
    """e^x: vectorizable polynomial for float32, math.exp otherwise."""
    return math.exp(x)


def expm1(x):
    """e^x - 1: vectorizable polynomial for float32, math.expm1 otherwise."""
    return math.expm1(x)


@overload(tanh, jit_options={"cache": True})
def _tanh_impl(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    return lambda x: math.tanh(x)


@overload(exp, jit_options={"cache": True})
def _exp_impl(x):
    if x == types.float32:
        return lambda x: _exp32(x)
    return lambda x: math.exp(x)


@overload(expm1, jit_options={"cache": True})
def _expm1_impl(x):
    if x == types.float32:
        return lambda x: _expm1_32(x)
    return lambda x: math.expm1(x)




@intrinsic
def _call_scalar(typingctx, address, args):
    """Call the C function at ``address`` (an integer from the layer table)
    with the float64 values of the tuple ``args``; returns its float64."""
    if not isinstance(address, types.Integer) or not isinstance(args, types.UniTuple) \
            or args.dtype != types.float64:
        return None
    count = args.count

    def codegen(context, builder, signature, llargs):
        function_type = ir.FunctionType(ir.DoubleType(), [ir.DoubleType()] * count)
        function = builder.inttoptr(llargs[0], function_type.as_pointer())
        return builder.call(function, [builder.extract_value(llargs[1], k) for k in range(count)])
    return types.float64(address, args), codegen


@njit(cache=True, nogil=True)
def _extension(ints, floats, i, column):
    """(address of the function in ints column ``column``, p0, p1) of layer i's
    EXTENSION activation; a zero address would crash, so it is refused."""
    address = ints[i, column]
    if address == 0:
        raise ValueError("an extension activation's compiled function is missing from the layer table")
    return address, floats[i, ACT_P0], floats[i, ACT_P1]


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


@njit(cache=True, nogil=True, error_model="numpy")
def activation_forward(ints, floats, i, pre, out, slopes):
    """out[b, u] = f(pre[b, u]) for the activation of layer i; pre, out: (B, U); slopes: (U,)."""
    B, U = pre.shape
    dt = pre.dtype.type
    zero = dt(0)
    code = ints[i, ACT]
    p0 = floats[i, ACT_ALPHA]   # ELU's alpha
    if code == RELU:
        for b in range(B):
            for u in range(U):
                z = pre[b, u]
                out[b, u] = z if z > zero else zero
    elif code == TANH:
        p, o = view_1d(pre), view_1d(out)   # one long loop vectorizes better than B short ones
        for k in range(p.size):
            o[k] = tanh(p[k])
    elif code == LOGISTIC:
        one = dt(1)
        p, o = view_1d(pre), view_1d(out)
        for k in range(p.size):
            z = p[k]
            e = exp(-abs(z))      # never overflows
            r = one / (one + e)
            o[k] = r if z >= zero else e * r
    elif code == ELU:
        alpha = dt(p0)
        p, o = view_1d(pre), view_1d(out)
        for k in range(p.size):
            z = p[k]
            o[k] = z if z > zero else alpha * expm1(z)
    elif code == SELU:
        scale = dt(SELU_SCALE)
        scaled_alpha = dt(SELU_SCALE * SELU_ALPHA)
        p, o = view_1d(pre), view_1d(out)
        for k in range(p.size):
            z = p[k]
            o[k] = scale * z if z > zero else scaled_alpha * expm1(z)
    elif code == LEAKY_RELU or code == RRELU or code == PRELU:
        for b in range(B):
            for u in range(U):
                z = pre[b, u]
                out[b, u] = z if z > zero else slopes[u] * z
    elif code == LINEAR:
        for b in range(B):
            for u in range(U):
                out[b, u] = pre[b, u]
    elif code == EXTENSION:
        forward, q0, q1 = _extension(ints, floats, i, ACT_FORWARD)
        for b in range(B):
            for u in range(U):
                out[b, u] = _call_scalar(forward, (np.float64(pre[b, u]), q0, q1))
    else:
        for b in range(B):
            for u in range(U):
                out[b, u] = _scalar_forward(code, pre[b, u], slopes[u], p0)


@njit(cache=True, nogil=True, error_model="numpy")
def activation_backward(ints, floats, i, pre, out, dout, slopes, dpre, dslopes):
    """dpre = dout * f'(pre) for the activation of layer i; for PReLU also
    dslopes[u] += sum_b dout * min(pre, 0).

    pre, out, dout, dpre: (B, U); slopes, dslopes: (U,).  dpre may alias dout.
    """
    B, U = pre.shape
    dt = pre.dtype.type
    zero = dt(0)
    one = dt(1)
    code = ints[i, ACT]
    p0 = floats[i, ACT_ALPHA]   # ELU's alpha
    if code == RELU:
        for b in range(B):
            for u in range(U):
                dpre[b, u] = dout[b, u] if pre[b, u] > zero else zero
    elif code == TANH:
        for b in range(B):
            for u in range(U):
                a = out[b, u]
                dpre[b, u] = dout[b, u] * (one - a * a)
    elif code == LOGISTIC:
        for b in range(B):
            for u in range(U):
                a = out[b, u]
                dpre[b, u] = dout[b, u] * (a * (one - a))
    elif code == ELU:
        alpha = dt(p0)
        for b in range(B):
            for u in range(U):
                dpre[b, u] = dout[b, u] * (one if pre[b, u] > zero else out[b, u] + alpha)
    elif code == SELU:
        scale = dt(SELU_SCALE)
        scaled_alpha = dt(SELU_SCALE * SELU_ALPHA)
        for b in range(B):
            for u in range(U):
                dpre[b, u] = dout[b, u] * (scale if pre[b, u] > zero else out[b, u] + scaled_alpha)
    elif code == LEAKY_RELU or code == RRELU or code == PRELU:
        if code == PRELU:
            for b in range(B):
                for u in range(U):
                    z = pre[b, u]
                    if z <= zero:
                        dslopes[u] += dout[b, u] * z
        for b in range(B):
            for u in range(U):
                dpre[b, u] = dout[b, u] * (one if pre[b, u] > zero else slopes[u])
    elif code == LINEAR:
        for b in range(B):
            for u in range(U):
                dpre[b, u] = dout[b, u]
    elif code == EXTENSION:
        derivative, q0, q1 = _extension(ints, floats, i, ACT_DERIVATIVE)
        for b in range(B):
            for u in range(U):
                slope = _call_scalar(derivative, (np.float64(pre[b, u]), np.float64(out[b, u]), q0, q1))
                dpre[b, u] = dout[b, u] * dt(slope)
    else:
        for b in range(B):
            for u in range(U):
                dpre[b, u] = dout[b, u] * _scalar_derivative(code, pre[b, u], out[b, u], slopes[u], p0)
