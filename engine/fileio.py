"""Atomic file writes: a temporary file in the same folder, then a rename.

An interrupted write (crash, kill, full disk) never leaves a truncated file
under the final name; the previous version, if any, stays intact.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from engine.errors import DescentError


class WriteError(DescentError):
    """A file or folder cannot be written."""


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create folder {path}: {exc.strerror}; choose a writable location "
                         f"(--out DIR)") from None
    return path


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path to write; on success it replaces ``path``."""
    path = Path(path)
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteError(f"cannot write in {path.parent}: {exc.strerror}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; shared files want the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask is process-wide, not thread-safe


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json(path, data) -> None:
    """``data`` as strict JSON (NaN and infinities as ``null``, which every parser reads)."""
    write_text(path, json.dumps(json_strict(data), indent=2, allow_nan=False) + "\n")


def json_strict(value):
    """``value`` with every NaN or infinite float (NumPy scalars and arrays included) as None, so
    ``json.dumps(..., allow_nan=False)`` writes strict JSON that JavaScript's ``JSON.parse`` or
    ``jq`` read; Descent's readers take ``null`` back as NaN where a number belongs."""
    if isinstance(value, dict):
        return {k: json_strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_strict(v) for v in value]
    if hasattr(value, "tolist"):           # NumPy arrays and scalars
        return json_strict(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
