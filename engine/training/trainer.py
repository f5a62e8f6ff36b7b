"""The training loop: a generator of events between chunks of compiled steps.

``Trainer(experiment).run(control)`` yields the records of :mod:`engine.events`.
The Python loop owns the schedule, logging, early stopping and the control
commands (pause, step, stop, learning rate); :func:`kernels.train.train_steps`
owns the math and runs many steps per call.  Consumers (the CLI, the window's
worker thread, the run writer) only read events.
"""
from __future__ import annotations

import math
import time
from typing import Iterator

import numpy as np

from engine.control import RunControl
from engine.data import Dataset, load_dataset, make_grid
from engine.errors import WeightsError
from engine.events import (Compiling, ConfusionReport, DecisionSurface, EpochEnd, RunFinished, RunStarted,
                     StepMetrics, frozen_array)
from engine.kernels import train as TK
from engine.kernels.rng import new_state
from engine.training.memory import check_training_memory
from engine.training.network import HISTOGRAM_EDGES, Network, readonly
from engine.catalog.optimizers import make_optimizer
from engine.catalog.schedules import make_schedule

CHUNK_SECONDS = 0.1       # hand control back to Python at least this often (commands end a chunk at once)
SURFACE_SECONDS = 0.25    # decision-boundary refresh interval for 2-D data
TRAIN_EVAL_ROWS = 10_000  # training accuracy is measured on at most this many rows
_compiled = False         # kernels compiled (or loaded from cache) in this process


RECORD_MACS = 1_000_000    # fixed cost of a diagnostics record (~0.2 ms of Python), in multiply-adds
STEP_MACS = 20_000         # fixed cost of a compiled step (a few us), in multiply-adds
RECORD_SHARE = 0.05        # diagnostics may cost about this fraction of the training time


def default_log_every(steps_per_epoch: int, batch_size: int | None = None, n_weights: int | None = None,
                      probe_rows: int = 256) -> int:
    """About 20 diagnostics records per epoch, but (when the network's size is
    given) no closer together than keeps their cost near 5% of training.

    A record runs a forward pass over the probe rows plus ~0.2 ms of Python,
    while a step of a small network takes a few microseconds: 2-8-8-1 on
    1,000 points at batch 10 would otherwise log every 5 steps and spend ten
    times longer logging than training.  The costs are estimated from
    multiply-adds (n_weights = sum of fan_in * units), not timed, so the
    interval, and the history a run writes, is the same on every machine."""
    per_epoch = max(1, math.ceil(steps_per_epoch / 20))
    if batch_size is None or n_weights is None:
        return per_epoch
    step = 3 * batch_size * n_weights + STEP_MACS
    record = probe_rows * n_weights + RECORD_MACS
    return max(per_epoch, math.ceil(record / (RECORD_SHARE * step)))


