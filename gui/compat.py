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
