"""Make the foreign-model fixtures of ``tests/test_import.py`` with the real libraries.

Descent's importers must agree with the frameworks that define each format,
not with Descent's own exporters.  So the Keras and PyTorch files under
``tests/fixtures/foreign/`` were written by real Keras 3 and real PyTorch, and
the outputs those libraries computed for fixed inputs are stored beside them
(``reference.npz``: ``<fixture>.x`` and ``<fixture>.y``, plain float32 arrays,
readable with ``allow_pickle=False``).  Neither library is a Descent
dependency, and the tests never run this script; it was run once, outside the
repository's environment::

    python3 -m venv /tmp/fixture-venv
    /tmp/fixture-venv/bin/pip install torch==2.13.0 keras h5py safetensors numpy onnx
    KERAS_BACKEND=torch /tmp/fixture-venv/bin/python tools/make_foreign_fixtures.py

(Keras 3.15.1 on the torch 2.13.0 CPU backend; onnx only for torch.onnx.export.)  Run it again only to change
the fixtures; the files it writes are deterministic up to the libraries'
serialization.

Coverage: every activation Descent imports sits in a hidden layer with batch
norm before it, after it, and none (a Latin square over three models per
framework, so each (activation, placement) pair appears once and the files
stay a few KB); every output (softmax, sigmoid, linear, log-softmax); Keras
Sequential and functional models, `.keras` archives and legacy `.h5` files;
PyTorch ``nn.Sequential`` and a module with named attributes.  A state_dict
has no activations, so each PyTorch fixture comes with its architecture as a
user would give it: ``torch/<name>.json`` (a Descent experiment, for models
whose batch norm epsilon is not PyTorch's default) or an entry of
``torch/activations.json`` (for ``--activations``).  The refused
files (a Lambda layer, a custom layer, a convolution, a skip connection, a
pickled PyTorch model) are made here too, by the same libraries.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "foreign"
N_INPUTS = 5
PLACEMENTS = ("none", "before", "after")
REFERENCE: dict[str, np.ndarray] = {}


def inputs(seed: int, n: int = 16, shape=(N_INPUTS,)) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


def latin_square(names: list, model: int) -> list:
    """(activation, batch-norm placement) per hidden layer of one of three models."""
    return [(name, PLACEMENTS[(j + model) % 3]) for j, name in enumerate(names)]


def record(name: str, x: np.ndarray, y: np.ndarray) -> None:
    REFERENCE[f"{name}.x"] = np.asarray(x, np.float32)
    REFERENCE[f"{name}.y"] = np.asarray(y, np.float32)


# ============================================================================ Keras 3

KERAS_ACTIVATIONS = ["relu", "leaky_relu", "prelu", "elu", "selu", "sigmoid", "tanh", "gelu", "silu"]


def keras_activation(keras, name: str, j: int):
    """The activation as a layer, in the several spellings Keras users write."""
    if name == "relu":
        return keras.layers.ReLU()
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2)
    if name == "prelu":
        return keras.layers.PReLU()
    if name == "elu":
        return keras.layers.ELU(alpha=0.7)
    return keras.layers.Activation(name)


def keras_hidden(keras, name: str, placement: str, units: int, j: int) -> list:
    """Dense + activation (+ batch norm) in one of the ways Keras code writes it."""
    layer_form = name in ("relu", "leaky_relu", "prelu", "elu") or j % 2
    eps, momentum = (1e-3, 0.99) if j % 2 else (0.01, 0.9)
    bn = keras.layers.BatchNormalization(epsilon=eps, momentum=momentum)
    if placement == "before":
        return [keras.layers.Dense(units, use_bias=bool(j % 2)), bn, keras_activation(keras, name, j)]
    if layer_form:
        out = [keras.layers.Dense(units), keras_activation(keras, name, j)]
    else:
        out = [keras.layers.Dense(units, activation=name)]
    return out + ([bn] if placement == "after" else []) + ([keras.layers.Dropout(0.1)] if j == 2 else [])


def randomize_keras(model, seed: int) -> None:
    """Non-trivial values everywhere, BN statistics included (as after training)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        kind = type(layer).__name__
        values = []
        for w in layer.get_weights():
            if kind == "BatchNormalization":
                k = len(values)  # gamma, beta, moving_mean, moving_variance
                values.append((rng.uniform(0.5, 1.5, w.shape) if k in (0, 3) else rng.normal(0, 0.3, w.shape))
                              .astype(np.float32))
            elif kind == "PReLU":
                values.append(rng.uniform(0.05, 0.4, w.shape).astype(np.float32))
            else:
                values.append((rng.normal(0, 0.6 if w.ndim == 2 else 0.2, w.shape)).astype(np.float32))
        layer.set_weights(values)


