"""Optimizer update kernels and gradient clipping, selected by integer code.

Every update kernel has the same signature::

    kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep=None) -> bool

theta, grad   (n,) contiguous float32 or float64, same dtype.
slots         (k, n) contiguous, theta's dtype: the optimizer's state
              (k and the meaning of each row are listed per kernel).
lo, hi        only indices lo <= i < hi are read and written, so frozen
              layers are skipped by calling the kernel on ranges.
step          int, 1-based number of this update (bias corrections).
lr            float, the learning rate of this step.
hyper         (HYPER_SIZE,) float64 hyperparameters in the named columns
              ``H_*`` below; a column an optimizer does not use stays 0.
keep          optional (n,) array of theta's dtype: receives theta[lo:hi]
              as it was before the update (the training loop's copy to
              restore, should the update overflow).
returns       True when every updated weight is finite.

Saving the old weights and checking the new ones happen in the update's own
pass, while each element is in a register: as separate passes over every
parameter they cost more than the update itself (a 266,610-parameter net at
batch 1: copy 130 us, finite check 50 us, the momentum update 65 us).

The Python classes in :mod:`engine.catalog.optimizers` own the equations' prose,
validation and defaults; the formulas follow torch.optim (Keras for FTRL).

Why the loops look the way they do: each kernel slices ``[lo:hi]`` and loops
from 0, which lets LLVM prove the index is non-negative and vectorize; scalar
coefficients are cast to theta's dtype (``dt(...)``) so float32 loops stay in
float32 instead of widening every element to float64.
"""
import math

from numba import njit, types
from numba.extending import overload

SGD = 0
MOMENTUM = 1
ADAGRAD = 2
RMSPROP = 3
ADAM = 4
ADAMAX = 5
FTRL = 6

# Columns of ``hyper``.  One name per meaning, shared by every optimizer that
# has it, so a kernel reads ``hyper[H_EPSILON]`` wherever epsilon is; the
# classes in engine.catalog.optimizers map their hyperparameters to these
# columns (``hyper_slots``).  Plain module-level ints: Numba folds them.
H_MOMENTUM = 0        # momentum coefficient: Momentum's and RMSProp's momentum, Adam's and AdaMax's beta_1;
#                       the coefficient a 1cycle schedule cycles (the training loop overwrites this column)
H_SQUARE_DECAY = 1    # decay rate of the running squared-gradient statistic: RMSProp's rho, Adam's and
#                       AdaMax's beta_2
H_EPSILON = 2         # added to the denominator against division by zero
H_NESTEROV = 3        # flag, nonzero = Nesterov look-ahead (Nesterov momentum, Nadam)
H_WEIGHT_DECAY = 4    # decoupled weight decay (AdamW)
H_CENTERED = 5        # flag, nonzero = RMSProp divides by the gradient's variance
H_LR_POWER = 6        # FTRL: learning_rate_power (<= 0)
H_L1 = 7              # FTRL: L1 strength
H_L2 = 8              # FTRL: L2 strength
H_FTRL_BETA = 9       # FTRL: the paper's beta
H_L2_SHRINKAGE = 10   # FTRL: L2 shrinkage
H_MOMENTUM_DECAY = 11  # Nadam: rate psi of Dozat's momentum schedule (torch's momentum_decay); 0 = no schedule
H_FTRL_KEEP_INITIAL = 12  # FTRL flag, nonzero = the first step continues from the initial weights
HYPER_SIZE = 13

# Below this, 1 - x rounds to exactly 1.0 in float64 (it does from 2**-54 on), so a product of
# momentum factors smaller than this no longer changes a bias correction.
NEGLIGIBLE_PRODUCT = 2.0 ** -60


def _span(keep, lo, hi):
    """keep[lo:hi], or None without a keep array (compiled code only)."""


def _save(span, i, value):
    """span[i] = value, nothing without a keep array (compiled code only)."""


def _no_keep(keep):
    return keep is None or isinstance(keep, (types.NoneType, types.Omitted))


@overload(_span, inline="always", jit_options={"cache": True})
def _span_impl(keep, lo, hi):
    if _no_keep(keep):
        return lambda keep, lo, hi: None
    return lambda keep, lo, hi: keep[lo:hi]


