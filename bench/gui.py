#!/usr/bin/env python
"""Window benchmark: does the GUI cost training speed, does it keep drawing, does Pause act at once?

    python bench/gui.py                # offscreen unless DISPLAY is set (e.g. under xvfb-run)
    python bench/gui.py --quick        # fewer, shorter rounds
    python bench/gui.py --json         # one JSON object on stdout instead of the table

What is measured (targets from issue 3):

* throughput: steps/s of the 784-300-100-10 Fashion-MNIST experiment (the
  "default" preset, or a built-in equivalent) trained by the real window with
  all plots live, versus the headless runner's loop (``Trainer.run`` with a
  ``RunWriter``, like ``python main.py run``) on the same experiment.  Rounds
  alternate (headless, window, window, headless, ...); each rate is counted
  from the first to the last diagnostics record, so data loading and the
  final test evaluation are left out on both sides; medians over rounds.
  Target: window >= 90% of headless.  Without the Fashion-MNIST files a 2-D
  784-free stand-in is used and the output says so.
* frames per second: repaints per second of the plots that follow every
  diagnostics record (loss, gradient norms, dead units, activations,
  update ratios; paint events on each plot's viewport, the slowest one
  reported) while the window trains the default 2-D spiral experiment at
  full speed.  The accuracy plot and the decision boundary are capped at
  10 redraws a second by design and listed separately.  Target: >= 20.
* time to learn: seconds from pressing Train on the default experiment
  (kernels compiled) to the first epoch with 90% validation accuracy, three
  times.  Target: < 2 s.
* small-net throughput: the same comparison on the default 2-D spiral
  experiment (2-32-32-32-3: thousands of steps a second, where the cost
  of events and drawing shows most), the window at full speed ("as fast as
  possible").  The headless side makes the same decision surfaces as the
  window's run (the engine makes them at most ~10 a second, see
  engine/training/cadence.py); a second headless side without them
  (``pictures`` off, as ``python main.py run`` trains) is reported beside
  it.  Rounds alternate in order.  Target: window >= 80% of headless.
* launch: seconds from starting ``python main.py`` to the first visible
  window (the launch window) and to the main window, with a fresh Numba
  cache (cold: the one-time compile) and again with that cache (warm), in a
  child process; Python may write its .pyc files as a user's would.  Target:
  warm <= 1.5 s to a visible window.
* pause latency: time from triggering Pause to the moment the training
  loop blocks in ``RunControl`` (no step starts after it), on both
  experiments, several pauses each.  Target: < 100 ms.

The machine is shared; look at medians and rerun when the load was high.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from engine.control import RunControl  # noqa: E402
from engine.events import StepMetrics  # noqa: E402
from engine.spec.experiment import default_experiment, load_experiment, resolve_experiment  # noqa: E402


# plots redrawn on every tick of the window's timer when new diagnostics arrive; the accuracy plot and
# the decision boundary are capped at 10 redraws a second by design (they change once an epoch, and a
# tiny net finishes dozens of epochs a second)
STEP_PLOTS = ("loss", "grad", "dead", "activation", "ratio")


LAUNCH_PROBE = r"""
import os, sys, time
t0 = float(sys.argv[1])
sys.path.insert(0, os.getcwd())
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
first = []
class Exposed(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Expose and obj.isWindowType() and obj.isExposed():
            name = obj.objectName()
            if not first:
                first.append(time.time() - t0)
            if name.startswith("MainWindow"):
                print(f"LAUNCH {first[0]:.3f} {time.time() - t0:.3f}", flush=True)
                QTimer.singleShot(0, QApplication.instance().quit)
        return False
init = QApplication.__init__
def hooked(self, *a, **k):
    init(self, *a, **k)
    self._probe = Exposed()
    self.installEventFilter(self._probe)
QApplication.__init__ = hooked
import main
sys.exit(main.main([]))
"""


def launch_seconds(cache_dir: str | None) -> tuple[float, float]:
    """(seconds to the first visible window, seconds to the main window) of ``python main.py``
    started in a child process with this Numba cache (None: the usual one)."""
    import subprocess

    env = dict(os.environ, **({"NUMBA_CACHE_DIR": cache_dir} if cache_dir else {}))
    env.pop("PYTHONDONTWRITEBYTECODE", None)   # a user's Python keeps its .pyc files
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", LAUNCH_PROBE, repr(t0)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=1800)
    line = next((x for x in out.stdout.splitlines() if x.startswith("LAUNCH ")), None)
    if line is None:
        raise RuntimeError(f"the launch probe saw no main window: {out.stderr[-500:]}")
    first, main_window = map(float, line.split()[1:])
    return first, main_window


class ObservedControl(RunControl):
    """A RunControl that notes when the training loop asks to continue while paused."""

    def __init__(self, paused: bool = False):
        super().__init__(paused)
        self.blocked_at: list[float] = []

    def allowed_steps(self, to_epoch_end, timeout=None):
        if self.paused and not self.stopped:
            self.blocked_at.append(time.perf_counter())
        return super().allowed_steps(to_epoch_end, timeout)


def fashion_experiment(steps: int) -> tuple[dict, str]:
    from engine.data import load_dataset

    try:
        exp = load_experiment("default")
        if exp["data"]["name"] != "fashion_mnist":
            raise ValueError
        label = "preset 'default'"
    except Exception:
        from gui.menus import builtin_experiments

        exp = builtin_experiments()[1]
        label = "built-in Fashion-MNIST default"
    try:
        load_dataset(exp["data"], exp["seed"])
    except Exception as exc:
        print(f"(Fashion-MNIST not available: {exc}; using a 2-D stand-in)", file=sys.stderr)
        exp = resolve_experiment(dict(exp, data={"name": "spirals", "n_samples": 20000}))
        label = "2-D stand-in (no Fashion-MNIST files)"
    layers = "-".join(str(layer["units"]) for layer in exp["model"]["layers"])
    exp = resolve_experiment(dict(exp, training=dict(exp["training"], epochs=10_000, max_steps=steps)))
    return exp, f"{label}: in-{layers}-out, batch {exp['training']['batch_size']}, {steps} steps"


def small_experiment(steps: int) -> tuple[dict, str]:
    exp = default_experiment()
    layers = "-".join(str(layer["units"]) for layer in exp["model"]["layers"])
    exp = resolve_experiment(dict(exp, training=dict(exp["training"], epochs=100_000, max_steps=steps)))
    return exp, f"default 2-D spirals: 2-{layers}-out, batch {exp['training']['batch_size']}, {steps} steps"


def rate_from(samples: list[tuple[float, int]]) -> float:
    (t0, s0), (t1, s1) = samples[0], samples[-1]
    return (s1 - s0) / (t1 - t0) if t1 > t0 else float("nan")


def headless_rate(exp: dict, folder: Path, pictures: bool = True) -> float:
    from engine.formats.runstore import RunWriter
    from engine.training.trainer import Trainer

    trainer = Trainer(exp)
    trainer.pictures = pictures
    writer = RunWriter(folder)
    writer.attach(trainer, checkpoint=True)
    samples = []
    for event in trainer.run(RunControl()):
        writer.handle(event)
        if isinstance(event, StepMetrics):
            samples.append((time.perf_counter(), event.step))
    writer.close()
    return rate_from(samples)


class Bench:
    def __init__(self, tmp: Path):
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        self.app = QApplication.instance() or QApplication([])
        from gui.main_window import MainWindow

        self.window = MainWindow(run_root=tmp / "runs", settings=QSettings(str(tmp / "s.ini"), QSettings.IniFormat),
                                 load_previous_runs=False)
        self.window._closing = True   # never block on a dialog
        self.window.control_factory = ObservedControl
        self.window.speed.set_fastest()   # throughput and frames are measured as fast as possible
        self.window.resize(1600, 1000)
        self.window.show()
        self.samples: list[tuple[float, int]] = []
        # timestamps taken on the worker thread when each batch leaves it
        from PySide6.QtCore import Qt

        self.window.worker.worker.batch.connect(self._on_batch, Qt.DirectConnection)
        self.paints: dict[str, int] = {}
        self._install_paint_counters()

    def _on_batch(self, run_id, events) -> None:
        steps = [e.step for e in events if isinstance(e, StepMetrics)]
        if steps:
            self.samples.append((time.perf_counter(), steps[-1]))

    def _install_paint_counters(self) -> None:
        from PySide6.QtCore import QEvent, QObject

        bench = self

        class Counter(QObject):
            def __init__(self, name):
                super().__init__()
                self.name = name

            def eventFilter(self, obj, event):
                if event.type() == QEvent.Paint:
                    bench.paints[self.name] = bench.paints.get(self.name, 0) + 1
                return False

        self._counters = []
        d = self.window.dashboard
        for name in ("loss", "accuracy", "grad", "dead", "activation", "ratio"):
            view = getattr(d, name).widget.viewport()
            counter = Counter(name)
            view.installEventFilter(counter)
            self._counters.append(counter)
        counter = Counter("boundary")
        d.output.boundary.viewport().installEventFilter(counter)
        self._counters.append(counter)

    def run_until(self, condition, timeout: float) -> bool:
        from PySide6.QtCore import QEventLoop, QTimer

        if condition():
            return True
        loop = QEventLoop()
        poll = QTimer()
        poll.setInterval(5)
        poll.timeout.connect(lambda: loop.quit() if condition() else None)
        poll.start()
        QTimer.singleShot(int(timeout * 1000), loop.quit)
        loop.exec()
        poll.stop()
        return condition()

    def start(self, exp: dict):
        self.run_until(lambda: self.window.active is None, 60)   # the previous job is over
        self.window.set_experiment(exp)
        self.run_until(lambda: self.window.data_panel.info is not None, 60)
        self.samples = []
        record = self.window.start_run()
        return record

    def window_rate(self, exp: dict) -> float:
        record = self.start(exp)
        self.run_until(lambda: record.finished, 600)
        return rate_from([s for s in self.samples if s[1] > 0])

    def fps(self, seconds: float) -> dict:
        exp = resolve_experiment(dict(default_experiment(), training=dict(default_experiment()["training"],
                                                                          epochs=100_000)))
        record = self.start(exp)
        self.run_until(lambda: record.step > 200, 120)          # warm: compiled, plots populated
        self.paints.clear()
        refreshes, step0, t0 = self.window.dashboard.refreshes, record.step, time.perf_counter()
        cpu0, proc0 = time.thread_time(), time.process_time()
        self.run_until(lambda: False, seconds)
        elapsed = time.perf_counter() - t0
        gui_cpu, proc_cpu = (time.thread_time() - cpu0) / elapsed, (time.process_time() - proc0) / elapsed
        per_plot = {k: v / elapsed for k, v in self.paints.items()}
        live = [v for k, v in per_plot.items() if k in STEP_PLOTS]
        out = {"fps_median_plot": statistics.median(live) if live else 0.0,
               "fps_min_plot": min(live) if live else 0.0,
               "redraw_ticks_per_s": (self.window.dashboard.refreshes - refreshes) / elapsed,
               "steps_per_s_while_drawing": (record.step - step0) / elapsed,
               "gui_thread_cpu_share": gui_cpu, "process_cpu_share": proc_cpu,
               "per_plot": {k: round(v, 1) for k, v in per_plot.items()}}
        self.window.stop()
        self.run_until(lambda: record.finished, 30)
        return out

    def time_to_learn(self, accuracy: float = 0.9) -> dict:
        """Seconds from pressing Train on the default experiment (kernels already compiled) to the
        first epoch whose validation accuracy reaches ``accuracy`` (issue 3: learning within 2 s)."""
        self.run_until(lambda: self.window.active is None, 60)
        self.window.set_experiment(resolve_experiment(default_experiment()))
        self.run_until(lambda: self.window.data_panel.info is not None, 60)
        t0 = time.perf_counter()
        self.window.train_action.trigger()
        record = self.window.active.record
        reached = lambda: any(a >= accuracy for a in record.epochs["val_accuracy"].data)  # noqa: E731
        self.run_until(lambda: reached() or record.finished, 60)
        seconds = time.perf_counter() - t0 if reached() else float("nan")
        self.window.stop()
        self.run_until(lambda: record.finished, 30)
        return {"accuracy": accuracy, "seconds": seconds,
                "epoch": next((i + 1 for i, a in enumerate(record.epochs["val_accuracy"].data) if a >= accuracy),
                              None)}

    def pause_latencies(self, exp: dict, pauses: int) -> list[float]:
        record = self.start(exp)
        self.run_until(lambda: record.step > 50, 120)
        out = []
        for _ in range(pauses):
            self.run_until(lambda: False, 0.4)
            if self.window.active is None:
                break    # the run ended: no more pauses to measure
            control = self.window.active.control
            n = len(control.blocked_at)
            t_click = time.perf_counter()
            self.window.pause_action.trigger()
            self.run_until(lambda: len(control.blocked_at) > n, 5)
            if len(control.blocked_at) > n:
                out.append(1000 * (control.blocked_at[n] - t_click))
            self.window.pause_action.trigger()   # resume
        self.window.stop()
        self.run_until(lambda: record.finished, 30)
        return out

    def close(self) -> None:
        self.window.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per side (default 3)")
    parser.add_argument("--steps", type=int, default=3000, help="steps per throughput round (default 3000)")
    parser.add_argument("--fps-seconds", type=float, default=6.0)
    parser.add_argument("--pauses", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1500 steps, 3 s of fps, 4 pauses")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--only", choices=("throughput", "small", "fps", "pause", "launch"),
                        help="measure one thing only")
    parser.add_argument("--small-steps", type=int, default=20000, help="steps per small-net round (default 20000)")
    parser.add_argument("--no-cold", action="store_true",
                        help="skip the cold launch (it compiles: minutes); warm launches use the usual cache")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval for this run (experiments)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.fps_seconds, args.pauses = 2, 1500, 3.0, 4

    import gui  # noqa: F401  (PySide6 guard before Qt objects exist)

    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)

    tmp = Path(tempfile.mkdtemp(prefix="descent-bench-gui-"))
    launch = {}
    if args.only in (None, "launch"):
        cache = None if args.no_cold else tempfile.mkdtemp(prefix="descent-bench-numba-")
        if args.no_cold:   # the usual cache: fill it (and the .pyc files) first
            launch_seconds(cache)
        if not args.no_cold:
            launch["cold"] = launch_seconds(cache)
            print(f"cold launch: window {launch['cold'][0]:.2f} s, main window {launch['cold'][1]:.2f} s",
                  file=sys.stderr)
        launch["warm"] = min(launch_seconds(cache) for _ in range(3))
        print(f"warm launch: window {launch['warm'][0]:.2f} s, main window {launch['warm'][1]:.2f} s",
              file=sys.stderr)
        if args.only == "launch":
            print(json.dumps({"launch": launch, "load_average": os.getloadavg()}, indent=1))
            return 0
    exp, label = fashion_experiment(args.steps)
    bench = Bench(tmp)
    headless, window = [], []
    for r in range(args.rounds if args.only in (None, "throughput") else 0):
        order = ("headless", "window") if r % 2 == 0 else ("window", "headless")
        for side in order:
            if side == "headless":
                headless.append(headless_rate(exp, tmp / f"headless-{r}"))
            else:
                window.append(bench.window_rate(exp))
            print(f"round {r + 1} {side}: {(headless if side == 'headless' else window)[-1]:,.0f} steps/s",
                  file=sys.stderr)
    small_exp, small_label = small_experiment(args.steps if args.quick else args.small_steps)
    small_h, small_w, small_bare = [], [], []
    for r in range(args.rounds if args.only in (None, "small") else 0):
        sides = ("headless", "window", "bare") if r % 2 == 0 else ("bare", "window", "headless")
        for side in sides:
            if side == "window":
                small_w.append(bench.window_rate(small_exp))
            else:
                (small_h if side == "headless" else small_bare).append(
                    headless_rate(small_exp, tmp / f"small-{side}-{r}", pictures=side == "headless"))
        print(f"small round {r + 1} (load {os.getloadavg()[0]:.1f}): headless {small_h[-1]:,.0f}, window "
              f"{small_w[-1]:,.0f}, headless without surfaces {small_bare[-1]:,.0f} steps/s", file=sys.stderr)
    fps = bench.fps(args.fps_seconds) if args.only in (None, "fps") else None
    learn = [bench.time_to_learn() for _ in range(3)] if args.only in (None, "fps") else []
    tiny = resolve_experiment(dict(default_experiment(), training=dict(default_experiment()["training"],
                                                                       epochs=100_000)))
    long_exp = fashion_experiment(1_000_000)[0]   # never ends before the pauses are done
    pause_big = bench.pause_latencies(long_exp, args.pauses) if args.only in (None, "pause") else []
    pause_tiny = bench.pause_latencies(tiny, args.pauses) if args.only in (None, "pause") else []
    bench.close()
    if args.only:
        print(json.dumps({"headless": headless, "window": window, "small_headless": small_h, "small_window": small_w,
                          "small_headless_without_surfaces": small_bare,
                          "launch": launch, "fps": fps, "time_to_learn": learn,
                          "pause_large": pause_big, "pause_tiny": pause_tiny, "load_average": os.getloadavg()},
                         indent=1))
        return 0

    h, w = statistics.median(headless), statistics.median(window)
    sh, sw, sb = statistics.median(small_h), statistics.median(small_w), statistics.median(small_bare)
    pauses = pause_big + pause_tiny
    result = {
        "experiment": label,
        "throughput": {"headless_steps_per_s": headless, "window_steps_per_s": window,
                       "headless_median": h, "window_median": w, "ratio": w / h},
        "small_net": {"experiment": small_label, "headless_steps_per_s": small_h, "window_steps_per_s": small_w,
                      "headless_median": sh, "window_median": sw, "ratio": sw / sh,
                      "headless_without_surfaces_steps_per_s": small_bare, "ratio_to_without_surfaces": sw / sb},
        "launch_seconds": launch,
        "fps": fps,
        "time_to_learn": learn,
        "pause_ms": {"large_net": pause_big, "tiny_net": pause_tiny,
                     "median": statistics.median(pauses) if pauses else None,
                     "max": max(pauses) if pauses else None},
        "targets": {"ratio >= 0.9": w / h >= 0.9, "small-net ratio >= 0.8": sw / sh >= 0.8,
                    "warm launch <= 1.5 s": bool(launch) and launch["warm"][0] <= 1.5, "fps >= 20": fps["fps_min_plot"] >= 20,
                    "learning < 2 s": bool(learn) and max(x["seconds"] for x in learn) < 2.0,
                    "pause < 100 ms": bool(pauses) and max(pauses) < 100},
        "platform": os.environ.get("QT_QPA_PLATFORM") or "xcb",
        "load_average": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"\nDescent window benchmark ({result['platform']}, load average "
          f"{', '.join(f'{x:.1f}' for x in result['load_average'])})")
    print(f"  throughput, {label}")
    print(f"    headless   {h:10,.0f} steps/s   rounds: {', '.join(f'{x:,.0f}' for x in headless)}")
    print(f"    window     {w:10,.0f} steps/s   rounds: {', '.join(f'{x:,.0f}' for x in window)}")
    print(f"    ratio      {w / h:10.1%}          target >= 90%")
    print(f"  throughput, {small_label} (window as fast as possible)")
    print(f"    headless   {sh:10,.0f} steps/s   rounds: {', '.join(f'{x:,.0f}' for x in small_h)}")
    print(f"    window     {sw:10,.0f} steps/s   rounds: {', '.join(f'{x:,.0f}' for x in small_w)}")
    print(f"    ratio      {sw / sh:10.1%}          target >= 80%")
    print(f"    headless without surfaces (main.py run) {sb:,.0f} steps/s; window / that {sw / sb:.1%}")
    for kind, (first, main_window) in launch.items():
        print(f"  {kind} launch: a window after {first:.2f} s, the main window after {main_window:.2f} s"
              + ("   target <= 1.5 s" if kind == "warm" else " (fresh Numba cache: the one-time compile)"))
    print(f"  frames per second while training the 2-D spirals at full speed ({fps['steps_per_s_while_drawing']:,.0f}"
          f" steps/s)")
    print(f"    slowest plot {fps['fps_min_plot']:.1f} fps, median {fps['fps_median_plot']:.1f}, redraw ticks "
          f"{fps['redraw_ticks_per_s']:.1f}/s   target >= 20")
    print(f"    per plot: {', '.join(f'{k} {v:.0f}' for k, v in fps['per_plot'].items())} "
          f"(accuracy and boundary capped at 10/s)")
    print(f"    CPU: GUI thread {fps['gui_thread_cpu_share']:.0%} of a core, whole process "
          f"{fps['process_cpu_share']:.0%}")
    if learn:
        print(f"  default experiment, Train pressed to {learn[0]['accuracy']:.0%} validation accuracy: "
              + ", ".join(f"{x['seconds']:.2f} s (epoch {x['epoch']})" for x in learn) + "   target < 2 s")
    print(f"  pause latency: median {result['pause_ms']['median']:.1f} ms, max {result['pause_ms']['max']:.1f} ms"
          f"   target < 100 ms")
    print(f"    large net: {', '.join(f'{x:.1f}' for x in pause_big)}")
    print(f"    tiny net:  {', '.join(f'{x:.1f}' for x in pause_tiny)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
