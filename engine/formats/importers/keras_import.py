"""Keras: ``.keras`` archives (Keras 3) and full-model ``.h5`` files (Keras 2,
and Keras 3's legacy HDF5 format).

Nothing in the file is executed: the architecture is read as JSON
(``config.json`` in the zip archive, the ``model_config`` attribute of the
HDF5 file) and the weights as arrays with ``h5py``.  Layers are recognized by
their class name among Keras's own; a ``Lambda`` layer (Python code) and any
custom object (a class registered by the model's author, or from a module
outside Keras) are refused by name, as are layers Descent has no place for
(convolutions, recurrent layers, merges...).

* Sequential models, and functional models that are one chain from the
  input to the output (every layer called once on the previous one).
* ``Dense`` (its ``activation`` argument included), ``Activation``,
  ``ReLU`` (plain or leaky), ``LeakyReLU``, ``PReLU``, ``ELU``, ``Softmax``,
  ``BatchNormalization`` (axis -1; epsilon and momentum carried over: Keras's
  momentum has Descent's meaning), ``Dropout``/``AlphaDropout`` (kept as the
  layers' training settings), ``GaussianDropout``/``GaussianNoise``
  (inference no-ops, left out), ``Flatten``/``Reshape`` at the input, and
  ``InputLayer``.
* Weights: Keras 3 files store them by object path (``layers/dense_1/vars/0``,
  whose ``vars`` group is tagged with the layer's name); Keras 2 files by
  layer name with a ``weight_names`` list.  Either is matched to the
  configuration's layers, checked shape by shape.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np

from engine.errors import WeightsError
from engine.formats.importers.assemble import Imported
from engine.formats.importers.stack import BatchNorm, Stack, float_param

MAX_MEMBER_BYTES = 4 * 1024**3
MAX_CONFIG_BYTES = 64 * 1024**2
ACTIVATIONS = {"linear": "linear", None: "linear", "relu": "relu", "sigmoid": "logistic", "tanh": "tanh",
               "elu": "elu", "selu": "selu", "gelu": "gelu", "silu": "swish", "swish": "swish",
               "softmax": "softmax", "log_softmax": "log_softmax", "leaky_relu": "leaky_relu"}
NO_OPS = ("GaussianDropout", "GaussianNoise", "ActivityRegularization")
LAYERS = ("InputLayer", "Dense", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "BatchNormalization",
          "Dropout", "AlphaDropout", "Flatten", "Reshape") + NO_OPS
MODELS = ("Sequential", "Functional", "Model")


def _snake(name: str) -> str:  # keras.src.utils.naming.to_snake_case
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _json(text, path: Path, what: str) -> dict:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise WeightsError(f"{path}: its {what} is not valid JSON; the file may be truncated or damaged") from None
    if not isinstance(value, dict):
        raise WeightsError(f"{path}: its {what} is not a JSON object")
    return value


# ============================================================================ the two containers

class _Archive:
    """A Keras 3 ``.keras`` zip: config.json + model.weights.h5."""
    format = "Keras 3 .keras"

    def __init__(self, path: Path):
        try:
            with zipfile.ZipFile(path) as z:
                names = set(z.namelist())
                for member in ("config.json", "model.weights.h5"):
                    if member not in names:
                        raise WeightsError(f"{path}: the archive has no {member}; it is not a Keras 3 model file")
                    if z.getinfo(member).file_size > (MAX_CONFIG_BYTES if member.endswith(".json")
                                                      else MAX_MEMBER_BYTES):
                        raise WeightsError(f"{path}: {member} is too large for a dense network")
                self.config = _json(z.read("config.json"), path, "config.json")
                meta = _json(z.read("metadata.json"), path, "metadata.json") if "metadata.json" in names else {}
                blob = z.read("model.weights.h5")
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
            raise WeightsError(f"{path} is not a readable .keras archive ({exc}); it may be truncated or of "
                               f"another kind") from None
        self.producer = f"keras {meta['keras_version']}" if meta.get("keras_version") else ""
        try:
            self.h5 = h5py.File(io.BytesIO(blob), "r")
        except OSError as exc:
            raise WeightsError(f"{path}: its model.weights.h5 is not a readable HDF5 file ({exc})") from None
        self.by_name = {}
        layers = self.h5.get("layers")
        for key in (layers or {}):
            vars_group = layers[key].get("vars") if isinstance(layers[key], h5py.Group) else None
            if vars_group is not None:
                self.by_name[str(vars_group.attrs.get("name", key))] = (f"layers/{key}/vars", vars_group)
        self.counts: dict = {}

    def weights(self, cls: str, name: str) -> list:
        """The layer's variables: its ``vars`` group is found by the layer name Keras tags it with, else
        by Keras's object path (class name in snake case, numbered per class in layer order)."""
        stem = _snake(cls)
        n = self.counts.get(stem, 0)
        self.counts[stem] = n + 1
        key = stem if n == 0 else f"{stem}_{n}"
        found = self.by_name.get(name)
        if found is None and f"layers/{key}/vars" in self.h5:
            found = (f"layers/{key}/vars", self.h5[f"layers/{key}/vars"])
        if found is None:
            return []
        prefix, group = found
        keys = sorted((k for k in group if k.isdigit()), key=int)
        return [(f"{prefix}/{k}", np.asarray(group[k][...])) for k in keys]


