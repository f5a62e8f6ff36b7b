"""Hostile and careless inputs (issue 13): every one ends with one line naming the file, the
field and what is allowed, exit status 2, no traceback and nothing written half.

Each test is one *class* of defect, parametrized over the variants of the class: readers that
trusted the sizes in a header, metadata of the wrong type, values float32 cannot hold, weights
that fit only partly, export formats against file names, folder names that collide, the
memory a run will need, and the smaller command-line holes.  The runs these files are fed to
are tiny (a few hundred examples, one small layer).
"""
import gzip
import io
import json
import math
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import numpy.lib.format as npy_format
import pytest

from engine.cli import main
from engine.errors import DataError, DescentError, ExperimentError
from engine.formats import load_any, save_weights
from engine.jobs.runner import JobRequest, run_job
from engine.spec.experiment import parse_experiment_text, resolve_experiment

ROOT = Path(__file__).resolve().parent.parent
SMALL_LIMIT_MB = "200"


# ----------------------------------------------------------------------------- helpers


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value))
    return path


def tiny(name="tiny", data=None, layers=None, **training):
    return {"name": name, "seed": 1, "data": data or {"name": "xor", "n_samples": 200},
            "model": {"layers": layers or [{"units": 8, "activation": "tanh"}]},
            "optimizer": {"name": "sgd", "learning_rate": 0.05},
            "training": dict({"epochs": 2, "batch_size": 20}, **training)}


def error_line(capsys, argv, *fragments) -> str:
    """Run the command line in this process: exit status 2 and one line on stderr holding every
    fragment (an uncaught exception fails the test with its traceback)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def npz_claiming(path: Path, arrays: dict, claims: dict) -> Path:
    """An NPZ archive whose members named in ``claims`` have a header claiming that shape but
    hold only a few bytes of data: what a crafted or damaged file looks like."""
    with zipfile.ZipFile(path, "w") as z:
        for name, value in arrays.items():
            buf = io.BytesIO()
            if name in claims:
                npy_format.write_array_header_1_0(buf, {"descr": np.dtype(value.dtype).str, "fortran_order": False,
                                                        "shape": claims[name]})
                buf.write(np.ascontiguousarray(value).tobytes())
            else:
                np.save(buf, value, allow_pickle=False)
            z.writestr(name + ".npy", buf.getvalue())
    return path


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A finished classification run (xor, 2 inputs, one hidden layer of 8)."""
    root = tmp_path_factory.mktemp("run")
    exp = write_json(root / "exp.json", tiny())
    assert main(["run", str(exp), "--out", str(root / "run"), "--quiet"]) == 0
    return root / "run"


def weights_with(tmp_path: Path, run_folder: Path, name="w.safetensors", **metadata_changes) -> Path:
    tensors, metadata = load_any(run_folder / "weights.safetensors")
    for key, value in metadata_changes.items():
        if "." in key:
            section, field = key.split(".")
            metadata[section] = dict(metadata[section], **{field: value})
        else:
            metadata[key] = value
    return save_weights(tmp_path / name, tensors, metadata)


# ----------------------------------------------------------------------------- class 1: regression data


def _regression_files(kind: str, folder: Path) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=150)).astype(np.float32)
    if kind == "csv":
        path = folder / "reg.csv"
        np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="a,b,c,target", comments="", fmt="%.6f")
        return {"name": "csv", "path": str(path), "task": "regression"}
    arrays = {"npz y (n,)": {"x": x, "y": y}, "npz y (n, 1)": {"x": x, "y": y[:, None]},
              "npz y (n, 2)": {"x": x, "y": np.column_stack([y, -y])},
              "npz float64 with x_test": {"x": x[:120].astype(np.float64), "y": y[:120].astype(np.float64),
                                          "x_test": x[120:], "y_test": y[120:]}}[kind]
    np.savez(folder / "reg.npz", **arrays)
    return {"name": "npz", "path": str(folder / "reg.npz")}


