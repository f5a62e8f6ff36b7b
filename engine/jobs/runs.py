"""One trainable run: what an executor is given, what it trains, what it hands back.

A :class:`RunSpec` is self-contained and picklable (a resolved experiment and
a few options, no open files or arrays), so any executor can train it: this
process, a local process pool, later a cluster.  :func:`train_run` trains it
into a run folder (:class:`~engine.formats.runstore.RunWriter`) and returns its
*record*, the plain dict the comparison report is computed from;
:func:`train_to_record` is the same for a worker process, stopped through a
stop file instead of a shared :class:`~engine.control.RunControl`.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Iterable, Iterator

import numpy as np

from engine import __version__
from engine.control import RunControl
from engine.events import DataPoints, EpochEnd, RunFinished, StepMetrics, frozen_array
from engine.fileio import WriteError, write_json
from engine.formats.runlayout import DEFAULT_WEIGHTS_FILES
from engine.formats.runstore import RunWriter
from engine.jobs.compare_report import json_safe
from engine.training.lr_finder import apply_suggestion, chosen_rate, find_learning_rate
from engine.training.trainer import Trainer

MAX_POINTS = 3000   # training points sent for drawing under the decision surface


@dataclass(frozen=True)
class RunSpec:
    """One run of a job: a variant of the experiment with one seed."""
    index: int                # position in the job (also the run_id of its events)
    variant: str
    seed: int
    experiment: dict          # resolved, compare removed, seed set
    lr_finder: dict | None    # run the learning-rate finder first and train with its rate
    folder: str               # relative to the job's folder
    zero_weights_below: float | None = None
    target: dict | None = None   # {"metric", "value"}: record the step that first reaches it
    weights_files: tuple = DEFAULT_WEIGHTS_FILES   # the final weights' copies in its folder (run --weights-format)


def data_points(run_id: int, dataset) -> DataPoints | None:
    """Training points in the original input space (2-D classification data only)."""
    if dataset.x_train.shape[1] != 2 or dataset.task != "classification":
        return None
    n = len(dataset.x_train)
    rows = np.arange(n) if n <= MAX_POINTS else np.linspace(0, n - 1, MAX_POINTS).astype(int)
    return DataPoints(run_id, frozen_array(dataset.to_original(dataset.x_train[rows]), np.float32),
                      frozen_array(np.asarray(dataset.y_train)[rows], np.int64))


def written(events: Iterable, writer) -> Iterator:
    """``events`` passed on, each handed to ``writer`` first (so the folder holds it before anyone
    else sees it; None writes nothing); the writer is closed at the end, however the events end.
    A write that fails (a full disk, a planted link) ends the run there: its events are closed
    (the trainer stops), the writer records the failure (``fail``: status "failed" and the
    reason, complete rows kept) and the :class:`~engine.fileio.WriteError` is raised, one line
    for the command line and the window alike.  A run's end is written file by file, each file
    announced first (:class:`~engine.events.WritingFiles`, from a writer that has ``finish_steps``),
    so the run's end shows before a large network's hundreds of megabytes are on disk."""
    try:
        for event in events:
            if writer is not None:
                try:
                    if isinstance(event, RunFinished) and hasattr(writer, "finish_steps"):
                        yield from writer.finish_steps(event)
                    else:
                        writer.handle(event)
                except WriteError as exc:
                    getattr(events, "close", lambda: None)()
                    getattr(writer, "fail", lambda error: None)(exc)
                    raise
            yield event
    finally:
        if writer is not None:
            writer.close()


def trainer_events(trainer: Trainer, control: RunControl, writer: RunWriter | None = None) -> Iterator:
    """A trainer's events (its training points first, for 2-D data), written by ``writer``."""
    points = data_points(trainer.run_id, trainer.data)
    if points is not None:
        yield points
    yield from written(trainer.run(control), writer)