class _LegacyH5:
    """A Keras 2 full-model HDF5 file: ``model_config`` attribute + ``model_weights`` group."""
    format = "Keras .h5 (full model)"

    def __init__(self, path: Path):
        try:
            self.h5 = h5py.File(path, "r")
        except OSError as exc:
            raise WeightsError(f"{path} is not a readable HDF5 file ({exc}); it may be truncated or of "
                               f"another kind") from None
        raw = self.h5.attrs.get("model_config")
        if raw is None:
            if "layers" in self.h5 or "model_weights" in self.h5:
                raise WeightsError(f"{path} holds weights only (no model_config): the architecture is missing. "
                                   f"Save the whole model (model.save('model.keras')) and import that")
            raise WeightsError(f"{path} is an HDF5 file without a Keras model_config attribute; it is not a "
                               f"Keras model file")
        self.config = _json(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw), path, "model_config")
        version = self.h5.attrs.get("keras_version")
        version = version.decode() if isinstance(version, bytes) else version
        backend = self.h5.attrs.get("backend")
        backend = backend.decode() if isinstance(backend, bytes) else backend
        self.producer = " ".join(p for p in (f"keras {version}" if version else "",
                                             f"({backend} backend)" if backend else "") if p)
        self.group = self.h5.get("model_weights", self.h5)

    def weights(self, cls: str, name: str) -> list:
        if name not in self.group:
            return []
        layer = self.group[name]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in layer.attrs.get("weight_names", [])]
        return [(f"model_weights/{name}/{n}", np.asarray(layer[n][...])) for n in names]


# ============================================================================ the layer chain

def _check_known(entry: dict, path: Path) -> tuple[str, str, dict]:
    """(class name, layer name, config) of a built-in Keras layer; refuses code and custom objects."""
    cls = entry.get("class_name")
    cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    name = str(entry.get("name") or cfg.get("name") or cls)
    module = entry.get("module")
    registered = entry.get("registered_name")
    if cls == "Lambda":
        raise WeightsError(f"{path}: layer {name!r} (Lambda) holds Python code, which Descent never runs; "
                           f"rebuild the model without the Lambda layer (or as a Dense network) and save it again")
    if (module is not None and not str(module).startswith("keras")) or (registered not in (None, cls)):
        raise WeightsError(f"{path}: layer {name!r} ({registered or cls}) is a custom object from "
                           f"{module or 'code outside Keras'}; Descent reads only Keras's own layers and never "
                           f"runs code from a model file. Supported layers: {', '.join(LAYERS)}")
    if cls in MODELS:
        raise WeightsError(f"{path}: layer {name!r} is a nested {cls} model; save the network as one flat "
                           f"Sequential or functional model")
    if cls not in LAYERS:
        raise WeightsError(f"{path}: layer {name!r} ({cls}) is not representable: Descent models dense networks; "
                           f"supported Keras layers: {', '.join(LAYERS)}")
    return cls, name, cfg


def _history_names(value) -> list:
    """Names of the layers whose outputs a node reads (Keras 3 and Keras 2 node formats)."""
    out = []
    if isinstance(value, dict):
        history = (value.get("config") or {}).get("keras_history") if value.get("class_name") == "__keras_tensor__" \
            else None
        if history:
            return [history[0]]
        for v in value.values():
            out += _history_names(v)
    elif isinstance(value, list):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):  # Keras 2: [name, 0, 0, {}]
            return [value[0]]
        for v in value:
            out += _history_names(v)
    return out


