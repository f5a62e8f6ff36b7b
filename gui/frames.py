"""How often the window draws a frame: as often as the eye needs, within a budget of the GUI thread's time.

The training thread and the GUI thread share one interpreter lock: every
millisecond the GUI thread spends in Python (syncing plots, painting) is one
the training loop may wait for, and a tiny network at full speed sends
hundreds of diagnostics records a second, each of which a frame redraws.  A
fixed 30 frames a second took a third of a core there and cost the run
about a third of its speed.  :class:`FramePacer` measures the GUI thread's
CPU time (``time.thread_time``: what it held the lock for, paint events and
the ingestion of batches included) over each frame's cycle and stretches the
interval between frames while that share is above :data:`DRAW_SHARE`, and
shortens it again (down to the usual 33 ms) when drawing is cheap: a large
network's few records a second, a paused run, a small plot.  It never
waits longer than :data:`LONGEST_SECONDS`, so the plots stay live.
"""
from __future__ import annotations

import time
from typing import Callable

SHORTEST_SECONDS = 0.033   # ~30 frames a second when drawing is cheap
LONGEST_SECONDS = 0.25     # ... and never fewer than 4
DRAW_SHARE = 0.15          # the GUI thread's CPU time over a frame cycle, at most this share of the cycle
STEP = 1.25                # the interval grows or shrinks by this factor per frame


class FramePacer:
    """``interval`` is the shortest time between two frames now; call :meth:`frame` when one starts."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, cpu: Callable[[], float] = time.thread_time,
                 shortest: float = SHORTEST_SECONDS, longest: float = LONGEST_SECONDS, share: float = DRAW_SHARE):
        self.clock, self.cpu = clock, cpu
        self.shortest, self.longest, self.share = shortest, longest, share
        self.interval = shortest
        self.last_share = 0.0
        self.started = self._cpu = None   # clock and cpu readings when the last frame started

    def age(self) -> float:
        """Seconds since the last frame started (infinite before the first)."""
        return float("inf") if self.started is None else self.clock() - self.started

    def frame(self) -> None:
        """A frame starts now: judge the cycle that ends here and set the next interval.  The first
        cycle measured is the GUI thread's only; the comparison with the share is what adapts."""
        now, cpu = self.clock(), self.cpu()
        if self.started is not None and self._cpu is not None and now > self.started:
            self.last_share = (cpu - self._cpu) / (now - self.started)
            if self.last_share > self.share:
                self.interval = min(self.longest, self.interval * STEP)
            elif self.last_share < 0.7 * self.share:
                self.interval = max(self.shortest, self.interval / STEP)
        self.started, self._cpu = now, cpu
