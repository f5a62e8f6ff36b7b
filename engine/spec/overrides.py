"""Overrides: one rule for merging a partial experiment into a full one.

Comparisons (a variant's ``overrides``), staged workflows, the coach's "try
it" suggestions and the command line's ``--epochs``/``--seed`` all change an
experiment the same way, through :func:`apply_overrides`.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from engine.errors import ExperimentError, nearest

OVERRIDABLE = ("data", "model", "loss", "optimizer", "schedule", "training")
CLIP_KEYS = ("clipvalue", "clipnorm", "global_clipnorm")
NAMED_SECTIONS = ("data", "optimizer", "schedule")  # another "name" replaces the section



def _merge(base: Any, over: Any, where: str) -> Any:
    """Deep merge ``over`` into ``base`` (both plain JSON data); see apply_overrides."""
    if isinstance(over, dict) and isinstance(base, dict):
        out = copy.deepcopy(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value, f"{where}.{key}")
        return out
    if isinstance(over, dict) and isinstance(base, list) and all(isinstance(b, dict) for b in base):
        return [_merge_layer(b, over, f"{where}[{i}]") for i, b in enumerate(base)]
    return copy.deepcopy(over)


def _merge_layer(base: dict, over: dict, where: str) -> dict:
    """A layer (or output) merge that keeps the activation/initializer parameters consistent."""
    base = copy.deepcopy(base)
    if "activation" in over and over["activation"] != base.get("activation"):
        if "activation_params" not in over:
            base.pop("activation_params", None)
        if "initializer" not in over:
            base["initializer"] = None          # Table 11-1's match for the new activation
            base.pop("initializer_params", None)
    if "initializer" in over and over["initializer"] != base.get("initializer") \
            and "initializer_params" not in over:
        base.pop("initializer_params", None)
    return _merge(base, over, where)


def apply_overrides(experiment: Mapping, overrides: Mapping | None) -> dict:
    """The experiment with ``overrides`` merged in, resolved (validated, defaults filled).

    Works on raw or resolved experiments (the window applies the coach's "try
    it" modifications to a resolved one).  The rules:

    * objects merge key by key, recursively; any other value (number, string,
      list, null) replaces the base value;
    * ``data``, ``optimizer``, ``schedule``: an override with another
      ``name`` replaces the whole section (the optimizer keeps its gradient
      clipping keys), since the old keys may not exist for the new name;
    * ``model.layers``: a list replaces the layers; an object is merged into
      *every* hidden layer (``{"model": {"layers": {"activation": "elu"}}}``);
    * in a layer, a new ``activation`` drops the old ``activation_params``
      and resets the ``initializer`` to Table 11-1's match for the new
      activation, unless the override names them too; a new ``initializer``
      drops the old ``initializer_params``;
    * the result keeps no ``compare``, ``stages`` or ``sweep`` section.
    """
    from engine.spec.experiment import resolve_experiment

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
            out[key] = _merge(kept, dict(value), key)
        elif key == "model" and isinstance(value, Mapping) and isinstance(base, Mapping):
            model = copy.deepcopy(dict(base))
            for mkey, mval in value.items():
                if mkey == "layers" and isinstance(mval, Mapping):
                    model["layers"] = [_merge_layer(layer, dict(mval), f"model.layers[{i}]")
                                       for i, layer in enumerate(model.get("layers", []))]
                elif mkey == "output" and isinstance(mval, Mapping) and isinstance(model.get("output"), Mapping):
                    model["output"] = _merge_layer(model["output"], dict(mval), "model.output")
                else:
                    model[mkey] = _merge(model.get(mkey), mval, f"model.{mkey}")
            out["model"] = model
        else:
            out[key] = _merge(base, value, key)
    out["compare"] = None
    out["stages"] = None
    out["sweep"] = None  # hook for engine/spec/sweep.py (issue 17): a trial is a single run
    return resolve_experiment(out)
