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
                              str(tmp_path / "a" / "weights.npz"))
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
