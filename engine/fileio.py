"""Writing files: atomic replacement for whole files, line-by-line appends for logs.

* :func:`atomic_path` (and :func:`write_text`, :func:`write_json` on top of it):
  a temporary file in the same folder, then a rename.  An interrupted write
  (crash, kill, full disk) never leaves a truncated file under the final
  name; the previous version, if any, stays intact.
* :class:`LineFile`: a file written a line at a time (the CSVs of a run
  folder), each line one ``write`` call; a line the disk had no room for is
  cut off again, so the file holds complete lines only.

Neither writes through a symbolic link: a link planted where a file is to be
written (``history.csv`` -> ``~/.bashrc``) is refused, never followed.  A
full disk is a :class:`DiskFullError`; every failure is a :class:`WriteError`
naming the file (one line, exit status 2 on the command line).
"""
from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from engine.errors import DescentError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class WriteError(DescentError):
    """A file or folder cannot be written."""


class DiskFullError(WriteError):
    """The disk (or the user's quota) is full."""


def write_error(exc: OSError, path) -> WriteError:
    """The :class:`WriteError` for an ``OSError`` raised while writing ``path``."""
    if exc.errno in DISK_FULL:
        return DiskFullError(f"disk full while writing {path} ({exc.strerror}); free some space and resume "
                             f"the run (run --resume)")
    if exc.errno == errno.ELOOP:
        return WriteError(f"{path} is a symbolic link; Descent never writes through a link (remove it or "
                          f"choose another --out)")
    return WriteError(f"cannot write {path}: {exc.strerror or exc}")


def refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise WriteError(f"{path} is a symbolic link; Descent never writes through a link (remove it or "
                         f"choose another --out)")


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create folder {path}: {exc.strerror}; choose a writable location "
                         f"(--out DIR)") from None
    return path


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path to write; on success it replaces ``path`` (never a link's target:
    a symbolic link at ``path`` is refused)."""
    path = Path(path)
    ensure_dir(path.parent)
    refuse_link(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(exc, path.parent) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; shared files want the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        raise write_error(exc, path) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class LineFile:
    """A UTF-8 text file written line by line (a run's CSVs, read while they grow).

    Opened without following a symbolic link.  Each :meth:`write` is one ``os.write`` of whole
    lines (no buffer to flush); when the disk is full the part of a line that made it is cut off
    again (``ftruncate`` needs no space), so the file never ends in half a line.  ``keep`` bytes
    of an existing file are kept and appended to (a resumed run continuing its folder)."""

    def __init__(self, path: str | os.PathLike, keep: int | None = None):
        self.path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | NO_FOLLOW | (os.O_TRUNC if keep is None else 0)
        try:
            self.fd = os.open(self.path, flags, 0o666)
            if keep is not None:
                os.ftruncate(self.fd, keep)
                os.lseek(self.fd, keep, os.SEEK_SET)
        except OSError as exc:
            raise write_error(exc, self.path) from None
        self.size = keep or 0

    @property
    def closed(self) -> bool:
        return self.fd is None

    def write(self, text: str) -> None:
        raw = text.encode("utf-8")
        data = memoryview(raw)
        try:
            while data:
                data = data[_write(self.fd, data):]
        except OSError as exc:
            try:
                os.ftruncate(self.fd, self.size)
                os.lseek(self.fd, self.size, os.SEEK_SET)
            except OSError:
                pass
            raise write_error(exc, self.path) from None
        self.size += len(raw)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_write = os.write   # the one low-level write of LineFile (tests stand in a full disk here)


def overwrite_in_place(path: str | os.PathLike, text: str) -> None:
    """Rewrite a small file inside the blocks it already has: the text, padded with spaces to the
    old length (harmless after JSON), written over the old bytes.  Not atomic, and only for a
    disk too full for :func:`atomic_path`'s second copy (a failed run's summary)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | NO_FOLLOW)
        try:
            data = text.encode("utf-8")
            os.pwrite(fd, data.ljust(os.fstat(fd).st_size), 0)
        finally:
            os.close(fd)
    except OSError as exc:
        raise write_error(exc, path) from None


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


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
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
