"""Initializers: the variances of Table 11-1, drawn from the right distributions."""
import numpy as np
import pytest

from engine.catalog.initializers import INITIALIZERS

SHAPE = (400, 600)
EXPECTED_VARIANCE = {  # by hand from the definitions: scale / fan
    "glorot_uniform": 2 / (400 + 600), "glorot_normal": 2 / (400 + 600),
    "he_uniform": 2 / 400, "he_normal": 2 / 400, "he_avg_normal": 4 / (400 + 600),
    "lecun_uniform": 1 / 400, "lecun_normal": 1 / 400, "random_normal": 1.0,
    "standard_uniform": (1 / 400 ** 0.5) ** 2 / 3,          # U[-1/sqrt(n), 1/sqrt(n)]: limit^2 / 3
    "glorot_uniform_x4": (4 * (6 / (400 + 600)) ** 0.5) ** 2 / 3,   # limit 4 sqrt(6 / (in + out))
}


@pytest.mark.parametrize("name", INITIALIZERS.names())
def test_every_initializer_has_its_documented_variance(name):
    init = INITIALIZERS.get(name)
    w = init(SHAPE, np.random.default_rng(0), np.float64)
    assert w.shape == SHAPE and w.dtype == np.float64
    if init.distribution == "constant":
        assert np.all(w == w.flat[0])
        return
    assert abs(w.mean()) < 0.1 * np.sqrt(EXPECTED_VARIANCE[name])
    assert w.var() == pytest.approx(EXPECTED_VARIANCE[name], rel=0.02)


@pytest.mark.parametrize("name", [n for n in INITIALIZERS.names() if "uniform" in n])
def test_uniform_limits(name):
    w = INITIALIZERS.get(name)(SHAPE, np.random.default_rng(1), np.float64)
    limit = np.sqrt(3 * EXPECTED_VARIANCE[name])
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit


@pytest.mark.parametrize("name", [n for n in INITIALIZERS.names() if n.endswith("_normal") and n != "random_normal"])
def test_truncated_normals_stop_at_two_standard_deviations(name):
    w = INITIALIZERS.get(name)(SHAPE, np.random.default_rng(2), np.float64)
    raw_std = np.sqrt(EXPECTED_VARIANCE[name]) / 0.87962566103423978
    assert np.abs(w).max() <= 2 * raw_std
    assert np.abs(w).max() > 1.9 * raw_std


def test_seeded_and_dtype():
    init = INITIALIZERS.get("he_normal")
    a = init((3, 4), np.random.default_rng(5))
    b = init((3, 4), np.random.default_rng(5))
    assert a.dtype == np.float32 and np.array_equal(a, b)
