"""Networks from weights files: rebuild a trained network, or reuse its
first k layers in a new one (transfer learning)."""
from __future__ import annotations

import copy
import math
import os
from typing import Mapping

import numpy as np

from engine.data import load_dataset
from engine.errors import ExperimentError, WeightsError
from engine.formats.common import check_data_metadata, check_tensors, n_layers
from engine.formats.runfolder import run_weights_file
from engine.formats.weights import load_any
from engine.spec.experiment import resolve_experiment
from engine.training.network import Network
from engine.training.transfer import copy_layers, freeze_layers


def _infer_task(experiment: dict, metadata: dict, n_out: int) -> str:
    data = metadata.get("data") if isinstance(metadata.get("data"), dict) else {}   # else refused right after
    if data.get("task") in ("classification", "regression", "reconstruction"):
        return data["task"]
    activation = experiment["model"]["output"]["activation"]
    loss = experiment.get("loss", "auto")
    if activation in ("softmax", "logistic") or loss in ("cross_entropy", "binary_cross_entropy"):
        return "classification"
    if activation == "linear" or loss == "mse" or n_out == 1:
        return "regression"
    acc = (metadata.get("summary") or {}).get("final_val_accuracy")
    if isinstance(acc, (int, float)) and math.isnan(acc):
        return "regression"  # accuracy is NaN for regression runs
    return "classification"


def network_from_weights(weights: dict, metadata: dict, source="weights") -> Network:
    """The trained network a Descent weights file describes, ready to predict.

    The architecture comes from the experiment in the file's metadata, the
    input and output sizes from the tensors; every tensor must fit exactly.
    """
    weights = check_tensors(weights, source)
    experiment = metadata.get("experiment") if isinstance(metadata, dict) else None
    if not isinstance(experiment, dict):
        raise WeightsError(f"{source} has no Descent experiment in its metadata, so the network it belongs "
                           f"to (activations, batch norm) is unknown; use a file Descent wrote")
    try:
        experiment = resolve_experiment(experiment)
    except ExperimentError as exc:
        raise WeightsError(f"{source}: the experiment in its metadata is not valid here: {exc}") from None
    L = n_layers(weights)
    if L != len(experiment["model"]["layers"]) + 1:
        raise WeightsError(f"{source} has {L} dense layers of tensors, but its experiment describes "
                           f"{len(experiment['model']['layers']) + 1} (hidden layers plus output)")
    n_inputs = weights["layers.0.kernel"].shape[0]
    n_out = weights[f"layers.{L - 1}.kernel"].shape[1]
    task = _infer_task(experiment, metadata, n_out)
    n_classes = (2 if experiment["model"]["output"]["activation"] == "logistic" else n_out) \
        if task == "classification" else 0
    check_data_metadata(metadata, source, n_inputs, n_classes)
    try:
        net = Network(experiment, n_inputs, task, n_classes, n_out)
    except ExperimentError as exc:
        raise WeightsError(f"{source}: cannot rebuild its network: {exc}") from None
    extra = sorted(set(weights) - set(net.by_name))
    if extra:
        raise WeightsError(f"{source}: tensor(s) {', '.join(extra)} do not belong to the network its "
                           f"experiment describes")
    net.load_state_dict(weights, source=str(source))
    return net


def load_network(path) -> tuple[Network, dict]:
    """(network, metadata) from a .safetensors or .npz file Descent wrote."""
    weights, metadata = load_any(path)
    return network_from_weights(weights, metadata, path), metadata


def reuse_layers(weights, experiment: dict, k: int, *, dataset=None, freeze: bool = True,
                 seed: int | None = None) -> Network:
    """A new network for ``experiment`` whose first ``k`` layers are copies of
    those in ``weights`` (a path to a .safetensors/.npz file, or a dict of
    tensors); the other layers are freshly initialized.

    Layers are matched by index and shape (a mismatch names the layer and
    both shapes; nothing is copied then).  The copy is independent of the
    source.  With ``freeze`` (the default) the reused layers are frozen:
    ``trainable`` is false in the returned network's ``experiment`` and its
    layer tables, so a :class:`~engine.training.trainer.Trainer` built with
    ``Trainer(net.experiment, dataset, network=net)`` leaves them alone
    (unfreeze later with ``net.set_trainable(i, True)``).  The network records
    ``reused_layers`` (indices) and ``reused_from`` (the source).
    ``dataset`` is the new task's data (loaded from the experiment if None);
    ``seed`` initializes the fresh layers (default: the experiment's seed).
    """
    if isinstance(weights, (str, os.PathLike)):
        source = str(weights)
        weights, _ = load_any(weights)
    else:
        source = "the source weights"
        weights = check_tensors(dict(weights), source)
    experiment = resolve_experiment(copy.deepcopy(experiment))
    available = n_layers(weights)
    total = len(experiment["model"]["layers"]) + 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= min(available, total):
        raise WeightsError(f"can reuse 0 to {min(available, total)} layers ({source} has {available}, the new "
                           f"network {total}), got k={k!r}")
    k = int(k)
    for i in range(k):
        section = experiment["model"]["layers"][i] if i < total - 1 else experiment["model"]["output"]
        section["trainable"] = section["trainable"] and not freeze
    if dataset is None:
        dataset = load_dataset(experiment["data"], experiment["seed"])
    n_targets = dataset.y_train.shape[1] if dataset.y_train.ndim == 2 else 1
    net = Network(experiment, dataset.x_train.shape[1], dataset.task, dataset.n_classes, n_targets)
    net.initialize(experiment["seed"] if seed is None else seed)
    copy_layers(weights, net, k, source=source)  # the one reuse implementation: engine.training.transfer
    if freeze:
        freeze_layers(net, range(k))
    net.reused_layers = tuple(range(k))
    net.reused_from = source
    return net


def load_init_weights(net: Network, source, partial: bool = False) -> None:
    """``run --init-weights FILE``: start ``net`` from a weights file (or a run folder's, or tensors
    already loaded: the window's imported model).  Every tensor of the file must be one of the
    network's and every tensor of the network must be in the file, with the same shape;
    otherwise the difference is named (nothing is copied).  With ``partial`` only the tensors
    both have are copied (a subset on purpose; shapes must still agree), the others keep their
    initialization."""
    if isinstance(source, Mapping):
        path = "the imported model"
        weights = check_tensors(dict(source), path)
    else:
        path = run_weights_file(source)
        weights, _ = load_any(path)
    extra = sorted(set(weights) - set(net.by_name))
    missing = sorted(set(net.by_name) - set(weights))
    if not partial and (extra or missing):
        what = []
        if extra:
            what.append(f"it has tensor(s) this network lacks: {_listed(extra)}")
        if missing:
            what.append(f"it lacks tensor(s) this network has: {_listed(missing)}")
        raise WeightsError(f"--init-weights {path} does not fit this network: {'; '.join(what)}; give weights of the "
                           f"same architecture, or add --partial to load only the tensors both have")
    shared = [t.name for t in net.tensors if t.name in weights]   # the network's order (a kernel before its bias),
                                                                  # not the file's (safetensors sorts the names)
    if not shared:
        raise WeightsError(f"--init-weights {path} has no tensor of this network")
    for name in shared:   # every shape checked before anything is copied
        want = net.by_name[name].shape
        if weights[name].shape != want:
            raise WeightsError(f"--init-weights {path}: {name} has shape {weights[name].shape}, but this network's "
                               f"layer {net.by_name[name].layer} needs {want}")
    for name in shared:
        net.tensor(name)[...] = weights[name]


def _listed(names: list, shown: int = 6) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
