"""Sweeps run: the runner's 'sweep' job trains trials x seeds on any executor with the same weights and
files, streams a record per run and the summary, and the command line runs it (or refuses it, exit 2)."""
import copy
import csv
import io
import json

import pytest

from engine import cli
from engine.control import RunControl
from engine.errors import ExperimentError
from engine.events import JobFinished, RunStarted, SubRun, SweepFinished, SweepRecord
from engine.jobs.runner import SECTION_KINDS, JobRequest, job_kind, plan_job, run_job
from engine.jobs.sweep_report import read_sweep
from engine.spec.experiment import load_experiment, resolve_experiment
from engine.spec.sections import REPEATING_KEYS

from test_jobs import assert_same_weights, kinds, weights_of

SWEEP = {"name": "lr-sweep", "seed": 3, "data": {"name": "moons", "n_samples": 200, "noise": 0.1},
         "model": {"layers": [{"units": 8, "activation": "relu"}]},
         "optimizer": {"name": "sgd", "learning_rate": 0.05}, "training": {"epochs": 2, "batch_size": 20},
         "sweep": {"parameters": {"optimizer.learning_rate": {"log_grid": {"low": 0.01, "high": 0.1, "num": 2}}},
                   "seeds": 2}}
TIMING = {"wall_seconds", "wall_seconds_mean"}   # the only columns an executor may change


def csv_without_timing(path):
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert rows
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The same sweep trained in this process and on a pool of two: (events, folder) of each."""
    root = tmp_path_factory.mktemp("sweeps")
    exp = resolve_experiment(SWEEP)
    out = {}
    for name, options in (("inprocess", {"executor": "inprocess"}), ("pool", {"workers": 2})):
        events = list(run_job(JobRequest(exp, root / name, **options)))
        out[name] = events, root / name
    return out


# ----------------------------------------------------------------------------- the job


def test_a_sweep_yields_a_record_per_run_then_its_summary_and_writes_its_files(both):
    events, folder = both["inprocess"]
    assert kinds(events) == ["JobStarted"] + ["SweepRecord"] * 4 + ["SweepFinished", "JobFinished"]
    started = events[0]
    assert (started.kind, started.variants, started.seeds, started.runs, started.workers) == \
        ("sweep", ("lr0.01", "lr0.1"), (3, 4), 4, 1)
    records = events[1:5]
    assert [e.done for e in records] == [1, 2, 3, 4] and {e.total for e in records} == {4}
    # seed-major, as comparisons: every trial of the first seed first; the trial index names its trial
    assert [(e.record["variant"], e.record["seed"], e.trial) for e in records] == \
        [("lr0.01", 3, 0), ("lr0.1", 3, 1), ("lr0.01", 4, 0), ("lr0.1", 4, 1)]
    summary = events[-2].summary
    assert summary["kind"] == "sweep" and summary["workers"] == 1 and summary["seeds"] == [3, 4]
    assert summary["total_wall_seconds"] > 0 and events[-2].folder == str(folder)
    assert [e["statuses"] for e in summary["trials"]] == [{"finished": 2}] * 2
    # every trial of a seed starts from the same kernels and sees the same batches
    assert all(e["same_initial_weights_as_first"] and e["same_data_and_batches_as_first"] for e in summary["trials"])
    assert events[-1] == JobFinished("sweep", str(folder), stopped=False)
    for name in ("sweep.json", "sweep.csv", "sweep_trials.csv"):
        assert (folder / name).is_file(), name
    saved = read_sweep(folder)
    assert saved["ranking"] == summary["ranking"] and saved["workers"] == 1
    for trial, rate in (("lr0.01", 0.01), ("lr0.1", 0.1)):
        for seed in (3, 4):     # a normal run folder per trial and seed: the trial's experiment, its weights
            run = folder / f"{trial}-seed{seed}"
            saved_exp = json.loads((run / "experiment.json").read_text())
            assert (saved_exp["name"], saved_exp["seed"], saved_exp["optimizer"]["learning_rate"], saved_exp["sweep"]) \
                == (f"lr-sweep-{trial}", seed, rate, None)
            assert (run / "weights.safetensors").is_file() and (run / "epochs.csv").is_file()


def test_the_pool_writes_the_same_weights_and_files_as_this_process(both):
    (inproc, a), (pool, b) = both["inprocess"], both["pool"]
    assert pool[0].workers == 2 and pool[-2].summary["workers"] == 2
    assert_same_weights(weights_of(a), weights_of(b))
    for name in ("sweep.csv", "sweep_trials.csv"):
        assert csv_without_timing(a / name) == csv_without_timing(b / name), name
    # the same records whichever order the pool finished them in (timings aside; NaN compared as text)
    def records(events):
        return {(e.record["variant"], e.record["seed"]): json.dumps(
            {k: v for k, v in e.record.items() if k not in ("wall_seconds", "train_seconds")}, sort_keys=True)
            for e in events if isinstance(e, SweepRecord)}

    assert records(inproc) == records(pool) and len(records(pool)) == 4


def test_seeds_steps_and_epochs_apply_as_for_comparisons(tmp_path):
    exp = resolve_experiment(SWEEP)
    events = list(run_job(JobRequest(exp, tmp_path / "s", seeds=(7,), max_steps=3, workers=1)))
    records = [e.record for e in events if isinstance(e, SweepRecord)]
    assert [(r["variant"], r["seed"], r["steps"]) for r in records] == [("lr0.01", 7, 3), ("lr0.1", 7, 3)]
    assert events[-2].summary["seeds"] == [7] and (tmp_path / "s" / "lr0.1-seed7").is_dir()
    plan = plan_job(JobRequest(exp, None, epochs=1, seed=11))
    assert plan.kind == "sweep" and plan.seeds == (11,) and len(plan.runs) == 2
    assert {r.experiment["training"]["epochs"] for r in plan.runs} == {1}
    assert [r.experiment["optimizer"]["learning_rate"] for r in plan.runs] == [0.01, 0.1]


def test_the_race_streams_every_trial_at_the_first_seed(tmp_path):
    """The window's Train tab races a sweep's trials as it races a comparison's variants."""
    events = list(run_job(JobRequest(resolve_experiment(SWEEP), tmp_path / "race", race=True)))
    subs = [e for e in events if isinstance(e, SubRun)]
    assert [(s.variant, s.seed) for s in subs] == [("lr0.01", 3), ("lr0.1", 3)]
    assert sum(isinstance(e, RunStarted) for e in events) == 2
    assert isinstance(events[-2], SweepFinished) and events[-2].summary["seeds"] == [3]


