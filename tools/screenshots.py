"""Retake README's screenshots: the real window, at a laptop's size, training real presets.

    .venv/bin/python tools/screenshots.py                     # all shots, 1366x768, into docs/
    .venv/bin/python tools/screenshots.py --size 1280x720 --out /tmp/shots --only default compare

Runs offscreen (``QT_QPA_PLATFORM=offscreen``) unless a display is set (then under it, e.g.
``xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python tools/screenshots.py``).  Every shot
uses a temporary run folder and temporary settings, so neither the user's ``runs/`` nor their
remembered window layout changes.  Shots (README names them):

* ``screenshot.png``: the built-in spiral experiment paused mid-run (boundary half formed);
* ``layers.png``:     preset 04 (dying ReLUs), its six variants raced for LAYER_STEPS steps each and
                      overlaid: per-layer curves, colour = layer, line style = run;
* ``compare.png``:    the Compare tab after preset 10 (regularization, moons) over 3 seeds, each run
                      cut at COMPARE_STEPS steps (the tab's quick look);
* ``arena.png``:      the optimizer arena after a few hundred steps of its first lesson;
* ``transfer.png``:   preset 12 (transfer learning), both stages with the unfrozen phase marked.

Waits on conditions (never on fixed sleeps) with generous time limits; a shot that cannot be taken
(no Fashion-MNIST files, say) is reported and skipped.  Look at every PNG at full size before
committing it.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHOTS = ("default", "layers", "compare", "arena", "transfer")
FILES = {"default": "screenshot.png", "layers": "layers.png", "compare": "compare.png", "arena": "arena.png",
         "transfer": "transfer.png"}
COMPARE_STEPS = 600   # per run of the comparison shot (a quick look; the full preset takes minutes)
LAYER_STEPS = 400  # per variant of preset 04: enough for the dead-unit counts to part
TIMEOUT = 600.0   # seconds for one shot's training (the first one may compile the kernels)


def wait_until(app, condition, timeout: float = TIMEOUT, what: str = "") -> None:
    """Process events until ``condition()`` holds; raises TimeoutError after ``timeout`` seconds."""
    from PySide6.QtCore import QEventLoop

    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"gave up waiting for {what or 'the window'} after {timeout:.0f} s")
        # at most 20 ms of events at a time: a training run posts batches without end, and an
        # unbounded processEvents() returned only when the run was over (no mid-run shot)
        app.processEvents(QEventLoop.AllEvents, 20)
        time.sleep(0.005)


def settle(app, seconds: float = 0.6) -> None:
    """Let layouts, plots and the redraw timer catch up before a grab."""
    from PySide6.QtCore import QEventLoop

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents(QEventLoop.AllEvents, 20)
        time.sleep(0.005)


def new_window(app, size, run_root: Path, settings_file: Path, experiment=None):
    from PySide6.QtCore import QSettings

    from gui.main_window import MainWindow

    w = MainWindow(experiment, run_root=run_root, settings=QSettings(str(settings_file), QSettings.IniFormat),
                   load_previous_runs=False)
    w._closing = True   # problems go to the status bar, not to modal boxes nobody can click
    w.resize(*size)
    w.show()
    wait_until(app, lambda: w.data_panel.info is not None, 120, "the data preview")
    return w


def load(w, name: str, max_steps: int | None = None) -> None:
    """Load preset ``name`` into the editors (``max_steps``: a shorter run, for a quick shot)."""
    from engine.spec.experiment import load_experiment

    exp = load_experiment(name)
    if max_steps is not None:
        exp["training"]["max_steps"] = max_steps
    w.set_experiment(exp, source=f"preset {name}")
    w.data_panel.wait_loaded()


def train_to(app, w, fraction: float) -> None:
    """Train the editors' experiment to its end, or (``fraction`` < 1) run exactly that share of
    its planned steps and stay paused there: Step's budget, so a loaded machine cannot overshoot."""
    if fraction >= 1:
        record = w.start_run()
        if record is None:
            raise RuntimeError("the experiment in the editors cannot run")
        wait_until(app, lambda: w.active is None, what="the run to finish")
    else:
        n_train, batch_size, epochs, max_steps = w.optimizer_panel.plan
        planned = math.ceil(n_train / max(1, min(batch_size, n_train))) * epochs
        steps = max(1, int(fraction * (planned if max_steps is None else min(planned, max_steps))))
        record = w.start_run(paused=True, steps=steps)
        if record is None:
            raise RuntimeError("the experiment in the editors cannot run")
        wait_until(app, lambda: record.step >= steps, what=f"{fraction:.0%} of the run")
    w.redraw()
    settle(app)


def shot_default(app, w) -> None:
    from engine.spec.experiment import default_experiment, resolve_experiment

    w.set_experiment(resolve_experiment(default_experiment()))
    w.data_panel.wait_loaded()
    train_to(app, w, 0.35)


def shot_layers(app, w) -> None:
    load(w, "04-dying-relus", max_steps=LAYER_STEPS)
    train_to(app, w, 1.0)


def shot_compare(app, w) -> None:
    load(w, "10-regularization")
    w.tabs.setCurrentWidget(w.comparison)
    view = w.comparison
    view.seeds.set_value(3)
    view.max_steps.set_value(COMPARE_STEPS)   # the quick look: every run stops there
    view.start()
    wait_until(app, lambda: not view.running, what="the comparison")
    settle(app)


def shot_arena(app, w) -> None:
    w.tabs.setCurrentWidget(w.arena)
    arena = w.arena
    arena.step_race(250)
    settle(app)


def shot_transfer(app, w) -> None:
    load(w, "12-transfer-learning")
    train_to(app, w, 1.0)
    first_seed = w.current_experiment()["stages"]["seeds"][0]
    for record in list(w.records.values()):   # one seed's stages: twelve overlaid runs are a blur
        if f"(seed {first_seed})" not in record.name:
            w.runs.set_checked(record.run_id, False, by_user=False)
    w.redraw()
    settle(app)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1366x768", help="window size WIDTHxHEIGHT (default 1366x768)")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNGs (default docs/)")
    parser.add_argument("--only", nargs="*", choices=SHOTS, help="take only these shots")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Descent")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="descent-shots-", ignore_cleanup_errors=True) as tmp:
        for name in args.only or SHOTS:
            w = new_window(app, (width, height), Path(tmp) / name, Path(tmp) / f"{name}.ini")
            try:
                globals()[f"shot_{name}"](app, w)
                path = out / FILES[name]
                if not w.grab().save(str(path)):
                    raise OSError(f"cannot write {path}")
                print(f"{path}: {w.width()}x{w.height()}")
            except Exception as exc:   # one shot's trouble must not lose the others
                failed += 1
                print(f"{name}: not taken: {type(exc).__name__}: {exc}", file=sys.stderr)
            finally:
                w.close()
                settle(app, 0.2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
