"""The Ray executor: the same results as the local pool, data shipped instead of read on workers,
a stop that cancels, a dead worker retried once and then reported, one message for a cluster that
cannot be joined.  Ray starts once for the module, with 2 CPUs, and is shut down after it."""
import copy
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import cli
from engine.control import RunControl
from engine.data import data_sources, load_dataset, preloaded
from engine.data import fashion
from engine.errors import DataError
from engine.events import ComparisonFinished, ComparisonRecord, JobFinished, JobStarted
from engine.jobs.compare import comparison_events, comparison_runs
from engine.jobs.runner import JobRequest, plan_job, run_job
from engine.kernels.network import PARALLEL_MNK
from engine.spec.experiment import resolve_experiment

ROOT = Path(__file__).resolve().parent.parent
TIMING_COLUMNS = {"wall_time", "steps_per_second", "elapsed", "wall_seconds_mean", "wall_seconds_std"}
TIMING_KEYS = {"train_seconds", "wall_seconds", "steps_per_second", "total_wall_seconds", "started", "finished",
               "wall_time", "elapsed"}
BATCH = 256
UNITS = 256      # BATCH x 256 features x UNITS is a product big enough for every BLAS thread: the workers'
assert BATCH * 256 * UNITS >= PARALLEL_MNK     # BLAS thread count must be the pool's for the same weights


