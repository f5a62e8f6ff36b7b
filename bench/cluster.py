#!/usr/bin/env python
"""What training on Ray costs, measured on this machine: the figures behind the README's
"Sweeps and clusters" sizing.

    python bench/cluster.py                  # writes bench/results/cluster.json and bench/CLUSTER.md
    python bench/cluster.py --trials 20 --memory-trials 200 --rounds 1   # a quick look
    python bench/cluster.py --table-only     # bench/CLUSTER.md again from the results file

What is measured
----------------
* Overhead per trial: ``--trials`` tiny trials (a 2-8-8-1 tanh net on 200 moons points, one
  epoch of 6 steps: training itself is ~1 ms, so what remains is the executor's cost) trained
  as one comparison job by each executor through :func:`engine.jobs.compare.comparison_events`,
  writing their run folders: in this process, on the local pool (2 processes, spawned for the
  job, as every job does) and on a local Ray with 2 CPUs (started once; its first job pays for
  starting worker processes, later jobs find them warm).  Median wall time of ``--rounds`` jobs.
* Bytes returned per trial: what a Ray worker sends back (the pickled record plus the run
  folder's files), for the tiny trial and for one trial of preset 16 (784-100-100-10 on 5,000
  Fashion-MNIST images, 5 epochs) when Fashion-MNIST is installed.
* Driver memory per 1,000 trials: ``--memory-trials`` tiny trials as one comparison on Ray, with
  tracemalloc on in the driver: the Python memory still held when the summary is written (the
  records the report needs), the peak, and the growth of the process's resident set.

The machine is shared: the load average is recorded with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.control import RunControl  # noqa: E402
from engine.events import ComparisonRecord  # noqa: E402
from engine.jobs.compare import comparison_events, comparison_runs  # noqa: E402
from engine.jobs.executors import InProcessExecutor, LocalPoolExecutor  # noqa: E402
from engine.spec.experiment import load_experiment, resolve_experiment  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cluster.json"
TABLE = ROOT / "bench" / "CLUSTER.md"
CPUS = 2


def tiny(seeds: int) -> dict:
    return resolve_experiment({
        "name": "tiny", "seed": 0, "data": {"name": "moons", "n_samples": 200},
        "model": {"layers": [{"units": 8, "activation": "tanh"}, {"units": 8, "activation": "tanh"}],
                  "output": {"activation": "logistic"}},
        "optimizer": {"name": "sgd", "learning_rate": 0.03},
        "training": {"epochs": 1, "batch_size": 32},
        "compare": {"variants": [{"name": "tiny"}], "seeds": 1}})


def trials(exp: dict, n: int) -> list:
    return comparison_runs(exp, seeds=list(range(n)))


def job(exp: dict, runs: list, executor, cpu: list | None = None) -> tuple[float, list]:
    """Wall seconds of one comparison job and its records (``cpu`` gets the driver's CPU seconds)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    records = [e.record for e in comparison_events(exp, runs, executor.root and Path(executor.root), executor)
               if isinstance(e, ComparisonRecord)]
    if cpu is not None:
        cpu.append(time.process_time() - start_cpu)
    return time.perf_counter() - start, records


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def returned_bytes(root: Path, records: list) -> dict:
    """Per trial: the pickled record and the run folder's files (what a worker sends back)."""
    record = [len(pickle.dumps(r, protocol=5)) for r in records]
    files = [folder_bytes(root / r["folder"]) for r in records]
    return {"record": statistics.median(record), "files": statistics.median(files),
            "total": statistics.median(a + b for a, b in zip(record, files))}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(args) -> dict:
    import ray

    from engine.jobs.ray_executor import RayExecutor

    exp = tiny(1)
    runs = trials(exp, args.trials)
    out: dict = {"trials": args.trials, "rounds": args.rounds, "cpus": CPUS}
    scratch = Path(tempfile.mkdtemp(prefix="descent-bench-cluster-"))

    def rounds(make) -> list:
        walls, cpu = [], out.setdefault("driver_cpu_seconds", {}).setdefault(make.__name__, [])
        for i in range(args.rounds):
            folder = scratch / f"{make.__name__}-{len(list(scratch.iterdir()))}"
            wall, records = job(exp, runs, make(folder), cpu)
            assert len(records) == len(runs) and all(r["status"] == "finished" for r in records)
            walls.append(wall)
        return walls

    def inprocess(folder):
        return InProcessExecutor(RunControl(), folder)

    def pool(folder):
        return LocalPoolExecutor(RunControl(), folder, CPUS)

    def on_ray(folder):
        return RayExecutor(RunControl(), folder, CPUS)

    job(exp, runs[:2], inprocess(scratch / "warm"))   # kernels loaded in this process before timing it
    out["inprocess_seconds"] = rounds(inprocess)
    out["pool_seconds"] = rounds(pool)
    start = time.perf_counter()
    ray.init(num_cpus=CPUS, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    out["ray_start_seconds"] = time.perf_counter() - start
    try:
        first = scratch / "ray-first"
        wall, records = job(exp, runs, on_ray(first))
        out["ray_first_job_seconds"] = wall
        out["tiny_trial_bytes"] = returned_bytes(first, records)
        out["ray_seconds"] = rounds(on_ray)
        if args.realistic:
            out["preset16_trial"] = realistic(scratch, on_ray)
        out["memory"] = memory(args.memory_trials, scratch, on_ray)
    finally:
        ray.shutdown()
    n = args.trials
    med = {k: statistics.median(out[f"{k}_seconds"]) for k in ("inprocess", "pool", "ray")}
    out["per_trial_ms"] = {k: 1000 * v / n for k, v in med.items()}
    # what an executor adds to a trial, per CPU: its wall time on CPUS slots minus training alone
    out["overhead_per_trial_ms"] = {k: 1000 * med[k] * CPUS / n - out["per_trial_ms"]["inprocess"]
                                    for k in ("pool", "ray")}
    out["driver_cpu_per_trial_ms"] = {k: 1000 * statistics.median(v) / n
                                      for k, v in out["driver_cpu_seconds"].items()}
    out["ray_first_job_per_trial_ms"] = 1000 * out["ray_first_job_seconds"] / n
    out["ray_minus_pool_per_trial_ms"] = out["per_trial_ms"]["ray"] - out["per_trial_ms"]["pool"]
    return out


def realistic(scratch: Path, on_ray, few: int = 4, many: int = 16) -> dict | None:
    """Preset 16's base trial on Ray, as a job of ``few`` and one of ``many`` seeds: bytes returned,
    wall time, the driver's CPU time per extra trial (the difference of the two jobs over the
    difference of their sizes: receiving and writing one trial, without the once-per-job costs),
    and what shipping its data costs (the decoded Fashion-MNIST files, put in the store once)."""
    from engine.data import load_dataset
    from engine.errors import DataError

    exp = load_experiment(str(ROOT / "presets" / "16-learning-rate-sensitivity.json"))
    base = resolve_experiment(dict(exp, sweep=None, compare={"variants": [{"name": "sgd-0.01"}], "seeds": many}))
    try:
        load_dataset(base["data"], base["seed"])
    except DataError:
        return None
    import ray

    from engine.data import data_sources
    [read] = data_sources(base["data"]).values()
    source = read()                      # decoded already (the check above): this is the put alone
    start = time.perf_counter()
    ref = ray.put(source)
    put_seconds = time.perf_counter() - start
    del ref
    cpu = []
    job(base, comparison_runs(base)[:few], on_ray(scratch / "preset16-few"), cpu)
    folder = scratch / "preset16"
    wall, records = job(base, comparison_runs(base), on_ray(folder), cpu)
    return {"runs": len(records), "wall_seconds": wall, "driver_cpu_seconds": cpu[1],
            "driver_cpu_per_extra_trial": (cpu[1] - cpu[0]) / (many - few), "steps": records[0]["steps"],
            "shipped_bytes": len(pickle.dumps(source, protocol=5)), "put_seconds": put_seconds,
            "bytes": returned_bytes(folder, records),
            "files": {p.name: p.stat().st_size for p in (folder / records[0]["folder"]).iterdir()}}


def memory(n: int, scratch: Path, on_ray) -> dict:
    """Driver memory of one n-trial job on Ray, scaled to 1,000 trials."""
    exp = tiny(1)
    runs = trials(exp, n)
    specs = len(pickle.dumps(runs, protocol=5))
    rss0 = rss_bytes()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    folder = scratch / "memory"
    executor = on_ray(folder)
    held = None
    start = time.perf_counter()
    records = []
    for event in comparison_events(exp, runs, folder, executor):
        if isinstance(event, ComparisonRecord):
            records.append(event.record)
        else:
            held = tracemalloc.get_traced_memory()[0] - base   # the summary is about to be written
    wall = time.perf_counter() - start
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    scale = 1000 / n
    return {"trials": n, "wall_seconds": wall, "held_bytes_per_1000": (held or current - base) * scale,
            "peak_bytes_per_1000": (peak - base) * scale, "rss_growth_bytes_per_1000": (rss_bytes() - rss0) * scale,
            "records_pickled_bytes_per_1000": len(pickle.dumps(records, protocol=5)) * scale,
            "specs_pickled_bytes_per_1000": specs * scale}


def machine() -> dict:
    import numpy
    import ray

    return {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "python": platform.python_version(),
            "numpy": numpy.__version__, "ray": ray.__version__, "load_average": os.getloadavg()}


def mib(x: float) -> str:
    return f"{x / 2**20:,.1f} MiB"


def kib(x: float) -> str:
    return f"{x / 2**10:,.1f} KiB"


def markdown(r: dict) -> str:
    m, t, o = r["machine"], r["per_trial_ms"], r["overhead_per_trial_ms"]
    c = r["driver_cpu_per_trial_ms"]
    lines = [
        "# Ray vs the local pool: measured on this machine",
        "",
        f"`python bench/cluster.py` on {m['date']}: {m['cpus']} CPUs, Python {m['python']}, NumPy {m['numpy']}, "
        f"Ray {m['ray']}; load average {m['load_average'][0]:.1f} at the start and "
        f"{r['load_average_end'][0]:.1f} at the end (a shared machine). Generated from "
        f"`bench/results/cluster.json` (not committed: bench/results/ is the scratch output of the benchmarks).",
        "",
        f"## Overhead per trial ({r['trials']} tiny trials per job, {r['cpus']} CPUs, median of {r['rounds']} jobs)",
        "",
        "| executor | wall per job | wall per trial | overhead per trial and CPU | driver CPU per trial |",
        "|---|---:|---:|---:|---:|",
        f"| this process, one after another | {statistics.median(r['inprocess_seconds']):.2f} s | "
        f"{t['inprocess']:.1f} ms | (training alone) | {c['inprocess']:.1f} ms |",
        f"| local pool, 2 processes (spawned per job) | {statistics.median(r['pool_seconds']):.2f} s | "
        f"{t['pool']:.1f} ms | {o['pool']:.1f} ms | {c['pool']:.1f} ms |",
        f"| local Ray, 2 CPUs, warm workers | {statistics.median(r['ray_seconds']):.2f} s | {t['ray']:.1f} ms | "
        f"{o['ray']:.1f} ms | {c['on_ray']:.1f} ms |",
        f"| local Ray, first job (starts its workers) | {r['ray_first_job_seconds']:.2f} s | "
        f"{r['ray_first_job_per_trial_ms']:.1f} ms | | |",
        "",
        "Overhead per trial and CPU = wall per job x 2 CPUs / trials - the in-process time per trial: what the "
        "executor adds to each trial.  The pool's is mostly spawning and importing its 2 processes (paid by every "
        "job); Ray's workers outlive the job.",
        "",
        f"Ray minus pool: {r['ray_minus_pool_per_trial_ms']:+.1f} ms wall per trial (warm workers). Starting the "
        f"local Ray itself: {r['ray_start_seconds']:.1f} s, once per job on the command line.",
        "",
        "## Bytes a worker returns per trial",
        "",
        "| trial | record (pickled) | run folder files | total |",
        "|---|---:|---:|---:|",
        f"| tiny (2-8-8-1, 6 steps) | {kib(r['tiny_trial_bytes']['record'])} | {kib(r['tiny_trial_bytes']['files'])} | "
        f"{kib(r['tiny_trial_bytes']['total'])} |",
    ]
    p = r.get("preset16_trial")
    if p:
        lines.append(f"| preset 16 (784-100-100-10, {p['steps']:,} steps) | {kib(p['bytes']['record'])} | "
                     f"{kib(p['bytes']['files'])} | {kib(p['bytes']['total'])} |")
        lines += ["", "Preset 16 run folder: " + ", ".join(f"{k} {kib(v)}" for k, v in sorted(p["files"].items()))
                  + f"; {p['runs']} trials took {p['wall_seconds']:.1f} s on the local Ray, "
                    f"{1000 * p['driver_cpu_seconds'] / p['runs']:.0f} ms of driver CPU per trial (shipping the "
                    f"data once, receiving and writing the files, the summary), "
                    f"{1000 * p['driver_cpu_per_extra_trial']:.0f} ms per trial more in a larger job (receiving "
                    f"and writing one trial: the driver's cost that grows with the sweep). Its data, shipped once "
                    f"per job: "
                    f"{mib(p['shipped_bytes'])} (the decoded Fashion-MNIST files), put in the object store in "
                    f"{p['put_seconds']:.2f} s."]
    mem = r["memory"]
    lines += [
        "",
        f"## Driver memory per 1,000 trials (measured on {mem['trials']:,} tiny trials, tracemalloc)",
        "",
        "| what | per 1,000 trials |",
        "|---|---:|",
        f"| Python memory held when the summary is written (the records) | {mib(mem['held_bytes_per_1000'])} |",
        f"| peak Python memory during the job | {mib(mem['peak_bytes_per_1000'])} |",
        f"| resident set growth of the driver | {mib(mem['rss_growth_bytes_per_1000'])} |",
        f"| the records, pickled | {mib(mem['records_pickled_bytes_per_1000'])} |",
        f"| the run specs, pickled | {mib(mem['specs_pickled_bytes_per_1000'])} |",
        "",
        f"That job: {mem['trials']:,} trials in {mem['wall_seconds']:.1f} s "
        f"({1000 * mem['wall_seconds'] / mem['trials']:.1f} ms per trial, tracemalloc on).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--memory-trials", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-realistic", dest="realistic", action="store_false",
                        help="skip the preset 16 trial (needs Fashion-MNIST)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--table-only", action="store_true", help="rewrite the table from the results file")
    args = parser.parse_args(argv)
    if args.table_only:
        args.table.write_text(markdown(json.loads(args.out.read_text())))
        return 0
    result = {"machine": machine()}
    result.update(measure(args))
    result["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.table.write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
