"""main.py import: foreign networks checked against the frameworks that made them.

* Keras 3 and PyTorch files under tests/fixtures/foreign/ were written by real
  Keras 3.15 and PyTorch 2.13 (tools/make_foreign_fixtures.py, run once outside
  Descent's environment), with the outputs those libraries computed; the
  imported network must predict the same within 1e-5.
* ONNX graphs are built here with onnx.helper, and onnxruntime is the oracle.
* Round trips through Descent's own exporters are a second, weaker check.
* Every refused file exits with status 2, one message, and writes nothing.
"""
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.catalog.activations import hidden_activation_names
from engine.cli import main
from engine.errors import WeightsError
from engine.formats import load_network, reuse_layers
from engine.formats.importers import import_model, import_to_folder
from engine.formats.onnx_export import save_onnx
from engine.spec.experiment import load_experiment
from test_formats import make_net

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "foreign"
REFERENCE = np.load(FIXTURES / "reference.npz", allow_pickle=False)
TORCH_ACTIVATIONS = json.loads((FIXTURES / "torch" / "activations.json").read_text())
FIXTURE_NAMES = sorted({k.rsplit(".", 1)[0] for k in REFERENCE.files})
PLACEMENTS = ("none", "before", "after")
TOLERANCE = 1e-5


def fixture_options(name: str) -> dict:
    """A PyTorch state_dict's architecture, as its user gives it (activations.json or <name>.json)."""
    if not name.startswith("torch/"):
        return {}
    base = name.split("/")[1]
    if base in TORCH_ACTIVATIONS:
        return {"activations": TORCH_ACTIVATIONS[base]}
    return {"experiment": load_experiment(str(FIXTURES / name.replace(".safetensors", ".json")))}


def source_probabilities(name: str) -> np.ndarray:
    y = REFERENCE[f"{name}.y"].astype(np.float64)
    return np.exp(y) if "log_softmax" in name else y   # Descent's classifier ends in softmax


# ================================================================ the frameworks' own files

@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_imported_predictions_match_the_source_framework(name):
    result = import_model(FIXTURES / name, **fixture_options(name))
    got = result.network.predict(REFERENCE[f"{name}.x"])
    assert np.max(np.abs(got - source_probabilities(name))) < TOLERANCE


@pytest.mark.parametrize("family, missing", [("keras", {"linear", "rrelu"}), ("torch", {"linear"})])
def test_fixtures_cover_every_activation_with_every_batch_norm_placement(family, missing):
    """Keras has no RReLU layer; a hidden 'linear' layer is covered by the ONNX graphs below."""
    seen = set()
    for name in FIXTURE_NAMES:
        if name.startswith(f"{family}/square_"):
            for layer in import_model(FIXTURES / name, **fixture_options(name)).experiment["model"]["layers"]:
                seen.add((layer["activation"], layer["batch_norm"]))
    wanted = {(a, p) for a in hidden_activation_names() if a not in missing for p in PLACEMENTS}
    assert seen == wanted


def test_mapping_report_of_a_pytorch_file(tmp_path, capsys):
    name = "torch/named.safetensors"
    assert main(["import", str(FIXTURES / name), "--experiment", str(FIXTURES / "torch/named.json"),
                 "--out", str(tmp_path / "named")]) == 0
    out = capsys.readouterr().out
    assert "fc1.weight" in out and "layers.0.kernel" in out and "yes" in out    # transposed
    assert "bn1.num_batches_tracked" in out and "1 - m" in out                  # ignored + momentum convention
    report = json.loads((tmp_path / "named" / "import.json").read_text())
    rows = {m["source"]: m for m in report["tensors"]}
    assert rows["fc1.weight"] == {"source": "fc1.weight", "target": "layers.0.kernel", "shape": [6, 5],
                                  "transposed": True, "note": ""}
    assert rows["bn2.running_var"]["target"] == "layers.1.bn.moving_variance"
    assert rows["head.bias"]["target"] == "layers.2.bias"
    assert {i["source"] for i in report["ignored"]} == {"bn1.num_batches_tracked", "bn2.num_batches_tracked"}
    exp = json.loads((tmp_path / "named" / "experiment.json").read_text())
    assert [layer["bn_epsilon"] for layer in exp["model"]["layers"]] == [1e-5, 1e-4]
    assert exp["model"]["layers"][0]["bn_momentum"] == 0.9


