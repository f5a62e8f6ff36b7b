"""The activation catalogue.

Each entry carries everything that is particular to its activation, so the
rest of the program reads entries instead of listing activations:

* the compiled code that computes it (``code``, a case of
  :mod:`engine.kernels.activations`; or code EXTENSION plus a
  :class:`ScalarKernel` compiled from two scalar functions);
* its parameters (``params``) and where the kernel reads each one
  (``slots``: Param name -> a named column of the layer's floats row,
  ``layout.ACT_*``), and constraints between them (``ordered``);
* whether its backward pass reads the activation's output (``uses_output``:
  the kernel then computes the output again when dropout changed it);
* per-unit learned slopes (``learned_slopes``: the Param with their initial
  value) and randomness in training (``random_in_training``);
* the initializer Table 11-1 pairs it with, which diagnostics apply (dead
  units for the ReLU family, saturation for the squashing functions), and
  where it may be used (hidden layers, output layer with its paired loss);
* how it is exported: ``onnx`` (a function that appends ONNX nodes) and
  ``keras_name`` / ``keras_layer`` (the Keras activation or layer).

The exporters' side of the contract:

``onnx(g, x, use) -> str`` appends the nodes computing the activation of the
value named ``x`` to the graph builder ``g`` and returns the name of the
result (``x`` itself for the identity).  ``g.op(op_type, inputs,
**attributes)`` appends one node and returns its output's name,
``g.const(stem, value)`` adds a float32 constant and returns its name,
``g.opset`` is the opset being written.  ``use`` (:class:`ActivationUse`)
is the layer's index, resolved parameters and learned slopes.

``keras_name`` is a ``keras.activations`` name (``Activation(name)`` in a
hidden layer, ``Dense(activation=name)`` at the output); ``keras_layer(use)``
instead returns ``(Keras class name, constructor source, variables)`` for a
layer that needs arguments or weights (LeakyReLU, ELU, PReLU).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from numba import cfunc

from engine.errors import ExperimentError
from engine.kernels import activations as codes
from engine.kernels import layout as K
from engine.params import Param
from engine.registry import Registry


@dataclass(frozen=True)
class ActivationUse:
    """One layer's use of an activation, as an exporter sees it."""

    name: str                            # the activation
    layer: int
    params: Mapping[str, Any]            # the layer's resolved activation_params
    slopes: np.ndarray | None = None     # learned per-unit slopes (PReLU), else None


class ScalarKernel:
    """An activation compiled outside :mod:`engine.kernels.activations`.

    ``forward(z, p0, p1)`` returns f(z); ``derivative(z, a, p0, p1)`` returns
    f'(z) given a = f(z) (read ``a`` only with ``uses_output=True`` on the
    entry: without it, ``a`` may be the output after dropout).  p0 and p1 are
    the values in the layer's ACT_P0 and ACT_P1 columns (see ``slots``).
    Both are compiled once to C functions; the kernels call them through the
    addresses in the layer table.  This object keeps the machine code alive,
    so it lives as long as its registry entry.
    """

    def __init__(self, forward: Callable, derivative: Callable):
        self.forward = cfunc(codes.EXTENSION_FORWARD, nopython=True)(forward)
        self.derivative = cfunc(codes.EXTENSION_DERIVATIVE, nopython=True)(derivative)

    @property
    def addresses(self) -> tuple[int, int]:
        """(forward, derivative) addresses for the layer table's ACT_FORWARD / ACT_DERIVATIVE."""
        return self.forward.address, self.derivative.address


@dataclass(frozen=True)
class Activation:
    """One catalogue entry (fields described in the module docstring);
    add it with :func:`register_activation`, which checks them."""

    name: str
    code: int
    doc: str
    default_initializer: str
    params: dict = field(default_factory=dict)   # name -> Param
    slots: dict = field(default_factory=dict)    # Param name -> floats column the kernel reads (layout.ACT_*)
    ordered: tuple = ()                          # Params whose values may not decrease in this order
    uses_output: bool = False                    # the backward reads f(z) (the kernel recomputes it after dropout)
    learned_slopes: str | None = None            # PReLU: the Param giving the learned slopes' initial value
    random_in_training: bool = False             # RReLU: a new random slope every step
    kernel: ScalarKernel | None = None           # code EXTENSION only
    relu_family: bool = False                    # units can die (output 0 for every input)
    saturating: bool = False                     # outputs bounded: saturation is reported
    hidden: bool = True                          # usable in hidden layers
    output: bool = False                         # usable as the output activation
    loss: str | None = None                      # output: the loss it pairs with
    output_units: Callable | None = None         # output: (task, n_classes, n_targets) -> units, or raises
    auto_for_task: str | None = None             # output: what "auto" picks for this task
    onnx: Callable | None = None                 # (g, x, use) -> name of the result
    keras_name: str | None = None                # keras.activations name
    keras_layer: Callable | None = None          # (use) -> (class name, constructor source, variables)

    @property
    def learns_slopes(self) -> bool:
        return self.learned_slopes is not None

    def kernel_params(self, values: Mapping[str, Any]) -> dict[int, float]:
        """{floats column: value} for the layer table, from resolved activation_params."""
        return {column: float(values.get(name, self.params[name].default)) for name, column in self.slots.items()}

    def kernel_functions(self) -> tuple[int, int]:
        """(forward, derivative) addresses for the layer table; 0 for built-in code."""
        return self.kernel.addresses if self.kernel is not None else (0, 0)

    def check_params(self, values: Mapping[str, Any], where: str) -> None:
        """Constraints between parameters that one Param cannot express."""
        for low, high in zip(self.ordered, self.ordered[1:]):
            if values[low] > values[high]:
                raise ExperimentError(f"{where}.{low} must be <= {high}")

    def initial_slope(self, values: Mapping[str, Any]) -> float:
        return float(values.get(self.learned_slopes, self.params[self.learned_slopes].default))


