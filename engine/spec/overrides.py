"""Overrides: the one rule for merging a partial experiment into a full one.

Comparisons (a variant's ``overrides``), staged workflows (a stage over the
top-level experiment, a phase over its stage), the coach's "try it"
suggestions and the command line's quick-look limits all change an
experiment the same way: :func:`merge_overrides` (the merged experiment, not
yet validated) and :func:`apply_overrides` (merged and resolved).  The rule
is written out once, in :func:`merge_overrides`'s docstring, and
``presets/README.md`` repeats it.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

from engine.errors import ExperimentError, nearest
from engine.spec.sections import resolve_single

OVERRIDABLE = ("data", "model", "loss", "optimizer", "schedule", "training")
CLIP_KEYS = ("clipvalue", "clipnorm", "global_clipnorm")
NAMED_SECTIONS = ("data", "optimizer", "schedule")  # another "name" replaces the section


def _merge(base: Any, over: Any) -> Any:
    """Deep merge ``over`` into ``base`` (both plain JSON data); see merge_overrides."""
    if isinstance(over, dict) and isinstance(base, dict):
        out = copy.deepcopy(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value)
        return out
    if isinstance(over, dict) and isinstance(base, list) and all(isinstance(b, dict) for b in base):
        return [merge_layer(b, over) for b in base]
    return copy.deepcopy(over)


def merge_layer(base: Mapping, over: Mapping) -> dict:
    """One layer (or the output layer) with ``over`` merged in, keeping the
    activation's and initializer's parameters consistent (the layer rules of
    :func:`merge_overrides`)."""
    base = copy.deepcopy(dict(base))
    if "activation" in over and over["activation"] != base.get("activation"):
        if "activation_params" not in over:
            base.pop("activation_params", None)
        if "initializer" not in over:
            base["initializer"] = None          # Table 11-1's match for the new activation
            base.pop("initializer_params", None)
    if "initializer" in over and over["initializer"] != base.get("initializer") \
            and "initializer_params" not in over:
        base.pop("initializer_params", None)
    return _merge(base, dict(over))


def _merge_model(base: Mapping, over: Mapping) -> dict:
    model = copy.deepcopy(dict(base))
    for key, value in over.items():
        if key == "layers" and isinstance(value, Mapping):
            model["layers"] = [merge_layer(layer, value) for layer in model.get("layers", [])]
        elif key == "output" and isinstance(value, Mapping) and isinstance(model.get("output"), Mapping):
            model["output"] = merge_layer(model["output"], value)
        else:
            model[key] = _merge(model.get(key), value)
    return model


def merge_overrides(experiment: Mapping, overrides: Mapping | None) -> dict:
    """The experiment with ``overrides`` merged in, not yet validated.

    Works on raw or resolved experiments.  The rules:

    * ``overrides`` may name ``data``, ``model``, ``loss``, ``optimizer``,
      ``schedule`` and ``training`` (:data:`OVERRIDABLE`);
    * objects merge key by key, recursively; any other value (number, string,
      list, null) replaces the base value;
    * ``data``, ``optimizer``, ``schedule``: an override with another
      ``name`` replaces the whole section (the optimizer keeps its gradient
      clipping keys), since the old keys may not exist for the new name;
    * ``model.layers``: a list replaces the layers; an object is merged into
      *every* hidden layer (``{"model": {"layers": {"activation": "elu"}}}``);
      ``model.output`` is merged into the output layer;
    * in a layer, a new ``activation`` drops the old ``activation_params``
      and resets the ``initializer`` to Table 11-1's match for the new
      activation, unless the override names them too; a new ``initializer``
      drops the old ``initializer_params``;
    * the result keeps no ``compare``, ``stages`` or ``sweep`` section: it is one run.
    """
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise ExperimentError(f"overrides must be an object, got {overrides!r:.60}")
    out = copy.deepcopy(dict(experiment))
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise ExperimentError(f"overrides may change {', '.join(OVERRIDABLE)}; got {key!r}"
                                  f"{nearest(key, OVERRIDABLE)}")
        base = out.get(key)
        if key in NAMED_SECTIONS and isinstance(value, Mapping) and isinstance(base, Mapping) \
                and "name" in value and value["name"] != base.get("name"):
            kept = {k: base[k] for k in CLIP_KEYS if key == "optimizer" and base.get(k) is not None}
            out[key] = _merge(kept, dict(value))
        elif key == "model" and isinstance(value, Mapping) and isinstance(base, Mapping):
            out["model"] = _merge_model(base, value)
        else:
            out[key] = _merge(base, value)
    out["compare"] = None
    out["stages"] = None
    out["sweep"] = None
    return out


def apply_overrides(experiment: Mapping, overrides: Mapping | None) -> dict:
    """The experiment with ``overrides`` merged in (:func:`merge_overrides`),
    resolved: validated, defaults filled, one run (no compare, stages or sweep).
    The window applies the coach's "try it" overrides to a resolved
    experiment this way."""
    return resolve_single(merge_overrides(experiment, overrides))


def layers_override(experiment: Mapping, changes: Mapping, pick: Callable[[dict], bool]) -> dict:
    """Overrides that merge ``changes`` into the hidden layers ``pick(layer)``
    selects, and leave the others as they are: ``{"model": {"layers": [...]}}``
    (an object under ``layers`` would change every layer)."""
    layers = [merge_layer(layer, changes) if pick(layer) else copy.deepcopy(layer)
              for layer in experiment["model"]["layers"]]
    return {"model": {"layers": layers}}
