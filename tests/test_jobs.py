"""The one job runner: every kind of job through one entry point, one printer, one Ctrl-C handler,
and the same results whichever executor trains the runs."""
import ast
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from engine import cli
from engine.control import RunControl
from engine.errors import ExperimentError
from engine.events import (ComparisonFinished, ComparisonRecord, ConfusionReport, DataPoints, DecisionSurface,
                           JobFinished, JobStarted,
                           LRFinderFinished, RunFinished, RunStarted, StepMetrics, SubRun)
from engine.formats.weights import load_any
from engine.jobs import console
from engine.jobs.executors import EXECUTORS, STOP_FILE, Executor, request_stop
from engine.jobs.runner import JobRequest, job_kind, plan_job, run_job
from engine.spec.experiment import resolve_experiment
from engine.spec.stages import StageFinished, StagesFinished, StageStarted

ROOT = Path(__file__).resolve().parent.parent

TINY = {"name": "tiny", "seed": 3, "data": {"name": "moons", "n_samples": 200, "noise": 0.1},
        "model": {"layers": [{"units": 8, "activation": "relu"}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.05}, "training": {"epochs": 2, "batch_size": 20}}
RACE = dict(copy.deepcopy(TINY), name="race",
            compare={"variants": [{"name": "sgd"},
                                  {"name": "adam", "overrides": {"optimizer": {"name": "adam", "learning_rate": 0.01}}}],
                     "seeds": 2})
STAGED = dict(copy.deepcopy(TINY), name="staged", stages={"seeds": 1, "list": [
    {"name": "a"}, {"name": "b", "reuse": {"from": "a", "layers": "all_but_output"}}]})


def kinds(events):
    return [type(e).__name__ for e in events]


def weights_of(folder: Path) -> dict:
    """{run folder relative to ``folder``: its final weights} for every run folder below it."""
    return {str(p.parent.relative_to(folder)): load_any(p)[0] for p in sorted(folder.rglob("weights.safetensors"))}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for run in a:
        assert a[run].keys() == b[run].keys()
        for name in a[run]:
            assert np.array_equal(a[run][name], b[run][name]), (run, name)


# ----------------------------------------------------------------------------- every kind, one entry point


def test_a_single_run_yields_the_trainers_events_between_job_events_and_writes_its_folder(tmp_path):
    exp = resolve_experiment(TINY)
    events = list(run_job(JobRequest(exp, tmp_path / "run", run_id=7)))
    assert isinstance(events[0], JobStarted) and events[0].kind == "single" and events[0].runs == 1
    assert isinstance(events[1], DataPoints) and events[1].x.shape[1] == 2 and not events[1].x.flags.writeable
    assert isinstance(events[2], RunStarted) and events[2].run_id == 7
    assert isinstance(events[-2], RunFinished) and events[-2].status == "finished"
    assert events[-1] == JobFinished("single", str(tmp_path / "run"), stopped=False)
    for name in ("experiment.json", "history.csv", "epochs.csv", "summary.json", "weights.safetensors",
                 "checkpoint.npz"):
        assert (tmp_path / "run" / name).is_file(), name


def test_a_run_without_pictures_skips_surfaces_and_writes_the_same_folder(tmp_path):
    """The command line asks for no pictures (nothing there draws them): same weights and rows, no surfaces."""
    exp = resolve_experiment(TINY)
    shown = list(run_job(JobRequest(exp, tmp_path / "shown")))
    bare = list(run_job(JobRequest(exp, tmp_path / "bare", pictures=False)))
    assert any(isinstance(e, DecisionSurface) for e in shown)
    assert not any(isinstance(e, (DecisionSurface, ConfusionReport)) for e in bare)
    assert_same_weights(weights_of(tmp_path / "shown"), weights_of(tmp_path / "bare"))
    for name in ("history.csv", "epochs.csv"):   # the same rows (their timings differ)
        assert len((tmp_path / "shown" / name).read_text().splitlines()) == \
            len((tmp_path / "bare" / name).read_text().splitlines())


def test_the_command_line_asks_for_no_pictures(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "run_in_terminal", lambda request, quiet: seen.append(request) or 0)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "run")]) == 0
    assert seen and seen[0].pictures is False