def test_a_stopped_sweep_still_reports_and_writes_what_it_has(tmp_path):
    control = RunControl()
    events = []
    for event in run_job(JobRequest(resolve_experiment(SWEEP), tmp_path / "st", executor="inprocess"), control):
        events.append(event)
        if isinstance(event, SweepRecord):
            control.stop()
    assert events[-1].stopped and isinstance(events[-2], SweepFinished)
    statuses = [r["status"] for r in (e.record for e in events if isinstance(e, SweepRecord))]
    assert statuses[0] == "finished" and set(statuses[1:]) == {"stopped"}
    assert read_sweep(tmp_path / "st")["trials"][1]["vs_best"]["verdict"].startswith("no result: stopped")


def test_the_preset_plans_six_optimizers_by_nine_rates_by_three_seeds():
    plan = plan_job(JobRequest(load_experiment("16-learning-rate-sensitivity"), None, workers=2))
    assert plan.kind == "sweep" and len(plan.trials) == 54 and len(plan.runs) == 162 and plan.total_runs == 162
    assert plan.seeds == (42, 43, 44) and plan.executor == "pool" and plan.workers == 2
    first = plan.runs[0].experiment
    assert (first["optimizer"]["name"], first["optimizer"]["learning_rate"], first["sweep"]) == ("sgd", 0.0001, None)


# ----------------------------------------------------------------------------- what the runner refuses


def test_every_section_of_many_runs_has_a_kind_of_job():
    """A new repeating section must be taught to the runner (job_kind) instead of being skipped."""
    assert set(SECTION_KINDS) == set(REPEATING_KEYS) == {"stages", "compare", "sweep"}


def test_a_section_the_runner_does_not_handle_is_an_error_not_silence(monkeypatch):
    exp = dict(resolve_experiment(SWEEP), grid_search={"lr": [1, 2]})
    with pytest.raises(ExperimentError, match="does not handle the experiment's 'grid_search' section"):
        job_kind(JobRequest(exp))
    with monkeypatch.context() as m:    # the bug this replaces: a sweep trained as its base experiment
        m.delitem(SECTION_KINDS, "sweep")
        with pytest.raises(ExperimentError, match="does not handle the experiment's 'sweep' section"):
            job_kind(JobRequest(resolve_experiment(SWEEP)))
    both_sections = dict(resolve_experiment(SWEEP), compare={"variants": [], "seeds": [1]})
    with pytest.raises(ExperimentError, match="compare and sweep"):
        job_kind(JobRequest(both_sections))
    assert job_kind(JobRequest(resolve_experiment(SWEEP))) == "sweep"


@pytest.mark.parametrize("options, message", [
    ({"init_weights": "w.npz"}, "do not apply to a sweep"),
    ({"resume": "runs/x"}, "do not apply to a sweep"),
    ({"executor": "cloud"}, "executor must be auto or one of"),
])
def test_options_that_do_not_apply_are_refused_before_anything_is_written(tmp_path, options, message):
    with pytest.raises(ExperimentError, match=message):
        next(run_job(JobRequest(resolve_experiment(SWEEP), tmp_path / "x", **options)))
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- the command line


def test_the_cli_runs_a_sweep_and_prints_its_table(tmp_path, capsys):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(SWEEP))
    status = cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--steps", "4", "--seeds", "2",
                       "--workers", "1"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "sweeping 2 trials x 2 seeds = 4 runs on 1 process" in err
    assert "[4/4] lr0.1 seed 4: finished" in err
    assert "sweep of 2 trials (grid) x 2 seeds [3, 4]" in out and "best mean:" in out
    assert "sweep written to" in out and (tmp_path / "out" / "sweep_trials.csv").is_file()
    assert {r["steps"] for r in csv.DictReader(io.StringIO((tmp_path / "out" / "sweep.csv").read_text()))} == {"4"}


@pytest.mark.parametrize("change, args, message", [
    (lambda e: e["sweep"]["parameters"].update({"optimizer.learning_rat": {"values": [0.1]}}), [],
     "sweep trial 0"),
    (lambda e: e["sweep"].update({"method": "grd"}), [], "sweep.method must be one of grid, random"),
    (lambda e: None, ["--init-weights", "w.npz"], "do not apply to a sweep"),
])
def test_the_cli_refuses_a_bad_sweep_with_one_line_and_status_2(tmp_path, capsys, change, args, message):
    exp = copy.deepcopy(SWEEP)
    change(exp)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(exp))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
