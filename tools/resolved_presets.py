"""SHA-256 of every experiment the shipped presets resolve to: the schema's fingerprint.

A change to the schema layer (``engine/spec/``: the merge rule of overrides,
stage inheritance, defaults) must not change what a shipped preset means.
This script resolves every preset in ``presets/`` and the built-in default,
every comparison variant of them (the base experiment with the variant's
overrides, once per seed) and every phase of every stage (once per seed),
and prints one hash per resolved experiment, over its canonical JSON (sorted
keys, no whitespace), as JSON.  ``tests/test_resolved_presets.py`` compares
the output with ``tests/golden/resolved_presets.json``; after a change that
is *meant* to alter a preset's meaning, regenerate it with::

    python tools/resolved_presets.py --write

``--full`` prints the resolved experiments themselves instead of their
hashes, to see what changed (run it before and after, then diff).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOLDEN = ROOT / "tests" / "golden" / "resolved_presets.json"

from engine.spec.experiment import (BUILTIN_NAME, default_experiment, load_experiment, preset_paths,  # noqa: E402
                                    resolve_experiment)
from engine.spec.overrides import apply_overrides  # noqa: E402
from engine.spec.stages import phase_experiment  # noqa: E402
from engine.spec.sweep import sweep_trials, trial_experiment  # noqa: E402


def resolved_experiments() -> dict[str, dict]:
    """Every resolved experiment of the shipped presets, by a readable key."""
    # the built-in under its own name: keyed "default" it was overwritten by the preset default.json
    out = {BUILTIN_NAME: resolve_experiment(default_experiment())}
    for name, path in preset_paths().items():
        experiment = load_experiment(str(path))
        experiment["data"] = dict(experiment["data"], path=None) if experiment["data"].get("path") else \
            experiment["data"]  # an absolute path would differ from one checkout to another
        out[name] = experiment
        if experiment["compare"] is not None:
            for variant in experiment["compare"]["variants"]:
                for seed in experiment["compare"]["seeds"]:
                    exp = apply_overrides(experiment, variant["overrides"])
                    exp["seed"] = seed
                    out[f"{name}/compare/{variant['name']}/seed{seed}"] = exp
        if experiment["stages"] is not None:
            for seed in experiment["stages"]["seeds"]:
                for stage in experiment["stages"]["list"]:
                    for index, phase in enumerate(stage["phases"]):
                        out[f"{name}/stages/seed{seed}/{stage['name']}/{phase['name']}"] = \
                            phase_experiment(experiment, stage, index, seed)
        if experiment["sweep"] is not None:
            for trial in sweep_trials(experiment):
                for seed in experiment["sweep"]["seeds"]:
                    out[f"{name}/sweep/{trial.name}/seed{seed}"] = trial_experiment(experiment, trial, seed)
    return out


TEXT_KEYS = ("title", "description", "look_at")   # words about a preset, not what it trains


def canonical(experiment: dict) -> str:
    """Sorted keys, no whitespace, without the texts (rendered from measured results by
    tools/results.py, they change whenever the figures do, while the experiment does not), and
    paths inside the checkout written relative to it (a preset's model file resolves to an
    absolute path, which differs from one clone to another; CI runs in a fresh clone)."""
    experiment = {k: v for k, v in experiment.items() if k not in TEXT_KEYS}
    text = json.dumps(experiment, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.replace(json.dumps(str(ROOT))[1:-1] + "/", "<checkout>/")


def preset_hashes() -> dict[str, str]:
    """SHA-256 of every resolved experiment's canonical JSON, by key."""
    return {key: hashlib.sha256(canonical(exp).encode()).hexdigest() for key, exp in resolved_experiments().items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {GOLDEN.relative_to(ROOT)}")
    parser.add_argument("--full", action="store_true", help="print the resolved experiments, not their hashes")
    args = parser.parse_args()
    if args.write and args.full:
        parser.error("--write records the hashes; leave out --full")
    text = json.dumps(resolved_experiments() if args.full else preset_hashes(), indent=1, sort_keys=True) + "\n"
    if args.write:
        GOLDEN.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