def test_pytorch_defaults_and_activation_parameters_from_the_command_line():
    result = import_model(FIXTURES / "torch/bn_defaults.safetensors",
                          activations=TORCH_ACTIVATIONS["bn_defaults.safetensors"])
    layers = result.experiment["model"]["layers"]
    assert [(c["batch_norm"], c["bn_epsilon"], c["bn_momentum"]) for c in layers] == [("before", 1e-5, 0.9),
                                                                                      ("after", 1e-5, 0.9)]
    assert layers[1]["activation_params"] == {"alpha": 0.2}
    assert any("PyTorch's defaults assumed" in c for c in result.summary["conventions"])


def test_keras_conventions_are_carried_over():
    result = import_model(FIXTURES / "keras/square_0.keras")
    layers = result.experiment["model"]["layers"]
    with_bn = [c for c in layers if c["batch_norm"] != "none"]
    assert {(c["bn_epsilon"], c["bn_momentum"]) for c in with_bn} == {(0.001, 0.99), (0.01, 0.9)}
    assert [c["dropout"] for c in layers].count(0.1) == 1
    functional = import_model(FIXTURES / "keras/functional.keras")
    assert functional.experiment["model"]["layers"][0]["alpha_dropout"] is True
    assert functional.metadata["data"]["image_shape"] == [3, 4]


# ================================================================ ONNX, with onnxruntime as the oracle

class OnnxNet:
    """A dense network written directly with onnx.helper (no Descent code involved)."""

    def __init__(self, n_inputs=5, seed=0, opset=17):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.opset = [], [], opset
        self.x, self.width, self.count = "x", n_inputs, 0
        self.n_inputs = n_inputs

    def name(self, stem):
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, value, stem="c"):
        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def shape_const(self, value):
        name = self.name("shape")
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.int64), name))
        return name

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name(op_type), **attrs))
        return out

    def dense(self, units, form="gemm", bias=True):
        w = self.rng.normal(0, 0.6, (self.width, units))
        b = self.rng.normal(0, 0.2, units)
        if form == "gemm":
            inputs = [self.x, self.const(w.T, "weight")] + ([self.const(b, "bias")] if bias else [])
            self.x = self.op("Gemm", inputs, transB=1)
        else:
            self.x = self.op("MatMul", [self.x, self.const(w, "weight")])
            if bias:
                self.x = self.op("Add", [self.x, self.const(b, "bias")])
        self.width = units

    def batch_norm(self, eps=1e-3):
        u = self.width
        parts = [self.rng.uniform(0.5, 1.5, u), self.rng.normal(0, 0.3, u), self.rng.normal(0, 0.3, u),
                 self.rng.uniform(0.5, 2.0, u)]
        self.x = self.op("BatchNormalization", [self.x] + [self.const(p, "bn") for p in parts], epsilon=eps)

    def activation(self, name):
        x = self.x
        if name == "linear":
            return
        simple = {"relu": "Relu", "logistic": "Sigmoid", "tanh": "Tanh", "selu": "Selu", "softmax": "Softmax",
                  "log_softmax": "LogSoftmax"}
        if name in simple:
            self.x = self.op(simple[name], [x], **({"axis": 1} if "softmax" in name else {}))
        elif name == "leaky_relu":
            self.x = self.op("LeakyRelu", [x], alpha=0.2)
        elif name == "elu":
            self.x = self.op("Elu", [x], alpha=0.7)
        elif name == "prelu":
            self.x = self.op("PRelu", [x, self.const(self.rng.uniform(0.05, 0.4, self.width), "slope")])
        elif name == "gelu" and self.opset >= 20:
            self.x = self.op("Gelu", [x])
        elif name == "gelu":   # as PyTorch writes it at opset 17: x * (1 + erf(x / sqrt 2)) * 0.5
            erf = self.op("Erf", [self.op("Div", [x, self.const(math.sqrt(2.0))])])
            self.x = self.op("Mul", [self.op("Mul", [x, self.op("Add", [erf, self.const(1.0)])]), self.const(0.5)])
        elif name == "gelu_tanh":
            inner = self.op("Mul", [self.op("Add", [x, self.op("Mul", [self.op("Pow", [x, self.const(3.0)]),
                                                                        self.const(0.044715)])]),
                                    self.const(math.sqrt(2 / math.pi))])
            self.x = self.op("Mul", [self.op("Mul", [x, self.const(0.5)]),
                                     self.op("Add", [self.op("Tanh", [inner]), self.const(1.0)])])
        elif name == "swish":
            self.x = self.op("Mul", [x, self.op("Sigmoid", [x])])
        else:
            raise AssertionError(name)

    def model(self, input_shape=None):
        shape = input_shape or [self.n_inputs]
        graph = helper.make_graph(self.nodes, "test", [helper.make_tensor_value_info(
            "x", TensorProto.FLOAT, ["batch", *shape])], [helper.make_tensor_value_info(
            self.x, TensorProto.FLOAT, ["batch", self.width])], initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="test")
        model.ir_version = 8 if self.opset < 19 else 9
        return model

    def save(self, path, input_shape=None):
        model = self.model(input_shape)
        Path(path).write_bytes(model.SerializeToString())
        return model


