"""Descent's training engine: NumPy + Numba, no GUI imports.

The subpackages are layers (``tests/test_layering.py`` checks the order):
foundation modules, ``kernels``, ``catalog``, ``data``, ``spec``,
``training`` and ``arena``, ``formats``, ``coach``, ``jobs``, ``cli``.

Public entry points:

* :func:`engine.spec.experiment.load_experiment` / ``resolve_experiment``
* :func:`engine.jobs.runner.run_job` — runs any experiment, yields :mod:`engine.events`
* :class:`engine.training.trainer.Trainer` — one network's training, a generator of events
* :class:`engine.control.RunControl` — pause, step, stop, learning rate
* :func:`engine.formats.runfolder.read_run` — a run folder read back
"""

__version__ = "0.1.0"
