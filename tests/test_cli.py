"""The headless runner as a user meets it: files written, clear errors, exit codes."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout)


def write_experiment(tmp_path, **changes):
    exp = {"name": "tiny", "seed": 1, "data": {"name": "xor", "n_samples": 200},
           "model": {"layers": [{"units": 8, "activation": "tanh"}]},
           "optimizer": {"name": "sgd", "learning_rate": 0.1}, "training": {"epochs": 2, "batch_size": 20}}
    exp.update(changes)
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(exp))
    return path


def test_run_writes_a_complete_run_folder(tmp_path):
    out = tmp_path / "run"
    result = cli("run", str(write_experiment(tmp_path)), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    resolved = json.loads((out / "experiment.json").read_text())
    assert resolved["model"]["layers"][0]["initializer"] == "glorot_uniform"  # Table 11-1 default filled in
    assert resolved["training"]["early_stopping"] is None
    history = list(csv.DictReader((out / "history.csv").open()))
    assert history and {"step", "loss", "learning_rate", "grad_norm_0", "dead_fraction_0", "act_std_1"} <= set(history[0])
    epochs = list(csv.DictReader((out / "epochs.csv").open()))
    assert [int(r["epoch"]) for r in epochs] == [1, 2]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 2 * 9
    assert not (out / "weights.npz").exists()   # one weights copy by default: the safetensors file
    w = load_file(str(out / "weights.safetensors"))
    assert w["layers.0.kernel"].shape == (2, 8) and w["layers.1.kernel"].shape == (8, 2)


def test_init_weights_round_trip_and_shape_mismatch(tmp_path):
    first = tmp_path / "first"
    assert cli("run", str(write_experiment(tmp_path)), "--out", str(first), "--quiet").returncode == 0
    again = cli("run", str(write_experiment(tmp_path)), "--out", str(tmp_path / "b"), "--quiet",
                "--init-weights", str(first / "weights.safetensors"), "--steps", "1")
    assert again.returncode == 0, again.stderr
    wide = write_experiment(tmp_path, model={"layers": [{"units": 9, "activation": "tanh"}]})
    bad = cli("run", str(wide), "--quiet", "--init-weights", str(first), "--out", str(tmp_path / "c"))   # its folder
    assert bad.returncode == 2
    assert "layers.0.kernel" in bad.stderr and "(2, 8)" in bad.stderr and "(2, 9)" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("change,expected", [
    ({"optimizer": {"name": "adamm"}}, "did you mean 'adam'"),
    ({"optimizer": {"name": "sgd", "learning_rate": -1}}, "learning_rate"),
    ({"model": {"layers": [{"units": 0}]}}, "model.layers[0].units"),
    ({"model": {"layers": [{"units": 4, "dropout": 1.0}]}}, "dropout"),
    ({"model": {"layers": [{"unit": 4}]}}, "did you mean 'units'"),
    ({"trainig": {}}, "did you mean 'training'"),
    ({"data": {"name": "fashion_mnist", "path": "/nonexistent/folder"}}, "/nonexistent/folder"),
])
def test_bad_input_gives_one_clear_line_and_exit_2(tmp_path, change, expected):
    result = cli("run", str(write_experiment(tmp_path, **change)), "--quiet", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()  # nothing written half


def test_malformed_json_names_the_position(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",\n "seed": }')
    result = cli("run", str(path))
    assert result.returncode == 2 and "line 2" in result.stderr and "broken.json" in result.stderr


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("run", str(write_experiment(tmp_path)), "--quiet", "--out", str(blocker / "run"))
    assert result.returncode == 2 and str(blocker) in result.stderr and "Traceback" not in result.stderr


def test_presets_lists_the_shipped_experiments():
    result = cli("presets")
    assert result.returncode == 0
    assert "default" in result.stdout and "INVALID" not in result.stdout


def test_killed_run_leaves_valid_files_marked_interrupted(tmp_path):
    from engine.formats.runstore import read_run_status

    out = tmp_path / "killed"
    exp = write_experiment(tmp_path, training={"epochs": 100000, "batch_size": 20, "log_every": 1})
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", str(exp), "--out", str(out), "--quiet"],
                            cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            rows = (out / "history.csv").read_text().count("\n") if (out / "history.csv").exists() else 0
            if rows > 20:
                break
            time.sleep(0.05)
        assert rows > 20
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert read_run_status(out) == "interrupted"
    json.loads((out / "experiment.json").read_text())
    rows = list(csv.reader((out / "history.csv").open()))
    assert len(rows) > 20
    complete = [r for r in rows[1:] if len(r) == len(rows[0])]
    assert len(complete) >= len(rows) - 2  # at most the line being written is cut


def test_ctrl_c_stops_and_still_writes_weights(tmp_path):
    out = tmp_path / "stopped"
    exp = write_experiment(tmp_path, training={"epochs": 100000, "batch_size": 20, "log_every": 1})
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", str(exp), "--out", str(out), "--quiet"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (out / "history.csv").exists() or (out / "history.csv").read_text().count("\n") < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads((out / "summary.json").read_text())["status"] == "stopped"
    assert (out / "weights.safetensors").exists()


def test_relative_data_paths_are_anchored_to_the_experiment_file(tmp_path):
    from engine.errors import ExperimentError
    from engine.spec.experiment import load_experiment

    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "points.csv").write_text("a,b,label\n0,1,0\n1,0,1\n0,0,0\n1,1,1\n")
    good = folder / "good.json"
    good.write_text(json.dumps({"data": {"name": "csv", "path": "points.csv"}}))
    assert load_experiment(str(good))["data"]["path"] == str(folder / "points.csv")
    sneaky = folder / "sneaky.json"
    sneaky.write_text(json.dumps({"data": {"name": "csv", "path": "../../../etc/passwd"}}))
    with pytest.raises(ExperimentError, match="outside the experiment's folder"):
        load_experiment(str(sneaky))
