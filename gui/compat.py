"""Work around a reference-counting bug of PySide6 6.12 on Python 3.11.

PySide6/shiboken6 6.12.0 returns ``None`` from every void Qt method without
taking a reference (harmless on Python >= 3.12, where ``None`` is immortal).
On Python 3.11 each call drops ``None``'s reference count by one and the
process aborts with "none_dealloc: deallocating None" after a few thousand
calls, that is within seconds of drawing plots.  PySide6 <= 6.11 is fine.

:func:`guard_none_refcount` measures the bug (200 calls of a void method)
and, only when it is present and ``None`` is mortal, gives ``None`` a
reference count so large that no session can use it up.  ``None`` is never
deallocated anyway, so the extra count changes nothing else.  The proper
fixes are ``PySide6-Essentials!=6.12.0`` (or < 6.12) or Python >= 3.12.
"""
from __future__ import annotations

import ctypes
import sys

HEADROOM = 1 << 40
applied = False


def void_call_leak(calls: int = 200) -> int:
    """How many references to None ``calls`` void Qt calls drop (0 when healthy)."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(calls):
        probe.setObjectName("probe")
    return before - sys.getrefcount(None)


def guard_none_refcount() -> bool:
    """Apply the workaround if needed; returns True when it was applied."""
    global applied
    if applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return applied
    if void_call_leak() < 100:
        return False
    ctypes.c_ssize_t.from_address(id(None)).value += HEADROOM
    applied = True
    return True
