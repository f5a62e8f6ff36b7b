"""Refactorings keep behaviour bit-identical: the reference runs of
tools/behaviour_hashes.py write exactly the weights recorded in
tests/golden/behaviour_hashes.json (regenerate it only for a change meant to
alter results, and say so in the commit)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_reference_runs_write_the_recorded_weights():
    golden = json.loads((ROOT / "tests" / "golden" / "behaviour_hashes.json").read_text())
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "behaviour_hashes.py")], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    now = json.loads(out.stdout)
    assert sorted(now) == sorted(golden), "the reference runs wrote other files"
    changed = [name for name in golden if now[name] != golden[name]]
    assert not changed, f"weights changed: {changed}"
