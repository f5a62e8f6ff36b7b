#!/usr/bin/env python
"""Engine benchmark: Descent's training speed against PyTorch's fastest variant.

    python bench/engine.py --rounds 5          # the full run (quiet machine), writes bench/RESULTS.md + README
    python bench/engine.py --quick --rounds 1  # short rounds: checks the tooling, figures not for quoting
    python bench/engine.py --only fmnist-b32 --no-write --json out.jsonl
    python bench/engine.py --dry               # tiny configuration, seconds; checks the table's format

What is measured
----------------
* Descent through its real training loop (``Trainer.run()`` consumed event by
  event as the CLI does, default diagnostics interval and probe batch): the
  compiled chunks, the Python between them, every diagnostics record.
* PyTorch (CPU) in bare ``nn.Sequential`` + optimizer loops: its default thread
  count, ``fused=True`` Adam, and 1 thread.  The headline ratio divides by the
  fastest of them in the same interleaved run (A B C, then C B A, ...).
* For batch >= 128: the fraction of the compute bound, the achieved FLOP/s of
  the step's dense products over a large GEMM's FLOP/s in Descent's dtype through
  the same BLAS, timed in the same interleaved rounds.
* End to end: ``main.py run`` of the same experiment (data from a .npz file,
  every epoch's evaluation, records and run-folder writes) against PyTorch's
  best bare loop.
* The 1-minute load average before and after every configuration, and the CPU
  other processes used meanwhile; a row over the limit is marked and its ratios
  are not quoted.  The BLAS libraries and the kernel OpenBLAS picked
  (threadpoolctl) are recorded.

A user's machine has no OpenBLAS pin, so the benchmark runs without one: see
:func:`unpin_blas`.  Output: the table printed, bench/RESULTS.md (generated,
with the profile of :mod:`profile_steps`) and README's Speed block between its
``bench:begin``/``bench:end`` marks.  torch is never a dependency of Descent
(requirements-dev.txt installs it for tests and this script).
"""
from __future__ import annotations

import os
import sys

# Build machines and CI pin OpenBLAS to its Haswell kernels (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE) because older
# OpenBLAS builds misbehave on their processor, so tests keep that pin; a user's machine has none, and OpenBLAS
# reads these variables only when it loads, so the benchmark re-executes itself without them before NumPy loads.
PINNED_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REMOVED_MARK = "DESCENT_BENCH_UNPINNED"


def unpin_blas(argv: list) -> None:
    """Re-execute this interpreter without the OpenBLAS pin (unless --pinned asks to keep it)."""
    if "--pinned" in argv or not any(v in os.environ for v in PINNED_VARIABLES):
        return
    removed = ",".join(f"{v}={os.environ[v]}" for v in PINNED_VARIABLES if v in os.environ)
    env = {k: v for k, v in os.environ.items() if k not in PINNED_VARIABLES}
    env[REMOVED_MARK] = removed
    os.execve(sys.executable, [sys.executable, *argv], env)


if __name__ == "__main__":
    unpin_blas([os.path.abspath(__file__), *sys.argv[1:]])

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

if str(Path(__file__).resolve().parent) not in sys.path:   # appended: this file's name must not hide the engine package
    sys.path.append(str(Path(__file__).resolve().parent))
from runners import (E2E_RATIO, Config, CpuWatch, DescentRun, PeakRun, blas_info, descent_blas,  # noqa: E402
                     end_to_end, loadavg, measure, median, random_data, torch_available, torch_variants)
import report  # noqa: E402

DEFAULT_ROOT = Path(__file__).resolve().parent.parent
LOAD_LIMIT = 1.0          # 1-minute load average before a configuration
OTHER_CORES_LIMIT = 0.5   # cores other processes used during it
SETTLE_SECONDS = 120      # longest wait for the previous configuration's own load to decay


