"""Registry entries carry their behaviour (issue 11, item 5).

A throwaway activation and a throwaway optimizer are registered in this
process only, used end to end (schema, network, gradients, training, ONNX in
onnxruntime, Keras layer list) and removed again: adding one needs its kernel
and one registry entry, nothing in gui/ or engine/formats/.  The declarations
of the shipped entries are checked against what their kernels do, and the
modules that used to list activations by name are checked to name none.
"""
import ast
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from engine.catalog.activations import (ACTIVATIONS, Activation, ScalarKernel, hidden_activation_names,
                                        onnx_operator, register_activation)
from engine.catalog.optimizers import OPTIMIZERS, AdamW, make_optimizer, register_optimizer
from engine.errors import ExperimentError, WeightsError
from engine.formats.keras_h5 import keras_layers
from engine.formats.onnx_export import build_onnx
from engine.kernels import activations as codes
from engine.kernels import layout as K
from engine.kernels import optim
from engine.params import Param
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer

from helpers import network, random_problem
from test_formats import inputs, onnx_outputs, trained_like
from test_gradients import TOLERANCE, check_gradient

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ throwaway activations

def softsign(z, p0, p1):
    return z / (1.0 + abs(z))


def softsign_derivative(z, a, p0, p1):
    return (1.0 - abs(a)) ** 2          # from the output: needs uses_output=True


def isru(z, p0, p1):
    """Inverse square root unit z / sqrt(1 + alpha z^2); alpha in ACT_P0."""
    return z / math.sqrt(1.0 + p0 * z * z)


def isru_derivative(z, a, p0, p1):
    return (1.0 + p0 * z * z) ** -1.5  # from the input


def _isru_onnx(g, x, use):
    square = g.op("Mul", [g.op("Mul", [x, x]), g.const("alpha", use.params["alpha"])])
    return g.op("Div", [x, g.op("Sqrt", [g.op("Add", [square, g.const("one", 1.0)])])])


def make_softsign(uses_output=True):
    return Activation("softsign", codes.EXTENSION, "z / (1 + |z|): a gentler tanh", "glorot_uniform",
                      saturating=True, uses_output=uses_output,
                      kernel=ScalarKernel(softsign, softsign_derivative),
                      onnx=onnx_operator("Softsign"), keras_name="softsign")


def make_isru():
    return Activation("isru", codes.EXTENSION, "z / sqrt(1 + alpha z^2)", "glorot_uniform",
                      params={"alpha": Param(1.0, "how soon the curve bends", low=0.0, low_open=True)},
                      slots={"alpha": K.ACT_P0}, kernel=ScalarKernel(isru, isru_derivative), onnx=_isru_onnx,
                      keras_layer=lambda use: ("Activation", "keras.layers.Activation(lambda x: x / "
                                               f"keras.ops.sqrt(1 + {use.params['alpha']!r} * x * x))", []))


@pytest.fixture
def registered():
    """Register entries for one test and take them out again afterwards."""
    names = []

    def add(entry):
        register_activation(entry)
        names.append(entry.name)
        return entry

    yield add
    for name in names:
        ACTIVATIONS.remove(name)
    assert not set(names) & set(ACTIVATIONS.names())


@pytest.mark.parametrize("make,params", [(make_softsign, {}), (make_isru, {"alpha": 0.5})])
def test_a_throwaway_activation_trains_and_exports_to_onnx(registered, make, params):
    entry = registered(make())
    # the schema takes it (its choices are read from the registry, not frozen at import)
    layers = [{"units": 6, "activation": entry.name, "activation_params": params, "dropout": 0.2},
              {"units": 5, "activation": entry.name, "activation_params": params, "batch_norm": "after"}]
    resolved = resolve_experiment({"model": {"layers": layers}})
    assert resolved["model"]["layers"][0]["activation"] == entry.name
    # backprop through the compiled scalar functions, dropout and BN included
    net = network(layers)
    assert net.ints[0, K.ACT] == codes.EXTENSION and net.ints[0, K.ACT_FORWARD] != 0
    assert net.floats[0, K.ACT_P0] == params.get("alpha", 0.0)
    x, y = random_problem()
    assert check_gradient(net, x, y) < TOLERANCE
    # ONNX through the entry's mapping, run by onnxruntime
    net = trained_like(network(layers, n_inputs=5))
    x = inputs()
    diff = float(np.max(np.abs(onnx_outputs(build_onnx(net), x) - net.predict(x))))
    assert diff < 1e-5, diff
    # Keras through the entry's mapping
    kinds = [cls for cls, _, _ in keras_layers(net)]
    assert kinds.count("Activation") == 2


