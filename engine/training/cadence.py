"""When the training loop stops computing to report: the run's cadence.

Steps run in compiled chunks; between chunks the loop looks at the
control (pause, stop, a new learning rate) and may report.  What it reports,
and when:

* a diagnostics record (:class:`~engine.events.StepMetrics`) every
  ``log_every`` steps, at the end of every epoch (or of the run), and
  whenever the run is paused (so the window shows the step it stopped at);
* a decision surface of 2-D data after a record or an epoch's end, at most
  every ``surface_seconds`` of wall time, and always at the run's last
  epoch and when it is paused or stopped (the picture it ends on must be
  the last one).  A surface is a grid of 10,000 predictions: a tiny
  network runs hundreds of epochs a second at full speed, and one per
  epoch cost it about as much as its training steps while the window
  draws at most ten a second;
* at the end of every epoch: the evaluation (:class:`~engine.events.EpochEnd`)
  and, for images, a confusion matrix; early stopping decides there too;
* checkpoints are written once the run has ended, by the run folder's writer
  (:mod:`engine.formats.runstore`), from :meth:`Trainer.checkpoint`.

Record steps come from step counts only, never from timings, so the history
a run writes is the same on every machine; only the chunk length (how
often the control is read) and the surface refreshes follow the clock.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

CHUNK_SECONDS = 0.1       # hand control back to Python at least this often (commands end a chunk at once)
SURFACE_SECONDS = 0.1     # decision-boundary refresh interval for 2-D data (the window draws at most 10/s)
SURFACE_SHARE = 0.05      # ... and no more often than keeps surfaces near this fraction of the run's time

RECORD_MACS = 1_000_000    # fixed cost of a diagnostics record (~0.2 ms of Python), in multiply-adds
STEP_MACS = 20_000         # fixed cost of a compiled step (a few us), in multiply-adds
RECORD_SHARE = 0.05        # diagnostics may cost about this fraction of the training time


def default_log_every(steps_per_epoch: int, batch_size: int | None = None, n_weights: int | None = None,
                      probe_rows: int = 256) -> int:
    """About 20 diagnostics records per epoch, but (when the network's size is
    given) no closer together than keeps their cost near 5% of training.

    A record runs a forward pass over the probe rows plus ~0.2 ms of Python,
    while a step of a small network takes a few microseconds: 2-8-8-1 on
    1,000 points at batch 10 would otherwise log every 5 steps and spend ten
    times longer logging than training.  The costs are estimated from
    multiply-adds (n_weights = sum of fan_in * units), not timed, so the
    interval, and the history a run writes, is the same on every machine."""
    per_epoch = max(1, math.ceil(steps_per_epoch / 20))
    if batch_size is None or n_weights is None:
        return per_epoch
    step = 3 * batch_size * n_weights + STEP_MACS
    record = probe_rows * n_weights + RECORD_MACS
    return max(per_epoch, math.ceil(record / (RECORD_SHARE * step)))


@dataclass(frozen=True)
class Cadence:
    """The intervals above, and the arithmetic on step counts they need."""
    log_every: int                          # steps between diagnostics records
    chunk_seconds: float = CHUNK_SECONDS    # longest compiled chunk, at the measured speed
    surface_seconds: float = SURFACE_SECONDS
    clock: Callable[[], float] = time.perf_counter   # of surface times (tests substitute a fake one)

    def __post_init__(self):
        if self.log_every < 1:
            raise ValueError(f"log_every must be at least 1, got {self.log_every}")

    def steps_to_record(self, step: int) -> int:
        """Steps from ``step`` (updates done) to the next record step."""
        return self.log_every - step % self.log_every

    def chunk_steps(self, step: int, allowed: int, steps_per_second: float) -> int:
        """Length of the next compiled chunk: no further than the next record
        and the ``allowed`` steps (the control's and the epoch's limit), and
        about ``chunk_seconds`` long at the measured speed; a single step
        while there is no measurement yet (the first call compiles)."""
        if steps_per_second <= 0:
            longest = 1
        else:
            longest = max(1, int(steps_per_second * self.chunk_seconds))
        return min(allowed, self.steps_to_record(step), longest)

    def record_due(self, step: int, epoch_ended: bool, paused: bool) -> bool:
        """Whether a diagnostics record follows the chunk that ended at ``step``."""
        return step % self.log_every == 0 or epoch_ended or paused

    def surface_due(self, now: float, last: float, cost: float = 0.0, final: bool = False) -> bool:
        """Whether a decision surface is due (``now``, ``last``: :attr:`clock` seconds of now and of
        the end of the last surface; ``cost``: seconds the last one took): ``surface_seconds`` after
        the last one, longer for a network whose grid of predictions is slow (a 2-300-300 net's
        takes tens of milliseconds), or at once when it is ``final`` (the run's last epoch, a
        pause or a stop: what the window is left showing)."""
        return final or now - last > max(self.surface_seconds, cost / SURFACE_SHARE)