def settle(limit: float = LOAD_LIMIT, longest: float = SETTLE_SECONDS) -> float | None:
    """Wait (idle) until the 1-minute load average is at most ``limit``, or ``longest`` seconds.

    The load average remembers the last minute, and the previous configuration's PyTorch
    threads alone keep it near 2: without this pause every row after the first would read as
    "loaded" by the benchmark itself.  Idle, it decays by e^(-t/60), so 2.0 falls under 1.0
    in about 42 s; a machine that stays above the limit is really busy, and the row says so."""
    deadline = time.monotonic() + longest
    load = loadavg()
    while load is not None and load > limit and time.monotonic() < deadline:
        time.sleep(2.0)
        load = loadavg()
    return load


def configs() -> list[Config]:
    """Every row of the table, in order.  Extra rows (e.g. a feature's cost) append a Config here;
    its ``experiment`` dict is merged into Descent's experiment."""
    out = [Config("tiny", "2-8-8-1 tanh, 1,000 points, batch 10, SGD", 2, (8, 8), "tanh", 1, 10, "sgd", 0.03,
                  1000, target=50.0, e2e_target=30.0, initializer="glorot_uniform")]
    targets = {1: 5.0, 32: 1.5, 128: 1.3, 1024: 1.1}
    for batch, target in targets.items():
        for opt in ("momentum", "adam"):
            for bn in (False, True):
                name = {"momentum": "momentum", "adam": "Adam"}[opt]
                out.append(Config(f"fmnist-b{batch}-{opt}{'-bn' if bn else ''}",
                                  f"784-300-100-10 ReLU{' BN' if bn else ''}, batch {batch}, {name}",
                                  784, (300, 100), "relu", 10, batch, opt, 0.01 if opt == "momentum" else 0.001,
                                  54_000, bn=bn, target=target, bound_target=0.9 if batch == 1024 else None,
                                  e2e=batch >= 32, image_shape=(28, 28)))
    out.append(Config("deep", "20x100 ELU (3072 in, 10 out), batch 64, Adam", 3072, (100,) * 20, "elu", 10, 64,
                      "adam", 0.001, 45_000, target=2.0, image_shape=(32, 32, 3)))
    return out


DRY = Config("dry", "2-8-8-1 tanh, 1,000 points, batch 10, SGD (dry run)", 2, (8, 8), "tanh", 1, 10, "sgd", 0.03,
             1000, target=50.0, e2e_target=30.0, initializer="glorot_uniform")


def run_config(cfg: Config, args) -> dict:
    load_before = settle() if args.settle else loadavg()
    watch = CpuWatch()
    data = random_data(cfg)
    descent = DescentRun(cfg, data)
    runners = [descent]
    torch_note = None
    if args.use_torch:
        variants, torch_note = torch_variants(cfg, data)
        runners += variants
    if cfg.batch >= 128:
        runners.append(PeakRun(descent.trainer.net.dtype))
    rates = measure(runners, args.rounds, args.round_seconds, args.warmup)
    med = {name: median(v) for name, v in rates.items()}
    row = {"config": cfg.key, "label": cfg.label, "batch": cfg.batch, "optimizer": cfg.optimizer, "bn": cfg.bn,
           "layers": cfg.layers, "activation": cfg.activation, "rounds": args.rounds,
           "log_every": descent.trainer.log_every, "descent_steps_per_s": med["descent"],
           "descent_rounds": rates["descent"], "target": cfg.target, "e2e_target": cfg.e2e_target,
           "bound_target": cfg.bound_target}
    torch_med = {k: v for k, v in med.items() if k.startswith("torch")}
    if torch_med:
        best = max(torch_med, key=torch_med.get)
        row.update({"torch_steps_per_s": torch_med, "torch_rounds": {k: rates[k] for k in torch_med},
                    "torch_default_threads": runners[1].threads, "best_torch": best,
                    "best_torch_steps_per_s": torch_med[best], "ratio": med["descent"] / torch_med[best],
                    "ratios_per_round": [a / b for a, b in zip(rates["descent"], rates[best])]})
    if torch_note:
        row["torch_note"] = torch_note
    if "blas_peak" in med:
        peak = med["blas_peak"] * runners[-1].flops
        achieved = med["descent"] * cfg.flops_per_step()
        row.update({"flops_per_step": cfg.flops_per_step(), "peak_flops": peak, "achieved_flops": achieved,
                    "bound_fraction": achieved / peak, "bound_steps_per_s": peak / cfg.flops_per_step()})
    del runners, descent
    if cfg.e2e and args.e2e:
        try:
            row.update(end_to_end(cfg, data, med["descent"], args.e2e_seconds))
        except RuntimeError as exc:   # one row's failure must not lose a long run's other rows
            row["e2e_error"] = str(exc)
            print(f"{cfg.key}: end to end failed: {exc}", file=sys.stderr, flush=True)
        if "e2e_steps_per_s" in row and "best_torch_steps_per_s" in row:
            row["e2e_ratio"] = row["e2e_steps_per_s"] / row["best_torch_steps_per_s"]
    row.update({"load_before": load_before, "load_after": loadavg(), "other_cores": watch.other_cores()})
    row["loaded"] = bool((load_before or 0) > LOAD_LIMIT or (row["other_cores"] or 0) > OTHER_CORES_LIMIT)
    row["met"] = targets_met(row)
    return row


