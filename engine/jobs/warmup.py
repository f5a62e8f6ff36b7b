"""The one-time compilation of the kernels, done up front and reported group by group.

Numba compiles each kernel the first time it is called and keeps the machine
code in its cache, so only the first launch after an install (or after a
kernel's source changed) pays for it: about a minute on a two-core laptop,
most of it for the fused training step.  Left to happen on the first press
of Train it looks like a hang.  :func:`warm_up` instead trains a tiny run of
the default experiment for one step (a real :class:`Trainer` on the same
types, so exactly the machine code a run needs gets compiled) and reports
each kernel group as Numba finishes it, through Numba's documented event API
(``numba.core.event``, the ``numba:compile`` events).

:func:`kernels_cached` says, without compiling anything, whether the cache
already holds the groups' kernels: the window then skips the warm-up and a
later launch opens at once.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from numba.core import event as numba_event

from engine.control import RunControl
from engine.kernels import inference, train
from engine.spec.experiment import default_experiment, resolve_experiment
from engine.training.trainer import Trainer


@dataclass(frozen=True)
class KernelGroup:
    """Kernels compiled together: the top-level kernel Numba compiles (the others it calls are
    compiled inside it), what it is for, and its share of the whole compile (measured cold,
    ``bench/gui.py``: ~72% the training step, the rest the evaluation kernels)."""
    key: str            # the top-level kernel's function name
    title: str
    what: str
    share: float


GROUPS = (
    KernelGroup("_train_steps", "training step",
                "forward and backward pass of every layer, the optimizers, clipping", 0.72),
    KernelGroup("probe", "diagnostics", "gradient norms, activations, dead units for the plots", 0.08),
    KernelGroup("predict", "predictions", "the decision boundary and the predictions tab", 0.12),
    KernelGroup("evaluate", "evaluation", "loss and accuracy on the validation and test sets", 0.08),
)
DISPATCHERS = {"_train_steps": train._train_steps, "probe": inference.probe, "predict": inference.predict,
               "evaluate": inference.evaluate}
ONE_TIME_TEXT = ("Descent compiles its training kernels once after an install (about a minute on a two-core "
                 "laptop, longer on a busy machine); later launches open in a few seconds.")


@dataclass(frozen=True)
class Compiled:
    """One kernel compiled: ``group`` is a :data:`GROUPS` key when it is a group's top-level
    kernel (the group is then done), else None (a kernel inside a group, for the progress line)."""
    name: str           # module.function
    seconds: float
    group: str | None


def _cache_index(dispatcher) -> dict:
    """The entries of a kernel's on-disk cache index (empty when there is none, or when the
    kernel's source changed since).  Numba's cache object is internal: any surprise reads as
    'not cached', which costs only a warm-up that loads instead of compiling."""
    try:
        return dict(dispatcher._cache._cache_file._load_index())
    except Exception:   # noqa: BLE001  (an internal API of another project: never fatal)
        return {}


def kernels_cached() -> bool:
    """Whether Numba's cache holds every group's kernel (so no launch needs to compile them)."""
    return all(_cache_index(d) for d in DISPATCHERS.values())


class _Listener(numba_event.Listener):
    """Reports every engine kernel Numba finishes compiling (or loading from its cache)."""

    def __init__(self, report: Callable[[Compiled], None]):
        self.report = report
        self.started: list[float] = []

    def on_start(self, ev) -> None:
        self.started.append(time.perf_counter())

    def on_end(self, ev) -> None:
        seconds = time.perf_counter() - self.started.pop()
        func = getattr(ev.data.get("dispatcher"), "py_func", None)
        module = getattr(func, "__module__", "") or ""
        if not module.startswith("engine."):
            return   # Numba's own helpers: too many and too small to name
        name = func.__name__
        group = name if name in DISPATCHERS and not self.started else None
        self.report(Compiled(f"{module.removeprefix('engine.')}.{name}", seconds, group))


def warm_up(report: Callable[[Compiled], None] = lambda compiled: None) -> float:
    """Compile (or load from the cache) every group's kernels by training one step of the
    default experiment; ``report`` hears of each kernel as it is done (on this thread).
    Returns the seconds it took."""
    t0 = time.perf_counter()
    exp = default_experiment()
    exp = resolve_experiment(dict(exp, training=dict(exp["training"], epochs=1, max_steps=1)))
    listener = _Listener(report)
    with numba_event.install_listener("numba:compile", listener):
        for _ in Trainer(exp).run(RunControl()):
            pass
    return time.perf_counter() - t0
