"""Malformed and extreme experiment files: every one runs or is rejected clearly.

Hypothesis mutates a valid experiment (wrong types, unknown and missing keys,
NaN/inf, negative or huge sizes, empty layer lists, unknown names, absurd
nesting) and also feeds raw bytes.  The only acceptable outcomes are a
resolved experiment that trains for a couple of steps, or an
ExperimentError / DescentError whose message names a key or the file.
"""
import collections
import copy
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import DescentError, ExperimentError
from engine.spec.experiment import MAX_FILE_BYTES, parse_experiment_text, resolve_experiment
from engine.training.trainer import Trainer

BASE = {
    "format_version": 1, "name": "fuzz", "seed": 1,
    "data": {"name": "moons", "n_samples": 60, "noise": 0.1, "validation_split": 0.2},
    "model": {"layers": [{"units": 4, "activation": "relu", "batch_norm": "before", "dropout": 0.1},
                         {"units": 3, "activation": "leaky_relu", "activation_params": {"alpha": 0.2}}],
              "output": {"activation": "auto"}},
    "loss": "auto",
    "optimizer": {"name": "adam", "learning_rate": 0.01, "clipnorm": 1.0},
    "schedule": {"name": "exponential", "s": 100},
    "training": {"epochs": 2, "batch_size": 8, "early_stopping": {"patience": 1}},
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["relu", "adam", "he_normal", "before", "softmax", "fashion_mnist", "spirals", "float64",
                     "", "nan", "constant", "onecycle", "val_accuracy"]),
    st.sampled_from([0, -1, 1, 2**31, 10**9, 0.5, 1.0, -0.0, 1e-300, 1e300]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from paths(value, prefix + (i,))


ALL_PATHS = list(paths(BASE))[1:]


@st.composite
def mutated(draw):
    exp = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = exp
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["replace", "delete", "add_unknown", "nest"]))
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif action == "add_unknown" and isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
            elif action == "nest":
                node = draw(values)
                for _ in range(draw(st.integers(1, 60))):
                    node = {"x": [node]}
                parent[path[-1]] = node
        except (KeyError, IndexError, TypeError):
            continue
    return exp


@pytest.fixture(autouse=True)
def small_memory_limit(monkeypatch):
    monkeypatch.setenv("DESCENT_MEMORY_LIMIT_MB", "256")


def try_experiment(text: str):
    try:
        exp = parse_experiment_text(text, "fuzz.json")
    except ExperimentError as exc:
        assert str(exc).startswith("fuzz.json: ") and len(str(exc)) > 20
        return "rejected"
    try:
        events = list(Trainer(exp, max_steps=2).run())
    except DescentError as exc:
        assert str(exc)
        return "rejected at build"
    assert events[-1].status in ("finished", "diverged", "early_stopped")
    return "ran"


# The default profile replays the same 1,000 examples every run (derandomized: CI is reproducible).
# DESCENT_FUZZ=nightly explores fresh ones: 20,000 new random examples per run.
NIGHTLY = os.environ.get("DESCENT_FUZZ") == "nightly"
MUTATED_EXAMPLES = 20_000 if NIGHTLY else 1_000
# Of the fixed 1,000, 86 train (measured when this floor was set); a change that makes far fewer
# of them reach training (a stricter validator, a broken mutation strategy) would leave the fuzz
# test checking only rejections, so it fails below this floor (2.5% of the examples).
MIN_TRAINED_FRACTION = 0.025


def test_mutated_experiments_run_or_are_rejected_with_a_message():
    outcomes = collections.Counter()

    @settings(max_examples=MUTATED_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=not NIGHTLY, database=None)
    @given(mutated())
    def check(exp):
        try:
            text = json.dumps(exp, allow_nan=True)
        except (ValueError, RecursionError):
            outcomes["not JSON"] += 1
            return
        outcomes[try_experiment(text)] += 1

    check()
    print(dict(outcomes))
    assert sum(outcomes.values()) >= 0.9 * MUTATED_EXAMPLES   # Hypothesis ran (nearly) all the examples
    assert outcomes["ran"] >= MIN_TRAINED_FRACTION * MUTATED_EXAMPLES, dict(outcomes)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_rejected_cleanly(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # load_experiment reports undecodable files; see test_non_utf8_file
    try:
        parse_experiment_text(text, "fuzz.json")
    except ExperimentError:
        pass


def test_non_utf8_and_huge_files(tmp_path):
    from engine.spec.experiment import load_experiment

    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(ExperimentError, match="not UTF-8"):
        load_experiment(str(bad))
    huge = tmp_path / "huge.json"
    huge.write_text('{"description": "' + "x" * (MAX_FILE_BYTES + 10) + '"}')
    with pytest.raises(ExperimentError, match="too large"):
        load_experiment(str(huge))


def test_deep_nesting_and_nan_literals():
    with pytest.raises(ExperimentError):
        parse_experiment_text("[" * 100000 + "]" * 100000, "deep.json")
    with pytest.raises(ExperimentError, match="NaN"):
        parse_experiment_text('{"seed": NaN}', "nan.json")


def test_resolution_is_idempotent():
    once = resolve_experiment(BASE)
    assert resolve_experiment(once) == once
