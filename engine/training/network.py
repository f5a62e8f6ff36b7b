"""A dense network as flat parameter vectors plus the tables kernels read.

All trainable tensors of all layers live in one contiguous vector ``theta``
and the BN moving statistics in ``buffers``; the named tensors
(``layers.<i>.kernel`` ...) are views into them.  One flat vector lets the
optimizer update every parameter in a single compiled loop, and frozen layers
are simply left out of the update ranges.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.catalog.activations import ACTIVATIONS, ActivationUse
from engine.errors import ExperimentError, WeightsError
from engine.events import LayerInfo
from engine.catalog.initializers import INITIALIZERS
from engine.kernels import layout as K
from engine.kernels.activations import EXTENSION
from engine.kernels import network as NK
from engine.kernels.inference import evaluate as _evaluate
from engine.kernels.inference import predict as _predict
from engine.kernels.inference import probe as _probe
from engine.kernels.rng import new_state
from engine.limits import memory_limit

BN_CODES = {"none": K.BN_NONE, "before": K.BN_BEFORE, "after": K.BN_AFTER}
LOSS_CODES = {"cross_entropy": K.LOSS_SOFTMAX_CE, "binary_cross_entropy": K.LOSS_BINARY_CE, "mse": K.LOSS_MSE}
HISTOGRAM_EDGES = np.linspace(-6.0, 6.0, 49)


def default_memory_limit() -> int:
    """Half of physical memory, in bytes (overridable with DESCENT_MEMORY_LIMIT_MB)."""
    return memory_limit()


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view (no copy).  Numba compiles a separate copy of a kernel for
    each combination of writable and read-only arguments (~5-25 s each on a
    first run); data handed to kernels is always read-only this way, whether it
    came frozen from a Dataset or freshly indexed."""
    view = a.view()
    view.flags.writeable = False
    return view


def output_spec(experiment: dict, task: str, n_classes: int, n_targets: int) -> tuple[str, int, str]:
    """(output activation, output units, loss) that fit the data: "auto" is
    the output activation whose entry is the task's default; the entry says
    how many units the data need (or why they do not fit) and its loss."""
    name = experiment["model"]["output"]["activation"]
    if name == "auto":
        name = next(n for n, a in ACTIVATIONS.items() if a.output and a.auto_for_task == task)
    entry = ACTIVATIONS.get(name)
    if not entry.output:
        raise ExperimentError(f"model.output.activation {name!r} cannot be an output activation")
    return name, entry.output_units(task, n_classes, n_targets), entry.loss


@dataclass
class _Tensor:
    name: str
    store: str        # "theta" or "buffers"
    offset: int
    shape: tuple
    layer: int
    trainable: bool


