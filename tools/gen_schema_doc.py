#!/usr/bin/env python3
"""Regenerate the tables of presets/README.md from the engine's own specs.

Every table between a pair of markers

    <!-- BEGIN GENERATED: <block> -->
    ...
    <!-- END GENERATED: <block> -->

is rebuilt from the Param specs (engine/spec/sections.py, engine/spec/lr_finder.py,
engine/catalog/optimizers.py, engine/catalog/schedules.py, engine/data/,
engine/catalog/activations.py, engine/catalog/initializers.py), the compare
and sweep sections' SECTION_DOC (engine/spec/compare.py, engine/spec/sweep.py), the coach's THRESHOLDS and the
shipped presets; the text around the markers is left as
written.  So the documentation cannot drift: tests/test_presets.py fails
when the README differs from what this script writes.

    python tools/gen_schema_doc.py           rewrite presets/README.md
    python tools/gen_schema_doc.py --check   exit 1 if it is out of date
"""
from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
README = ROOT / "presets" / "README.md"

from engine.data.augment import AUGMENT_DOC, AUGMENT_PARAMS  # noqa: E402
from engine.catalog.activations import ACTIVATIONS  # noqa: E402
from engine.coach import THRESHOLDS  # noqa: E402
from engine.spec.compare import SECTION_DOC, ZERO_PARAM  # noqa: E402
from engine.spec import sweep as sweep_spec  # noqa: E402
from engine.data import DATASETS  # noqa: E402
from engine.spec.experiment import SECTIONS, load_experiment, preset_menu  # noqa: E402
from engine.spec.sections import (EARLY_STOPPING_PARAMS, LAYER_PARAMS, LOSSES, OPTIMIZER_CLIP_PARAMS,  # noqa: E402
                                  OUTPUT_PARAMS, TRAINING_PARAMS)
from engine.catalog.initializers import INITIALIZERS  # noqa: E402
from engine.spec.lr_finder import FINDER_PARAMS  # noqa: E402
from engine.catalog.optimizers import OPTIMIZERS  # noqa: E402
from engine.params import Param  # noqa: E402
from engine.catalog.schedules import SCHEDULES  # noqa: E402

MARK = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)",
                  re.S)

TYPES = {"float": "number", "int": "integer", "bool": "boolean", "choice": "string", "str": "string",
         "ints": "list of integers", "floats": "list of numbers"}


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(v) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict) and not v:
        return "{}"
    return str(v).replace("'", '"')


def _type(p: Param) -> str:
    if p.kind == "str" and isinstance(p.default, dict):
        base = "object"
    else:
        base = TYPES[p.kind]
    return base + (" or null" if p.optional else "")


