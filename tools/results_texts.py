"""The preset texts and README's preset table, rendered from presets/results/results.json.

Why: a figure typed into a text by hand goes stale the day the engine changes.
Templates in ``presets/texts/`` hold the words; every measured figure is a
placeholder naming an entry of ``presets/results/results.json`` (written by
``tools/results.py``), so the texts can only quote what the script measured.

A placeholder is ``{{preset/figure|stat|format}}``:

* ``preset/figure``: ``04-dying-relus/leaky_relu_0_01/val_accuracy`` (preset file stem, then the
  figure key of ``results.json``; the stem may be left out in that preset's own template);
* ``stat``: ``mean`` (default), ``std``, ``min``, ``max``, ``n`` (seeds with a value), ``of`` (seeds),
  ``npos`` / ``nneg`` (seeds with a value above / below 0), ``pm`` (mean ± std), ``values``
  (the per-seed values, in seed order, "a, b and c"), ``verdict`` (a 0/1 figure as
  "distinguishable" or "not distinguishable");
* ``format``: a Python format spec (``.1%`` for 0.723 -> 72.3%, ``.3f``, ``+.2f``), optionally after
  ``100*`` (scaled, no % sign: points), or ``eN`` for 3e-6 style (N decimals).  ``pm`` writes the
  std with the mean's precision ("72.3% ± 5.7", "0.80 ± 0.31").

Targets: ``presets/texts/<stem>.json`` ({"description", "look_at"}) -> the preset's JSON file;
``presets/texts/README.<block>.md`` -> the block between ``<!-- results:<block> -->`` and
``<!-- /results:<block> -->`` in README.md.

:func:`measured_looking` finds figures that look measured (percentages, ± pairs, decimals,
powers of ten, ratios, seconds, "N of M") in a template outside its placeholders;
``tests/test_results_texts.py`` fails on any that is neither a value of the preset's own
configuration nor in :data:`ALLOWED` (the book's figures, with where the book gives them).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "presets"
TEXTS = PRESETS / "texts"
RESULTS = PRESETS / "results" / "results.json"
README = ROOT / "README.md"
PRESET_TEXT_KEYS = ("description", "look_at")

PLACEHOLDER = re.compile(r"\{\{([^{}|]+)(?:\|([^{}|]*))?(?:\|([^{}|]*))?\}\}")

# Figures a text may quote that no run of this repository measures: each with its source.
ALLOWED = {
    "12-transfer-learning": {
        "97.2%": "Hands-On ML 2nd ed., ch. 11, 'Transfer Learning with Keras' (p. 347): model B from scratch",
        "99.25%": "ibid. (p. 348): model B on A, the best of the tries the author admits to",
        "2.8%": "ibid. (p. 348): the error rate from scratch",
        "0.7%": "ibid. (p. 348): the error rate on A",
    },
    "17-reuse-a-foreign-model": {
        "91.89%": "PyTorch's own test accuracy for model A (presets/models/train_fashion8_torch.py's output, "
                  "recorded with the model file); the imported figure next to it is a placeholder",
        "215 KB": "size of presets/models/fashion8-selu-torch.safetensors",
    },
    "16-learning-rate-sensitivity": {
        "0.9": "the default momentum of the momentum and Nesterov optimizers (engine/catalog/optimizers.py), "
               "a setting the sweep's trials inherit",
    },
    "presets/README.md": {   # its hand-written parts (outside the generated schema tables): settings in examples
        "0.05": "a learning rate in an example experiment", "0.001": "a learning rate in an example",
        "0.85": "a target in an example", "1e-4": "a grid bound in an example",
        "16e-04": "a trial name in an example (sgd-lr3.16e-04)", "1e-6": "the LR finder's default start",
    },
    "default": {
        "88.3%": "Fashion-MNIST benchmark table (zalandoresearch/fashion-mnist README): MLPClassifier 256-128-100",
    },
}


class TemplateError(ValueError):
    """A placeholder that names no figure, or a stat/format it cannot take."""


# ------------------------------------------------------------------------------- formatting

def _fmt(x: float, spec: str) -> str:
    if x is None:
        raise TemplateError("no value")
    if spec.startswith("100*"):
        x, spec = x * 100.0, spec[4:]
    m = re.fullmatch(r"([+]?)e(\d)", spec)
    if m:
        mant, exp = f"{x:.{m.group(2)}e}".split("e")
        return f"{m.group(1) if x >= 0 else ''}{mant}e{int(exp)}"
    return format(x, spec)


def _std_spec(spec: str) -> tuple[float, str]:
    """(scale, spec) for the std of a ``pm``: the mean's precision, no sign, no % sign."""
    scale = 1.0
    if spec.startswith("100*"):
        scale, spec = 100.0, spec[4:]
    spec = spec.replace("+", "")
    if spec.endswith("%"):
        return scale * 100.0, spec[:-1] + "f"
    return scale, spec