ACTIVATIONS: Registry[Activation] = Registry("activation")


def register_activation(entry: Activation) -> Activation:
    """Check an entry's declarations against each other and add it to
    ACTIVATIONS.  ``ACTIVATIONS.remove(name)`` takes it out again."""
    problems = []
    if set(entry.slots) - set(entry.params):
        problems.append(f"slots name unknown params {sorted(set(entry.slots) - set(entry.params))}")
    if not set(entry.slots.values()) <= {K.ACT_P0, K.ACT_P1}:
        problems.append("slots must be the ACT_P0 / ACT_P1 columns of kernels/layout.py")
    if (entry.code == codes.EXTENSION) != (entry.kernel is not None):
        problems.append("a ScalarKernel goes with code EXTENSION, and only with it")
    if entry.learned_slopes is not None and entry.learned_slopes not in entry.params:
        problems.append(f"learned_slopes {entry.learned_slopes!r} is not a param")
    if not set(entry.ordered) <= set(entry.params):
        problems.append(f"ordered names unknown params {sorted(set(entry.ordered) - set(entry.params))}")
    if entry.output and (entry.loss is None or entry.output_units is None):
        problems.append("an output activation needs its loss and output_units")
    if problems:
        raise ValueError(f"activation {entry.name!r}: " + "; ".join(problems))
    return ACTIVATIONS.add(entry.name, entry)


class _LiveNames(Sequence):
    """Names of the registered activations that pass ``keep``, read from the
    registry at every use, so a Param's choices include an activation
    registered after this module was imported."""

    def __init__(self, keep: Callable[[Activation], bool]):
        self._keep = keep

    def _names(self) -> list[str]:
        return [name for name, entry in ACTIVATIONS.items() if self._keep(entry)]

    def __getitem__(self, index):
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return repr(tuple(self._names()))


HIDDEN_ACTIVATIONS: Sequence[str] = _LiveNames(lambda entry: entry.hidden)


def hidden_activation_names() -> list[str]:
    return list(HIDDEN_ACTIVATIONS)


def output_activation_names() -> list[str]:
    return [name for name, a in ACTIVATIONS.items() if a.output]


# ------------------------------------------------------------------------------- export helpers

def onnx_operator(op_type: str, **attributes) -> Callable:
    """ONNX mapping onto one operator with fixed attributes."""
    return lambda g, x, use: g.op(op_type, [x], **attributes)


def _identity(g, x, use):
    return x


def _rrelu_slope(params) -> float:
    """RReLU at inference: the mean of the training range, as Descent predicts."""
    return 0.5 * (float(params["lower"]) + float(params["upper"]))


def _leaky_slope(params) -> float:
    return float(params["alpha"])


def _leaky_onnx(slope: Callable) -> Callable:
    return lambda g, x, use: g.op("LeakyRelu", [x], alpha=slope(use.params))


def _leaky_keras(slope: Callable) -> Callable:
    return lambda use: ("LeakyReLU", f"keras.layers.LeakyReLU(negative_slope={slope(use.params)!r})", [])


def _prelu_onnx(g, x, use):
    return g.op("PRelu", [x, g.const(f"layers.{use.layer}.prelu.alpha", use.slopes)])


def _gelu_onnx(g, x, use):
    """Exact form x * Phi(x): the Gelu operator from opset 20, Erf before."""
    if g.opset >= 20:
        return g.op("Gelu", [x], approximate="none")
    scaled = g.op("Mul", [x, g.const("inv_sqrt2", 1.0 / math.sqrt(2.0))])
    phi2 = g.op("Add", [g.op("Erf", [scaled]), g.const("one", 1.0)])
    return g.op("Mul", [g.op("Mul", [x, phi2]), g.const("half", 0.5)])


def _swish_onnx(g, x, use):
    return g.op("Mul", [x, g.op("Sigmoid", [x])])


def _class_probabilities(task: str, n_classes: int, n_targets: int) -> int:
    if task != "classification":
        raise ExperimentError(f"model.output.activation 'softmax' needs class labels, but the data are for "
                              f"{task}; use 'linear'")
    return n_classes


