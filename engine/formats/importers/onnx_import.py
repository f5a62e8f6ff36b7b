"""ONNX: a dense network read from an inference graph.

The file is parsed by the ``onnx`` package and validated by
``onnx.checker.check_model`` before anything else; weights stored in
external files are refused (the graph must be self-contained).  Then the
graph is walked from its one input to its one output, node by node, and each
node is handed to the :class:`~engine.formats.importers.stack.Stack`:

* ``Gemm`` (``transB=1``, as PyTorch exports ``nn.Linear``, is transposed;
  ``alpha``/``beta`` other than 1 are folded into the weights), or
  ``MatMul`` followed by ``Add`` of a constant bias (``MatMul`` alone: no bias);
* ``Relu``, ``LeakyRelu``, ``PRelu``, ``Elu``, ``Selu`` (the standard
  constants), ``Sigmoid``, ``Tanh``, ``Gelu`` (exact), ``Softmax``,
  ``LogSoftmax``;
* ``BatchNormalization`` in inference mode (epsilon carried over exactly;
  ONNX's momentum has Keras's and Descent's meaning);
* ``Identity`` and ``Dropout`` (inference no-ops), ``Flatten``/``Reshape``
  to (batch, n) at the input;
* ``Sub``/``Add``/``Mul``/``Div`` by constants before the first dense layer:
  input standardization, kept as the data statistics (Descent's own ONNX
  export starts that way);
* where one tensor feeds several nodes (GELU written as
  ``x * 0.5 * (1 + Erf(x / sqrt 2))``, swish as ``x * Sigmoid(x)``), the
  element-wise nodes up to the point where the branches join are evaluated
  on 241 points and recognized as the Descent activation they compute.

Anything else -- a convolution, a second input, a skip connection, an op of
another domain -- is refused with the node's name, its type and what is
supported.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from engine.errors import WeightsError
from engine.formats.importers.assemble import Imported
from engine.formats.importers.mapping import Report
from engine.formats.importers.stack import SUPPORTED, BatchNorm, Stack, float_param
from engine.kernels.activations import SELU_ALPHA, SELU_SCALE

MAX_BYTES = 2 * 1024**3          # protobuf's own limit
UNARY = {"Relu": "relu", "Sigmoid": "logistic", "Tanh": "tanh"}
ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Pow", "Erf", "Sigmoid", "Tanh", "Exp", "Neg", "Reciprocal", "Sqrt",
               "Abs", "Relu")
OPS = ("Gemm", "MatMul", "Add", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "Tanh", "Gelu", "Erf",
       "Softmax", "LogSoftmax", "BatchNormalization", "Identity", "Dropout", "Flatten", "Reshape")
PROBE = np.linspace(-6.0, 6.0, 241)
_erf = np.vectorize(math.erf)


def _candidates(z: np.ndarray) -> dict:
    """What an element-wise subgraph may compute, on the probe points."""
    return {"gelu": 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))),
            "swish": z / (1.0 + np.exp(-z)),
            "gelu (tanh approximation)": 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))}


def _load(path: Path):
    if not path.is_file():
        raise WeightsError(f"model file {path} does not exist")
    if path.stat().st_size > MAX_BYTES:
        raise WeightsError(f"{path} is larger than 2 GiB, the most an ONNX file can hold")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: a truncated or foreign file
        raise WeightsError(f"{path} is not a readable ONNX file ({type(exc).__name__}: {exc}); it may be "
                           f"truncated or of another kind") from None
    if not model.graph.node:
        raise WeightsError(f"{path} is not an ONNX model (no graph nodes); it may be truncated or of another kind")
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise WeightsError(f"{path}: initializer {init.name!r} is stored in an external file; Descent imports "
                               f"self-contained ONNX files (save with save_as_external_data=False)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path} fails onnx.checker: {first}") from None
    return model


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _node_name(node, index: int) -> str:
    return f"node {node.name or '#' + str(index)!r} ({node.op_type})"


class _Walker:
    """Follows the graph's one chain from input to output (see the module docstring)."""

    def __init__(self, model, path: Path):
        self.path = path
        self.graph = model.graph
        self.opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=1)
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.nodes = []
        for index, node in enumerate(self.graph.node):
            if node.domain not in ("", "ai.onnx"):
                raise WeightsError(f"{path}: {_node_name(node, index)} is from the operator set {node.domain!r}; "
                                   f"Descent reads the standard ONNX operators ({', '.join(OPS)})")
            if not self._fold_constant(node):
                self.nodes.append((index, node))
        self.consumers: dict[str, list] = {}
        for index, node in self.nodes:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append((index, node))
        self.used: set = set()
        self.stack = Stack(path.name, Report())
        self.affine = None            # (scale, shift) of the inputs before the first dense layer
        self.affine_names: list = []
        self.shape: tuple | None = None

    def _fold_constant(self, node) -> bool:
        if node.op_type == "Constant":
            attrs = {a.name: a for a in node.attribute}
            if "value" in attrs:
                value = numpy_helper.to_array(attrs["value"].t)
            else:
                value = np.asarray(next(iter(_attrs(node).values())))
            self.consts[node.output[0]] = value
            return True
        if node.op_type in ("Identity", "Cast") and node.input and node.input[0] in self.consts:
            self.consts[node.output[0]] = self.consts[node.input[0]]
            return True
        return False

    def fail(self, where: str, what: str):
        raise WeightsError(f"{self.path.name}: {where}: {what}")

    def const(self, name: str, where: str, what: str) -> np.ndarray:
        if name not in self.consts:
            self.fail(where, f"its {what} ({name!r}) is computed in the graph, not a stored constant; Descent "
                             f"imports weights stored in the file")
        return np.asarray(self.consts[name])

    # -- the walk ----------------------------------------------------------------------------

    def run(self) -> Imported:
        graph = self.graph
        inputs = [i for i in graph.input if i.name not in self.consts]
        if len(inputs) != 1 or len(graph.output) != 1:
            names = ", ".join(i.name for i in inputs) or "none"
            raise WeightsError(f"{self.path.name}: the graph has {len(inputs)} input(s) ({names}) and "
                               f"{len(graph.output)} output(s); a Descent network has one of each")
        dims = inputs[0].type.tensor_type.shape.dim
        if len(dims) >= 2:
            per_example = tuple(d.dim_value if d.HasField("dim_value") else 0 for d in dims[1:])
            self.shape = per_example
            if all(per_example):
                self.stack.set_input_shape(per_example)
        cur, end = inputs[0].name, graph.output[0].name
        while True:
            users = [(i, n) for i, n in self.consumers.get(cur, []) if i not in self.used]
            if cur == end:
                if users:
                    self.fail(_node_name(users[0][1], users[0][0]), f"also reads the graph's output {end!r}: a "
                                                                   f"branch Descent cannot model")
                break
            if not users:
                self.fail(f"tensor {cur!r}", f"leads nowhere: the graph does not reach its output {end!r} through "
                                             f"one chain of nodes")
            cur = self.step(*users[0], cur) if len(users) == 1 else self.region(cur, users)
        left = [(i, n) for i, n in self.nodes if i not in self.used]
        if left:
            self.fail(_node_name(left[0][1], left[0][0]), "is off the chain from the input to the output (a second "
                                                          f"path or a skip connection); Descent supports {SUPPORTED}")
        model, tensors = self.stack.finish()
        mean = std = None
        if self.stack.mean is not None:
            mean, std = self.stack.mean, self.stack.std
        imported = Imported(self.path, "ONNX", "", model, tensors, self.stack.report, self.stack.n_inputs,
                            self.stack.input_shape, mean, std, defines={"bn_epsilon", "dropout", "bn_momentum"})
        return imported

    def _single_output(self, node, where: str) -> str:
        for extra in node.output[1:]:
            if extra and (extra in self.consumers or extra in (o.name for o in self.graph.output)):
                self.fail(where, f"its extra output {extra!r} is used; Descent computes only the first "
                                 f"(inference mode)")
        return node.output[0]

    def step(self, index: int, node, cur: str) -> str:
        where = _node_name(node, index)
        self.used.add(index)
        op, attrs = node.op_type, _attrs(node)
        if op in ("Add", "Sub", "Mul", "Div") and not self.stack.layers:
            return self._input_affine(node, where, cur)
        if self.affine is not None and op in ("Gemm", "MatMul"):
            self._close_affine(where)
        if op in ("Gemm", "MatMul"):
            return self._dense(node, where, cur, attrs)
        if op == "BatchNormalization":
            return self._batch_norm(node, where, cur, attrs)
        if op in ("Identity",):
            return node.output[0]
        if op == "Dropout":
            ratio = attrs.get("ratio", 0.5)
            if len(node.input) > 1 and node.input[1]:
                ratio = float(self.const(node.input[1], where, "ratio").reshape(()))
            if len(node.input) > 2 and node.input[2] and bool(self.const(node.input[2], where, "training_mode")):
                self.fail(where, "runs in training mode; Descent imports inference graphs")
            self.stack.dropout(where, float(ratio))
            return self._single_output(node, where)
        if op in ("Flatten", "Reshape"):
            return self._flatten(node, where, attrs)
        return self._activation(node, where, attrs)

    def _activation(self, node, where: str, attrs: dict) -> str:
        op = node.op_type
        out = self._single_output(node, where)
        if op in UNARY:
            self.stack.activation(where, UNARY[op])
        elif op == "LeakyRelu":
            self.stack.activation(where, "leaky_relu", {"alpha": float_param(attrs.get("alpha", 0.01))})
        elif op == "Elu":
            self.stack.activation(where, "elu", {"alpha": float_param(attrs.get("alpha", 1.0))})
        elif op == "PRelu":
            slopes = self.const(node.input[1], where, "slope")
            self.stack.activation(where, "prelu", slopes=slopes, slope_name=node.input[1])
        elif op == "Selu":
            alpha, gamma = attrs.get("alpha", 1.67326319217681884765625), attrs.get("gamma", 1.05070102214813232421875)
            if not (math.isclose(alpha, SELU_ALPHA, rel_tol=1e-6) and math.isclose(gamma, SELU_SCALE, rel_tol=1e-6)):
                self.fail(where, f"SELU with alpha={alpha:g}, gamma={gamma:g}; Descent's SELU uses the standard "
                                 f"constants alpha={SELU_ALPHA:.6f}, gamma={SELU_SCALE:.6f}")
            self.stack.activation(where, "selu")
        elif op == "Gelu":
            if attrs.get("approximate", b"none") not in (b"none", "none"):
                self.fail(where, "GELU with the tanh approximation; Descent's GELU is the exact x * Phi(x)")
            self.stack.activation(where, "gelu")
        elif op in ("Softmax", "LogSoftmax"):
            axis = attrs.get("axis", -1 if self.opset >= 13 else 1)
            if axis not in (1, -1):
                self.fail(where, f"{op} over axis {axis}; a network's outputs are (batch, classes), axis 1")
            self.stack.activation(where, "softmax" if op == "Softmax" else "log_softmax")
        else:
            self.fail(where, f"the operator {op} is not representable in Descent; supported operators: "
                             f"{', '.join(OPS)} ({SUPPORTED})")
        return out

    def _input_affine(self, node, where: str, cur: str) -> str:
        """Sub/Add/Mul/Div by constants before the first dense layer: x -> scale * x + shift."""
        other = [n for n in node.input if n != cur]
        if len(other) != 1 or other[0] not in self.consts or node.input[0] != cur:
            self.fail(where, f"{node.op_type} of the inputs by something other than a stored constant; Descent "
                             f"supports {SUPPORTED}")
        c = np.asarray(self.consts[other[0]], np.float64)
        if self.shape and all(self.shape):
            try:
                c = np.broadcast_to(c.reshape(c.shape[-len(self.shape):] if c.ndim > len(self.shape) else c.shape),
                                    self.shape).reshape(-1)
            except ValueError:
                self.fail(where, f"constant {other[0]!r} of shape {c.shape} does not fit the input {self.shape}")
        else:
            c = c.reshape(-1)
        scale, shift = self.affine or (np.ones(1), np.zeros(1))
        if node.op_type == "Sub":
            shift = shift - c
        elif node.op_type == "Add":
            shift = shift + c
        elif node.op_type == "Mul":
            scale, shift = scale * c, shift * c
        else:
            scale, shift = scale / c, shift / c
        self.affine = (scale, shift)
        self.affine_names.append(f"{other[0]} ({node.op_type})")
        return node.output[0]

    def _close_affine(self, where: str) -> None:
        scale, shift = self.affine
        if np.any(scale == 0):
            self.fail(where, "the inputs are multiplied by zero before the first dense layer")
        std = 1.0 / scale
        mean = -shift * std
        n = max(mean.size, std.size)
        self.stack.standardize(where, np.broadcast_to(mean, n), np.broadcast_to(std, n), self.affine_names)
        self.affine = None

    def _dense(self, node, where: str, cur: str, attrs: dict) -> str:
        if node.input[0] != cur:
            self.fail(where, f"the data must be the first input (x @ W); here it is input "
                             f"{list(node.input).index(cur) + 1}")
        W = self.const(node.input[1], where, "weights").astype(np.float64)
        if W.ndim != 2:
            self.fail(where, f"weights {node.input[1]!r} have shape {W.shape}; a dense layer's are 2-D")
        bias_name, bias, notes, transposed = None, None, [], False
        out = node.output[0]
        if node.op_type == "Gemm":
            if attrs.get("transA", 0):
                self.fail(where, "transA=1 (the batch on the second axis) is not a dense layer of a batch")
            transposed = bool(attrs.get("transB", 0))
            W = W.T if transposed else W
            alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
            if alpha != 1.0:
                W = W * alpha
                notes.append(f"multiplied by Gemm's alpha={alpha:g}")
            if len(node.input) > 2 and node.input[2]:
                bias_name = node.input[2]
                bias = self.const(bias_name, where, "bias C").astype(np.float64) * beta
                if beta != 1.0:
                    notes.append(f"bias multiplied by Gemm's beta={beta:g}")
        else:
            users = [(i, n) for i, n in self.consumers.get(out, []) if i not in self.used]
            if len(users) == 1 and users[0][1].op_type == "Add" and out not in [o.name for o in self.graph.output]:
                index, add = users[0]
                other = [n for n in add.input if n != out]
                if len(other) == 1 and other[0] in self.consts:
                    self.used.add(index)
                    bias_name, bias = other[0], np.asarray(self.consts[other[0]], np.float64)
                    out = add.output[0]
                    where = f"{where} + {_node_name(add, index)}"
        self.stack.dense(where, W, bias, node.input[1], bias_name, transposed, "; ".join(notes))
        self.shape = (W.shape[1],)
        return out

    def _batch_norm(self, node, where: str, cur: str, attrs: dict) -> str:
        if node.input[0] != cur:
            self.fail(where, "the data must be the first input")
        if attrs.get("training_mode", 0):
            self.fail(where, "runs in training mode (batch statistics); Descent imports inference graphs")
        parts = dict(zip(("gamma", "beta", "moving_mean", "moving_variance"), node.input[1:5]))
        values = {k: self.const(v, where, k) for k, v in parts.items()}
        eps, momentum = float(attrs.get("epsilon", 1e-5)), float(attrs.get("momentum", 0.9))
        self.stack.batch_norm(where, BatchNorm(values["gamma"], values["beta"], values["moving_mean"],
                                               values["moving_variance"], eps, momentum), parts)
        self.stack.report.convention(
            "ONNX BatchNormalization's momentum has Descent's (and Keras's) meaning, the weight of the old "
            "moving average; it is a training setting that inference graphs often leave at ONNX's default 0.9 "
            "(PyTorch's momentum 0.1 exports as 0.9)")
        return self._single_output(node, where)

    def _flatten(self, node, where: str, attrs: dict) -> str:
        if node.op_type == "Flatten":
            if attrs.get("axis", 1) != 1:
                self.fail(where, f"Flatten with axis={attrs['axis']}; a network flattens each example (axis 1)")
            self.stack.flatten(where, None)
            self.shape = (int(np.prod(self.shape)),) if self.shape and all(self.shape) else None
            return node.output[0]
        target = [int(v) for v in self.const(node.input[1], where, "target shape").reshape(-1)]
        n = int(np.prod(self.shape)) if self.shape and all(self.shape) else None
        if len(target) != 2 or target[0] < -1 or (target[0] == -1 and target[1] <= 0):
            self.fail(where, f"Reshape to {target}; Descent supports reshaping each example to one row of "
                             f"features, (batch, n)")
        width = target[1]
        if width == 0:
            width = self.shape[0] if self.shape and self.shape[0] else -1
        if width == -1:
            width = n if n is not None else -1
        if n is not None and width != n:
            self.fail(where, f"Reshape to {target}: each example has {n} values, not one row of {width}")
        self.stack.flatten(where, None if width == -1 else (width,))
        self.shape = (width,) if width != -1 else None
        return node.output[0]

    def region(self, cur: str, users: list) -> str:
        """Several nodes read ``cur``: an activation written as element-wise arithmetic (see the docstring)."""
        region, avail, closures = [], {cur}, []
        outputs = {o.name for o in self.graph.output}
        for index, node in self.nodes:
            if index in self.used:
                continue
            ins = [n for n in node.input if n]
            reads = [n for n in ins if n in avail]
            if not reads:
                continue
            if node.op_type not in ELEMENTWISE or not all(n in avail or n in self.consts for n in ins):
                break
            region.append((index, node))
            avail.update(node.output)
            inside = {i for i, _ in region}
            open_ends = {t for t in avail if t in outputs or any(i not in inside for i, _ in self.consumers.get(t, []))}
            if open_ends == {node.output[0]}:
                closures.append(len(region))
        names = ", ".join(_node_name(n, i) for i, n in region) or ", ".join(_node_name(n, i) for i, n in users)
        for size in reversed(closures):
            found = self._recognize(region[:size], cur)
            if found is None:
                continue
            if found.startswith("gelu (tanh"):
                self.fail(f"nodes {names}", "compute GELU's tanh approximation; Descent's GELU is the exact "
                                            "x * Phi(x)")
            part = region[:size]
            self.used.update(i for i, _ in part)
            ops = " -> ".join(n.op_type for _, n in part)
            where = f"nodes {', '.join(repr(n.name or '#' + str(i)) for i, n in part)} ({ops})"
            self.stack.activation(where, found)
            self.stack.report.ignore(where, f"{found} written as element-wise arithmetic: recognized by evaluating "
                                            f"it on {PROBE.size} points in [-6, 6]")
            return part[-1][1].output[0]
        self.fail(f"tensor {cur!r}", f"feeds several nodes ({names}) that do not compute one of Descent's "
                                     f"activations: a branch or skip connection is not representable; Descent "
                                     f"supports {SUPPORTED}")

    def _recognize(self, part: list, cur: str) -> str | None:
        env = {cur: PROBE}
        unary = {"Erf": _erf, "Sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)), "Tanh": np.tanh, "Exp": np.exp,
                 "Neg": np.negative, "Reciprocal": lambda v: 1.0 / v, "Sqrt": np.sqrt, "Abs": np.abs,
                 "Relu": lambda v: np.maximum(v, 0.0)}
        binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}
        with np.errstate(all="ignore"):
            for _, node in part:
                args = []
                for name in node.input:
                    if name in env:
                        args.append(env[name])
                    else:
                        c = np.asarray(self.consts[name], np.float64)
                        if c.size != 1:
                            return None   # per-unit constants: not an activation
                        args.append(float(c.reshape(())))
                op = node.op_type
                env[node.output[0]] = unary[op](args[0]) if op in unary else binary[op](args[0], args[1])
        got = np.asarray(env[part[-1][1].output[0]], np.float64)
        if got.shape != PROBE.shape or not np.all(np.isfinite(got)):
            return None
        for name, want in _candidates(PROBE).items():
            if np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))) < 1e-6:
                return name
        return None


def read_onnx(path) -> Imported:
    """The dense network in an ONNX file (see the module docstring)."""
    path = Path(path)
    model = _load(path)
    imported = _Walker(model, path).run()
    producer = f"{model.producer_name} {model.producer_version}".strip()
    imported.producer = producer + (f", opset {max(o.version for o in model.opset_import)}" if producer else "")
    return imported
