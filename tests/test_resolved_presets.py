"""The schema keeps every shipped preset's meaning: each preset, each of its
comparison variants and each phase of its stages resolves to exactly the
experiment recorded in tests/golden/resolved_presets.json (by SHA-256 of its
canonical JSON; tools/resolved_presets.py --full prints the experiments).
Regenerate the file only for a change meant to alter a preset, and say so."""
import json
from pathlib import Path

from tools.resolved_presets import preset_hashes

ROOT = Path(__file__).resolve().parent.parent


def test_every_preset_resolves_to_the_recorded_experiments():
    golden = json.loads((ROOT / "tests" / "golden" / "resolved_presets.json").read_text())
    now = preset_hashes()
    assert sorted(now) == sorted(golden), (f"other experiments: new {sorted(set(now) - set(golden))}, "
                                           f"gone {sorted(set(golden) - set(now))}")
    changed = [key for key in golden if now[key] != golden[key]]
    assert not changed, f"these resolve differently now: {changed}"