@pytest.mark.parametrize("kind", ["npz y (n,)", "npz y (n, 1)", "npz y (n, 2)", "npz float64 with x_test", "csv"])
def test_regression_data_end_to_end(tmp_path, capsys, kind):
    """Bring-your-own regression data: train, export in every readable format, predict from each."""
    data = _regression_files(kind, tmp_path)
    exp = write_json(tmp_path / "reg.json", tiny("reg", data))
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["final_val_accuracy"] is None   # regression: no accuracy
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, x=np.random.default_rng(1).normal(size=(7, 3)))
    outputs = []
    for fmt in ("safetensors", "npz", "onnx"):
        assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / f"model.{fmt}")]) == 0
    for source in (tmp_path / "run", tmp_path / "model.safetensors", tmp_path / "model.npz"):
        capsys.readouterr()
        assert main(["predict", str(source), str(inputs)]) == 0
        outputs.append(capsys.readouterr().out)
    k = 2 if kind == "npz y (n, 2)" else 1
    rows = outputs[0].strip().splitlines()
    assert rows[0] == ",".join(["row"] + [f"y_{j}" for j in range(k)]) and len(rows) == 8
    assert all(math.isfinite(float(v)) for line in rows[1:] for v in line.split(",")[1:])
    assert outputs[0] == outputs[1] == outputs[2]   # the run folder and both exports predict alike


# ----------------------------------------------------------------------------- class 4: sizes in headers


HUGE = 10**12


def _data_claim(tmp_path, member):
    rng = np.random.default_rng(0)
    path = npz_claiming(tmp_path / "data.npz", {"x": rng.normal(size=(10, 3)).astype(np.float32),
                                                "y": np.arange(10) % 2}, {member: (HUGE, 3) if member == "x"
                                                                          else (HUGE,)})
    return ["run", write_json(tmp_path / "e.json", tiny(data={"name": "npz", "path": str(path)})), "--quiet",
            "--out", tmp_path / "out"], ["data.npz", repr(member), "claims shape"]


def _npy_as_npz(tmp_path, _):
    path = tmp_path / "data.npz"
    with open(path, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (HUGE, 3)})
        f.write(b"\0" * 12)
    return ["run", write_json(tmp_path / "e.json", tiny(data={"name": "npz", "path": str(path)})), "--quiet",
            "--out", tmp_path / "out"], ["data.npz", ".npy"]


def _predict_claim(tmp_path, run_folder):
    path = npz_claiming(tmp_path / "inputs.npz", {"x": np.ones((4, 2))}, {"x": (HUGE, 2)})
    return ["predict", run_folder, path], ["inputs.npz", "'x'", "claims shape"]


def _weights_claim(tmp_path, run_folder):
    tensors, _ = load_any(run_folder / "weights.safetensors")
    path = npz_claiming(tmp_path / "w.npz", tensors, {"layers.0.kernel": (HUGE, 8)})
    return ["run", write_json(tmp_path / "e.json", tiny()), "--init-weights", path, "--quiet",
            "--out", tmp_path / "out"], ["w.npz", "layers.0.kernel", "claims shape"]


def _metadata_claim(tmp_path, run_folder):
    tensors, metadata = load_any(run_folder / "weights.safetensors")
    path = npz_claiming(tmp_path / "w.npz", dict(tensors, __metadata__=np.array(json.dumps(metadata))),
                        {"__metadata__": (HUGE,)})
    inputs = tmp_path / "in.csv"
    inputs.write_text("1,2\n")
    return ["predict", path, inputs], ["w.npz", "__metadata__", "claims shape"]


