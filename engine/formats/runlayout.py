"""The names inside a run folder: its files and the columns of its CSVs.

One definition shared by the writer (:mod:`engine.formats.runstore`) and the
reader (:mod:`engine.formats.runfolder`), so a column the writer adds is a
column the reader returns: the two cannot drift apart again.  Each column is
named after the event field it records (:class:`engine.events.StepMetrics`
for ``history.csv``, :class:`engine.events.EpochEnd` for ``epochs.csv``), and
both sides go through ``getattr(event, name)`` / the same name, never a
position.

``history.csv`` holds the :data:`HISTORY_FIELDS` in this order, then one
column per layer and per-layer field, ``<field>_<i>`` (layer ``i`` as in the
weight names ``layers.<i>.*``), layer by layer::

    step,epoch,...,elapsed,grad_norm_0,bias_grad_norm_0,...,saturated_0,grad_norm_1,...

``epochs.csv`` holds the :data:`EPOCH_FIELDS` in this order.
"""
from __future__ import annotations

import re

from engine.errors import ExperimentError

# files
EXPERIMENT_FILE = "experiment.json"   # the resolved experiment, written first
SUMMARY_FILE = "summary.json"         # {"status": "running", "pid"} until the end, then the final metrics
HISTORY_FILE = "history.csv"          # one row per logged step
EPOCHS_FILE = "epochs.csv"            # one row per epoch
WEIGHTS_SAFETENSORS = "weights.safetensors"   # final weights with the experiment, summary and data statistics
WEIGHTS_NPZ = "weights.npz"                   # the same tensors and metadata as NPZ
WEIGHTS_FILES = (WEIGHTS_SAFETENSORS, WEIGHTS_NPZ)   # in the order a reader prefers them
# which weights files a run writes (``run --weights-format``): one copy by default, safetensors, the
# file PyTorch and Hugging Face users read (an 88-million-parameter net once wrote its weights twice,
# 700 MB, for nothing); readers accept a folder holding either, so older folders with only weights.npz
# still load, predict and export
WEIGHTS_FORMATS = {"safetensors": (WEIGHTS_SAFETENSORS,), "npz": (WEIGHTS_NPZ,),
                   "both": (WEIGHTS_SAFETENSORS, WEIGHTS_NPZ)}
DEFAULT_WEIGHTS_FORMAT = "safetensors"
DEFAULT_WEIGHTS_FILES = WEIGHTS_FORMATS[DEFAULT_WEIGHTS_FORMAT]


def weights_files_for(fmt: str, option: str = "--weights-format") -> tuple:
    """The weights files a run writes for the format name ``fmt`` (see :data:`WEIGHTS_FORMATS`)."""
    if fmt not in WEIGHTS_FORMATS:
        raise ExperimentError(f"{option} must be one of {', '.join(WEIGHTS_FORMATS)}, got {fmt!r}")
    return WEIGHTS_FORMATS[fmt]
CHECKPOINT_FILE = "checkpoint.npz"            # optimizer and RNG state for run --resume (engine.formats.checkpoint)

# history.csv: StepMetrics scalars, one column each
HISTORY_FIELDS = ("step", "epoch", "loss", "regularization", "learning_rate", "momentum", "steps_per_second",
                  "elapsed")
# history.csv: StepMetrics per-layer arrays, one column "<field>_<i>" per layer
PER_LAYER_FIELDS = ("grad_norm", "bias_grad_norm", "update_ratio", "dead_fraction", "dead_count",
                    "comatose_fraction", "comatose_count", "act_mean", "act_std", "saturated")
# per-layer fields added after runs were already written: a history.csv without them reads them as NaN
LATER_PER_LAYER_FIELDS = ("comatose_fraction", "comatose_count")
# epochs.csv: EpochEnd fields
EPOCH_FIELDS = ("epoch", "step", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
                "wall_time", "sparsity")

_PER_LAYER_RE = re.compile(r"^(" + "|".join(PER_LAYER_FIELDS) + r")_(\d+)$")


def per_layer_column(field: str, layer: int) -> str:
    """The history.csv column of ``field`` for layer ``layer``: ``grad_norm_0``."""
    return f"{field}_{layer}"


def history_header(n_layers: int) -> list[str]:
    """history.csv's header for a network of ``n_layers`` dense layers (output layer included)."""
    return list(HISTORY_FIELDS) + [per_layer_column(f, i) for i in range(n_layers) for f in PER_LAYER_FIELDS]


def split_per_layer(column: str) -> tuple[str, int] | None:
    """(field, layer) of a per-layer column name, None for any other column."""
    m = _PER_LAYER_RE.match(column)
    return (m.group(1), int(m.group(2))) if m else None

# every other file name a job writes into its folder (engine.jobs: comparisons, stages, sweeps; the
# exporters' defaults; the stop file): what `run --overwrite` may delete, and nothing else
STOP_FILE = "STOP"    # another process asks a job's runs to stop by creating it (engine.jobs.executors)
JOB_FILES = ("zeroed.json", "comparison.json", "comparison.csv", "stages.csv", "sweep.json", "sweep.csv",
             "sweep_trials.csv", "model.onnx", "model.weights.h5", "model_keras.py", STOP_FILE)
OUTPUT_FILES = (EXPERIMENT_FILE, SUMMARY_FILE, HISTORY_FILE, EPOCHS_FILE, *WEIGHTS_FILES, CHECKPOINT_FILE, *JOB_FILES)
