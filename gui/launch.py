"""The launch window: visible within a second, saying what happens until the main window opens.

Importing NumPy, Numba, the engine and the plots takes a few seconds, and the
first launch after an install compiles the training kernels (about a
minute).  Both used to happen before any window appeared, so a newcomer saw
nothing and thought it hung.  Now :func:`gui.app.main` shows this window
first (Qt only), and a :class:`Loader` on a worker thread does the slow part
step by step:

1. load the engine (NumPy, Numba, the kernels);
2. check Numba's cache (:func:`engine.jobs.warmup.kernels_cached`);
3. only when it is cold: compile the kernel groups (:func:`engine.jobs.warmup.warm_up`),
   each reported here and on the terminal with its time.

Then the GUI thread builds the main window and this one closes.  The worker
never touches a widget: progress crosses as signals carrying strings and
numbers.  Tests give the loader their own steps (``steps=``), no compiling.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Sequence, TextIO

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

# (key, title, what, share of the compile): engine.jobs.warmup.GROUPS, repeated here so the window
# can list them before the engine is imported (tests/test_gui_launch.py checks they agree)
GROUPS = (
    ("_train_steps", "training step", "forward and backward pass of every layer, the optimizers, clipping", 0.72),
    ("probe", "diagnostics", "gradient norms, activations, dead units for the plots", 0.08),
    ("predict", "predictions", "the decision boundary and the predictions tab", 0.12),
    ("evaluate", "evaluation", "loss and accuracy on the validation and test sets", 0.08),
)
# engine kernels Numba compiles inside a group before the group's own (counted on a cold cache): they
# move the progress bar through the long training-step group
INNER_KERNELS = {"_train_steps": 46}
ONE_TIME = ("Descent compiles its training kernels once after an install: about a minute on a two-core laptop, "
            "longer on a busy machine. Later launches open in a few seconds.")


def engine_steps() -> tuple:
    """The real loader's steps: (title, function(report) -> dict of findings)."""
    def load_engine(report):
        import engine.jobs.runner  # noqa: F401  lazy: the launch window shows before this slow import
        return {}

    def check_cache(report):
        from engine.jobs.warmup import kernels_cached  # lazy: imported by load_engine already
        return {"cold": not kernels_cached()}

    def compile_kernels(report):
        from engine.jobs.warmup import warm_up  # lazy: imported by load_engine already
        warm_up(report)
        return {}

    return (("loading NumPy, Numba and the engine", load_engine), ("checking the compiled kernels", check_cache),
            ("compiling the kernels", compile_kernels))


class Loader(QObject):
    """Runs the steps on the thread it was moved to; the compile step only when the cache is cold."""

    step_started = Signal(str)
    cold = Signal()
    compiled = Signal(str, float, object)    # kernel name, seconds, group key or None
    failed = Signal(str)
    finished = Signal()

    def __init__(self, steps: Sequence | None = None):
        super().__init__()
        self.steps = tuple(steps) if steps is not None else engine_steps()

    @Slot()
    def run(self) -> None:
        found: dict = {}
        try:
            for title, step in self.steps:
                if title.startswith("compiling") and not found.get("cold"):
                    continue
                self.step_started.emit(title)
                found.update(step(self._report) or {})
                if found.get("cold") and not title.startswith("compiling") and "announced" not in found:
                    found["announced"] = True
                    self.cold.emit()
        except Exception as exc:  # noqa: BLE001  (shown in the window and on the terminal, not swallowed)
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        self.finished.emit()

    def _report(self, compiled) -> None:
        self.compiled.emit(compiled.name, compiled.seconds, compiled.group)


