"""Compiled kernels: pure Numba functions, no classes, no Python objects.

Every function here is ``@njit(cache=True, nogil=True)``; shapes are stated in
docstrings and random state is passed in explicitly (see :mod:`.rng`).
The Python side (``engine.training.network``, ``engine.training.trainer``) owns configuration,
schedules, control and snapshots.
"""