def targets_met(row: dict) -> bool | None:
    """All of the row's targets met (None: nothing to judge)."""
    checks = []
    if row.get("target") and "ratio" in row:
        checks.append(row["ratio"] >= row["target"])
    if row.get("bound_target") and "bound_fraction" in row:
        checks.append(row["bound_fraction"] >= row["bound_target"])
    if "e2e_over_loop" in row:
        checks.append(row["e2e_over_loop"] >= E2E_RATIO)
    if row.get("e2e_target") and "e2e_ratio" in row:
        checks.append(row["e2e_ratio"] >= row["e2e_target"])
    return all(checks) if checks else None


def machine(args) -> dict:
    model, flags = "unknown", ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        have = set(text.split("flags", 1)[1].split("\n", 1)[0].split())
        flags = " ".join(f for f in ("avx2", "fma", "avx512f") if f in have)
    except (OSError, IndexError, StopIteration):
        pass
    import numba
    import scipy

    info = {"config": "machine", "nproc": os.cpu_count(), "cpu": model, "cpu_flags": flags,
            "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__, "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"), "load_start": loadavg(), "command": "python bench/engine.py " + " ".join(
                    args.argv), "pin_removed": os.environ.get(REMOVED_MARK, ""),
            "pin_kept": {v: os.environ[v] for v in PINNED_VARIABLES if v in os.environ}}
    if args.use_torch:
        import torch
        info.update({"torch": torch.__version__, "torch_threads": torch.get_num_threads()})
    return info


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, help="interleaved rounds per configuration (default 5, quick 1)")
    p.add_argument("--quick", action="store_true", help="short rounds and end-to-end runs: checks the tooling")
    p.add_argument("--dry", action="store_true", help="one tiny configuration, seconds; nothing written "
                                                      "unless --results/--readme name files")
    p.add_argument("--round-seconds", type=float, help="seconds per runner per round (default 1.0, quick 0.3)")
    p.add_argument("--only", action="append", help="configurations whose key starts with this (repeatable)")
    p.add_argument("--no-torch", dest="use_torch", action="store_false", help="measure Descent only")
    p.add_argument("--no-e2e", dest="e2e", action="store_false", help="skip the main.py run rows")
    p.add_argument("--no-extra", action="store_true", help="skip the dead-ReLU, denormal and startup checks")
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip the per-kernel profile")
    p.add_argument("--no-settle", dest="settle", action="store_false",
                   help="start each configuration at once instead of waiting for the load average to fall "
                        "to 1.0 (its row is then marked loaded if it is above)")
    p.add_argument("--pinned", action="store_true", help="keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (as CI runs)")
    p.add_argument("--json", metavar="FILE", help="also write one JSON object per row (JSON lines)")
    p.add_argument("--results", metavar="FILE", help="results file (default bench/RESULTS.md)")
    p.add_argument("--readme", metavar="FILE", help="README whose Speed block is replaced (default README.md)")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--report", metavar="JSONL", help="no measuring: write the results of an earlier --json run")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="checkout whose engine/ is measured")
    args = p.parse_args(argv)
    args.argv = list(argv)
    args.rounds = args.rounds or (1 if args.quick or args.dry else 5)
    args.round_seconds = args.round_seconds or (0.3 if args.quick or args.dry else 1.0)
    args.warmup = 0.3 if args.quick or args.dry else 1.5
    args.e2e_seconds = 0.6 if args.quick or args.dry else 3.0
    args.use_torch = args.use_torch and torch_available()
    if args.dry:
        args.no_extra, args.profile, args.settle = True, False, False
    if not args.no_write and not args.dry:
        args.results = args.results or str(DEFAULT_ROOT / "bench" / "RESULTS.md")
        args.readme = args.readme or str(DEFAULT_ROOT / "README.md")
    return args


