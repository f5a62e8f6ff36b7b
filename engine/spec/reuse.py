"""Reusing layers, as configuration: which hidden layers a new network takes
from a trained one, and what its ``model`` section then is.

These functions work on resolved ``model`` sections only (no weights, no
network), so the ``stages`` schema validates a ``reuse`` block when the file
is loaded.  Copying the weights, freezing and caching are
:mod:`engine.training.transfer`'s.
"""
from __future__ import annotations

import copy

from engine.errors import ExperimentError

ALL_BUT_OUTPUT = "all_but_output"

# keys of a hidden layer that fix its tensors' shapes and meaning: a reused
# layer takes these from the source; the rest (l1/l2, max_norm, dropout...)
# may be changed by the new model.
ARCHITECTURE_KEYS = ("units", "activation", "activation_params", "use_bias", "batch_norm", "bn_epsilon")


def resolve_layer_count(layers, n_hidden: int, where: str = "reuse.layers") -> int:
    """``layers`` (an int k, "all_but_output", or "all_but_top_<n>") -> k.

    "all_but_output" reuses every hidden layer; "all_but_top_1" drops the
    topmost hidden layer as well (the book's advice: the upper layers are the
    most task-specific)."""
    if isinstance(layers, str):
        if layers == ALL_BUT_OUTPUT:
            return n_hidden
        if layers.startswith("all_but_top_"):
            tail = layers[len("all_but_top_"):]
            if tail.isdigit() and 1 <= int(tail) <= n_hidden:
                return n_hidden - int(tail)
        raise ExperimentError(f"{where} must be a number of hidden layers (0..{n_hidden}), "
                              f"'all_but_output' or 'all_but_top_N' with 1 <= N <= {n_hidden}, got {layers!r}")
    if isinstance(layers, bool) or not isinstance(layers, int) or not 0 <= layers <= n_hidden:
        raise ExperimentError(f"{where} must be a number of hidden layers from 0 to {n_hidden} (the source has "
                              f"{n_hidden} hidden layers), 'all_but_output' or 'all_but_top_N', got {layers!r}")
    return layers


def reused_model_config(source_layers: list, k: int, new_layers: list, output: dict,
                        freeze: bool = True) -> dict:
    """The ``model`` section of a network that reuses the first ``k`` hidden
    layers of a model whose resolved hidden layers are ``source_layers``:
    those k layer configs (trainable = not freeze), then ``new_layers``, then
    the new ``output``.  Everything else of the source (its output layer,
    its upper layers) is dropped."""
    reused = [dict(copy.deepcopy(cfg), trainable=not freeze) for cfg in source_layers[:k]]
    return {"layers": reused + [copy.deepcopy(cfg) for cfg in new_layers], "output": copy.deepcopy(output)}


def check_compatible(source_layers: list, target_layers: list, k: int, where: str = "reuse") -> None:
    """The first k hidden layers must have the same architecture."""
    if len(target_layers) < k:
        raise ExperimentError(f"{where}: the new model has {len(target_layers)} hidden layers, "
                              f"cannot reuse {k}")
    for i in range(k):
        for key in ARCHITECTURE_KEYS:
            a, b = source_layers[i].get(key), target_layers[i].get(key)
            if a != b:
                raise ExperimentError(f"{where}: layer {i} of the new model has {key}={b!r} but the reused "
                                      f"layer has {key}={a!r}; reused layers keep their architecture")
