"""The training thread: the one place where the window meets the engine's loop.

A :class:`TrainingWorker` lives in its own ``QThread``.  It drives
``Trainer.run(control)`` (a generator yielding events between chunks of
compiled steps), writes every event to the run folder with ``RunWriter`` and
forwards the events to the GUI thread in batches: at most one ``batch``
signal every ``BATCH_SECONDS`` (about 30 per second), never one per step.  A
batch goes out at once when the run starts, compiles, finishes, or is
paused/stepping (the generator then blocks inside ``RunControl``, so nothing
may stay buffered).  Commands go the other way through the thread-safe
``RunControl`` (pause, resume, step, stop, learning rate), so they act at the
next step boundary even while the worker's event loop is busy training.

The worker never touches a widget; events are immutable, so the GUI can keep
them.  Each run has a ``run_id``; the window drops batches of runs it no
longer tracks.

The coach (:mod:`engine.coach`) watches the job's events here too, on the
training thread: its findings (immutable) join the batch right after the
event that revealed them, so the GUI only shows them and never runs the
coach's arithmetic.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.coach import Coach
from engine.control import RunControl
from engine.errors import DescentError
from engine.events import Compiling, RunFinished, RunStarted, frozen_array

from .records import DataPoints, RunFailed, SubRun

BATCH_SECONDS = 1 / 30
MAX_POINTS = 3000   # training points sent for the decision-boundary view
URGENT = (RunStarted, Compiling, RunFinished, SubRun)   # sent at once
try:
    from engine.spec.stages import StageFinished, StagesFinished, StageStarted
    URGENT += (StageStarted, StageFinished, StagesFinished)
except ImportError:  # pragma: no cover - stages not part of this engine
    pass


@dataclass
class RunJob:
    run_id: int
    experiment: dict           # resolved
    folder: Path | None        # where RunWriter writes; None: do not write (benchmarks)
    control: RunControl = field(default_factory=RunControl)
    init_weights: dict | None = None


def data_points(run_id: int, dataset) -> DataPoints | None:
    """Training points in the original input space (2-D classification data only)."""
    if dataset.x_train.shape[1] != 2 or dataset.task != "classification":
        return None
    n = len(dataset.x_train)
    rows = np.arange(n) if n <= MAX_POINTS else np.linspace(0, n - 1, MAX_POINTS).astype(int)
    return DataPoints(run_id, frozen_array(dataset.to_original(dataset.x_train[rows]), np.float32),
                      frozen_array(np.asarray(dataset.y_train)[rows], np.int64))


class TrainingWorker(QObject):
    """Runs one job at a time on the thread it was moved to."""

    batch = Signal(int, object)      # run_id, tuple of events
    done = Signal(int)               # run_id: the job is over (after its last batch)

    def __init__(self, batch_seconds: float = BATCH_SECONDS):
        super().__init__()
        self.batch_seconds = batch_seconds
        self.batches_sent = 0

    @Slot(object)
    def run(self, job: RunJob) -> None:
        from engine import __version__
        from engine.formats.runstore import RunWriter
        from engine.training.trainer import Trainer

        pending: list = []
        writer = None
        coach = Coach()
        last = time.monotonic()
        try:
            if job.experiment.get("stages"):   # multi-stage workflow (transfer learning, pretraining)
                from engine.jobs.stages import StagesWriter, run_stages

                if job.folder is not None:
                    writer = StagesWriter(job.folder, job.experiment, __version__)
                events = run_stages(job.experiment, job.control)
            elif job.experiment.get("compare"):   # variants: one after another, first seed
                events = self._variants(job)
            else:
                trainer = Trainer(job.experiment, run_id=job.run_id, init_weights=job.init_weights)
                if job.folder is not None:
                    writer = RunWriter(job.folder, __version__)
                    writer.attach(trainer, checkpoint=True)   # same folder contents as the headless runner
                points = data_points(job.run_id, trainer.data)
                if points is not None:
                    pending.append(points)
                events = trainer.run(job.control)
            for event in events:
                if writer is not None:
                    writer.handle(event)
                pending.append(event)
                if isinstance(event, SubRun):   # the next variant reuses the job's run_id: watch it afresh
                    coach.forget(job.run_id)
                else:
                    pending.extend(coach.observe(event))
                now = time.monotonic()
                if (now - last >= self.batch_seconds or job.control.paused or job.control.stopped
                        or isinstance(event, URGENT)):
                    self._send(job.run_id, pending)
                    pending = []
                    last = now
        except DescentError as exc:
            pending.append(RunFailed(job.run_id, str(exc)))
        except Exception as exc:  # a bug: report it instead of killing the thread silently
            traceback.print_exc()
            pending.append(RunFailed(job.run_id, f"{type(exc).__name__}: {exc}"))
        finally:
            if writer is not None and hasattr(writer, "close"):
                writer.close()
            if pending:
                self._send(job.run_id, pending)
            self.done.emit(job.run_id)

    def _variants(self, job: RunJob):
        """Every variant of a ``compare`` section with its first seed, one run each (the
        quick race the window can show; all seeds and the statistics: ``python main.py run``)."""
        from engine import __version__
        from engine.jobs.compare import comparison_jobs
        from engine.formats.runstore import RunWriter
        from engine.training.trainer import Trainer

        cfg = job.experiment["compare"]
        for variant in comparison_jobs(job.experiment, seeds=[cfg["seeds"][0]]):
            if job.control.stopped:
                return
            yield SubRun(f"{variant.variant} (seed {variant.seed})")
            trainer = Trainer(variant.experiment, run_id=job.run_id)
            writer = None
            if job.folder is not None:
                writer = RunWriter(Path(job.folder) / variant.folder, __version__)
                writer.attach(trainer, checkpoint=False)
            points = data_points(job.run_id, trainer.data)
            if points is not None:
                yield points
            try:
                for event in trainer.run(job.control):
                    if writer is not None:
                        writer.handle(event)
                    yield event
            finally:
                if writer is not None:
                    writer.close()

    def _send(self, run_id: int, events: list) -> None:
        self.batches_sent += 1
        self.batch.emit(run_id, tuple(events))


class WorkerThread(QObject):
    """Owns the QThread and the worker; ``submit(job)`` queues a run on it."""

    _submit = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("descent-training")
        self.worker = TrainingWorker()
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.run)
        self.thread.start()

    def submit(self, job: RunJob) -> None:
        self._submit.emit(job)

    def shutdown(self, controls=(), timeout_ms: int = 60_000) -> bool:
        """Stop the given runs, let the worker finish its job, end the thread."""
        for control in controls:
            control.stop()
        self.thread.quit()
        return self.thread.wait(timeout_ms)