def write_outputs(records: list, args) -> str:
    text = report.results_markdown(records)
    if args.results:
        Path(args.results).write_text(text)
    if args.readme:
        report.update_readme(Path(args.readme), report.readme_block(records))
    return text


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.report:
        records = [json.loads(line) for line in Path(args.report).read_text().splitlines() if line.strip()]
        print(write_outputs(records, args))
        return 0
    sys.path.insert(0, str(args.root.resolve()))
    info = machine(args)
    info["blas"] = blas_info()
    info["method"] = (f"median of {args.rounds} interleaved round{'s' * (args.rounds > 1)} of "
                      f"{args.round_seconds:g} s per runner")
    kernel = descent_blas(info["blas"])
    print(f"# Descent engine benchmark {info['date']}: {info['nproc']} CPUs ({info['cpu']}), "
          f"load {info['load_start']:.2f}; "
          f"BLAS {kernel.get('internal_api')} {kernel.get('version')} {kernel.get('architecture')} "
          f"{kernel.get('num_threads')} threads; pin removed: {info['pin_removed'] or 'none was set'}", flush=True)
    started = time.monotonic()
    out = open(args.json, "w") if args.json else None
    if out:   # first, so an interrupted run's file can still be reported (--report); again at the end
        out.write(json.dumps(info) + "\n")
    records = [info]

    def emit(record):
        records.append(record)
        if out:
            out.write(json.dumps(record) + "\n")
            out.flush()

    for cfg in [DRY] if args.dry else configs():
        if args.only and not any(cfg.key.startswith(o) for o in args.only):
            continue
        row = run_config(cfg, args)
        emit(row)
        print(report.console_line(row), flush=True)
    if args.profile:
        from profile_steps import profile_all
        chosen = [c for c in configs() if not args.only or any(c.key.startswith(o) for o in args.only)]
        for prof in profile_all(chosen, args, {r["config"]: r for r in records if "descent_steps_per_s" in r}):
            emit(prof)
            print(report.profile_line(prof), flush=True)
    if args.only and any("augment".startswith(o) for o in args.only):   # --only augment: that row alone
        from checks import augment_run
        emit(augment_run(args, configs()))
    if not args.no_extra and not args.only:
        from checks import augment_run, dead_relu_run, denormal_input_run, startup_times
        for fn in (dead_relu_run, denormal_input_run, lambda a: augment_run(a, configs())):
            emit(fn(args))
        emit(dict(startup_times(args.root.resolve(), cold=not args.quick), config="startup"))
    info["load_end"] = loadavg()
    info["seconds"] = time.monotonic() - started
    info["blas_end"] = blas_info()
    if out:
        out.write(json.dumps(info) + "\n")
        out.close()
    print()
    print(write_outputs(records, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