def render_value(fig: dict, stat: str, spec: str) -> str:
    stat = stat or "mean"
    spec = spec or "g"
    values = [v for v in fig["values"] if v is not None]
    if stat in ("mean", "std", "min", "max"):
        return _fmt(fig[stat], spec)
    if stat == "n":
        return str(fig["n"])
    if stat == "of":
        return str(len(fig["values"]))
    if stat in ("npos", "nneg"):
        return str(sum((v > 0) if stat == "npos" else (v < 0) for v in values))
    if stat == "pm":
        if fig["std"] is None:
            return _fmt(fig["mean"], spec)
        scale, std_spec = _std_spec(spec)
        return f"{_fmt(fig['mean'], spec)} ± {format(fig['std'] * scale, std_spec)}"
    if stat == "verdict":    # a 0/1 figure of the one rule (engine.jobs.compare_report.distinguishable)
        return "distinguishable" if fig["mean"] == 1.0 else "not distinguishable"
    if stat == "values":
        parts = [_fmt(v, spec) if v is not None else "none" for v in fig["values"]]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    raise TemplateError(f"unknown stat {stat!r} (mean, std, min, max, n, of, npos, nneg, pm, verdict, values)")


def lookup(results: dict, key: str, where: str) -> dict:
    """The figure ``key`` names: "<stem>/<figure>", or "<figure>" of the preset ``where``."""
    first, _, rest = key.partition("/")
    stem, rest = (first, rest) if (PRESETS / f"{first}.json").is_file() else (where, key)
    entry = results["presets"].get(stem)
    if entry is None:
        raise TemplateError(f"{where}: {{{{{key}}}}}: preset {stem!r} is not in results.json "
                            f"(run tools/results.py --only {stem})")
    fig = entry["figures"].get(rest)
    if fig is None and stem == first:   # a single-run preset keys its figures by its run's name ("default/...")
        fig = entry["figures"].get(f"{first}/{rest}")
    if fig is None:
        raise TemplateError(f"{where}: {{{{{key}}}}}: results.json has no figure {rest!r} for {stem}")
    return fig


def render(template: str, results: dict, where: str) -> str:
    """``template`` with every placeholder replaced by its figure (``where``: the preset stem or
    file the template belongs to; a placeholder without a stem is that preset's)."""
    def one(m):
        key, stat, spec = m.group(1).strip(), (m.group(2) or "").strip(), (m.group(3) or "").strip()
        try:
            return render_value(lookup(results, key, where), stat, spec)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, TemplateError) and str(exc).startswith(where):
                raise
            raise TemplateError(f"{where}: {m.group(0)}: {exc}") from None
    return PLACEHOLDER.sub(one, template)


# ------------------------------------------------------------------------------- targets

def load_results() -> dict:
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def preset_templates() -> dict:
    """{stem: {"description": template, "look_at": template}} of presets/texts/*.json."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(TEXTS.glob("*.json"))}


def readme_templates() -> dict:
    """{block: template} of presets/texts/README.<block>.md."""
    return {p.name[len("README."):-len(".md")]: p.read_text(encoding="utf-8").rstrip("\n")
            for p in sorted(TEXTS.glob("README.*.md"))}


def _dump_preset(raw: dict) -> str:
    return json.dumps(raw, indent=2, ensure_ascii=False) + "\n"


def _block_markers(block: str) -> tuple[str, str]:
    return f"<!-- results:{block} -->", f"<!-- /results:{block} -->"


def rendered_files(results: dict | None = None, errors: list | None = None) -> dict:
    """{path: text} of every file the templates render into, as it should be.  A template that
    names a figure the results lack raises :class:`TemplateError`; with an ``errors`` list, the
    error is appended there instead and that file is left out (README's blocks stay as they are)."""
    results = load_results() if results is None else results

    def rendered(template, where, fallback):
        try:
            return render(template, results, where)
        except TemplateError as exc:
            if errors is None:
                raise
            errors.append(str(exc))
            return fallback
    out = {}
    for stem, texts in preset_templates().items():
        path = PRESETS / f"{stem}.json"
        raw = json.loads(path.read_text(encoding="utf-8"))
        new = {key: rendered(texts[key], stem, None) for key in PRESET_TEXT_KEYS if key in texts}
        if None not in new.values():
            out[path] = _dump_preset(dict(raw, **new))
    readme = README.read_text(encoding="utf-8")
    for block, template in readme_templates().items():
        begin, end = _block_markers(block)
        if readme.count(begin) != 1 or readme.count(end) != 1:
            raise TemplateError(f"README.md needs exactly one {begin} and one {end}")
        head, rest = readme.split(begin)
        old, tail = rest.split(end)
        readme = f"{head}{begin}{rendered(chr(10) + template + chr(10), 'README.md', old)}{end}{tail}"
    out[README] = readme
    return out


def render_all(errors: list | None = None) -> list:
    """Write every rendered file that changed; returns their paths.  With an ``errors`` list, the
    files whose figures are missing are skipped and the reasons collected there."""
    written = []
    for path, text in rendered_files(errors=errors).items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path.relative_to(ROOT))
    return written


