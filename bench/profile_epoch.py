#!/usr/bin/env python
"""Where the work around a small net's epochs goes in ``main.py run`` (issue 19: end to end
within 15% of the training loop).

    python bench/profile_epoch.py                        # the tiny net: parts per epoch, then cProfile
    python bench/profile_epoch.py --only fmnist-b32-momentum --epochs 2 --no-cprofile

Two views of the end-to-end run the benchmark times (same data file and experiment,
:func:`runners.e2e_experiment`):

* parts: each piece of an epoch's end work timed alone on a Trainer that has trained an epoch
  (evaluation on the training rows and on the validation split, sparsity, the learning-rate lookup,
  the EpochEnd record, the epochs.csv and history.csv rows, the console's handling), the fastest of
  three timings (the one least disturbed by other processes), microseconds per epoch.  The epoch's
  diagnostics record and the epoch's start (batch order) belong to the training loop the benchmark
  compares with, and are shown for scale;
* cProfile of ``main.py run`` (the CLI's code in this process), own time per epoch of the
  functions that cost most.  cProfile inflates small Python calls; read it for where, the parts
  for how much.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib.util
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
# the checkout's engine package first; this folder last (its engine.py must not hide the package)
from profile_steps import per_call  # noqa: E402
from runners import e2e_experiment, random_data  # noqa: E402


def bench_configs() -> list:
    """bench/engine.py's configurations (loaded under another name: ``engine`` is the package)."""
    spec = importlib.util.spec_from_file_location("bench_engine", HERE / "engine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.configs()


def trained_trainer(exp_path: Path):
    """A Trainer of the end-to-end experiment that has run its first epoch (kernels loaded), the
    RunControl, the last StepMetrics and EpochEnd of that epoch."""
    from engine.control import RunControl
    from engine.events import EpochEnd, StepMetrics
    from engine.spec.experiment import load_experiment
    from engine.training.trainer import Trainer

    exp = load_experiment(str(exp_path))
    exp = dict(exp, training=dict(exp["training"], epochs=1_000_000))
    trainer = Trainer(exp)
    trainer.pictures = False   # as main.py run
    control = RunControl()
    events = trainer.run(control)
    step = end = None
    while end is None:
        event = next(events)
        if isinstance(event, StepMetrics):
            step = event
        elif isinstance(event, EpochEnd):
            end = event
    return trainer, control, step, end, events


def parts(exp_path: Path, folder: Path) -> dict:
    """Microseconds per epoch of each part (see the module docstring)."""
    from engine.events import EpochEnd
    from engine.formats.runstore import RunWriter
    from engine.jobs.console import ConsolePrinter
    from engine.training.trainer import _RunState

    t, control, step_event, end_event, events = trained_trainer(exp_path)
    writer = RunWriter(folder / "parts-run")
    writer.handle(t.started_event())
    threshold = t.experiment["training"]["sparsity_threshold"]
    losses = [0.1] * t.steps_per_epoch
    quiet, devnull = ConsolePrinter(quiet=True), open(os.devnull, "w")
    loud = ConsolePrinter(stream=devnull, out=devnull)
    loud.handle(t.started_event())

    def rep(fn):
        def run(n):
            for _ in range(n):
                fn()
        return 1e6 * per_call(run, budget=0.05)

    def whole_end(n):   # the trainer's end-of-epoch work as the loop runs it (epoch counter and schedule move on)
        for _ in range(n):
            run = _RunState(control, "finished", "")
            run.epoch_losses = losses
            for _ in t._end_epoch(run):
                pass

    out = {
        "evaluate training rows": rep(lambda: t.evaluate_split("train")),
        "evaluate validation split": rep(lambda: t.evaluate_split("val")),
        "sparsity": rep(lambda: t.net.sparsity(threshold)),
        "learning rate of the row": rep(lambda: t.learning_rates(t.step, 1, control)),
        "mean training loss": rep(lambda: float(np.mean(losses))),
        "EpochEnd record": rep(lambda: EpochEnd(0, 1, 100, 0.5, 0.5, 0.5, 0.5, 0.01, 0.001, 0.0)),
        "epochs.csv row": rep(lambda: writer.handle(end_event)),
        "history.csv row": rep(lambda: writer.handle(step_event)),
        "console, quiet (both events)": rep(lambda: (quiet.handle(step_event), quiet.handle(end_event))),
    }
    out["trainer end of epoch, whole"] = 1e6 * per_call(whole_end, budget=0.1)
    out["(console with progress lines)"] = rep(lambda: (loud.handle(step_event), loud.handle(end_event)))
    out["(loop: diagnostics record)"] = rep(lambda: t._record([(np.zeros(1), np.zeros(1))], 1e-3, -1.0, 1))
    out["(loop: epoch start)"] = rep(lambda: t._epoch_order())
    writer.close()
    devnull.close()
    events.close()
    return out


def profiled_run(exp_path: Path, folder: Path, epochs: int, top: int) -> str:
    """cProfile of ``main.py run --epochs epochs --quiet``: the ``top`` functions by own time,
    microseconds per epoch."""
    from engine.cli import main as cli_main

    prof = cProfile.Profile()
    said = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(said):
        prof.enable()
        t0 = time.perf_counter()
        code = cli_main(["run", str(exp_path), "--epochs", str(epochs), "--out", str(folder / "profiled"), "--quiet"])
        wall = time.perf_counter() - t0
        prof.disable()
    if code != 0:
        raise RuntimeError(f"main.py run exited with {code}: {said.getvalue().strip()}")
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, name), (cc, nc, tt, ct, _) in stats.stats.items():
        rows.append((tt, ct, nc, f"{Path(file).name}:{line}({name})"))
    rows.sort(reverse=True)
    lines = [f"cProfile of main.py run, {epochs} epochs, {wall:.2f} s under the profiler; us per epoch:",
             f"{'own':>9s} {'cumulative':>11s} {'calls/epoch':>12s}  function"]
    for tt, ct, nc, where in rows[:top]:
        lines.append(f"{1e6 * tt / epochs:9.1f} {1e6 * ct / epochs:11.1f} {nc / epochs:12.2f}  {where}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default="tiny", help="the benchmark configuration (default tiny)")
    p.add_argument("--epochs", type=int, default=300, help="epochs of the profiled run (default 300)")
    p.add_argument("--top", type=int, default=30, help="functions listed from the profile")
    p.add_argument("--no-cprofile", dest="cprofile", action="store_false", help="parts only")
    p.add_argument("--no-parts", dest="parts", action="store_false", help="cProfile only")
    args = p.parse_args(argv)
    cfg = next(c for c in bench_configs() if c.key == args.only)
    print(f"{cfg.label}; load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="descent-profile-epoch-") as tmp:
        folder = Path(tmp)
        exp_path = e2e_experiment(cfg, random_data(cfg), folder)
        if args.parts:
            result = parts(exp_path, folder)
            print("us per epoch:")
            for name, us in result.items():
                print(f"  {name:34s} {us:9.1f}")
        if args.cprofile:
            print(profiled_run(exp_path, folder, args.epochs, args.top))
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
