"""Transfer-learning primitives: reuse, freeze, unfreeze, cache.

This module is the one implementation of layer reuse in Descent (the weight
export code and the stages runner call it).  The pieces:

* :func:`build_reused_network` makes a new network whose first ``k`` hidden
  layers have the architecture (its ``model`` section built by
  :func:`engine.spec.reuse.reused_model_config`) *and a copy* of the weights
  of a trained one, with new layers and a new output on top.
  Weights are copied, never shared: each :class:`~engine.training.network.Network` owns
  its ``theta``/``buffers`` vectors, so training the new network leaves the
  source exactly as it was (``tests/test_transfer.py`` checks it bit for bit).
* :func:`freeze` / :func:`unfreeze` switch layers between phases.  A frozen
  layer is left out of the optimizer's update ranges and its batch-norm layer
  runs in inference mode (moving statistics used, never updated), so neither
  its weights nor its BN statistics change.
* Caching: while the bottom ``k`` layers are frozen, their output for a given
  example never changes, so it can be computed once per example instead of
  once per epoch (:func:`cache_features`).  The upper layers are then trained
  as a network of their own (:func:`split_upper`) on the cached features and
  copied back (:func:`merge_upper`).  :func:`caching_problems` says when this
  would change what is learned (randomness below the cut: dropout, alpha
  dropout, RReLU's random slopes; trainable BN) and :func:`cached_phase`
  refuses those cases with a message naming the layer; with data augmentation
  on, the stages runner trains uncached with a note
  (:func:`augmentation_cache_note`).  :func:`measure_caching_speedup` trains the same
  phase both ways from the same weights and reports the times and how far
  apart the results ended (they should agree to float rounding).

Layer indices follow the weight names: ``layers.<i>``, hidden layers from 0,
the output layer last.  ``k`` counts reused *hidden* layers.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Iterable

import numpy as np

from engine.catalog.activations import ACTIVATIONS
from engine.data.augment import describe, is_active
from engine.errors import ExperimentError
from engine.events import RunFinished
from engine.kernels import layout as K
from engine.kernels import network as NK
from engine.kernels.rng import new_state
from engine.limits import MemoryEstimate
from engine.training.memory import feature_cache_memory, training_memory
from engine.training.network import Network
from engine.training.trainer import Trainer


# --------------------------------------------------------------------- building

def copy_layers(source_weights: dict, target: Network, k: int, source: str = "the source model") -> None:
    """Copy tensors ``layers.0`` .. ``layers.<k-1>`` (kernels, biases, BN
    parameters and moving statistics, PReLU slopes) into ``target``.
    ``source_weights`` is a name -> array mapping (``Network.state_dict()``
    or a weights file); values are copied into ``target``'s own vectors."""
    if k <= 0:
        return
    target.load_state_dict(source_weights, layers=range(k), source=source)


def build_reused_network(source_weights: dict, experiment: dict, n_inputs: int, task: str,
                         n_classes: int = 0, n_targets: int = 1, k: int = 0, seed: int = 0,
                         freeze: bool = True, source: str = "the source model") -> Network:
    """A new network for ``experiment`` (whose first ``k`` hidden layers match
    the source's architecture, e.g. built by
    :func:`engine.spec.reuse.reused_model_config`):
    every layer initialized from ``seed``, then layers 0..k-1 overwritten with
    copies of ``source_weights`` and frozen if ``freeze``."""
    net = Network(experiment, n_inputs, task, n_classes, n_targets)
    net.initialize(seed)
    copy_layers(source_weights, net, k, source)
    if freeze:
        freeze_layers(net, range(k))
    return net


# ------------------------------------------------------------ freezing phases

def freeze_layers(net: Network, layers: Iterable[int]) -> None:
    """Make these layers non-trainable (weights and BN statistics fixed)."""
    for i in layers:
        _check_layer(net, i)
        net.set_trainable(i, False)


def unfreeze_layers(net: Network, layers: Iterable[int]) -> None:
    for i in layers:
        _check_layer(net, i)
        net.set_trainable(i, True)


freeze = freeze_layers
unfreeze = unfreeze_layers


def _check_layer(net: Network, i: int) -> None:
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < net.n_layers:
        raise ExperimentError(f"layer index {i!r} out of range: the network has layers 0..{net.n_layers - 1}")


def frozen_prefix(net: Network) -> int:
    """Number of bottom layers that are all frozen (the cache cut)."""
    return min(net.lowest_trainable_layer(), net.n_layers - 1)


# -------------------------------------------------------------------- caching

