"""The activation catalogue.

Each entry names the compiled code that computes it, its parameters, the
initializer Table 11-1 pairs it with, and which diagnostics apply (dead units
for the ReLU family, saturation for the squashing functions).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.kernels import activations as codes
from engine.params import Param
from engine.registry import Registry


@dataclass(frozen=True)
class Activation:
    name: str
    code: int
    doc: str
    default_initializer: str
    params: dict = field(default_factory=dict)   # name -> Param
    relu_family: bool = False                    # units can die (output 0 for every input)
    saturating: bool = False                     # outputs bounded: saturation is reported
    hidden: bool = True                          # usable in hidden layers
    output: bool = False                         # usable as the output activation
    learns_slopes: bool = False                  # PReLU: one trainable slope per unit


ACTIVATIONS: Registry[Activation] = Registry("activation")


def _add(entry: Activation) -> None:
    ACTIVATIONS.add(entry.name, entry)


_add(Activation("linear", codes.LINEAR, "identity: no non-linearity (regression outputs)",
                "glorot_uniform", output=True))
_add(Activation("logistic", codes.LOGISTIC, "sigmoid 1/(1+e^-z): saturates at 0 and 1, mean 0.5",
                "glorot_uniform", saturating=True, output=True))
_add(Activation("tanh", codes.TANH, "hyperbolic tangent: saturates at -1 and 1, zero-centred",
                "glorot_uniform", saturating=True))
_add(Activation("relu", codes.RELU, "max(0, z): cheap, no saturation for z > 0, but units can die",
                "he_normal", relu_family=True))
_add(Activation("leaky_relu", codes.LEAKY_RELU, "z for z > 0, alpha*z otherwise: never quite dies",
                "he_normal", relu_family=True,
                params={"alpha": Param(0.01, "slope for z < 0 (0.01 usual, 0.2 often better)",
                                       low=0.0, high=1.0)}))
_add(Activation("rrelu", codes.RRELU, "leaky ReLU whose slope is drawn at random per unit and step "
                "in training and fixed at the mean at inference (acts as a regularizer)",
                "he_normal", relu_family=True,
                params={"lower": Param(1 / 8, "smallest random slope", low=0.0, high=1.0),
                        "upper": Param(1 / 3, "largest random slope", low=0.0, high=1.0)}))
_add(Activation("prelu", codes.PRELU, "leaky ReLU whose slope is learned, one per unit",
                "he_normal", relu_family=True, learns_slopes=True,
                params={"alpha_initializer": Param(0.25, "initial slope of every unit", low=0.0, high=1.0)}))
_add(Activation("elu", codes.ELU, "z for z > 0, alpha*(e^z - 1) otherwise: smooth, negative mean possible",
                "he_normal", relu_family=True,
                params={"alpha": Param(1.0, "value approached for very negative z is -alpha",
                                       low=0.0, high=10.0)}))
_add(Activation("selu", codes.SELU, "scaled ELU: with LeCun init and standardized inputs, a plain "
                "dense stack keeps mean 0 and std 1 in every layer", "lecun_normal"))
_add(Activation("gelu", codes.GELU, "z * Phi(z) (Gaussian CDF): smooth ReLU-like curve", "he_normal"))
_add(Activation("swish", codes.SWISH, "z * sigmoid(z): smooth, non-monotonic ReLU-like curve", "he_normal"))
_add(Activation("softmax", codes.SOFTMAX, "normalized exponentials: class probabilities (output only)",
                "glorot_uniform", hidden=False, output=True))


def hidden_activation_names() -> list[str]:
    return [name for name, a in ACTIVATIONS.items() if a.hidden]
