"""Where the runs of a job train: this process, a local pool of processes, or Ray.

An :class:`Executor` is given the job's :class:`~engine.control.RunControl`
and folder, is :meth:`~Executor.submit`-ted :class:`~engine.jobs.runs.RunSpec`
s, and hands back :class:`Finished` records from :meth:`~Executor.results` as
runs finish.  Stopping goes through the control: once it is stopped, every
running run ends at its next step, and runs that had not started yet still
start, stop at once and report (so every spec has a record; a race streamed
in this process ends at once instead, see :class:`InProcessExecutor`).  Another
process can ask the same by creating the file ``STOP`` in the job's folder
(:func:`request_stop`); runs check it at their diagnostics records.
:meth:`~Executor.cancel` aborts instead: queued runs are dropped and no more
records come (an error, a second Ctrl-C, a consumer that gives up).

Every executor trains a spec with the same code (:func:`~engine.jobs.runs.train_run`),
so the records and the weights it writes are bit-identical whichever
executor runs it.  A new place to train is one new subclass and one entry in
:data:`EXECUTORS`; one that must be joined first (a cluster) opens its
:meth:`~Executor.session` around the job (the Ray executor, :mod:`engine.jobs.ray_executor`).
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

from engine.control import RunControl, ignore_interrupts
from engine.events import StepMetrics, SubRun
from engine.jobs.runs import RunSpec, train_run, train_to_record

STOP_FILE = "STOP"      # the runs stop once this file exists in the job's folder
POLL_SECONDS = 0.2      # how often a pool checks the control while its runs train


@dataclass(frozen=True)
class Finished:
    """A run is done: its spec and its record (see :func:`engine.jobs.runs.train_run`)."""
    spec: RunSpec
    record: dict


class Executor(ABC):
    """Trains run specs; see the module docstring.  Use as a context manager: leaving it early
    cancels what is left."""
    name: ClassVar[str]

    def __init__(self, control: RunControl, root: str | Path | None, workers: int = 1, stream: bool = False):
        self.control = control
        self.root = None if root is None else str(root)
        self.workers = workers
        self.stream = stream    # whether results() also yields each run's own events (in-process only)
        self.stop_file = None if root is None else Path(root) / STOP_FILE
        if self.stop_file is not None:
            self.stop_file.parent.mkdir(parents=True, exist_ok=True)
            self.stop_file.unlink(missing_ok=True)    # left over from an earlier, stopped job

    @abstractmethod
    def submit(self, spec: RunSpec) -> None:
        """Queue a run."""

    @abstractmethod
    def results(self) -> Iterator[object]:
        """:class:`Finished` for every submitted run, as they finish (and, when streaming, each
        run's :class:`~engine.events.SubRun` and events before its record)."""

    @abstractmethod
    def cancel(self) -> None:
        """Abort: stop the running runs at their next step, drop the queued ones (those not yet
        handed to a worker; a pool's handed-over ones start and stop at once)."""

    def close(self) -> None:
        """Release what the executor holds (after :meth:`results` or :meth:`cancel`)."""

    @classmethod
    @contextmanager
    def session(cls, cluster: str | None, workers: int) -> Iterator[int]:
        """Around a whole job, before anything is announced or written: join where the runs train
        (an error here is the job's input error); yields how many runs train at once.  This
        machine's executors have nothing to join."""
        yield workers

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.cancel()
        self.close()


class InProcessExecutor(Executor):
    """One run after another on the calling thread, under the job's own control (so pause, step
    and the live learning rate act on the run in progress).  With ``stream`` every run's events
    come before its record: the window's race shows them as they happen; a stop then ends the
    race at once (the runs not started yet are left out instead of reporting as stopped)."""
    name = "inprocess"

    def __init__(self, control, root, workers=1, stream=False):
        super().__init__(control, root, 1, stream)
        self.queue: list[RunSpec] = []
        self.cancelled = False

    def submit(self, spec: RunSpec) -> None:
        self.queue.append(spec)

    def results(self) -> Iterator[object]:
        while self.queue and not self.cancelled and not (self.stream and self.control.stopped):
            spec = self.queue.pop(0)
            if self.stream:
                yield SubRun(spec.index, f"{spec.variant} (seed {spec.seed})", spec.variant, spec.seed)
            run = train_run(spec, self.root, self.control)
            while True:
                try:
                    event = next(run)
                except StopIteration as done:
                    yield Finished(spec, done.value)
                    break
                if isinstance(event, StepMetrics) and self.stop_file is not None and self.stop_file.exists():
                    self.control.stop()
                if self.stream:
                    yield event

    def cancel(self) -> None:
        self.cancelled = True
        self.queue.clear()
        self.control.stop()


class LocalPoolExecutor(Executor):
    """A pool of ``workers`` processes on this machine (spawned: safe under the window's threads
    and with Numba).  The workers ignore Ctrl-C; a stop of the control creates the job's stop
    file, which every run checks at its diagnostics records."""
    name = "pool"

    def __init__(self, control, root, workers=2, stream=False):
        super().__init__(control, root, workers, False)   # runs train elsewhere: records only
        self.scratch = None        # a job that writes nothing still needs a place for its stop file
        if self.stop_file is None:
            self.scratch = Path(tempfile.mkdtemp(prefix="descent-job-"))
            self.stop_file = self.scratch / STOP_FILE
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=ignore_interrupts)
        self.futures: dict[Future, RunSpec] = {}

    def submit(self, spec: RunSpec) -> None:
        self.futures[self.pool.submit(train_to_record, spec, self.root, str(self.stop_file))] = spec

    def results(self) -> Iterator[object]:
        pending = set(self.futures)
        while pending:
            if self.control.stopped and not self.stop_file.exists():
                request_stop(self.stop_file.parent)
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: self.futures[f].index):
                yield Finished(self.futures[future], future.result())

    def cancel(self) -> None:
        request_stop(self.stop_file.parent)
        for future in self.futures:
            future.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


EXECUTORS: dict[str, type[Executor]] = {cls.name: cls for cls in (InProcessExecutor, LocalPoolExecutor)}


def default_workers() -> int:
    """Processes a comparison trains in when not told: both cores of a laptop, at most two."""
    return min(2, os.cpu_count() or 1)


def request_stop(folder: str | os.PathLike) -> None:
    """Ask the pool runs of the job writing ``folder`` to stop (another process may do this too)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    Path(folder, STOP_FILE).touch()