def wide_data(folder: Path) -> Path:
    """An .npz file the runs read (so it must be shipped), wide enough for threaded products."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(700, 256)).astype(np.float32)
    path = folder / "wide.npz"
    np.savez(path, x=x, y=(x[:, 0] + x[:, 1] > 0).astype(np.int64))
    return path


def comparison(path: Path, seeds=2, epochs=2, name="wide") -> dict:
    return resolve_experiment({
        "name": name, "seed": 1, "data": {"name": "npz", "path": str(path)},
        "model": {"layers": [{"units": UNITS, "activation": "relu"}]},
        "optimizer": {"name": "nesterov", "learning_rate": 0.01, "momentum": 0.9},
        "training": {"epochs": epochs, "batch_size": BATCH},
        "compare": {"variants": [{"name": "nesterov"},
                                 {"name": "adam", "overrides": {"optimizer": {"name": "adam"}}}], "seeds": seeds}})


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def events_of(request: JobRequest, control: RunControl | None = None, stop_after: int | None = None) -> list:
    control = control or RunControl()
    events = []
    for event in run_job(request, control):
        events.append(event)
        if stop_after is not None and isinstance(event, ComparisonRecord) and event.done == stop_after:
            control.stop()
    return events


# ----------------------------------------------------------------------------- data without files


def test_shipped_sources_load_the_same_data_set_where_the_file_is_gone(tmp_path):
    config = {"name": "npz", "path": str(wide_data(tmp_path))}
    here = load_dataset(config, 3)
    shipped = {key: read() for key, read in data_sources(config).items()}
    Path(config["path"]).unlink()
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(config, 3)
    with preloaded(shipped):
        there = load_dataset(config, 3)
    for part in ("x_train", "y_train", "x_val", "y_val", "mean", "std"):
        assert np.array_equal(getattr(here, part), getattr(there, part))
    with pytest.raises(DataError):      # left on exit: a reused worker never loads a stale copy
        load_dataset(config, 3)
    assert data_sources({"name": "moons"}) == {}   # generated data: nothing to ship


def test_fashion_mnist_loads_from_the_shipped_files_alone(monkeypatch):
    config = {"name": "fashion_mnist", "classes": [5, 6], "per_class": 20, "test_per_class": 10}
    try:
        sources = {key: read() for key, read in data_sources(config).items()}
    except DataError:
        pytest.skip("Fashion-MNIST files not installed")
    here = load_dataset(config, 4)

    def nowhere(path):
        raise DataError("the worker has no files")
    monkeypatch.setattr(fashion, "locate", nowhere)
    with preloaded(sources):
        there = load_dataset(config, 4)
    assert np.array_equal(here.x_train, there.x_train) and np.array_equal(here.y_test, there.y_test)


# ----------------------------------------------------------------------------- joining a cluster


def test_a_cluster_nobody_answers_at_is_one_message_exit_2_and_nothing_written(tmp_path):
    import socket
    with socket.socket() as s:         # a port nothing listens on (bound, then released)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps({"name": "x", "data": {"name": "moons"}, "compare": {"variants": [{"name": "a"}]}}))
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "run", str(exp), "--out", str(out),
                           "--cluster", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot reach the Ray cluster at 127.0.0.1:{port}")
    assert not out.exists() and done.stdout == ""


@pytest.mark.parametrize("argv, message", [
    (["--cluster", "somewhere"], "--cluster must be local, auto, HOST:PORT"),
    (["--cluster", "host:99999"], "--cluster must be local, auto"),
])
def test_a_malformed_cluster_is_refused(tmp_path, capsys, argv, message):
    exp = comparison(wide_data(tmp_path))
    path = tmp_path / "e.json"
    path.write_text(json.dumps(exp))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "o")] + argv) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_cluster_applies_to_comparisons_only(tmp_path, capsys):
    single = dict(comparison(wide_data(tmp_path)), compare=None)
    with pytest.raises(Exception, match="--cluster applies to experiments with a compare or sweep section"):
        plan_job(JobRequest(single, cluster="local"))
    plan = plan_job(JobRequest(comparison(tmp_path / "wide.npz"), cluster="local", workers=3))
    assert plan.executor == "ray" and plan.workers == 3 and plan.cluster == "local"


def test_without_ray_installed_a_cluster_is_one_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)      # `import ray` now fails as if it were not installed
    path = tmp_path / "e.json"
    path.write_text(json.dumps(comparison(wide_data(tmp_path))))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "o"), "--cluster", "local"]) == 2
    assert "--cluster needs Ray, which is not installed: pip install -r requirements-cluster.txt" in \
        capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- same results anywhere


def rows(path: Path) -> list:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def without_timing(path: Path) -> list:
    table = rows(path)
    header = table[1] if path.name == "comparison.csv" else table[0]
    keep = [i for i, h in enumerate(header) if h not in TIMING_COLUMNS]
    return [[r[i] for i in keep if i < len(r)] for r in table]


def tensors(path: Path) -> dict:
    if path.suffix == ".npz":
        with np.load(path) as z:
            return {k: z[k] for k in z.files if k != "__metadata__"}
    from safetensors.numpy import load_file
    return load_file(str(path))


def test_a_comparison_on_ray_writes_what_the_pool_writes(local_ray, tmp_path):
    exp = comparison(wide_data(tmp_path))
    pool = events_of(JobRequest(exp, tmp_path / "pool", workers=2))
    on_ray = events_of(JobRequest(exp, tmp_path / "ray", cluster="local", workers=2))
    assert next(e for e in pool if isinstance(e, JobStarted)).workers == 2
    assert next(e for e in on_ray if isinstance(e, JobStarted)).workers == 2
    files = sorted(p.relative_to(tmp_path / "pool") for p in (tmp_path / "pool").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "ray") for p in (tmp_path / "ray").rglob("*") if p.is_file())
    assert len([f for f in files if f.name == "weights.safetensors"]) == 4
    assert not any(f.suffix == ".npz" for f in files)       # one weights copy, no checkpoint in a comparison
    for name in files:
        a, b = tmp_path / "pool" / name, tmp_path / "ray" / name
        if name.suffix in (".npz", ".safetensors"):
            ta, tb = tensors(a), tensors(b)
            assert ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta), name
        elif name.suffix == ".csv":
            assert without_timing(a) == without_timing(b), name
        elif name.name == "experiment.json":
            assert a.read_bytes() == b.read_bytes()
        else:
            ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
            assert {k: v for k, v in ja.items() if k not in TIMING_KEYS | {"variants", "workers"}} == \
                {k: v for k, v in jb.items() if k not in TIMING_KEYS | {"variants", "workers"}}, name


def test_workers_train_on_the_shipped_data_with_the_file_gone(local_ray, tmp_path):
    from engine.jobs.ray_executor import RayExecutor
    path = wide_data(tmp_path)
    exp = comparison(path, seeds=1, epochs=1)
    runs = comparison_runs(exp)
    executor = RayExecutor(RunControl(), tmp_path / "out", 2)
    with executor:
        for spec in runs:
            executor.submit(spec)      # the driver reads the file here, once
        path.unlink()
        records = [f.record for f in executor.results()]
    assert sorted(r["status"] for r in records) == ["finished", "finished"]
    assert all((tmp_path / "out" / r["folder"] / "weights.safetensors").is_file() for r in records)


# ----------------------------------------------------------------------------- faults


def test_a_stop_reports_the_finished_runs_and_cancels_the_rest(local_ray, tmp_path):
    exp = comparison(wide_data(tmp_path), seeds=3, epochs=150, name="slow")
    events = events_of(JobRequest(exp, tmp_path / "out", cluster="local", workers=2), stop_after=1)
    records = [e.record for e in events if isinstance(e, ComparisonRecord)]
    assert 1 <= len(records) < 6 and all(r["status"] == "finished" for r in records)
    assert isinstance(events[-1], JobFinished) and events[-1].stopped
    summary = next(e.summary for e in events if isinstance(e, ComparisonFinished))
    assert sum(len(v["runs"]) for v in summary["variants"].values()) == len(records)
    assert (tmp_path / "out" / "comparison.csv").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == sorted(r["folder"] for r in records)
    import time
    deadline = time.monotonic() + 120      # the cancelled tasks give their CPUs back
    while local_ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert local_ray.available_resources().get("CPU", 0) == 2


def test_a_dead_worker_is_retried_once_then_its_run_is_reported_failed(local_ray, tmp_path):
    from engine.jobs.ray_executor import RETRIES, RayExecutor, train_remotely
    tries = tmp_path / "tries"
    tries.mkdir()
    deaths = {0: 2, 1: 1}     # run 0's worker dies on both tries; run 1's on the first only

    def dying(spec, write, keys, *sources):     # defined here, so Ray ships it by value
        mark = tries / f"{spec.index}-{len(list(tries.glob(f'{spec.index}-*')))}"
        mark.touch()
        if int(mark.name.split("-")[1]) < deaths.get(spec.index, 0):
            os._exit(1)
        return train_remotely(spec, write, keys, *sources)

    class Dying(RayExecutor):
        work = staticmethod(dying)

    exp = comparison(wide_data(tmp_path), epochs=1)
    runs = comparison_runs(exp)
    events = list(comparison_events(exp, runs, tmp_path / "out", Dying(RunControl(), tmp_path / "out", 2)))
    records = {e.record["folder"]: e.record for e in events if isinstance(e, ComparisonRecord)}
    assert len(records) == 4
    assert records[runs[0].folder]["status"] == "failed" and "worker process died" in records[runs[0].folder]["reason"]
    assert [records[r.folder]["status"] for r in runs[1:]] == ["finished"] * 3
    assert len(list(tries.glob("0-*"))) == 1 + RETRIES and len(list(tries.glob("1-*"))) == 2
    assert not (tmp_path / "out" / runs[0].folder).exists()
    table = rows(tmp_path / "out" / "comparison.csv")
    statuses = {r[0]: r[2] for r in table[2:]}
    assert statuses[runs[0].variant] == "failed=1;finished=1"


# ----------------------------------------------------------------------------- the window


@pytest.mark.gui
def test_the_compare_tab_runs_on_a_local_ray(local_ray, qtbot, tmp_path):
    from gui.compare import ComparisonView
    exp = comparison(wide_data(tmp_path), epochs=1)
    view = ComparisonView(lambda: copy.deepcopy(exp), tmp_path / "runs")
    qtbot.addWidget(view)
    view.run_on.setCurrentIndex(view.run_on.findData("local"))
    request = view.start()
    assert request.cluster == "local" and request.workers == 2
    qtbot.waitUntil(lambda: not view.running, timeout=300_000)
    assert view.snapshot.finished and not view.snapshot.failed and view.snapshot.done == 4
    assert (Path(request.out) / "comparison.csv").is_file()
    view.run_on.setCurrentIndex(2)
    view._choose_run_on(2, "10.0.0.7:6379")
    assert view.cluster() == "10.0.0.7:6379" and view.run_on.currentText() == "cluster 10.0.0.7:6379"
    view._choose_run_on(2, "no address")            # refused: the address known stays
    assert view.cluster() == "10.0.0.7:6379" and "--cluster must be" in view.status.text()
    fresh = ComparisonView(lambda: copy.deepcopy(exp), tmp_path / "runs")
    qtbot.addWidget(fresh)
    fresh.run_on.setCurrentIndex(2)
    fresh._choose_run_on(2, "")                      # no address given: back to this machine
    assert fresh.run_on.currentIndex() == 0 and fresh.cluster() is None


def test_a_sweep_on_ray_writes_the_weights_and_table_the_pool_writes(local_ray, tmp_path):
    """Sweeps go through the same executors: a 2-trial x 2-seed grid on a local Ray equals the pool's."""
    exp = comparison(wide_data(tmp_path), epochs=1)
    exp = resolve_experiment(dict(exp, compare=None, sweep={
        "parameters": {"optimizer.learning_rate": {"values": [0.01, 0.003]}}, "seeds": [1, 2]}))
    events_of(JobRequest(exp, tmp_path / "pool", workers=2))
    events_of(JobRequest(exp, tmp_path / "ray", cluster="local", workers=2))
    weights = sorted(p.relative_to(tmp_path / "pool") for p in (tmp_path / "pool").rglob("weights.safetensors"))
    assert len(weights) == 4
    assert weights == sorted(p.relative_to(tmp_path / "ray") for p in (tmp_path / "ray").rglob("weights.safetensors"))
    for name in weights:
        ta, tb = tensors(tmp_path / "pool" / name), tensors(tmp_path / "ray" / name)
        assert ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta), name

    def untimed(path: Path) -> list:
        table = rows(path)
        keep = [i for i, h in enumerate(table[0]) if "seconds" not in h]
        return [[r[i] for i in keep] for r in table]
    assert untimed(tmp_path / "pool" / "sweep.csv") == untimed(tmp_path / "ray" / "sweep.csv")
    assert len(rows(tmp_path / "pool" / "sweep.csv")) == 5    # header + 2 trials x 2 seeds