def keras_predict(keras, model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def repack(path: Path) -> None:
    """Keras stores the members of a .keras zip uncompressed (88 KB for a 40-tensor
    model); the same members, byte for byte, deflated take 7 KB.  Keras reads both."""
    import io
    import zipfile

    if path.suffix != ".keras":
        return
    with zipfile.ZipFile(path) as z:
        members = [(info.filename, z.read(info.filename)) for info in z.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, blob in members:
            z.writestr(name, blob)
    path.write_bytes(out.getvalue())


def save_keras(keras, model, path: Path, x, flat_x=None) -> None:
    """Save, repack, load the file back with Keras and keep what the loaded model predicts
    (checked equal to the in-memory model's prediction)."""
    model.save(path)
    repack(path)
    loaded = keras.saving.load_model(path, compile=False)
    y = keras_predict(keras, loaded, x)
    assert np.array_equal(y, keras_predict(keras, model, x)), path
    record(f"keras/{path.name}", x if flat_x is None else flat_x, y)


def save_refused(model, path: Path) -> None:
    model.save(path)
    repack(path)


def make_keras() -> None:
    import keras

    folder = OUT / "keras"
    folder.mkdir(parents=True, exist_ok=True)
    for m in range(3):
        layers = [keras.Input(shape=(N_INPUTS,))]
        for j, (name, placement) in enumerate(latin_square(KERAS_ACTIVATIONS, m)):
            layers += keras_hidden(keras, name, placement, 4 + (j + m) % 3, j)
        layers.append(keras.layers.Dense(3, activation="softmax"))
        model = keras.Sequential(layers, name=f"square_{m}")
        randomize_keras(model, 10 + m)
        save_keras(keras, model, folder / f"square_{m}.keras", inputs(100 + m))

    outputs = {"sigmoid": (1, "sigmoid"), "linear": (2, None), "log_softmax": (3, "log_softmax")}
    for name, (units, activation) in outputs.items():
        model = keras.Sequential([keras.Input(shape=(N_INPUTS,)), keras.layers.Dense(6, activation="relu"),
                                  keras.layers.Dense(units, activation=activation)], name=f"out_{name}")
        randomize_keras(model, 20)
        save_keras(keras, model, folder / f"out_{name}.keras", inputs(110))

    # functional, image-shaped input flattened first, SELU with alpha dropout, a softmax layer
    inp = keras.Input(shape=(3, 4), name="pixels")
    h = keras.layers.Flatten()(inp)
    h = keras.layers.Dense(7, activation="selu", kernel_initializer="lecun_normal")(h)
    h = keras.layers.AlphaDropout(0.1)(h)
    h = keras.layers.Dense(5)(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Activation("tanh")(h)
    h = keras.layers.Dense(4)(h)
    out = keras.layers.Softmax()(h)
    model = keras.Model(inp, out, name="functional")
    randomize_keras(model, 30)
    x = inputs(120, shape=(3, 4))
    save_keras(keras, model, folder / "functional.keras", x, flat_x=x.reshape(len(x), -1))

    # legacy Keras 2 layout: a full model in one HDF5 file (model_config attribute + model_weights)
    for name, build in {"legacy_sequential": lambda: keras.Sequential([
            keras.Input(shape=(N_INPUTS,)), keras.layers.Dense(6, use_bias=False), keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"), keras.layers.Dense(5, activation="elu"), keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax")], name="legacy"),
            "legacy_functional": lambda: _functional_legacy(keras)}.items():
        model = build()
        randomize_keras(model, 40)
        save_keras(keras, model, folder / f"{name}.h5", inputs(130))

    # refused: code in the file, a layer Descent has no place for, a graph that is not a chain
    bad = folder / "bad"
    bad.mkdir(exist_ok=True)
    for suffix in (".keras", ".h5"):
        save_refused(keras.Sequential([keras.Input(shape=(N_INPUTS,)), keras.layers.Dense(4),
                                       keras.layers.Lambda(lambda t: t * 2.0),
                                       keras.layers.Dense(2, activation="softmax")]), bad / f"lambda{suffix}")
    save_refused(keras.Sequential([keras.Input(shape=(6, 1)), keras.layers.Conv1D(2, 3), keras.layers.Flatten(),
                                   keras.layers.Dense(2, activation="softmax")]), bad / "conv.keras")
    inp = keras.Input(shape=(N_INPUTS,))
    h = keras.layers.Dense(5, activation="relu")(inp)
    h = keras.layers.Add()([h, keras.layers.Dense(5)(h)])
    save_refused(keras.Model(inp, keras.layers.Dense(2, activation="softmax")(h)), bad / "skip.keras")

    @keras.saving.register_keras_serializable(package="fixtures")
    class Scale(keras.layers.Layer):
        def call(self, t):
            return t * 3.0

    save_refused(keras.Sequential([keras.Input(shape=(N_INPUTS,)), keras.layers.Dense(4), Scale(),
                                   keras.layers.Dense(2, activation="softmax")]), bad / "custom.keras")


def _functional_legacy(keras):
    inp = keras.Input(shape=(N_INPUTS,))
    h = keras.layers.Dense(6)(inp)
    h = keras.layers.LeakyReLU(negative_slope=0.1)(h)
    h = keras.layers.BatchNormalization(epsilon=1e-4)(h)
    out = keras.layers.Dense(1, activation="sigmoid")(h)
    return keras.Model(inp, out, name="legacy_functional")


# ============================================================================ PyTorch

TORCH_ACTIVATIONS = ["relu", "leaky_relu", "prelu", "elu", "selu", "logistic", "tanh", "gelu", "swish", "rrelu"]


def torch_activation(nn, name: str, units: int, j: int):
    return {"relu": lambda: nn.ReLU(), "leaky_relu": lambda: nn.LeakyReLU(0.2),
            "prelu": lambda: nn.PReLU(units if j % 2 else 1), "elu": lambda: nn.ELU(0.7),
            "selu": lambda: nn.SELU(), "logistic": lambda: nn.Sigmoid(), "tanh": lambda: nn.Tanh(),
            "gelu": lambda: nn.GELU(), "swish": lambda: nn.SiLU(), "rrelu": lambda: nn.RReLU(0.1, 0.3)}[name]()


def descent_layer(units: int, name: str, placement: str, eps: float, bias: bool) -> dict:
    """The Descent layer a PyTorch layer corresponds to: what a user writes in --experiment."""
    params = {"leaky_relu": {"alpha": 0.2}, "elu": {"alpha": 0.7}, "rrelu": {"lower": 0.1, "upper": 0.3}}
    layer = {"units": units, "activation": name, "activation_params": params.get(name, {}), "use_bias": bias,
             "batch_norm": placement}
    if placement != "none":
        layer.update(bn_epsilon=eps, bn_momentum=0.9)   # PyTorch's momentum 0.1, in Descent's convention
    return layer


def write_experiment(path: Path, layers: list, output: str) -> None:
    experiment = {"name": path.stem, "title": f"Architecture of {path.stem}.safetensors",
                  "data": {"name": "npz", "path": "data.npz", "standardize": False},
                  "model": {"layers": layers, "output": {"activation": output}}}
    path.write_text(json.dumps(experiment, indent=2) + "\n")


def randomize_torch(torch, model, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=g))
                module.bias.normal_(0, 0.3, generator=g)
                module.running_mean.normal_(0, 0.3, generator=g)
                module.running_var.copy_(0.5 + 1.5 * torch.rand(module.running_var.shape, generator=g))
                module.num_batches_tracked.fill_(123)
            elif isinstance(module, torch.nn.Linear):
                module.weight.normal_(0, 0.6, generator=g)
                if module.bias is not None:
                    module.bias.normal_(0, 0.2, generator=g)
            elif isinstance(module, torch.nn.PReLU):
                module.weight.copy_(0.05 + 0.35 * torch.rand(module.weight.shape, generator=g))


def torch_predict(torch, model, x):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def make_torch() -> None:
    import torch
    from safetensors.torch import save_file

    nn = torch.nn
    folder = OUT / "torch"
    folder.mkdir(parents=True, exist_ok=True)
    spec = {}
    for m in range(3):
        modules, layers, fan_in = [], [], N_INPUTS
        for j, (name, placement) in enumerate(latin_square(TORCH_ACTIVATIONS, m)):
            units = 4 + (j + m) % 3
            eps = 1e-5 if j % 2 else 1e-3
            modules.append(nn.Linear(fan_in, units, bias=placement != "before" or bool(j % 2)))
            act = torch_activation(nn, name, units, j)
            bn = nn.BatchNorm1d(units, eps=eps, momentum=0.1)
            modules += {"none": [act], "before": [bn, act], "after": [act, bn]}[placement]
            if j == 3:
                modules.append(nn.Dropout(0.2))
            layers.append(descent_layer(units, name, placement, eps, placement != "before" or bool(j % 2)))
            fan_in = units
        modules += [nn.Linear(fan_in, 3), nn.Softmax(dim=1)]
        model = nn.Sequential(*modules)
        randomize_torch(torch, model, 10 + m)
        x = inputs(200 + m)
        save_file(model.state_dict(), folder / f"square_{m}.safetensors")
        record(f"torch/square_{m}.safetensors", x, torch_predict(torch, model, x))
        write_experiment(folder / f"square_{m}.json", layers, "softmax")

    outputs = {"sigmoid": (1, nn.Sigmoid()), "linear": (2, None), "log_softmax": (3, nn.LogSoftmax(dim=1))}
    for name, (units, last) in outputs.items():
        model = nn.Sequential(nn.Linear(N_INPUTS, 6), nn.Tanh(), nn.Linear(6, units), *([last] if last else []))
        randomize_torch(torch, model, 20)
        x = inputs(210)
        save_file(model.state_dict(), folder / f"out_{name}.safetensors")
        record(f"torch/out_{name}.safetensors", x, torch_predict(torch, model, x))
        spec[f"out_{name}.safetensors"] = f"tanh,{name}"

    class Named(nn.Module):
        """Attributes named fc1/bn1/fc2/head: a state_dict whose sorted names are not the layer order."""

        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(N_INPUTS, 6)
            self.bn1 = nn.BatchNorm1d(6)
            self.fc2 = nn.Linear(6, 6)
            self.bn2 = nn.BatchNorm1d(6, eps=1e-4)
            self.head = nn.Linear(6, 3)

        def forward(self, t):
            t = torch.relu(self.bn1(self.fc1(t)))
            t = self.bn2(torch.nn.functional.elu(self.fc2(t)))
            return torch.softmax(self.head(t), dim=1)

    model = Named()
    randomize_torch(torch, model, 30)
    x = inputs(220)
    save_file(model.state_dict(), folder / "named.safetensors")
    record("torch/named.safetensors", x, torch_predict(torch, model, x))
    elu = dict(descent_layer(6, "elu", "after", 1e-4, True), activation_params={"alpha": 1.0})  # F.elu's default
    write_experiment(folder / "named.json", [descent_layer(6, "relu", "before", 1e-5, True), elu], "softmax")

    # batch norm with PyTorch's defaults (eps 1e-5, momentum 0.1): --activations is enough
    model = nn.Sequential(nn.Linear(N_INPUTS, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 5), nn.LeakyReLU(0.2),
                          nn.BatchNorm1d(5), nn.Linear(5, 3), nn.Softmax(dim=1))
    randomize_torch(torch, model, 40)
    x = inputs(230)
    save_file(model.state_dict(), folder / "bn_defaults.safetensors")
    record("torch/bn_defaults.safetensors", x, torch_predict(torch, model, x))
    spec["bn_defaults.safetensors"] = "bn+relu,leaky_relu:0.2+bn,softmax"
    (folder / "activations.json").write_text(json.dumps(spec, indent=2) + "\n")

    bad = folder / "bad"
    bad.mkdir(exist_ok=True)
    small = nn.Sequential(nn.Linear(N_INPUTS, 4), nn.ReLU(), nn.Linear(4, 2))
    torch.save(small, bad / "model.pt")                    # a pickled module
    torch.save(small.state_dict(), bad / "state_dict.pth")  # a pickled state_dict
    save_file(nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(6, 2)).state_dict(),
              bad / "conv.safetensors")


