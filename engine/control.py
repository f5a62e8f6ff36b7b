"""Commands from a consumer (CLI, window) to a running training generator.

The generator checks a :class:`RunControl` between chunks of steps, and
every command also raises ``flags[0]``, which the compiled chunk reads
before each step, so a command takes effect at the next step boundary even
in the middle of a long chunk.  All methods are thread-safe; the window
calls them from the GUI thread while the generator runs on a worker.

A *pace* (:meth:`RunControl.set_pace`, at most so many steps a second) lets a
window show a tiny network learning at a speed the eye can follow: the
control hands out steps in slices of about ``PACE_SLICE_SECONDS`` and waits
between them (on its condition, so every command still acts at once).  Only
where chunks end changes, never the steps themselves, so a paced run ends
with the same weights, bit for bit, as an unpaced one.  The count of steps run
(:attr:`RunControl.steps_run`) is kept here too, so a consumer can show
progress from the first step of a network too large to report often.

A terminal drives the same control with Ctrl-C (:func:`stop_on_interrupt`,
the one place that handles SIGINT): the first press stops at the next step
boundary, so the run still writes its weights; a second press aborts.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

import numpy as np

STOP_NOTICE = "stopping at the next step (Ctrl-C again to abort)..."
PACE_SLICE_SECONDS = 1 / 30   # a paced run takes its steps in slices this long (a frame of the window)
PACE_CATCH_UP_SECONDS = 0.1   # time lost (an evaluation, a slow step) a paced run may make up at full speed


class RunControl:
    def __init__(self, paused: bool = False):
        self._cond = threading.Condition()
        self._paused = paused
        self._stopped = False
        self._budget = 0          # steps allowed while paused (Step button)
        self._epoch_budget = False  # "step one epoch" while paused
        self._learning_rate: float | None = None
        self._pace: float | None = None   # most steps per second (None: as fast as possible)
        self._due = 0.0                   # monotonic time the next paced slice may start
        self._steps_run = 0
        # [0]: end the compiled chunk after the step in progress; [1]: the chunk diverged (kernel's)
        self.flags = np.zeros(2, dtype=np.int64)

    def _interrupt(self) -> None:
        self.flags[0] = 1

    # -- consumer side -------------------------------------------------------------------------

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._interrupt()
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._budget = 0
            self._epoch_budget = False
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._interrupt()
            self._cond.notify_all()

    def step(self, steps: int = 1) -> None:
        """While paused: run this many more steps, then pause again."""
        with self._cond:
            self._paused = True
            self._budget += max(1, int(steps))
            self._interrupt()
            self._cond.notify_all()

    def step_epoch(self) -> None:
        """While paused: run to the end of the current epoch, then pause again."""
        with self._cond:
            self._paused = True
            self._epoch_budget = True
            self._interrupt()
            self._cond.notify_all()

    def set_learning_rate(self, value: float | None) -> None:
        """Use this learning rate from the next step on (None: back to the schedule)."""
        with self._cond:
            self._learning_rate = None if value is None else float(value)
            self._interrupt()   # the chunk in progress was planned with the old rate

    def set_pace(self, steps_per_second: float | None) -> None:
        """Run at most this many steps a second from now on (None or 0: as fast as possible)."""
        with self._cond:
            pace = None if not steps_per_second else float(steps_per_second)
            if pace is not None and not (pace > 0 and pace < float("inf")):
                raise ValueError(f"a pace is a positive number of steps per second, got {steps_per_second!r}")
            self._pace = pace
            self._due = 0.0
            self._interrupt()   # a chunk planned at the old pace ends at the next step
            self._cond.notify_all()

    @property
    def pace(self) -> float | None:
        return self._pace

    def seconds_to_next_slice(self) -> float:
        """How long a paced run waits before its next slice (0: it may go on now, or no pace)."""
        with self._cond:
            return max(0.0, self._due - time.monotonic()) if self._pace is not None else 0.0

    @property
    def steps_run(self) -> int:
        """Steps the generator reported as run (:meth:`consumed`) since this control was made."""
        return self._steps_run

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def learning_rate(self) -> float | None:
        return self._learning_rate

    # -- generator side ------------------------------------------------------------------------

    def allowed_steps(self, to_epoch_end: int, timeout: float | None = None) -> int:
        """Block while paused without budget; return how many steps may run now
        (0 means stop).  ``to_epoch_end`` bounds an epoch step; with a pace, at most a slice."""
        with self._cond:
            while True:
                if self._stopped:
                    return 0
                self.flags[0] = 0   # the commands so far are taken into account from here on
                if not self._paused or self._epoch_budget:
                    allowed = to_epoch_end
                elif self._budget > 0:
                    allowed = min(self._budget, to_epoch_end)
                else:
                    if not self._cond.wait(timeout) and timeout is not None:
                        return -1  # still paused: lets the caller do housekeeping
                    continue
                return allowed if self._pace is None else min(allowed, self.pace_slice())

    def pace_slice(self) -> int:
        """Steps in one paced slice (at least one)."""
        return max(1, int(self._pace * PACE_SLICE_SECONDS)) if self._pace else 0

    def consumed(self, steps: int, epoch_ended: bool) -> None:
        """Tell the control that ``steps`` ran; with a pace, wait until their share of time is over
        (a pause or stop ends the wait; the wait is here, not in :meth:`allowed_steps`, so a
        pause always finds the loop entering :meth:`allowed_steps` afresh)."""
        with self._cond:
            self._steps_run += steps
            if self._pace is not None:   # the next slice starts when these steps' share of time is over
                now = time.monotonic()
                start = max(self._due, now - PACE_CATCH_UP_SECONDS) if self._due else now
                self._due = start + steps / self._pace
                while not self._stopped and (not self._paused or self._budget > 0 or self._epoch_budget):
                    wait = self._due - time.monotonic()   # (set_pace resets _due: no wait left)
                    if wait <= 0:
                        break
                    self._cond.wait(wait)   # a command wakes it: pause and stop act at once
            if self._paused:
                self._budget = max(0, self._budget - steps)
                if epoch_ended:
                    self._epoch_budget = False


@contextmanager
def stop_on_interrupt(control: RunControl, stream: TextIO | None = None) -> Iterator[RunControl]:
    """While inside: the first Ctrl-C stops ``control`` (and says so on ``stream``, stderr by
    default); a second one raises KeyboardInterrupt.  The previous handler comes back on exit.
    Main thread only (Python delivers signals there)."""
    def on_sigint(signum, frame):
        if control.stopped:
            raise KeyboardInterrupt
        print("\n" + STOP_NOTICE, file=stream or sys.stderr)
        control.stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield control
    finally:
        signal.signal(signal.SIGINT, previous)


def ignore_interrupts() -> None:
    """For worker processes of a pool: Ctrl-C reaches the whole process group, but only the
    parent decides (it stops the workers' runs through their stop file, see engine.jobs.executors)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
