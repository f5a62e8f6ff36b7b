"""The training thread: the one place where the window meets the engine's job runner.

A :class:`TrainingWorker` lives in its own ``QThread``.  It drives
:func:`engine.jobs.runner.run_job` (a generator of events; the runner decides
what kind of job the request is and writes its files) and forwards the events
to the GUI thread in batches: at most one ``batch`` signal every
``BATCH_SECONDS`` (about 30 per second), never one per step.  A batch goes
out at once on a milestone (a job, run, stage or variant starts or ends,
kernels compile, a comparison's or sweep's run finishes) and while the job is paused or
stepping (the generator then blocks inside ``RunControl``, so nothing may
stay buffered).  Commands go the other way through the thread-safe
``RunControl`` (pause, resume, step, stop, learning rate), so they act at the
next step boundary even while the worker's event loop is busy training.

A job may bring *watchers*: objects whose ``observe(event)`` returns new
events, run here on the training thread so the GUI thread only shows what
they found.  The Train tab's watcher is the coach (:mod:`engine.coach`): its
findings join the batch right after the event that revealed them; the
Compare tab's turns finished runs into the snapshots it draws.

The worker never touches a widget; events are immutable, so the GUI can keep
them.  Each job has a ``job_id``; the window drops batches of jobs it no
longer tracks.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.control import RunControl
from engine.errors import DescentError
from engine.events import (ComparisonFinished, ComparisonRecord, Compiling, JobFinished, JobStarted, LRFinderFinished,
                           RunFailed, RunFinished, RunStarted, SubRun, SweepFinished, SweepRecord, WritingFiles)
from engine.jobs.runner import JobRequest, run_job
from engine.spec.stages import StageFinished, StagesFinished, StageStarted

BATCH_SECONDS = 1 / 30
URGENT = (JobStarted, JobFinished, RunStarted, Compiling, RunFinished, SubRun, StageStarted, StageFinished,
          StagesFinished, ComparisonRecord, ComparisonFinished, SweepRecord, SweepFinished,
          LRFinderFinished, WritingFiles)   # sent at once


@dataclass
class WorkerJob:
    job_id: int
    request: JobRequest
    control: RunControl = field(default_factory=RunControl)
    watchers: tuple = ()       # observe(event) -> list of new events, called on the training thread


class TrainingWorker(QObject):
    """Runs one job at a time on the thread it was moved to."""

    batch = Signal(int, object)      # job_id, tuple of events
    done = Signal(int)               # job_id: the job is over (after its last batch)

    def __init__(self, batch_seconds: float = BATCH_SECONDS):
        super().__init__()
        self.batch_seconds = batch_seconds
        self.batches_sent = 0

    @Slot(object)
    def run(self, job: WorkerJob) -> None:
        pending: list = []
        last = time.monotonic()
        try:
            for event in run_job(job.request, job.control):
                pending.append(event)
                for watcher in job.watchers:
                    pending.extend(watcher.observe(event))
                now = time.monotonic()
                if (now - last >= self.batch_seconds or job.control.paused or job.control.stopped
                        or isinstance(event, URGENT)):
                    self._send(job.job_id, pending)
                    pending = []
                    last = now
        except DescentError as exc:
            pending.append(RunFailed(job.job_id, str(exc)))
        except Exception as exc:  # a bug or a dead worker process: report it instead of killing the thread
            traceback.print_exc()
            pending.append(RunFailed(job.job_id, f"{type(exc).__name__}: {exc}"))
        finally:
            if pending:
                self._send(job.job_id, pending)
            self.done.emit(job.job_id)

    def _send(self, job_id: int, events: list) -> None:
        self.batches_sent += 1
        self.batch.emit(job_id, tuple(events))


class WorkerThread(QObject):
    """Owns the QThread and the worker; ``submit(job)`` queues a job on it."""

    _submit = Signal(object)

    def __init__(self, parent=None, name: str = "descent-training"):
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName(name)
        self.worker = TrainingWorker()
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.run)
        self.thread.start()

    def submit(self, job: WorkerJob) -> None:
        self._submit.emit(job)

    def shutdown(self, controls=(), timeout_ms: int = 60_000) -> bool:
        """Stop the given jobs, let the worker finish its job, end the thread."""
        for control in controls:
            control.stop()
        self.thread.quit()
        return self.thread.wait(timeout_ms)
