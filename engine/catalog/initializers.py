"""Weight initializers (Table 11-1 and the ones before it).

Variance scaling draws weights with variance ``scale / fan`` where fan is the
layer's fan-in, fan-out or their average, from a normal, truncated normal or
uniform distribution:

    Glorot (Xavier):  scale 1, fan_avg  -> logistic, tanh, softmax, none
    He:               scale 2, fan_in   -> ReLU and its variants
    LeCun:            scale 1, fan_in   -> SELU

Uniform draws use limit ``sqrt(3 * scale / fan)``; truncated normals are cut
at two standard deviations and rescaled so the variance is still
``scale / fan`` (as Keras does).  Biases start at zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.params import Param
from engine.registry import Registry

# std of a unit normal truncated to [-2, 2]: dividing by it restores variance 1
_TRUNCATED_STD = 0.87962566103423978


@dataclass(frozen=True)
class Initializer:
    name: str
    doc: str
    scale: float = 1.0
    mode: str = "fan_in"           # "fan_in" | "fan_out" | "fan_avg" | "none"
    distribution: str = "normal"   # "normal" | "truncated_normal" | "uniform" | "constant"
    params: dict = field(default_factory=dict)

    def __call__(self, shape: tuple[int, int], rng: np.random.Generator, dtype=np.float32, **params) -> np.ndarray:
        fan_in, fan_out = shape
        if self.distribution == "constant":
            return np.full(shape, params.get("value", 0.0), dtype=dtype)
        if self.mode == "none":
            std = params.get("stddev", 1.0)
        else:
            fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
            std = np.sqrt(self.scale / max(1.0, fan))
        if self.distribution == "uniform":
            limit = np.sqrt(3.0) * std
            values = rng.uniform(-limit, limit, size=shape)
        elif self.distribution == "truncated_normal":
            values = rng.standard_normal(size=shape)
            bad = np.abs(values) > 2.0
            while bad.any():  # redraw the tails: exact truncation, not clipping
                values[bad] = rng.standard_normal(size=int(bad.sum()))
                bad = np.abs(values) > 2.0
            values *= std / _TRUNCATED_STD
        else:
            values = rng.standard_normal(size=shape) * std
        return values.astype(dtype)


INITIALIZERS: Registry[Initializer] = Registry("initializer")


def _add(entry: Initializer) -> None:
    INITIALIZERS.add(entry.name, entry)


_add(Initializer("zeros", "all weights 0: every unit stays identical (symmetry never broken)",
                 distribution="constant", mode="none"))
_add(Initializer("constant", "all weights equal to 'value': the symmetry problem",
                 distribution="constant", mode="none",
                 params={"value": Param(0.1, "the value of every weight", low=-10.0, high=10.0)}))
_add(Initializer("random_normal", "N(0, stddev^2), stddev 1 by default: the pre-2010 default",
                 mode="none", params={"stddev": Param(1.0, "standard deviation", low=0.0, high=100.0,
                                                      low_open=True)}))
_add(Initializer("glorot_uniform", "Glorot/Xavier: variance 1/fan_avg, uniform", 1.0, "fan_avg", "uniform"))
_add(Initializer("glorot_normal", "Glorot/Xavier: variance 1/fan_avg, truncated normal", 1.0, "fan_avg",
                 "truncated_normal"))
_add(Initializer("he_uniform", "He: variance 2/fan_in, uniform", 2.0, "fan_in", "uniform"))
_add(Initializer("he_normal", "He: variance 2/fan_in, truncated normal", 2.0, "fan_in", "truncated_normal"))
_add(Initializer("he_avg_normal", "He with fan_avg: variance 2/fan_avg, truncated normal", 2.0, "fan_avg",
                 "truncated_normal"))
# Glorot & Bengio (2010) trained with their "standard" heuristic U[-1/sqrt(fan_in), 1/sqrt(fan_in)], variance
# 1/(3 fan_in): the initialization under which they saw gradients vanish (preset 01)
_add(Initializer("standard_uniform", "Glorot & Bengio's 'standard' U[-1/sqrt(fan_in), 1/sqrt(fan_in)]: "
                 "variance 1/(3 fan_in)", 1.0 / 3.0, "fan_in", "uniform"))
# Glorot & Bengio derive the x4 from the logistic's slope of 1/4 at 0 (its linear regime is 4 times flatter than
# tanh's); Table 11-1 of the 1st edition prints it on tanh instead (preset 02 runs both)
_add(Initializer("glorot_uniform_x4", "Glorot uniform with the limit times 4 (variance 16/fan_avg): the "
                 "logistic's variant", 16.0, "fan_avg", "uniform"))
_add(Initializer("lecun_uniform", "LeCun: variance 1/fan_in, uniform", 1.0, "fan_in", "uniform"))
_add(Initializer("lecun_normal", "LeCun: variance 1/fan_in, truncated normal", 1.0, "fan_in",
                 "truncated_normal"))