def make_torch_onnx() -> None:
    """ONNX files as PyTorch's exporter writes them (Gemm with transB, BatchNormalization,
    GELU as Erf arithmetic at opset 17 or one Gelu node at opset 20, SiLU as x * Sigmoid(x))."""
    import io

    import torch

    nn = torch.nn
    folder = OUT / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    for opset in (17, 20):
        model = nn.Sequential(nn.Linear(N_INPUTS, 6), nn.BatchNorm1d(6), nn.GELU(), nn.Linear(6, 5), nn.SiLU(),
                              nn.BatchNorm1d(5, eps=1e-3), nn.Linear(5, 4), nn.PReLU(), nn.Dropout(0.3),
                              nn.Linear(4, 3), nn.Softmax(dim=1))
        randomize_torch(torch, model, 40 + opset)
        model.eval()
        x = inputs(300 + opset)
        blob = io.BytesIO()
        torch.onnx.export(model, (torch.from_numpy(x),), blob, dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["probabilities"], dynamic_axes={"x": {0: "batch"}})
        name = f"torch_opset{opset}.onnx"
        (folder / name).write_bytes(blob.getvalue())
        record(f"onnx/{name}", x, torch_predict(torch, model, x))


def main() -> int:
    make_keras()
    make_torch()
    make_torch_onnx()
    np.savez(OUT / "reference.npz", **REFERENCE)
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(OUT)}  {path.stat().st_size / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
