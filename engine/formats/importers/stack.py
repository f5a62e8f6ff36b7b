"""The dense stack every importer fills in, operation by operation.

Descent models one shape of network: hidden layers, each

    Dense -> [batch norm] -> activation -> [batch norm] -> [dropout]

and an output Dense followed by softmax, a sigmoid or nothing.  An importer
walks a foreign model from its input to its output and calls
:meth:`Stack.dense`, :meth:`Stack.batch_norm`, :meth:`Stack.activation`,
:meth:`Stack.dropout` ... in the order the model computes them; the stack
decides where each one goes (batch norm right after a Dense is "before" the
activation, after the activation it is "after") and refuses, naming the
foreign node or layer, any order Descent cannot express: two activations in
a row, batch norm before the first Dense, a ReLU on the output layer ...
So the three importers share one set of rules and one set of messages.

Every tensor is stored as float32 and recorded in the :class:`Report`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.catalog.activations import ACTIVATIONS, hidden_activation_names
from engine.errors import WeightsError
from engine.formats.importers.mapping import Report

OUTPUTS = ("softmax", "logistic", "linear", "log_softmax")
SUPPORTED = ("a dense network: Dense/Linear/Gemm/MatMul(+Add) layers, each followed by at most one of the "
             "activations " + ", ".join(hidden_activation_names()) + ", batch normalization before or after it "
             "and dropout; softmax, sigmoid, log-softmax or nothing after the last Dense; flatten/reshape only "
             "at the input")


def float_param(value) -> float:
    """A parameter stored as float32 in a file, as the shortest decimal that is that float32
    (0.2 instead of 0.20000000298023224), so experiments show what the author wrote."""
    return float(str(np.float32(value)))


def vector(value, units: int, what: str, where: str) -> np.ndarray:
    """A per-unit float32 vector from (units,), (1, units), or one value shared by all units."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 1:
        return np.full(units, float(arr.reshape(())), dtype=np.float32)
    flat = arr.reshape(-1)
    if flat.size != units or max(arr.shape, default=1) != units:
        raise WeightsError(f"{where}: {what} has shape {arr.shape}, but the layer has {units} units")
    return flat.astype(np.float32)


@dataclass
class BatchNorm:
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    epsilon: float
    momentum: float | None       # Keras/Descent convention: weight of the old moving average; None = unknown


@dataclass
class _Layer:
    where: str                   # the foreign Dense that opened it
    kernel: np.ndarray           # (fan_in, units)
    bias: np.ndarray | None
    activation: str | None = None
    params: dict = field(default_factory=dict)
    prelu: np.ndarray | None = None
    bn: BatchNorm | None = None
    placement: str = "none"
    dropout: float = 0.0
    alpha_dropout: bool = False
    trainable: bool = True
    parts: list = field(default_factory=list)   # names of the foreign ops that make the layer

    @property
    def units(self) -> int:
        return int(self.kernel.shape[1])


