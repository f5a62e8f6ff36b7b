"""The window's Compare tab and `main.py run` give the same numbers for the same preset and seeds.

Issue 12 (item 12): the Compare tab on 04-dying-relus showed figures far from the preset's text.
Both go through engine.jobs.runner.run_job, the tab on a worker thread in this process, the
command line on the local process pool; this test holds them to the same comparison.json,
run for run, on a real preset (shortened with the same step budget on both sides).
"""
import json
from pathlib import Path

import pytest

from engine import cli
from engine.spec.experiment import load_experiment

from test_gui_window import FIRST_RUN_TIMEOUT, make_window

pytestmark = pytest.mark.gui

PRESET = "04-dying-relus"      # RReLU draws random slopes and PReLU learns them: the variants most likely to drift
SEEDS = 2
STEPS = 40
TIMINGS = ("wall_seconds", "train_seconds", "total_wall_seconds")


def _without_timings(x):
    if isinstance(x, dict):
        return {k: _without_timings(v) for k, v in x.items() if k not in TIMINGS}
    if isinstance(x, list):
        return [_without_timings(v) for v in x]
    return x


def _comparison(folder: Path) -> dict:
    saved = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
    return _without_timings({k: saved[k] for k in ("seeds", "variants", "ranking")})


def test_compare_tab_and_command_line_agree_on_a_preset(qtbot, tmp_path):
    out = tmp_path / "cli"
    assert cli.main(["run", PRESET, "--seeds", str(SEEDS), "--steps", str(STEPS), "--out", str(out), "--quiet"]) == 0

    w = make_window(qtbot, tmp_path, load_experiment(PRESET))
    w.tabs.setCurrentWidget(w.comparison)
    view = w.comparison
    view.workers = 1                        # in this process: the command line used the pool
    view.seeds.set_value(SEEDS)
    view.max_steps.set_value(STEPS)
    request = view.start()
    assert request is not None
    qtbot.waitUntil(lambda: not view.running, timeout=10 * FIRST_RUN_TIMEOUT)
    assert not view.snapshot.failed, view.snapshot.message

    window = _comparison(Path(request.out))
    headless = _comparison(out)
    assert window["seeds"] == headless["seeds"] == [42, 43]
    assert window == headless
    rrelu = headless["variants"]["RReLU"]["final_val_accuracy"]
    assert rrelu["n"] == SEEDS and rrelu["mean"] == rrelu["mean"]   # a real figure, not NaN on both sides
