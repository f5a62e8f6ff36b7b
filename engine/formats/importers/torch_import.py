"""PyTorch: a ``state_dict`` saved as safetensors, with the architecture given separately.

PyTorch users share weights without pickle as
``safetensors.torch.save_file(model.state_dict(), "model.safetensors")``.
A state_dict holds tensors only -- no activations, no layer order, no batch
norm epsilon -- so the rest comes from an experiment (``--experiment``:
its ``model`` section) or from ``--activations``, one entry per Linear layer:

    relu,relu,softmax              two hidden ReLU layers, softmax output
    bn+relu,relu+bn,softmax        batch norm before / after the activation
    leaky_relu:0.2,elu:0.7,rrelu:0.1:0.3,sigmoid   parameters after colons

(names are Descent's; ``sigmoid``, ``silu`` and ``log_softmax`` are accepted
too).  Tensors are grouped by module (``fc1.weight`` -> ``fc1``), modules
recognized by what they hold (Linear: a 2-D ``weight`` and an optional
``bias``; BatchNorm1d: ``running_mean``/``running_var``; PReLU: a 1-D
``weight`` alone) and matched in order: names sorted naturally (``2``
before ``10``), and the Linear layers must chain (each one's inputs are the
previous one's outputs; when the names do not sort in running order but the
shapes allow one order only, that order is used and reported).  ``N.weight``
(out, in) is transposed into ``layers.i.kernel`` (in, out).

Pickled files (``.pt``, ``.pth``, ``.bin``, ``.ckpt``) are never opened:
unpickling runs code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.catalog.activations import ACTIVATIONS, hidden_activation_names
from engine.errors import WeightsError
from engine.formats.importers.assemble import Imported
from engine.formats.importers.stack import BatchNorm, Stack
from engine.formats.safetensors_io import read_safetensors

PICKLED = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar", ".mar")
HOW_TO_SAVE = ("save the state_dict as safetensors instead (no pickle):\n"
               "    from safetensors.torch import save_file\n"
               "    save_file(model.state_dict(), \"model.safetensors\")\n"
               "and import that with --activations (e.g. relu,relu,softmax) or --experiment FILE")
ALIASES = {"sigmoid": "logistic", "silu": "swish", "identity": "linear", "none": "linear",
           "logsoftmax": "log_softmax"}
OUTPUTS = ("softmax", "logistic", "linear", "log_softmax")
TORCH_EPS, TORCH_MOMENTUM = 1e-5, 0.1
BN_PARTS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
MAX_SEARCH = 12


@dataclass
class LayerSpec:
    """One hidden layer as the architecture describes it."""
    activation: str
    params: dict = field(default_factory=dict)
    batch_norm: str = "none"
    epsilon: float = TORCH_EPS
    momentum: float = 1.0 - TORCH_MOMENTUM       # Descent's convention


def refuse_pickle(path: Path) -> None:
    raise WeightsError(f"{path}: {path.suffix} files are Python pickles; unpickling runs code, so Descent never "
                       f"opens them. In PyTorch, {HOW_TO_SAVE}")


def parse_activations(text: str) -> tuple[list, str]:
    """``--activations`` -> (hidden layer specs, output activation)."""
    tokens = [t.strip() for t in str(text).split(",") if t.strip()]
    if not tokens:
        raise WeightsError("--activations is empty; give one activation per Linear layer, e.g. relu,relu,softmax")
    hidden = []
    for j, token in enumerate(tokens[:-1]):
        bn = "none"
        if token.startswith("bn+"):
            bn, token = "before", token[3:]
        elif token.endswith("+bn"):
            bn, token = "after", token[:-3]
        name, *values = token.split(":")
        name = ALIASES.get(name.lower(), name.lower())
        if name not in hidden_activation_names():
            raise WeightsError(f"--activations entry {j + 1} ({tokens[j]!r}): {name!r} is not a hidden activation; "
                               f"choose from {', '.join(hidden_activation_names())} (with bn+ or +bn for batch norm "
                               f"before or after it)")
        keys = list(ACTIVATIONS.get(name).params)
        if name == "prelu":
            keys = []   # its slopes are in the file
        if len(values) > len(keys):
            raise WeightsError(f"--activations entry {j + 1} ({tokens[j]!r}): {name} takes "
                               f"{len(keys)} parameter(s) ({', '.join(keys) or 'none'})")
        try:
            params = {k: float(v) for k, v in zip(keys, values)}
        except ValueError:
            raise WeightsError(f"--activations entry {j + 1} ({tokens[j]!r}): parameters must be numbers") from None
        hidden.append(LayerSpec(name, params, bn))
    output = ALIASES.get(tokens[-1].lower(), tokens[-1].lower())
    if output not in OUTPUTS:
        raise WeightsError(f"--activations: the last entry is the output layer's activation: one of "
                           f"softmax, sigmoid, log_softmax or linear, got {tokens[-1]!r}")
    return hidden, output


def architecture_from_experiment(experiment: dict, source: str) -> tuple[list, str]:
    model = experiment["model"]
    hidden = [LayerSpec(c["activation"], dict(c["activation_params"]) if c["activation"] != "prelu" else {},
                        c["batch_norm"], c["bn_epsilon"], c["bn_momentum"]) for c in model["layers"]]
    output = model["output"]["activation"]
    if output == "auto":
        raise WeightsError(f"{source}: model.output.activation is 'auto' (it follows the data); for a PyTorch "
                           f"state_dict say what the output is: softmax, logistic or linear")
    return hidden, output


def _natural(name: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t)


def _modules(tensors: dict, path: Path) -> tuple[list, list, list, list]:
    """(linear, batch norm, prelu, ignored) modules in natural name order: (prefix, {part: (name, array)})."""
    groups: dict = {}
    for name, value in tensors.items():
        prefix, _, part = name.rpartition(".")
        groups.setdefault(prefix, {})[part] = (name, np.asarray(value))
    linear, bn, prelu, ignored = [], [], [], []
    for prefix in sorted(groups, key=_natural):
        parts = groups[prefix]
        keys = set(parts)
        label = repr(prefix or "(top level)")
        weight = parts.get("weight", (None, np.zeros(0)))[1]
        if {"running_mean", "running_var"} <= keys <= set(BN_PARTS) | {"num_batches_tracked"}:
            bn.append((prefix, parts))
        elif "weight" in keys and keys <= {"weight", "bias"} and weight.ndim == 2:
            linear.append((prefix, parts))
        elif keys == {"weight"} and weight.ndim == 1:
            prelu.append((prefix, parts))
        elif weight.ndim >= 3:
            raise WeightsError(f"{path}: module {label} has a weight of shape {weight.shape}: a convolution "
                               f"kernel, which is not representable in Descent's dense networks")
        else:
            names = ", ".join(n for n, _ in parts.values())
            raise WeightsError(f"{path}: module {label} ({names}) is not a Linear, BatchNorm1d or PReLU module; "
                               f"Descent cannot place it (LayerNorm, Embedding and the like are not representable)")
        for part, (name, arr) in parts.items():
            if part == "num_batches_tracked":
                ignored.append((name, "PyTorch's count of training batches; only used with momentum=None "
                                      "(a cumulative average), which Descent does not have"))
            elif not np.issubdtype(arr.dtype, np.floating):
                raise WeightsError(f"{path}: tensor {name!r} has dtype {arr.dtype}; weights are floats")
    return linear, bn, prelu, ignored


def _chains(linear: list) -> list:
    """Every order of the Linear modules in which each one's inputs are the previous one's outputs
    (at most two: one is the answer, two means ambiguous)."""
    shapes = [parts["weight"][1].shape for _, parts in linear]   # (out, in)
    found: list = []

    def extend(order: list, left: set) -> None:
        if len(found) > 1:
            return
        if not left:
            found.append(list(order))
            return
        for j in sorted(left):
            if not order or shapes[j][1] == shapes[order[-1]][0]:
                order.append(j)
                extend(order, left - {j})
                order.pop()

    extend([], set(range(len(linear))))
    return found


def _order(linear: list, path: Path, report) -> list:
    def chains(order):
        return all(linear[b][1]["weight"][1].shape[1] == linear[a][1]["weight"][1].shape[0]
                   for a, b in zip(order, order[1:]))

    natural = list(range(len(linear)))
    if chains(natural):
        return [linear[j] for j in natural]
    shapes = ", ".join(f"{p} {tuple(parts['weight'][1].shape)}" for p, parts in linear)
    found = _chains(linear) if len(linear) <= MAX_SEARCH else []
    if len(found) != 1:
        raise WeightsError(f"{path}: the Linear layers in name order do not chain (weights are (out, in): {shapes})"
                           + (" and their shapes fit several orders" if found else "")
                           + "; name them so they sort in the order they run (e.g. nn.Sequential's 0, 1, 2...)")
    ordered = [linear[j] for j in found[0]]
    report.convention(f"the Linear layers' names do not sort in the order they run; their shapes fit one order "
                      f"only: {' -> '.join(p for p, _ in ordered)}")
    return ordered


def read_torch(path, experiment: dict | None = None, activations: str | None = None) -> Imported:
    """The network a PyTorch state_dict (safetensors) holds, laid out by ``experiment`` or ``activations``."""
    path = Path(path)
    if path.suffix.lower() in PICKLED:
        refuse_pickle(path)
    if (experiment is None) == (activations is None):
        raise WeightsError(f"{path.name}: a PyTorch state_dict has no activations or layer order; give the "
                           f"architecture with either --activations (e.g. relu,relu,softmax) or --experiment FILE"
                           + (", not both" if experiment is not None else ""))
    tensors, metadata = read_safetensors(path)
    if tensors and all(re.match(r"^layers\.\d+\.", n) for n in tensors) and metadata.get("experiment"):
        raise WeightsError(f"{path}: this is a Descent weights file; use it as it is (--init-weights, predict, "
                           f"export) instead of importing it")
    if not tensors:
        raise WeightsError(f"{path} holds no tensors")
    if experiment is not None:
        hidden, output = architecture_from_experiment(experiment, path.name)
        given = "the experiment"
    else:
        hidden, output = parse_activations(activations)
        given = "--activations"
    stack = Stack(path.name)
    linear, bns, prelus, ignored = _modules(tensors, path)
    for name, reason in ignored:
        stack.report.ignore(name, reason)
    if len(linear) != len(hidden) + 1:
        raise WeightsError(f"{path}: the file has {len(linear)} Linear layer(s) "
                           f"({', '.join(p for p, _ in linear) or 'none'}), but {given} describes {len(hidden) + 1} "
                           f"({len(hidden)} hidden plus the output): give one activation per Linear layer")
    with_bn = [i for i, spec in enumerate(hidden) if spec.batch_norm != "none"]
    if len(bns) != len(with_bn):
        raise WeightsError(f"{path}: the file has {len(bns)} BatchNorm layer(s) "
                           f"({', '.join(p for p, _ in bns) or 'none'}), but {given} puts batch norm in "
                           f"{len(with_bn)} layer(s)" + ("; write bn+act (before the activation) or act+bn (after)"
                                                         if given == "--activations" else ""))
    with_prelu = [i for i, spec in enumerate(hidden) if spec.activation == "prelu"]
    if len(prelus) != len(with_prelu):
        raise WeightsError(f"{path}: the file has {len(prelus)} PReLU module(s), but {given} has {len(with_prelu)} "
                           f"prelu layer(s)")
    linear = _order(linear, path, stack.report)
    bn_of, prelu_of = dict(zip(with_bn, bns)), dict(zip(with_prelu, prelus))
    for i, (prefix, parts) in enumerate(linear):
        w_name, weight = parts["weight"]
        b_name, bias = parts.get("bias", (None, None))
        stack.dense(f"module {prefix!r} (Linear)", weight.T, bias, w_name, b_name, transposed=True)
        if i == len(hidden):
            if output != "linear":
                stack.activation(f"output activation {output} (from {given})", output)
            break
        spec = hidden[i]
        steps = {"none": ["act"], "before": ["bn", "act"], "after": ["act", "bn"]}[spec.batch_norm]
        for step in steps:
            if step == "bn":
                _batch_norm(stack, bn_of[i], spec)
            elif spec.activation != "linear":
                slopes = prelu_of.get(i)
                stack.activation(f"layer {i} activation {spec.activation} (from {given})", spec.activation,
                                 spec.params, slopes=None if slopes is None else slopes[1]["weight"][1],
                                 slope_name=None if slopes is None else slopes[1]["weight"][0])
    model, weights = stack.finish()
    _conventions(stack.report, hidden, experiment is not None)
    producer = str(metadata.get("format", "")) if isinstance(metadata, dict) else ""
    return Imported(path, "PyTorch state_dict (safetensors)",
                    f"safetensors format '{producer}'" if producer else "", model, weights, stack.report,
                    stack.n_inputs, defines=set())


def _batch_norm(stack: Stack, module: tuple, spec: LayerSpec) -> None:
    prefix, parts = module
    value = {BN_PARTS[p]: arr for p, (_, arr) in parts.items() if p in BN_PARTS}
    names = {BN_PARTS[p]: name for p, (name, _) in parts.items() if p in BN_PARTS}
    stack.batch_norm(f"module {prefix!r} (BatchNorm1d)",
                     BatchNorm(value.get("gamma"), value.get("beta"), value["moving_mean"], value["moving_variance"],
                               spec.epsilon, spec.momentum), names)


def _conventions(report, hidden: list, from_experiment: bool) -> None:
    report.convention("nn.Linear stores weight as (out_features, in_features); Descent's kernel is (in, out): "
                      "every weight is transposed")
    if not any(spec.batch_norm != "none" for spec in hidden):
        return
    report.convention("PyTorch's BatchNorm1d momentum m is the weight of the new batch; Descent's (and Keras's) "
                      "bn_momentum is the weight of the old average: bn_momentum = 1 - m (PyTorch's default 0.1 "
                      "is 0.9 here)")
    report.convention("PyTorch's running_var averages the unbiased batch variance, Descent's the biased one (as "
                      "Keras): inference is identical; fine-tuning's variance average differs by n/(n-1)")
    if from_experiment:
        eps = sorted({spec.epsilon for spec in hidden if spec.batch_norm != "none"})
        report.convention(f"a state_dict stores neither epsilon nor momentum: taken from the experiment "
                          f"(bn_epsilon {', '.join(f'{e:g}' for e in eps)})"
                          + ("; PyTorch's default is 1e-05, Descent's and Keras's 0.001: check which the model "
                             "was built with" if any(e != TORCH_EPS for e in eps) else ""))
    else:
        report.convention(f"a state_dict stores neither epsilon nor momentum: PyTorch's defaults assumed "
                          f"(eps={TORCH_EPS:g}, momentum={TORCH_MOMENTUM:g}, i.e. bn_momentum "
                          f"{1 - TORCH_MOMENTUM:g}); give --experiment with bn_epsilon if the model used another eps")
