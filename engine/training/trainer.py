"""The training loop: a generator of events between chunks of compiled steps.

``Trainer(experiment).run(control)`` yields the records of :mod:`engine.events`.
The Python loop owns the schedule, logging, early stopping and the control
commands (pause, step, stop, learning rate); :func:`kernels.train.train_steps`
owns the math and runs many steps per call.  Consumers (the CLI, the window's
worker thread, the run writer) only read events.

Around the loop: :mod:`.cadence` says when to report, :mod:`.diagnostics`
makes the reports, :mod:`.early_stopping` decides when to stop early.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from engine.control import RunControl
from engine.data import Dataset, load_dataset
from engine.data.augment import Augmenter
from engine.errors import WeightsError
from engine.limits import stop_work_skipped
from engine.events import Compiling, EpochEnd, RunFinished, RunStarted, frozen_array
from engine.kernels import train as TK
from engine.kernels.rng import new_state
from engine.training.cadence import Cadence, default_log_every
from engine.training.diagnostics import Diagnostics
from engine.training.early_stopping import BEST_WEIGHTS_PREFIX, EarlyStopping
from engine.training.memory import check_training_memory
from engine.training.network import HISTOGRAM_EDGES, Network, readonly
from engine.catalog.optimizers import make_optimizer
from engine.catalog.schedules import make_schedule

_compiled = False         # kernels compiled (or loaded from cache) in this process

# the reason a diverged run gives, by the kernel's cause.  The rule: a run diverges at the first
# step whose loss, gradient norm or updated weights are not finite.  A loss that is finite but
# huge (a logistic net far off its targets) is not divergence: the run goes on.
DIVERGED_WHAT = {TK.DIVERGED_LOSS: "the loss became NaN or infinite",
                 TK.DIVERGED_GRADIENT: "the gradient norm became infinite (or NaN)",
                 TK.DIVERGED_WEIGHTS: "the update made a weight NaN or infinite"}


@dataclass
class UnfinishedEpoch:
    """An epoch left before its end (stop, step limit): how far it got and
    the state it began with.  The next :meth:`Trainer.run` continues it, and a
    checkpoint saves it, so the resumed run repeats the epoch's batch order
    from ``batch`` on.  The epoch-end work a step limit runs on a partial
    epoch (schedule, early stopping) is not in it: the resumed run does that
    work at the epoch's real end."""
    epoch: int
    batch: int
    losses: list            # training losses of the epoch's steps so far
    shuffle: dict           # batch-order generator state before the epoch's order was drawn
    schedule: dict
    early_stopping: EarlyStopping | None   # a copy
    best_val_accuracy: float


@dataclass
class _RunState:
    """What one call of :meth:`Trainer.run` tracks besides the trainer's state."""
    control: RunControl
    status: str
    reason: str
    train_loss: float = math.nan
    val: tuple = (math.nan, math.nan)         # (loss, accuracy) of the last evaluation
    last_surface: float = -math.inf           # perf_counter at the end of the last decision surface
    surface_cost: float = 0.0                 # seconds the last decision surface took
    epoch_started: float = 0.0
    epoch_losses: list = field(default_factory=list)

    def end(self, status: str, reason: str) -> None:
        self.status, self.reason = status, reason


