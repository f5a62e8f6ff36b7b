"""The work a run does around every epoch, made cheap for small nets (issue 19): the same numbers
and the same bytes, whatever is converted once, cached or formatted in one go."""
import dataclasses
import io
import math
import struct

import numpy as np
import pytest

from engine.control import RunControl
from engine.events import EpochEnd, RunFinished, StepMetrics, frozen_array
from engine.formats.runlayout import EPOCH_FIELDS, HISTORY_FIELDS, PER_LAYER_FIELDS
from engine.formats.runstore import RunWriter
from engine.jobs.console import ConsolePrinter
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer
from helpers import network

TINY = {"name": "tiny-epoch-end", "seed": 5,
        "data": {"name": "moons", "n_samples": 150, "validation_split": 0.2, "test_split": 0.0},
        "model": {"layers": [{"units": 6, "activation": "relu"}, {"units": 5, "activation": "tanh"}]},
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "training": {"epochs": 2, "batch_size": 16, "log_every": 3}}


@pytest.fixture(scope="module")
def run():
    """(trainer, events) of the tiny run."""
    trainer = Trainer(resolve_experiment(TINY))
    return trainer, list(trainer.run(RunControl()))


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def reference_loss_accuracy(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy from predicted probabilities (NumPy, not the kernel)."""
    y = np.asarray(y, dtype=int)
    if probs.shape[1] == 1:
        p = np.clip(probs[:, 0], 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), float(np.mean((p > 0.5) == y))
    picked = np.clip(probs[np.arange(len(y)), y], 1e-12, 1)
    return float(-np.mean(np.log(picked))), float(np.mean(probs.argmax(axis=1) == y))


def test_the_epoch_evaluations_follow_the_weights_not_a_kept_result():
    trainer = Trainer(resolve_experiment(TINY))
    d, net = trainer.data, trainer.net
    for scale in (1.0, 0.5, -2.0):   # the same trainer evaluated again after its weights changed
        net.theta[...] *= scale
        val, train = trainer.evaluate_split("val"), trainer.evaluate_split("train")
        assert val == net.evaluate(d.x_val, d.y_val)          # the kernel on freshly converted inputs
        assert train == net.evaluate(trainer.x, d.y_train)    # all 120 rows are the evaluation rows
        loss, acc = reference_loss_accuracy(net.predict(d.x_val), d.y_val)
        assert val[0] == pytest.approx(loss, rel=1e-5) and val[1] == acc
    assert all(math.isnan(v) for v in trainer.evaluate_split("test"))   # no test rows


def test_sparsity_counts_the_kernel_weights_below_the_threshold_as_the_weights_change():
    net = network([{"units": 4, "activation": "relu"}, {"units": 3, "activation": "tanh"}], n_inputs=2)

    def reference(threshold):
        kernels = [w.ravel() for name, w in net.state_dict().items() if name.endswith(".kernel")]
        return float(np.mean(np.abs(np.concatenate(kernels)) < threshold))

    weights = net.state_dict()
    weights["layers.0.kernel"][:, :2] = 0.0
    weights["layers.1.bias"][:] = 0.0      # a bias is no kernel weight
    net.load_state_dict(weights)
    for threshold in (0.0, 1e-9, 0.3, 100.0):
        assert net.sparsity(threshold) == reference(threshold)
    assert 0 < net.sparsity(1e-9) < 1
    net.theta = np.zeros_like(net.theta)   # a new parameter vector: counted, not the old one's views
    assert net.sparsity(1e-9) == 1.0


def old_line(values) -> str:
    """How the writer formatted a CSV row before rows were formatted in one go (the contract:
    repr of a float, "nan" for NaN, str of anything else)."""
    return ",".join("nan" if isinstance(v, float) and math.isnan(v) else repr(v) if isinstance(v, float)
                    else str(v) for v in values) + "\n"


def test_history_and_epochs_rows_hold_each_value_exactly(run, tmp_path):
    trainer, events = run
    writer = RunWriter(tmp_path / "run")
    writer.handle(events[0])
    odd = [math.nan, -math.nan, math.inf, -math.inf, -0.0, 5e-324, 1 / 3]
    per_layer = {f: frozen_array([odd[(k + i) % len(odd)] for i in range(3)]) for k, f in enumerate(PER_LAYER_FIELDS)}
    step = dataclasses.replace(of(events, StepMetrics)[-1], step=np.int64(7), epoch=-0.0, loss=math.nan,
                               regularization=math.inf, elapsed=1e300, **per_layer)
    end = dataclasses.replace(of(events, EpochEnd)[-1], train_accuracy=math.nan, sparsity=0.1 + 0.2)
    writer.handle(step)
    writer.handle(end)
    writer.close()
    history = (tmp_path / "run" / "history.csv").read_text().splitlines(keepends=True)
    epochs = (tmp_path / "run" / "epochs.csv").read_text().splitlines(keepends=True)
    cells = [getattr(step, f) for f in HISTORY_FIELDS] + \
            [float(getattr(step, f)[i]) for i in range(3) for f in PER_LAYER_FIELDS]
    assert history[-1] == old_line(cells)
    assert epochs[-1] == old_line([getattr(end, f) for f in EPOCH_FIELDS])
    for cell, value in zip(history[-1].rstrip("\n").split(","), cells):   # every float reads back bit for bit
        if isinstance(value, float) and not math.isnan(value):
            assert struct.pack("<d", float(cell)) == struct.pack("<d", value)
        elif isinstance(value, float):
            assert cell == "nan"
        else:
            assert cell == "7"


def test_a_quiet_console_prints_no_progress_and_a_loud_one_a_line_per_epoch(run):
    _, events = run
    quiet_stream, loud_stream = io.StringIO(), io.StringIO()
    quiet = ConsolePrinter(quiet=True, stream=quiet_stream, out=quiet_stream)
    loud = ConsolePrinter(stream=loud_stream, out=loud_stream)
    for event in events:
        quiet.handle(event)
        loud.handle(event)
    assert quiet_stream.getvalue() == ""
    lines = loud_stream.getvalue().splitlines()
    epochs = of(events, EpochEnd)
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == [f"{e.epoch}/2" for e in epochs]
    assert lines[0].startswith("training tiny-epoch-end") and lines[-1].startswith(of(events, RunFinished)[0].status)