def check(read=lambda path: path.read_text(encoding="utf-8")) -> list:
    """The files whose committed text (``read(path)``) is not what the templates render (a hand
    edit, or results.json changed without --render)."""
    missing: list = []
    differ = [f"{path.relative_to(ROOT)} differs from its rendered template (edit presets/texts/, then run "
              f"python tools/results.py --render)" for path, text in rendered_files(errors=missing).items()
              if read(path) != text]
    return differ + missing


# ------------------------------------------------------------------------------- the scan

_NUM = r"\d[\d,]*(?:\.\d+)?"
MEASURED_LOOKING = re.compile(
    rf"(?:±|\+/-)\s*{_NUM}"                                   # the spread of a ± pair
    rf"|{_NUM}\s*(?:±|\+/-)"                                  # the mean of a ± pair
    rf"|{_NUM}\s*%"                                           # a percentage
    rf"|\b{_NUM}(?:[eE][-+]?\d+)\b"                           # a power of ten: 3e-6
    rf"|\b\d+\.\d+\b"                                         # a decimal: 0.047, 136.5
    rf"|\b{_NUM}\s*(?:x|×)(?![\w(])"                          # a ratio: 270x, 5.7×
    rf"|\b{_NUM}\s*(?:s|seconds?|minutes?|ms)\b"              # a duration
    rf"|\b\d+\s+of\s+\d+\b"                                   # a count over seeds: 2 of 3
    rf"|\b\d+\s+(?:to|and)\s+\d+\s+(?:steps|epochs)\b"        # a measured range of steps or epochs
)
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def config_numbers(experiment) -> set:
    """Every number in an experiment's configuration (its texts aside), as floats: what a text may
    quote as a setting ("Adam at 0.01", "target 80%")."""
    found = set()

    def walk(x):
        if isinstance(x, bool):
            return
        if isinstance(x, (int, float)):
            found.add(float(x))
        elif isinstance(x, dict):
            for k, v in x.items():
                if k not in ("title", "description", "look_at"):
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(experiment)
    return found


def _is_config(token: str, match: str, numbers: set) -> bool:
    value = float(token.replace(",", ""))
    candidates = [value]
    if "%" in match:
        candidates.append(value / 100.0)
    return any(math.isclose(c, n, rel_tol=1e-9, abs_tol=1e-12) for c in candidates for n in numbers)


def hand_written(markdown: str) -> str:
    """A markdown file without its generated blocks (``<!-- BEGIN GENERATED: x -->`` ... ``END``)."""
    return re.sub(r"<!-- BEGIN GENERATED: (\w+) -->.*?<!-- END GENERATED: \1 -->", "", markdown, flags=re.S)


def measured_looking(template: str, numbers: set = frozenset(), allowed: dict | None = None) -> list:
    """The figures in ``template`` (outside its placeholders) that look measured and are neither a
    configuration value (``numbers``) nor ``allowed``; each as the matched text."""
    text = PLACEHOLDER.sub("#", template)
    for token in (allowed or {}):
        text = text.replace(token, "#")
    bad = []
    for m in MEASURED_LOOKING.finditer(text):
        tokens = _NUMBER.findall(m.group(0))
        if m.group(0).strip().endswith(("steps", "epochs")) or " of " in m.group(0):
            bad.append(m.group(0))     # ranges and counts are claims about runs, never settings
        elif not all(_is_config(t, m.group(0), numbers) for t in tokens):
            bad.append(m.group(0))
    return bad