class Trainer:
    """One training run of one experiment.

    The network, optimizer state and schedule live here, so multi-stage
    workflows can keep training the same network with new settings.
    Every attribute is made in ``__init__``; the public ones other code reads are the
    network (``net``), the data (``data``; the training set as the kernels
    read it: ``x``, ``y_int``, ``y_float``), the batch plan (``batch_size``,
    ``steps_per_epoch``, ``shuffle_rng``), the optimizer, its state and the
    schedule, the counters (``step``, ``epoch``, ``elapsed``) and the
    random state of dropout masks and RReLU slopes (``rng``).
    """

    def __init__(self, experiment: dict, dataset: Dataset | None = None, run_id: int = 0,
                 init_weights: dict | None = None, network: Network | None = None,
                 max_steps: int | None = None):
        self.experiment = experiment
        self.run_id = run_id
        seed = int(experiment["seed"])
        cfg = experiment["training"]
        self.data = d = dataset if dataset is not None else load_dataset(experiment["data"], seed)
        if network is None:
            n_targets = d.y_train.shape[1] if d.y_train.ndim == 2 else 1
            network = Network(experiment, d.x_train.shape[1], d.task, d.n_classes, n_targets)
            network.initialize(seed)
        check_training_memory(network, experiment, len(d.x_train), len(d.x_val))   # before allocating the rest
        self.net = network
        if init_weights is not None:
            self.net.load_state_dict(init_weights)
        x = readonly(np.ascontiguousarray(d.x_train, dtype=self.net.dtype))
        self._train_set = TK.DataArgs(x, *self.net.split_targets(d.y_train))
        self.augmenter = Augmenter.for_dataset(experiment["data"].get("augment"), d, seed, self.net.dtype)

        # how long, in steps
        self.batch_size = min(cfg["batch_size"], self.n_train)
        self.steps_per_epoch = math.ceil(self.n_train / self.batch_size)
        self.epochs = cfg["epochs"]
        limit = max_steps if max_steps is not None else cfg["max_steps"]
        self.total_steps = self.epochs * self.steps_per_epoch
        if limit is not None:
            self.total_steps = min(self.total_steps, limit)

        # what is reported, and when
        # the dense kernels' weights: a forward pass costs about this many multiply-adds a row
        self.kernel_weights = sum(int(np.prod(t.shape)) for t in self.net.tensors if t.name.endswith(".kernel"))
        probe_size = min(cfg["probe_size"], self.n_train)
        self.cadence = Cadence(cfg["log_every"] or default_log_every(self.steps_per_epoch, self.batch_size,
                                                                      self.kernel_weights, probe_size))
        self.diagnostics = Diagnostics(self.net, d, x, seed, cfg["probe_size"], run_id)
        self.pictures = True   # decision surfaces and confusion matrices; off where nothing draws them (headless)

        # how the weights move
        opt_cfg = experiment["optimizer"]
        self.optimizer = make_optimizer(opt_cfg)
        self.opt_state = self.optimizer.build(self.net.n_params, self.net.dtype)
        self._clip = np.zeros(TK.N_CLIP)
        for column, key in ((TK.CLIP_VALUE, "clipvalue"), (TK.CLIP_NORM, "clipnorm"),
                            (TK.CLIP_GLOBAL_NORM, "global_clipnorm")):
            self._clip[column] = opt_cfg.get(key) or 0.0
        self.schedule = make_schedule(experiment["schedule"])
        self.schedule.start(float(opt_cfg["learning_rate"]), self.total_steps, self.steps_per_epoch)
        self.early_stopping = EarlyStopping.from_config(cfg["early_stopping"])
        if self.early_stopping is not None:
            self.early_stopping.check_watchable(len(d.x_val), d.task)

        # where the run is
        self.step = 0            # updates done
        self.epoch = 0           # epochs completed
        self.elapsed = 0.0       # seconds in compiled steps (compilation excluded)
        self.steps_per_second = 0.0   # of the last chunk; 0 until measured
        self.best_val_accuracy = -math.inf
        self.chunk_diverged = False   # the last run_steps call stopped at a non-finite loss, gradient or weight
        self.diverged_cause = 0       # which (a DIVERGED_* code of engine.kernels.train; 0: none)
        self.shuffle_rng = np.random.default_rng([seed, 1])  # batch order
        self._unfinished: UnfinishedEpoch | None = None   # an epoch left before its end (stop, step limit)
        self._live: tuple | None = None   # (batch, epoch losses, shuffle state) at the record run() last yielded
        self.resumed_from_step: int | None = None

        # the kernel's scratch and outputs
        self._work = TK.WorkArgs(np.zeros_like(self.net.theta), np.zeros_like(self.net.theta),
                                 np.zeros_like(self.net.buffers),
                                 *self.net.workspace(self.batch_size), new_state(seed * 7919 + 17))
        self.layer_stats = np.zeros((self.net.n_layers, TK.N_STATS))
        self._flags = np.zeros(2, dtype=np.int64)   # the kernel's flags when no RunControl is given

    # -- the training set and the random state -------------------------------------------------

    @property
    def x(self) -> np.ndarray:
        """(N, D) training inputs in the network's dtype, read-only."""
        return self._train_set.x

    @property
    def y_int(self) -> np.ndarray:
        return self._train_set.y_int

    @property
    def y_float(self) -> np.ndarray:
        return self._train_set.y_float

    @property
    def n_train(self) -> int:
        return self._train_set.x.shape[0]

    @property
    def rng(self) -> np.ndarray:
        """(2,) uint64 state of dropout masks and RReLU slopes (change it in place)."""
        return self._work.rng

    @property
    def log_every(self) -> int:
        return self.cadence.log_every

    @property
    def x_probe(self) -> np.ndarray:
        return self.diagnostics.x_probe

    # -- steps ----------------------------------------------------------------------------------

    def _epoch_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(row order, batch starts) of the next epoch; draws from shuffle_rng."""
        if self.experiment["training"]["shuffle"]:
            order = self.shuffle_rng.permutation(self.n_train).astype(np.int64)
        else:
            order = np.arange(self.n_train, dtype=np.int64)
        starts = np.minimum(np.arange(self.steps_per_epoch + 1, dtype=np.int64) * self.batch_size, self.n_train)
        return order, starts

    def learning_rates(self, first: int, n: int, control: RunControl | None) -> np.ndarray:
        override = control.learning_rate if control is not None else None
        if override is not None:
            return np.full(n, override, dtype=np.float64)
        return np.asarray(self.schedule.learning_rates(first, n), dtype=np.float64)

    def _momenta(self, first: int, n: int) -> np.ndarray:
        moms = self.schedule.momenta(first, n) if self.optimizer.momentum_on else None
        return np.full(n, -1.0) if moms is None else np.asarray(moms, dtype=np.float64)

    def run_steps(self, order, starts, first_batch, n, control=None):
        """n compiled steps on batches first_batch.. of the epoch; returns
        (steps applied, losses, penalties, learning rates, momenta)."""
        lrs = self.learning_rates(self.step, n, control)
        moms = self._momenta(self.step, n)
        out = TK.OutArgs(np.zeros(n), np.zeros(n), self.layer_stats,
                         control.flags if control is not None else self._flags)
        out.flags[TK.FLAG_DIVERGED] = 0
        net, data = self.net, self._train_set
        if self.augmenter is not None:   # these batches augmented, as a training set of their own
            data, order, starts, first_batch = self.augmenter.chunk(data, order, starts, first_batch, n, self.epoch)
        done = TK.train_steps(
            TK.NetArgs(net.ints, net.floats, net.theta, net.buffers, net.loss_code, net.lowest_trainable_layer()),
            TK.OptArgs(self.optimizer.kernel_code, self.opt_state.slots, self.opt_state.step,
                       self.optimizer.hyper_array(), net.trainable_ranges(), net.tensor_bounds(), self._clip),
            data, TK.ChunkArgs(order, starts[first_batch:first_batch + n + 1], lrs, moms),
            self._work, out)
        self.diverged_cause = int(out.flags[TK.FLAG_DIVERGED])
        self.chunk_diverged = self.diverged_cause != 0   # else done < n: a command ended the chunk early
        self.opt_state.step += done
        self.step += done
        return done, out.losses[:done], out.regs[:done], lrs[:done], moms[:done]

    def _timed_steps(self, order, starts, first_batch, n, control):
        """:meth:`run_steps`, timed (a generator: announces the compilation of the first call in a process)."""
        global _compiled
        t0 = time.perf_counter()
        result = self.run_steps(order, starts, first_batch, n, control)
        dt = time.perf_counter() - t0
        if not _compiled:
            _compiled = True
            yield Compiling(self.run_id, done=True)
        else:
            self.elapsed += dt
            self.steps_per_second = result[0] / dt if dt > 0 else 0.0
        return result

    # -- reports --------------------------------------------------------------------------------

    def evaluate_split(self, split: str) -> tuple[float, float]:
        """(loss, accuracy) on "train" (at most 10,000 rows), "val" or "test"."""
        return self.diagnostics.evaluate(split)

    def decision_surface(self, mc_samples: int = 0):
        return self.diagnostics.decision_surface(self.step, mc_samples)

    def started_event(self, stage: str = "") -> RunStarted:
        d = self.data
        return RunStarted(self.run_id, self.experiment, self.net.layer_infos(), self.net.n_params,
                          self.steps_per_epoch, self.total_steps, d.task, d.n_classes, tuple(d.class_names),
                          d.x_train.shape[1], d.image_shape, frozen_array(HISTOGRAM_EDGES), stage)

    def _record(self, pending: list, lr: float, mom: float, batch: int):
        """The diagnostics record of the steps in ``pending`` ((losses, penalties)
        of each chunk since the last record), which it empties."""
        losses = np.concatenate([p[0] for p in pending])
        regs = np.concatenate([p[1] for p in pending])
        pending.clear()
        return self.diagnostics.step_metrics(self.layer_stats, losses if len(losses) else np.array([math.nan]),
                                             regs if len(regs) else np.zeros(1), lr, mom, self.step,
                                             self.epoch + batch / self.steps_per_epoch, self.steps_per_second,
                                             self.elapsed)

    # -- the run --------------------------------------------------------------------------------

    def run(self, control: RunControl | None = None, stage: str = "") -> Iterator:
        """Train to the end (or stop/divergence), yielding events; the last is RunFinished."""
        run = _RunState(control or RunControl(), "finished", f"completed {self.epochs} epochs")
        yield self.started_event(stage)
        if not _compiled:
            yield Compiling(self.run_id, done=False)
        while self.step < self.total_steps and run.status == "finished":
            if not (yield from self._train_epoch(run)):
                break
            yield from self._end_epoch(run)
        yield from self._finish(run)

    def _train_epoch(self, run: _RunState):
        """The steps of one epoch (or of what is left of it) in compiled
        chunks, with the records the cadence asks for.  Returns True when the
        epoch's end work follows: the epoch ended, or the step limit did."""
        order, starts, batch, shuffle = self._begin_epoch(run)
        end = min(self.steps_per_epoch, batch + self.total_steps - self.step)
        control = run.control
        pending = []   # (losses, penalties) of the chunks run since the last record
        rate = (math.nan, -1.0)   # (learning rate, momentum) of the last step applied
        while batch < end:
            allowed = control.allowed_steps(end - batch)
            if allowed <= 0:
                run.end("stopped", f"stopped by the user at step {self.step}")
                break
            n = self.cadence.chunk_steps(self.step, allowed, self.steps_per_second)
            done, losses, regs, lrs, moms = yield from self._timed_steps(order, starts, batch, n, control)
            batch += done
            control.consumed(done, batch >= end)
            run.epoch_losses.extend(losses.tolist())
            pending.append((losses, regs))   # every step's loss goes into the next record
            if done:
                rate = (lrs[-1], moms[-1])
            if self.chunk_diverged:
                run.end("diverged", f"{DIVERGED_WHAT[self.diverged_cause]} at step {self.step + 1} (the weights "
                                    f"after step {self.step} are kept); try a lower learning rate, gradient "
                                    f"clipping or batch normalization")
                if any(len(p[0]) for p in pending):  # record the finite steps before the blow-up: the loss climbing to it
                    yield self._record(pending, *rate, batch)
                break
            if self.cadence.record_due(self.step, batch >= end, control.paused):
                self._live = (batch, run.epoch_losses, shuffle)   # what checkpoint_in_epoch saves
                yield self._record(pending, *rate, batch)
                if batch < end:   # the epoch's last record: the epoch's end decides on its surface
                    yield from self._surface(run, final=control.paused or control.stopped)
        self._live = None
        self._unfinished = None if batch >= self.steps_per_epoch else self._snapshot(batch, run.epoch_losses, shuffle)
        return run.status == "finished" and (batch >= self.steps_per_epoch or self.step >= self.total_steps)

    def _begin_epoch(self, run: _RunState):
        """(order, starts, first batch, shuffle state before the order) of the
        epoch about to run: a fresh one, or the unfinished one continued."""
        left, self._unfinished = self._unfinished, None
        if left is not None:   # the same order again
            self.shuffle_rng.bit_generator.state = left.shuffle
        shuffle = self.shuffle_rng.bit_generator.state
        order, starts = self._epoch_order()
        run.epoch_started = time.perf_counter()
        run.epoch_losses = list(left.losses) if left is not None else []
        return order, starts, left.batch if left is not None else 0, shuffle

    def _end_epoch(self, run: _RunState):
        """Evaluate, report, let the schedule and early stopping see the epoch."""
        self.epoch += 1
        run.train_loss = float(np.mean(run.epoch_losses)) if run.epoch_losses else math.nan
        _, train_acc = self.evaluate_split("train")
        val_loss, val_acc = run.val = self.evaluate_split("val")
        if not math.isnan(val_acc):
            self.best_val_accuracy = max(self.best_val_accuracy, val_acc)
        # the performance schedule watches the validation loss, or without validation data the
        # training loss (the epoch's mean, as Keras logs "loss"): NaN would read as "no improvement"
        # every epoch and cut the rate blindly
        self.schedule.on_epoch_end(self.epoch, val_loss if len(self.data.x_val) else run.train_loss)
        yield EpochEnd(self.run_id, self.epoch, self.step, run.train_loss, train_acc, val_loss, val_acc,
                       float(self.learning_rates(self.step, 1, run.control)[0]),
                       time.perf_counter() - run.epoch_started,
                       self.net.sparsity(self.experiment["training"]["sparsity_threshold"]))
        report = self.diagnostics.confusion(self.epoch) if self.pictures else None
        if report is not None:
            yield report
        if self.early_stopping is not None:
            decision = self.early_stopping.update(self.epoch, {"val_loss": val_loss, "val_accuracy": val_acc},
                                                  self.net.state_dict)
            if decision.stop:
                run.end("early_stopped", decision.reason)
        if run.control.stopped:
            run.end("stopped", f"stopped by the user at step {self.step}")
        # after early stopping has decided: the run's last epoch always ends on its surface
        yield from self._surface(run, final=run.status != "finished" or self.step >= self.total_steps
                                 or run.control.paused)

    def _surface(self, run: _RunState, final: bool):
        """A decision surface (2-D classes, pictures on) when the cadence says one is due."""
        if not self.pictures or self.diagnostics.grid is None:
            return
        now = self.cadence.clock()
        if self.cadence.surface_due(now, run.last_surface, run.surface_cost, final):
            surface = self.decision_surface()
            run.last_surface = self.cadence.clock()
            run.surface_cost = run.last_surface - now
            yield surface

    def _finish(self, run: _RunState):
        """The last reports and RunFinished, with the best epoch's weights after early stopping.
        A run the user stopped leaves out the final work that would keep the stop waiting
        (:func:`engine.limits.stop_work_skipped`: the test set of a huge network; its figures are
        NaN, and the reason says why)."""
        if run.status == "finished" and self.step < self.epochs * self.steps_per_epoch:
            run.reason = f"reached the step limit ({self.total_steps} steps)"
        es = self.early_stopping
        if run.status == "early_stopped" and es.best_weights is not None:
            self.net.load_state_dict(es.best_weights)
            run.val = self.evaluate_split("val")
        stopped, weights = run.status == "stopped", self.kernel_weights
        mc_samples = self.experiment["training"].get("mc_dropout_samples")
        grid = self.diagnostics.grid
        if grid is not None and mc_samples and not (stopped and stop_work_skipped(
                "uncertainty map", len(grid[0]) * len(grid[1]), weights, mc_samples)):
            yield self.decision_surface(mc_samples)   # the trained net's uncertainty map
        skipped = stop_work_skipped("test set", len(self.data.x_test), weights) if stopped else None
        test_loss, test_acc = (math.nan, math.nan) if skipped else self.evaluate_split("test")
        if skipped:
            run.reason = f"{run.reason}; {skipped}"
        summary = {
            "status": run.status, "reason": run.reason, "steps": self.step, "epochs": self.epoch,
            "final_train_loss": run.train_loss, "final_val_loss": run.val[0], "final_val_accuracy": run.val[1],
            "best_val_accuracy": self.best_val_accuracy if self.best_val_accuracy > -math.inf else math.nan,
            "test_loss": test_loss, "test_accuracy": test_acc,
            "steps_per_second": self.step / self.elapsed if self.elapsed > 0 else math.nan,
            "train_seconds": self.elapsed, "n_params": self.net.n_params,
        }
        if self.resumed_from_step is not None:
            summary["resumed_at_step"] = self.resumed_from_step
        if skipped:
            summary["test_skipped"] = skipped
        yield RunFinished(self.run_id, run.status, run.reason, self.step, self.epoch, summary,
                          {k: readonly(v) for k, v in self.net.state_dict().items()})   # fresh copies: not twice

    # -- checkpoints ----------------------------------------------------------------------------

    def _snapshot(self, batch: int, losses: list, shuffle: dict) -> UnfinishedEpoch:
        """The resumable state now, ``batch`` batches into the current epoch."""
        return UnfinishedEpoch(self.epoch, batch, list(losses), shuffle, self.schedule.state_dict(),
                               copy.copy(self.early_stopping), self.best_val_accuracy)

    def checkpoint(self) -> dict:
        """Everything needed to continue this run exactly where it is:
        {"tensors": weights, optimizer slots, best weights of early stopping;
        "state": JSON-able counters, RNG states, schedule and early-stopping
        state, position in the epoch}.  Take it once :meth:`run` has ended
        (finished, stopped, step limit), or before it starts.  See :meth:`restore`."""
        pos = self._unfinished or self._snapshot(0, [], self.shuffle_rng.bit_generator.state)
        if self.step != pos.epoch * self.steps_per_epoch + pos.batch:
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
        batch, losses, shuffle = self._live
        if batch >= self.steps_per_epoch or self.step >= self.total_steps or \
                self.step != self.epoch * self.steps_per_epoch + batch:
            return None
        return self._checkpoint_at(self._snapshot(batch, losses, shuffle))

    def _checkpoint_at(self, pos: UnfinishedEpoch) -> dict:
        tensors = self.net.state_dict()
        tensors["optimizer.slots"] = self.opt_state.slots.copy()
        es = pos.early_stopping
        for name, value in ((es.best_weights if es is not None else None) or {}).items():
            tensors[BEST_WEIGHTS_PREFIX + name] = np.array(value)
        best_acc = pos.best_val_accuracy
        state = {"step": self.step, "epoch": pos.epoch, "batch": pos.batch, "optimizer_step": self.opt_state.step,
                 "rng": [int(v) for v in self.rng], "shuffle_rng": pos.shuffle, "schedule": pos.schedule,
                 "early_stopping": es.state_dict() if es is not None else None,
                 "best_val_accuracy": None if math.isinf(best_acc) else best_acc,
                 "epoch_losses": list(pos.losses), "elapsed": self.elapsed,
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
        self.rng[...] = np.array(state["rng"], dtype=np.uint64)
        self.shuffle_rng.bit_generator.state = state["shuffle_rng"]
        self.schedule.load_state_dict(state["schedule"])
        es_state = state["early_stopping"]
        # checkpoints before the early-stopping object kept the best validation accuracy among its counters
        best_acc = state["best_val_accuracy"] if "best_val_accuracy" in state else es_state["best_val_acc"]
        self.best_val_accuracy = -math.inf if best_acc is None else float(best_acc)
        if self.early_stopping is not None and es_state is not None:
            self.early_stopping.load_state_dict(es_state)
            best = {k[len(BEST_WEIGHTS_PREFIX):]: np.array(v) for k, v in tensors.items()
                    if k.startswith(BEST_WEIGHTS_PREFIX)}
            self.early_stopping.best_weights = best or None
        batch = int(state["batch"])
        self._unfinished = self._snapshot(batch, [float(v) for v in state["epoch_losses"]],
                                          state["shuffle_rng"]) if batch else None
        self.elapsed = float(state.get("elapsed", 0.0))
        self.resumed_from_step = self.step
