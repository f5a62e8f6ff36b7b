"""Resuming a run from its checkpoint ends with the same weights as a run
that was never interrupted, bit for bit (dropout masks, RReLU slopes,
shuffling, BN statistics, optimizer moments and schedules included)."""
import json

import numpy as np
import pytest

from engine.cli import main
from engine.control import RunControl
from engine.errors import WeightsError
from engine.events import RunFinished, StepMetrics
from engine.spec.experiment import resolve_experiment
from engine.formats import load_any
from engine.formats.checkpoint import load_checkpoint, resume_trainer, save_checkpoint
from engine.formats.runstore import RunWriter
from engine.training.trainer import Trainer

BASE = {
    "name": "resume", "seed": 11, "data": {"name": "moons", "n_samples": 300},
    "model": {"layers": [{"units": 16, "activation": "rrelu", "batch_norm": "before", "dropout": 0.2},
                         {"units": 8, "activation": "prelu", "batch_norm": "after", "dropout": 0.1}]},
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "training": {"epochs": 4, "batch_size": 32, "shuffle": True, "log_every": 1, "dtype": "float64"},
}

VARIANTS = {
    "adam+performance+early_stopping": dict(schedule={"name": "performance", "patience": 1},
                                            training=dict(BASE["training"], early_stopping={"patience": 20})),
    "nesterov+onecycle+float32": dict(optimizer={"name": "nesterov", "learning_rate": 0.05},
                                      schedule={"name": "onecycle"},
                                      training=dict(BASE["training"], dtype="float32")),
    "rmsprop+exponential+clipping": dict(optimizer={"name": "rmsprop", "learning_rate": 0.005, "clipnorm": 1.0},
                                         schedule={"name": "exponential", "s": 20}),
}


def experiment(**sections):
    return resolve_experiment(dict(BASE, **sections))


def run(trainer, stop_at=None):
    """Run to the end, or stop (as the Stop button does) once ``stop_at`` steps are done."""
    control = RunControl()
    losses = {}
    for event in trainer.run(control):
        if isinstance(event, StepMetrics):
            losses[event.step] = event.loss
            if stop_at is not None and event.step >= stop_at:
                control.stop()
    assert isinstance(event, RunFinished)
    return event, losses


def assert_same_state(a, b):
    for name, value in a.net.state_dict().items():
        assert np.array_equal(value, b.net.state_dict()[name]), name
    assert np.array_equal(a.opt_state.slots, b.opt_state.slots)
    assert a.step == b.step and a.epoch == b.epoch


@pytest.fixture(scope="module", params=list(VARIANTS))
def uninterrupted(request):
    exp = experiment(**VARIANTS[request.param])
    trainer = Trainer(exp)
    event, losses = run(trainer)
    assert event.status == "finished"
    return exp, trainer, losses


@pytest.mark.parametrize("stop_at", [1, 5, 9, 10, 23])  # 9 steps per epoch: mid-epoch and on boundaries
def test_stop_and_resume_equals_uninterrupted(uninterrupted, stop_at):
    exp, full, full_losses = uninterrupted
    first = Trainer(exp)
    event, _ = run(first, stop_at)
    assert event.status == "stopped" and first.step == stop_at
    resumed = Trainer(exp)
    resumed.restore(first.checkpoint())
    event, losses = run(resumed)
    assert event.status == "finished" and event.summary["resumed_at_step"] == stop_at
    assert_same_state(resumed, full)
    assert all(losses[s] == full_losses[s] for s in losses)  # the same batches, masks and slopes


@pytest.mark.parametrize("limit", [7, 18, 25])
def test_step_limit_then_resume_equals_uninterrupted(uninterrupted, limit):
    exp, full, _ = uninterrupted
    if exp["schedule"]["name"] == "onecycle":
        pytest.skip("1cycle's rates depend on the total number of steps, which a step limit changes")
    first = Trainer(exp, max_steps=limit)
    event, _ = run(first)
    assert event.step == limit
    resumed = Trainer(exp)
    resumed.restore(first.checkpoint())
    run(resumed)
    assert_same_state(resumed, full)


