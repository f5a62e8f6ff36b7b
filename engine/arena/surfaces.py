"""Two-dimensional loss surfaces for the optimizer arena.

Each surface is a small class in the registry :data:`SURFACES` with:

* ``value(x, y)`` and ``gradient(x, y)``: NumPy, element-wise, so the same
  code evaluates one point of a race or a whole grid for the contour map
  (``x`` and ``y`` broadcast against each other); the gradient is analytic
  and the tests compare it with central finite differences;
* ``minima``: (k, 2) array of the global minima (the arena measures the
  distance to the nearest one); every surface is shifted so that its minimum
  value is exactly 0, which lets the window plot the loss on a log scale;
* ``view`` (xmin, xmax, ymin, ymax), a square box that shows the interesting
  part, and ``start``, a default starting point that tells a story;
* ``hyperparameters``: :class:`~engine.params.Param` specs, validated like an
  optimizer's (the window builds its widgets from them);
* ``learning_rates``: sensible starting learning rates for optimizers whose
  step is proportional to the gradient ("gradient": SGD, momentum) and for
  those whose step is roughly the learning rate itself ("adaptive": AdaGrad,
  RMSProp, Adam), so a newly added racer moves at a visible pace.

Plain NumPy on purpose: a race evaluates one 2-D point per step, so the cost
is the Python call, not the arithmetic.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping

import numpy as np

from engine.errors import ExperimentError
from engine.params import Param, check_params
from engine.registry import Registry

SURFACES: Registry[type["Surface"]] = Registry("surface")


def _register(cls):
    SURFACES.add(cls.name, cls)
    return cls


class Surface(ABC):
    """Base class.  Subclasses implement ``_value``, ``_gradient`` (before
    the shift that makes the minimum 0) and ``_minima``, and set the class attributes."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    hyperparameters: ClassVar[dict[str, Param]] = {}
    view: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)
    start: tuple[float, float] = (0.5, 0.5)
    learning_rates: dict[str, float] = {"gradient": 0.01, "adaptive": 0.01}
    log_colors: ClassVar[bool] = True  # the value range spans decades

    def __init__(self, **params: Any):
        self.params: dict[str, Any] = check_params(self.hyperparameters, params, "surface",
                                                   ignore=("name",))
        self._offset = 0.0
        self.minima = np.asarray(self._minima(), dtype=np.float64).reshape(-1, 2)
        self._offset = float(np.min(self._value(self.minima[:, 0], self.minima[:, 1])))

    # -------------------------------------------------------------- subclass API
    @abstractmethod
    def _value(self, x, y):
        """Loss at (x, y) before the shift that makes the minimum 0 (element-wise)."""

    @abstractmethod
    def _gradient(self, x, y):
        """(dL/dx, dL/dy) at (x, y), element-wise."""

    @abstractmethod
    def _minima(self):
        """The global minima as (k, 2) points (the shift puts the loss there at 0)."""

    # ------------------------------------------------------------------ public
    def value(self, x, y) -> np.ndarray:
        """Loss at (x, y), element-wise over broadcast arrays; 0 at the minimum."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        return self._value(x, y) - self._offset

    def gradient(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(dL/dx, dL/dy), element-wise over broadcast arrays."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        gx, gy = self._gradient(x, y)
        shape = np.broadcast_shapes(x.shape, y.shape)
        return np.broadcast_to(gx, shape) + 0.0, np.broadcast_to(gy, shape) + 0.0

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """theta (2,) -> (loss, gradient (2,))."""
        x, y = float(theta[0]), float(theta[1])
        gx, gy = self._gradient(x, y)
        return float(self._value(x, y)) - self._offset, np.array([gx, gy], dtype=np.float64)

    def distance_to_minimum(self, points) -> np.ndarray:
        """points (..., 2) -> (...,) Euclidean distance to the nearest minimum."""
        p = np.asarray(points, dtype=np.float64)
        d = p[..., None, :] - self.minima
        return np.sqrt(np.min(np.sum(d * d, axis=-1), axis=-1))

    def grid(self, view=None, resolution: int = 200):
        """Sample the surface for a contour map.

        Returns xs (resolution,), ys (resolution,) and values
        (resolution, resolution) indexed [ix, iy] (x along the first axis,
        as pyqtgraph's ImageItem expects).
        """
        x0, x1, y0, y1 = self.view if view is None else view
        xs = np.linspace(x0, x1, resolution)
        ys = np.linspace(y0, y1, resolution)
        with np.errstate(over="ignore", invalid="ignore"):
            values = self.value(xs[:, None], ys[None, :])
        return xs, ys, values

    def get_config(self) -> dict:
        return {"name": self.name, **self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _refine(surface: Surface, point, iterations: int = 50) -> np.ndarray:
    """Newton's method on the analytic gradient (Hessian by central
    differences of the gradient): turns a published, rounded minimum into one
    accurate to machine precision."""
    p = np.array(point, dtype=np.float64)
    h = 1e-6
    for _ in range(iterations):
        g = np.array(surface._gradient(p[0], p[1]), dtype=np.float64)
        hess = np.empty((2, 2))
        for j in range(2):
            e = np.zeros(2)
            e[j] = h
            hess[:, j] = (np.array(surface._gradient(*(p + e))) - np.array(surface._gradient(*(p - e)))) / (2 * h)
        step = np.linalg.solve(hess, g)
        p -= step
        if np.max(np.abs(step)) < 1e-15 * (1 + np.max(np.abs(p))):
            break
    return p


@_register
class ElongatedBowl(Surface):
    """L = (u²/κ + v²) / 2 where (u, v) are (x, y) rotated by the angle.

    The curvature is 1 across the valley and 1/κ along it, so κ is the
    condition number of the Hessian.  Plain gradient descent must keep its
    learning rate below 2 (the steep direction) and then crawls along the
    gentle one at a speed proportional to 1/κ.
    """

    name = "bowl"
    title = "Elongated bowl"
    description = ("A quadratic bowl stretched along one direction, as when input features have "
                   "very different scales (the book's elongated bowl).")
    hyperparameters = {
        "condition_number": Param(100.0, "Ratio of the steepest to the gentlest curvature "
                                         "(1 = round bowl).", low=1.0, high=1e6, log=True),
        "angle": Param(0.0, "Rotation of the valley in degrees (0 = along the x axis). "
                            "Adaptive methods scale each coordinate separately, so they lose "
                            "their advantage when the valley is diagonal.", low=-90.0, high=90.0),
    }
    view = (-11.0, 11.0, -11.0, 11.0)
    start = (-10.0, 2.0)
    learning_rates = {"gradient": 1.0, "adaptive": 0.5}
    log_colors = True

    def _rot(self):
        a = math.radians(self.params["angle"])
        return math.cos(a), math.sin(a)

    def _value(self, x, y):
        c, s = self._rot()
        u = c * x + s * y
        v = -s * x + c * y
        return 0.5 * (u * u / self.params["condition_number"] + v * v)

    def _gradient(self, x, y):
        c, s = self._rot()
        u = c * x + s * y
        v = -s * x + c * y
        du = u / self.params["condition_number"]
        dv = v
        return c * du - s * dv, s * du + c * dv

    def _minima(self):
        return [(0.0, 0.0)]


@_register
class Rosenbrock(Surface):
    """L = (a - x)² + b (y - x²)²; minimum (a, a²)."""

    name = "rosenbrock"
    title = "Rosenbrock's banana valley"
    description = ("A curved, flat-bottomed valley: easy to fall into, slow to follow to the "
                   "minimum at its end.")
    hyperparameters = {
        "a": Param(1.0, "The minimum sits at (a, a²).", low=-1.5, high=1.5),
        "b": Param(100.0, "Steepness of the valley walls (the classic value is 100).",
                   low=0.0, low_open=True, high=1e4, log=True),
    }
    view = (-2.0, 2.0, -1.0, 3.0)
    start = (-1.2, 1.0)
    learning_rates = {"gradient": 0.001, "adaptive": 0.02}

    def _value(self, x, y):
        a, b = self.params["a"], self.params["b"]
        return (a - x) ** 2 + b * (y - x * x) ** 2

    def _gradient(self, x, y):
        a, b = self.params["a"], self.params["b"]
        r = y - x * x
        return -2.0 * (a - x) - 4.0 * b * x * r, 2.0 * b * r

    def _minima(self):
        a = self.params["a"]
        return [(a, a * a)]


@_register
class Beale(Surface):
    """L = (1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)²; minimum (3, 0.5)."""

    name = "beale"
    title = "Beale"
    description = ("Flat, curved valleys next to walls that rise by five orders of magnitude: "
                   "gradients differ wildly from place to place.")
    view = (-4.5, 4.5, -4.5, 4.5)
    start = (1.0, 1.6)
    learning_rates = {"gradient": 0.002, "adaptive": 0.05}

    def _value(self, x, y):
        return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2
                + (2.625 - x + x * y ** 3) ** 2)

    def _gradient(self, x, y):
        t1 = 1.5 - x + x * y
        t2 = 2.25 - x + x * y * y
        t3 = 2.625 - x + x * y ** 3
        gx = 2.0 * (t1 * (y - 1.0) + t2 * (y * y - 1.0) + t3 * (y ** 3 - 1.0))
        gy = 2.0 * (t1 * x + t2 * 2.0 * x * y + t3 * 3.0 * x * y * y)
        return gx, gy

    def _minima(self):
        return [(3.0, 0.5)]


@_register
class Himmelblau(Surface):
    """L = (x² + y - 11)² + (x + y² - 7)²: four minima of equal depth."""

    name = "himmelblau"
    title = "Himmelblau (four minima)"
    description = ("Four equally good minima: which one an optimizer reaches depends on where "
                   "it starts and how it moves.")
    view = (-5.5, 5.5, -5.5, 5.5)
    start = (-0.3, -0.6)
    learning_rates = {"gradient": 0.01, "adaptive": 0.1}

    def _value(self, x, y):
        return (x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2

    def _gradient(self, x, y):
        a = x * x + y - 11.0
        b = x + y * y - 7.0
        return 4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b

    def _minima(self):
        rounded = [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)]
        return [_refine(self, p) for p in rounded]


@_register
class Saddle(Surface):
    """L = x²/2 + h (y² - 1)²: a saddle point at the origin between two
    valleys at (0, ±1).  Across the saddle (along y) the curvature is -4h."""

    name = "saddle"
    title = "Saddle point"
    description = ("A pass between two valleys. Started on the ridge line, plain gradient "
                   "descent slides into the pass and lingers there; noise or momentum gets out "
                   "sooner.")
    hyperparameters = {
        "height": Param(0.25, "Height h of the saddle above the two minima; the downhill "
                              "curvature across the saddle is 4h.", low=0.0, low_open=True, high=10.0),
    }
    view = (-3.0, 3.0, -3.0, 3.0)
    start = (2.8, 0.001)
    learning_rates = {"gradient": 0.1, "adaptive": 0.05}

    def _value(self, x, y):
        return 0.5 * x * x + self.params["height"] * (y * y - 1.0) ** 2

    def _gradient(self, x, y):
        return x, 4.0 * self.params["height"] * y * (y * y - 1.0)

    def _minima(self):
        return [(0.0, -1.0), (0.0, 1.0)]


@_register
class PlateauCliff(Surface):
    """L = H σ(k x) + ε ((x + 2)² + y²): a nearly flat plateau (x > 0) that
    ends in a cliff of height H and steepness k, above a shallow basin around
    (-2, 0).  The cliff's steepest slope is H k / 4."""

    name = "plateau"
    title = "Plateau with a cliff"
    description = ("A long, almost flat plateau ends in a sudden cliff: tiny gradients, then a "
                   "huge one. Watch who crawls, who is thrown off the map, and what gradient "
                   "clipping does.")
    hyperparameters = {
        "cliff_height": Param(5.0, "Height H of the drop from the plateau to the basin.",
                              low=0.0, low_open=True, high=100.0),
        "steepness": Param(20.0, "Steepness k of the cliff; the largest gradient there is H·k/4.",
                           low=0.1, high=200.0, log=True),
        "tilt": Param(0.02, "Curvature ε of the gentle bowl under everything: how much the "
                            "plateau slopes toward the cliff.", low=0.0, low_open=True, high=1.0,
                      log=True),
    }
    view = (-5.0, 7.0, -6.0, 6.0)
    start = (6.0, 4.0)
    learning_rates = {"gradient": 1.0, "adaptive": 0.1}
    _center = -2.0

    def _sigmoid(self, x):
        z = self.params["steepness"] * x
        # σ(z) without overflow for large |z|
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def _value(self, x, y):
        eps = self.params["tilt"]
        return (self.params["cliff_height"] * self._sigmoid(x)
                + eps * ((x - self._center) ** 2 + y * y))

    def _gradient(self, x, y):
        h, k, eps = self.params["cliff_height"], self.params["steepness"], self.params["tilt"]
        s = self._sigmoid(x)
        return h * k * s * (1.0 - s) + 2.0 * eps * (x - self._center), 2.0 * eps * y

    def _minima(self):
        return [_refine(self, (self._center, 0.0))]


