"""One weights copy per run folder by default (issue 14, item 3): ``weights.safetensors``, the file
PyTorch and Hugging Face users read; ``run --weights-format npz|both`` for the NPZ copy; every
reader takes a folder holding either file, so folders with only ``weights.npz`` still load, predict,
export, start a run and resume."""
import json

import numpy as np
import pytest

from engine.cli import main
from engine.errors import ExperimentError
from engine.formats import load_any, load_network
from engine.formats.runfolder import read_run, run_weights_file
from engine.formats.runlayout import DEFAULT_WEIGHTS_FILES, WEIGHTS_FORMATS, weights_files_for
from engine.jobs.runner import JobRequest, run_job
from engine.spec.experiment import resolve_experiment

EXP = {"name": "tiny-weights", "seed": 2, "data": {"name": "blobs", "n_samples": 200, "n_classes": 3},
       "model": {"layers": [{"units": 8, "activation": "relu"}]},
       "optimizer": {"name": "adam", "learning_rate": 0.01}, "training": {"epochs": 2, "batch_size": 20}}
WEIGHT_NAMES = {"weights.safetensors", "weights.npz"}


def write(tmp_path, **changes) -> str:
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(dict(EXP, **changes)))
    return str(path)


def weights_in(folder) -> set:
    return {p.name for p in folder.iterdir()} & WEIGHT_NAMES


def same_tensors(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_run_folder_holds_one_weights_file_by_default(tmp_path):
    assert DEFAULT_WEIGHTS_FILES == ("weights.safetensors",)
    out = tmp_path / "run"
    assert main(["run", write(tmp_path), "--out", str(out), "--quiet"]) == 0
    assert weights_in(out) == {"weights.safetensors"} and (out / "checkpoint.npz").is_file()


@pytest.mark.parametrize("fmt, expected", [("both", WEIGHT_NAMES), ("npz", {"weights.npz"}),
                                           ("safetensors", {"weights.safetensors"})])
def test_the_weights_format_picks_the_files_with_the_same_tensors_and_metadata(tmp_path, fmt, expected):
    out = tmp_path / fmt
    assert main(["run", write(tmp_path), "--out", str(out), "--quiet", "--weights-format", fmt]) == 0
    assert weights_in(out) == expected
    if fmt == "both":
        (a, meta_a), (b, meta_b) = load_any(out / "weights.safetensors"), load_any(out / "weights.npz")
        assert same_tensors(a, b) and meta_a == meta_b


def test_every_kind_of_job_follows_the_weights_format(tmp_path):
    compared = resolve_experiment(dict(EXP, compare={"variants": [
        {"name": "a"}, {"name": "b", "overrides": {"optimizer": {"name": "sgd", "learning_rate": 0.1}}}], "seeds": 1}))
    list(run_job(JobRequest(compared, tmp_path / "cmp", max_steps=3, workers=1,
                            weights_files=WEIGHTS_FORMATS["both"])))
    runs = sorted(p for p in (tmp_path / "cmp").iterdir() if p.is_dir())
    assert len(runs) == 2 and all(weights_in(r) == WEIGHT_NAMES for r in runs)
    list(run_job(JobRequest(compared, tmp_path / "one", max_steps=3, workers=1)))
    assert all(weights_in(r) == {"weights.safetensors"} for r in (tmp_path / "one").iterdir() if r.is_dir())
    staged = resolve_experiment(dict(EXP, stages={"seeds": 1, "list": [
        {"name": "a"}, {"name": "b", "reuse": {"from": "a", "layers": "all_but_output"}}]}))
    list(run_job(JobRequest(staged, tmp_path / "st", max_steps=3, weights_files=WEIGHTS_FORMATS["npz"])))
    written = sorted(p.relative_to(tmp_path / "st").as_posix() for p in (tmp_path / "st").rglob("weights.*"))
    assert written == ["seed-2/01-a/weights.npz", "seed-2/02-b/weights.npz"]


@pytest.mark.parametrize("argv, fragments", [
    (["--weights-format", "pt"], ["--weights-format must be one of safetensors, npz, both", "'pt'"]),
    (["--weights-format", "npz", "--one-weights-file"], ["--one-weights-file", "--weights-format npz",
                                                         "contradict"]),
])
def test_a_bad_weights_format_is_one_line_naming_the_option_and_the_choices(tmp_path, capsys, argv, fragments):
    out = tmp_path / "never"
    assert main(["run", write(tmp_path), "--out", str(out), "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and all(f in err[0] for f in fragments), err
    assert not out.exists()
    with pytest.raises(ExperimentError, match="must be one of"):
        weights_files_for("zip")
    with pytest.raises(ExperimentError, match="weights_files must be one of"):
        list(run_job(JobRequest(resolve_experiment(EXP), tmp_path / "x", weights_files=("weights.pt",))))


@pytest.fixture
def npz_only(tmp_path):
    """A run folder as older versions could leave it: weights.npz and no weights.safetensors."""
    out = tmp_path / "old"
    assert main(["run", write(tmp_path), "--out", str(out), "--quiet", "--weights-format", "both"]) == 0
    (out / "weights.safetensors").unlink()
    assert weights_in(out) == {"weights.npz"}
    return out


def test_a_folder_with_only_weights_npz_loads_predicts_and_exports(npz_only, tmp_path, capsys):
    assert run_weights_file(npz_only) == npz_only / "weights.npz"
    run = read_run(npz_only)
    assert run.weights_path == npz_only / "weights.npz" and run.metadata["experiment"]["name"] == "tiny-weights"
    net, _ = load_network(run_weights_file(npz_only))
    x = np.random.default_rng(0).normal(size=(5, 2))
    assert net.predict(x).shape == (5, 3)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    assert main(["predict", str(npz_only), str(tmp_path / "x.csv")]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert len(rows) == 5
    assert main(["export", str(npz_only), "--format", "safetensors", "--out", str(tmp_path / "w.safetensors")]) == 0
    assert same_tensors(load_any(tmp_path / "w.safetensors")[0], load_any(npz_only / "weights.npz")[0])
    assert main(["export", str(npz_only), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0


def test_a_folder_with_only_weights_npz_starts_and_resumes_runs(npz_only, tmp_path):
    exp = write(tmp_path)
    assert main(["run", exp, "--init-weights", str(npz_only), "--steps", "1", "--out", str(tmp_path / "a"),
                 "--quiet"]) == 0
    assert main(["run", exp, "--resume", str(npz_only), "--epochs", "3", "--out", str(tmp_path / "b"),
                 "--quiet"]) == 0
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["resumed_at_step"] > 0
