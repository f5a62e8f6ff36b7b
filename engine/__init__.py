"""Descent's training engine: NumPy + Numba, no GUI imports.

Public entry points:

* :func:`engine.spec.experiment.load_experiment` / ``resolve_experiment``
* :class:`engine.training.trainer.Trainer` — a generator of :mod:`engine.events`
* :class:`engine.control.RunControl` — pause, step, stop, learning rate
* :class:`engine.formats.runstore.RunWriter` — the run folder
"""

__version__ = "0.1.0"
