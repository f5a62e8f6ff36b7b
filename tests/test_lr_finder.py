"""The learning-rate finder: the sweep, the suggestion, and a network left exactly as it was."""
import dataclasses
import json
import math

import numpy as np
import pytest

from engine import cli
from engine.events import RunFinished
from engine.spec.experiment import resolve_experiment
from engine.training.lr_finder import apply_suggestion, find_learning_rate
from engine.training.trainer import Trainer


def experiment(**changes):
    exp = {"seed": 3, "data": {"name": "moons", "n_samples": 600, "noise": 0.15},
           "model": {"layers": [{"units": 32, "activation": "elu", "batch_norm": "before", "dropout": 0.1},
                                {"units": 32, "activation": "rrelu"}]},
           "optimizer": {"name": "momentum", "learning_rate": 0.05, "momentum": 0.9},
           "training": {"epochs": 3, "batch_size": 16}}
    exp.update(changes)
    return resolve_experiment(exp)


def snapshot(t: Trainer) -> dict:
    return {"theta": t.net.theta.copy(), "buffers": t.net.buffers.copy(), "slots": t.opt_state.slots.copy(),
            "opt_step": t.opt_state.step, "step": t.step, "epoch": t.epoch, "rng": t.rng.copy(),
            "shuffle": json.dumps(t.shuffle_rng.bit_generator.state, default=str),
            "schedule": t.schedule}


def assert_same(a: dict, b: dict) -> None:
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key] or a[key] is b[key], key


def test_weights_and_every_state_are_restored_after_the_sweep():
    t = Trainer(experiment())
    before = snapshot(t)
    weights = t.net.state_dict()
    result = find_learning_rate(t)
    assert_same(before, snapshot(t))
    after = t.net.state_dict()
    assert weights.keys() == after.keys()
    assert all(np.array_equal(weights[k], after[k]) for k in weights)
    assert result.lrs.size == result.losses.size >= 10


def test_training_after_the_finder_is_bit_identical_to_training_without_it():
    plain = list(Trainer(experiment()).run())[-1]
    t = Trainer(experiment())
    find_learning_rate(t, steps=150)
    swept = list(t.run())[-1]
    assert isinstance(plain, RunFinished) and isinstance(swept, RunFinished)
    for name in plain.weights:
        assert np.array_equal(plain.weights[name], swept.weights[name]), name


def test_a_half_trained_network_is_restored_too():
    t = Trainer(experiment(training={"epochs": 4, "batch_size": 16, "max_steps": 40}))
    list(t.run())
    before = snapshot(t)
    find_learning_rate(t, steps=60)
    assert_same(before, snapshot(t))


def test_the_sweep_grows_exponentially_stops_at_the_blow_up_and_suggests_a_sane_rate():
    r = find_learning_rate(experiment(), min_lr=1e-5, max_lr=100.0, steps=300)
    assert np.all(np.diff(r.lrs) > 0)
    ratios = r.lrs[1:] / r.lrs[:-1]
    assert np.allclose(ratios, ratios[0])                       # exponential: constant ratio per step
    assert math.isclose(r.lrs[0], 1e-5)
    assert r.stopped_early and r.lrs[-1] < 100.0               # the loss blew up before 100
    i = int(np.argmin(r.smoothed))
    assert r.smoothed[i] < 0.8 * r.smoothed[0]                 # the loss did fall somewhere in the sweep
    # the book's rule: the turning point is where the smoothed loss stops falling and climbs;
    # the suggestion is ten times lower
    assert r.turning_lr == r.lrs[i] and np.all(r.smoothed[i + 1:] > r.smoothed[i])
    assert math.isclose(r.suggested_lr, r.turning_lr / 10) and "turning point / 10" in r.rule
    assert 1e-5 < r.suggested_lr < 1.0 and r.steepest_lr <= r.turning_lr
    markers = r.markers()                                      # what a plot marks, labelled
    assert list(markers) == ["turning point", "suggested (turning point / 10)"]
    assert markers["turning point"] == (r.turning_lr, r.smoothed[i])
    lr, loss = markers["suggested (turning point / 10)"]
    j = int(np.searchsorted(r.lrs, lr))                        # on the curve, between two sweep points
    assert lr == r.suggested_lr and min(r.smoothed[j - 1:j + 1]) <= loss <= max(r.smoothed[j - 1:j + 1])


def test_the_suggestion_feeds_a_1cycle_schedule_or_the_learning_rate():
    r = find_learning_rate(experiment(), steps=200)
    one = apply_suggestion(experiment(schedule={"name": "onecycle"}), r)
    # the book picks 1cycle's peak like a good constant rate: ten times below the turning point
    assert one["schedule"]["max_lr"] == r.suggested_lr < r.turning_lr and one["optimizer"]["learning_rate"] == 0.05
    plain = apply_suggestion(experiment(), r)
    assert plain["optimizer"]["learning_rate"] == r.suggested_lr
    with pytest.raises(ValueError):
        apply_suggestion(experiment(), dataclasses.replace(r, suggested_lr=float("nan")))


def test_a_compare_variant_uses_the_finder_before_its_1cycle_run(tmp_path):
    from helpers import run_comparison

    exp = resolve_experiment({**experiment(), "compare": {"variants": [
        {"name": "1cycle", "overrides": {"schedule": {"name": "onecycle"}}, "lr_finder": {"steps": 100}}],
        "seeds": [1]}})
    summary = run_comparison(exp, tmp_path, workers=1)
    found = summary["variants"]["1cycle"]["lr_found"]
    assert len(found) == 1 and 1e-5 < found[0] < 10
    recorded = json.loads((tmp_path / "1cycle-seed1" / "experiment.json").read_text())
    assert recorded["schedule"]["name"] == "onecycle" and recorded["schedule"]["max_lr"] == found[0]


def test_the_cli_prints_the_sweep_and_writes_it(tmp_path, capsys):
    path = tmp_path / "exp.json"
    path.write_text(json.dumps({"data": {"name": "moons", "n_samples": 400},
                                "model": {"layers": [{"units": 16, "activation": "elu"}]},
                                "optimizer": {"name": "sgd"}, "training": {"batch_size": 16}}))
    out = tmp_path / "sweep.csv"
    assert cli.main(["lr-find", str(path), "--steps", "120", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "suggested learning rate:" in text and "10x below the turning point" in text
    assert "turning point (lowest smoothed loss, where the loss starts to climb)" in text
    lines = out.read_text().splitlines()
    assert lines[0] == "learning_rate,loss,smoothed" and 10 < len(lines) <= 121
    assert cli.main(["lr-find", str(path), "--min-lr", "1", "--max-lr", "0.1"]) == 2