@overload(_save, inline="always", jit_options={"cache": True})
def _save_impl(span, i, value):
    if _no_keep(span):
        return lambda span, i, value: None

    def save(span, i, value):
        span[i] = value
    return save


@njit(cache=True, nogil=True, inline="always")
def _overflowed(w, big):
    """w is NaN or infinite (big: infinity in w's dtype); vectorizes as an OR-reduction."""
    return not abs(w) < big


@njit(cache=True, nogil=True, error_model="numpy")
def sgd_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep=None):
    """Plain gradient descent: theta -= lr * g.  slots (0, n); hyper unused."""
    dt = theta.dtype.type
    a = dt(lr)
    big = dt(math.inf)
    t = theta[lo:hi]
    g = grad[lo:hi]
    k = _span(keep, lo, hi)
    bad = False
    for i in range(t.size):
        w = t[i]
        _save(k, i, w)
        w -= a * g[i]
        t[i] = w
        bad |= _overflowed(w, big)
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def momentum_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep=None):
    """Heavy-ball / Nesterov momentum in torch.optim.SGD form (dampening 0).

    slots (1, n): [0] velocity buffer b.
    hyper: H_MOMENTUM mu, H_NESTEROV flag.
        b = mu*b + g;  theta -= lr * (g + mu*b if nesterov else b)
    """
    dt = theta.dtype.type
    mu = dt(hyper[H_MOMENTUM])
    a = dt(lr)
    big = dt(math.inf)
    t = theta[lo:hi]
    g = grad[lo:hi]
    buf = slots[0, lo:hi]
    k = _span(keep, lo, hi)
    bad = False
    if hyper[H_NESTEROV] != 0.0:
        for i in range(t.size):
            w = t[i]
            _save(k, i, w)
            b = mu * buf[i] + g[i]
            buf[i] = b
            w -= a * (g[i] + mu * b)
            t[i] = w
            bad |= _overflowed(w, big)
    else:
        for i in range(t.size):
            w = t[i]
            _save(k, i, w)
            b = mu * buf[i] + g[i]
            buf[i] = b
            w -= a * b
            t[i] = w
            bad |= _overflowed(w, big)
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def adagrad_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep=None):
    """AdaGrad, epsilon outside the square root (torch).

    slots (1, n): [0] sum of squared gradients s.
    hyper: H_EPSILON.
        s += g*g;  theta -= lr * g / (sqrt(s) + eps)
    """
    dt = theta.dtype.type
    eps = dt(hyper[H_EPSILON])
    a = dt(lr)
    big = dt(math.inf)
    t = theta[lo:hi]
    g = grad[lo:hi]
    acc = slots[0, lo:hi]
    k = _span(keep, lo, hi)
    bad = False
    for i in range(t.size):
        w = t[i]
        _save(k, i, w)
        gi = g[i]
        s = acc[i] + gi * gi
        acc[i] = s
        w -= a * (gi / (math.sqrt(s) + eps))
        t[i] = w
        bad |= _overflowed(w, big)
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def rmsprop_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep=None):
    """RMSProp as torch.optim.RMSprop (optionally centered, with momentum).

    slots (3, n): [0] mean square s, [1] momentum buffer b, [2] mean gradient m
    (rows 1 and 2 stay untouched when momentum is 0 / not centered).
    hyper: H_MOMENTUM mu, H_SQUARE_DECAY rho, H_EPSILON, H_CENTERED flag.
        s = rho*s + (1-rho)*g*g
        m = rho*m + (1-rho)*g                 (centered only)
        d = sqrt(s - m*m) + eps  (centered)   or   sqrt(s) + eps
        mu > 0:  b = mu*b + g/d;  theta -= lr*b      else  theta -= lr*g/d
    """
    dt = theta.dtype.type
    zero = dt(0.0)
    mu = dt(hyper[H_MOMENTUM])
    rho = dt(hyper[H_SQUARE_DECAY])
    one_minus_rho = dt(1.0 - hyper[H_SQUARE_DECAY])
    eps = dt(hyper[H_EPSILON])
    centered = hyper[H_CENTERED] != 0.0
    use_momentum = hyper[H_MOMENTUM] > 0.0
    a = dt(lr)
    big = dt(math.inf)
    t = theta[lo:hi]
    g = grad[lo:hi]
    sq = slots[0, lo:hi]
    buf = slots[1, lo:hi]
    gavg = slots[2, lo:hi]
    k = _span(keep, lo, hi)
    bad = False
    for i in range(t.size):
        w = t[i]
        _save(k, i, w)
        gi = g[i]
        s = rho * sq[i] + one_minus_rho * gi * gi
        sq[i] = s
        if centered:
            m = rho * gavg[i] + one_minus_rho * gi
            gavg[i] = m
            # rounding can push s - m*m a hair below zero
            d = math.sqrt(max(s - m * m, zero)) + eps
        else:
            d = math.sqrt(s) + eps
        if use_momentum:
            b = mu * buf[i] + gi / d
            buf[i] = b
            w -= a * b
        else:
            w -= a * (gi / d)
        t[i] = w
        bad |= _overflowed(w, big)
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def nadam_momentum_product(beta_1, psi, step):
    """prod_{i=1..step} mu_i with Dozat's mu_i = beta_1 * (1 - 0.5 * 0.96^(i*psi)), multiplied in
    step order as torch.optim.NAdam accumulates its ``mu_product``.  Once the product drops below
    NEGLIGIBLE_PRODUCT it is returned as 0: every later 1 - product is 1.0 either way, and the loop
    stays short (tens of steps at the usual beta_1)."""
    product = 1.0
    for i in range(1, step + 1):
        product *= beta_1 * (1.0 - 0.5 * 0.96 ** (i * psi))
        if product < NEGLIGIBLE_PRODUCT:
            return 0.0
    return product


