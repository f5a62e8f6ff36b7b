"""Commands from a consumer (CLI, window) to a running training generator.

The generator checks a :class:`RunControl` between chunks of steps, and
every command also raises ``flags[0]``, which the compiled chunk reads
before each step, so a command takes effect at the next step boundary even
in the middle of a long chunk.  All methods are thread-safe; the window
calls them from the GUI thread while the generator runs on a worker.

A terminal drives the same control with Ctrl-C (:func:`stop_on_interrupt`,
the one place that handles SIGINT): the first press stops at the next step
boundary, so the run still writes its weights; a second press aborts.
"""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, TextIO

import numpy as np

STOP_NOTICE = "stopping at the next step (Ctrl-C again to abort)..."


class RunControl:
    def __init__(self, paused: bool = False):
        self._cond = threading.Condition()
        self._paused = paused
        self._stopped = False
        self._budget = 0          # steps allowed while paused (Step button)
        self._epoch_budget = False  # "step one epoch" while paused
        self._learning_rate: float | None = None
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
        (0 means stop).  ``to_epoch_end`` bounds an epoch step."""
        with self._cond:
            while True:
                if self._stopped:
                    return 0
                self.flags[0] = 0   # the commands so far are taken into account from here on
                if not self._paused:
                    return to_epoch_end
                if self._epoch_budget:
                    return to_epoch_end
                if self._budget > 0:
                    return min(self._budget, to_epoch_end)
                if not self._cond.wait(timeout) and timeout is not None:
                    return -1  # still paused: lets the caller do housekeeping

    def consumed(self, steps: int, epoch_ended: bool) -> None:
        """Tell the control that ``steps`` ran (only matters while stepping)."""
        with self._cond:
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
