"""Every figure a preset text or README's preset table quotes comes from presets/results/results.json.

Issue 12 (item 12): the texts had drifted from what the app measures.  The texts are now
rendered by tools/results_texts.py from templates whose measured figures are placeholders
into the results file tools/results.py writes; these tests fail on a hand edit of a rendered
text, on a placeholder naming a figure the file lacks, and on a figure typed into a template
that is neither a setting of the preset nor one of the book's own (tools.results_texts.ALLOWED).
"""
import json

import pytest

from engine.spec.experiment import load_experiment, preset_paths
from tools import results_texts as RT
from tools.results import EXTRA_VARIANTS


def test_rendering_the_templates_reproduces_the_committed_texts():
    assert RT.check() == []


def test_every_preset_text_has_a_template():
    # a preset without a template would escape both the rendering check and the scan below
    assert set(RT.preset_templates()) == set(preset_paths())


@pytest.mark.parametrize("stem", sorted(RT.preset_templates()))
def test_no_template_types_a_measured_looking_figure(stem):
    numbers = RT.config_numbers([load_experiment(str(preset_paths()[stem])), EXTRA_VARIANTS.get(stem)])
    for key, template in RT.preset_templates()[stem].items():
        assert RT.measured_looking(template, numbers, RT.ALLOWED.get(stem)) == [], f"{stem}.{key}"


def test_readme_table_types_no_measured_looking_figure():
    numbers = set().union(*(RT.config_numbers(load_experiment(str(p))) for p in preset_paths().values()))
    allowed = {k: v for table in RT.ALLOWED.values() for k, v in table.items()}
    for block, template in RT.readme_templates().items():
        assert RT.measured_looking(template, numbers, allowed) == [], block


def test_presets_readme_quotes_no_measured_figure():
    # presets/README.md documents the schema (generated tables) around a few examples: no results
    text = RT.hand_written((RT.PRESETS / "README.md").read_text(encoding="utf-8"))
    assert RT.measured_looking(text, set(), RT.ALLOWED["presets/README.md"]) == []


def test_every_placeholder_names_a_figure_of_the_results_file():
    results = RT.load_results()
    for stem, texts in RT.preset_templates().items():
        for template in texts.values():
            RT.render(template, results, stem)        # raises TemplateError on an unknown figure
    for template in RT.readme_templates().values():
        RT.render(template, results, "README.md")


@pytest.mark.parametrize("typed", ["reaches 72.3% ± 5.7", "accuracy 41.6%", "a loss of 0.135", "about 3e-6",
                                   "270x faster", "took 136 s", "better on 2 of 3 seeds", "+/- 0.47",
                                   "within 370 to 420 steps"])
def test_the_scan_catches_a_typed_figure(typed):
    assert RT.measured_looking(f"The net {typed} here.", {0.01, 3.0}) != []


@pytest.mark.parametrize("setting", ["Adam at 0.01", "target 80% validation accuracy", "3 seeds", "Table 11-1",
                                     "{{x/val_accuracy|pm|.1%}} over the seeds"])
def test_the_scan_lets_settings_and_placeholders_through(setting):
    assert RT.measured_looking(setting, {0.01, 0.8, 3.0}) == []


def test_placeholders_render_the_documented_formats():
    fig = {"seeds": [1, 2, 3], "values": [0.7, 0.75, None], "mean": 0.725, "std": 0.0353553, "min": 0.7,
           "max": 0.75, "n": 2}
    results = {"presets": {"default": {"figures": {"v/acc": fig}}}}
    cases = {"{{v/acc|pm|.1%}}": "72.5% ± 3.5", "{{default/v/acc|mean|100*.2f}}": "72.50",
             "{{v/acc|n}} of {{v/acc|of}}": "2 of 3", "{{v/acc|values|.0%}}": "70%, 75% and none",
             "{{v/acc|min|e0}}": "7e-1", "{{v/acc|npos}}": "2"}
    for template, expected in cases.items():
        assert RT.render(template, results, "default") == expected
    with pytest.raises(RT.TemplateError, match="no figure"):
        RT.render("{{v/loss}}", results, "default")


def test_a_hand_edit_of_a_rendered_text_is_caught():
    path = RT.PRESETS / "03-symmetry.json"

    def read(p):
        text = p.read_text(encoding="utf-8")
        return text.replace("validation accuracy", "validation accuracy (99.9%)", 1) if p == path else text
    assert [d for d in RT.check(read) if "03-symmetry" in d]