def _checkpoint_claim(tmp_path, run_folder):
    folder = tmp_path / "copy"
    shutil.copytree(run_folder, folder)
    tensors, metadata = load_any(run_folder / "weights.safetensors")
    with np.load(run_folder / "checkpoint.npz", allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    npz_claiming(folder / "checkpoint.npz", arrays, {"optimizer.slots": (HUGE, 42)})
    return ["run", write_json(tmp_path / "e.json", tiny()), "--resume", folder, "--epochs", "3", "--quiet",
            "--out", tmp_path / "out"], ["checkpoint.npz", "optimizer.slots", "claims shape"]


DIGITS = "7" * 5000
DEEP = "[" * 100_000 + "]" * 100_000


def _experiment_digits(tmp_path, _):
    path = tmp_path / "e.json"
    path.write_text(json.dumps(tiny()).replace('"seed": 1', f'"seed": {DIGITS}'))
    return ["run", path, "--quiet"], ["e.json", "line 1", "(key 'seed')", "5,000 digits"]


def _safetensors_value(field, text):
    def build(tmp_path, run_folder):
        tensors, metadata = load_any(run_folder / "weights.safetensors")
        from safetensors.numpy import save_file
        header = {k: json.dumps(v) for k, v in metadata.items()}
        header[field] = text
        header["descent.json_keys"] = json.dumps(list(metadata))
        save_file(tensors, str(tmp_path / "w.safetensors"), metadata=header)
        inputs = tmp_path / "in.csv"
        inputs.write_text("1,2\n")
        return ["predict", tmp_path / "w.safetensors", inputs], ["w.safetensors", f"metadata field {field}"]
    return build


def _npz_metadata_deep(tmp_path, run_folder):
    tensors, _ = load_any(run_folder / "weights.safetensors")
    np.savez(tmp_path / "w.npz", __metadata__=np.array('{"experiment": ' + DEEP + "}"), **tensors)
    inputs = tmp_path / "in.csv"
    inputs.write_text("1,2\n")
    return ["predict", tmp_path / "w.npz", inputs], ["w.npz", "__metadata__", "nested"]


def _summary_digits(tmp_path, run_folder):
    folder = tmp_path / "copy"
    shutil.copytree(run_folder, folder)
    (folder / "summary.json").write_text('{"status": "finished", "steps": ' + DIGITS + "}")
    return ["export", folder, "--format", "npz", "--out", tmp_path / "x.npz"], ["summary.json", "5,000 digits"]


def _empty_x(tmp_path, run_folder):
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 2)))
    return ["predict", run_folder, tmp_path / "empty.npz"], ["empty.npz", "(0, 2)", "no rows"]


def _mc_dropout(tmp_path, run_folder):
    np.savez(tmp_path / "in.npz", x=np.ones((3, 2)))
    return ["predict", run_folder, tmp_path / "in.npz", "--mc-dropout", "1000000000"], ["--mc-dropout", "10,000"]


HEADER_CASES = {
    "data npz: x claims 10^12 rows": lambda t, r: _data_claim(t, "x"),
    "data npz: y claims 10^12 rows": lambda t, r: _data_claim(t, "y"),
    "data npz: a .npy with a huge header": _npy_as_npz,
    "predict npz: x claims 10^12 rows": _predict_claim,
    "--init-weights npz: a tensor claims 10^12 rows": _weights_claim,
    "weights npz: metadata claims 10^12 entries": _metadata_claim,
    "--resume: checkpoint slots claim 10^12 rows": _checkpoint_claim,
    "experiment: an integer of 5,000 digits": _experiment_digits,
    "safetensors metadata: an integer of 5,000 digits": _safetensors_value("summary", '{"steps": ' + DIGITS + "}"),
    "safetensors metadata: nested 10^5 deep": _safetensors_value("experiment", DEEP),
    "npz metadata: nested 10^5 deep": _npz_metadata_deep,
    "summary.json: an integer of 5,000 digits": _summary_digits,
    "predict: x with no rows": _empty_x,
    "predict: --mc-dropout 10^9": _mc_dropout,
}


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_sizes_claimed_by_a_file_are_checked_before_use(tmp_path, capsys, run_folder, case):
    argv, fragments = HEADER_CASES[case](tmp_path, run_folder)
    error_line(capsys, argv, *fragments)
    assert not (tmp_path / "out").exists()   # nothing written half


def test_an_arena_preset_with_an_integer_of_5000_digits(tmp_path):
    from engine.arena.race import load_arena_preset

    path = tmp_path / "arena.json"
    path.write_text('{"surface": {"name": "bowl"}, "steps": ' + DIGITS + "}")
    pattern = r"arena\.json, line 1, column \d+ \(key 'steps'\): an integer of 5,000 digits"
    with pytest.raises(ExperimentError, match=pattern):
        load_arena_preset(path)