@njit(cache=True, nogil=True, error_model="numpy")
def adam_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep=None):
    """Adam family: Adam, Nadam (nesterov flag) and AdamW (decoupled decay).

    slots (2, n): [0] first moment m, [1] second moment v.
    hyper: H_MOMENTUM beta_1, H_SQUARE_DECAY beta_2, H_EPSILON, H_NESTEROV flag,
    H_WEIGHT_DECAY decoupled weight decay wd, H_MOMENTUM_DECAY psi (Nadam only).
    With t = step:
        theta *= 1 - lr*wd                         (only if wd > 0)
        m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
        d = sqrt(v) / sqrt(1 - b2^t) + eps
        Adam:  theta -= lr/(1 - b1^t) * m / d
        Nadam, psi = 0 (no momentum schedule):
               theta -= lr * (b1*m/(1 - b1^(t+1)) + (1-b1)*g/(1 - b1^t)) / d
        Nadam, psi > 0 (Dozat's schedule, torch.optim.NAdam):
               mu_t = b1 * (1 - 0.5 * 0.96^(t*psi));  P_t = mu_1 * ... * mu_t
               theta -= lr * (mu_{t+1}*m/(1 - P_t*mu_{t+1}) + (1-mu_t)*g/(1 - P_t)) / d
    P_t is recomputed from t (nadam_momentum_product), so the slots are Adam's.
    """
    dt = theta.dtype.type
    b1 = hyper[H_MOMENTUM]
    b2 = hyper[H_SQUARE_DECAY]
    bc1 = 1.0 - b1 ** step
    bc2_sqrt = math.sqrt(1.0 - b2 ** step)
    beta1 = dt(b1)
    beta2 = dt(b2)
    one_minus_b1 = dt(1.0 - b1)
    one_minus_b2 = dt(1.0 - b2)
    eps = dt(hyper[H_EPSILON])
    inv_bc2_sqrt = dt(1.0 / bc2_sqrt)
    nesterov = hyper[H_NESTEROV] != 0.0
    decay = dt(1.0 - lr * hyper[H_WEIGHT_DECAY])
    use_decay = hyper[H_WEIGHT_DECAY] != 0.0
    step_size = dt(lr / bc1)
    psi = hyper[H_MOMENTUM_DECAY]
    if nesterov and psi > 0.0:
        mu = b1 * (1.0 - 0.5 * 0.96 ** (step * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
        product = nadam_momentum_product(b1, psi, step)
        coef_m = dt(lr * mu_next / (1.0 - product * mu_next))
        coef_g = dt(lr * (1.0 - mu) / (1.0 - product))
    else:
        coef_m = dt(lr * b1 / (1.0 - b1 ** (step + 1)))
        coef_g = dt(lr * (1.0 - b1) / bc1)
    big = dt(math.inf)
    t = theta[lo:hi]
    g = grad[lo:hi]
    m_row = slots[0, lo:hi]
    v_row = slots[1, lo:hi]
    k = _span(keep, lo, hi)
    bad = False
    for i in range(t.size):
        w = t[i]
        _save(k, i, w)
        gi = g[i]
        if use_decay:
            w *= decay
        m = beta1 * m_row[i] + one_minus_b1 * gi
        v = beta2 * v_row[i] + one_minus_b2 * gi * gi
        m_row[i] = m
        v_row[i] = v
        d = math.sqrt(v) * inv_bc2_sqrt + eps
        if nesterov:
            w -= (coef_m * m + coef_g * gi) / d
        else:
            w -= step_size * (m / d)
        t[i] = w
        bad |= _overflowed(w, big)
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def adamax_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep=None):
    """AdaMax (Adam with the infinity norm), torch.optim.Adamax form.

    slots (2, n): [0] first moment m, [1] infinity norm u.
    hyper: H_MOMENTUM beta_1, H_SQUARE_DECAY beta_2, H_EPSILON.
        m = b1*m + (1-b1)*g;  u = max(b2*u, |g| + eps)
        theta -= lr/(1 - b1^step) * m / u
    """
    dt = theta.dtype.type
    b1 = hyper[H_MOMENTUM]
    beta1 = dt(b1)
    one_minus_b1 = dt(1.0 - b1)
    beta2 = dt(hyper[H_SQUARE_DECAY])
    eps = dt(hyper[H_EPSILON])
    clr = dt(lr / (1.0 - b1 ** step))
    big = dt(math.inf)
    t = theta[lo:hi]
    g = grad[lo:hi]
    m_row = slots[0, lo:hi]
    u_row = slots[1, lo:hi]
    k = _span(keep, lo, hi)
    bad = False
    for i in range(t.size):
        w = t[i]
        _save(k, i, w)
        gi = g[i]
        m = beta1 * m_row[i] + one_minus_b1 * gi
        u = max(beta2 * u_row[i], abs(gi) + eps)
        m_row[i] = m
        u_row[i] = u
        w -= clr * (m / u)
        t[i] = w
        bad |= _overflowed(w, big)
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def ftrl_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep=None):
    """FTRL-Proximal as keras.optimizers.Ftrl.

    slots (2, n): [0] accumulator n (starts at initial_accumulator_value),
    [1] linear term z.
    hyper: H_LR_POWER p (<= 0), H_L1, H_L2, H_FTRL_BETA beta,
    H_L2_SHRINKAGE, H_FTRL_KEEP_INITIAL flag.  With w = theta before the step:
        n' = n + g*g
        z += g + 2*l2_shrinkage*w - (n'^-p - n^-p) / lr * w
    (on step 1 with the flag set, n^-p is left out of that difference: the
    initial accumulator's proximal term is centred on the initial weights,
    as if z had started at -n^-p / lr * w, instead of on 0)
        w  = (clip(z, -l1, l1) - z) / (n'^-p / lr + 2*l2 + beta/lr)
    and w = 0 where that denominator is 0 (n' = 0: no gradient seen yet, and
    l2 = beta = 0), as in McMahan et al.'s Algorithm 1, where a coordinate
    without history has weight 0; Keras divides 0 by 0 there (NaN).
    """
    dt = theta.dtype.type
    zero = dt(0.0)
    power = -hyper[H_LR_POWER]
    sqrt_power = power == 0.5
    p = dt(power)
    l1 = dt(hyper[H_L1])
    inv_lr = dt(1.0 / lr)
    quad_extra = dt(2.0 * hyper[H_L2] + hyper[H_FTRL_BETA] / lr)
    shrink = dt(2.0 * hyper[H_L2_SHRINKAGE])
    keep_initial = hyper[H_FTRL_KEEP_INITIAL] != 0.0 and step == 1
    big = dt(math.inf)
    t = theta[lo:hi]
    g = grad[lo:hi]
    acc = slots[0, lo:hi]
    lin = slots[1, lo:hi]
    k = _span(keep, lo, hi)
    bad = False
    for i in range(t.size):
        w = t[i]
        _save(k, i, w)
        gi = g[i]
        n_old = acc[i]
        n_new = n_old + gi * gi
        if sqrt_power:  # the default; sqrt is far cheaper than pow
            root_new = math.sqrt(n_new)
            root_old = math.sqrt(n_old)
        else:
            root_new = n_new ** p
            root_old = n_old ** p
        if keep_initial:
            root_old = zero
        z = lin[i] + gi + shrink * w - (root_new - root_old) * inv_lr * w
        lin[i] = z
        acc[i] = n_new
        denominator = root_new * inv_lr + quad_extra
        w = (min(max(z, -l1), l1) - z) / denominator if denominator != zero else zero
        t[i] = w
        bad |= _overflowed(w, big)
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def apply_update(code, theta, grad, slots, lo, hi, step, lr, hyper, keep=None):
    """Run the update kernel for optimizer ``code`` (one of the constants
    above); arguments and result as the kernels.  The only place that maps codes to
    kernels: the fused training loop calls this from compiled code."""
    if code == SGD:
        return sgd_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep)
    elif code == MOMENTUM:
        return momentum_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep)
    elif code == ADAGRAD:
        return adagrad_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep)
    elif code == RMSPROP:
        return rmsprop_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep)
    elif code == ADAM:
        return adam_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep)
    elif code == ADAMAX:
        return adamax_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep)
    elif code == FTRL:
        return ftrl_kernel(theta, grad, slots, lo, hi, step, lr, hyper, keep)
    raise ValueError("unknown optimizer code")