def caching_problems(net: Network, k: int) -> list[str]:
    """Why the outputs of layers 0..k-1 cannot be cached for training, if
    any.  Caching is exact only when the frozen layers compute the same
    function of an example at every step: no randomness below the cut and
    no statistics that move, and the same inputs every epoch (data
    augmentation, which changes them, turns caching off instead:
    :func:`augmentation_cache_note`)."""
    problems = []
    if k <= 0:
        return ["no frozen layer at the bottom of the network: there is nothing to cache"]
    if k >= net.n_layers:
        return ["every layer is frozen: there is nothing to train"]
    for i in range(k):
        cfg = net.layer_configs[i]
        if net.ints[i, K.TRAINABLE]:
            problems.append(f"layer {i} is trainable: only frozen layers can be cached")
            continue
        if cfg.get("dropout", 0.0) > 0.0:
            kind = "alpha dropout" if cfg.get("alpha_dropout") else "dropout"
            problems.append(f"layer {i} has {kind} {cfg['dropout']:g}: it draws a new mask every step, "
                            f"so its outputs differ from epoch to epoch")
        if ACTIVATIONS.get(cfg["activation"]).random_in_training:
            problems.append(f"layer {i} uses RReLU: its slopes are drawn at random every step in training")
    return problems


def layer_outputs(net: Network, x: np.ndarray, k: int, batch: int = 1024) -> np.ndarray:
    """Outputs of hidden layer ``k-1`` (after its activation, BN and -- in
    inference mode -- no dropout) for every row of x: (N, units) in the
    network's dtype.  ``k = 0`` returns x itself."""
    x = net._as_input(x)
    if k <= 0:
        return x.copy()
    if k >= net.n_layers:
        raise ExperimentError(f"layer_outputs: k must be < {net.n_layers} (hidden layers only), got {k}")
    ints = np.ascontiguousarray(net.ints[:k + 1])  # layer k acts as a (linear) output: not read
    floats = np.ascontiguousarray(net.floats[:k + 1])
    units = int(net.ints[k - 1, K.UNITS])
    ws, uws, xb = net.workspace(batch)
    rng = new_state(0)
    out = np.empty((x.shape[0], units), dtype=net.dtype)
    for start in range(0, x.shape[0], batch):
        B = min(batch, x.shape[0] - start)
        xb[:B] = x[start:start + B]
        NK.forward(ints, floats, net.theta, net.buffers, xb[:B], B, batch, ws, uws, rng, NK.MODE_INFERENCE)
        out[start:start + B] = NK.block(ws, NK.WS_OUT, ints, k - 1, B, batch)
    return out


def split_upper(net: Network, k: int) -> Network:
    """A separate network made of layers k..L-1 of ``net`` (weights copied),
    whose inputs are the outputs of layer k-1."""
    exp = copy.deepcopy(net.experiment)
    exp["model"] = {"layers": [copy.deepcopy(c) for c in net.layer_configs[k:-1]],
                    "output": copy.deepcopy(net.experiment["model"]["output"])}
    n_in = int(net.ints[k, K.FAN_IN])
    task, n_classes, n_targets = _task_of(net)
    upper = Network(exp, n_in, task, n_classes, n_targets)
    weights = net.state_dict()
    renamed = {}
    for t in upper.tensors:
        i, rest = t.name.split(".", 2)[1], t.name.split(".", 2)[2]
        renamed[t.name] = weights[f"layers.{int(i) + k}.{rest}"]
    upper.load_state_dict(renamed, source="the network")
    return upper


def merge_upper(net: Network, upper: Network, k: int) -> None:
    """Copy the upper network's weights back into layers k.. of ``net``."""
    for name, value in upper.state_dict().items():
        _, i, rest = name.split(".", 2)
        net.tensor(f"layers.{int(i) + k}.{rest}")[...] = value


def _task_of(net: Network) -> tuple[str, int, int]:
    if net.loss == "mse":
        return "regression", 0, net.n_outputs
    if net.output_activation == "logistic":
        return "classification", 2, 1
    return "classification", net.n_outputs, 1


def cache_features(net: Network, dataset, k: int):
    """The data set as seen by layer k: every split's inputs replaced by the
    outputs of the frozen layers 0..k-1 (computed once), targets unchanged
    (an autoencoder still reconstructs the original images).  Returns
    (features dataset, seconds it took)."""
    t0 = time.perf_counter()
    feats = {}
    for part in ("train", "val", "test"):
        x = getattr(dataset, "x_" + part)
        f = layer_outputs(net, x, k) if len(x) else np.zeros((0, int(net.ints[k - 1, K.UNITS])), net.dtype)
        f = np.ascontiguousarray(f, dtype=np.float32) if net.dtype == np.float32 else f
        f.setflags(write=False)
        feats["x_" + part] = f
    d = int(net.ints[k - 1, K.UNITS])
    out = dataclasses.replace(dataset, image_shape=None, feature_names=tuple(f"h{k - 1}_{u}" for u in range(d)),
                              mean=np.zeros(d, np.float32), std=np.ones(d, np.float32), **feats)
    return out, time.perf_counter() - t0


def augmentation_cache_note(experiment: dict) -> str | None:
    """Why a phase of ``experiment`` trains without the frozen-layer cache although asked to,
    or None.  Cached features are computed once from the plain images; with data augmentation
    on, every epoch shows other images, so caching would silently freeze the augmentation."""
    augment = experiment["data"].get("augment")
    if not is_active(augment):
        return None
    return (f"frozen-layer cache off: {describe(augment)} changes the inputs every batch, and features "
            f"cached once would freeze them; the frozen layers are recomputed every step")


