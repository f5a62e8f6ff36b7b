"""Keras 3 weights (``.weights.h5``) plus the code of the equivalent model.

Keras 3 stores ``model.save_weights`` files by the model's object tree, not by
layer names: ``layers/<class name in snake_case>[_<n>]/vars/<i>`` (``dense``,
``dense_1``, ``batch_normalization``, ``p_re_lu``...), numbered in layer
order, and ``load_weights`` walks the target model the same way.  So a file
laid out like that loads into any Keras model with the same layer sequence.
:func:`keras_layers` is that sequence for a Descent network:

    Dense(use_bias) -> [BatchNormalization] -> activation -> [BatchNormalization]
    -> [Dropout | AlphaDropout]        for each hidden layer (BN where Descent has it)
    Dense(activation=softmax | sigmoid | linear)           output

Each activation is written as its registry entry says (``keras_name`` or
``keras_layer``, engine/catalog/activations.py).

:func:`keras_model_source` writes that model as Python (``build_model()``,
plus ``MEAN``/``STD`` and ``standardize(x)``: the Keras model takes
standardized inputs).  RReLU has no Keras layer: it becomes ``LeakyReLU`` at
its inference slope, so the model predicts like Descent but would not train
like it.  Needs ``h5py`` to write; verified against Keras 3.15 (torch
backend) by ``tests/test_formats.py::test_keras_weights_load_into_keras``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from engine.catalog.activations import ACTIVATIONS
from engine.errors import WeightsError
from engine.fileio import atomic_path, write_text


def _snake(name: str) -> str:  # keras.src.utils.naming.to_snake_case
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _missing(name: str, i: int) -> WeightsError:
    return WeightsError(f"activation {name!r} has no Keras mapping (layer {i}); give its registry entry a "
                        f"keras_name or keras_layer (engine/catalog/activations.py)")


def _activation_layer(net, i: int) -> tuple[str, str, list]:
    """Layer i's activation as a Keras layer, from its registry entry."""
    use = net.activation_use(i)
    entry = ACTIVATIONS.get(use.name)
    if entry.keras_layer is not None:
        return entry.keras_layer(use)
    if entry.keras_name is None:
        raise _missing(use.name, i)
    return "Activation", f'keras.layers.Activation("{entry.keras_name}")', []


def keras_layers(net) -> list[tuple[str, str, list]]:
    """[(Keras class name, constructor code, variables)] of the equivalent Sequential model."""
    out = []
    last = net.n_layers - 1
    for i, cfg in enumerate(net.layer_configs):
        kernel = [net.tensor(f"layers.{i}.kernel")]
        bias = [net.tensor(f"layers.{i}.bias")] if f"layers.{i}.bias" in net.by_name else []
        units, use_bias = int(cfg["units"]), bool(bias)
        if i == last:
            act = ACTIVATIONS.get(net.output_activation).keras_name
            if act is None:
                raise _missing(net.output_activation, i)
            out.append(("Dense", f'keras.layers.Dense({units}, activation="{act}", use_bias={use_bias})',
                        kernel + bias))
            break
        out.append(("Dense", f"keras.layers.Dense({units}, use_bias={use_bias})", kernel + bias))
        bn = cfg.get("batch_norm", "none")
        bn_layer = ("BatchNormalization",
                    f"keras.layers.BatchNormalization(momentum={float(cfg.get('bn_momentum', 0.99))!r}, "
                    f"epsilon={float(cfg.get('bn_epsilon', 1e-3))!r})",
                    [net.tensor(f"layers.{i}.bn.{k}") for k in ("gamma", "beta", "moving_mean", "moving_variance")]
                    if bn != "none" else [])
        if bn == "before":
            out.append(bn_layer)
        out.append(_activation_layer(net, i))
        if bn == "after":
            out.append(bn_layer)
        rate = float(cfg.get("dropout", 0.0))
        if rate > 0:
            cls = "AlphaDropout" if cfg.get("alpha_dropout") else "Dropout"
            out.append((cls, f"keras.layers.{cls}({rate!r})", []))
    return out


def save_keras_weights(path, net) -> Path:
    """Write ``path`` (.weights.h5) in Keras 3's layout for :func:`keras_layers`."""
    try:
        import h5py  # lazy: h5py (HDF5 bindings) is loaded only to export Keras weights
    except ImportError:
        raise WeightsError("the Keras format needs the h5py package (pip install h5py)") from None
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise WeightsError(f"{path}: Keras requires weights files to end in .weights.h5")
    counts: dict[str, int] = {}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            layers = f.create_group("layers")
            for cls, _, variables in keras_layers(net):
                stem = _snake(cls)
                n = counts.get(stem, 0)
                counts[stem] = n + 1
                key = stem if n == 0 else f"{stem}_{n}"
                group = layers.create_group(key).create_group("vars")
                group.attrs["name"] = key
                for j, value in enumerate(variables):
                    group.create_dataset(str(j), data=np.asarray(value, dtype=np.float32))
            f.create_group("vars").attrs["name"] = "sequential"
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    return path


def keras_model_source(net, metadata: dict | None = None) -> str:
    """Python source defining ``build_model()`` (the equivalent Keras model)."""
    data = (metadata or {}).get("data") or {}
    mean = data.get("mean") or [0.0] * net.n_inputs
    std = data.get("std") or [1.0] * net.n_inputs
    lines = [f"    keras.Input(shape=({net.n_inputs},)),"] + [f"    {code}," for _, code, _ in keras_layers(net)]
    return "\n".join([
        f'"""The Keras 3 equivalent of Descent network {net.experiment.get("name", "")!r}.',
        "",
        "    import keras, model_keras",
        "    model = model_keras.build_model()",
        '    model.load_weights("model.weights.h5")',
        "    probabilities = model.predict(model_keras.standardize(x))",
        "",
        "Inputs are standardized with the training set's statistics (MEAN, STD) first.",
        '"""',
        "import numpy as np",
        "import keras",
        "",
        f"MEAN = np.array({[float(v) for v in mean]!r}, dtype=np.float32)",
        f"STD = np.array({[float(v) for v in std]!r}, dtype=np.float32)",
        "",
        "",
        "def standardize(x):",
        "    return (np.asarray(x, dtype=np.float32) - MEAN) / STD",
        "",
        "",
        "def build_model():",
        "    return keras.Sequential([",
        *["    " + line for line in lines],
        "    ])",
        "",
    ])


def save_keras(path, net, metadata: dict | None = None) -> Path:
    """``path`` (.weights.h5) and, beside it, ``<stem>_keras.py`` with build_model()."""
    path = save_keras_weights(path, net)
    stem = path.name[: -len(".weights.h5")] or "model"
    write_text(path.with_name(f"{re.sub(r'[^0-9A-Za-z_]', '_', stem)}_keras.py"), keras_model_source(net, metadata))
    return path