def test_checkpoint_file_round_trip(uninterrupted, tmp_path):
    exp, full, _ = uninterrupted
    first = Trainer(exp)
    run(first, 13)
    path = save_checkpoint(tmp_path / "checkpoint.npz", first.checkpoint(), exp, "stopped")
    with np.load(path, allow_pickle=False) as z:  # plain arrays and JSON, no pickle
        assert json.loads(str(z["__metadata__"]))["state"]["step"] == 13
    resumed = resume_trainer(path, exp)
    run(resumed)
    assert_same_state(resumed, full)


def test_extending_epochs_equals_a_longer_run():
    short, long = experiment(), experiment(training=dict(BASE["training"], epochs=6))
    first = Trainer(short)
    run(first)
    resumed = Trainer(long)
    resumed.restore(first.checkpoint())
    run(resumed)
    full = Trainer(long)
    run(full)
    assert_same_state(resumed, full)


# ----------------------------------------------------------------------------- command line

def weights_of(folder):
    weights, _ = load_any(folder / "weights.safetensors")
    return weights


def test_cli_resume_equals_uninterrupted(tmp_path):
    exp_path = tmp_path / "exp.json"
    exp_path.write_text(json.dumps(dict(BASE, training=dict(BASE["training"], log_every=None))))
    assert main(["run", str(exp_path), "--out", str(tmp_path / "full"), "--quiet"]) == 0
    assert main(["run", str(exp_path), "--out", str(tmp_path / "part"), "--steps", "14", "--quiet"]) == 0
    assert (tmp_path / "part" / "checkpoint.npz").is_file()
    assert main(["run", str(exp_path), "--resume", str(tmp_path / "part"), "--out", str(tmp_path / "rest"),
                 "--quiet"]) == 0
    full, rest = weights_of(tmp_path / "full"), weights_of(tmp_path / "rest")
    assert full.keys() == rest.keys() and all(np.array_equal(full[k], rest[k]) for k in full)
    summary = json.loads((tmp_path / "rest" / "summary.json").read_text())
    assert summary["resumed_at_step"] == 14 and summary["steps"] == 36


def test_cli_resume_errors(tmp_path, capsys):
    exp_path = tmp_path / "exp.json"
    exp_path.write_text(json.dumps(BASE))
    assert main(["run", str(exp_path), "--out", str(tmp_path / "a"), "--steps", "3", "--quiet"]) == 0
    assert main(["run", str(exp_path), "--out", str(tmp_path / "b"), "--steps", "3", "--quiet",
                 "--no-checkpoint"]) == 0
    assert not (tmp_path / "b" / "checkpoint.npz").exists()
    capsys.readouterr()

    def error(*argv):
        assert main(["run", *argv, "--quiet"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:")
        return lines[0]

    assert "checkpoint.npz" in error(str(exp_path), "--resume", str(tmp_path / "b"))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dict(BASE, optimizer={"name": "adam", "learning_rate": 0.02})))
    assert "optimizer.learning_rate" in error(str(other), "--resume", str(tmp_path / "a"))
    assert "exclude" in error(str(exp_path), "--resume", str(tmp_path / "a"), "--init-weights",
                              str(tmp_path / "a" / "weights.safetensors"))
    (tmp_path / "a" / "checkpoint.npz").write_bytes(b"PK\x03\x04 broken")
    assert "checkpoint" in error(str(exp_path), "--resume", str(tmp_path / "a"))


def test_damaged_or_foreign_checkpoints(tmp_path):
    exp = experiment()
    trainer = Trainer(exp)
    run(trainer, 4)
    ckpt = trainer.checkpoint()
    ckpt["tensors"]["optimizer.slots"][0, 0] = np.nan
    path = save_checkpoint(tmp_path / "nan.npz", ckpt, exp)
    with pytest.raises(WeightsError, match="NaN"):
        load_checkpoint(path)
    weights_only = tmp_path / "w.npz"
    np.savez(weights_only, **trainer.net.state_dict())
    with pytest.raises(WeightsError, match="not a Descent checkpoint"):
        load_checkpoint(weights_only)
    other = Trainer(experiment(model={"layers": [{"units": 5}]}))
    with pytest.raises(WeightsError):
        other.restore(trainer.checkpoint())


