"""ONNX export: the trained network as a float32 inference graph.

Per dense layer: ``Gemm`` (x @ W + b).  Batch norm placed *before* the
activation is folded into that Gemm (W' = W * s, b' = (b - mean) * s + beta
with s = gamma / sqrt(var + eps)); placed *after* it, it is a
``BatchNormalization`` node in inference mode.  Dropout and alpha dropout do
nothing at inference and are left out.  Each activation, the output's
included, is written by its registry entry's ONNX mapping
(engine/catalog/activations.py): e.g. RReLU becomes ``LeakyRelu`` at its
inference slope (lower + upper) / 2, as in Descent, and the output layer ends
in ``Softmax``, ``Sigmoid`` or nothing (linear).

The input is named ``input`` with shape (batch, n_inputs), the batch
dimension dynamic; the output is named ``output``.  When the weights carry
the training set's standardization statistics, the graph starts with
``(input - mean) / std``, so it takes features in the units the data loader
produced: the original units times ``data.input_scale`` (Fashion-MNIST
pixels / 255, not raw 0-255 pixels, which ``python main.py predict`` takes
and scales itself); ``standardize=False`` leaves the standardization out.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from engine.catalog.activations import ACTIVATIONS
from engine import __version__
from engine.errors import WeightsError
from engine.fileio import atomic_path, json_strict

DEFAULT_OPSET = 17
IR_VERSIONS = {17: 8, 18: 8, 19: 9, 20: 9, 21: 10}


class _Graph:
    """Nodes and initializers of the graph being built.  Activation entries
    append theirs through ``op`` and ``const`` (see engine/catalog/activations.py);
    ``stem`` names the values of the layer being written."""

    def __init__(self, opset: int):
        self.nodes, self.initializers = [], []
        self.opset = opset
        self.stem = "graph"
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value) -> str:
        from onnx import numpy_helper  # lazy: onnx (large, protobuf) is loaded only to export ONNX

        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def op(self, op_type: str, inputs: list, stem: str | None = None, output: str | None = None, **attrs) -> str:
        from onnx import helper  # lazy: onnx (large, protobuf) is loaded only to export ONNX

        output = output or self.name(stem or self.stem)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=self.name(op_type), **attrs))
        return output

    def rename(self, old: str, new: str) -> None:
        """Give the value ``old`` the name ``new`` wherever it appears."""
        for node in self.nodes:
            for names in (node.input, node.output):
                for k, name in enumerate(names):
                    if name == old:
                        names[k] = new


def _activation(g: _Graph, net, i: int, x: str, stem: str) -> str:
    """Append the nodes of layer i's activation (its registry entry's ONNX
    mapping); returns the name of the result."""
    use = net.activation_use(i)
    entry = ACTIVATIONS.get(use.name)
    if entry.onnx is None:
        raise WeightsError(f"activation {use.name!r} has no ONNX mapping (layer {i}); give its registry entry "
                           f"one (engine/catalog/activations.py)")
    g.stem = stem
    return entry.onnx(g, x, use)


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
    g = _Graph(opset)
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
        x = g.op("Gemm", [x, g.const(f"layers.{i}.kernel", W), g.const(f"layers.{i}.bias", b)],
                 f"layers.{i}.dense")
        if i == last:
            g.rename(_activation(g, net, i, x, "probabilities"), "output")
            break
        x = _activation(g, net, i, x, f"layers.{i}.{cfg['activation']}")
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
        props["descent.summary"] = json.dumps(json_strict(metadata["summary"]), allow_nan=False)
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
