"""A tiny counter-based random generator for compiled code.

State is a (2,) uint64 array owned by the caller (SplitMix64 counter plus an
unused word kept for future generators), so every random draw in a run is
reproducible from the experiment seed and independent of Numba's global
generator and of the thread that runs it.
"""
import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV_2_53 = 1.0 / 9007199254740992.0


def new_state(seed: int) -> np.ndarray:
    """Fresh (2,) uint64 state from a Python int seed."""
    return np.array([np.uint64(seed & 0xFFFFFFFFFFFFFFFF), 0], dtype=np.uint64)


@njit(cache=True, nogil=True)
def next_u64(state):
    """Advance state (2,) uint64 and return 64 random bits (SplitMix64)."""
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True)
def uniform(state):
    """A float64 uniform in [0, 1)."""
    return float(next_u64(state) >> _S11) * _INV_2_53