def run_onnx(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.asarray(x, np.float32)})[0].astype(np.float64)


def stack_net(hidden, output="softmax", form="gemm", opset=17, n_out=3, seed=0):
    net = OnnxNet(seed=seed, opset=opset)
    for units, activation, placement in hidden:
        net.dense(units, form, bias=placement != "before")
        if placement == "before":
            net.batch_norm()
        net.activation(activation)
        if placement == "after":
            net.batch_norm(eps=1e-5)
    net.dense(n_out, form)
    net.activation(output)
    return net


def check_onnx(tmp_path, net, x, input_shape=None, name="m.onnx"):
    model = net.save(tmp_path / name, input_shape)
    want = run_onnx(model, x)
    result = import_model(tmp_path / name)
    data = result.metadata["data"]     # a scaling of the inputs in the graph becomes the data statistics
    flat = (x.reshape(len(x), -1) - np.array(data["mean"])) / np.array(data["std"])
    assert np.max(np.abs(result.network.predict(flat) - want)) < TOLERANCE
    return result


ONNX_ACTIVATIONS = [a for a in hidden_activation_names() if a != "rrelu"]   # ONNX has no RReLU (see below)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("activation", ONNX_ACTIVATIONS)
def test_onnx_every_activation_and_batch_norm_placement(tmp_path, activation, placement):
    net = stack_net([(6, activation, placement), (5, activation, placement)])
    result = check_onnx(tmp_path, net, np.random.default_rng(1).normal(size=(64, 5)))
    layers = result.experiment["model"]["layers"]
    if activation == "linear" and placement == "after":
        placement = "before"    # no activation: the same network, written one way
    assert [(c["activation"], c["batch_norm"]) for c in layers] == [(activation, placement)] * 2


@pytest.mark.parametrize("output, n_out", [("softmax", 3), ("log_softmax", 3), ("logistic", 1), ("linear", 2)])
@pytest.mark.parametrize("form", ["gemm", "matmul"])
def test_onnx_outputs_and_dense_forms(tmp_path, output, n_out, form):
    net = stack_net([(6, "relu", "none")], output=output, form=form, n_out=n_out)
    x = np.random.default_rng(2).normal(size=(64, 5))
    model = net.save(tmp_path / "m.onnx")
    want = run_onnx(model, x)
    result = import_model(tmp_path / "m.onnx")
    want = np.exp(want) if output == "log_softmax" else want
    assert np.max(np.abs(result.network.predict(x) - want)) < TOLERANCE
    assert result.network.output_activation == {"log_softmax": "softmax"}.get(output, output)