def _chain(config: dict, path: Path) -> list:
    """The model's layers from input to output, as (class, name, config)."""
    cls = config.get("class_name")
    cfg = config.get("config")
    if cls not in MODELS:
        raise WeightsError(f"{path}: the model is a {cls or 'model of unknown class'}; Descent imports Sequential "
                           f"and functional Keras models (a subclassed model's code is not in the file)")
    layers = cfg if isinstance(cfg, list) else (cfg or {}).get("layers")
    if not isinstance(layers, list) or not layers:
        raise WeightsError(f"{path}: the model configuration lists no layers")
    entries = [(entry, _check_known(entry, path)) for entry in layers if isinstance(entry, dict)]
    if cls == "Sequential":
        return [known for _, known in entries]
    by_name = {known[1]: (entry, known) for entry, known in entries}
    inputs = _history_names((cfg or {}).get("input_layers"))
    outputs = _history_names((cfg or {}).get("output_layers"))
    if len(inputs) != 1 or len(outputs) != 1:
        raise WeightsError(f"{path}: the model has {len(inputs)} inputs and {len(outputs)} outputs; a Descent "
                           f"network has one of each")
    readers: dict = {}
    for entry, (_, name, _) in entries:
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise WeightsError(f"{path}: layer {name!r} is called {len(nodes)} times (shared weights); not "
                               f"representable")
        sources = _history_names(nodes)
        if len(sources) > 1:
            raise WeightsError(f"{path}: layer {name!r} ({entry.get('class_name')}) reads {len(sources)} tensors "
                               f"({', '.join(sources)}): a merge or skip connection is not representable")
        for s in sources:
            readers.setdefault(s, []).append(name)
    chain, cur = [], inputs[0]
    while True:
        if cur not in by_name:
            raise WeightsError(f"{path}: the model refers to a layer {cur!r} it does not define")
        chain.append(by_name[cur][1])
        if cur == outputs[0]:
            break
        nxt = readers.get(cur, [])
        if len(nxt) != 1:
            raise WeightsError(f"{path}: the output of layer {cur!r} is read by {len(nxt)} layers "
                               f"({', '.join(nxt) or 'none'}); Descent models one chain from input to output")
        cur = nxt[0]
    missing = [name for name in by_name if name not in {c[1] for c in chain}]
    if missing:
        raise WeightsError(f"{path}: layer {missing[0]!r} is off the chain from the input to the output; not "
                           f"representable")
    return chain


def _input_shape(chain: list, config: dict) -> tuple | None:
    for cls, _, cfg in chain[:2]:
        for key in ("batch_shape", "batch_input_shape"):
            shape = cfg.get(key)
            if isinstance(shape, list) and len(shape) >= 2:
                return tuple(shape[1:])
    shape = ((config.get("config") or {}) if isinstance(config.get("config"), dict) else {}).get("build_input_shape")
    if isinstance(shape, list) and len(shape) >= 2:
        return tuple(shape[1:])
    return None


# ============================================================================ layers

def _activation_name(value, where: str, path: Path) -> tuple[str, dict]:
    """A Keras activation (a string, or Keras 3's serialized-function dict) -> Descent (name, params)."""
    if isinstance(value, dict):
        if not str(value.get("module", "keras")).startswith("keras") or value.get("class_name") != "function":
            raise WeightsError(f"{path}: {where}: its activation is Python code (a lambda or a custom function), "
                               f"which Descent never runs; use one of Keras's named activations")
        value = value.get("config")
    if value not in ACTIVATIONS:
        raise WeightsError(f"{path}: {where}: activation {value!r} is not one of Descent's; supported: "
                           f"{', '.join(str(k) for k in ACTIVATIONS if k)}")
    name = ACTIVATIONS[value]
    return name, ({"alpha": 0.2} if name == "leaky_relu" else {})   # keras.activations.leaky_relu's default


def _vars(store, cls: str, name: str, count: int, where: str, path: Path) -> list:
    found = store.weights(cls, name)
    if len(found) != count:
        raise WeightsError(f"{path}: {where} should have {count} weight tensor(s) in the file, found {len(found)}; "
                           f"the weights do not belong to this configuration")
    return found


