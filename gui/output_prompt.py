"""Before a run writes more than the size limit into runs/: ask, offering one weights file.

A network of 88 million parameters once wrote 1.4 GB (two copies of its
weights and a checkpoint with the optimizer's state) without a word.  A run
folder now holds one weights file (``weights.safetensors``) and the
checkpoint; the window estimates what that will take
(:func:`engine.limits.run_output_estimate`) from the model builder's
parameter count and, above :func:`engine.limits.output_limit` (200 MB unless
``DESCENT_WEIGHTS_LIMIT_MB`` says otherwise), asks first; the default answer
writes the weights and no checkpoint.  The engine checks the same limit
(:func:`engine.jobs.runner.check_output_size`) with the answer's allowance.
Weights in another format (NPZ, ONNX, Keras) come from File > Export.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtWidgets import QMessageBox

from engine.catalog.optimizers import make_optimizer
from engine.formats.runlayout import DEFAULT_WEIGHTS_FILES
from engine.jobs.runner import LIMIT_FROM_ENV
from engine.limits import format_bytes, output_limit, run_output_estimate


@dataclass(frozen=True)
class OutputChoice:
    """What a run writes: its folder (None: nothing), the weights copies, the checkpoint, the limit."""
    write: bool = True
    weights_files: tuple = DEFAULT_WEIGHTS_FILES
    checkpoint: bool = True
    write_limit: int | None = LIMIT_FROM_ENV


WEIGHTS_ONLY, EVERYTHING, NOTHING = (OutputChoice(True, DEFAULT_WEIGHTS_FILES, False, None),
                                     OutputChoice(True, DEFAULT_WEIGHTS_FILES, True, None), OutputChoice(False))


def estimate(experiment: dict, n_params: int, choice: OutputChoice = OutputChoice()):
    itemsize = np.dtype(experiment["training"]["dtype"]).itemsize
    slots = len(make_optimizer(experiment["optimizer"]).slot_names)
    return run_output_estimate(n_params, itemsize, slots, choice.weights_files, choice.checkpoint)


def question(experiment: dict, n_params: int) -> str | None:
    """The question to ask before training ``experiment`` (None: under the limit, nothing to ask)."""
    full, limit = estimate(experiment, n_params), output_limit()
    if full.total <= limit:
        return None
    one = estimate(experiment, n_params, WEIGHTS_ONLY)
    return (f"This network has {n_params:,} parameters: its run folder would hold about "
            f"{format_bytes(full.total)} ({full.describe()}), more than the limit of {format_bytes(limit)} "
            f"(environment variable DESCENT_WEIGHTS_LIMIT_MB).\n\nWrite one weights file "
            f"({format_bytes(one.total)}, no checkpoint: the run cannot be resumed), everything (weights and "
            f"checkpoint), or nothing (the curves are still shown)?")


def ask(parent, experiment: dict, n_params: int | None) -> OutputChoice | None:
    """The user's choice for a run over the limit (None: cancel); the default for runs under it."""
    text = None if not n_params else question(experiment, n_params)
    if text is None:
        return OutputChoice()
    box = QMessageBox(QMessageBox.Question, "A large run folder", text, parent=parent)
    one = box.addButton("Write one weights file", QMessageBox.AcceptRole)
    everything = box.addButton("Write everything", QMessageBox.AcceptRole)
    nothing = box.addButton("Write nothing", QMessageBox.AcceptRole)
    box.addButton(QMessageBox.Cancel)
    box.setDefaultButton(one)
    box.exec()
    return {one: WEIGHTS_ONLY, everything: EVERYTHING, nothing: NOTHING}.get(box.clickedButton())


def writing_state(event) -> str:
    """The status line while a run's final files are written (an :class:`engine.events.WritingFiles`):
    the run's end first, then which file, how large, how many to go."""
    name, size = event.files[event.index]
    return (f"{event.status.replace('_', ' ')} at step {event.step:,}; writing {name} ({format_bytes(size)}, "
            f"file {event.index + 1} of {len(event.files)})…")