class Stack:
    """Collects one foreign network as Descent layers (see the module docstring)."""

    def __init__(self, source: str, report: Report | None = None):
        self.source = source
        self.report = report or Report()
        self.layers: list[_Layer] = []
        self.input_shape: tuple | None = None   # per example, before any flattening
        self.mean: np.ndarray | None = None     # input standardization found in the file
        self.std: np.ndarray | None = None
        self.output_note = ""

    # -- the input ---------------------------------------------------------------------------

    def _before_first_dense(self, where: str, what: str) -> None:
        if self.layers:
            raise WeightsError(f"{self.source}: {where}: {what} is only supported at the input, before the first "
                               f"dense layer; Descent supports {SUPPORTED}")

    def set_input_shape(self, shape) -> None:
        self.input_shape = tuple(int(s) for s in shape)

    def flatten(self, where: str, per_example: tuple | None) -> None:
        """Flatten/Reshape to (batch, n): allowed at the input (images become vectors in row-major order,
        as Keras, PyTorch and ONNX flatten them); elsewhere only as a no-op on a (batch, n) tensor."""
        if self.layers:
            if per_example is not None and tuple(per_example) != (self.layers[-1].units,):
                raise WeightsError(f"{self.source}: {where} reshapes the {self.layers[-1].units} outputs of a "
                                   f"dense layer to {tuple(per_example)}; Descent supports {SUPPORTED}")
            self.report.ignore(where, "flattening a (batch, n) tensor changes nothing")
            return
        shape = self.input_shape
        self.report.ignore(where, f"flattens the input {_per_example(shape)} to one row of "
                                  f"{int(np.prod(shape)) if shape else '?'} features per example (row-major, "
                                  f"as Descent reads images)")

    def standardize(self, where: str, mean: np.ndarray, std: np.ndarray, source_names=()) -> None:
        """``(x - mean) / std`` at the input (per feature, flattened row-major): kept as the data
        statistics in the weights' metadata, which predict and the ONNX export apply."""
        self._before_first_dense(where, "shifting/scaling the inputs")
        if np.any(std == 0) or not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
            raise WeightsError(f"{self.source}: {where}: the input scaling divides by zero or is not finite")
        self.mean = np.asarray(mean, np.float32).reshape(-1)
        self.std = np.asarray(std, np.float32).reshape(-1)
        for name in source_names:
            self.report.ignore(name, "input standardization: stored as the data statistics (mean/std) "
                                     "that predict and export apply to inputs in original units")

    # -- layers ------------------------------------------------------------------------------

    def _current(self, where: str, what: str) -> _Layer:
        if not self.layers:
            raise WeightsError(f"{self.source}: {where}: {what} before the first dense layer is not "
                               f"representable; Descent supports {SUPPORTED}")
        return self.layers[-1]

    def _step(self, where: str, what: str, taken) -> _Layer:
        """The layer ``what`` joins: there must be one, without ``what`` yet (``taken``) and without dropout."""
        layer = self._current(where, what)
        if taken(layer):
            raise WeightsError(f"{self.source}: {where}: a second {what} in the layer of {layer.where}; Descent's "
                               f"layers have one activation and at most one batch normalization")
        if layer.dropout or layer.alpha_dropout:
            raise WeightsError(f"{self.source}: {where}: {what} after dropout is not representable; Descent "
                               f"supports {SUPPORTED}")
        return layer

    def dense(self, where: str, kernel, bias, kernel_name: str, bias_name: str | None = None,
              transposed: bool = False, note: str = "", trainable: bool = True) -> None:
        """A Dense layer; ``kernel`` is (fan_in, units) already (transposed by the caller if needed)."""
        kernel = np.asarray(kernel)
        if kernel.ndim != 2:
            raise WeightsError(f"{self.source}: {where}: kernel {kernel_name} has shape {kernel.shape}; a dense "
                               f"layer's is 2-D (a convolution or embedding is not representable)")
        fan_in = self.layers[-1].units if self.layers else self.n_inputs_hint(kernel.shape[0])
        if kernel.shape[0] != fan_in:
            raise WeightsError(f"{self.source}: {where}: kernel {kernel_name} takes {kernel.shape[0]} inputs, but "
                               f"the previous layer gives {fan_in}")
        units = kernel.shape[1]
        if bias is not None:
            bias = vector(bias, units, f"bias {bias_name}", where)
        i = len(self.layers)
        raw_shape = kernel.T.shape if transposed else kernel.shape
        self.report.map(kernel_name, f"layers.{i}.kernel", raw_shape, transposed, note)
        if bias is not None:
            self.report.map(bias_name or f"{kernel_name} (bias)", f"layers.{i}.bias", np.shape(bias))
        self.layers.append(_Layer(where, np.ascontiguousarray(kernel, dtype=np.float32), bias,
                                  trainable=trainable, parts=[where]))

    def n_inputs_hint(self, fan_in: int) -> int:
        if self.input_shape and all(s > 0 for s in self.input_shape):
            n = int(np.prod(self.input_shape))
            return n
        return fan_in

    def batch_norm(self, where: str, bn: BatchNorm, names: dict) -> None:
        """``names``: foreign name per part (gamma, beta, moving_mean, moving_variance; None = absent in
        the file, then 1 or 0 is used as the framework does)."""
        layer = self._step(where, "batch normalization", lambda lay: lay.bn is not None)
        units = layer.units
        i = len(self.layers) - 1
        parts = {}
        for part, value, default in (("gamma", bn.gamma, 1.0), ("beta", bn.beta, 0.0),
                                     ("moving_mean", bn.mean, 0.0), ("moving_variance", bn.var, 1.0)):
            name = names.get(part)
            if value is None:
                parts[part] = np.full(units, default, np.float32)
                self.report.convention(f"{where}: no {part} in the file (scale/center off): "
                                       f"layers.{i}.bn.{part} is set to {default:g}, which computes the same")
                continue
            parts[part] = vector(value, units, f"batch-norm {part} {name}", where)
            self.report.map(name, f"layers.{i}.bn.{part}", np.shape(value))
        if np.any(parts["moving_variance"] < 0):
            raise WeightsError(f"{self.source}: {where}: negative moving variance")
        layer.bn = BatchNorm(parts["gamma"], parts["beta"], parts["moving_mean"], parts["moving_variance"],
                             bn.epsilon, bn.momentum)
        layer.placement = "after" if layer.activation is not None else "before"
        layer.parts.append(where)

    def activation(self, where: str, name: str, params: dict | None = None, slopes=None,
                   slope_name: str | None = None) -> None:
        """One activation (Descent's names; log_softmax is accepted for the output)."""
        layer = self._step(where, f"activation ({name})", lambda lay: lay.activation is not None)
        layer.activation = name
        layer.params = dict(params or {})
        if slopes is not None:
            i = len(self.layers) - 1
            layer.prelu = vector(slopes, layer.units, f"PReLU slopes {slope_name}", where)
            note = "" if np.size(slopes) == layer.units else f"one slope shared by all units: copied to each of {layer.units}"
            self.report.map(slope_name, f"layers.{i}.prelu.alpha", np.shape(slopes), note=note)
        layer.parts.append(where)

    def dropout(self, where: str, rate: float, alpha: bool = False) -> None:
        kind = "alpha dropout" if alpha else "dropout"
        if not self.layers:
            self.report.ignore(where, f"{kind} on the inputs does nothing at inference and Descent has no input "
                                      f"dropout: left out (add dropout to the layers to train with it)")
            return
        layer = self.layers[-1]
        if layer.dropout or layer.alpha_dropout:
            raise WeightsError(f"{self.source}: {where}: a second dropout in the layer of {layer.where}")
        if not 0.0 <= rate < 1.0:
            raise WeightsError(f"{self.source}: {where}: dropout rate {rate} is outside [0, 1)")
        layer.dropout, layer.alpha_dropout = float_param(rate), bool(alpha)
        layer.parts.append(where)
        self.report.ignore(where, f"{kind} does nothing at inference: kept as the layer's training setting "
                                  f"(rate {float_param(rate):g})")

    # -- the result --------------------------------------------------------------------------

    def finish(self) -> tuple[dict, dict]:
        """(model section, Descent tensors): checks the output layer and every hidden activation."""
        if not self.layers:
            raise WeightsError(f"{self.source} has no dense layer; Descent supports {SUPPORTED}")
        *hidden, out = self.layers
        tensors = {}
        layers = []
        for i, layer in enumerate(hidden):
            act = layer.activation or "linear"
            if act not in hidden_activation_names():
                raise WeightsError(f"{self.source}: {layer.where}: a hidden layer ending in {act} is not "
                                   f"representable; hidden layers use {', '.join(hidden_activation_names())}")
            entry = {"units": layer.units, "activation": act, "activation_params": self._params(act, layer),
                     "use_bias": layer.bias is not None, "batch_norm": layer.placement,
                     "dropout": layer.dropout, "alpha_dropout": layer.alpha_dropout, "trainable": layer.trainable}
            if layer.bn is not None:
                entry["bn_epsilon"] = float_param(layer.bn.epsilon)
                if layer.bn.momentum is not None:
                    entry["bn_momentum"] = float_param(layer.bn.momentum)
            layers.append(entry)
            self._tensors(tensors, i, layer)
            self.report.layers.append(describe(i, entry, layer))
        act = out.activation or "linear"
        if out.bn is not None or act not in OUTPUTS:
            what = "batch normalization" if out.bn is not None else act
            raise WeightsError(f"{self.source}: {out.parts[-1] if out.bn is None else out.where}: the last dense "
                               f"layer is followed by {what}; Descent's output layer ends in softmax, a sigmoid "
                               f"or nothing (a linear output)")
        if act == "logistic" and out.units != 1:
            raise WeightsError(f"{self.source}: {out.where}: a sigmoid output with {out.units} units (multi-label) "
                               f"is not representable; Descent's sigmoid output has 1 unit (two classes)")
        if act in ("softmax", "log_softmax") and out.units < 2:
            raise WeightsError(f"{self.source}: {out.where}: a softmax over 1 unit is always 1; Descent's softmax "
                               f"output needs at least 2 classes")
        if act == "log_softmax":
            act = "softmax"
            self.report.convention("the output was log-softmax; Descent's classifier outputs are probabilities, so "
                                   "it ends in softmax: Descent predicts exp(the source's outputs), same argmax")
        if out.dropout or out.alpha_dropout:
            self.report.convention("dropout after the output layer does nothing at inference and has no place in "
                                   "Descent: left out")
        self._tensors(tensors, len(hidden), out)
        output = {"activation": act, "use_bias": out.bias is not None, "trainable": out.trainable}
        self.report.layers.append(f"output: {out.units} units, {act} ({' -> '.join(out.parts)})")
        return {"layers": layers, "output": output}, tensors

    def _params(self, act: str, layer: _Layer) -> dict:
        spec = ACTIVATIONS.get(act).params
        unknown = set(layer.params) - set(spec)
        if unknown:
            raise WeightsError(f"{self.source}: {layer.where}: {act} has no parameter {', '.join(sorted(unknown))}")
        return {k: float_param(v) for k, v in layer.params.items()}

    @staticmethod
    def _tensors(tensors: dict, i: int, layer: _Layer) -> None:
        tensors[f"layers.{i}.kernel"] = layer.kernel
        if layer.bias is not None:
            tensors[f"layers.{i}.bias"] = layer.bias
        if layer.bn is not None:
            for part, value in (("gamma", layer.bn.gamma), ("beta", layer.bn.beta),
                                ("moving_mean", layer.bn.mean), ("moving_variance", layer.bn.var)):
                tensors[f"layers.{i}.bn.{part}"] = value
        if layer.prelu is not None:
            tensors[f"layers.{i}.prelu.alpha"] = layer.prelu

    @property
    def n_inputs(self) -> int:
        return int(self.layers[0].kernel.shape[0])


def _per_example(shape) -> str:
    return "x".join(str(s) for s in shape) if shape else "(unknown shape)"


def describe(i: int, entry: dict, layer: _Layer) -> str:
    params = ", ".join(f"{k}={v:g}" for k, v in entry["activation_params"].items())
    act = entry["activation"] + (f"({params})" if params else "")
    bn = {"none": "", "before": ", batch norm before", "after": ", batch norm after"}[entry["batch_norm"]]
    drop = f", {'alpha ' if entry['alpha_dropout'] else ''}dropout {entry['dropout']:g}" if entry["dropout"] else ""
    return f"layer {i}: {entry['units']} units, {act}{bn}{drop} ({' -> '.join(layer.parts)})"