def _hash(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _reached(metric: str, value: float, target: float) -> bool:
    if not math.isfinite(value):
        return False
    return value >= target if metric == "val_accuracy" else value <= target


def train_run(spec: RunSpec, root: str | Path | None, control: RunControl) -> Generator[object, None, dict]:
    """Train ``spec`` into ``root/spec.folder`` (nothing written when ``root`` is None), yielding its
    events; the generator's return value is the run's record (see :class:`ComparisonRecord
    <engine.events.ComparisonRecord>`)."""
    start = time.perf_counter()
    experiment = spec.experiment
    lr_found = None
    dataset = None
    if spec.lr_finder is not None:
        probe = Trainer(experiment, run_id=spec.index)
        result = find_learning_rate(probe, **spec.lr_finder)
        lr_found = chosen_rate(experiment, result)
        experiment = apply_suggestion(experiment, result)
        dataset = probe.data
    trainer = Trainer(experiment, dataset=dataset, run_id=spec.index)
    net = trainer.net
    # the random part of the start: every kernel (biases, BN gamma/beta and PReLU slopes start at
    # fixed values, so a variant that only adds BN or PReLU still starts from the same kernels)
    init_hash = _hash(*(net.tensor(t.name) for t in net.tensors if t.name.endswith(".kernel")))
    data_hash = _hash(trainer.x, trainer.y_int, trainer.y_float,
                      np.frombuffer(json.dumps(trainer.shuffle_rng.bit_generator.state, sort_keys=True,
                                               default=str).encode(), dtype=np.uint8),
                      np.array([trainer.batch_size, int(experiment["training"]["shuffle"])]))
    writer = None
    if root is not None:
        writer = RunWriter(Path(root) / spec.folder, __version__, weights_files=spec.weights_files)
        writer.attach(trainer, checkpoint=False)   # data statistics go with the weights (predict, export)
    epochs: list[dict] = []
    steps_to_target = None
    finished = None
    target = spec.target
    history: dict = {"step": [], "loss": []}   # the training loss at every diagnostics record
    for event in trainer_events(trainer, control, writer):
        if isinstance(event, StepMetrics):
            history["step"].append(event.step)
            history["loss"].append(event.loss)
        elif isinstance(event, EpochEnd):
            epochs.append({"epoch": event.epoch, "step": event.step, "train_loss": event.train_loss,
                           "train_accuracy": event.train_accuracy, "val_loss": event.val_loss,
                           "val_accuracy": event.val_accuracy, "sparsity": event.sparsity})
            if target is not None and steps_to_target is None and \
                    _reached(target["metric"], getattr(event, target["metric"]), target["value"]):
                steps_to_target = event.step
        elif isinstance(event, RunFinished):
            finished = event
        yield event
    s = dict(finished.summary)
    val_losses = [e["val_loss"] for e in epochs if math.isfinite(e["val_loss"])]
    threshold = experiment["training"]["sparsity_threshold"]
    sparsity = trainer.net.sparsity(threshold)
    zeroed = None
    if spec.zero_weights_below is not None and finished.status != "diverged":
        count = trainer.net.zero_small_weights(spec.zero_weights_below)
        val_loss, val_acc = trainer.evaluate_split("val")
        test_loss, test_acc = trainer.evaluate_split("test")
        zeroed = {"threshold": spec.zero_weights_below, "zeroed": count,
                  "sparsity_before": sparsity, "sparsity_after": trainer.net.sparsity(threshold),
                  "val_accuracy_before": s["final_val_accuracy"], "val_accuracy_after": val_acc,
                  "val_loss_before": s["final_val_loss"], "val_loss_after": val_loss,
                  "test_accuracy_before": s["test_accuracy"], "test_accuracy_after": test_acc}
        if root is not None:
            write_json(Path(root) / spec.folder / "zeroed.json", json_safe(zeroed))
        s.update(final_val_accuracy=val_acc, final_val_loss=val_loss, test_accuracy=test_acc)
        sparsity = zeroed["sparsity_after"]
    return {
        "variant": spec.variant, "seed": spec.seed, "folder": spec.folder, "status": finished.status,
        "reason": finished.reason, "steps": finished.step, "epochs": finished.epoch,
        "final_val_accuracy": s["final_val_accuracy"], "final_val_loss": s["final_val_loss"],
        "best_val_accuracy": s["best_val_accuracy"], "best_val_loss": min(val_losses) if val_losses else math.nan,
        "final_train_loss": s["final_train_loss"], "test_accuracy": s["test_accuracy"],
        "steps_to_target": steps_to_target, "train_seconds": s["train_seconds"],
        "wall_seconds": time.perf_counter() - start, "init_hash": init_hash, "data_hash": data_hash,
        "lr_found": lr_found, "curve": epochs, "history": history, "sparsity": sparsity, "zeroed": zeroed,
    }


FAILED = "failed"    # the status of a run that never ended on its own (its process died, or it raised)


def failed_record(spec: RunSpec, reason: str, wall_seconds: float = math.nan) -> dict:
    """The record of a run that produced no result (an executor lost it): every metric NaN, no
    hashes, no curve, status :data:`FAILED`, so the reports list it among the lost runs instead of
    dropping it silently."""
    nan = math.nan
    return {
        "variant": spec.variant, "seed": spec.seed, "folder": spec.folder, "status": FAILED, "reason": reason,
        "steps": 0, "epochs": 0, "final_val_accuracy": nan, "final_val_loss": nan, "best_val_accuracy": nan,
        "best_val_loss": nan, "final_train_loss": nan, "test_accuracy": nan, "steps_to_target": None,
        "train_seconds": nan, "wall_seconds": wall_seconds, "init_hash": None, "data_hash": None, "lr_found": None,
        "curve": [], "history": {"step": [], "loss": []}, "sparsity": nan, "zeroed": None,
    }


def train_to_record(spec: RunSpec, root: str | None, stop_file: str | None = None) -> dict:
    """:func:`train_run` to its end, for a worker process: its events stay in the worker; the run
    stops at its next diagnostics record once ``stop_file`` exists.  Returns the record."""
    control = RunControl()
    stop_path = Path(stop_file) if stop_file else None
    run = train_run(spec, root, control)
    while True:
        try:
            event = next(run)
        except StopIteration as done:
            return done.value
        if stop_path is not None and isinstance(event, StepMetrics) and stop_path.exists():
            control.stop()
