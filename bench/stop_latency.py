"""How long a Stop takes on a huge network (issue 14, item 3), measured the way a user meets it.

Trains the Fashion-MNIST ``default`` preset with its first hidden layer widened to ``--units``
(99,999: 88.6 million parameters, the network of the issue) through ``run_job``, as the window
does, stops it once ``--steps`` steps have run, and prints the seconds from ``RunControl.stop()``
to each thing a user waits for:

* ``ended``: the run's end is known (the first WritingFiles, or RunFinished with no folder): the
  window then shows "stopped at step N; writing ...";
* ``finished``: RunFinished, every file on disk (the run list says "stopped");
* and, for comparison, what the same stop cost before: the test-set evaluation the stopped run
  now leaves out (timed here on its own) and writing the second weights copy.

Numbers depend on the machine and its load (printed with the load average); nothing here is a
test.  Run: ``python bench/stop_latency.py [--units 99999] [--steps 3] [--out DIR]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.control import RunControl  # noqa: E402
from engine.events import RunFinished, RunStarted, WritingFiles  # noqa: E402
from engine.formats.runlayout import WEIGHTS_FORMATS  # noqa: E402
from engine.jobs.runner import JobRequest, run_job  # noqa: E402
from engine.spec.experiment import load_experiment, with_overrides  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402


def huge(units: int) -> dict:
    exp = load_experiment("default")
    layers = [dict(exp["model"]["layers"][0], units=units)] + list(exp["model"]["layers"][1:])
    return with_overrides(exp, model=dict(exp["model"], layers=layers))


def measure(units: int, steps: int, folder: Path | None, weights: str, checkpoint: bool) -> dict:
    control = RunControl()
    times: dict = {}
    request = JobRequest(huge(units), folder, pictures=True, weights_files=WEIGHTS_FORMATS[weights],
                         checkpoint=checkpoint, write_limit=None)
    def stop_after_steps():
        while control.steps_run < steps:
            time.sleep(0.01)
        times["stop"] = time.perf_counter()
        control.stop()

    threading.Thread(target=stop_after_steps, daemon=True).start()
    for event in run_job(request, control):
        now = time.perf_counter()
        if isinstance(event, RunStarted):
            times["n_params"] = event.n_params
        elif isinstance(event, WritingFiles):
            times.setdefault("ended", now)
            times.setdefault("files", event.files)
        elif isinstance(event, RunFinished):
            times.setdefault("ended", now)
            times["finished"] = now
            times["status"], times["reason"], times["step"] = event.status, event.reason, event.step
    return times


def test_evaluation_seconds(units: int) -> float:
    """What the stopped run leaves out: one evaluation of the test set, timed alone."""
    trainer = Trainer(huge(units))
    start = time.perf_counter()
    trainer.evaluate_split("test")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=99_999)
    parser.add_argument("--steps", type=int, default=3, help="stop once this many steps have run")
    parser.add_argument("--out", help="run folder to write (default: a temporary one; 'none': write nothing)")
    parser.add_argument("--weights-format", default="safetensors", choices=tuple(WEIGHTS_FORMATS))
    parser.add_argument("--checkpoint", action="store_true", help="also write checkpoint.npz")
    parser.add_argument("--skip-before", action="store_true", help="do not time the left-out test evaluation")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = None if args.out == "none" else Path(args.out or Path(tmp) / "run")
        t = measure(args.units, args.steps, folder, args.weights_format, args.checkpoint)
        print(f"load average (1 min) before/after: {load:.2f}/{os.getloadavg()[0]:.2f}")
        print(f"{t['n_params']:,} parameters, stopped at step {t['step']} ({t['status']}): {t['reason']}")
        print(f"stop -> run ended (window: stopped, writing):  {t['ended'] - t['stop']:.2f} s")
        print(f"stop -> RunFinished (files on disk):            {t['finished'] - t['stop']:.2f} s")
        if "files" in t:
            print("files written after the end: " + ", ".join(f"{n} {s / 1e6:,.0f} MB" for n, s in t["files"]))
    if not args.skip_before:
        print(f"test-set evaluation the stop no longer waits for: {test_evaluation_seconds(args.units):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
