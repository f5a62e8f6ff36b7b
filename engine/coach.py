"""The coach: watches a run's events for the symptoms chapter 11 names.

``Coach().observe(event)`` takes every event of one or several runs (in any
interleaving; runs are told apart by ``run_id``) and returns the *new*
findings, usually none.  Layers are named as the model list names them: hidden
layers from 1 (``layer 1`` is ``layers.0.*``), then "the output layer"; a
finding's ``layers`` keeps the 0-based indices for code.  A :class:`Finding` says what the coach sees (with
the numbers), what the book suggests, and offers a "try it" modification:
``try_it`` is a dict of overrides that :func:`engine.spec.overrides.apply_overrides`
turns into the modified experiment (the window creates that variant with one
click).  Each detector reports at most once per run.

The detectors and their thresholds (all in :data:`THRESHOLDS`, the one place
to tune them):

* vanishing gradients: the lowest trainable hidden layer's kernel-gradient
  norm is below ``vanishing_ratio`` of the output layer's, on
  ``persist_records`` consecutive diagnostics records;
* exploding gradients: a NaN/infinite loss or gradient, a diverged run, or the
  global gradient norm above ``exploding_growth`` times its first recorded
  value and rising over ``persist_records`` consecutive records;
* dead ReLUs: a ReLU-family hidden layer with at least ``dead_fraction`` of
  its units dead (zero on every example of the probe batch), on
  ``persist_records`` consecutive records;
* comatose units: a leaky ReLU-family or ELU hidden layer (whose units cannot
  output exactly 0) with at least ``comatose_fraction`` of its units comatose
  (activation input <= 0 on every probe example), on ``persist_records``
  consecutive records.  Unlike a dead ReLU, whose own weights get no gradient,
  a comatose unit gets its slope's share of the gradient (alpha for leaky
  units) and can wake up;
* saturation: logistic/tanh hidden layers whose outputs are, on average, at
  least ``saturated_fraction`` saturated (within 1% of their bounds), on
  ``persist_records`` consecutive records;
* flat training loss (learning rate too low): over the last
  ``flat_blocks`` loss blocks (per-step losses averaged over a tenth of an
  epoch) the loss moved by less than ``flat_relative_change`` while still
  above ``flat_progress`` of the first block;
* learning rate too high: the loss (mean of the last ``smooth_blocks``
  blocks) climbs above ``rising_factor`` times its lowest earlier such mean,
  giving back ``rising_progress_lost`` of the progress made, or it swings: over the last ``oscillation_blocks`` blocks the typical
  block-to-block jump exceeds ``oscillation_amplitude`` of the loss level,
  changing direction often, while the loss makes no progress and is still
  high (``oscillation_level``);
* overfitting: the median validation loss of the last ``overfit_epochs``
  epochs (or a tenth of the epochs so far, ``overfit_window``) is at least
  ``overfit_rise`` (relative) above the lowest such median of the epochs
  before them, and above it by more than ``overfit_noise`` typical
  epoch-to-epoch changes, with the training loss below what it was at the
  end of that best stretch, for ``overfit_epochs`` epochs in a row.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.events import EpochEnd, RunFinished, RunStarted, StepMetrics
from engine.spec.overrides import layers_override


@dataclass(frozen=True)
class Threshold:
    value: float
    doc: str


THRESHOLDS: dict[str, Threshold] = {
    "vanishing_ratio": Threshold(1e-3, "lowest trainable hidden layer's gradient norm / output layer's: "
                                       "below this, the lower layers are not learning"),
    "persist_records": Threshold(3, "consecutive diagnostics records a per-step symptom must last "
                                    "(one noisy step is not a symptom)"),
    "exploding_growth": Threshold(100.0, "global gradient norm / its first recorded value: above this "
                                         "(and still rising) the gradients explode"),
    "dead_fraction": Threshold(0.3, "fraction of a ReLU-family layer's units that are dead"),
    "comatose_fraction": Threshold(0.3, "fraction of a leaky ReLU-family or ELU layer's units that are comatose "
                                        "(activation input <= 0 for every probe example)"),
    "saturated_fraction": Threshold(0.4, "mean fraction of logistic/tanh outputs within 1% of their bounds"),
    "block_fraction": Threshold(0.1, "the loss detectors average the per-step training loss over blocks of "
                                     "this fraction of an epoch (at least min_block_steps steps)"),
    "min_block_steps": Threshold(8, "smallest loss block, in steps"),
    "min_block_examples": Threshold(1024, "the learning-rate-too-high detector (climbing, oscillating) works "
                                          "on coarse blocks, consecutive blocks averaged until they hold this "
                                          "many training examples: a block of a few small batches swings with "
                                          "the minibatch noise alone"),
    "flat_blocks": Threshold(20, "loss blocks in the flat-loss window (two epochs, unless epochs are short)"),
    "flat_relative_change": Threshold(0.02, "relative change of the loss across the flat-loss window "
                                            "(mean of its first third vs its last third)"),
    "flat_progress": Threshold(0.9, "... while the loss is still above this fraction of its first block"),
    "smooth_blocks": Threshold(3, "loss blocks averaged when comparing loss levels"),
    "rising_factor": Threshold(1.5, "smoothed loss / its lowest earlier smoothed value: above this (on "
                                    "persist_records consecutive blocks) the loss is climbing..."),
    "rising_progress_lost": Threshold(0.25, "... if the climb also gave back at least this fraction of the "
                                            "progress made since the first block (noise near a low loss is "
                                            "not a climb)"),
    "oscillation_blocks": Threshold(10, "loss blocks in the oscillation window"),
    "oscillation_amplitude": Threshold(0.3, "median |block-to-block change| / mean loss: above this, with no "
                                             "progress, direction changes on at least half the blocks and the "
                                             "loss above oscillation_level, the loss oscillates"),
    "oscillation_level": Threshold(0.5, "... the loss still above this fraction of its first block (a noisy "
                                        "but converged loss is not an oscillation)"),
    "overfit_epochs": Threshold(3, "epochs in a window: the median validation loss of the last ones against "
                                   "the lowest median of as many earlier epochs; also the epochs in a row the "
                                   "rise must last"),
    "overfit_window": Threshold(0.1, "... or this fraction of the epochs so far, if more"),
    "overfit_rise": Threshold(0.05, "'clearly above': the recent median exceeds the lowest one by at least this "
                                    "relative amount..."),
    "overfit_noise": Threshold(1.0, "... and by more than this many typical epoch-to-epoch changes of the "
                                    "validation loss (median |change|): a small validation set's loss jumps "
                                    "around a converged model, which is noise, not a rise"),
}


def threshold(name: str) -> float:
    return THRESHOLDS[name].value


@dataclass(frozen=True)
class Finding:
    detector: str          # one of DETECTORS
    run_id: int
    step: int
    title: str
    seen: str              # what the coach sees, with the numbers
    advice: str            # what the book suggests
    try_it: dict           # overrides for engine.spec.overrides.apply_overrides
    try_it_label: str      # one line for the button
    layers: tuple = ()     # indices of the layers concerned
    severity: str = "warning"   # "warning" | "problem"


DETECTORS = ("vanishing_gradients", "exploding_gradients", "dead_relus", "comatose_units", "saturation",
             "flat_loss", "learning_rate_too_high", "overfitting")

SATURATING = ("logistic", "tanh")


@dataclass
class _RunState:
    experiment: dict
    layers: tuple
    fired: set = field(default_factory=set)
    streaks: dict = field(default_factory=dict)
    block_steps: int = 8
    coarse_group: int = 1      # blocks per coarse block (the learning-rate-too-high detector's)
    coarse: list = field(default_factory=list)    # means of coarse_group consecutive blocks
    pending: list = field(default_factory=list)   # per-step losses not yet in a block
    blocks: list = field(default_factory=list)    # block means of the per-step training loss
    first_norm: float = math.nan
    norms: deque = field(default_factory=lambda: deque(maxlen=8))
    lowest_smoothed: float = math.inf
    epochs: list = field(default_factory=list)
    last_step: int = 0


# ------------------------------------------------------------------------------ try-it builders


def _first_max(values: list) -> int:
    """Index of the first largest value (as np.argmax; no NaN here), -1 for an empty list."""
    return max(range(len(values)), key=values.__getitem__) if values else -1


def _numbered(indices) -> str:
    """0-based layer indices as the model list counts them: "2, 3, 5"."""
    return ", ".join(str(i + 1) for i in indices)


def _lr(experiment: dict) -> float:
    return float(experiment["optimizer"]["learning_rate"])


def _lr_change(experiment: dict, factor: float) -> dict:
    return {"optimizer": {"learning_rate": float(f"{_lr(experiment) * factor:.3g}")}}


# ------------------------------------------------------------------------------ the coach


class Coach:
    """Feed it every event; it returns the new findings (see the module docstring)."""

    def __init__(self):
        self.runs: dict[int, _RunState] = {}
        self.findings: list[Finding] = []

    def forget(self, run_id: int) -> None:
        """Watch ``run_id`` afresh from its next RunStarted (the next variant of a job reuses it)."""
        self.runs.pop(run_id, None)

    def observe(self, event: Any) -> list[Finding]:
        if isinstance(event, RunStarted):
            if event.run_id not in self.runs or event.stage:
                # a new run, or the next phase of a staged one: start watching afresh
                batch = max(1, int(event.experiment.get("training", {}).get("batch_size") or 1))
                block = max(int(threshold("min_block_steps")),
                            int(round(threshold("block_fraction") * event.steps_per_epoch)))
                group = max(1, math.ceil(threshold("min_block_examples") / (batch * block)))
                self.runs[event.run_id] = _RunState(event.experiment, tuple(event.layers), block_steps=block,
                                                    coarse_group=group)
            return []
        state = self.runs.get(getattr(event, "run_id", None))
        if state is None:
            return []
        found: list[Finding] = []
        if isinstance(event, StepMetrics):
            found = self._step(state, event)
        elif isinstance(event, EpochEnd):
            found = self._epoch(state, event)
        elif isinstance(event, RunFinished):
            found = self._finished(state, event)
        new = []
        for f in found:
            if f is not None and f.detector not in state.fired:
                state.fired.add(f.detector)
                new.append(f)
        found = new
        self.findings.extend(found)
        return found

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _streak(state: _RunState, key: str, condition: bool) -> bool:
        state.streaks[key] = state.streaks.get(key, 0) + 1 if condition else 0
        return state.streaks[key] >= threshold("persist_records")

    # -- per logged step --------------------------------------------------------------------

    def _step(self, state: _RunState, e: StepMetrics) -> list:
        state.last_step = e.step
        out = []
        grads = np.asarray(e.grad_norm, dtype=np.float64)
        if not math.isfinite(e.loss) or any(map(math.isinf, e.grad_norm)):   # NaN gradients alone: layer not computed
            out.append(self._exploding(state, e.run_id, e.step, "the training loss or a gradient became NaN or "
                                                                f"infinite at step {e.step}"))
            return out
        dead = self._dead(state, e)
        out.append(dead)
        out.append(self._comatose(state, e))
        out.append(None if dead is not None else self._vanishing(state, e, grads))
        out.append(self._exploding_growth(state, e, grads))
        out.append(self._saturation(state, e))
        state.pending.extend(float(x) for x in e.losses)
        while len(state.pending) >= state.block_steps:
            state.blocks.append(float(np.mean(state.pending[:state.block_steps])))
            del state.pending[:state.block_steps]
            out.append(self._flat(state, e))
            if len(state.blocks) % state.coarse_group == 0:
                state.coarse.append(float(np.mean(state.blocks[-state.coarse_group:])))
                out.append(self._too_high(state, e))
        return out

    def _vanishing(self, state, e, grads):
        trainable = [li.index for li in state.layers[:-1] if li.trainable]
        if not trainable or "vanishing_gradients" in state.fired or "dead_relus" in state.fired:
            return None   # (dead units also stop the gradient: that finding explains it)
        low, top = grads[trainable[0]], grads[-1]
        ratio = low / top if top > 0 else math.nan
        if not self._streak(state, "vanishing", math.isfinite(ratio) and ratio < threshold("vanishing_ratio")):
            return None
        exp = state.experiment
        layers = exp["model"]["layers"]
        saturating = any(layer["activation"] in SATURATING for layer in layers)
        if saturating:
            try_it = layers_override(exp, {"activation": "elu", "initializer": "he_normal"},
                                     pick=lambda l: l["activation"] in SATURATING)
            label = "Use ELU with He initialization in the logistic/tanh layers"
        elif all(layer["batch_norm"] == "none" for layer in layers):
            try_it = {"model": {"layers": {"batch_norm": "before"}}}
            label = "Add batch normalization before each activation"
        else:
            try_it = {"model": {"layers": {"initializer": None}}}
            label = "Use Table 11-1's initializer for each activation"
        return Finding(
            "vanishing_gradients", e.run_id, e.step, "Vanishing gradients",
            f"the gradient reaching layer {trainable[0] + 1} is {ratio:.1e} of the output layer's "
            f"({low:.2e} vs {top:.2e}) for {state.streaks['vanishing']} records: the lower layers barely move",
            "The book's cures, in order: an initialization that keeps the variance of each layer's outputs "
            "equal to its inputs' (Glorot for logistic/tanh, He for ReLU and its variants), a non-saturating "
            "activation such as ELU or leaky ReLU, and batch normalization.",
            try_it, label, (trainable[0],), "problem")

    def _exploding_growth(self, state, e, grads):
        g = float(np.sqrt(np.nansum(grads ** 2)))
        if math.isnan(state.first_norm) and g > 0:
            state.first_norm = g
        rising = bool(state.norms) and g > state.norms[-1]
        state.norms.append(g)
        big = state.first_norm > 0 and g > threshold("exploding_growth") * state.first_norm
        if not self._streak(state, "exploding", big and rising):
            return None
        return self._exploding(state, e.run_id, e.step, f"the gradient norm grew to {g:.3g}, "
                                              f"{g / state.first_norm:.0f}x its first value, and is still rising")

    def _exploding(self, state, run_id, step, seen):
        exp = state.experiment
        opt = exp["optimizer"]
        if not any(opt.get(k) for k in ("clipvalue", "clipnorm", "global_clipnorm")):
            try_it, label = {"optimizer": {"global_clipnorm": 1.0}}, "Clip the gradient's global norm to 1"
        else:
            try_it, label = _lr_change(exp, 0.1), f"Divide the learning rate by 10 ({_lr(exp):.3g} -> " \
                                                  f"{_lr(exp) * 0.1:.3g})"
        return Finding("exploding_gradients", run_id, step, "Exploding gradients", seen,
                       "Gradients that grow from layer to layer or step to step make the weights jump; the book "
                       "suggests a lower learning rate, batch normalization, and gradient clipping (by norm keeps "
                       "the gradient's direction; by value may change it).",
                       try_it, label, (), "problem")

    def _dead(self, state, e):
        # plain Python on a handful of floats: this runs on every record, thousands a second for a
        # small net at full speed, where NumPy's per-call cost made the coach a quarter of the
        # training thread's time; the same values as np.nanargmax / nan_to_num would give
        dead = [float(d) for d in e.dead_fraction[:-1]]
        worst = _first_max([-1.0 if math.isnan(d) else d for d in dead])
        value = dead[worst] if worst >= 0 and not math.isnan(dead[worst]) else 0.0
        if not self._streak(state, "dead", value >= threshold("dead_fraction")):
            return None
        layers = tuple(i for i, d in enumerate(dead) if not math.isnan(d) and d >= threshold("dead_fraction"))
        exp = state.experiment
        try_it = layers_override(exp, {"activation": "leaky_relu", "activation_params": {"alpha": 0.2}},
                                 pick=lambda l: l["activation"] == "relu")
        label = "Replace ReLU by leaky ReLU (alpha 0.2)"
        if not any(layer["activation"] == "relu" for layer in exp["model"]["layers"]):
            try_it, label = _lr_change(exp, 0.1), "Divide the learning rate by 10"
        return Finding(
            "dead_relus", e.run_id, e.step, "Dying ReLUs",
            f"{value:.0%} of layer {worst + 1}'s units output 0 for every probe example "
            f"(layers with >= {threshold('dead_fraction'):.0%} dead: {_numbered(layers)})",
            "A ReLU whose weighted input is negative for every example outputs 0 and its own weights get a zero "
            "gradient: nothing it does can bring it back (only a change in the layers below can), which happens "
            "most with a large learning rate. The book suggests a leaky variant (leaky ReLU with alpha "
            "0.01-0.2, RReLU, PReLU) or ELU, whose slope for negative inputs is not zero, or a lower learning "
            "rate.", try_it, label, layers)

    def _comatose(self, state, e):
        coma = [float(c) for c in e.comatose_fraction[:-1]]
        dead = [0.0 if math.isnan(d) else float(d) for d in e.dead_fraction[:-1]]
        # a dead unit is comatose too: these are the layers whose comatose units still have a slope
        leaky = [-1.0 if math.isnan(c) or d >= threshold("dead_fraction") else c for c, d in zip(coma, dead)]
        worst = _first_max(leaky)
        value = leaky[worst] if worst >= 0 else 0.0
        if not self._streak(state, "comatose", value >= threshold("comatose_fraction")):
            return None
        layers = tuple(i for i, c in enumerate(leaky) if c >= threshold("comatose_fraction"))
        exp = state.experiment
        return Finding(
            "comatose_units", e.run_id, e.step, "Comatose units",
            f"{value:.0%} of layer {worst + 1}'s units have a weighted input <= 0 for every probe example "
            f"(layers with >= {threshold('comatose_fraction'):.0%} comatose: {_numbered(layers)}); they are "
            f"not dead: their negative side still has a slope",
            "These units sit on the flat side of their activation. A ReLU there would be dead (zero "
            "gradient); a leaky ReLU, RReLU, PReLU or ELU unit still gets a small gradient (scaled by its "
            "slope alpha, or ELU's shrinking one), so it can wake up, slowly. Many comatose units mean the "
            "layer uses a fraction of its capacity: a lower learning rate, or batch normalization before the "
            "activation, keeps more of them awake.", _lr_change(exp, 0.1),
            f"Divide the learning rate by 10 ({_lr(exp):.3g} -> {_lr(exp) * 0.1:.3g})", layers)

    def _saturation(self, state, e):
        sat = np.asarray(e.saturated, dtype=np.float64)[:-1]
        if not np.isfinite(sat).any():
            return None
        mean = float(np.nanmean(sat))
        if not self._streak(state, "saturation", mean >= threshold("saturated_fraction")):
            return None
        exp = state.experiment
        layers = exp["model"]["layers"]
        inits = {layer["initializer"] for layer in layers if layer["activation"] in SATURATING}
        if not inits <= {"glorot_uniform", "glorot_normal"}:
            try_it = layers_override(exp, {"initializer": "glorot_uniform"},
                                     pick=lambda l: l["activation"] in SATURATING)
            label = "Use Glorot initialization for the logistic/tanh layers (Table 11-1)"
        else:
            try_it = layers_override(exp, {"activation": "elu", "initializer": "he_normal"},
                                     pick=lambda l: l["activation"] in SATURATING)
            label = "Use ELU with He initialization"
        idx = tuple(int(i) for i in np.flatnonzero(np.nan_to_num(sat) >= threshold("saturated_fraction")))
        return Finding(
            "saturation", e.run_id, e.step, "Saturated units",
            f"{mean:.0%} of the logistic/tanh outputs sit within 1% of their bounds, where the slope is "
            f"almost zero" + (f" (layers {_numbered(idx)})" if idx else ""),
            "Saturated units pass almost no gradient back, so learning stalls. Glorot and Bengio traced it to "
            "weights drawn with too large a variance (N(0, 1)) feeding a squashing function; the book suggests "
            "Glorot initialization, non-saturating activations (ELU, leaky ReLU) or batch normalization.",
            try_it, label, idx, "problem")

    def _flat(self, state, e):
        n = int(threshold("flat_blocks"))
        if len(state.blocks) < n or "flat_loss" in state.fired:
            return None
        window = state.blocks[-n:]
        first = state.blocks[0]
        third = max(1, n // 3)
        early, late = float(np.mean(window[:third])), float(np.mean(window[-third:]))
        if not (early > 0 and first > 0):
            return None
        change = abs(early - late) / early
        if change >= threshold("flat_relative_change") or late <= threshold("flat_progress") * first:
            return None
        swing = float(np.median(np.abs(np.diff(window))))
        coarse = state.coarse[-max(3, n // state.coarse_group):]     # bouncing on the coarse scale counts too
        if len(coarse) >= 3:
            swing = max(swing, float(np.median(np.abs(np.diff(coarse)))))
        if "learning_rate_too_high" in state.fired or swing > threshold("oscillation_amplitude") * early:
            return None   # no progress, but bouncing: that is the opposite diagnosis
        exp = state.experiment
        return Finding(
            "flat_loss", e.run_id, e.step, "Training loss is flat",
            f"over the last {n * state.block_steps} steps the training loss changed by {change:.2%} and is "
            f"still {late / first:.0%} of where it started ({late:.4g} vs {first:.4g})",
            "Either the learning rate is too low (training will converge, very slowly) or the gradients do not "
            "reach the weights (saturated or dead units, vanishing gradients: see the other findings). The "
            "book suggests trying a few learning rates for a few epochs and comparing the curves, or the "
            "learning-rate finder.", _lr_change(exp, 10.0),
            f"Multiply the learning rate by 10 ({_lr(exp):.3g} -> {_lr(exp) * 10:.3g})")

    def _too_high(self, state, e):
        # judged on coarse blocks: enough examples to average out the minibatch noise
        k = int(threshold("smooth_blocks"))
        blocks, block_steps = state.coarse, state.block_steps * state.coarse_group
        if len(blocks) < k or "learning_rate_too_high" in state.fired:
            return None
        smoothed = float(np.mean(blocks[-k:]))
        exp = state.experiment
        label = f"Divide the learning rate by 10 ({_lr(exp):.3g} -> {_lr(exp) * 0.1:.3g})"
        advice = ("With too large a learning rate each step overshoots the valley floor: the loss bounces "
                  "around or climbs. The book suggests a lower rate, or starting high and lowering it with a "
                  "learning schedule (exponential, performance, 1cycle).")
        lowest = state.lowest_smoothed
        first = float(np.mean(blocks[:k]))
        gave_back = smoothed - lowest >= threshold("rising_progress_lost") * max(0.0, first - lowest)
        climbing = self._streak(state, "climbing", smoothed > threshold("rising_factor") * lowest and gave_back)
        state.lowest_smoothed = min(lowest, smoothed)
        if climbing:
            return Finding("learning_rate_too_high", e.run_id, e.step, "Loss is climbing",
                           f"the training loss rose to {smoothed:.4g} (mean of the last {k * block_steps} "
                           f"steps), {smoothed / lowest:.1f}x its lowest level {lowest:.4g}",
                           advice, _lr_change(exp, 0.1), label, (), "problem")
        n = int(threshold("oscillation_blocks"))
        if len(blocks) < n:
            return None
        window = np.asarray(blocks[-n:])
        level = float(window.mean())
        if not level > 0:
            return None
        swing = float(np.median(np.abs(np.diff(window))))
        half = n // 2
        no_progress = window[half:].mean() >= 0.98 * window[:half].mean()
        signs = np.sign(np.diff(window))
        alternations = int(np.sum(signs[1:] * signs[:-1] < 0))
        if swing > threshold("oscillation_amplitude") * level and no_progress and alternations >= half \
                and level > threshold("oscillation_level") * blocks[0]:
            return Finding("learning_rate_too_high", e.run_id, e.step, "Loss oscillates",
                           f"the training loss swings by about {swing / level:.0%} of its level from one block "
                           f"of {block_steps} steps to the next without going down ({level:.4g} vs "
                           f"{blocks[0]:.4g} at the start)", advice, _lr_change(exp, 0.1), label)
        return None

    # -- per epoch / end --------------------------------------------------------------------

    def _epoch(self, state: _RunState, e: EpochEnd) -> list:
        state.epochs.append(e)
        if not math.isfinite(e.val_loss):
            return []
        vals = [x for x in state.epochs if math.isfinite(x.val_loss)]
        # the window grows with the run (a tenth of the epochs so far): the lowest of many short
        # windows is a lucky one
        k = max(int(threshold("overfit_epochs")), math.ceil(threshold("overfit_window") * len(vals)))
        if len(vals) < 2 * k:
            return []
        # k-epoch medians: the lowest single epoch of a noisy validation loss is a lucky one, and
        # one bad epoch (a spike) is not a trend
        losses = np.array([x.val_loss for x in vals])
        medians = np.median(np.lib.stride_tricks.sliding_window_view(losses, k), axis=1)   # epochs i .. i+k-1
        recent = float(medians[-1])
        earlier = medians[:-k]                                        # windows that end before the recent one
        i_best = int(np.argmin(earlier))
        best_level = float(earlier[i_best])
        best = vals[i_best + k - 1]                                   # the last epoch of the best window
        noise = float(np.median(np.abs(np.diff(losses))))
        limit = best_level + max(threshold("overfit_rise") * abs(best_level), threshold("overfit_noise") * noise)
        rising = recent > limit and e.train_loss < best.train_loss
        state.streaks["overfit"] = state.streaks.get("overfit", 0) + 1 if rising else 0
        if state.streaks["overfit"] < int(threshold("overfit_epochs")):   # a lasting rise, not a bump
            return []
        rise = (recent - best_level) / abs(best_level) if best_level else math.inf
        first = vals[i_best].epoch
        exp = state.experiment
        layers = exp["model"]["layers"]
        if layers and all(layer["dropout"] == 0 for layer in layers):
            try_it, label = {"model": {"layers": {"dropout": 0.2}}}, "Add dropout (rate 0.2) to every hidden layer"
        elif exp["training"]["early_stopping"] is None:
            try_it = {"training": {"early_stopping": {"monitor": "val_loss", "patience": 5,
                                                      "restore_best": True}}}
            label = "Stop early (patience 5) and keep the best weights"
        else:
            try_it, label = {"model": {"layers": {"l2": 1e-4}}}, "Add an l2 penalty (1e-4) to every hidden layer"
        return [Finding(
            "overfitting", e.run_id, e.step, "Overfitting",
            f"the validation loss had a median of {recent:.4g} over the last {k} epochs, "
            f"{f'{rise:.0%} ' if math.isfinite(rise) else ''}above its lowest "
            f"{k}-epoch median ({best_level:.4g}, epochs {first}-{best.epoch}) and more than its epoch-to-epoch "
            f"noise ({noise:.2g}), while the training loss kept falling ({best.train_loss:.4g} -> "
            f"{e.train_loss:.4g})",
            "The network is memorizing the training set. The book's remedies: early stopping, l1/l2 penalties, "
            "dropout, max-norm, data augmentation, or a smaller network.", try_it, label)]

    def _finished(self, state: _RunState, e: RunFinished) -> list:
        if e.status == "diverged":
            return [self._exploding(state, e.run_id, e.step, f"the run diverged: {e.reason}")]
        return []


def describe_thresholds() -> str:
    """Markdown table of the thresholds (presets/README.md)."""
    lines = ["| threshold | value | meaning |", "|---|---|---|"]
    for name, t in THRESHOLDS.items():
        lines.append(f"| `{name}` | {t.value:g} | {t.doc} |")
    return "\n".join(lines)