@pytest.mark.parametrize("flatten", ["Flatten", "Reshape"])
def test_onnx_gelu_operator_flatten_dropout_identity_and_input_scaling(tmp_path, flatten):
    net = OnnxNet(opset=20, n_inputs=12)
    net.x = net.op("Div", [net.op("Sub", ["x", net.const(np.full((3, 4), 0.5))]), net.const(2.0)])
    net.x = (net.op("Flatten", [net.x], axis=1) if flatten == "Flatten"
             else net.op("Reshape", [net.x, net.shape_const([0, -1])]))
    net.dense(6)
    net.activation("gelu")
    net.x = net.op("Identity", [net.x])
    net.x = net.op("Dropout", [net.x, net.const(0.25)])
    net.dense(3)
    net.activation("softmax")
    x = np.random.default_rng(3).uniform(0, 1, size=(32, 3, 4))
    result = check_onnx(tmp_path, net, x, input_shape=[3, 4])
    assert result.metadata["data"]["mean"] == [0.5] * 12 and result.metadata["data"]["std"] == [2.0] * 12
    assert result.metadata["data"]["image_shape"] == [3, 4]
    assert result.experiment["model"]["layers"][0]["dropout"] == 0.25


def test_onnx_files_exported_by_pytorch_opset17_and_20():
    for name in ("onnx/torch_opset17.onnx", "onnx/torch_opset20.onnx"):
        layers = import_model(FIXTURES / name).experiment["model"]["layers"]
        assert [c["activation"] for c in layers] == ["gelu", "swish", "prelu"]
        assert [c["batch_norm"] for c in layers] == ["before", "after", "none"]
        assert [c.get("bn_epsilon") for c in layers[:2]] == [1e-5, 1e-3]


# ================================================================ round trips (the weaker check)

@pytest.mark.parametrize("bn", PLACEMENTS)
@pytest.mark.parametrize("activation", hidden_activation_names())
def test_descent_onnx_descent_round_trip(tmp_path, activation, bn):
    net = make_net(activation, bn, dtype="float32",
                   params={"alpha": 0.2} if activation in ("leaky_relu", "elu") else None)
    save_onnx(tmp_path / "model.onnx", net)
    back = import_model(tmp_path / "model.onnx").network
    x = np.random.default_rng(4).normal(size=(200, 5))
    assert np.max(np.abs(back.predict(x) - net.predict(x))) < TOLERANCE
    layers = back.experiment["model"]["layers"]
    want = {"rrelu": "leaky_relu"}.get(activation, activation)   # RReLU exports at its inference slope
    assert {c["activation"] for c in layers} == {want}
    # before the activation, batch norm is folded into the Gemm; with no activation, after == before
    want = {"before": "none", "after": "before" if activation == "linear" else "after"}.get(bn, bn)
    assert {c["batch_norm"] for c in layers} == {want}


