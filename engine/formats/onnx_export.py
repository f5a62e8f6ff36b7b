"""ONNX export: the trained network as a float32 inference graph.

Per dense layer: ``Gemm`` (x @ W + b).  Batch norm placed *before* the
activation is folded into that Gemm (W' = W * s, b' = (b - mean) * s + beta
with s = gamma / sqrt(var + eps)); placed *after* it, it is a
``BatchNormalization`` node in inference mode.  Dropout and alpha dropout do
nothing at inference and are left out.  Activations map to ONNX operators
(see ``_activation``); RReLU becomes ``LeakyRelu`` at its inference slope
(lower + upper) / 2, as in Descent.  The output layer ends in ``Softmax``,
``Sigmoid`` or nothing (linear).

The input is named ``input`` with shape (batch, n_inputs), the batch
dimension dynamic; the output is named ``output``.  When the weights carry
the training set's standardization statistics, the graph starts with
``(input - mean) / std``, so it takes features in their original units,
exactly like ``python main.py predict``; ``standardize=False`` leaves that out.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from engine import __version__
from engine.errors import WeightsError
from engine.fileio import atomic_path
from engine.kernels.activations import SELU_ALPHA, SELU_SCALE

DEFAULT_OPSET = 17
IR_VERSIONS = {17: 8, 18: 8, 19: 9, 20: 9, 21: 10}


class _Graph:
    def __init__(self):
        self.nodes, self.initializers = [], []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value) -> str:
        from onnx import numpy_helper  # lazy: onnx (large, protobuf) is loaded only to export ONNX

        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def op(self, op_type: str, inputs: list, stem: str, output: str | None = None, **attrs) -> str:
        from onnx import helper  # lazy: onnx (large, protobuf) is loaded only to export ONNX

        output = output or self.name(stem)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=self.name(op_type), **attrs))
        return output


def _activation(g: _Graph, name: str, params: dict, x: str, layer: int, net, opset: int) -> str:
    """Append the nodes of one hidden activation; returns the output name."""
    stem = f"layers.{layer}.{name}"
    if name == "linear":
        return x
    if name == "logistic":
        return g.op("Sigmoid", [x], stem)
    if name == "tanh":
        return g.op("Tanh", [x], stem)
    if name == "relu":
        return g.op("Relu", [x], stem)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], stem, alpha=float(params["alpha"]))
    if name == "rrelu":  # inference: the mean of the training range
        return g.op("LeakyRelu", [x], stem, alpha=0.5 * (float(params["lower"]) + float(params["upper"])))
    if name == "prelu":
        slope = g.const(f"layers.{layer}.prelu.alpha", net.tensor(f"layers.{layer}.prelu.alpha"))
        return g.op("PRelu", [x, slope], stem)
    if name == "elu":
        return g.op("Elu", [x], stem, alpha=float(params["alpha"]))
    if name == "selu":
        return g.op("Selu", [x], stem, alpha=SELU_ALPHA, gamma=SELU_SCALE)
    if name == "gelu":  # exact form: x * Phi(x)
        if opset >= 20:
            return g.op("Gelu", [x], stem, approximate="none")
        scaled = g.op("Mul", [x, g.const("inv_sqrt2", 1.0 / math.sqrt(2.0))], stem)
        phi2 = g.op("Add", [g.op("Erf", [scaled], stem), g.const("one", 1.0)], stem)
        return g.op("Mul", [g.op("Mul", [x, phi2], stem), g.const("half", 0.5)], stem)
    if name == "swish":
        return g.op("Mul", [x, g.op("Sigmoid", [x], stem)], stem)
    raise WeightsError(f"activation {name!r} has no ONNX translation yet (layer {layer}); "
                       f"add it to engine/formats/onnx_export.py")


def _standardization(metadata: dict | None, n_inputs: int):
    data = (metadata or {}).get("data") or {}
    mean, std = data.get("mean"), data.get("std")
    if mean is None or std is None:
        return None
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    if mean.shape != (n_inputs,) or std.shape != (n_inputs,):
        raise WeightsError(f"standardization statistics have {mean.shape} values, the network takes {n_inputs} inputs")
    if np.all(mean == 0) and np.all(std == 1):
        return None
    return mean, std


def build_onnx(net, metadata: dict | None = None, opset: int = DEFAULT_OPSET, standardize: bool = True):
    """The ``onnx.ModelProto`` of a Network (see the module docstring)."""
    import onnx  # lazy: onnx (large, protobuf) is loaded only to export ONNX
    from onnx import TensorProto, helper  # lazy: as above

    if opset not in IR_VERSIONS:
        raise WeightsError(f"ONNX opset {opset} is not supported; choose from {', '.join(map(str, IR_VERSIONS))}")
    g = _Graph()
    x = "input"
    stats = _standardization(metadata, net.n_inputs) if standardize else None
    if stats is not None:
        x = g.op("Div", [g.op("Sub", [x, g.const("data.mean", stats[0])], "centered"), g.const("data.std", stats[1])],
                 "standardized")
    last = net.n_layers - 1
    for i, cfg in enumerate(net.layer_configs):
        W = net.tensor(f"layers.{i}.kernel").astype(np.float64)
        b = (net.tensor(f"layers.{i}.bias").astype(np.float64) if f"layers.{i}.bias" in net.by_name
             else np.zeros(W.shape[1]))
        bn = cfg.get("batch_norm", "none") if i < last else "none"
        if bn != "none":
            gamma, beta, mm, mv = (net.tensor(f"layers.{i}.bn.{k}").astype(np.float64)
                                   for k in ("gamma", "beta", "moving_mean", "moving_variance"))
            eps = float(cfg.get("bn_epsilon", 1e-3))
        if bn == "before":  # fold: gamma * (xW + b - mean) / sqrt(var + eps) + beta
            s = gamma / np.sqrt(mv + eps)
            W, b = W * s, (b - mm) * s + beta
        out_name = "output" if i == last and net.output_activation == "linear" else None
        x = g.op("Gemm", [x, g.const(f"layers.{i}.kernel", W), g.const(f"layers.{i}.bias", b)],
                 f"layers.{i}.dense", output=out_name)
        if i == last:
            if net.output_activation == "softmax":
                x = g.op("Softmax", [x], "probabilities", output="output", axis=1)
            elif net.output_activation == "logistic":
                x = g.op("Sigmoid", [x], "probabilities", output="output")
            break
        x = _activation(g, cfg["activation"], cfg.get("activation_params", {}), x, i, net, opset)
        if bn == "after":
            x = g.op("BatchNormalization", [x] + [g.const(f"layers.{i}.bn.{k}", v) for k, v in
                                                  (("gamma", gamma), ("beta", beta), ("moving_mean", mm),
                                                   ("moving_variance", mv))], f"layers.{i}.bn", epsilon=eps)
    graph = helper.make_graph(
        g.nodes, f"descent_{(net.experiment.get('name') or 'network')}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", net.n_inputs])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", net.n_outputs])],
        initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="Descent", producer_version=_app_version(metadata))
    model.ir_version = IR_VERSIONS[opset]
    model.doc_string = (f"Descent network '{net.experiment.get('name', '')}': inputs are "
                        + ("original features (standardized inside the graph)" if stats is not None
                           else "the features the network was trained on")
                        + f"; output: {net.output_activation}")
    props = {"descent.experiment": json.dumps(net.experiment), "descent.output": net.output_activation,
             "descent.input_standardized_in_graph": str(stats is not None).lower()}
    data = (metadata or {}).get("data") or {}
    if data.get("class_names"):
        props["descent.class_names"] = json.dumps(data["class_names"])
    if (metadata or {}).get("summary"):
        props["descent.summary"] = json.dumps(metadata["summary"], allow_nan=True)
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    return model


def _app_version(metadata) -> str:
    return str((metadata or {}).get("app_version") or __version__)


def save_onnx(path, net, metadata: dict | None = None, opset: int = DEFAULT_OPSET, standardize: bool = True) -> Path:
    path = Path(path)
    blob = build_onnx(net, metadata, opset, standardize).SerializeToString()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
    return path
