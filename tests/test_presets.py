"""Every shipped preset loads, validates, explains itself and runs a few steps; the Presets menu
follows the book; presets/README.md matches what tools/gen_schema_doc.py writes."""
import dataclasses
import sys
from pathlib import Path

import pytest

from engine import cli
from engine.jobs.compare import comparison_runs
from engine.jobs.runs import train_to_record
from engine.jobs.sweep import sweep_runs
from engine.spec.overrides import apply_overrides
from engine.events import RunFinished
from engine.spec.experiment import SECTIONS, load_experiment, preset_menu, preset_paths
from engine.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
PRESETS = preset_paths()
QUICK_STEPS = 3


def quick(experiment: dict) -> dict:
    """The quick path: a few steps on a small slice of the data."""
    over = {"training": {"epochs": 1, "max_steps": QUICK_STEPS}}
    if experiment["data"]["name"] == "fashion_mnist":
        per_class = min(experiment["data"]["per_class"] or 20, 20)
        over["data"] = {"per_class": per_class, "val_per_class": 5, "test_per_class": 5}
    return over


def test_there_are_presets_for_the_chapter():
    names = set(PRESETS)
    for expected in ("default", "01-vanishing-gradients", "02-initializers", "03-symmetry", "04-dying-relus",
                     "05-selu", "06-batch-norm", "07-gradient-clipping", "08-optimizer-race",
                     "09-learning-rate-schedules", "10-regularization", "11-sparse-models"):
        assert expected in names


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_loads_explains_itself_and_runs_a_few_steps(name, tmp_path):
    exp = load_experiment(name)
    for key in ("title", "section", "description", "look_at"):
        assert len(exp[key]) > 20 if key in ("description", "look_at") else exp[key], key
    assert exp["section"] in SECTIONS, exp["section"]
    if exp.get("stages"):
        pytest.skip("multi-stage presets are run by tests/test_stages.py")
    if not exp.get("compare") and not exp.get("sweep"):
        last = list(Trainer(apply_overrides(exp, quick(exp))).run())[-1]
        assert isinstance(last, RunFinished) and last.status == "finished" and last.step == QUICK_STEPS
        return
    if exp.get("sweep"):           # every trial at the first seed, as the runner plans them
        trials, jobs = sweep_runs(exp, seeds=exp["sweep"]["seeds"][:1])
        assert len(jobs) == len(trials)
    else:
        jobs = comparison_runs(exp, seeds=exp["compare"]["seeds"][:1])
        assert len(jobs) == len(exp["compare"]["variants"])
    for job in jobs:
        small = apply_overrides(job.experiment, quick(job.experiment))
        finder = None if job.lr_finder is None else dict(job.lr_finder, steps=10)
        record = train_to_record(dataclasses.replace(job, experiment=small, lr_finder=finder), str(tmp_path))
        assert record["status"] in ("finished", "diverged"), (job.variant, record["reason"])
        assert record["steps"] <= QUICK_STEPS
        assert (tmp_path / job.folder / "summary.json").is_file()


def test_the_presets_menu_follows_the_book():
    menu = preset_menu()
    sections = [s for s, _ in menu]
    assert sections[0] == "Practical Guidelines" and menu[0][1][0][0] == "default"
    ranks = [SECTIONS.index(s) for s in sections if s in SECTIONS]
    assert ranks == sorted(ranks)
    listed = [name for _, entries in menu for name, _ in entries]
    assert sorted(listed) == sorted(PRESETS)


def test_the_presets_command_lists_them_in_menu_order(capsys):
    assert cli.main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("spiral-default") and "[Built in]" in lines[0]   # the window's built-in, listed first
    lines = lines[1:]
    assert lines[0].startswith("default") and "[Practical Guidelines]" in lines[0]
    order = [name for _, entries in preset_menu() for name, _ in entries]
    assert [line.split()[0] for line in lines] == order


def test_the_readme_is_up_to_date():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_schema_doc
    finally:
        sys.path.pop(0)
    assert gen_schema_doc.main(["--check"]) == 0, "run: python tools/gen_schema_doc.py"