def _layer(stack: Stack, store, cls: str, name: str, cfg: dict, path: Path) -> None:
    where = f"layer {name!r} ({cls})"
    if cls == "InputLayer":
        return
    if cls == "Dense":
        use_bias = cfg.get("use_bias", True)
        found = _vars(store, cls, name, 2 if use_bias else 1, where, path)
        (k_name, kernel), (b_name, bias) = found[0], found[1] if use_bias else (None, None)
        if kernel.ndim != 2 or kernel.shape[1] != cfg.get("units", kernel.shape[-1]):
            raise WeightsError(f"{path}: {where}: kernel {k_name} has shape {kernel.shape}, but the layer has "
                               f"{cfg.get('units')} units")
        stack.dense(where, kernel, bias, k_name, b_name, trainable=bool(cfg.get("trainable", True)))
        act, params = _activation_name(cfg.get("activation", "linear"), where, path)
        if act != "linear":
            stack.activation(f"layer {name!r} (Dense activation={cfg.get('activation')!r})", act, params)
        return
    if cls == "Activation":
        act, params = _activation_name(cfg.get("activation"), where, path)
        if act != "linear":
            stack.activation(where, act, params)
        else:
            stack.report.ignore(where, "a linear activation computes nothing")
        return
    if cls == "ReLU":
        if cfg.get("max_value") is not None or float(cfg.get("threshold", 0.0) or 0.0) != 0.0:
            raise WeightsError(f"{path}: {where}: a ReLU with max_value or threshold is not one of Descent's "
                               f"activations")
        slope = float(cfg.get("negative_slope", 0.0) or 0.0)
        stack.activation(where, "leaky_relu" if slope else "relu", {"alpha": slope} if slope else {})
        return
    if cls == "LeakyReLU":
        slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))    # Keras 3 / Keras 2 names; both default 0.3
        stack.activation(where, "leaky_relu", {"alpha": float_param(slope)})
        return
    if cls == "ELU":
        stack.activation(where, "elu", {"alpha": float_param(cfg.get("alpha", 1.0))})
        return
    if cls == "PReLU":
        (a_name, alpha), = _vars(store, cls, name, 1, where, path)
        stack.activation(where, "prelu", slopes=alpha, slope_name=a_name)
        return
    if cls == "Softmax":
        axis = cfg.get("axis", -1)
        if axis not in (-1, 1, [-1], [1]):
            raise WeightsError(f"{path}: {where}: softmax over axis {axis}; a network's outputs are (batch, classes)")
        stack.activation(where, "softmax")
        return
    if cls == "BatchNormalization":
        _batch_norm(stack, store, name, cfg, where, path)
        return
    if cls in ("Dropout", "AlphaDropout"):
        if cfg.get("noise_shape") is not None:
            raise WeightsError(f"{path}: {where}: dropout with a noise_shape is not one of Descent's")
        stack.dropout(where, float(cfg.get("rate", 0.0)), alpha=cls == "AlphaDropout")
        return
    if cls in NO_OPS:
        stack.report.ignore(where, f"{cls} does nothing at inference and has no Descent counterpart: left out")
        return
    if cls == "Flatten":
        stack.flatten(where, None)
        return
    if cls == "Reshape":
        target = tuple(cfg.get("target_shape") or ())
        if len(target) != 1:
            raise WeightsError(f"{path}: {where}: reshaping to {target}; Descent supports reshaping each example "
                               f"to one row of features")
        stack.flatten(where, target)
        return
    raise WeightsError(f"{path}: {where} is not representable")   # unreachable: _check_known filtered


def _batch_norm(stack: Stack, store, name: str, cfg: dict, where: str, path: Path) -> None:
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in (-1, 1):
        raise WeightsError(f"{path}: {where}: batch normalization over axis {axis}; Descent normalizes each unit "
                           f"of a dense layer (axis -1)")
    scale, center = cfg.get("scale", True), cfg.get("center", True)
    parts = [p for p, on in (("gamma", scale), ("beta", center)) if on] + ["moving_mean", "moving_variance"]
    found = dict(zip(parts, _vars(store, "BatchNormalization", name, len(parts), where, path)))
    values = {p: (found[p][1] if p in found else None) for p in ("gamma", "beta", "moving_mean", "moving_variance")}
    stack.batch_norm(where, BatchNorm(values["gamma"], values["beta"], values["moving_mean"],
                                      values["moving_variance"], float(cfg.get("epsilon", 1e-3)),
                                      float(cfg.get("momentum", 0.99))),
                     {p: (found[p][0] if p in found else None) for p in values})
    if cfg.get("renorm"):
        stack.report.convention(f"{where}: batch renormalization only changes training; Descent trains it as plain "
                                f"batch normalization")
    stack.report.convention("Keras's BatchNormalization momentum has Descent's meaning (weight of the old moving "
                            "average: 0.99 in both); epsilon is carried over exactly")


def read_keras(path) -> Imported:
    """The dense network in a Keras ``.keras`` or full-model ``.h5`` file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"model file {path} does not exist")
    store = _Archive(path) if path.suffix.lower() == ".keras" else _LegacyH5(path)
    try:
        chain = _chain(store.config, path)
        stack = Stack(path.name)
        shape = _input_shape(chain, store.config)
        if shape and all(isinstance(s, int) and s > 0 for s in shape):
            stack.set_input_shape(shape)
        for cls, name, cfg in chain:
            _layer(stack, store, cls, name, cfg, path)
        model, tensors = stack.finish()
    finally:
        store.h5.close()
    return Imported(path, store.format, store.producer, model, tensors, stack.report, stack.n_inputs,
                    stack.input_shape, defines={"bn_epsilon", "dropout", "alpha_dropout", "bn_momentum",
                                                "trainable"})