def check_cacheable(net: Network, k: int | None = None, where: str = "cache") -> int:
    """The cut k (default: every frozen bottom layer), or ExperimentError
    listing why caching would change the training."""
    k = frozen_prefix(net) if k is None else k
    problems = caching_problems(net, k)
    if problems:
        raise ExperimentError(f"{where}: cannot cache the frozen layers' outputs: " + "; ".join(problems)
                              + ". Set cache to false (the frozen layers are then recomputed every step).")
    return k


def cached_phase(net: Network, experiment: dict, dataset, k: int | None = None):
    """Prepare a frozen phase for cached training: (k, upper network, upper
    experiment, features dataset, cache seconds).  Train the upper network
    with ``Trainer(upper_experiment, dataset=features, network=upper)`` and
    call :func:`merge_upper` afterwards."""
    k = check_cacheable(net, k)
    upper = split_upper(net, k)
    exp = copy.deepcopy(experiment)
    exp["model"] = copy.deepcopy(upper.experiment["model"])
    upper.experiment = exp
    rows = sum(len(getattr(dataset, "x_" + part)) for part in ("train", "val", "test"))
    cache = feature_cache_memory(rows, int(net.ints[k - 1, K.UNITS]), net.dtype)
    MemoryEstimate(cache.parts + training_memory(upper, exp, len(dataset.x_train), len(dataset.x_val)).parts).check(
        f"the cached phase of {experiment.get('name') or 'this experiment'!r} ({rows:,} examples through {k} frozen "
        f"layer(s))")   # before the cache is computed
    features, seconds = cache_features(net, dataset, k)
    return k, upper, exp, features, seconds


# ----------------------------------------------------------------- measuring

def _train(trainer) -> tuple[float, dict]:
    t0 = time.perf_counter()
    summary = {}
    for event in trainer.run():
        if isinstance(event, RunFinished):
            summary = dict(event.summary, status=event.status)
    return time.perf_counter() - t0, summary


def measure_caching_speedup(net: Network, experiment: dict, dataset, k: int | None = None,
                            max_steps: int | None = None, warmup: bool = True) -> dict:
    """Train one frozen phase twice from the same weights -- once through the
    frozen layers, once on their cached outputs -- and report the figures.

    ``net`` is not modified.  Returns a dict: cut (k), steps, uncached_seconds
    (whole phase: training, per-epoch evaluation), cached_seconds (the same
    phase on features) and cache_seconds (computing the features once),
    speedup (uncached / (cached + cache)), speedup_per_epoch (uncached /
    cached, what each further epoch gains), max_weight_difference (largest
    absolute difference between the two final weight sets; float rounding
    only), and both runs' test accuracy."""
    k = check_cacheable(net, k)
    start = net.state_dict()
    if warmup:  # compile both code paths before timing either
        _train(Trainer(experiment, dataset=dataset, network=_clone(net, start), max_steps=2))
        _, up, up_exp, feats, _ = cached_phase(_clone(net, start), experiment, dataset, k)
        _train(Trainer(up_exp, dataset=feats, network=up, max_steps=2))
    plain = _clone(net, start)
    t_plain, s_plain = _train(Trainer(experiment, dataset=dataset, network=plain, max_steps=max_steps))
    cached = _clone(net, start)
    t0 = time.perf_counter()
    k, upper, up_exp, feats, t_cache = cached_phase(cached, experiment, dataset, k)
    t_cached, s_cached = _train(Trainer(up_exp, dataset=feats, network=upper, max_steps=max_steps))
    t_total = time.perf_counter() - t0
    merge_upper(cached, upper, k)
    diff = float(np.max(np.abs(plain.theta.astype(np.float64) - cached.theta.astype(np.float64)))) \
        if plain.theta.size else 0.0
    return {
        "cut": k, "steps": int(s_plain.get("steps", 0)),
        "uncached_seconds": t_plain, "cached_seconds": t_cached, "cache_seconds": t_cache,
        "speedup": t_plain / t_total if t_total > 0 else math.nan,
        "speedup_per_epoch": t_plain / t_cached if t_cached > 0 else math.nan,
        "max_weight_difference": diff,
        "uncached_test_accuracy": s_plain.get("test_accuracy", math.nan),
        "cached_test_accuracy": s_cached.get("test_accuracy", math.nan),
    }


def _clone(net: Network, weights: dict) -> Network:
    """An independent network with the same architecture, trainable flags and weights."""
    task, n_classes, n_targets = _task_of(net)
    exp = copy.deepcopy(net.experiment)
    exp["model"] = {"layers": [copy.deepcopy(c) for c in net.layer_configs[:-1]],
                    "output": copy.deepcopy(net.experiment["model"]["output"])}
    twin = Network(exp, net.n_inputs, task, n_classes, n_targets)
    twin.load_state_dict(weights)
    for i in range(net.n_layers):
        twin.set_trainable(i, bool(net.ints[i, K.TRAINABLE]))
    return twin


clone_network = _clone
