"""Loss surfaces of the optimizer arena.

Parametrized over the SURFACES registry, so a new surface is checked at once:
analytic gradient against central finite differences (on a grid of points
across its view, with default and non-default parameters), minima that are
stationary points at loss 0, and a sane view and start.
"""
import math

import numpy as np
import pytest

from engine.errors import ExperimentError
from engine.arena.surfaces import SURFACES, make_surface

NAMES = SURFACES.names()

# non-default parameters for the surfaces that have any (the gradient check
# should not pass only for the defaults)
OTHER_PARAMS = {
    "bowl": {"condition_number": 7.0, "angle": 37.0},
    "rosenbrock": {"a": -0.5, "b": 20.0},
    "saddle": {"height": 1.3},
    "plateau": {"cliff_height": 2.0, "steepness": 3.0, "tilt": 0.1},
    "rastrigin": {"amplitude": 3.0},
}


def _configs(name):
    yield {"name": name}
    if name in OTHER_PARAMS:
        yield {"name": name, **OTHER_PARAMS[name]}


def _points(surface, n=9, seed=0):
    """A grid across the view plus random points, kept off exact grid lines."""
    x0, x1, y0, y1 = surface.view
    xs = np.linspace(x0, x1, n) + 0.013
    ys = np.linspace(y0, y1, n) - 0.007
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    rng = np.random.default_rng(seed)
    rx = rng.uniform(x0, x1, 40)
    ry = rng.uniform(y0, y1, 40)
    return np.concatenate([gx.ravel(), rx]), np.concatenate([gy.ravel(), ry])


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_central_differences(name):
    for config in _configs(name):
        s = make_surface(config)
        x, y = _points(s)
        gx, gy = s.gradient(x, y)
        # step relative to the point's size; central differences are O(h^2)
        h = 1e-6 * np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))
        nx = (s.value(x + h, y) - s.value(x - h, y)) / (2 * h)
        ny = (s.value(x, y + h) - s.value(x, y - h)) / (2 * h)
        # rounding error of the differences grows with the loss value
        scale = 1e-6 * (1.0 + np.abs(s.value(x, y)) / h * 1e-9 + np.abs(gx) + np.abs(gy))
        assert np.all(np.abs(gx - nx) <= scale), (config, np.max(np.abs(gx - nx) - scale))
        assert np.all(np.abs(gy - ny) <= scale), (config, np.max(np.abs(gy - ny) - scale))


@pytest.mark.parametrize("name", NAMES)
def test_scalar_and_grid_evaluations_agree(name):
    s = make_surface(name)
    x, y = _points(s, n=4)
    values = s.value(x, y)
    gx, gy = s.gradient(x, y)
    for i in range(0, x.size, 7):
        loss, grad = s.value_and_gradient(np.array([x[i], y[i]]))
        assert loss == pytest.approx(values[i], rel=1e-12, abs=1e-12)
        assert grad == pytest.approx([gx[i], gy[i]], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_minima_are_stationary_at_zero_and_lowest(name):
    for config in _configs(name):
        s = make_surface(config)
        assert s.minima.ndim == 2 and s.minima.shape[1] == 2 and len(s.minima) >= 1
        for m in s.minima:
            loss, grad = s.value_and_gradient(m)
            assert abs(loss) < 1e-12, (config, m, loss)
            assert np.linalg.norm(grad) < 1e-7, (config, m, grad)
        # nothing on a fine grid of the view is below the minimum
        _, _, values = s.grid(resolution=301)
        assert np.nanmin(values) > -1e-9, config


def test_himmelblau_has_four_minima_at_the_published_places():
    s = make_surface("himmelblau")
    published = [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)]
    assert len(s.minima) == 4
    for p in published:
        assert np.min(np.linalg.norm(s.minima - p, axis=1)) < 1e-5


def test_bowl_condition_number_and_rotation():
    s = make_surface({"name": "bowl", "condition_number": 50.0, "angle": 30.0})
    # the Hessian (constant for a quadratic) by differences of the gradient
    h = 1e-3
    hess = np.array([[(s.gradient(h, 0)[j] - s.gradient(-h, 0)[j]) / (2 * h) for j in range(2)],
                     [(s.gradient(0, h)[j] - s.gradient(0, -h)[j]) / (2 * h) for j in range(2)]])
    values, vectors = np.linalg.eigh(hess)
    assert values == pytest.approx([1 / 50.0, 1.0])
    # the gentle direction is the x axis rotated by 30 degrees
    gentle = vectors[:, 0] * np.sign(vectors[0, 0])
    assert gentle == pytest.approx([math.cos(math.radians(30)), math.sin(math.radians(30))])


@pytest.mark.parametrize("name", NAMES)
def test_view_start_and_learning_rates_are_sane(name):
    s = make_surface(name)
    x0, x1, y0, y1 = s.view
    assert x0 < x1 and y0 < y1
    assert x1 - x0 == pytest.approx(y1 - y0), "views are square so the map keeps true angles"
    assert x0 <= s.start[0] <= x1 and y0 <= s.start[1] <= y1
    assert all(x0 <= mx <= x1 and y0 <= my <= y1 for mx, my in s.minima), "minima are on the map"
    assert s.value(*s.start) > 1e-3, "the race does not start at the finish"
    assert set(s.learning_rates) == {"gradient", "adaptive"}
    assert all(v > 0 for v in s.learning_rates.values())
    assert s.title and s.description


@pytest.mark.parametrize("name", NAMES)
def test_grid_shape_and_orientation(name):
    s = make_surface(name)
    xs, ys, values = s.grid(resolution=31)
    assert xs.shape == (31,) and ys.shape == (31,) and values.shape == (31, 31)
    assert values[3, 17] == pytest.approx(float(s.value(xs[3], ys[17])))


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    s = make_surface(name)
    again = make_surface(s.get_config())
    assert again.get_config() == s.get_config()


def test_distance_to_nearest_minimum():
    s = make_surface("saddle")  # minima at (0, -1) and (0, 1)
    assert s.distance_to_minimum([0.0, 0.9]) == pytest.approx(0.1)
    assert s.distance_to_minimum([[3.0, -1.0], [0.0, 0.0]]) == pytest.approx([3.0, 1.0])


@pytest.mark.parametrize("config, message", [
    ({"name": "bowel"}, "did you mean 'bowl'"),
    ({"name": "bowl", "condition": 3}, "did you mean 'condition_number'"),
    ({"name": "bowl", "condition_number": 0.5}, "condition_number must be a number >= 1"),
    ({"condition_number": 3}, "surface.name is missing"),
    (42, "surface must be an object or a name"),
])
def test_bad_configs_are_explained(config, message):
    with pytest.raises(ExperimentError, match=message):
        make_surface(config)


def test_a_surface_without_its_minima_cannot_be_made():
    from engine.arena.surfaces import Surface

    class NoMinima(Surface):
        name, title, description = "no-minima", "no minima", "misses _minima"

        def _value(self, x, y):
            return x * x + y * y

        def _gradient(self, x, y):
            return 2 * x, 2 * y

    with pytest.raises(TypeError, match="_minima"):
        NoMinima()
