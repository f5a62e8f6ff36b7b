"""Guard against a reference-counting bug of PySide6 6.12.0 on Python 3.11.

With that wheel on CPython 3.11, every Qt method that returns nothing
(``setText``, ``update``, ``addItem``, ``setItem``, ...) hands back ``None``
without taking a reference to it, and ``Signal.emit()``/``disconnect()`` do
the same with ``True``.  Each call therefore lowers the reference count of
the ``None`` or ``True`` singleton by one.  Python 3.12 made those objects
immortal, which hides the bug there; on 3.11 their counts start at a few
thousand, and once one reaches zero the interpreter aborts with "Fatal
Python error: none_dealloc: deallocating None" (or bool_dealloc).  A
pyqtgraph item costs about 20 such calls to create and about 90 to add to
and remove from a plot, so an animated plot dies within a minute, and a
test session at exit.  (Measured here: 100 ``QLabel.setText`` calls lower
None's count by exactly 100; wrappers of other objects are not affected.)

:func:`protect_singleton_refcounts` measures whether the running PySide6 has the
bug and, only if it does, adds 2**40 references to ``None``, ``True`` and
``False``: more than a process can ever lose.  Those singletons are never
freed in a running interpreter anyway, so nothing that could be reclaimed is
leaked.  Idempotent; a no-op on Python 3.12+ and on fixed PySide6 builds.

It belongs at application start-up (gui/app.py), since it protects every
widget in the process; the arena tab calls it on import so that the tab is
safe on its own, in the tests and in scripts.
"""
from __future__ import annotations

import ctypes
import sys

_DONE = False
_EXTRA = 1 << 40


def _probe(calls: int = 10) -> tuple[int, int]:
    """How far None's and True's reference counts drop over ``calls`` void
    calls and signal emits."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    probe.setObjectName("probe")  # first calls may cache things
    probe.ping.emit()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(calls):
        probe.setObjectName("probe")
        probe.ping.emit()
    return none_before - sys.getrefcount(None), true_before - sys.getrefcount(True)


def protect_singleton_refcounts() -> bool:
    """Apply the guard if this PySide6 needs it; returns True if it did."""
    global _DONE
    if _DONE:
        return False
    _DONE = True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False  # None, True and False are immortal
    if max(_probe()) <= 0:
        return False
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every CPython object
        ctypes.c_ssize_t.from_address(id(singleton)).value += _EXTRA
    return True