def test_nothing_is_written_without_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    events = list(run_job(JobRequest(resolve_experiment(TINY))))
    assert events[-1] == JobFinished("single", None, stopped=False) and not list(tmp_path.iterdir())


def test_a_staged_run_yields_its_stage_events_and_writes_its_folder(tmp_path):
    events = list(run_job(JobRequest(resolve_experiment(STAGED), tmp_path / "st", max_steps=3)))
    assert events[0].kind == "staged" and events[0].variants == ("a", "b") and events[0].runs == 2
    assert [e.stage for e in events if isinstance(e, StageStarted)] == ["a", "b"]
    assert sum(isinstance(e, StageFinished) for e in events) == 2
    assert isinstance(events[-2], StagesFinished) and isinstance(events[-1], JobFinished)
    summary = json.loads((tmp_path / "st" / "summary.json").read_text())
    assert summary["status"] == "finished" and (tmp_path / "st" / "seed-3" / "02-b" / "weights.safetensors").is_file()


def test_a_comparison_yields_a_record_per_run_then_the_summary(tmp_path):
    events = list(run_job(JobRequest(resolve_experiment(RACE), tmp_path / "cmp", workers=1)))
    assert kinds(events) == ["JobStarted"] + ["ComparisonRecord"] * 4 + ["ComparisonFinished", "JobFinished"]
    started = events[0]
    assert (started.kind, started.variants, started.seeds, started.runs) == ("compared", ("sgd", "adam"), (3, 4), 4)
    assert [e.done for e in events[1:5]] == [1, 2, 3, 4] and {e.total for e in events[1:5]} == {4}
    summary = events[-2].summary
    assert summary["workers"] == 1 and summary["seeds"] == [3, 4]
    assert json.loads((tmp_path / "cmp" / "comparison.json").read_text())["variants_order"] == ["sgd", "adam"]


def test_the_race_streams_every_variant_at_the_first_seed_and_writes_what_the_pool_writes(tmp_path):
    race = list(run_job(JobRequest(resolve_experiment(RACE), tmp_path / "race", race=True)))
    subs = [e for e in race if isinstance(e, SubRun)]
    assert [(s.variant, s.seed, s.title) for s in subs] == [("sgd", 3, "sgd (seed 3)"), ("adam", 3, "adam (seed 3)")]
    for sub in subs:     # each SubRun is followed by that run's points and events, then its record
        i = race.index(sub)
        assert isinstance(race[i + 1], DataPoints) and isinstance(race[i + 2], RunStarted)
        assert race[i + 2].run_id == sub.run_id
        end = next(j for j in range(i, len(race)) if isinstance(race[j], ComparisonRecord))
        assert isinstance(race[end - 1], RunFinished) and race[end].record["variant"] == sub.variant
    assert race[0].seeds == (3,) and race[0].workers == 1
    pool = list(run_job(JobRequest(resolve_experiment(RACE), tmp_path / "pool", workers=2, seeds=(3,))))
    assert not any(isinstance(e, (SubRun, StepMetrics)) for e in pool)   # a pool sends records only
    assert_same_weights(weights_of(tmp_path / "race"), weights_of(tmp_path / "pool"))


def test_a_stop_ends_the_race_at_once(tmp_path):
    """The Train tab's Stop: the variant in progress stops, the ones not started are left out."""
    control = RunControl()
    events = []
    for event in run_job(JobRequest(resolve_experiment(RACE), tmp_path / "race", race=True), control):
        events.append(event)
        if isinstance(event, StepMetrics):
            control.stop()
    assert sum(isinstance(e, SubRun) for e in events) == 1 and events[-1].stopped
    (record,) = [e.record for e in events if isinstance(e, ComparisonRecord)]
    assert record["variant"] == "sgd" and record["status"] == "stopped"
    summary = events[-2].summary
    assert summary["variants"]["sgd"]["statuses"] == {"stopped": 1} and summary["variants"]["adam"]["runs"] == []