class Network:
    """Parameters, layout tables and inference entry points of one network."""

    def __init__(self, experiment: dict, n_inputs: int, task: str, n_classes: int = 0, n_targets: int = 1):
        self.experiment = experiment
        self.dtype = np.dtype(experiment["training"]["dtype"])
        hidden = experiment["model"]["layers"]
        out_cfg = experiment["model"]["output"]
        self.output_activation, n_out, self.loss = output_spec(experiment, task, n_classes, n_targets)
        self.loss_code = LOSS_CODES[self.loss]
        self.n_inputs = n_inputs
        self.n_outputs = n_out
        configs = list(hidden) + [dict(out_cfg, units=n_out, activation=self.output_activation,
                                       batch_norm="none", dropout=0.0, alpha_dropout=False,
                                       activation_params={})]
        self.n_layers = len(configs)
        self.ints = np.full((self.n_layers, K.N_INT), -1, dtype=np.int64)
        self.floats = np.zeros((self.n_layers, K.N_FLOAT), dtype=np.float64)
        self.tensors: list[_Tensor] = []
        self.layer_configs = configs
        n_theta = n_buffers = unit_offset = 0
        fan_in = n_inputs
        for i, cfg in enumerate(configs):
            units = int(cfg["units"])
            act = ACTIVATIONS.get(cfg["activation"])
            row = self.ints[i]
            row[K.FAN_IN], row[K.UNITS], row[K.ACT] = fan_in, units, act.code
            row[K.BN] = BN_CODES[cfg.get("batch_norm", "none")]
            row[K.TRAINABLE] = int(cfg["trainable"])
            row[K.UNIT_OFFSET] = unit_offset
            row[K.ALPHA_DROPOUT] = int(cfg.get("alpha_dropout", False))
            row[K.ACT_USES_OUTPUT] = int(act.uses_output)
            row[K.ACT_FORWARD], row[K.ACT_DERIVATIVE] = act.kernel_functions()
            trainable = bool(cfg["trainable"])

            def add(suffix, shape, store="theta", column=None, train=True):
                nonlocal n_theta, n_buffers
                size = int(np.prod(shape))
                offset = n_theta if store == "theta" else n_buffers
                if store == "theta":
                    n_theta += size
                else:
                    n_buffers += size
                self.tensors.append(_Tensor(f"layers.{i}.{suffix}", store, offset, tuple(shape), i,
                                            trainable and train))
                if column is not None:
                    row[column] = offset

            add("kernel", (fan_in, units), column=K.KERNEL)
            if cfg["use_bias"]:
                add("bias", (units,), column=K.BIAS)
            if row[K.BN] != K.BN_NONE:
                add("bn.gamma", (units,), column=K.GAMMA)
                add("bn.beta", (units,), column=K.BETA)
                add("bn.moving_mean", (units,), "buffers", K.MOVING_MEAN, train=False)
                add("bn.moving_variance", (units,), "buffers", K.MOVING_VAR, train=False)
            if act.learns_slopes:
                add("prelu.alpha", (units,), column=K.ALPHA)
            f = self.floats[i]
            f[K.DROPOUT] = cfg.get("dropout", 0.0)
            f[K.L1], f[K.L2] = cfg["l1"], cfg["l2"]
            f[K.MAX_NORM] = cfg["max_norm"] or 0.0
            for column, value in act.kernel_params(cfg.get("activation_params", {})).items():
                f[column] = value
            f[K.BN_MOMENTUM] = cfg.get("bn_momentum", 0.99)
            f[K.BN_EPSILON] = cfg.get("bn_epsilon", 1e-3)
            fan_in = units
            unit_offset += units
        self.total_units = unit_offset
        self.n_params = n_theta
        self._check_memory(n_theta + n_buffers)
        self.theta = np.zeros(n_theta, dtype=self.dtype)
        self.buffers = np.zeros(n_buffers, dtype=self.dtype)
        self._workspaces: dict[int, tuple] = {}
        self.by_name = {t.name: t for t in self.tensors}

    # -- construction -------------------------------------------------------------------------

    def _check_memory(self, n_values: int) -> None:
        # parameters, gradient, up to 3 optimizer slots, a backup copy: 7 copies
        needed = 7 * n_values * self.dtype.itemsize
        limit = default_memory_limit()
        if needed > limit:
            raise ExperimentError(
                f"this network has {n_values:,} parameters and would need about {needed / 2**30:.1f} GiB "
                f"for training, more than the limit of {limit / 2**30:.1f} GiB (half of this machine's "
                f"memory; set DESCENT_MEMORY_LIMIT_MB to change it); use fewer or smaller layers")

    def initialize(self, seed: int) -> None:
        """Draw kernels from each layer's initializer; biases 0, BN gamma 1, beta 0."""
        rng = np.random.default_rng(seed)
        for t in self.tensors:
            cfg = self.layer_configs[t.layer]
            view = self.tensor(t.name)
            if t.name.endswith(".kernel"):
                init = INITIALIZERS.get(cfg["initializer"])
                view[...] = init(t.shape, rng, self.dtype, **cfg.get("initializer_params", {}))
            elif t.name.endswith(("bn.gamma", "bn.moving_variance")):
                view[...] = 1.0
            elif t.name.endswith("prelu.alpha"):
                view[...] = ACTIVATIONS.get(cfg["activation"]).initial_slope(cfg["activation_params"])
            else:
                view[...] = 0.0

    # -- named access -------------------------------------------------------------------------

    def tensor(self, name: str) -> np.ndarray:
        """A writable view of one named tensor."""
        t = self.by_name[name]
        store = self.theta if t.store == "theta" else self.buffers
        return store[t.offset:t.offset + int(np.prod(t.shape))].reshape(t.shape)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every tensor by name (the weights-file contract)."""
        return {t.name: self.tensor(t.name).copy() for t in self.tensors}

    def load_state_dict(self, weights: dict, layers: range | None = None, source: str = "weights") -> None:
        """Copy tensors in, checking names and shapes; ``layers`` limits the copy
        to those layer indices (transfer learning).  Nothing is copied unless
        everything fits."""
        wanted = [t for t in self.tensors if layers is None or t.layer in layers]
        for t in wanted:
            if t.name not in weights:
                raise WeightsError(f"{source} has no tensor {t.name!r} (shape {t.shape}); it has: "
                                   f"{', '.join(sorted(weights)) or 'nothing'}")
            shape = tuple(np.shape(weights[t.name]))
            if shape != t.shape:
                raise WeightsError(f"{source}: {t.name} has shape {shape}, but this network's layer "
                                   f"{t.layer} needs {t.shape}")
            arr = np.asarray(weights[t.name])
            if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
                raise WeightsError(f"{source}: {t.name} holds non-finite or non-float values")
        for t in wanted:
            self.tensor(t.name)[...] = weights[t.name]

    # -- layout for the optimizer -------------------------------------------------------------

    def trainable_ranges(self) -> np.ndarray:
        """(R, 2) int64 [lo, hi) ranges of theta the optimizer updates.

        Cached (the training loop asks before every chunk of steps); the cache
        follows the tensors' ``trainable`` flags.  Treat the array as read-only."""
        key = tuple(t.trainable for t in self.tensors)
        cached = getattr(self, "_ranges_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        ranges: list[list[int]] = []
        for t in self.tensors:
            if t.store != "theta" or not t.trainable:
                continue
            lo, hi = t.offset, t.offset + int(np.prod(t.shape))
            if ranges and ranges[-1][1] == lo:
                ranges[-1][1] = hi
            else:
                ranges.append([lo, hi])
        result = np.array(ranges, dtype=np.int64).reshape(-1, 2)
        self._ranges_cache = (key, result)
        return result

    def tensor_bounds(self) -> np.ndarray:
        """(T+1,) boundaries of the theta tensors (per-tensor gradient clipping).
        Cached: the layout never changes.  Treat the array as read-only."""
        cached = getattr(self, "_bounds_cache", None)
        if cached is not None:
            return cached
        bounds = [0]
        for t in self.tensors:
            if t.store == "theta":
                bounds.append(t.offset + int(np.prod(t.shape)))
        self._bounds_cache = np.array(bounds, dtype=np.int64)
        return self._bounds_cache

    def lowest_trainable_layer(self) -> int:
        for i in range(self.n_layers):
            if self.ints[i, K.TRAINABLE] == 1:
                return i
        return self.n_layers  # nothing trainable: no backward pass at all

    def set_trainable(self, layer: int, trainable: bool) -> None:
        self.ints[layer, K.TRAINABLE] = int(trainable)
        self.layer_configs[layer] = dict(self.layer_configs[layer], trainable=trainable)
        for t in self.tensors:
            if t.layer == layer and t.store == "theta":
                t.trainable = trainable

    def activation_use(self, i: int) -> ActivationUse:
        """Layer i's activation with its parameters and learned slopes (what exporters need)."""
        cfg = self.layer_configs[i]
        slopes = f"layers.{i}.prelu.alpha"
        return ActivationUse(cfg["activation"], i, cfg.get("activation_params", {}),
                             self.tensor(slopes) if slopes in self.by_name else None)

    def layer_infos(self) -> tuple[LayerInfo, ...]:
        infos = []
        for i, cfg in enumerate(self.layer_configs):
            act = ACTIVATIONS.get(cfg["activation"])
            n_params = sum(int(np.prod(t.shape)) for t in self.tensors if t.layer == i and t.store == "theta")
            output = i == self.n_layers - 1
            infos.append(LayerInfo(i, f"layers.{i}", int(cfg["units"]), int(self.ints[i, K.FAN_IN]),
                                   cfg["activation"], cfg.get("batch_norm", "none"), bool(cfg["trainable"]),
                                   act.relu_family and not output, act.saturating and not output, n_params))
        return tuple(infos)

    # -- compiled entry points ----------------------------------------------------------------

    def workspace(self, rows: int):
        """(ws, uws, xb) for batches of up to ``rows`` rows, cached per size."""
        if rows not in self._workspaces:
            ws = np.zeros((NK.N_WS, rows * self.total_units), dtype=self.dtype)
            uws = np.zeros((NK.N_UWS, self.total_units), dtype=self.dtype)
            xb = np.zeros((rows, self.n_inputs), dtype=self.dtype)
            self._workspaces[rows] = (ws, uws, xb)
        return self._workspaces[rows]

    def _as_input(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ExperimentError(f"inputs must have shape (n, {self.n_inputs}), got {x.shape}")
        return readonly(x)

    def _check_extensions(self) -> None:
        """Refuse a layer table whose extension activation lost its compiled functions here, in
        Python: the kernels check too, but an error raised inside compiled code skips the
        restoring of the caller's flush-to-zero mode."""
        for i in range(self.ints.shape[0]):
            if self.ints[i, K.ACT] == EXTENSION and not (self.ints[i, K.ACT_FORWARD] and self.ints[i, K.ACT_DERIVATIVE]):
                raise ValueError("an extension activation's compiled function is missing from the layer table")

    def predict(self, x: np.ndarray, batch: int = 1024, mc_samples: int = 0, seed: int = 0) -> np.ndarray:
        """Outputs (N, n_outputs): probabilities for classification.  With
        ``mc_samples`` > 0, the mean over that many passes with dropout on."""
        self._check_extensions()
        x = self._as_input(x)
        ws, uws, xb = self.workspace(batch)
        out = np.zeros((x.shape[0], self.n_outputs), dtype=np.float64)
        rng = new_state(seed)
        if mc_samples <= 0:
            _predict(self.ints, self.floats, self.theta, self.buffers, x, ws, uws, xb, rng, NK.MODE_INFERENCE, out)
            return out
        total = np.zeros_like(out)
        for _ in range(mc_samples):
            _predict(self.ints, self.floats, self.theta, self.buffers, x, ws, uws, xb, rng,
                     NK.MODE_MC_DROPOUT, out)
            total += out
        return total / mc_samples

    def mc_predict(self, x: np.ndarray, samples: int, seed: int = 0, batch: int = 1024) -> np.ndarray:
        """All Monte Carlo dropout samples: (samples, N, n_outputs)."""
        x = self._as_input(x)
        ws, uws, xb = self.workspace(batch)
        rng = new_state(seed)
        out = np.zeros((samples, x.shape[0], self.n_outputs), dtype=np.float64)
        for k in range(samples):
            _predict(self.ints, self.floats, self.theta, self.buffers, x, ws, uws, xb, rng,
                     NK.MODE_MC_DROPOUT, out[k])
        return out

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch: int = 1024) -> tuple[float, float]:
        """(mean data loss, accuracy) in inference mode; accuracy NaN for regression."""
        return self.evaluate_prepared(self.evaluation_set(x, y), batch)

    def evaluation_set(self, x: np.ndarray, y: np.ndarray) -> tuple:
        """(inputs, labels, targets) of a set as the evaluation kernel reads them: converted and
        checked once for a set evaluated again and again (a run's training rows and validation
        split after every epoch, where a small net's conversions cost more than its evaluation)."""
        return (self._as_input(x), *self.split_targets(y))

    def evaluate_prepared(self, prepared: tuple, batch: int = 1024) -> tuple[float, float]:
        """:meth:`evaluate` of an :meth:`evaluation_set`."""
        x, y_int, y_float = prepared
        ws, uws, xb = self.workspace(batch)
        loss, acc = _evaluate(self.ints, self.floats, self.theta, self.buffers, x, y_int, y_float,
                              self.loss_code, ws, uws, xb, new_state(0))
        return float(loss), float(acc)

    def split_targets(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels int64 (N,), targets float (N, K)) with the unused one empty."""
        if self.loss_code == K.LOSS_MSE:
            y_float = np.ascontiguousarray(np.asarray(y, dtype=self.dtype).reshape(len(y), -1))
            if y_float.shape[1] != self.n_outputs:
                raise ExperimentError(f"targets have {y_float.shape[1]} columns, the network has "
                                      f"{self.n_outputs} outputs")
            return readonly(np.zeros(0, dtype=np.int64)), readonly(y_float)
        return readonly(np.ascontiguousarray(y, dtype=np.int64)), readonly(np.zeros((0, 1), dtype=self.dtype))

    def probe(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Activation statistics on the probe rows x: dead, comatose, mean, std, saturated, histograms."""
        # a writable copy: the probe kernel feeds x straight to the forward pass, which
        # training compiles for a writable batch (a read-only one would compile it again)
        x = np.array(self._as_input(x))
        ws, uws, _ = self.workspace(x.shape[0])
        L = self.n_layers
        dead, comatose, mean, std, sat = (np.zeros(L) for _ in range(5))
        hist = np.zeros((L, HISTOGRAM_EDGES.size - 1))
        _probe(self.ints, self.floats, self.theta, self.buffers, x, ws, uws, new_state(0),
               HISTOGRAM_EDGES, dead, comatose, mean, std, sat, hist)
        return {"dead": dead, "comatose": comatose, "mean": mean, "std": std, "saturated": sat, "histograms": hist}

    def kernel_views(self) -> tuple:
        """Writable views of every layer's kernel, in layer order.  Cached (the run reads the
        sparsity after every epoch) for as long as ``theta`` is the same array."""
        cached = getattr(self, "_kernels_cache", None)
        if cached is not None and cached[0] is self.theta:
            return cached[1]
        views = tuple(self.tensor(t.name) for t in self.tensors if t.name.endswith(".kernel"))
        self._kernels_cache = (self.theta, views)
        return views

    def sparsity(self, threshold: float) -> float:
        """Fraction of kernel weights with |w| < threshold."""
        views = self.kernel_views()
        zeros = sum(int(np.count_nonzero(np.abs(w) < threshold)) for w in views)
        return zeros / max(1, sum(w.size for w in views))

    def zero_small_weights(self, threshold: float) -> int:
        """Set kernel weights with |w| < threshold to exactly 0; returns how many."""
        count = 0
        for t in self.tensors:
            if t.name.endswith(".kernel"):
                w = self.tensor(t.name)
                small = np.abs(w) < threshold
                count += int(small.sum())
                w[small] = 0.0
        return count
