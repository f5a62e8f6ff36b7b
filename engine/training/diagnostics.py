"""What a training run shows besides its loss: the records the loop yields.

Reading the network never changes it, so these are kept apart from the
training loop (:mod:`engine.training.trainer`), which decides *when* they
are made (:mod:`engine.training.cadence`).  The rows they read are drawn
once per run from the seed: a fixed probe batch for activation statistics,
at most :data:`TRAIN_EVAL_ROWS` training rows for the training accuracy, and
a grid over the plane for decision surfaces of 2-D classification data.
"""
from __future__ import annotations

import math

import numpy as np

from engine.data import Dataset, make_grid
from engine.events import ConfusionReport, DecisionSurface, StepMetrics, frozen_array
from engine.kernels.train import STAT_GRAD_BIAS, STAT_GRAD_KERNEL, STAT_UPDATE, STAT_WEIGHT
from engine.training.network import Network

TRAIN_EVAL_ROWS = 10_000  # training accuracy is measured on at most this many rows
EPOCH_SPLITS = ("train", "val")   # evaluated after every epoch


class Diagnostics:
    """Diagnostics records, evaluations, decision surfaces and confusion
    matrices of one run's network on its data (``x``: the training inputs
    as the network reads them)."""

    def __init__(self, net: Network, data: Dataset, x: np.ndarray, seed: int, probe_size: int, run_id: int = 0):
        self.net = net
        self.data = data
        self.run_id = run_id
        n = x.shape[0]
        probe_rows = np.random.default_rng([seed, 2]).permutation(n)[:probe_size]
        self.x_probe = np.ascontiguousarray(x[np.sort(probe_rows)])
        eval_rows = np.sort(np.random.default_rng([seed, 3]).permutation(n)[:TRAIN_EVAL_ROWS])
        self._train_eval = (x[eval_rows], data.y_train[eval_rows])
        self._eval_sets: dict[str, tuple] = {}   # split -> Network.evaluation_set (empty: no rows)
        self.grid = make_grid(data) if data.x_train.shape[1] == 2 and data.task == "classification" else None
        infos = net.layer_infos()   # activations and sizes; trainable flags may change before a run
        self._relu = np.array([li.relu_family for li in infos])
        self._saturating = np.array([li.saturating for li in infos])
        self._units = np.array([li.units for li in infos], dtype=float)

    def step_metrics(self, layer_stats: np.ndarray, losses: np.ndarray, regs: np.ndarray, lr: float, mom: float,
                     step: int, epoch: float, rate: float, elapsed: float) -> StepMetrics:
        """The record after ``step``: the losses of the steps since the last
        one, the kernel's ``layer_stats`` of the last step, and activation
        statistics of the probe batch now."""
        stats = self.net.probe(self.x_probe)
        dead = np.where(self._relu, stats["dead"], np.nan)
        comatose = np.where(self._relu, stats["comatose"], np.nan)
        sat = np.where(self._saturating, stats["saturated"], np.nan)
        ls = layer_stats
        with np.errstate(invalid="ignore", over="ignore"):  # inf/inf on the way to divergence: NaN, no warning
            ratio = np.divide(ls[:, STAT_UPDATE], ls[:, STAT_WEIGHT],
                              out=np.full(len(self._units), np.nan), where=ls[:, STAT_WEIGHT] > 0)
        return StepMetrics(
            run_id=self.run_id, step=step, epoch=epoch, loss=float(np.mean(losses)),
            losses=frozen_array(losses), regularization=float(regs[-1]), learning_rate=float(lr),
            momentum=float(mom) if mom >= 0 else math.nan,
            grad_norm=frozen_array(ls[:, STAT_GRAD_KERNEL]), bias_grad_norm=frozen_array(ls[:, STAT_GRAD_BIAS]),
            update_ratio=frozen_array(ratio), dead_fraction=frozen_array(dead / self._units),
            dead_count=frozen_array(dead), comatose_fraction=frozen_array(comatose / self._units),
            comatose_count=frozen_array(comatose), act_mean=frozen_array(stats["mean"]), act_std=frozen_array(stats["std"]),
            saturated=frozen_array(sat), histograms=frozen_array(stats["histograms"]), steps_per_second=float(rate),
            elapsed=elapsed)

    def evaluate(self, split: str) -> tuple[float, float]:
        """(loss, accuracy) on "train" (the evaluation rows), "val" or "test"; NaN for an empty split.
        The training rows and the validation split, evaluated after every epoch, are converted for
        the kernel once (:meth:`Network.evaluation_set`); the test split, evaluated once, is not kept."""
        prepared = self._eval_sets.get(split)
        if prepared is None:
            d = self.data
            x, y = {"train": self._train_eval, "val": (d.x_val, d.y_val), "test": (d.x_test, d.y_test)}[split]
            prepared = self.net.evaluation_set(x, y) if len(x) else ()
            if split in EPOCH_SPLITS:
                self._eval_sets[split] = prepared
        if not prepared:
            return math.nan, math.nan
        return self.net.evaluate_prepared(prepared)

    def decision_surface(self, step: int, mc_samples: int = 0) -> DecisionSurface | None:
        """Class probabilities over the grid (None unless the data are 2-D
        classes); with ``mc_samples``, also the Monte Carlo dropout spread."""
        if self.grid is None:
            return None
        xs, ys, grid = self.grid
        probs = self.net.predict(grid).reshape(len(ys), len(xs), -1)
        unc = None
        if mc_samples > 0:
            samples = self.net.mc_predict(grid, mc_samples, seed=step)
            unc = frozen_array(samples.std(axis=0).max(axis=-1).reshape(len(ys), len(xs)))
        return DecisionSurface(self.run_id, step, frozen_array(xs), frozen_array(ys), frozen_array(probs), unc)

    def confusion(self, epoch: int) -> ConfusionReport | None:
        """Confusion matrix and the first misclassified images of the
        validation set (None unless the data are images with a validation split)."""
        d = self.data
        if d.image_shape is None or d.task != "classification" or len(d.x_val) == 0:
            return None
        probs = self.net.predict(d.x_val)
        pred = (probs[:, 0] > 0.5).astype(int) if probs.shape[1] == 1 else probs.argmax(axis=1)
        truth = np.asarray(d.y_val, dtype=int)
        C = d.n_classes
        matrix = np.zeros((C, C), dtype=np.int64)
        np.add.at(matrix, (truth, pred), 1)
        wrong = np.flatnonzero(pred != truth)[:16]
        images = d.to_original(d.x_val[wrong]).reshape((-1, *d.image_shape))
        return ConfusionReport(self.run_id, epoch, frozen_array(matrix, np.int64), frozen_array(images),
                               frozen_array(truth[wrong], np.int64), frozen_array(pred[wrong], np.int64))
