"""A Stop takes effect within about a second, even on a huge network (issue 14, item 3).

What used to keep an 88.6-million-parameter run at "stopping..." for a minute was the work after
the last step: the final test-set evaluation, then writing the files.  A stopped run now leaves
out a final evaluation costing more than engine.limits.STOP_WORK_MACS multiply-adds (counted, never
timed: the same experiment gives the same summary on every machine), says so instead of giving a
number, and announces each final file before writing it.  No test here times anything: the budget
is moved around the run's own cost, and the writer is watched between its files."""
import io
import json
import math

import numpy as np
import pytest

import engine.limits as limits
from engine.control import RunControl
from engine.events import DecisionSurface, JobFinished, RunFinished, StepMetrics, WritingFiles
from engine.jobs.console import Progress
from engine.jobs.runner import JobRequest, run_job
from engine.limits import STOP_WORK_MACS, stop_work_skipped
from engine.spec.experiment import resolve_experiment
from engine.training.diagnostics import Diagnostics
from engine.training.trainer import Trainer

TINY = {"name": "tiny-stop", "seed": 5, "data": {"name": "moons", "n_samples": 400, "noise": 0.1, "test_split": 0.2},
        "model": {"layers": [{"units": 16, "activation": "relu", "dropout": 0.2}]},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": 50, "batch_size": 10, "log_every": 5, "mc_dropout_samples": 20}}


def evaluated_splits(monkeypatch) -> list:
    """The splits the trainer evaluates from now on, in order."""
    seen = []
    real = Diagnostics.evaluate

    def spy(self, split):
        seen.append(split)
        return real(self, split)

    monkeypatch.setattr(Diagnostics, "evaluate", spy)
    return seen


def stopped_run(trainer: Trainer, after_records: int = 1) -> list:
    """Every event of ``trainer``'s run, stopped by the user at its ``after_records``-th diagnostics record."""
    control, events = RunControl(), []
    for event in trainer.run(control):
        events.append(event)
        if isinstance(event, StepMetrics) and sum(isinstance(e, StepMetrics) for e in events) == after_records:
            control.stop()
    return events


def test_the_rule_counts_multiply_adds_against_the_budget():
    assert stop_work_skipped("test set", 10_000, 266_200) is None            # Fashion-MNIST 784-300-100-10
    assert stop_work_skipped("test set", 1, STOP_WORK_MACS) is None           # the budget itself is spent
    reason = stop_work_skipped("test set", 10_000, 88_500_000)               # the 88.6 M-parameter net
    assert reason == ("test set not evaluated: the run was stopped, and 10,000 rows x 88,500,000 weights = 885 "
                      "billion multiply-adds, more than the 10 billion a stop waits for")
    assert "x 20 passes" in stop_work_skipped("uncertainty map", 10_000, 60_000, passes=20)
    assert stop_work_skipped("uncertainty map", 10_000, 60_000, passes=10) is None


def test_a_stopped_run_over_the_budget_leaves_out_the_test_set_and_says_why(monkeypatch):
    trainer = Trainer(resolve_experiment(TINY))
    trainer.pictures = False
    n_test = len(trainer.data.x_test)
    assert n_test > 0
    monkeypatch.setattr(limits, "STOP_WORK_MACS", n_test * trainer.kernel_weights - 1)   # one short of its cost
    seen = evaluated_splits(monkeypatch)
    finished = stopped_run(trainer)[-1]
    assert isinstance(finished, RunFinished) and finished.status == "stopped"
    assert "test" not in seen
    s = finished.summary
    assert math.isnan(s["test_accuracy"]) and math.isnan(s["test_loss"])
    assert s["test_skipped"].startswith("test set not evaluated: the run was stopped")
    assert f"{n_test:,} rows x {trainer.kernel_weights:,} weights" in s["test_skipped"]
    assert finished.reason == s["reason"] == f"stopped by the user at step {finished.step}; {s['test_skipped']}"
    weights = trainer.net.state_dict()   # the weights handed on are the net's, read-only
    assert all(np.array_equal(finished.weights[k], weights[k]) and not finished.weights[k].flags.writeable
               for k in weights)


def test_within_the_budget_a_stopped_run_keeps_its_test_figures(monkeypatch):
    trainer = Trainer(resolve_experiment(TINY))
    trainer.pictures = False
    monkeypatch.setattr(limits, "STOP_WORK_MACS", len(trainer.data.x_test) * trainer.kernel_weights)   # just enough
    seen = evaluated_splits(monkeypatch)
    finished = stopped_run(trainer)[-1]
    assert finished.status == "stopped" and seen[-1] == "test"
    assert 0 <= finished.summary["test_accuracy"] <= 1 and "test_skipped" not in finished.summary
    assert finished.reason == f"stopped by the user at step {finished.step}"


def test_the_default_budget_keeps_a_small_nets_figures_and_a_finished_run_always_evaluates(monkeypatch):
    small = Trainer(resolve_experiment(TINY))
    small.pictures = False
    assert math.isfinite(stopped_run(small)[-1].summary["test_accuracy"])    # a small net: cheap, kept
    monkeypatch.setattr(limits, "STOP_WORK_MACS", 0)
    done = Trainer(resolve_experiment(dict(TINY, training=dict(TINY["training"], epochs=1))))
    done.pictures = False
    finished = list(done.run())[-1]
    assert finished.status == "finished" and math.isfinite(finished.summary["test_accuracy"])  # nothing to hurry


def test_a_stopped_run_leaves_out_an_expensive_uncertainty_map_and_keeps_a_cheap_one(monkeypatch):
    def final_maps(budget):
        monkeypatch.setattr(limits, "STOP_WORK_MACS", budget)
        events = stopped_run(Trainer(resolve_experiment(TINY)))
        return [e for e in events if isinstance(e, DecisionSurface) and e.uncertainty is not None]

    trainer = Trainer(resolve_experiment(TINY))
    xs, ys, _ = trainer.diagnostics.grid
    cost = len(xs) * len(ys) * TINY["training"]["mc_dropout_samples"] * trainer.kernel_weights
    assert len(final_maps(cost)) == 1
    assert final_maps(cost - 1) == []


def test_the_run_folder_says_null_and_why_and_the_console_prints_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "STOP_WORK_MACS", 0)
    control, folder = RunControl(), tmp_path / "run"
    events = []
    for event in run_job(JobRequest(resolve_experiment(TINY), folder, pictures=False), control):
        events.append(event)
        if isinstance(event, StepMetrics):
            control.stop()
    assert isinstance(events[-1], JobFinished) and events[-1].stopped
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["test_accuracy"] is None and summary["test_loss"] is None
    assert summary["test_skipped"].startswith("test set not evaluated") and summary["test_skipped"] in summary["reason"]
    printed = io.StringIO()
    Progress(printed).handle(next(e for e in events if isinstance(e, RunFinished)))
    assert printed.getvalue().startswith("stopped: stopped by the user at step")
    assert "; test set not evaluated: the run was stopped" in printed.getvalue()


