"""Compiled kernels: pure Numba functions, no classes, no Python objects.

Every function here is ``@njit(cache=True, nogil=True)``; shapes are stated in
docstrings and random state is passed in explicitly (see :mod:`.rng`).
The Python side (``engine.model``, ``engine.training``) owns configuration,
schedules, control and snapshots.
"""
