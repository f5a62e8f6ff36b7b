"""SHA-256 of the weights a few reference runs write: the behaviour fingerprint.

A refactoring must not change what Descent computes.  This script trains the
runs below headless (through ``main.py run``, the path a user takes) and the
arena's lesson 09, and prints one hash per weights file (over tensor names,
dtypes, shapes and bytes, so file metadata may change) as JSON.
``tests/test_behaviour_hashes.py`` compares the output with
``tests/golden/behaviour_hashes.json``; after a change that is *meant* to
alter results, regenerate it with::

    python tools/behaviour_hashes.py --write

Hashes are bit-level: they hold on one machine kind and BLAS kernel (CI's).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOLDEN = ROOT / "tests" / "golden" / "behaviour_hashes.json"

RUNS = (  # (folder, arguments of main.py run)
    ("default", ["default", "--epochs", "1"]),
    ("04-dying-relus", ["04-dying-relus", "--steps", "200"]),
    ("12-transfer-learning", ["12-transfer-learning", "--steps", "200"]),
)
ARENA_LESSON = "09-six-optimizers-on-one-bowl"
ARENA_STEPS = 300


def tensors_hash(path: Path) -> str:
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(f"{name}:{a.dtype}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def arena_hash() -> str:
    from engine.arena.race import Arena, load_arena_preset

    arena = Arena.from_preset(load_arena_preset(ARENA_LESSON))
    arena.step(ARENA_STEPS)
    h = hashlib.sha256()
    for racer in arena.racers:
        h.update(np.ascontiguousarray(racer.path).tobytes())
    return h.hexdigest()


def fingerprint(workdir: Path) -> dict[str, str]:
    from engine.cli import main

    hashes: dict[str, str] = {}
    for folder, args in RUNS:
        out = workdir / folder
        code = main(["run", *args, "--out", str(out), "--quiet"])
        if code != 0:
            raise SystemExit(f"main.py run {' '.join(args)} exited {code}")
        for path in sorted(out.rglob("weights.safetensors")):
            hashes[str(path.relative_to(workdir))] = tensors_hash(path)
    hashes[f"arena/{ARENA_LESSON}/{ARENA_STEPS}"] = arena_hash()
    return hashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {GOLDEN.relative_to(ROOT)}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):  # runs print tables
        hashes = fingerprint(Path(tmp))
    text = json.dumps(hashes, indent=1, sort_keys=True) + "\n"
    if args.write:
        GOLDEN.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
