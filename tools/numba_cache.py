"""A Numba cache directory keyed on the content of every compiled source file.

Why: Numba's on-disk cache checks only the timestamp and size of the file that
*defines* a function.  A kernel that calls a function from another module
keeps its cached machine code after that other module is edited, so a warm
cache can run old code and `make test` can pass against it.  Keying the whole
cache directory on a hash of every engine file that Numba compiles (anything
mentioning ``njit``/``numba``: kernels, ``cfunc`` activations, intrinsics)
makes any edit start from an empty cache, and a revert finds its old one.

Used by ``tests/conftest.py`` (every ``make test`` and pytest run) and by the
Makefile's ``run`` target, which prints the directory with
``python tools/numba_cache.py`` and exports it as NUMBA_CACHE_DIR.  An explicit
NUMBA_CACHE_DIR in the environment wins (tools/mutation.py gives each mutant
its own).  Directories of older contents are pruned, keeping the most recent
few (switching branches back and forth stays cheap).
"""
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / ".numba_cache"
KEEP = 3                      # the current contents plus two earlier ones
COMPILED = re.compile(r"\bnjit\b|\bnumba\b")


def compiled_sources(root: Path = ROOT) -> list[Path]:
    """Every engine file Numba compiles or that feeds compiled code, sorted."""
    return sorted(p for p in (root / "engine").rglob("*.py")
                  if COMPILED.search(p.read_text(encoding="utf-8")))


def cache_key(root: Path = ROOT) -> str:
    """Hash of the paths (relative) and contents of the compiled sources."""
    digest = hashlib.sha256()
    for path in compiled_sources(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def prune(base: Path, current: Path, keep: int = KEEP) -> list[Path]:
    """Remove all but the `keep` most recently used key directories under `base`."""
    if not base.is_dir():
        return []
    others = sorted((d for d in base.iterdir() if d.is_dir() and d != current),
                    key=lambda d: d.stat().st_mtime, reverse=True)
    removed = others[keep - 1:]
    for d in removed:
        shutil.rmtree(d, ignore_errors=True)
    return removed


def cache_dir(root: Path = ROOT, base: Path | None = None) -> Path:
    """The directory for the current sources (created, marked as just used, others pruned)."""
    base = Path(base) if base is not None else root / ".numba_cache"
    current = base / cache_key(root)
    current.mkdir(parents=True, exist_ok=True)
    os.utime(current)
    prune(base, current)
    return current


def configure(root: Path = ROOT) -> str:
    """Set NUMBA_CACHE_DIR unless the caller chose one; must run before numba is imported."""
    if not os.environ.get("NUMBA_CACHE_DIR"):
        os.environ["NUMBA_CACHE_DIR"] = str(cache_dir(root))
    return os.environ["NUMBA_CACHE_DIR"]


if __name__ == "__main__":
    print(os.environ.get("NUMBA_CACHE_DIR") or cache_dir(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT))
