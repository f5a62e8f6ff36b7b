"""Work around a reference-counting bug of PySide6 6.12 on Python 3.11.

PySide6/shiboken6 6.12.0 returns ``None`` from every void Qt method without
taking a reference, and ``Signal.emit()`` does the same with ``True``
(harmless on Python >= 3.12, where those singletons are immortal).  On
Python 3.11 each call lowers the singleton's reference count by one and the
process aborts with "none_dealloc: deallocating None" after a few thousand
calls, that is within seconds of drawing live plots.  PySide6 <= 6.11 is fine.

:func:`guard_none_refcount` measures the bug (a few void calls and emits) and,
only when it is present and the singletons are mortal, gives ``None``,
``True`` and ``False`` a reference count so large that no session can use it
up.  Those objects are never deallocated anyway, so the extra count changes
nothing else.  It runs when the ``gui`` package is imported.  The proper fix
is ``PySide6-Essentials != 6.12.0`` (or < 6.12) or Python >= 3.12.
It stays as a guard in case a later release repeats the bug; requirements.txt excludes 6.12.0.
"""
from __future__ import annotations

import ctypes
import sys

HEADROOM = 1 << 40
applied = False


def singleton_leaks(calls: int = 50) -> tuple[int, int]:
    """References to (None, True) that ``calls`` void Qt calls and emits drop (0, 0 when healthy)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    probe.setObjectName("probe")
    probe.ping.emit()
    none0, true0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(calls):
        probe.setObjectName("probe")
        probe.ping.emit()
    return none0 - sys.getrefcount(None), true0 - sys.getrefcount(True)


def guard_none_refcount() -> bool:
    """Apply the workaround if needed; returns True when it was applied."""
    global applied
    if applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return applied
    none_lost, true_lost = singleton_leaks()
    if none_lost < 25 and true_lost < 25:
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += HEADROOM
    applied = True
    return True


# ---------------------------------------------------------------------------- garbage collection

class _GuiThreadCollector:
    """Run Python's cyclic garbage collector on the GUI thread only.

    The collector runs in whichever thread happens to allocate past its
    threshold: the training or the comparison thread, most of the time.  A
    cycle that holds a Qt object (a closed window's widgets, a plot item) is
    then destroyed off the GUI thread, and Qt objects must not be; in
    practice the destructor waits for the GIL held by that very thread and
    the process hangs.  So automatic collection is switched off and a timer
    on the GUI thread collects the generations whose thresholds were passed,
    as CPython would have (a known PySide pattern)."""

    def __init__(self, app, interval_ms: int = 250):
        import gc

        from PySide6.QtCore import QTimer

        self.gc = gc
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(app)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    def check(self) -> None:
        counts = self.gc.get_count()
        if counts[0] <= self.threshold[0]:
            return
        generation = 0
        if counts[1] > self.threshold[1]:
            generation = 1 if counts[2] <= self.threshold[2] else 2
        self.gc.collect(generation)


def collect_garbage_on_gui_thread() -> bool:
    """Install the collector for the running QApplication (once); False without one."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return False
    if getattr(app, "_descent_collector", None) is None:
        app._descent_collector = _GuiThreadCollector(app)
    return True
