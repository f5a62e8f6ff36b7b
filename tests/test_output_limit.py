"""A run that would write more weights and checkpoint than the limit is refused before it trains,
with one message saying how to write less or allow it; one weights file on request."""
import json

from engine.cli import main
from engine.limits import DEFAULT_OUTPUT_LIMIT_MB, output_limit, run_output_estimate

EXP = {"name": "wide", "seed": 1, "data": {"name": "moons", "n_samples": 120, "noise": 0.1},
       "model": {"layers": [{"units": 64, "activation": "relu"}]},
       "optimizer": {"name": "adam", "learning_rate": 0.01}, "training": {"epochs": 1, "batch_size": 20}}


def write(tmp_path):
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(EXP))
    return str(path)


def test_the_estimate_counts_each_weights_copy_and_the_checkpoint_with_its_slots():
    est = run_output_estimate(1000, 4, 2, ("weights.npz", "weights.safetensors"), checkpoint=True)
    assert est.total == 4000 + 4000 + 4000 * 3
    assert run_output_estimate(1000, 4, 2, ("weights.safetensors",), checkpoint=False).total == 4000


def test_the_limit_is_200_mb_unless_configured(monkeypatch):
    monkeypatch.delenv("DESCENT_WEIGHTS_LIMIT_MB", raising=False)
    assert output_limit() == DEFAULT_OUTPUT_LIMIT_MB * 10**6 == 200 * 10**6
    monkeypatch.setenv("DESCENT_WEIGHTS_LIMIT_MB", "1.5")
    assert output_limit() == 1_500_000


def test_a_run_over_the_limit_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DESCENT_WEIGHTS_LIMIT_MB", "0.001")     # 1 kB: the 64-unit net writes ~10 kB
    out = tmp_path / "out"
    assert main(["run", write(tmp_path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "more than the limit of" in err and "--write-limit-mb" in err and "checkpoint.npz" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_allowed_by_the_flag_and_written_once_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("DESCENT_WEIGHTS_LIMIT_MB", "0.001")
    out = tmp_path / "out"
    assert main(["run", write(tmp_path), "--out", str(out), "--quiet", "--write-limit-mb", "0",
                 "--one-weights-file", "--no-checkpoint"]) == 0      # the old flag: the default now
    assert (out / "weights.safetensors").is_file()
    assert not (out / "weights.npz").exists() and not (out / "checkpoint.npz").exists()
    assert main(["run", write(tmp_path), "--out", str(tmp_path / "neg"), "--write-limit-mb", "-1"]) == 2


def test_the_message_offers_one_weights_file_only_when_two_would_be_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DESCENT_WEIGHTS_LIMIT_MB", "0.001")
    assert main(["run", write(tmp_path), "--out", str(tmp_path / "a"), "--quiet", "--weights-format", "both"]) == 2
    assert "--weights-format safetensors" in capsys.readouterr().err
    assert main(["run", write(tmp_path), "--out", str(tmp_path / "b"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--weights-format" not in err and "--no-checkpoint" in err