def _binary_probability(task: str, n_classes: int, n_targets: int) -> int:
    if task != "classification" or n_classes != 2:
        raise ExperimentError(f"model.output.activation 'logistic' needs exactly 2 classes; the data have "
                              f"{n_classes if task == 'classification' else 'no classes'}")
    return 1


def _regression_values(task: str, n_classes: int, n_targets: int) -> int:
    if task == "classification":
        raise ExperimentError("model.output.activation 'linear' is for regression; class labels need "
                              "'softmax' or 'logistic'")
    return n_targets


# ------------------------------------------------------------------------------- the catalogue

register_activation(Activation(
    "linear", codes.LINEAR, "identity: no non-linearity (regression outputs)", "glorot_uniform",
    output=True, loss="mse", output_units=_regression_values, auto_for_task="regression",
    onnx=_identity, keras_name="linear"))
register_activation(Activation(
    "logistic", codes.LOGISTIC, "sigmoid 1/(1+e^-z): saturates at 0 and 1, mean 0.5", "glorot_uniform",
    saturating=True, uses_output=True, output=True, loss="binary_cross_entropy",
    output_units=_binary_probability, onnx=onnx_operator("Sigmoid"), keras_name="sigmoid"))
register_activation(Activation(
    "tanh", codes.TANH, "hyperbolic tangent: saturates at -1 and 1, zero-centred", "glorot_uniform",
    saturating=True, uses_output=True, onnx=onnx_operator("Tanh"), keras_name="tanh"))
register_activation(Activation(
    "relu", codes.RELU, "max(0, z): cheap, no saturation for z > 0, but units can die", "he_normal",
    relu_family=True, onnx=onnx_operator("Relu"), keras_name="relu"))
register_activation(Activation(
    "leaky_relu", codes.LEAKY_RELU, "z for z > 0, alpha*z otherwise: never quite dies", "he_normal",
    relu_family=True,
    params={"alpha": Param(0.01, "slope for z < 0 (0.01 usual, 0.2 often better)", low=0.0, high=1.0)},
    slots={"alpha": K.ACT_ALPHA},
    onnx=_leaky_onnx(_leaky_slope), keras_layer=_leaky_keras(_leaky_slope)))
register_activation(Activation(
    "rrelu", codes.RRELU, "leaky ReLU whose slope is drawn at random per unit and step in training and "
    "fixed at the mean at inference (acts as a regularizer)", "he_normal",
    relu_family=True, random_in_training=True,
    params={"lower": Param(1 / 8, "smallest random slope", low=0.0, high=1.0),
            "upper": Param(1 / 3, "largest random slope", low=0.0, high=1.0)},
    slots={"lower": K.ACT_LOWER, "upper": K.ACT_UPPER}, ordered=("lower", "upper"),
    onnx=_leaky_onnx(_rrelu_slope), keras_layer=_leaky_keras(_rrelu_slope)))
register_activation(Activation(
    "prelu", codes.PRELU, "leaky ReLU whose slope is learned, one per unit", "he_normal",
    relu_family=True, learned_slopes="alpha_initializer",
    params={"alpha_initializer": Param(0.25, "initial slope of every unit", low=0.0, high=1.0)},
    onnx=_prelu_onnx, keras_layer=lambda use: ("PReLU", "keras.layers.PReLU()", [use.slopes])))
register_activation(Activation(
    "elu", codes.ELU, "z for z > 0, alpha*(e^z - 1) otherwise: smooth, negative mean possible", "he_normal",
    relu_family=True, uses_output=True,
    params={"alpha": Param(1.0, "value approached for very negative z is -alpha", low=0.0, high=10.0)},
    slots={"alpha": K.ACT_ALPHA},
    onnx=lambda g, x, use: g.op("Elu", [x], alpha=float(use.params["alpha"])),
    keras_layer=lambda use: ("ELU", f"keras.layers.ELU(alpha={float(use.params['alpha'])!r})", [])))
register_activation(Activation(
    "selu", codes.SELU, "scaled ELU: with LeCun init and standardized inputs, a plain dense stack keeps "
    "mean 0 and std 1 in every layer", "lecun_normal", uses_output=True,
    onnx=onnx_operator("Selu", alpha=codes.SELU_ALPHA, gamma=codes.SELU_SCALE), keras_name="selu"))
register_activation(Activation(
    "gelu", codes.GELU, "z * Phi(z) (Gaussian CDF): smooth ReLU-like curve", "he_normal",
    onnx=_gelu_onnx,
    keras_layer=lambda use: ("Activation", "keras.layers.Activation(lambda x: keras.activations.gelu(x, "
                                           "approximate=False))", [])))
register_activation(Activation(
    "swish", codes.SWISH, "z * sigmoid(z): smooth, non-monotonic ReLU-like curve", "he_normal",
    onnx=_swish_onnx, keras_name="silu"))
register_activation(Activation(
    "softmax", codes.SOFTMAX, "normalized exponentials: class probabilities (output only)", "glorot_uniform",
    hidden=False, output=True, loss="cross_entropy", output_units=_class_probabilities,
    auto_for_task="classification", onnx=onnx_operator("Softmax", axis=1), keras_name="softmax"))