def test_a_throwaway_activation_runs_in_float32_training(registered):
    registered(make_softsign())
    finals = {}
    for dtype in ("float32", "float64"):
        exp = resolve_experiment({"seed": 3, "data": {"name": "moons", "n_samples": 200},
                                  "model": {"layers": [{"units": 8, "activation": "softsign"}]},
                                  "optimizer": {"name": "sgd", "learning_rate": 0.1},
                                  "training": {"epochs": 2, "dtype": dtype, "shuffle": False}})
        finals[dtype] = list(Trainer(exp).run())[-1].weights
    for name, w64 in finals["float64"].items():
        assert finals["float32"][name].dtype == np.float32
        assert np.allclose(finals["float32"][name], w64, atol=1e-4), name


def test_the_kernel_follows_the_entrys_uses_output(registered):
    """softsign's derivative reads the output; declared as not needing it,
    the kernel feeds it the output after dropout and the gradient is wrong."""
    registered(make_softsign(uses_output=False))
    net = network([{"units": 6, "activation": "softsign", "dropout": 0.4}])
    x, y = random_problem()
    assert check_gradient(net, x, y) > 100 * TOLERANCE


def test_a_missing_compiled_function_is_refused_not_called(registered):
    registered(make_softsign())
    net = network([{"units": 4, "activation": "softsign"}])
    net.ints[0, K.ACT_FORWARD] = 0
    with pytest.raises(ValueError, match="compiled function is missing"):
        net.predict(np.zeros((2, 3)))


def test_an_unregistered_activation_is_refused_again():
    register_activation(make_softsign())
    ACTIVATIONS.remove("softsign")
    with pytest.raises(ExperimentError, match="softsign"):
        resolve_experiment({"model": {"layers": [{"units": 4, "activation": "softsign"}]}})


def test_inconsistent_declarations_are_refused():
    bad = [
        Activation("bad", codes.EXTENSION, "no kernel", "he_normal"),
        Activation("bad", codes.RELU, "kernel on a built-in code", "he_normal",
                   kernel=ScalarKernel(softsign, softsign_derivative)),
        Activation("bad", codes.RELU, "slot of an unknown param", "he_normal", slots={"beta": K.ACT_P0}),
        Activation("bad", codes.LEAKY_RELU, "slot outside the activation columns", "he_normal",
                   params={"alpha": Param(0.1, "slope")}, slots={"alpha": K.DROPOUT}),
        Activation("bad", codes.LINEAR, "output without loss", "he_normal", output=True),
    ]
    for entry in bad:
        with pytest.raises(ValueError, match="activation 'bad'"):
            register_activation(entry)
    assert "bad" not in ACTIVATIONS


def test_an_activation_without_export_mappings_is_named_in_the_error(registered):
    registered(dataclasses.replace(make_softsign(), onnx=None, keras_name=None))
    net = network([{"units": 4, "activation": "softsign"}])
    with pytest.raises(WeightsError, match="'softsign' has no ONNX mapping.*registry entry"):
        build_onnx(net)
    with pytest.raises(WeightsError, match="'softsign' has no Keras mapping.*registry entry"):
        keras_layers(net)


# ------------------------------------------------------------------ shipped entries vs kernels

@pytest.mark.parametrize("name", hidden_activation_names())
def test_uses_output_matches_what_the_backward_kernel_reads(name):
    """Backward with a wrong ``out`` changes the result exactly when the
    entry declares that its backward reads the output."""
    entry = ACTIVATIONS.get(name)
    net = network([{"units": 5, "activation": name}])
    rng = np.random.default_rng(0)
    pre = rng.normal(size=(7, 5))
    out = np.empty_like(pre)
    slopes = np.full(5, 0.1)
    codes.activation_forward(net.ints, net.floats, 0, pre, out, slopes)
    dout = rng.normal(size=pre.shape)

    def backward(o):
        dpre, dslopes = np.empty_like(pre), np.zeros(5)
        codes.activation_backward(net.ints, net.floats, 0, pre, o, dout, slopes, dpre, dslopes)
        return dpre

    reads_output = not np.array_equal(backward(out), backward(out + 0.5))
    assert reads_output == entry.uses_output
    assert net.ints[0, K.ACT_USES_OUTPUT] == int(entry.uses_output)