def test_each_final_file_is_announced_before_it_is_written(tmp_path):
    control, folder = RunControl(), tmp_path / "run"
    seen, announced = [], None
    for event in run_job(JobRequest(resolve_experiment(TINY), folder, pictures=False), control):
        if isinstance(event, StepMetrics):
            control.stop()
        if isinstance(event, WritingFiles):   # the run has ended; this file is not on disk yet
            name, announced = event.files[event.index][0], dict(event.files)
            seen.append((event.index, name, (folder / name).exists(),
                         json.loads((folder / "summary.json").read_text())["status"]))
            assert event.status == "stopped" and event.folder == str(folder)
        if isinstance(event, RunFinished):
            weights_bytes = sum(v.nbytes for v in event.weights.values())
            assert announced["weights.safetensors"] == weights_bytes
            assert announced["checkpoint.npz"] == weights_bytes * 3   # Adam: the weights, m and v
    assert seen == [(0, "weights.safetensors", False, "running"), (1, "checkpoint.npz", False, "running")]
    assert (folder / "weights.safetensors").is_file() and (folder / "checkpoint.npz").is_file()
    assert json.loads((folder / "summary.json").read_text())["status"] == "stopped"


@pytest.mark.parametrize("weights_files, files", [(("weights.safetensors", "weights.npz"),
                                                   ["weights.safetensors", "weights.npz"]),
                                                  (("weights.npz",), ["weights.npz"])])
def test_the_announced_files_follow_the_weights_format(tmp_path, weights_files, files):
    events = list(run_job(JobRequest(resolve_experiment(dict(TINY, training=dict(TINY["training"], epochs=1))),
                                     tmp_path / "run", pictures=False, checkpoint=False,
                                     weights_files=weights_files)))
    announced = [e for e in events if isinstance(e, WritingFiles)]
    assert [e.index for e in announced] == list(range(len(files)))
    assert [name for name, _ in announced[0].files] == files and announced[0].status == "finished"
    assert isinstance(events[events.index(announced[-1]) + 1], RunFinished)