def test_diverged_run_is_not_resumable(tmp_path):
    exp = experiment()
    trainer = Trainer(exp)
    writer = RunWriter(tmp_path, "test")
    writer.attach(trainer)
    for event in trainer.run(RunControl()):
        if isinstance(event, RunFinished):
            event = RunFinished(event.run_id, "diverged", "test", event.step, event.epoch, event.summary,
                                event.weights)
        writer.handle(event)
    with pytest.raises(WeightsError, match="diverged"):
        resume_trainer(tmp_path, exp)


def test_checkpoint_refuses_the_middle_of_an_epoch():
    trainer = Trainer(experiment())
    events = trainer.run(RunControl())
    for event in events:
        if isinstance(event, StepMetrics) and event.step == 4:
            break
    with pytest.raises(RuntimeError, match="middle of an epoch"):
        trainer.checkpoint()


# ----------------------------------------------------------------------------- issue 13: budgets, folders, kills


def _cli(tmp_path, *argv):
    exp_path = tmp_path / "exp.json"
    if not exp_path.exists():
        exp_path.write_text(json.dumps(BASE))
    return main(["run", str(exp_path), "--quiet", *map(str, argv)])


def _one_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("budget", [["--steps", "5"], ["--steps", "14"], ["--epochs", "1"]])
def test_resume_with_its_budget_used_up_is_an_input_error(tmp_path, capsys, budget):
    assert _cli(tmp_path, "--out", tmp_path / "part", "--steps", "14") == 0
    before = (tmp_path / "part" / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    for out in (tmp_path / "new", tmp_path / "part"):   # a new folder, and its own
        assert _cli(tmp_path, "--resume", tmp_path / "part", "--out", out, *budget) == 2
        line = _one_error(capsys)
        assert "already trained 14 steps" in line and budget[0] in line.replace("training.epochs", "--epochs")
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "part" / "checkpoint.npz").read_bytes() == before
    assert json.loads((tmp_path / "part" / "summary.json").read_text())["status"] == "finished"


def _comparison(tmp_path):
    path = tmp_path / "cmp.json"
    path.write_text(json.dumps(dict(BASE, compare={"variants": [{"name": "a"}, {"name": "b", "overrides": {
        "optimizer": {"name": "sgd", "learning_rate": 0.05}}}], "seeds": 1})))
    return path


@pytest.mark.parametrize("holds", ["a run", "a comparison", "a file of the user's"])
@pytest.mark.parametrize("job", ["single", "compared"])
def test_out_onto_a_folder_that_holds_something(tmp_path, capsys, holds, job):
    folder = tmp_path / "out"
    if holds == "a run":
        assert _cli(tmp_path, "--out", folder, "--steps", "3") == 0
    elif holds == "a comparison":
        assert main(["run", str(_comparison(tmp_path)), "--out", str(folder), "--quiet", "--steps", "3",
                     "--workers", "1"]) == 0
    else:
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    argv = ["run", str(tmp_path / "exp.json" if job == "single" else _comparison(tmp_path)), "--quiet",
            "--out", str(folder), "--steps", "2"] + (["--workers", "1"] if job == "compared" else [])
    (tmp_path / "exp.json").write_text(json.dumps(BASE))
    capsys.readouterr()
    assert main(argv) == 2
    line = _one_error(capsys)
    assert "already holds" in line and "--overwrite" in line
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert main(argv + ["--overwrite"]) == 0   # what Descent wrote goes; the user's file stays
    left = {p.name for p in folder.rglob("*")}
    assert ("notes.txt" in left) == (holds == "a file of the user's")
    if job == "single":
        assert "checkpoint.npz" in left and not any(p.is_dir() for p in folder.iterdir())
    else:
        assert "checkpoint.npz" not in left and {"a-seed11", "b-seed11", "comparison.json"} <= left


def test_overwrite_leaves_no_checkpoint_of_another_experiment(tmp_path):
    folder = tmp_path / "out"
    assert _cli(tmp_path, "--out", folder, "--steps", "3") == 0
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dict(BASE, name="other", optimizer={"name": "sgd", "learning_rate": 0.1})))
    assert main(["run", str(other), "--quiet", "--out", str(folder), "--overwrite", "--no-checkpoint",
                 "--steps", "2"]) == 0
    assert not (folder / "checkpoint.npz").exists()
    assert json.loads((folder / "experiment.json").read_text())["name"] == "other"