def test_the_lr_finder_is_a_job_too(tmp_path):
    out = tmp_path / "sweep.csv"
    events = list(run_job(JobRequest(resolve_experiment(TINY), out, lr_finder={"steps": 30})))
    assert kinds(events) == ["JobStarted", "LRFinderFinished", "JobFinished"] and events[0].kind == "lr_find"
    result = events[1].result
    assert len(result.lrs) == len(out.read_text().splitlines()) - 1 and not result.lrs.flags.writeable
    assert events[1].path == str(out)


def test_the_kind_is_decided_once_from_the_request():
    single, compared, staged = (resolve_experiment(e) for e in (TINY, RACE, STAGED))
    assert [job_kind(JobRequest(e)) for e in (single, compared, staged)] == ["single", "compared", "staged"]
    assert job_kind(JobRequest(compared, lr_finder={})) == "lr_find"
    assert plan_job(JobRequest(compared, workers=2)).executor == "pool"
    assert plan_job(JobRequest(compared, workers=1)).executor == "inprocess"
    race = plan_job(JobRequest(compared, race=True, workers=2))
    assert race.executor == "inprocess" and race.workers == 1 and [r.seed for r in race.runs] == [3, 3]
    assert set(EXECUTORS) == {"inprocess", "pool", "ray"} and all(issubclass(e, Executor) for e in EXECUTORS.values())


@pytest.mark.parametrize("experiment,options,message", [
    (TINY, {"workers": 2}, "--seeds and --workers apply to experiments with a compare or sweep section"),
    (STAGED, {"seeds": (1, 2)}, "--seeds and --workers apply"),
    (STAGED, {"resume": "somewhere"}, "--resume does not apply to a staged experiment"),
    (RACE, {"init_weights": "w.npz"}, "do not apply to a comparison"),
    (TINY, {"init_weights": "w.npz", "resume": "r"}, "exclude each other"),
    (RACE, {"executor": "pol"}, "did you mean 'pool'"),
])
def test_options_that_do_not_fit_the_job_are_refused_before_anything_is_written(tmp_path, experiment, options,
                                                                                 message):
    with pytest.raises(ExperimentError, match=message):
        list(run_job(JobRequest(resolve_experiment(experiment), tmp_path / "out", **options)))
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- executors


def test_a_comparison_writes_identical_weights_and_records_whichever_executor_trains_it(tmp_path):
    exp = resolve_experiment(RACE)
    records = {}
    for workers in (1, 2):
        events = list(run_job(JobRequest(exp, tmp_path / f"w{workers}", workers=workers)))
        assert events[-2].summary["workers"] == workers
        records[workers] = sorted((e.record for e in events if isinstance(e, ComparisonRecord)),
                                  key=lambda r: (r["variant"], r["seed"]))
    assert_same_weights(weights_of(tmp_path / "w1"), weights_of(tmp_path / "w2"))
    timing = ("wall_seconds", "train_seconds")
    for a, b in zip(records[1], records[2]):
        np.testing.assert_equal({k: v for k, v in a.items() if k not in timing},   # NaN equals NaN here
                                {k: v for k, v in b.items() if k not in timing})


def test_stopping_a_pool_comparison_stops_every_run_and_still_reports_them(tmp_path):
    long = dict(copy.deepcopy(RACE), training={"epochs": 5000, "batch_size": 20})
    control = RunControl()
    events = []
    for event in run_job(JobRequest(resolve_experiment(long), tmp_path / "cmp", workers=2), control):
        events.append(event)
        if isinstance(event, JobStarted):
            control.stop()       # the pool sees it within a poll and writes the stop file
    assert (tmp_path / "cmp" / STOP_FILE).exists()
    records = [e.record for e in events if isinstance(e, ComparisonRecord)]
    assert len(records) == 4 and {r["status"] for r in records} == {"stopped"}
    assert all(r["steps"] < 5000 * 9 for r in records)
    assert events[-1].stopped and isinstance(events[-2], ComparisonFinished)