@_register
class Rastrigin(Surface):
    """L = 2A + Σ (x_i² - A cos 2πx_i): a bowl covered with a grid of local
    minima near the integer points; the global minimum is (0, 0)."""

    name = "rastrigin"
    title = "Rastrigin (many local minima)"
    description = ("A bowl dimpled with dozens of local minima: gradient descent stops in the "
                   "nearest dimple; momentum and gradient noise can roll over the ridges.")
    hyperparameters = {
        "amplitude": Param(10.0, "Depth A of the dimples (0 = a plain round bowl).",
                           low=0.0, high=50.0),
    }
    view = (-5.12, 5.12, -5.12, 5.12)
    start = (4.3, 3.6)
    learning_rates = {"gradient": 0.002, "adaptive": 0.05}

    def _value(self, x, y):
        a = self.params["amplitude"]
        two_pi = 2.0 * math.pi
        return 2.0 * a + x * x - a * np.cos(two_pi * x) + y * y - a * np.cos(two_pi * y)

    def _gradient(self, x, y):
        a = self.params["amplitude"]
        two_pi = 2.0 * math.pi
        return (2.0 * x + a * two_pi * np.sin(two_pi * x),
                2.0 * y + a * two_pi * np.sin(two_pi * y))

    def _minima(self):
        return [(0.0, 0.0)]


def make_surface(config: Mapping[str, Any] | str) -> Surface:
    """Build a surface from ``{"name": "bowl", "condition_number": 10}`` or
    just a name; raises ExperimentError naming the offending key."""
    if isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, Mapping):
        raise ExperimentError(f"surface must be an object or a name, got {config!r}")
    if "name" not in config:
        raise ExperimentError(f"surface.name is missing; allowed: {', '.join(SURFACES.names())}")
    cls = SURFACES.get(config["name"])
    return cls(**{k: v for k, v in config.items() if k != "name"})
