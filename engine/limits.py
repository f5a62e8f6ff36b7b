"""Bounds checked before anything is believed or allocated.

A file states sizes about itself (an NPZ member's header its shape, a JSON
document the digits of its numbers and how deep it nests) and a run asks
for memory (its parameters, optimizer slots, batch workspaces).  Everything
here checks such a claim against what is possible *before* acting on it, so
a crafted or damaged file, or an experiment too large for this machine, is
refused with one message naming the file, the field and the limit, instead
of a ``MemoryError``, a ``RecursionError`` or a ``ValueError`` traceback.

* :func:`memory_limit` and :class:`MemoryEstimate`: what a run (or a
  prediction) will allocate, part by part, against the limit (half of this
  machine's memory; ``DESCENT_MEMORY_LIMIT_MB`` changes it).
* :func:`output_limit` and :func:`run_output_estimate`: what a run folder
  will hold (weights files, checkpoint) against the size a run may write
  without asking (200 MB; ``DESCENT_WEIGHTS_LIMIT_MB`` changes it).
* :func:`stop_work_skipped`: what a run stopped by the user leaves out so
  the stop takes effect within about a second (a final evaluation costing
  more than :data:`STOP_WORK_MACS` multiply-adds).
* :func:`parse_json`: JSON with bounded integer digits and nesting, and no
  ``NaN``/``Infinity`` literals unless asked for.
* :func:`npz_members` / :func:`check_npz`: the shapes an NPZ archive's
  members claim, read from their headers alone, checked against the bytes
  the member holds and the memory limit before NumPy allocates the array.
"""
from __future__ import annotations

import json
import math
import os
import re
import zipfile
from dataclasses import dataclass
from typing import IO

import numpy as np
import numpy.lib.format as npy_format

from engine.errors import DescentError, ExperimentError

MEMORY_ENV = "DESCENT_MEMORY_LIMIT_MB"
OUTPUT_ENV = "DESCENT_WEIGHTS_LIMIT_MB"
DEFAULT_OUTPUT_LIMIT_MB = 200   # a run folder holding more than this is asked about first
MAX_JSON_DIGITS = 4000      # longest integer literal read from JSON (Python refuses past 4,300)
MAX_JSON_DEPTH = 200        # deepest nesting of a JSON document Descent reads (experiments nest ~6)
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


# ----------------------------------------------------------------------------- memory


def memory_limit() -> int:
    """Bytes a run may allocate: half of physical memory, or ``DESCENT_MEMORY_LIMIT_MB``."""
    env = os.environ.get(MEMORY_ENV)
    if env:
        try:
            limit = float(env)
        except ValueError:
            limit = math.nan
        if not math.isfinite(limit) or limit <= 0:
            raise ExperimentError(f"environment variable {MEMORY_ENV}={env!r} must be a positive number of "
                                  f"megabytes")
        return int(limit * 1024 * 1024)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; 2.1e12 -> '1.9 TiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


@dataclass(frozen=True)
class MemoryEstimate:
    """What something will allocate, part by part: ((what, bytes, how to shrink it), ...);
    messages name the largest parts first and the advice of the largest, so the one to
    shrink is plain."""
    parts: tuple

    @property
    def total(self) -> int:
        return int(sum(part[1] for part in self.parts))

    def largest(self) -> tuple:
        return max(self.parts, key=lambda part: part[1])

    def describe(self, shown: int = 4) -> str:
        big = sorted((p for p in self.parts if p[1] > 0), key=lambda p: -p[1])
        text = ", ".join(f"{p[0]} {format_bytes(p[1])}" for p in big[:shown])
        return text + (f" and {len(big) - shown} smaller part(s)" if len(big) > shown else "")

    def check(self, what: str, limit: int | None = None) -> None:
        """ExperimentError naming ``what``, the estimate, its largest parts, the limit and the
        advice of the largest part, when the total is over the limit (default :func:`memory_limit`)."""
        limit = memory_limit() if limit is None else limit
        if self.total > limit:
            source = MEMORY_ENV if os.environ.get(MEMORY_ENV) else \
                f"half of this machine's memory; set {MEMORY_ENV} to change it"
            raise ExperimentError(f"{what} would need about {format_bytes(self.total)} of memory "
                                  f"({self.describe()}), more than the limit of {format_bytes(limit)} ({source}); "
                                  f"{self.largest()[2]}")