class Trainer:
    """One training run of one experiment.

    The network, optimizer state and schedule live here, so multi-stage
    workflows can keep training the same network with new settings.
    """

    def __init__(self, experiment: dict, dataset: Dataset | None = None, run_id: int = 0,
                 init_weights: dict | None = None, network: Network | None = None,
                 max_steps: int | None = None):
        self.experiment = experiment
        self.run_id = run_id
        self.seed = int(experiment["seed"])
        self.data = dataset if dataset is not None else load_dataset(experiment["data"], self.seed)
        cfg = experiment["training"]
        d = self.data
        n_targets = d.y_train.shape[1] if d.y_train.ndim == 2 else 1
        self.net = network if network is not None else Network(experiment, d.x_train.shape[1], d.task,
                                                               d.n_classes, n_targets)
        check_training_memory(self.net, experiment, len(d.x_train), len(d.x_val))   # before allocating any of it
        if network is None:
            self.net.initialize(self.seed)
        if init_weights is not None:
            self.net.load_state_dict(init_weights)
        self.dtype = self.net.dtype
        self.x = readonly(np.ascontiguousarray(d.x_train, dtype=self.dtype))
        self.y_int, self.y_float = self.net.split_targets(d.y_train)
        self.n_train = self.x.shape[0]
        self.batch_size = min(cfg["batch_size"], self.n_train)
        self.steps_per_epoch = math.ceil(self.n_train / self.batch_size)
        self.epochs = cfg["epochs"]
        limit = max_steps if max_steps is not None else cfg["max_steps"]
        self.total_steps = self.epochs * self.steps_per_epoch
        if limit is not None:
            self.total_steps = min(self.total_steps, limit)
        kernel_weights = sum(int(np.prod(t.shape)) for t in self.net.tensors if t.name.endswith(".kernel"))
        self.log_every = cfg["log_every"] or default_log_every(self.steps_per_epoch, self.batch_size,
                                                               kernel_weights, min(cfg["probe_size"], self.n_train))
        opt_cfg = experiment["optimizer"]
        self.optimizer = make_optimizer(opt_cfg)
        self.opt_state = self.optimizer.build(self.net.n_params, self.dtype)
        self.base_lr = float(opt_cfg["learning_rate"])
        self.clip = np.array([opt_cfg.get("clipvalue") or 0.0, opt_cfg.get("clipnorm") or 0.0,
                              opt_cfg.get("global_clipnorm") or 0.0], dtype=np.float64)
        self.schedule = make_schedule(experiment["schedule"])
        self.schedule.start(self.base_lr, self.total_steps, self.steps_per_epoch)
        self.step = 0            # updates done
        self.epoch = 0           # epochs completed
        self.rng = new_state(self.seed * 7919 + 17)            # dropout masks, RReLU slopes
        self.shuffle_rng = np.random.default_rng([self.seed, 1])  # batch order
        probe_rows = np.random.default_rng([self.seed, 2]).permutation(self.n_train)[:cfg["probe_size"]]
        self.x_probe = np.ascontiguousarray(self.x[np.sort(probe_rows)])
        eval_rows = np.random.default_rng([self.seed, 3]).permutation(self.n_train)[:TRAIN_EVAL_ROWS]
        self.x_train_eval = self.x[np.sort(eval_rows)]
        self.y_train_eval = d.y_train[np.sort(eval_rows)]
        self.grad = np.zeros_like(self.net.theta)
        self.before = np.zeros_like(self.net.theta)
        self.layer_stats = np.zeros((self.net.n_layers, TK.N_STATS))
        self._flags = np.zeros(2, dtype=np.int64)   # the kernel's flags when no RunControl is given
        self.chunk_diverged = False
        self.history_best = None
        self.elapsed = 0.0
        # resumable run state (see checkpoint/restore)
        self._es = {"best_value": math.inf, "best_epoch": 0, "wait": 0, "best_val_acc": -math.inf}
        self._best_weights = None
        self._resume_batch = 0             # first batch of the next epoch (resuming mid-epoch)
        self._resume_losses: list = []
        self._shuffle_before = None        # shuffle generator state before the current epoch's order
        self._position = None              # snapshot where an epoch was left unfinished
        self._live = None                  # (batch, epoch losses) at the record run() last yielded
        self.resumed_from_step = None
        self._grid = make_grid(d) if d.x_train.shape[1] == 2 and d.task == "classification" else None

    # -- pieces -------------------------------------------------------------------------------

    def _epoch_order(self) -> tuple[np.ndarray, np.ndarray]:
        if self.experiment["training"]["shuffle"]:
            order = self.shuffle_rng.permutation(self.n_train).astype(np.int64)
        else:
            order = np.arange(self.n_train, dtype=np.int64)
        starts = np.minimum(np.arange(self.steps_per_epoch + 1, dtype=np.int64) * self.batch_size, self.n_train)
        return order, starts

    def _begin_epoch(self):
        """(order, starts, first batch, losses so far) of the epoch about to run."""
        self._shuffle_before = self.shuffle_rng.bit_generator.state
        order, starts = self._epoch_order()
        batch, self._resume_batch = self._resume_batch, 0
        losses, self._resume_losses = self._resume_losses, []
        return order, starts, batch, losses

    def checkpoint(self) -> dict:
        """Everything needed to continue this run exactly where it is:
        {"tensors": weights, optimizer slots, best weights of early stopping;
        "state": JSON-able counters, RNG states, schedule and early-stopping
        state, position in the epoch}.  Take it once :meth:`run` has ended
        (finished, stopped, step limit), or before it starts.  See :meth:`restore`."""
        pos = self._position or {"epoch": self.epoch, "batch": 0, "shuffle": self.shuffle_rng.bit_generator.state,
                                 "schedule": self.schedule.state_dict(), "es": dict(self._es),
                                 "best_weights": self._best_weights, "losses": []}
        if self.step != pos["epoch"] * self.steps_per_epoch + pos["batch"]:
            raise RuntimeError("checkpoint() is only valid once run() has ended (or before it starts), "
                               "not in the middle of an epoch")
        return self._checkpoint_at(pos)

    def checkpoint_in_epoch(self) -> dict | None:
        """:meth:`checkpoint` of the run paused at the diagnostics record :meth:`run` just yielded
        (what a periodic checkpoint saves, so a killed run can resume bit for bit); None where a
        resumed run would not continue identically: the epoch's or the run's last batch is done,
        and the epoch's end work (evaluation, schedule, early stopping) has not run yet."""
        if self._live is None:
            return None
        batch, losses = self._live
        if batch >= self.steps_per_epoch or self.step >= self.total_steps or \
                self.step != self.epoch * self.steps_per_epoch + batch:
            return None
        return self._checkpoint_at({"epoch": self.epoch, "batch": batch, "shuffle": self._shuffle_before,
                                    "schedule": self.schedule.state_dict(), "es": dict(self._es),
                                    "best_weights": self._best_weights, "losses": list(losses)})

    def _checkpoint_at(self, pos: dict) -> dict:
        tensors = self.net.state_dict()
        tensors["optimizer.slots"] = self.opt_state.slots.copy()
        for name, value in (pos["best_weights"] or {}).items():
            tensors["early_stopping.best." + name] = np.array(value)
        es = {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in pos["es"].items()}
        state = {"step": self.step, "epoch": pos["epoch"], "batch": pos["batch"], "optimizer_step": self.opt_state.step,
                 "rng": [int(v) for v in self.rng], "shuffle_rng": pos["shuffle"], "schedule": pos["schedule"],
                 "early_stopping": es, "epoch_losses": list(pos["losses"]), "elapsed": self.elapsed,
                 "steps_per_epoch": self.steps_per_epoch, "n_train": self.n_train, "n_params": self.net.n_params}
        return {"tensors": tensors, "state": state}

    def restore(self, checkpoint: dict) -> None:
        """Continue from :meth:`checkpoint`'s output (same experiment and data);
        the next :meth:`run` picks up at the saved step, mid-epoch included,
        and ends with the same weights as a run that was never interrupted."""
        tensors, state = checkpoint["tensors"], checkpoint["state"]
        for key, have in (("n_train", self.n_train), ("steps_per_epoch", self.steps_per_epoch),
                          ("n_params", self.net.n_params)):
            if state[key] != have:
                raise WeightsError(f"checkpoint has {key} = {state[key]}, this run has {have}: the data or "
                                   f"the model differ from the run that wrote it")
        if state["step"] != state["epoch"] * self.steps_per_epoch + state["batch"]:
            raise WeightsError("checkpoint is inconsistent: step does not match epoch and batch")
        slots = np.asarray(tensors["optimizer.slots"])
        if slots.shape != self.opt_state.slots.shape:
            raise WeightsError(f"checkpoint optimizer slots have shape {slots.shape}, this optimizer needs "
                               f"{self.opt_state.slots.shape}")
        self.net.load_state_dict({k: v for k, v in tensors.items() if k.startswith("layers.")}, source="checkpoint")
        self.opt_state.slots[...] = slots
        self.opt_state.step = int(state["optimizer_step"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self._resume_batch = int(state["batch"])
        self._resume_losses = [float(v) for v in state["epoch_losses"]]
        self.rng[...] = np.array(state["rng"], dtype=np.uint64)
        self.shuffle_rng.bit_generator.state = state["shuffle_rng"]
        self.schedule.load_state_dict(state["schedule"])
        es = state["early_stopping"]
        self._es = {"best_value": math.inf if es["best_value"] is None else float(es["best_value"]),
                    "best_epoch": int(es["best_epoch"]), "wait": int(es["wait"]),
                    "best_val_acc": -math.inf if es["best_val_acc"] is None else float(es["best_val_acc"])}
        prefix = "early_stopping.best."
        best = {k[len(prefix):]: np.array(v) for k, v in tensors.items() if k.startswith(prefix)}
        self._best_weights = best or None
        self.elapsed = float(state.get("elapsed", 0.0))
        self.resumed_from_step = self.step

    def learning_rates(self, first: int, n: int, control: RunControl | None) -> np.ndarray:
        override = control.learning_rate if control is not None else None
        if override is not None:
            return np.full(n, override, dtype=np.float64)
        return np.asarray(self.schedule.learning_rates(first, n), dtype=np.float64)

    def _momenta(self, first: int, n: int) -> np.ndarray:
        moms = self.schedule.momenta(first, n)
        return np.full(n, -1.0) if moms is None else np.asarray(moms, dtype=np.float64)

    def run_steps(self, order, starts, first_batch, n, control=None):
        """n compiled steps on batches first_batch.. of the epoch; returns
        (steps applied, losses, penalties, learning rates)."""
        lrs = self.learning_rates(self.step, n, control)
        moms = self._momenta(self.step, n)
        losses = np.zeros(n)
        regs = np.zeros(n)
        ws, uws, xb = self.net.workspace(self.batch_size)
        net = self.net
        flags = control.flags if control is not None else self._flags
        flags[1] = 0
        done = TK.train_steps(net.ints, net.floats, net.theta, self.grad, net.buffers,
                              self.optimizer.kernel_code, self.opt_state.slots, self.opt_state.step,
                              self.optimizer.hyper_array(), lrs, moms, net.trainable_ranges(),
                              net.tensor_bounds(), self.clip, self.x, self.y_int, self.y_float, net.loss_code,
                              order, starts[first_batch:first_batch + n + 1], self.rng, ws, uws, xb,
                              net.lowest_trainable_layer(), losses, regs, self.layer_stats, self.before, flags)
        self.chunk_diverged = bool(flags[1])   # else done < n: a command ended the chunk early
        self.opt_state.step += done
        self.step += done
        return done, losses[:done], regs[:done], lrs[:done], moms[:done]

    def _step_metrics(self, losses, regs, lr, mom, rate, epoch_float) -> StepMetrics:
        stats = self.net.probe(self.x_probe)
        infos = self.layer_infos
        relu = np.array([li.relu_family for li in infos])
        units = np.array([li.units for li in infos], dtype=float)
        dead = np.where(relu, stats["dead"], np.nan)
        sat = np.where([li.saturating for li in infos], stats["saturated"], np.nan)
        ls = self.layer_stats
        with np.errstate(invalid="ignore", over="ignore"):  # inf/inf on the way to divergence: NaN, no warning
            ratio = np.divide(ls[:, TK.STAT_UPDATE], ls[:, TK.STAT_WEIGHT],
                              out=np.full(len(infos), np.nan), where=ls[:, TK.STAT_WEIGHT] > 0)
        return StepMetrics(
            run_id=self.run_id, step=self.step, epoch=epoch_float, loss=float(np.mean(losses)),
            losses=frozen_array(losses), regularization=float(regs[-1]), learning_rate=float(lr),
            momentum=float(mom) if mom >= 0 else math.nan,
            grad_norm=frozen_array(ls[:, TK.STAT_GRAD_KERNEL]), bias_grad_norm=frozen_array(ls[:, TK.STAT_GRAD_BIAS]),
            update_ratio=frozen_array(ratio), dead_fraction=frozen_array(dead / units), dead_count=frozen_array(dead),
            act_mean=frozen_array(stats["mean"]), act_std=frozen_array(stats["std"]), saturated=frozen_array(sat),
            histograms=frozen_array(stats["histograms"]), steps_per_second=float(rate), elapsed=self.elapsed)

    def decision_surface(self, mc_samples: int = 0) -> DecisionSurface | None:
        if self._grid is None:
            return None
        xs, ys, grid = self._grid
        probs = self.net.predict(grid).reshape(len(ys), len(xs), -1)
        unc = None
        if mc_samples > 0:
            samples = self.net.mc_predict(grid, mc_samples, seed=self.step)
            unc = frozen_array(samples.std(axis=0).max(axis=-1).reshape(len(ys), len(xs)))
        return DecisionSurface(self.run_id, self.step, frozen_array(xs), frozen_array(ys), frozen_array(probs), unc)

    def _confusion(self) -> ConfusionReport | None:
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
        return ConfusionReport(self.run_id, self.epoch, frozen_array(matrix, np.int64), frozen_array(images),
                               frozen_array(truth[wrong], np.int64), frozen_array(pred[wrong], np.int64))

    def evaluate_split(self, split: str) -> tuple[float, float]:
        d = self.data
        x, y = {"train": (self.x_train_eval, self.y_train_eval), "val": (d.x_val, d.y_val),
                "test": (d.x_test, d.y_test)}[split]
        if len(x) == 0:
            return math.nan, math.nan
        return self.net.evaluate(x, y)

    @property
    def layer_infos(self):
        if not hasattr(self, "_infos"):
            self._infos = self.net.layer_infos()
        return self._infos

    # -- the run ------------------------------------------------------------------------------

    def started_event(self, stage: str = "") -> RunStarted:
        d = self.data
        return RunStarted(self.run_id, self.experiment, self.layer_infos, self.net.n_params, self.steps_per_epoch,
                          self.total_steps, d.task, d.n_classes, tuple(d.class_names), d.x_train.shape[1],
                          d.image_shape, frozen_array(HISTOGRAM_EDGES), stage)

    def run(self, control: RunControl | None = None, stage: str = "") -> Iterator:
        """Train to the end (or stop/divergence), yielding events; the last is RunFinished."""
        global _compiled
        control = control or RunControl()
        cfg = self.experiment["training"]
        es = cfg["early_stopping"]
        monitor_sign = 1.0 if es is None or es["monitor"] == "val_loss" else -1.0
        best_value, best_epoch, wait, best_val_acc = (self._es[k] for k in ("best_value", "best_epoch", "wait",
                                                                             "best_val_acc"))
        best_weights = self._best_weights
        yield self.started_event(stage)
        status, reason = "finished", f"completed {self.epochs} epochs"
        last_surface = 0.0
        final_val = (math.nan, math.nan)
        train_loss = math.nan
        if not _compiled:
            yield Compiling(self.run_id, done=False)
        pending = []   # (losses, penalties) of the chunks run since the last record
        while self.step < self.total_steps and status == "finished":
            order, starts, batch, epoch_losses = self._begin_epoch()
            epoch_start = time.perf_counter()
            steps_this_epoch = min(self.steps_per_epoch, batch + self.total_steps - self.step)
            while batch < steps_this_epoch:
                allowed = control.allowed_steps(steps_this_epoch - batch)
                if allowed <= 0:
                    status, reason = "stopped", f"stopped by the user at step {self.step}"
                    break
                to_log = self.log_every - (self.step % self.log_every)
                n = min(allowed, to_log, steps_this_epoch - batch, self._chunk_limit())
                t0 = time.perf_counter()
                done, losses, regs, lrs, moms = self.run_steps(order, starts, batch, n, control)
                dt = time.perf_counter() - t0
                if not _compiled:
                    _compiled = True
                    yield Compiling(self.run_id, done=True)
                else:
                    self.elapsed += dt
                    self._rate = done / dt if dt > 0 else 0.0
                batch += done
                control.consumed(done, batch >= steps_this_epoch)
                epoch_losses.extend(losses.tolist())
                pending.append((losses, regs))   # every step's loss goes into the next record
                if self.chunk_diverged:
                    status = "diverged"
                    reason = (f"the loss or gradient became NaN/infinite at step {self.step + 1}; "
                              f"try a lower learning rate, gradient clipping or batch normalization")
                    if done:  # record the finite steps before the blow-up: the loss climbing to it
                        yield self._step_metrics(np.concatenate([p[0] for p in pending]),
                                                 np.concatenate([p[1] for p in pending]), lrs[-1], moms[-1],
                                                 getattr(self, "_rate", 0.0), self.epoch + batch / self.steps_per_epoch)
                        pending.clear()
                    break
                # paused (Pause, Step): record now, so the consumer sees the step it stopped at
                if self.step % self.log_every == 0 or batch >= steps_this_epoch or control.paused:
                    losses = np.concatenate([p[0] for p in pending])
                    regs = np.concatenate([p[1] for p in pending])
                    pending.clear()
                    self._live = (batch, epoch_losses)
                    yield self._step_metrics(losses if len(losses) else np.array([math.nan]), regs if len(regs)
                                             else np.zeros(1), lrs[-1], moms[-1], getattr(self, "_rate", 0.0),
                                             self.epoch + batch / self.steps_per_epoch)
                    now = time.perf_counter()
                    if self._grid is not None and now - last_surface > SURFACE_SECONDS:
                        last_surface = now
                        yield self.decision_surface()
            self._live = None
            self._position = None if batch >= self.steps_per_epoch else {
                "epoch": self.epoch, "batch": batch, "shuffle": self._shuffle_before,
                "schedule": self.schedule.state_dict(), "es": dict(self._es), "best_weights": best_weights,
                "losses": list(epoch_losses)}
            if status != "finished" or batch < self.steps_per_epoch and self.step < self.total_steps:
                break
            self.epoch += 1
            train_loss = float(np.mean(epoch_losses)) if epoch_losses else math.nan
            _, train_acc = self.evaluate_split("train")
            val_loss, val_acc = self.evaluate_split("val")
            final_val = (val_loss, val_acc)
            if not math.isnan(val_acc):
                best_val_acc = max(best_val_acc, val_acc)
            self.schedule.on_epoch_end(self.epoch, val_loss)
            yield EpochEnd(self.run_id, self.epoch, self.step, train_loss, train_acc, val_loss, val_acc,
                           float(self.learning_rates(self.step, 1, control)[0]),
                           time.perf_counter() - epoch_start, self.net.sparsity(cfg["sparsity_threshold"]))
            if self._grid is not None:
                yield self.decision_surface()
            report = self._confusion()
            if report is not None:
                yield report
            if es is not None:
                value = monitor_sign * (val_loss if es["monitor"] == "val_loss" else val_acc)
                if value < best_value - es["min_delta"]:
                    best_value, best_epoch, wait = value, self.epoch, 0
                    if es["restore_best"]:
                        best_weights = self.net.state_dict()
                else:
                    wait += 1
                    if wait > es["patience"]:
                        status = "early_stopped"
                        reason = (f"{es['monitor']} did not improve for {es['patience']} epochs "
                                  f"(best at epoch {best_epoch})")
            self._es = {"best_value": best_value, "best_epoch": best_epoch, "wait": wait, "best_val_acc": best_val_acc}
            self._best_weights = best_weights
            if control.stopped:
                status, reason = "stopped", f"stopped by the user at step {self.step}"
        if status == "finished" and self.step < self.epochs * self.steps_per_epoch:
            reason = f"reached the step limit ({self.total_steps} steps)"
        if status == "early_stopped" and best_weights is not None:
            self.net.load_state_dict(best_weights)
            final_val = self.evaluate_split("val")
        if self._grid is not None and cfg.get("mc_dropout_samples"):  # the trained net's uncertainty map
            yield self.decision_surface(cfg["mc_dropout_samples"])
        test_loss, test_acc = self.evaluate_split("test")
        summary = {
            "status": status, "reason": reason, "steps": self.step, "epochs": self.epoch,
            "final_train_loss": train_loss, "final_val_loss": final_val[0], "final_val_accuracy": final_val[1],
            "best_val_accuracy": best_val_acc if best_val_acc > -math.inf else math.nan,
            "test_loss": test_loss, "test_accuracy": test_acc,
            "steps_per_second": self.step / self.elapsed if self.elapsed > 0 else math.nan,
            "train_seconds": self.elapsed, "n_params": self.net.n_params,
        }
        if self.resumed_from_step is not None:
            summary["resumed_at_step"] = self.resumed_from_step
        yield RunFinished(self.run_id, status, reason, self.step, self.epoch, summary,
                          {k: frozen_array(v, v.dtype) for k, v in self.net.state_dict().items()})

    def _chunk_limit(self) -> int:
        rate = getattr(self, "_rate", 0.0)
        if rate <= 0:
            return 1  # first call: compile and measure with one step
        return max(1, int(rate * CHUNK_SECONDS))
