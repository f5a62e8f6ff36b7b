"""The curated mutations tools/mutation.py plants, one realistic bug each.

Each entry: an id, a short description for the README table, the file, the
exact text to replace (it must occur once) and its replacement, and the test
files that should catch it.  Grouped as the issue asked: the 20 bugs of the
first audit, then one per optimizer, activation, loss, regularizer, schedule
and diagnostic.  ``pending`` names the helper whose change the entry is
written against (its target text appears once that change is merged).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    id: str
    what: str
    file: str
    old: str
    new: str
    tests: tuple
    pending: str = ""


NET = "engine/kernels/network.py"
ACT = "engine/kernels/activations.py"
OPT = "engine/kernels/optim.py"
TRAIN = "engine/kernels/train.py"
INF = "engine/kernels/inference.py"
SCHED = "engine/catalog/schedules.py"
TRAINER = "engine/training/trainer.py"
ES = "engine/training/early_stopping.py"
DIAG = "engine/training/diagnostics.py"

GRADIENTS = ("tests/test_gradients.py", "tests/test_numerics.py")
LAYER_MATH = ("tests/test_layer_math.py", "tests/test_gradients.py")
OPTIMIZERS = ("tests/test_optimizers.py",)
SCHEDULES = ("tests/test_schedules.py",)
WIRING = ("tests/test_trainer_wiring.py", "tests/test_training.py")
EARLY = ("tests/test_early_stopping.py", "tests/test_resume.py")
GUI_VALUES = ("tests/test_gui_values.py",)

M = Mutation
MUTATIONS = [
    # ---------------------------------------------------------------- the first audit's 20
    M("dropout-no-inverse-scale", "dropout without the 1/keep scaling", NET,
      "scale = dt(1.0 / keep)", "scale = dt(1.0)", LAYER_MATH),
    M("early-stop-rule", "early stopping at `wait > patience` instead of Keras' `wait >= patience`", ES,
      "if self.wait >= self.patience:", "if self.wait > self.patience:", EARLY),
    M("early-stop-min-delta-sign", "`min_delta` sign flipped", ES,
      "value < self.best_value - self.min_delta", "value < self.best_value + self.min_delta", EARLY,
      ),
    M("early-stop-resume-wait", "resume resets the early-stopping wait count", ES,
      'self.wait = int(state["wait"])', "self.wait = 0", EARLY),
    M("dead-units-after-bn", "dead units counted after BN-after instead of on the activation output", INF,
      "act = block(ws, WS_H, ints, i, B, Bmax) if ints[i, BN] == BN_AFTER else block(ws, WS_OUT, ints, i, B, Bmax)",
      "act = block(ws, WS_OUT, ints, i, B, Bmax)", ("tests/test_layer_math.py",)),
    M("clipnorm-swapped", "trainer swaps `clipnorm` and `global_clipnorm` when calling the kernel", TRAINER,
      '(TK.CLIP_NORM, "clipnorm"),\n                            (TK.CLIP_GLOBAL_NORM, "global_clipnorm")',
      '(TK.CLIP_NORM, "global_clipnorm"),\n                            (TK.CLIP_GLOBAL_NORM, "clipnorm")', WIRING),
    M("onecycle-momentum-dropped", "1cycle's momentum never reaches the kernel", TRAIN,
      "        if chunk.moms[s] >= 0.0:\n            h[0] = chunk.moms[s]\n",
      "        if chunk.moms[s] >= 0.0:\n            h[0] = h[0]\n", WIRING),
    M("bn-momentum-swapped", "BN moving-average momentum swapped", NET,
      "mm[u] = momentum * mm[u] + (1.0 - momentum) * mean[u]",
      "mm[u] = (1.0 - momentum) * mm[u] + momentum * mean[u]", ("tests/test_layer_math.py",)),
    M("elu-forward-alpha", "ELU forward ignoring alpha", ACT,
      "o[k] = z if z > zero else alpha * expm1(z)", "o[k] = z if z > zero else expm1(z)", GRADIENTS),
    M("gui-loss-train-is-val", 'loss plot\'s "train" curve drawing the validation loss', "gui/metric_plots.py",
      'ep["step"].data, positive(ep["train_loss"].data), raw=ep["train_loss"].data)',
      'ep["step"].data, positive(ep["val_loss"].data), raw=ep["val_loss"].data)', GUI_VALUES),
    M("gui-accuracy-fraction", "validation accuracy drawn as a fraction instead of percent", "gui/metric_plots.py",
      'ep["step"].data, 100 * ep["val_accuracy"].data)', 'ep["step"].data, ep["val_accuracy"].data)', GUI_VALUES),
    M("gui-dead-legend-first", "dead-unit legend showing the first count instead of the latest",
      "gui/layer_plots.py", "count = counts[-1, i]", "count = counts[0, i]", GUI_VALUES),
    M("gui-arena-path-xy", "arena paths with x and y swapped", "gui/arena_drawing.py",
      'items["path"].setData(path[:, 0], path[:, 1])', 'items["path"].setData(path[:, 1], path[:, 0])',
      GUI_VALUES),
    M("adam-bias-correction-m", "Adam without the first-moment bias correction", OPT,
      "step_size = dt(lr / bc1)", "step_size = dt(lr)", OPTIMIZERS),
    M("nesterov-look-ahead", "Nesterov without the look-ahead (plain momentum)", OPT,
      "w -= a * (g[i] + mu * b)", "w -= a * (g[i] + b)", OPTIMIZERS),
    M("nadam-exponent", "Nadam's momentum correction with beta_1^t instead of beta_1^(t+1)", OPT,
      "b1 ** (step + 1)", "b1 ** step", OPTIMIZERS),
    M("bn-backward-mean-term", "BN backward without the batch-mean term", NET,
      "d[b, u] = scale[u] * (d[b, u] - sum_d[u] - xhat[b, u] * sum_dx[u])",
      "d[b, u] = scale[u] * (d[b, u] - xhat[b, u] * sum_dx[u])", GRADIENTS),
    M("adam-bias-correction-v", "Adam without the second-moment bias correction", OPT,
      "inv_bc2_sqrt = dt(1.0 / bc2_sqrt)", "inv_bc2_sqrt = dt(1.0)", OPTIMIZERS),
    M("selu-constant-truncated", "SELU's alpha truncated to 1.6733", ACT,
      "SELU_ALPHA = 1.6732632423543772", "SELU_ALPHA = 1.6733",
      GRADIENTS + ("tests/test_formats.py::test_onnx_special_operators",)),
    M("per-tensor-clip-global", "clipnorm rescaling the whole gradient instead of one tensor", OPT,
      "_scale(grad, lo, hi, clipnorm / norm)", "_scale(grad, 0, n, clipnorm / norm)", OPTIMIZERS + WIRING),
    # ---------------------------------------------------------------- one per optimizer
    M("sgd-sign", "SGD stepping up the gradient", OPT,
      "        w -= a * g[i]\n", "        w += a * g[i]\n", OPTIMIZERS),
    M("momentum-dampening", "momentum with dampening (1 - mu) on the gradient", OPT,
      "            b = mu * buf[i] + g[i]\n            buf[i] = b\n            w -= a * b\n",
      "            b = mu * buf[i] + (1.0 - mu) * g[i]\n            buf[i] = b\n            w -= a * b\n",
      OPTIMIZERS),
    M("adagrad-eps-inside-sqrt", "AdaGrad with epsilon inside the square root", OPT,
      "w -= a * (gi / (math.sqrt(s) + eps))", "w -= a * (gi / math.sqrt(s + eps))", OPTIMIZERS),
    M("rmsprop-decay-swapped", "RMSProp's decay rho and 1 - rho swapped", OPT,
      "s = rho * sq[i] + one_minus_rho * gi * gi", "s = one_minus_rho * sq[i] + rho * gi * gi", OPTIMIZERS),
    M("rmsprop-centered-ignored", "centered RMSProp not subtracting the mean gradient", OPT,
      "d = math.sqrt(max(s - m * m, zero)) + eps", "d = math.sqrt(s) + eps", OPTIMIZERS),
    M("adamw-decay-not-scaled", "AdamW's weight decay not multiplied by the learning rate", OPT,
      "decay = dt(1.0 - lr * hyper[H_WEIGHT_DECAY])", "decay = dt(1.0 - hyper[H_WEIGHT_DECAY])", OPTIMIZERS),
    M("adamax-eps-outside-max", "AdaMax adding epsilon outside the max", OPT,
      "u = max(beta2 * u_row[i], abs(gi) + eps)", "u = max(beta2 * u_row[i], abs(gi)) + eps", OPTIMIZERS),
    M("ftrl-l2-factor", "FTRL's l2 without its factor 2", OPT,
      "quad_extra = dt(2.0 * hyper[H_L2] + hyper[H_FTRL_BETA] / lr)",
      "quad_extra = dt(hyper[H_L2] + hyper[H_FTRL_BETA] / lr)", OPTIMIZERS),
    # ---------------------------------------------------------------- one per activation
    M("linear-as-relu", "linear activation clipping negatives", ACT,
      "                out[b, u] = pre[b, u]\n", "                out[b, u] = pre[b, u] if pre[b, u] > zero else zero\n",
      GRADIENTS),
    M("logistic-derivative", "logistic derivative a instead of a(1 - a)", ACT,
      "dpre[b, u] = dout[b, u] * (a * (one - a))", "dpre[b, u] = dout[b, u] * a", GRADIENTS),
    M("tanh-derivative", "tanh derivative 1 - a instead of 1 - a^2", ACT,
      "dpre[b, u] = dout[b, u] * (one - a * a)", "dpre[b, u] = dout[b, u] * (one - a)", GRADIENTS),
    M("relu-backward-ungated", "ReLU backward passing every gradient", ACT,
      "dpre[b, u] = dout[b, u] if pre[b, u] > zero else zero", "dpre[b, u] = dout[b, u]", GRADIENTS),
    M("leaky-relu-backward-zero", "leaky ReLU backward with slope 0 on the negative side", ACT,
      "dpre[b, u] = dout[b, u] * (one if pre[b, u] > zero else slopes[u])",
      "dpre[b, u] = dout[b, u] * (one if pre[b, u] > zero else zero)", GRADIENTS),
    M("rrelu-inference-slope", "RReLU at inference using the lower bound instead of the mean slope", NET,
      "slopes[:] = 0.5 * (lower + upper)", "slopes[:] = lower", GRADIENTS),
    M("prelu-slope-gradient", "PReLU's slope gradient missing the input factor", ACT,
      "dslopes[u] += dout[b, u] * z", "dslopes[u] += dout[b, u]", GRADIENTS),
    M("elu-backward-alpha", "ELU backward with alpha = 1", ACT,
      "(one if pre[b, u] > zero else out[b, u] + alpha)", "(one if pre[b, u] > zero else out[b, u] + one)",
      GRADIENTS),
    M("selu-backward-scale", "SELU backward without the scale on the positive side", ACT,
      "(scale if pre[b, u] > zero else out[b, u] + scaled_alpha)",
      "(one if pre[b, u] > zero else out[b, u] + scaled_alpha)", GRADIENTS),
    M("gelu-half", "GELU without the factor 1/2", ACT,
      "return 0.5 * z * (1.0 + math.erf(z * _INV_SQRT2))", "return z * (1.0 + math.erf(z * _INV_SQRT2))",
      GRADIENTS),
    M("swish-derivative", "swish derivative missing (1 - sigmoid)", ACT,
      "return s + z * s * (1.0 - s)", "return s + z * s", GRADIENTS),
    # ---------------------------------------------------------------- one per loss
    M("softmax-ce-label-term", "softmax cross-entropy gradient not divided by the batch on the label", NET,
      "delta[b, label] -= 1.0 / B", "delta[b, label] -= 1.0", GRADIENTS),
    M("binary-ce-batch-mean", "binary cross-entropy gradient not divided by the batch", NET,
      "delta[b, 0] = (A.sigmoid(z) - y) / B", "delta[b, 0] = A.sigmoid(z) - y", GRADIENTS),
    M("mse-not-averaged", "MSE summed over outputs instead of averaged", NET,
      "total += diff * diff / K", "total += diff * diff", GRADIENTS),
    # ---------------------------------------------------------------- one per regularizer
    M("l2-gradient-factor", "l2 gradient without its factor 2", NET,
      "grad[j] += l1 * sign + 2.0 * l2 * w", "grad[j] += l1 * sign + l2 * w", GRADIENTS),
    M("l1-penalty-signed", "l1 penalty summing w instead of |w|", NET,
      "total += l1 * abs(w) + l2 * w * w", "total += l1 * w + l2 * w * w", GRADIENTS),
    M("max-norm-not-applied", "max-norm rescaling never applied", TRAIN,
      "            if norm > c:\n                scale = c / norm\n",
      "            if norm > c * 1e9:\n                scale = c / norm\n", ("tests/test_training.py",)),
    # ---------------------------------------------------------------- one per schedule
    M("exponential-floor-division", "exponential decay in whole steps of s (floor division)", SCHED,
      'self.base_lr * 0.1 ** (steps / self.params["s"])', 'self.base_lr * 0.1 ** (steps // self.params["s"])',
      SCHEDULES),
    M("power-ignores-c", "power scheduling ignoring its exponent c", SCHED,
      '(1.0 + steps / self.params["s"]) ** -self.params["c"]', '(1.0 + steps / self.params["s"]) ** -1.0',
      SCHEDULES),
    M("piecewise-boundary-side", "piecewise constant switching one step early", SCHED,
      'index = np.searchsorted(np.asarray(self.params["boundaries"], dtype=np.int64), t, side="right")',
      'index = np.searchsorted(np.asarray(self.params["boundaries"], dtype=np.int64), t, side="left")',
      SCHEDULES),
    M("performance-patience", "performance scheduling waiting one epoch too many", SCHED,
      'if self.wait >= p["patience"]:', 'if self.wait > p["patience"]:', SCHEDULES),
    M("onecycle-falling-flat", "1cycle's rate not coming down in the second phase", SCHED,
      "rates = np.where(falling, peak + (low - peak) * down, rates)", "rates = np.where(falling, peak, rates)",
      SCHEDULES),
    # ---------------------------------------------------------------- one per diagnostic
    M("saturation-threshold", "logistic saturation measured at 10% instead of 1% of the range", INF,
      "if a < 0.01 or a > 0.99:", "if a < 0.1 or a > 0.9:", ("tests/test_layer_math.py",)),
    M("activation-std-uncentered", "activation std without subtracting the mean", INF,
      "std[i] = math.sqrt(max(ss / count - m * m, 0.0))", "std[i] = math.sqrt(max(ss / count, 0.0))",
      ("tests/test_layer_math.py",)),
    M("update-ratio-inverted", "update/weight ratio inverted", DIAG,
      "np.divide(ls[:, STAT_UPDATE], ls[:, STAT_WEIGHT],", "np.divide(ls[:, STAT_WEIGHT], ls[:, STAT_UPDATE],",
      ("tests/test_layer_math.py",)),
    M("grad-norm-after-clip", "gradient norm reported from the bias instead of the kernel", TRAIN,
      "layer_stats[i, STAT_GRAD_KERNEL] = math.sqrt(_sum_squares(grad, ints[i, KERNEL], fan_units))",
      "layer_stats[i, STAT_GRAD_KERNEL] = math.sqrt(_sum_squares(grad, ints[i, BIAS], ints[i, UNITS]))",
      ("tests/test_layer_math.py",)),
    # (judging act > 0 instead of pre > 0 would be an equivalent mutant: every ReLU-family activation keeps
    # the sign of its input, and comatose is reported only for those; this one uses the dead-unit rule)
    M("comatose-as-dead", "comatose units counted by the dead-unit rule (output exactly 0)", INF,
      "                if pre[b, u] > 0.0:\n                    awake = True\n",
      "                if act[b, u] != 0.0:\n                    awake = True\n",
      ("tests/test_training.py", "tests/test_layer_math.py")),
]