# ----------------------------------------------------------------------------- run output


def output_limit() -> int:
    """Bytes of weights and checkpoint a run may write without asking: 200 MB, or
    ``DESCENT_WEIGHTS_LIMIT_MB`` (0: no limit).  A network of 88 million parameters once
    wrote 1.4 GB into runs/ without a word."""
    env = os.environ.get(OUTPUT_ENV)
    if env is None or env == "":
        return DEFAULT_OUTPUT_LIMIT_MB * 1000 * 1000
    try:
        limit = float(env)
    except ValueError:
        limit = math.nan
    if not math.isfinite(limit) or limit < 0:
        raise ExperimentError(f"environment variable {OUTPUT_ENV}={env!r} must be a number of megabytes (0: no "
                              f"limit)")
    return int(limit * 1000 * 1000) if limit else 2**62


def run_output_estimate(n_params: int, itemsize: int, optimizer_slots: int, weights_files, checkpoint: bool
                        ) -> MemoryEstimate:
    """The bytes a run folder will hold besides its CSV files: each weights file (a copy of every
    parameter) and the checkpoint (the parameters again plus the optimizer's slots)."""
    weights = int(n_params) * int(itemsize)
    parts = [(name, weights, "write one weights file") for name in weights_files]
    if checkpoint:
        parts.append(("checkpoint.npz", weights * (1 + int(optimizer_slots)),
                      "leave out the checkpoint (--no-checkpoint; it is only needed for --resume)"))
    return MemoryEstimate(tuple(parts))


# ----------------------------------------------------------------------------- a stopped run's last work

# Multiply-adds a run stopped by the user may still spend on its final figures: about 0.1-0.5 s of
# BLAS on one laptop core.  Fashion-MNIST's 784-300-100-10 on its 10,000 test rows costs 2.7e9 and
# keeps its test figures; the 88.6-million-parameter net that once sat at "stopping..." for a
# minute would spend 8.9e11 on them.
STOP_WORK_MACS = 10_000_000_000


def stop_work_skipped(what: str, rows: int, n_weights: int, passes: int = 1) -> str | None:
    """Why a run stopped by the user leaves out ``what`` (``passes`` forward passes over ``rows``
    rows of a network with ``n_weights`` kernel weights), or None when it is cheap enough to do.

    A Stop must act within about a second, and a final evaluation of a huge network takes far
    longer (a minute for 88.6 M parameters on Fashion-MNIST's test set).  The cost is counted in
    multiply-adds (rows x passes x weights; a dense layer's forward pass is fan_in x units per
    row), never timed, so whether a stopped run's summary holds the figures depends on the
    experiment alone: the same on every machine and in every rerun.  The figures left out are
    NaN (null in JSON) with this reason beside them, never a made-up number."""
    macs = int(rows) * int(passes) * int(n_weights)
    if macs <= STOP_WORK_MACS:
        return None
    times = f" x {passes:,} passes" if passes != 1 else ""
    return (f"{what} not evaluated: the run was stopped, and {rows:,} rows{times} x {n_weights:,} weights "
            f"= {macs / 1e9:,.0f} billion multiply-adds, more than the {STOP_WORK_MACS / 1e9:g} billion a stop "
            f"waits for")


# ----------------------------------------------------------------------------- JSON


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_DIGITS:
        raise ValueError(f"an integer of {digits:,} digits (at most {MAX_JSON_DIGITS:,})")
    return int(text)


def _no_constant(token: str):
    raise ValueError(f"{token} is not valid JSON; write a finite number (or null)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is too large for a float")
    return value


def _position(text: str, pattern: str) -> str:
    """', line L, column C (key "k")' of the first match of ``pattern`` in ``text`` ('' if none)."""
    match = re.search(pattern, text)
    if match is None:
        return ""
    start = match.start()
    line = text.count("\n", 0, start) + 1
    key = re.search(r'"([^"\\]{1,60})"\s*:\s*-?$', text[max(0, start - 200):start])
    return (f", line {line}, column {start - (text.rfind(chr(10), 0, start) + 1) + 1}"
            + (f" (key {key.group(1)!r})" if key else ""))


_JSON_TOKENS = re.compile(r'\\.|["\[\]{}]', re.S)   # an escape, a quote or a bracket