def _allowed(p: Param) -> str:
    if p.kind == "str":
        return "see below" if isinstance(p.default, dict) else "any text"
    text = p.describe_range()
    for prefix in ("a number ", "an integer ", "a list of integers ", "a list of numbers "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text if text not in ("a number", "an integer", "a list of integers", "a list of numbers") else "any"


def param_table(spec: dict, prefix: str = "", overrides: dict | None = None) -> str:
    rows = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for key, p in spec.items():
        typ, default, allowed, doc = _type(p), _value(p.default), _allowed(p), p.doc
        if overrides and key in overrides:
            typ, default, allowed, doc = overrides[key]
        rows.append(f"| `{prefix}{key}` | {_cell(typ)} | `{_cell(default)}` | {_cell(allowed)} | {_cell(doc)} |")
    return "\n".join(rows)


def _first_paragraph(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    para = doc.split("\n\n")[0]
    para = re.sub(r":\w+:`~?([\w.]+)`", r"\1", para)
    return " ".join(para.split())


# ------------------------------------------------------------------------------------------------ blocks


def block_top() -> str:
    rows = [
        ("format_version", "integer", "1", "1", "version of this file format"),
        ("name", "string", '"experiment"', "any text", "short name; run folders are named after it"),
        ("title", "string", '""', "any text", "one line shown in the Presets menu"),
        ("section", "string", '""', "the book's section names (list below) or any text",
         "the part of chapter 11 the experiment illustrates; groups the Presets menu"),
        ("description", "string", '""', "any text", "the explanation shown above the editors"),
        ("look_at", "string", '""', "any text", "what to watch while it trains"),
        ("seed", "integer", "42", "0 .. 2^32-1", "data split, initial weights, batch order and dropout masks "
                                                 "all derive from it"),
        ("data", "object", '{"name": "spirals"}', "see data", "the data set"),
        ("model", "object", "{}", "see model", "hidden layers and output layer"),
        ("loss", "string", '"auto"', ", ".join(LOSSES), "auto follows the output activation"),
        ("optimizer", "object", '{"name": "sgd"}', "see optimizer", "optimizer, learning rate, clipping"),
        ("schedule", "object", '{"name": "constant"}', "see schedule", "learning-rate schedule"),
        ("training", "object", "{}", "see training", "epochs, batches, diagnostics"),
        ("compare", "object or null", "null", "see compare", "variants x seeds of this experiment"),
        ("stages", "object or null", "null", "see stages", "a multi-stage workflow (transfer, pretraining)"),
        ("sweep", "object or null", "null", "see sweep", "a grid or random search over any keys, x seeds"),
    ]
    out = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    out += [f"| `{k}` | {t} | `{d}` | {_cell(a)} | {_cell(m)} |" for k, t, d, a, m in rows]
    return "\n".join(out)


def block_data() -> str:
    parts = []
    for name, spec in DATASETS.items():
        parts.append(f"#### `\"name\": \"{name}\"` ({spec.kind})\n\n{_cell(spec.doc)}\n\n"
                     + param_table(spec.params, "data."))
    parts.append("#### `data.augment` (image data: fashion_mnist, npz files of (n, height, width) images)\n\n"
                 + _cell(AUGMENT_DOC) + "\n\n" + param_table(AUGMENT_PARAMS, "data.augment."))
    return "\n\n".join(parts)


def block_layers() -> str:
    return param_table(LAYER_PARAMS, "model.layers[].")


def block_activations() -> str:
    rows = ["| activation | Table 11-1 initializer (used when `initializer` is null) | diagnostics | "
            "activation_params | meaning |", "|---|---|---|---|---|"]
    for name, a in ACTIVATIONS.items():
        params = "; ".join(f"`{k}` ({_value(p.default)}; {_allowed(p)}): {p.doc}" for k, p in a.params.items())
        diag = ", ".join(x for x, on in (("dead units", a.relu_family), ("saturation", a.saturating)) if on)
        where = "hidden" if a.hidden else ""
        where += ("/" if where and a.output else "") + ("output" if a.output else "")
        rows.append(f"| `{name}` ({where}) | `{a.default_initializer}` | {diag or '-'} | {_cell(params) or '-'} | "
                    f"{_cell(a.doc)} |")
    return "\n".join(rows)


def block_initializers() -> str:
    rows = ["| initializer | scale | fan | distribution | initializer_params | meaning |",
            "|---|---|---|---|---|---|"]
    for name, i in INITIALIZERS.items():
        params = "; ".join(f"`{k}` ({_value(p.default)}; {_allowed(p)}): {p.doc}" for k, p in i.params.items())
        scale = "-" if i.mode == "none" else f"{i.scale:g}"
        rows.append(f"| `{name}` | {scale} | {i.mode} | {i.distribution} | {_cell(params) or '-'} | {_cell(i.doc)} |")
    return "\n".join(rows)


def block_output() -> str:
    return param_table(OUTPUT_PARAMS, "model.output.")


def block_optimizers() -> str:
    parts = ["Keys every optimizer accepts:\n\n" + param_table(
        {"learning_rate": Param(None, "learning rate η: the step size (default: the optimizer's own, below)",
                                low=0.0, low_open=True), **OPTIMIZER_CLIP_PARAMS}, "optimizer.",
        {"learning_rate": ("number", "per optimizer", "> 0", "learning rate η: the step size; default below")})]
    for name, cls in OPTIMIZERS.items():
        text = f"#### `\"name\": \"{name}\"` (default learning rate {cls.default_learning_rate:g})\n\n" \
               f"{_cell(_first_paragraph(cls))}"
        if cls.hyperparameters:
            text += "\n\n" + param_table(cls.hyperparameters, "optimizer.")
        parts.append(text)
    return "\n\n".join(parts)


def block_schedules() -> str:
    parts = []
    for name, cls in SCHEDULES.items():
        text = f"#### `\"name\": \"{name}\"`\n\n{_cell(_first_paragraph(cls))}"
        if cls.hyperparameters:
            text += "\n\n" + param_table(cls.hyperparameters, "schedule.")
        parts.append(text)
    return "\n\n".join(parts)


def block_training() -> str:
    return param_table(TRAINING_PARAMS, "training.") + "\n\n`training.early_stopping` (null = off):\n\n" + \
        param_table(EARLY_STOPPING_PARAMS, "training.early_stopping.")


def block_compare() -> str:
    rows = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for key, typ, default, allowed, doc in SECTION_DOC:
        rows.append(f"| `compare.{key}` | {_cell(typ)} | `{_cell(default)}` | {_cell(allowed)} | {_cell(doc)} |")
    rows.append("")
    rows.append("`compare.variants[].lr_finder` as an object:")
    rows.append("")
    rows.append(param_table(FINDER_PARAMS, "lr_finder."))
    return "\n".join(rows)


def block_sweep() -> str:
    rows = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for key, typ, default, allowed, doc in sweep_spec.SECTION_DOC:
        rows.append(f"| `sweep.{key}` | {_cell(typ)} | `{_cell(default)}` | {_cell(allowed)} | {_cell(doc)} |")
    rows += ["", "The space of a parameter (one key per parameter):", "",
             "| space | form | methods | values |", "|---|---|---|---|"]
    for kind, form, methods, doc in sweep_spec.SPACE_DOC:
        rows.append(f"| `{kind}` | `{_cell(form)}` | {methods} | {_cell(doc)} |")
    return "\n".join(rows)


def block_sections() -> str:
    return "\n".join(f"{i}. {s}" for i, s in enumerate(SECTIONS, 1))


def block_presets() -> str:
    rows = ["| preset | section | title | variants x seeds |", "|---|---|---|---|"]
    for section, entries in preset_menu():
        for name, path in entries:
            exp = load_experiment(str(path))
            cmp = exp.get("compare")
            stages = exp.get("stages")
            sweep = exp.get("sweep")
            size = (f"{len(cmp['variants'])} x {len(cmp['seeds'])}" if cmp else
                    f"{sweep_spec.trial_count(sweep)} trials x {len(sweep['seeds'])}" if sweep else
                    "stages" if stages else "1 run")
            rows.append(f"| `{name}` | {_cell(section)} | {_cell(exp['title'])} | {size} |")
    return "\n".join(rows)


def block_coach() -> str:
    rows = ["| threshold | value | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | {t.value:g} | {_cell(t.doc)} |" for name, t in THRESHOLDS.items()]
    return "\n".join(rows)


BLOCKS = {
    "top": block_top, "data": block_data, "layers": block_layers, "activations": block_activations,
    "initializers": block_initializers, "output": block_output, "optimizers": block_optimizers,
    "schedules": block_schedules, "training": block_training, "compare": block_compare, "sweep": block_sweep,
    "sections": block_sections, "presets": block_presets, "coach": block_coach,
}


def render(text: str) -> str:
    """The README text with every generated block rebuilt (unknown blocks are an error)."""
    def replace(m):
        name = m.group("name")
        if name not in BLOCKS:
            raise SystemExit(f"{README}: unknown generated block {name!r}; known: {', '.join(BLOCKS)}")
        return m.group(1) + BLOCKS[name]() + "\n" + m.group(4)

    return MARK.sub(replace, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if presets/README.md is out of date")
    args = parser.parse_args(argv)
    old = README.read_text(encoding="utf-8")
    new = render(old)
    missing = [name for name in BLOCKS if f"<!-- BEGIN GENERATED: {name} -->" not in old]
    if args.check:
        if new != old or missing:
            print(f"{README} is out of date" + (f" (missing blocks: {', '.join(missing)})" if missing else "")
                  + "; run: python tools/gen_schema_doc.py", file=sys.stderr)
            return 1
        print(f"{README} is up to date")
        return 0
    if missing:
        print(f"warning: {README} has no place for the blocks {', '.join(missing)}", file=sys.stderr)
    if new != old:
        README.write_text(new, encoding="utf-8")
        print(f"rewrote {README}")
    else:
        print(f"{README} already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