def test_descent_keras_descent_round_trip(tmp_path):
    """Descent -> model.weights.h5 + model_keras.py -> real Keras saves a .keras -> import.
    Uses this Python's keras or DESCENT_KERAS_PYTHON (like test_formats_keras); no keras fails."""
    from engine.formats.keras_h5 import save_keras
    from test_formats_keras import _keras_python

    python = _keras_python()
    nets = {f"{a}-{bn}": make_net(a, bn, dtype="float32", dropout=0.1) for a in ("relu", "prelu", "selu", "gelu")
            for bn in PLACEMENTS}
    nets["selu-alpha-dropout"] = make_net("selu", "none", dtype="float32", dropout=0.1)
    nets["selu-alpha-dropout"].layer_configs[0]["alpha_dropout"] = True   # the exporter writes AlphaDropout
    for key, net in nets.items():
        save_keras(tmp_path / key / "model.weights.h5", net)
    script = ("import importlib.util, os, sys\nos.environ.setdefault('KERAS_BACKEND', 'torch')\nimport keras\n"
              "for d in sys.argv[1:]:\n"
              "    spec = importlib.util.spec_from_file_location('m', os.path.join(d, 'model_keras.py'))\n"
              "    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
              "    model = m.build_model(); model.load_weights(os.path.join(d, 'model.weights.h5'))\n"
              "    model.save(os.path.join(d, 'model.keras'))\n")
    done = subprocess.run([python, "-c", script, *(str(tmp_path / k) for k in nets)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    x = np.random.default_rng(5).normal(size=(100, 5))
    for key, net in nets.items():
        if key.startswith("gelu"):   # model_keras.py writes GELU as a Python lambda: rightly refused
            with pytest.raises(WeightsError, match="Python code"):
                import_model(tmp_path / key / "model.keras")
            continue
        back = import_model(tmp_path / key / "model.keras").network
        assert np.max(np.abs(back.predict(x) - net.predict(x))) < TOLERANCE, key
        assert [c["dropout"] for c in back.experiment["model"]["layers"]] == [0.1, 0.1]
    assert back.experiment["model"]["layers"][0]["alpha_dropout"] is True


# ================================================================ the folder works like a run folder

@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imported") / "square_1"
    import_to_folder(FIXTURES / "keras/square_1.keras", folder)
    return folder


def test_folder_holds_a_run_folder_files(imported):
    assert sorted(p.name for p in imported.iterdir()) == ["experiment.json", "import.json", "summary.json",
                                                          "weights.safetensors"]   # one copy, as a run's
    assert json.loads((imported / "summary.json").read_text())["status"] == "imported"
    for name in ("weights.safetensors",):
        net, meta = load_network(imported / name)
        assert meta["format"] == "descent-weights" and meta["experiment"]["name"] == "imported-square_1"
        x = REFERENCE["keras/square_1.keras.x"]
        assert np.max(np.abs(net.predict(x) - REFERENCE["keras/square_1.keras.y"])) < TOLERANCE


def test_folder_predicts_and_exports(imported, tmp_path, capsys):
    name = "keras/square_1.keras"
    x, y = REFERENCE[f"{name}.x"], REFERENCE[f"{name}.y"]
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    assert main(["predict", str(imported / "weights.safetensors"), str(tmp_path / "x.csv")]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    probabilities = np.array([[float(v) for v in r.split(",")[3:]] for r in rows])
    assert np.max(np.abs(probabilities - y)) < TOLERANCE
    assert main(["export", str(imported), "--format", "onnx", "--out", str(tmp_path / "again.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "again.onnx"), providers=["CPUExecutionProvider"])
    assert np.max(np.abs(session.run(None, {"input": x})[0] - y)) < TOLERANCE


def test_folder_trains_with_init_weights_and_is_reused(imported, tmp_path):
    """The placeholder data section names data.npz beside experiment.json: put data there and train."""
    rng = np.random.default_rng(6)
    np.savez(imported / "data.npz", x=rng.normal(size=(60, 5)).astype(np.float32), y=rng.integers(0, 3, 60))
    try:
        assert main(["run", str(imported / "experiment.json"), "--init-weights",
                     str(imported / "weights.safetensors"), "--steps", "3", "--quiet",
                     "--out", str(tmp_path / "tuned")]) == 0
    finally:
        (imported / "data.npz").unlink()
    assert (tmp_path / "tuned" / "weights.safetensors").is_file()
    new = json.loads((imported / "experiment.json").read_text())
    new["data"] = {"name": "blobs", "n_samples": 60}
    new["model"]["layers"][0]["units"] = 4
    with pytest.raises(WeightsError, match="layers.0"):
        reuse_layers(imported / "weights.safetensors", new, k=2)
    new["data"] = {"name": "npz", "path": str(tmp_path / "d.npz"), "standardize": False}
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(40, 5)), y=rng.integers(0, 2, 40))
    new["model"] = {"layers": json.loads((imported / "experiment.json").read_text())["model"]["layers"][:3],
                    "output": {"activation": "logistic"}}
    net = reuse_layers(imported / "weights.safetensors", new, k=3)
    source, _ = load_network(imported / "weights.safetensors")
    assert np.array_equal(net.tensor("layers.2.kernel"), source.tensor("layers.2.kernel"))


# ================================================================ refused files: exit 2, one message, nothing written

def truncated(tmp_path, name):
    data = (FIXTURES / name).read_bytes()
    path = tmp_path / f"cut-{Path(name).name}"
    path.write_bytes(data[: len(data) // 2])
    return path


def tanh_experiment(folder):
    """An experiment for out_sigmoid.keras (Dense(6, relu) -> Dense(1, sigmoid)) that says tanh."""
    path = folder / "tanh.json"
    path.write_text(json.dumps({"data": {"name": "npz", "path": "d.npz"},
                                "model": {"layers": [{"units": 6, "activation": "tanh"}],
                                          "output": {"activation": "logistic"}}}))
    return str(path)


def descent_keras_export(folder):
    from engine.formats.keras_h5 import save_keras

    return save_keras(folder / "model.weights.h5", make_net("relu"))


def bad_onnx(tmp_path, kind):
    net = OnnxNet()
    shape = [5]
    if kind == "conv":
        shape = [1, 5]
        net.x = net.op("Flatten", [net.op("Conv", ["x", net.const(np.ones((2, 1, 3)))])])
        net.width = 6
    elif kind == "skip":
        net.dense(5)
        h = net.x
        net.activation("relu")
        net.x = net.op("Add", [net.x, h])
    elif kind == "bn_at_input":
        net.batch_norm()
    elif kind == "gelu_tanh":
        net.dense(4)
        net.activation("gelu_tanh")
    net.dense(3)
    net.activation("relu" if kind == "relu_output" else "softmax")
    path = tmp_path / f"{kind}.onnx"
    net.save(path, input_shape=shape)
    return path


BAD = [  # (id, file maker, extra arguments, words the message must contain)
    ("truncated-onnx", lambda t: truncated(t, "onnx/torch_opset17.onnx"), [], ["not a readable ONNX"]),
    ("truncated-keras", lambda t: truncated(t, "keras/square_0.keras"), [], ["not a readable .keras"]),
    ("truncated-h5", lambda t: truncated(t, "keras/legacy_sequential.h5"), [], ["HDF5"]),
    ("truncated-safetensors", lambda t: truncated(t, "torch/square_0.safetensors"), ["--activations", "relu,softmax"],
     ["safetensors"]),
    ("random-onnx", lambda t: (t / "r.onnx").write_bytes(np.random.default_rng(0).bytes(999)) and t / "r.onnx", [],
     ["ONNX"]),
    ("pickled-module", lambda t: FIXTURES / "torch/bad/model.pt", [], ["pickle", "save_file(model.state_dict()"]),
    ("pickled-state-dict", lambda t: FIXTURES / "torch/bad/state_dict.pth", [], ["pickle", "safetensors"]),
    ("lambda-keras", lambda t: FIXTURES / "keras/bad/lambda.keras", [], ["'lambda'", "Lambda", "never runs"]),
    ("lambda-h5", lambda t: FIXTURES / "keras/bad/lambda.h5", [], ["Lambda", "never runs"]),
    ("custom-layer", lambda t: FIXTURES / "keras/bad/custom.keras", [], ["'scale'", "fixtures>Scale", "custom"]),
    ("conv-keras", lambda t: FIXTURES / "keras/bad/conv.keras", [], ["'conv1d'", "Conv1D", "supported Keras layers"]),
    ("conv-torch", lambda t: FIXTURES / "torch/bad/conv.safetensors", ["--activations", "relu,softmax"],
     ["convolution", "'0'"]),
    ("conv-onnx", lambda t: bad_onnx(t, "conv"), [], ["(Conv)", "supported operators"]),
    ("skip-keras", lambda t: FIXTURES / "keras/bad/skip.keras", [], ["'add'", "Add"]),
    ("skip-onnx", lambda t: bad_onnx(t, "skip"), [], ["several nodes", "skip connection"]),
    ("relu-output-onnx", lambda t: bad_onnx(t, "relu_output"), [], ["(Relu)", "output layer ends in softmax"]),
    ("bn-at-input-onnx", lambda t: bad_onnx(t, "bn_at_input"), [], ["(BatchNormalization)", "first dense"]),
    ("gelu-tanh-onnx", lambda t: bad_onnx(t, "gelu_tanh"), [], ["tanh approximation"]),
    ("mismatched-experiment", lambda t: FIXTURES / "torch/square_0.safetensors",
     ["--experiment", str(FIXTURES / "torch/square_1.json")], ["BatchNorm", "the experiment"]),
    ("mismatched-units", lambda t: FIXTURES / "torch/named.safetensors",
     ["--experiment", str(FIXTURES / "torch/square_1.json")], ["Linear layer", "the experiment describes"]),
    ("mismatched-keras-experiment", lambda t: FIXTURES / "keras/out_sigmoid.keras",
     lambda t: ["--experiment", tanh_experiment(t)], ["model.layers[0].activation", "'relu'", "'tanh'"]),
    ("too-few-activations", lambda t: FIXTURES / "torch/square_0.safetensors", ["--activations", "relu,softmax"],
     ["11 Linear layer(s)", "one activation per Linear layer"]),
    ("no-architecture", lambda t: FIXTURES / "torch/out_linear.safetensors", [], ["--activations", "--experiment"]),
    ("weights-only-keras", lambda t: descent_keras_export(t), [], ["weights only"]),
    ("unknown-suffix", lambda t: (t / "m.txt").write_text("x") and t / "m.txt", [], [".onnx, .keras"]),
]


@pytest.mark.parametrize("maker, extra, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_refused_files_exit_2_with_one_message_and_write_nothing(tmp_path, capsys, maker, extra, words):
    source = tmp_path / "in"
    source.mkdir()
    path = maker(source)
    out = tmp_path / "runs" / "imported"
    extra = extra(source) if callable(extra) else extra
    assert main(["import", str(path), "--out", str(out), *extra]) == 2
    captured = capsys.readouterr()
    message = captured.err.strip()
    assert message.startswith("error: ") and "Traceback" not in message and captured.out == ""
    for word in words:
        assert word in message, (word, message)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import engine.formats.importers.assemble as A

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(A, "write_json", broken)   # after the weights file: it goes too
    with pytest.raises(Exception, match="No space left"):
        import_to_folder(FIXTURES / "keras/out_linear.keras", tmp_path / "runs" / "x")
    assert list((tmp_path / "runs").iterdir()) == []


def test_existing_folder_is_not_overwritten(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert main(["import", str(FIXTURES / "keras/out_linear.keras"), "--out", str(tmp_path / "taken")]) == 2
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["keep.txt"]


# ================================================================ a staged experiment's imported stage (preset 17)

def test_preset_17_imports_the_pytorch_model_and_scores_what_pytorch_measured():
    """presets/models/train_fashion8_torch.py printed PyTorch's test accuracy on the 8,000 test images
    of task A: 0.918874979...; the imported stage measures the same images with Descent's kernels."""
    from engine.jobs.stages import run_stages
    from engine.spec.stages import StageFinished, StageStarted

    exp = load_experiment("17-reuse-a-foreign-model")
    assert Path(exp["stages"]["list"][0]["import"]).is_file()
    raw = json.loads((Path(__file__).resolve().parent.parent / "presets/17-reuse-a-foreign-model.json").read_text())
    raw["data"].update(per_class=20, val_per_class=10)           # A's test set stays whole
    for stage in raw["stages"]["list"][1:]:
        stage["data"].update(per_class=20, val_per_class=10, test_per_class=10)
    from engine.spec.experiment import resolve_experiment

    events = list(run_stages(resolve_experiment(raw), max_steps=2, seeds=[42]))
    summaries = {e.stage: e.summary for e in events if isinstance(e, StageFinished)}
    assert summaries["a"]["test_accuracy"] == pytest.approx(0.918875, abs=0.5 / 8000)
    assert summaries["a"]["steps"] == 0 and summaries["a"]["imported_from"].endswith("fashion8-selu-torch.safetensors")
    started = {e.stage: e for e in events if isinstance(e, StageStarted)}
    assert started["b_on_a"].reuse == {"from": "a", "k": 3, "layers": "all_but_output"}
    assert summaries["b_on_a"]["steps"] == 4                      # two phases of 2 steps


def test_the_shipped_model_imports_from_the_command_line(tmp_path, capsys):
    path = Path(__file__).resolve().parent.parent / "presets/models/fashion8-selu-torch.safetensors"
    assert main(["import", str(path), "--activations", "selu,selu,selu,softmax", "--out", str(tmp_path / "a")]) == 0
    assert "6.weight" in capsys.readouterr().out
    exp = json.loads((tmp_path / "a" / "experiment.json").read_text())
    assert [c["units"] for c in exp["model"]["layers"]] == [64, 32, 32]


def test_imported_stages_are_checked(tmp_path):
    from engine.jobs.stages import run_stages
    from engine.spec.experiment import resolve_experiment
    from engine.errors import ExperimentError

    model = str(FIXTURES / "torch/out_sigmoid.safetensors")    # Linear(5, 6), Tanh, Linear(6, 1), Sigmoid
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(50, 5)), y=np.arange(50) % 2)
    raw = {"data": {"name": "npz", "path": str(tmp_path / "d.npz"), "standardize": False},
           "model": {"layers": [{"units": 6, "activation": "tanh"}], "output": {"activation": "logistic"}},
           "stages": [{"name": "a", "import": model},
                      {"name": "b", "reuse": {"from": "a", "layers": 1}, "model": {"output": {"activation": "logistic"}}}]}
    exp = resolve_experiment(raw)
    assert resolve_experiment(json.loads(json.dumps(exp))) == exp
    events = list(run_stages(exp, max_steps=1))
    assert events[-1].report["stages"]["a"]["steps"]["mean"] == 0
    wrong = json.loads(json.dumps(raw))
    wrong["model"]["layers"][0]["units"] = 7
    with pytest.raises(WeightsError, match="units"):
        list(run_stages(resolve_experiment(wrong), max_steps=1))
    for stage, message in (({"name": "a", "import": 3}, "path of a model file"),
                           ({"name": "a", "import": model, "phases": [{"name": "more", "epochs": 2}]}, "not trained")):
        with pytest.raises(ExperimentError, match=message):
            resolve_experiment(dict(raw, stages=[stage]))


def test_an_agreeing_experiment_supplies_data_and_training_settings(tmp_path):
    """out_sigmoid.keras is Dense(6, relu) -> Dense(1, sigmoid); the experiment agrees on what the network
    computes and brings its own data, optimizer and dropout (a training setting the file has none of)."""
    path = tmp_path / "exp.json"
    path.write_text(json.dumps({"name": "mine", "data": {"name": "moons", "n_samples": 100},
                                "model": {"layers": [{"units": 6, "activation": "relu", "dropout": 0.3}],
                                          "output": {"activation": "auto"}},
                                "optimizer": {"name": "adam", "learning_rate": 0.001}}))
    result = import_model(FIXTURES / "keras/out_sigmoid.keras", experiment=load_experiment(str(path)))
    exp = result.experiment
    assert exp["name"] == "mine" and exp["data"]["name"] == "moons" and exp["optimizer"]["name"] == "adam"
    assert exp["model"]["layers"][0]["dropout"] == 0.3 and exp["model"]["output"]["activation"] == "logistic"
    assert any("dropout" in c for c in result.summary["conventions"])
    name = "keras/out_sigmoid.keras"
    assert np.max(np.abs(result.network.predict(REFERENCE[f"{name}.x"]) - REFERENCE[f"{name}.y"])) < TOLERANCE


def test_loading_a_model_file_as_weights_points_to_import(tmp_path):
    from engine.formats import load_any

    for name in ("onnx/torch_opset17.onnx", "keras/square_0.keras", "keras/legacy_sequential.h5"):
        with pytest.raises(WeightsError, match="main.py import"):
            load_any(FIXTURES / name)