def _depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text, brackets inside strings left out (a scan
    over the quotes and brackets alone, no recursion)."""
    depth = deepest = 0
    in_string = False
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token == '"':
            in_string = not in_string
        elif in_string or token[0] == "\\":
            continue
        elif token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json(text: str | bytes, source: str, error: type[DescentError] = DescentError,
               allow_constants: bool = False):
    """``json.loads`` for text Descent did not necessarily write: a UTF-8 BOM is accepted (as
    editors on Windows save it), integers longer than :data:`MAX_JSON_DIGITS` digits, nesting
    deeper than :data:`MAX_JSON_DEPTH` and (unless ``allow_constants``) ``NaN``/``Infinity``
    are refused with ``error`` naming ``source``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{source}: not UTF-8 text (byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    if ("[" in text or "{" in text) and _depth(text) > MAX_JSON_DEPTH:
        raise error(f"{source}: nested more than {MAX_JSON_DEPTH} levels deep; not a file Descent reads")
    hooks = {} if allow_constants else {"parse_constant": _no_constant, "parse_float": _finite_float}
    try:
        return json.loads(text, parse_int=_bounded_int, **hooks)
    except json.JSONDecodeError as exc:
        raise error(f"{source} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:   # the depth scan above makes this unlikely; a deep stack already
        raise error(f"{source}: nested too deeply to be read") from None
    except ValueError as exc:   # the hooks above
        where = _position(text, r"\d{%d}" % (MAX_JSON_DIGITS + 1)) if "digits" in str(exc) else ""
        raise error(f"{source}{where}: {exc}") from None


# ----------------------------------------------------------------------------- NPZ


def _member_header(z: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, error) -> tuple:
    """(shape, dtype) a member's .npy header claims (only the header is decompressed)."""
    with z.open(info) as f:
        try:
            version = npy_format.read_magic(f)
            reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = reader(f)
        except (ValueError, EOFError, SyntaxError, TypeError, OSError, zipfile.BadZipFile) as exc:
            raise error(f"{source}: member {info.filename!r} is not a readable .npy array ({exc})") from None
    return tuple(int(s) for s in shape), np.dtype(dtype)


def npz_members(file: str | os.PathLike | IO[bytes], source: str,
                error: type[DescentError] = DescentError) -> dict[str, tuple]:
    """{array name: (shape, dtype, bytes stored)} of an NPZ archive, from the headers alone."""
    try:
        with zipfile.ZipFile(file) as z:
            out = {}
            for info in z.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                shape, dtype = _member_header(z, info, source, error)
                out[name] = (shape, dtype, info.file_size)
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise error(f"{source} cannot be read as a .npz archive ({exc})") from None


def check_npz(file: str | os.PathLike | IO[bytes], source: str, error: type[DescentError] = DescentError,
              budget: int | None = None) -> dict[str, tuple]:
    """:func:`npz_members`, after refusing any member whose header claims more bytes than the
    member holds, or more than ``budget`` (default: the memory limit) for all members together.
    A .npy file given where an archive is expected is refused here too (NumPy would load it
    whole, trusting its header)."""
    if not hasattr(file, "read"):
        try:
            with open(file, "rb") as f:
                magic = f.read(6)
        except OSError as exc:
            raise error(f"cannot read {source}: {exc.strerror or exc}") from None
    else:
        magic = file.read(6)
        file.seek(0)
    if magic.startswith(NPY_MAGIC):
        raise error(f"{source} holds a single array (.npy), not a .npz archive; save it with "
                    f"np.savez(path, x=..., y=...)")
    if not magic.startswith(ZIP_MAGIC[:len(magic)]) or len(magic) < 4:
        raise error(f"{source} is not a .npz archive (not a zip file); it may be truncated or of another kind")
    members = npz_members(file, source, error)
    budget = memory_limit() if budget is None else budget
    total = 0
    for name, (shape, dtype, stored) in members.items():
        if dtype.hasobject:
            continue   # refused by its reader (no pickle); nothing is allocated from the header
        claimed = math.prod(shape) * dtype.itemsize
        if any(s < 0 for s in shape) or claimed > stored:
            raise error(f"{source}: array {name!r} claims shape {shape} ({format_bytes(claimed)} of "
                        f"{dtype}) but holds {format_bytes(stored)}; the file is damaged or crafted")
        total += claimed
    if total > budget:
        raise error(f"{source}: its arrays would take {format_bytes(total)} of memory, more than the limit of "
                    f"{format_bytes(budget)} (set {MEMORY_ENV} to change it)")
    return members