class LaunchWindow(QWidget):
    """What Descent is doing before its main window opens; when the kernels compile, one line
    per kernel group (done, with its time) and a progress bar weighted by each group's share.
    ``loaded(ok)`` once the loader is done (on the GUI thread)."""

    loaded = Signal(bool)

    def __init__(self, stream: TextIO | None = None):
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.setWindowTitle("Descent — starting")
        self.setMinimumWidth(660)
        layout = QVBoxLayout(self)
        self.title = QLabel("<b style='font-size:14pt'>Descent</b> · a playground for training deep networks")
        self.state = QLabel("starting…")
        self.note = QLabel(ONE_TIME)
        self.note.setWordWrap(True)
        self.note.hide()
        self.group_labels = {}
        for key, title, what, _ in GROUPS:
            label = QLabel(f"○ {title}: <span style='color:#666'>{what}</span>")
            label.setWordWrap(True)
            label.hide()
            self.group_labels[key] = label
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.hide()
        self.current = QLabel()
        self.current.setStyleSheet("color:#555")
        for w in (self.title, self.state, self.note, *self.group_labels.values(), self.bar, self.current):
            layout.addWidget(w)
        layout.addStretch(1)
        self.started = time.monotonic()
        self.done_groups: dict[str, float] = {}
        self.inner = 0             # kernels compiled inside the group in progress
        self.compiling_since = None
        self._clock = QTimer(self)
        self._clock.setInterval(500)
        self._clock.timeout.connect(self._tick)
        self.ok = True
        self.thread = self.loader = None

    # -- slots, on the GUI thread -------------------------------------------------------------------

    def on_step(self, title: str) -> None:
        self.state.setText(title + "…")

    def on_cold(self) -> None:
        """The cache is cold: explain the one-time compile, list the groups, tell the terminal."""
        self.setWindowTitle("Descent — first launch: compiling")
        self.setMinimumHeight(340)
        self.note.show()
        self.bar.show()
        for label in self.group_labels.values():
            label.show()
        self.compiling_since = time.monotonic()
        self._clock.start()
        print("descent: first launch: " + ONE_TIME, file=self.stream, flush=True)
        self._tick()

    def on_compiled(self, name: str, seconds: float, group) -> None:
        if group in self.group_labels:
            self.done_groups[group] = seconds
            key, title, what, _ = next(g for g in GROUPS if g[0] == group)
            self.group_labels[group].setText(f"✔ {title}: <span style='color:#666'>{what}</span> "
                                             f"<b>{seconds:.0f} s</b>")
            print(f"descent:   compiled {title} ({what}) in {seconds:.0f} s  [{len(self.done_groups)}/"
                  f"{len(GROUPS)}]", file=self.stream, flush=True)
        else:
            self.inner += 1
            self.current.setText(f"just compiled: {name} ({seconds:.1f} s)")
        self._tick()

    def closeEvent(self, event) -> None:
        """Closed before the loader is done: quit at once.  A compile cannot be interrupted, and
        Qt would abort on a thread still running at exit; what is compiled so far stays cached."""
        if self.thread is not None and self.thread.isRunning():
            print("descent: closed while starting; kernels compiled so far stay cached", file=self.stream, flush=True)
            os._exit(0)
        super().closeEvent(event)

    def on_finished(self) -> None:
        self._clock.stop()
        self.thread.quit()
        self.thread.wait()
        self.loaded.emit(self.ok)

    def on_failed(self, message: str) -> None:
        self.ok = False
        self.state.setText(f"failed: {message}")
        print(f"descent: {message}", file=self.stream, flush=True)

    def _tick(self) -> None:
        if self.compiling_since is None:
            return
        elapsed = time.monotonic() - self.compiling_since
        done = sum(share for key, _, _, share in GROUPS if key in self.done_groups)
        for key, _, _, share in GROUPS:   # the long group in progress: by the kernels compiled inside it
            if key in INNER_KERNELS and key not in self.done_groups:
                done += share * min(0.95, self.inner / INNER_KERNELS[key])
        self.bar.setValue(round(1000 * done))
        pending = [key for key, *_ in GROUPS if key not in self.done_groups]
        for key, title, what, _ in GROUPS:   # the group in progress says so
            if pending and key == pending[0]:
                self.group_labels[key].setText(f"◔ <b>{title}</b> <i>(compiling…)</i>: "
                                               f"<span style='color:#666'>{what}</span>")
        self.bar.setFormat(f"{done:.0%} · {elapsed:.0f} s so far")
        self.state.setText(f"compiling the kernels (once) · {len(self.done_groups)} of {len(GROUPS)} groups done")


def start_loading(window: LaunchWindow, steps: Sequence | None = None) -> None:
    """Run a :class:`Loader` on its own thread, wired to ``window`` (which keeps both alive);
    ``window.loaded(ok)`` says when it is done."""
    window.thread = thread = QThread()
    thread.setObjectName("descent-launch")
    window.loader = loader = Loader(steps)
    loader.moveToThread(thread)
    loader.step_started.connect(window.on_step)
    loader.cold.connect(window.on_cold)
    loader.compiled.connect(window.on_compiled)
    loader.failed.connect(window.on_failed)
    loader.finished.connect(window.on_finished)
    thread.started.connect(loader.run)
    thread.start()