def test_a_stop_file_stops_a_comparison_trained_in_this_process_too(tmp_path):
    """``STOP`` in the comparison folder is the way another process stops a comparison (both executors)."""
    folder = tmp_path / "cmp"
    records = []
    for event in run_job(JobRequest(resolve_experiment(RACE), folder, workers=1)):
        if isinstance(event, ComparisonRecord):
            records.append(event.record)
            request_stop(folder)
    assert [r["status"] for r in records] == ["finished", "stopped", "stopped", "stopped"]


def test_leaving_a_pool_comparison_early_cancels_the_rest(tmp_path):
    """An abort (an error, a second Ctrl-C, a consumer that gives up) stops the running runs, drops
    the queued ones the pool has not handed to a process yet, and writes no summary."""
    cut = dict(copy.deepcopy(RACE), compare={"seeds": 3, "variants": [
        {"name": "quick", "overrides": {"training": {"max_steps": 5}}},
        {"name": "slow", "overrides": {"training": {"epochs": 5000}}}]})
    folder = tmp_path / "cmp"
    events = run_job(JobRequest(resolve_experiment(cut), folder, workers=2))
    for event in events:
        if isinstance(event, ComparisonRecord):
            break                 # the first quick run is done; the first slow one is training
    events.close()
    assert (folder / STOP_FILE).exists() and not (folder / "comparison.json").exists()
    slow = [json.loads(p.read_text())["status"] for p in folder.glob("slow-seed*/summary.json")]
    assert slow and set(slow) == {"stopped"}     # the one training was stopped; any other started stops at once


# ----------------------------------------------------------------------------- consumers


def test_the_command_line_prints_the_events_the_runner_yields(tmp_path, monkeypatch, capsys):
    path = tmp_path / "race.json"
    path.write_text(json.dumps(RACE))
    seen = []
    handle = console.ConsolePrinter.handle
    monkeypatch.setattr(console.ConsolePrinter, "handle", lambda self, e: (seen.append(e), handle(self, e)))
    assert cli.main(["run", str(path), "--workers", "1", "--out", str(tmp_path / "cli")]) == 0
    out, err = capsys.readouterr()
    direct = list(run_job(JobRequest(resolve_experiment(RACE), tmp_path / "direct", workers=1)))
    assert kinds(seen) == kinds(direct)
    assert [e.record["final_val_accuracy"] for e in seen if isinstance(e, ComparisonRecord)] == \
        [e.record["final_val_accuracy"] for e in direct if isinstance(e, ComparisonRecord)]
    assert "comparing 2 variants x 2 seeds = 4 runs" in err and "[4/4] adam seed 4: finished" in err
    assert "comparison of 2 variants over 2 seeds [3, 4]" in out and "comparison written to" in out


def test_ctrl_c_is_handled_in_one_module_only():
    """One SIGINT handler for every job (engine.control.stop_on_interrupt); no copies."""
    installs = {}
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("gui/**/*.py"), ROOT / "main.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "signal.signal" and node.args \
                    and ast.unparse(node.args[0]) == "signal.SIGINT":
                installs.setdefault(str(path.relative_to(ROOT)), []).append(ast.unparse(node.args[1]))
    assert list(installs) == ["engine/control.py"], installs


def test_jobs_and_the_cli_import_at_module_level():
    """Imports inside functions hid import cycles; the few deliberately lazy ones say why."""
    for path in [*ROOT.glob("engine/jobs/*.py"), ROOT / "engine" / "cli.py", ROOT / "engine" / "control.py",
                 ROOT / "engine" / "events.py"]:
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)):
                        assert "# lazy:" in lines[inner.lineno - 1], f"{path.name}:{inner.lineno}"