def test_parameters_reach_their_named_columns():
    net = network([{"units": 3, "activation": "rrelu", "activation_params": {"lower": 0.1, "upper": 0.3}},
                   {"units": 3, "activation": "elu", "activation_params": {"alpha": 0.7}},
                   {"units": 3, "activation": "prelu", "activation_params": {"alpha_initializer": 0.2}}])
    assert (net.floats[0, K.ACT_LOWER], net.floats[0, K.ACT_UPPER]) == (0.1, 0.3)
    assert (net.floats[1, K.ACT_ALPHA], net.floats[1, K.ACT_P1]) == (0.7, 0.0)
    assert (net.floats[2, K.ACT_P0], net.floats[2, K.ACT_P1]) == (0.0, 0.0)   # PReLU's slopes are weights
    assert np.all(net.tensor("layers.2.prelu.alpha") == 0.2)
    with pytest.raises(ExperimentError, match=r"layers\[0\]\.activation_params\.lower must be <= upper"):
        resolve_experiment({"model": {"layers": [{"units": 3, "activation": "rrelu",
                                                  "activation_params": {"lower": 0.4, "upper": 0.2}}]}})


def _activation_name_checks(path: Path) -> list[str]:
    """Places in a module that compare with, or key a dict by, an activation's name."""
    names = set(ACTIVATIONS.names())
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            literals = [c for o in operands for c in ([o] if isinstance(o, ast.Constant) else
                                                       getattr(o, "elts", []))]
        elif isinstance(node, ast.Dict):
            literals = [k for k in node.keys if k is not None]
        else:
            continue
        found += [f"{path.name}:{node.lineno} {c.value!r}" for c in literals
                  if isinstance(c, ast.Constant) and c.value in names]
    return found


def test_no_module_outside_the_catalogue_names_an_activation(tmp_path):
    modules = ["engine/training/network.py", "engine/formats/onnx_export.py", "engine/formats/keras_h5.py",
               "engine/spec/experiment.py"]
    assert [hit for m in modules for hit in _activation_name_checks(ROOT / m)] == []
    # the check does find such code
    sample = tmp_path / "sample.py"
    sample.write_text('def f(name):\n    return name in ("elu", "x") or {"softmax": 1}.get(name)\n')
    assert len(_activation_name_checks(sample)) == 2


# ------------------------------------------------------------------ a throwaway optimizer

class NAdamW(AdamW):
    """Nadam with AdamW's decoupled weight decay: only flags on the Adam kernel."""

    name = "nadamw"
    title = "NAdamW (test)"
    fixed_hyper = {optim.H_NESTEROV: 1.0}


@pytest.fixture
def nadamw():
    register_optimizer(NAdamW)
    yield NAdamW
    OPTIMIZERS.remove("nadamw")


def test_a_throwaway_optimizer_runs_in_the_training_loop(nadamw):
    opt = make_optimizer({"name": "nadamw", "weight_decay": 0.1})
    hyper = opt.hyper_array()
    assert (hyper[optim.H_NESTEROV], hyper[optim.H_WEIGHT_DECAY], hyper[optim.H_EPSILON]) == (1.0, 0.1, 1e-8)
    assert nadamw.cycled == "beta_1"
    exp = resolve_experiment({"seed": 1, "data": {"name": "moons", "n_samples": 100},
                              "model": {"layers": [{"units": 4, "activation": "tanh"}]},
                              "optimizer": {"name": "nadamw", "learning_rate": 0.01},
                              "training": {"epochs": 1, "batch_size": 100, "shuffle": False}})
    events = list(Trainer(exp).run())
    assert np.all(np.isfinite(events[-1].weights["layers.0.kernel"]))


def test_optimizer_declarations_are_checked():
    class NoTitle(AdamW):
        name = "no_title"

    class BadSlot(AdamW):
        name = "bad_slot"
        title = "Bad slot"
        hyper_slots = {"gamma": optim.H_EPSILON}

    class Clash(AdamW):
        name = "clash"
        title = "Clash"
        fixed_hyper = {optim.H_EPSILON: 1.0}

    for cls, message in ((NoTitle, "title"), (BadSlot, "unknown hyperparameters"), (Clash, "distinct")):
        with pytest.raises(ValueError, match=message):
            register_optimizer(cls)
        assert cls.name not in OPTIMIZERS