def _fashion_folder(folder: Path, images: bytes, labels: bytes | None) -> Path:
    """The four Fashion-MNIST files, the training images (and labels, if given) replaced by these
    gzipped bytes."""
    from test_datasets_fashion import write_idx
    write_idx(folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(images)
    if labels is not None:
        (folder / "train-labels-idx1-ubyte.gz").write_bytes(labels)
    return folder


def _gzip_of(header: bytes, zeros: int) -> bytes:
    """A gzip of ``header`` followed by ``zeros`` zero bytes, built without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(header)]
    block = bytes(1 << 20)
    for _ in range(zeros >> 20):
        out.append(packer.compress(block))
    return b"".join(out) + packer.flush()


def idx3(n, rows, cols):
    return bytes([0, 0, 8, 3]) + b"".join(int(v).to_bytes(4, "big") for v in (n, rows, cols))


NO_LABELS = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 0]))


@pytest.mark.parametrize("images, labels, message", [
    (_gzip_of(idx3(60, 4, 4), 300 << 20), None, "truncated or corrupt"),    # a bomb: 300 MB behind 960 bytes
    (gzip.compress(idx3(2**31, 1 << 12, 1 << 12)), None, "memory limit"),  # a header claiming 2^55 pixels
    (gzip.compress(idx3(0, 4, 4)), NO_LABELS, "holds 0 images"),          # nothing to reshape
    (gzip.compress(idx3(60, 4, 0)), None, "0 pixels"),
], ids=["gzip bomb", "huge header", "no images", "no pixels"])
def test_fashion_files_are_read_within_their_declared_size(tmp_path, images, labels, message):
    from engine.data import fashion, load_dataset

    folder = _fashion_folder(tmp_path / "fm", images, labels)
    fashion.clear_cache()
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=message) as err:
            load_dataset({"name": "fashion_mnist", "path": str(folder)}, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "train-images-idx3-ubyte.gz" in str(err.value)
    assert peak < 50 << 20, f"{peak / 2**20:.0f} MB held while refusing the file"


# ----------------------------------------------------------------------------- class 4: metadata types


@pytest.mark.parametrize("changes, fragments", [
    ({"data": [1, 2]}, ["metadata field data", "object", "list"]),
    ({"data.class_names": ["only one"]}, ["data.class_names", "1 entries", "2"]),
    ({"data.class_names": "0,1"}, ["data.class_names", "list of strings", "str"]),
    ({"data.feature_names": [1, 2]}, ["data.feature_names", "list of strings"]),
    ({"data.mean": [0.0]}, ["data.mean", "1 numbers", "2 inputs"]),
    ({"data.mean": "0.0, 0.0"}, ["data.mean", "list of 2 numbers"]),
    ({"data.mean": [0.0, 1e39]}, ["data.mean[1]", "finite float32"]),
    ({"data.std": [1.0, 0.0]}, ["data.std[1]", "positive"]),
    ({"data.image_shape": [3, 3]}, ["data.image_shape", "product"]),
    ({"data.task": "poetry"}, ["data.task", "classification"]),
    ({"summary": [1]}, ["metadata field summary", "object"]),
], ids=lambda v: str(v)[:40])
def test_weights_metadata_of_the_wrong_type_or_length(tmp_path, capsys, run_folder, changes, fragments):
    path = weights_with(tmp_path, run_folder, **changes)
    inputs = tmp_path / "in.csv"
    inputs.write_text("0.5,0.5\n")
    error_line(capsys, ["predict", path, inputs], "w.safetensors", *fragments)
    error_line(capsys, ["export", path, "--out", tmp_path / "m.onnx"], "w.safetensors", *fragments)
    assert not (tmp_path / "m.onnx").exists()


# ----------------------------------------------------------------------------- class 9: float32's range


def _csv(tmp_path, text, task="auto"):
    (tmp_path / "d.csv").write_text(text)
    return {"name": "csv", "path": str(tmp_path / "d.csv"), "task": task}


def _npz(tmp_path, **arrays):
    np.savez(tmp_path / "d.npz", **arrays)
    return {"name": "npz", "path": str(tmp_path / "d.npz")}


ROWS = np.random.default_rng(0).normal(size=(40, 3))
LABELS = np.arange(40) % 2


@pytest.mark.parametrize("make, fragments", [
    (lambda t: _csv(t, "a,b,y\n1,2,0\n3,1e39,1\n5,6,0\n7,8,1\n"), ["d.csv", "line 3", "column 2 ('b')", "float32"]),
    (lambda t: _csv(t, "a,b,y\n1,2,0.5\n3,4,1e39\n5,6,0.1\n", "regression"), ["d.csv", "line 3", "'y'", "float32"]),
    (lambda t: _npz(t, x=np.where(np.arange(3) == 2, 1e39, ROWS), y=LABELS), ["d.npz", "'x'", "column 2", "float32"]),
    (lambda t: _npz(t, x=ROWS, y=ROWS[:, 0] * 1e39), ["d.npz", "'y'", "float32"]),
    (lambda t: _npz(t, x=(ROWS * [1, 1e38, 1]).astype(np.float32), y=LABELS),
     ["d.npz", "column 2", "overflow float32 when standardized"]),
    (lambda t: _csv(t, "a,b,y\n" + "".join(f"{i},{i}e20,{i % 2}\n" for i in range(1, 30))),
     ["d.csv", "column 2 ('b')", "overflow float32 when standardized"]),
    (lambda t: _npz(t, x=np.zeros((40, 0)), y=LABELS), ["d.npz", "'x'", "(40, 0)", "d > 0"]),
    (lambda t: _npz(t, x=np.zeros((40, 5, 0)), y=LABELS), ["d.npz", "'x'", "(40, 5, 0)"]),
], ids=["csv cell 1e39", "csv target 1e39", "npz x 1e39", "npz y 1e39", "npz x*1e38 sums", "csv squares",
        "npz 0 columns", "npz 0-pixel images"])
def test_values_float32_cannot_hold_are_refused_at_load_time(tmp_path, capsys, make, fragments):
    data = make(tmp_path)
    line = error_line(capsys, ["run", write_json(tmp_path / "e.json", tiny(data=data)), "--quiet",
                               "--out", tmp_path / "out"], *fragments)
    assert "learning rate" not in line and not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, fragments", [
    ("1e39,0\n", ["row 1", "column 1", "float32"]),
    ("0,-4e38\n", ["row 1", "column 2", "float32"]),
    ("nan,0\n", ["NaN"]),
])
def test_predict_inputs_beyond_float32(tmp_path, capsys, run_folder, text, fragments):
    (tmp_path / "in.csv").write_text(text)
    error_line(capsys, ["predict", run_folder, tmp_path / "in.csv"], "in.csv", *fragments)


# ----------------------------------------------------------------------------- class 5: folder names


@pytest.mark.parametrize("first, second", [("a/b", "a-b"), ("x y", "x-y"), ("Adam", "adam"), ("lr=0.1", "lr-0.1"),
                                           ("b-", "b"), ("é", "variant")])
def test_variants_that_would_share_a_run_folder(first, second):
    exp = dict(tiny(), compare={"variants": [{"name": first}, {"name": second}], "seeds": 1})
    with pytest.raises(ExperimentError, match="same run folder|would share the run folder") as err:
        parse_experiment_text(json.dumps(exp), "cmp.json")
    assert str(err.value).startswith("cmp.json: ") and repr(first) in str(err.value) and repr(second) in str(err.value)


# ----------------------------------------------------------------------------- class 8: --init-weights


def _weights_of(tmp_path, layers, name):
    exp = write_json(tmp_path / f"{name}.json", tiny(name, layers=layers))
    assert main(["run", str(exp), "--out", str(tmp_path / name), "--quiet", "--steps", "1"]) == 0
    return tmp_path / name / "weights.safetensors"


@pytest.mark.parametrize("source_layers, fragments, partial_ok", [
    ([{"units": 8, "activation": "tanh"}, {"units": 4, "activation": "tanh"}],
     ["network lacks: layers.2.bias, layers.2.kernel"], False),                    # a layer more: shapes differ
    ([{"units": 8, "activation": "tanh", "batch_norm": "before"}], ["layers.0.bn.gamma", "network lacks"], True),
    ([{"units": 8, "activation": "prelu"}], ["layers.0.prelu.alpha"], True),
    ([{"units": 8, "activation": "tanh", "use_bias": False}], ["this network has: layers.0.bias"], True),
    ([{"units": 9, "activation": "tanh"}], ["layers.0.kernel has shape (2, 9)", "(2, 8)"], False),
], ids=["one layer more", "BN tensors", "PReLU slopes", "no bias", "other width"])
def test_init_weights_uses_every_tensor_or_names_the_difference(tmp_path, capsys, source_layers, fragments,
                                                                partial_ok):
    from engine.formats.models import load_init_weights
    from engine.training.trainer import Trainer

    source = _weights_of(tmp_path, source_layers, "source")
    exp = write_json(tmp_path / "e.json", tiny())
    error_line(capsys, ["run", exp, "--init-weights", source, "--quiet", "--out", tmp_path / "out"],
               "--init-weights", "source", *fragments[:1])
    assert not (tmp_path / "out").exists()
    trainer = Trainer(resolve_experiment(tiny()))
    before = trainer.net.state_dict()
    if not partial_ok:
        with pytest.raises(DescentError, match="shape"):
            load_init_weights(trainer.net, source, partial=True)
        return
    load_init_weights(trainer.net, source, partial=True)   # --partial: the shared tensors, the rest as drawn
    weights, _ = load_any(source)
    for name, value in trainer.net.state_dict().items():
        assert np.array_equal(value, weights[name] if name in weights else before[name]), name
    assert main(["run", str(exp), "--init-weights", str(source.parent), "--partial", "--quiet",
                 "--out", str(tmp_path / "partial"), "--steps", "1"]) == 0   # a run folder is accepted too


# ----------------------------------------------------------------------------- class 11: export format


@pytest.mark.parametrize("fmt, name, written", [
    ("npz", "x.safetensors", None), ("safetensors", "x.npz", None), ("onnx", "x.npz", None),
    ("npz", "x.bin", None), (None, "x.bin", None), ("keras", "x.h5", None),
    (None, "x.npz", "npz"), (None, "x.safetensors", "safetensors"), (None, "x.onnx", "onnx"),
    ("npz", "x.npz", "npz"),
])
def test_export_format_agrees_with_the_file_name(tmp_path, capsys, run_folder, fmt, name, written):
    argv = ["export", run_folder, "--out", tmp_path / name] + (["--format", fmt] if fmt else [])
    if written is None:
        error_line(capsys, argv, name)
        assert not (tmp_path / name).exists()
        return
    assert main([str(a) for a in argv]) == 0
    if written != "onnx":
        tensors, _ = load_any(tmp_path / name)   # readable back: the bytes match the name
        assert "layers.0.kernel" in tensors


# ----------------------------------------------------------------------------- class 12: the smaller ones


def test_paths_that_are_folders(tmp_path, capsys, run_folder):
    error_line(capsys, ["predict", run_folder, tmp_path], str(tmp_path), "is a folder")
    error_line(capsys, ["predict", tmp_path, run_folder / "history.csv"], str(tmp_path), "not a run folder")
    error_line(capsys, ["run", write_json(tmp_path / "e.json", tiny()), "--init-weights", tmp_path, "--quiet",
                        "--out", tmp_path / "out"], str(tmp_path), "not a run folder")


@pytest.mark.parametrize("options, fragment", [
    (["--max-lr", "inf"], "--max-lr must be a finite number"), (["--max-lr", "nan"], "--max-lr"),
    (["--min-lr", "0"], "--min-lr"), (["--min-lr", "-1"], "--min-lr"), (["--max-lr", "1e9"], "--max-lr"),
    (["--steps", "1"], "--steps"), (["--steps", "9"], "--steps"), (["--min-lr", "1", "--max-lr", "0.1"], "--min-lr"),
])
def test_lr_find_options_keep_the_schema_bounds(tmp_path, capsys, options, fragment):
    error_line(capsys, ["lr-find", write_json(tmp_path / "e.json", tiny()), *options], fragment)


@pytest.mark.parametrize("argv, fragment", [
    (["--checkpoint-every", "0"], "--checkpoint-every"), (["--checkpoint-every", "nan"], "--checkpoint-every"),
    (["--partial"], "--partial applies to --init-weights"),
])
def test_run_options_out_of_range(tmp_path, capsys, argv, fragment):
    error_line(capsys, ["run", write_json(tmp_path / "e.json", tiny()), "--quiet", "--out", tmp_path / "out",
                        *argv], fragment)
    assert not (tmp_path / "out").exists()


def test_a_utf8_bom_is_accepted_in_json_as_in_csv(tmp_path, capsys):
    from engine.arena.race import load_arena_preset, arena_preset_paths

    exp = tmp_path / "bom.json"
    exp.write_bytes(b"\xef\xbb\xbf" + json.dumps(tiny()).encode())
    assert main(["run", str(exp), "--quiet", "--out", str(tmp_path / "run"), "--steps", "2"]) == 0
    arena = tmp_path / "arena.json"
    arena.write_bytes(b"\xef\xbb\xbf" + next(iter(arena_preset_paths().values())).read_bytes())
    load_arena_preset(arena)


@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5, 3.0])
def test_ctrl_c_while_loading_prints_no_traceback(tmp_path, delay):
    """Ctrl-C at any moment of the start (imports, the experiment, the data, compiling): one line
    ("interrupted", status 130) or, once the run is under way, a clean stop (status 0)."""
    big = tmp_path / "big.csv"
    rng = np.random.default_rng(0)
    np.savetxt(big, np.column_stack([rng.normal(size=(60_000, 20)), np.arange(60_000) % 2]), delimiter=",",
               fmt="%.5f")
    exp = write_json(tmp_path / "e.json", tiny(data={"name": "csv", "path": str(big)}, epochs=100))  # outlasts 3 s
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", str(exp), "--quiet", "--out",
                             str(tmp_path / "out")], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert "Traceback" not in err and proc.returncode in (0, 130), (proc.returncode, err)


# ----------------------------------------------------------------------------- class 3: memory


def _npz_data(tmp_path, rows, columns):
    x = np.random.default_rng(0).normal(size=(rows, columns)).astype(np.float32)
    np.savez(tmp_path / "big.npz", x=x, y=np.arange(rows) % 2)
    return {"name": "npz", "path": str(tmp_path / "big.npz")}


MEMORY_CASES = {   # (experiment, limit in MB, the part that should be named first)
    "batch x units workspace": (lambda t: tiny(data={"name": "moons", "n_samples": 4000},
                                               layers=[{"units": 20000}], batch_size=4000), 400,
                                "training batch workspace"),
    "evaluation workspace": (lambda t: tiny(data={"name": "moons", "n_samples": 2000}, layers=[{"units": 40000}],
                                            batch_size=1, probe_size=1), 500, "evaluation workspace"),
    "probe workspace": (lambda t: tiny(data={"name": "moons", "n_samples": 20000}, layers=[{"units": 5000}],
                                       batch_size=1, probe_size=18000), 1000, "probe workspace"),
    "float64 copy of the data": (lambda t: tiny(data=_npz_data(t, 30000, 400), dtype="float64"), 80,
                                 "training data as the kernels read it"),
}


@pytest.mark.parametrize("case", list(MEMORY_CASES))
def test_a_run_too_large_for_memory_is_refused_before_allocating(tmp_path, monkeypatch, case):
    make, limit, largest = MEMORY_CASES[case]
    monkeypatch.setenv("DESCENT_MEMORY_LIMIT_MB", str(limit))
    request = JobRequest(resolve_experiment(make(tmp_path)), tmp_path / "out")
    with pytest.raises(ExperimentError) as err:
        list(run_job(request))
    message = str(err.value)
    assert f"would need about" in message and f"({largest} " in message
    assert f"limit of {limit / 1024:.1f} GiB" in message or f"limit of {limit:.1f} MiB" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("executor", ["inprocess", "pool"])
def test_a_comparison_too_large_for_memory_leaves_no_folder(tmp_path, monkeypatch, executor):
    make, limit, largest = MEMORY_CASES["batch x units workspace"]
    monkeypatch.setenv("DESCENT_MEMORY_LIMIT_MB", str(limit))
    exp = dict(make(tmp_path), compare={"variants": [{"name": "a"}, {"name": "b"}], "seeds": 1})
    request = JobRequest(resolve_experiment(exp), tmp_path / "out", executor=executor, workers=1)
    with pytest.raises(ExperimentError, match=largest):
        list(run_job(request))
    assert not (tmp_path / "out").exists()


def test_the_issue_example_through_the_command_line(tmp_path):
    """1e6 samples, one 100,000-unit layer, batch 1e6: refused with the estimate (about 2 TiB)."""
    exp = write_json(tmp_path / "e.json", tiny(data={"name": "moons", "n_samples": 1_000_000},
                                                layers=[{"units": 100_000}], batch_size=1_000_000, epochs=1))
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "run", str(exp), "--quiet", "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "TiB of memory (training batch workspace" in result.stderr and "more than the limit" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_frozen_layer_cache_too_large_is_refused_before_computing_it(monkeypatch):
    from engine.data import load_dataset
    from engine.training import transfer as T
    from engine.training.network import Network

    exp = resolve_experiment(tiny(data={"name": "moons", "n_samples": 5000},
                                  layers=[{"units": 10000, "activation": "relu", "trainable": False}]))
    data = load_dataset(exp["data"], 1)
    net = Network(exp, 2, "classification", 2, 1)
    net.initialize(1)
    monkeypatch.setenv("DESCENT_MEMORY_LIMIT_MB", "100")
    with pytest.raises(ExperimentError, match=r"cached phase .* \(frozen-layer feature cache 19\d\.\d MiB"):
        T.cached_phase(net, exp, data)


def test_monte_carlo_dropout_beyond_memory(tmp_path, capsys, run_folder, monkeypatch):
    np.savez(tmp_path / "in.npz", x=np.ones((20000, 2)))
    monkeypatch.setenv("DESCENT_MEMORY_LIMIT_MB", SMALL_LIMIT_MB)
    error_line(capsys, ["predict", run_folder, tmp_path / "in.npz", "--mc-dropout", "5000"],
               "predicting 20,000 rows", "Monte Carlo dropout samples", "--mc-dropout")


def test_a_bad_memory_limit_variable_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DESCENT_MEMORY_LIMIT_MB", "lots")
    error_line(capsys, ["run", write_json(tmp_path / "e.json", tiny()), "--quiet", "--out", tmp_path / "out"],
               "DESCENT_MEMORY_LIMIT_MB='lots'", "positive number")


# ----------------------------------------------------------------------------- the window says the same


WINDOW_CASES = ["memory", "npz header", "float32 column", "init weights"]


@pytest.mark.parametrize("case", WINDOW_CASES)
def test_the_window_shows_the_command_lines_message(tmp_path, capsys, qtbot, monkeypatch, run_folder, case):
    from engine.events import RunFailed
    from gui.worker import TrainingWorker, WorkerJob

    if case == "memory":
        monkeypatch.setenv("DESCENT_MEMORY_LIMIT_MB", "400")
        exp, extra = MEMORY_CASES["batch x units workspace"][0](tmp_path), {}
    elif case == "npz header":
        argv, _ = _data_claim(tmp_path, "x")
        exp, extra = json.loads(Path(argv[1]).read_text()), {}
    elif case == "float32 column":
        exp, extra = tiny(data=_csv(tmp_path, "a,b,y\n1,2,0\n3,1e39,1\n5,6,0\n7,8,1\n")), {}
    else:
        source = _weights_of(tmp_path, [{"units": 8, "activation": "tanh", "batch_norm": "before"}], "source")
        exp, extra = tiny(), {"init_weights": str(source)}
    path = write_json(tmp_path / "w.json", exp)
    line = error_line(capsys, ["run", path, "--quiet", "--out", tmp_path / "cli"]
                      + (["--init-weights", extra["init_weights"]] if extra else []))
    worker, events = TrainingWorker(), []
    worker.batch.connect(lambda job_id, batch: events.extend(batch))
    from engine.spec.experiment import load_experiment
    worker.run(WorkerJob(1, JobRequest(load_experiment(str(path)), tmp_path / "window", **extra)))
    failed = [e for e in events if isinstance(e, RunFailed)]
    assert len(failed) == 1 and "error: " + failed[0].message == line