def _columns(folder, name, columns):
    import csv
    with open(folder / name, newline="") as f:
        rows = list(csv.DictReader(f))
    return [[row[c] for c in columns] for row in rows]


@pytest.mark.parametrize("stop", [5, 14, 18, 27])   # 9 steps per epoch: mid-epoch and on boundaries
def test_resume_into_its_own_folder_keeps_the_history(tmp_path, stop):
    assert _cli(tmp_path, "--out", tmp_path / "full") == 0
    assert _cli(tmp_path, "--out", tmp_path / "part", "--steps", stop) == 0
    assert _cli(tmp_path, "--resume", tmp_path / "part", "--out", tmp_path / "part") == 0
    for name, columns in (("history.csv", ["step", "epoch", "loss", "grad_norm_0"]),
                          ("epochs.csv", ["epoch", "step", "train_loss", "val_loss", "val_accuracy"])):
        assert _columns(tmp_path / "part", name, columns) == _columns(tmp_path / "full", name, columns), name
    full, part = weights_of(tmp_path / "full"), weights_of(tmp_path / "part")
    assert all(np.array_equal(full[k], part[k]) for k in full)


def _periodic(exp, folder, keep_at=()):
    """Train with a checkpoint at every diagnostics record; copies of it as it stood at the steps
    ``keep_at``; the final event."""
    from engine.jobs.runs import trainer_events

    trainer = Trainer(exp)
    writer = RunWriter(folder, "test")
    writer.attach(trainer, every_minutes=1e-9)
    kept = {}
    for event in trainer_events(trainer, RunControl(), writer):
        if isinstance(event, StepMetrics) and event.step in keep_at and (folder / "checkpoint.npz").exists():
            meta = load_checkpoint(folder / "checkpoint.npz")[1]
            if meta["state"]["step"] == event.step:
                kept[event.step] = (folder / "checkpoint.npz").read_bytes()
    return event, kept


def test_periodic_checkpoints_resume_bit_for_bit(uninterrupted, tmp_path):
    exp, full, _ = uninterrupted
    stops = (1, 4, 8, 10, 13, 22, 35)   # 9 steps per epoch, 36 in all: the last of an epoch/run has none
    final, kept = _periodic(exp, tmp_path / "run", stops)
    assert sorted(kept) == [s for s in stops if s % 9 != 0 and s != 36]
    for name, value in final.weights.items():   # checkpoints on the way do not change the weights
        assert np.array_equal(value, full.net.state_dict()[name]), name
    for step, data in kept.items():
        path = tmp_path / f"ckpt-{step}.npz"
        path.write_bytes(data)
        resumed = resume_trainer(path, exp)
        run(resumed)
        assert_same_state(resumed, full)


def test_a_killed_run_resumes_from_its_last_periodic_checkpoint(tmp_path):
    import csv
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    long = dict(BASE, training=dict(BASE["training"], epochs=60))
    (tmp_path / "exp.json").write_text(json.dumps(long))
    assert _cli(tmp_path, "--out", tmp_path / "full") == 0
    folder = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(root / "main.py"), "run", str(tmp_path / "exp.json"), "--quiet",
                             "--out", str(folder), "--checkpoint-every", "0.0005"], cwd=root)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            rows = (folder / "history.csv").read_text().count("\n") if (folder / "history.csv").exists() else 0
            if rows > 60 and (folder / "checkpoint.npz").exists():
                break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert json.loads((folder / "summary.json").read_text())["status"] == "running"   # killed mid-run
    at = load_checkpoint(folder / "checkpoint.npz")[1]["state"]["step"]
    assert 0 < at < 540
    assert _cli(tmp_path, "--resume", folder, "--out", folder) == 0
    full, resumed = weights_of(tmp_path / "full"), weights_of(folder)
    assert all(np.array_equal(full[k], resumed[k]) for k in full)
    with open(folder / "history.csv", newline="") as f:
        steps = [int(float(r["step"])) for r in csv.DictReader(f)]
    assert steps == list(range(1, 541))   # the rows after the checkpoint were written once, again
    assert json.loads((folder / "summary.json").read_text())["resumed_at_step"] == at