@njit(cache=True, nogil=True, error_model="numpy")
def _sum_squares(x, lo, hi):
    """Sum of x[lo:hi]**2 accumulated in float64 (float32 sums lose digits)."""
    total = 0.0
    for i in range(lo, hi):
        v = float(x[i])
        total += v * v
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def _scale(x, lo, hi, factor):
    f = x.dtype.type(factor)
    part = x[lo:hi]
    for i in range(part.size):
        part[i] *= f


@njit(cache=True, nogil=True, error_model="numpy")
def clip_gradients(grad, tensor_bounds, clipvalue, clipnorm, global_clipnorm):
    """Clip the flat gradient in place; return its global L2 norm before any
    clipping (float, for monitoring).

    grad           (n,) float32/float64, modified in place.
    tensor_bounds  (T+1,) int64: tensor j is grad[bounds[j]:bounds[j+1]];
                   bounds[0] must be 0 and bounds[T] must be n.
    Each clip is disabled when its threshold is <= 0.  They apply in this
    order (as Keras does when several are set):
      1. by value: every component into [-clipvalue, clipvalue];
      2. per tensor: a tensor whose L2 norm exceeds clipnorm is rescaled to
         norm clipnorm (direction kept);
      3. global: if the norm of the whole (already clipped) vector exceeds
         global_clipnorm, the whole vector is rescaled to that norm.
    """
    n = grad.size
    n_tensors = tensor_bounds.size - 1
    if n_tensors < 0 or tensor_bounds[0] != 0 or tensor_bounds[n_tensors] != n:
        raise ValueError("tensor_bounds must start at 0 and end at grad.size")
    norm_before = math.sqrt(_sum_squares(grad, 0, n))
    if clipvalue > 0.0:
        c = grad.dtype.type(clipvalue)
        for i in range(n):
            grad[i] = min(max(grad[i], -c), c)
    if clipnorm > 0.0:
        for j in range(n_tensors):
            lo = tensor_bounds[j]
            hi = tensor_bounds[j + 1]
            norm = math.sqrt(_sum_squares(grad, lo, hi))
            if norm > clipnorm:
                _scale(grad, lo, hi, clipnorm / norm)
    if global_clipnorm > 0.0:
        norm = math.sqrt(_sum_squares(grad, 0, n))
        if norm > global_clipnorm:
            _scale(grad, 0, n, global_clipnorm / norm)
    return norm_before
