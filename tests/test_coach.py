"""The coach: every detector fires on the symptom it names, a healthy run gets no finding,
and every "try it" turns into a valid experiment that changes what the finding is about."""
import math

import numpy as np
import pytest

from engine.coach import DETECTORS, THRESHOLDS, Coach, Finding, threshold
from engine.spec.overrides import apply_overrides
from engine.events import EpochEnd, LayerInfo, RunFinished, RunStarted, StepMetrics
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer

MOONS = {"name": "moons", "n_samples": 1000, "noise": 0.2}
FASHION = {"name": "fashion_mnist", "per_class": 100, "val_per_class": 20, "test_per_class": 5}


def layers(n, units, activation, **kw):
    return [dict(units=units, activation=activation, **kw) for _ in range(n)]


def experiment(data, hidden, optimizer, epochs=3, seed=1, **training):
    return resolve_experiment({"seed": seed, "data": data, "model": {"layers": hidden}, "optimizer": optimizer,
                               "training": {"epochs": epochs, "batch_size": 32, **training}})


def watch(exp, max_steps=None) -> list[Finding]:
    coach = Coach()
    for event in Trainer(exp, max_steps=max_steps).run():
        coach.observe(event)
    return coach.findings


def detectors(findings) -> set:
    return {f.detector for f in findings}


def check_try_it(finding: Finding, exp: dict) -> dict:
    """The "try it" overrides give a valid experiment that differs from the original."""
    assert finding.try_it and finding.try_it_label and finding.seen and finding.advice
    changed = apply_overrides(exp, finding.try_it)
    assert changed != dict(exp, compare=None, stages=None)
    return changed


# ----------------------------------------------------------------------------- healthy runs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_healthy_run_triggers_nothing(seed):
    exp = experiment(MOONS, layers(3, 32, "elu"), {"name": "adam", "learning_rate": 0.01}, epochs=5, seed=seed)
    assert watch(exp) == []


@pytest.mark.parametrize("seed", [42, 43, 44])
def test_the_default_experiment_triggers_nothing(seed):
    """The window opens on it: the book's recommended configuration must not be flagged."""
    from engine.spec.experiment import default_experiment

    assert watch(resolve_experiment(dict(default_experiment(), seed=seed))) == []


@pytest.mark.parametrize("seed", [42, 43, 44])
def test_the_overfitting_preset_is_reported_as_overfitting(seed):
    from engine.spec.experiment import load_experiment

    exp = load_experiment("presets/10-regularization.json")
    exp = dict(exp, seed=seed, compare=None)    # the base: no regularization
    assert "overfitting" in detectors(watch(resolve_experiment(exp)))


def test_a_healthy_fashion_run_triggers_nothing():
    exp = experiment(dict(FASHION, per_class=300), layers(2, 100, "elu", batch_norm="before"),
                     {"name": "nesterov", "learning_rate": 0.01, "momentum": 0.9}, epochs=3)
    assert watch(exp) == []


# ----------------------------------------------------------------------------- real runs per detector


def test_vanishing_gradients_in_a_deep_logistic_net_with_glorot_init():
    exp = experiment(MOONS, layers(10, 100, "logistic", initializer="glorot_uniform"),
                     {"name": "sgd", "learning_rate": 0.01}, log_every=2)
    found = watch(exp, max_steps=40)
    f = next(f for f in found if f.detector == "vanishing_gradients")
    assert f.layers == (0,) and f.severity == "problem" and "of the output layer's" in f.seen
    assert f.seen.startswith("the gradient reaching layer 1 is")   # counted as the model list counts
    changed = check_try_it(f, exp)
    assert {l["activation"] for l in changed["model"]["layers"]} == {"elu"}
    assert {l["initializer"] for l in changed["model"]["layers"]} == {"he_normal"}


def test_saturated_units_with_the_old_normal_init():
    exp = experiment(FASHION, layers(10, 100, "logistic", initializer="random_normal"),
                     {"name": "sgd", "learning_rate": 0.01}, log_every=2)
    found = watch(exp, max_steps=20)
    f = next(f for f in found if f.detector == "saturation")
    assert "vanishing_gradients" not in detectors(found)   # the gradients are not tiny: saturation is the story
    changed = check_try_it(f, exp)
    assert {l["initializer"] for l in changed["model"]["layers"]} == {"glorot_uniform"}


def test_dying_relus_at_a_high_learning_rate():
    exp = experiment(dict(FASHION, per_class=200), layers(8, 100, "relu"), {"name": "adam", "learning_rate": 0.02})
    found = watch(exp)
    f = next(f for f in found if f.detector == "dead_relus")
    assert f.layers and "output 0 for every probe example" in f.seen
    assert "comatose_units" not in detectors(found)   # a dead ReLU is comatose too: the dead finding says it
    worst = int(f.seen.split("of layer ")[1].split("'")[0])
    assert f"dead: {', '.join(str(i + 1) for i in f.layers)})" in f.seen and worst - 1 in f.layers
    changed = check_try_it(f, exp)
    assert all(l["activation"] == "leaky_relu" and l["activation_params"]["alpha"] == 0.2
               for l in changed["model"]["layers"])


def test_comatose_leaky_units_are_told_apart_from_dead_ones():
    # the same net and rate as the dying ReLUs above, with leaky ReLUs: no unit can output 0, but
    # many sit on the negative side for every probe example
    exp = experiment(dict(FASHION, per_class=200), layers(8, 100, "leaky_relu"),
                     {"name": "adam", "learning_rate": 0.02})
    found = watch(exp)
    assert "dead_relus" not in detectors(found)
    f = next(f for f in found if f.detector == "comatose_units")
    assert f.layers and 0 not in f.layers and "not dead" in f.seen and "can wake up" in f.advice
    assert f"comatose: {', '.join(str(i + 1) for i in f.layers)})" in f.seen
    assert check_try_it(f, exp)["optimizer"]["learning_rate"] == pytest.approx(0.002)


def test_flat_loss_with_a_tiny_learning_rate():
    exp = experiment(MOONS, layers(3, 32, "elu"), {"name": "sgd", "learning_rate": 1e-5}, epochs=8)
    found = watch(exp)
    assert detectors(found) == {"flat_loss"}
    changed = check_try_it(found[0], exp)
    assert changed["optimizer"]["learning_rate"] == pytest.approx(1e-4)


def test_a_climbing_loss_with_too_large_a_learning_rate():
    exp = experiment(MOONS, layers(2, 32, "tanh"), {"name": "momentum", "learning_rate": 2.0, "momentum": 0.9},
                     epochs=20)   # the climb is judged on blocks of >= 1,024 examples: a few epochs of moons
    found = watch(exp)
    f = next(f for f in found if f.detector == "learning_rate_too_high")
    assert "rose to" in f.seen
    assert check_try_it(f, exp)["optimizer"]["learning_rate"] == pytest.approx(0.2)


def test_a_bouncing_loss_at_a_high_learning_rate_is_reported():
    exp = experiment(MOONS, layers(2, 32, "tanh"), {"name": "momentum", "learning_rate": 0.5, "momentum": 0.9},
                     epochs=20)
    f = next(f for f in watch(exp) if f.detector == "learning_rate_too_high")
    assert "swings" in f.seen


def test_a_diverging_run_is_reported_as_exploding_gradients():
    exp = experiment(MOONS, layers(8, 64, "relu", initializer="random_normal", initializer_params={"stddev": 0.5}),
                     {"name": "sgd", "learning_rate": 0.01})
    found = watch(exp)
    f = next(f for f in found if f.detector == "exploding_gradients")
    assert "diverged" in f.seen
    changed = check_try_it(f, exp)
    assert changed["optimizer"]["global_clipnorm"] == 1.0


# ----------------------------------------------------------------------------- synthetic event streams


def _infos(n_hidden, activation="elu"):
    infos = [LayerInfo(i, f"layers.{i}", 10, 10, activation, "none", True, activation in ("relu", "elu"),
                       activation in ("logistic", "tanh"), 110) for i in range(n_hidden)]
    infos.append(LayerInfo(n_hidden, f"layers.{n_hidden}", 2, 10, "softmax", "none", True, False, False, 22))
    return tuple(infos)


def _started(exp, steps_per_epoch=10, run_id=7):
    n = len(exp["model"]["layers"])
    return RunStarted(run_id, exp, _infos(n), 1000, steps_per_epoch, 1000, "classification", 2, ("a", "b"), 2,
                      None, np.linspace(-6, 6, 49))


def _step(step, losses, grads, run_id=7):
    L = len(grads)
    nan = np.full(L, np.nan)
    return StepMetrics(run_id, step, step / 10, float(np.mean(losses)), np.asarray(losses, float), 0.0, 0.01,
                       math.nan, np.asarray(grads, float), np.zeros(L), np.full(L, 1e-3), nan, nan, nan, nan,
                       np.zeros(L), np.ones(L), nan, np.zeros((L, 48)), 100.0, 1.0)


BASE = resolve_experiment({"data": MOONS, "model": {"layers": layers(2, 10, "elu")},
                           "optimizer": {"name": "sgd", "learning_rate": 0.1}})


def test_growing_gradient_norms_are_reported_before_any_nan():
    coach = Coach()
    coach.observe(_started(BASE))
    found = []
    for k in range(12):
        norm = 10.0 ** (k / 2)            # x10 every two records, always rising
        found += coach.observe(_step(10 * (k + 1), [0.5 * 0.9 ** k] * 10, [norm, norm, norm]))
    assert [f.detector for f in found] == ["exploding_gradients"]
    assert "still rising" in found[0].seen
    assert found[0].step > 40             # needs the growth factor and persist_records consecutive rises
    assert check_try_it(found[0], BASE)["optimizer"]["global_clipnorm"] == 1.0


def test_a_nan_loss_is_reported_as_exploding_and_only_once():
    coach = Coach()
    coach.observe(_started(BASE))
    first = coach.observe(_step(10, [0.5, float("nan")], [1.0, 1.0, 1.0]))
    again = coach.observe(RunFinished(7, "diverged", "NaN at step 10", 10, 1, {}, {}))
    assert [f.detector for f in first] == ["exploding_gradients"] and again == []


def test_the_bouncing_loss_is_judged_on_blocks_of_enough_examples_to_average_out_minibatch_noise():
    # (batch size, steps per epoch) -> (block, blocks per coarse block): 1,024 examples at least
    for (batch, spe), (block, group) in {(32, 80): (8, 4), (16, 57): (8, 8), (256, 1000): (100, 1),
                                         (2048, 20): (8, 1)}.items():
        coach = Coach()
        exp = apply_overrides(BASE, {"training": {"batch_size": batch}})
        coach.observe(_started(exp, steps_per_epoch=spe))
        assert (coach.runs[7].block_steps, coach.runs[7].coarse_group) == (block, group), batch


def test_an_oscillating_loss_is_reported():
    coach = Coach()
    coach.observe(_started(BASE, steps_per_epoch=80))
    b = coach.runs[7].block_steps * coach.runs[7].coarse_group   # 1024 examples: 32 steps of 32
    found = []
    for k in range(20):
        level = 0.9 if k % 2 else 0.4                     # block means swing by more than half the level
        found += coach.observe(_step(b * (k + 1), [level] * b, [1.0, 1.0, 1.0]))
    assert [f.detector for f in found] == ["learning_rate_too_high"]
    assert "swings" in found[0].seen


def test_overfitting_needs_a_lasting_rise_of_the_validation_loss_while_training_loss_falls():
    coach = Coach()
    coach.observe(_started(BASE))
    val = [0.50, 0.40, 0.35, 0.34, 0.33, 0.35, 0.37, 0.39, 0.42, 0.45, 0.48]
    found = []
    for epoch, v in enumerate(val, 1):
        found += coach.observe(EpochEnd(7, epoch, 10 * epoch, 0.6 - 0.05 * epoch, 0.8, v, 0.8, 0.1, 1.0, 0.0))
    assert [f.detector for f in found] == ["overfitting"]
    # 3-epoch medians against the lowest earlier one (0.34, epochs 3-5), more than 5% and more than the
    # typical epoch-to-epoch change (0.03) above it: true from epoch 8 (0.37) on; 3 epochs in a row at 10
    assert found[0].step == 100
    assert "0.34" in found[0].seen and "epochs 3-5" in found[0].seen
    changed = check_try_it(found[0], BASE)
    assert {l["dropout"] for l in changed["model"]["layers"]} == {0.2}
    # a noisy validation loss that comes back down is not overfitting
    coach = Coach()
    coach.observe(_started(BASE))
    for epoch, v in enumerate([0.5, 0.4, 0.45, 0.39, 0.44, 0.38, 0.43, 0.37, 0.6, 0.36, 0.42], 1):   # and a spike
        assert coach.observe(EpochEnd(7, epoch, 10 * epoch, 0.6 - 0.05 * epoch, 0.8, v, 0.8, 0.1, 1.0, 0.0)) == []


def test_runs_are_watched_separately_and_unknown_runs_are_ignored():
    coach = Coach()
    assert coach.observe(_step(10, [float("nan")], [1.0, 1.0, 1.0], run_id=99)) == []
    coach.observe(_started(BASE, run_id=1))
    coach.observe(_started(BASE, run_id=2))
    assert [f.run_id for f in coach.observe(_step(10, [float("nan")], [1, 1, 1], run_id=2))] == [2]
    assert [f.run_id for f in coach.observe(_step(10, [float("nan")], [1, 1, 1], run_id=1))] == [1]


def test_every_threshold_is_documented_and_every_detector_is_tested_here():
    assert all(t.doc and math.isfinite(t.value) for t in THRESHOLDS.values())
    assert threshold("vanishing_ratio") == THRESHOLDS["vanishing_ratio"].value
    source = open(__file__, encoding="utf-8").read()
    for name in DETECTORS:
        assert f'"{name}"' in source, name


def test_overfitting_from_a_zero_validation_loss_says_so_without_a_percentage():
    coach = Coach()
    coach.observe(_started(BASE))
    found = []
    for epoch, v in enumerate([0.3, 0.0, 0.0, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25], 1):
        found += coach.observe(EpochEnd(7, epoch, 10 * epoch, 0.6 - 0.05 * epoch, 0.8, v, 0.8, 0.1, 1.0, 0.0))
    assert [f.detector for f in found] == ["overfitting"]
    assert "inf" not in found[0].seen and "above its lowest 3-epoch median (0," in found[0].seen
    coach.forget(7)
    assert coach.observe(EpochEnd(7, 10, 100, 0.1, 0.8, 0.3, 0.8, 0.1, 1.0, 0.0)) == []   # not watched now


def _numpy_dead_and_comatose(dead_fraction, comatose_fraction):
    """The dead/comatose detectors' choices as the NumPy code before the plain-Python rewrite made them:
    (worst dead layer, its value, dead layers, worst comatose layer, its value, comatose layers)."""
    dead = np.asarray(dead_fraction, dtype=np.float64)[:-1]
    worst = int(np.nanargmax(np.where(np.isnan(dead), -1, dead))) if dead.size else -1
    value = dead[worst] if worst >= 0 and not math.isnan(dead[worst]) else 0.0
    dead_layers = tuple(int(i) for i in np.flatnonzero(np.nan_to_num(dead) >= threshold("dead_fraction")))
    coma = np.asarray(comatose_fraction, dtype=np.float64)[:-1]
    leaky = np.where(np.isnan(coma) | (np.nan_to_num(dead) >= threshold("dead_fraction")), -1.0, coma)
    c_worst = int(np.argmax(leaky)) if leaky.size else -1
    c_value = leaky[c_worst] if c_worst >= 0 else 0.0
    coma_layers = tuple(int(i) for i in np.flatnonzero(leaky >= threshold("comatose_fraction")))
    return worst, value, dead_layers, c_worst, c_value, coma_layers


def test_dead_and_comatose_choices_match_the_numpy_reference():
    """The per-record detectors run in plain Python for speed; on random fractions with NaN (layers
    without the statistic), infinities, ties and empty nets they pick the same layers and values."""
    from types import SimpleNamespace

    from engine.coach import _RunState

    rng = np.random.default_rng(0)
    exp = resolve_experiment(experiment(MOONS, layers(3, 8, "relu"), {"name": "sgd", "learning_rate": 0.1}))
    choices = [0.0, 0.25, threshold("dead_fraction"), threshold("comatose_fraction"), 1.0, math.nan, math.inf]
    checked = 0
    for n in [1] * 5 + [2, 3, 4, 9, 12] * 40:
        dead = rng.choice(choices, n).tolist() if rng.random() < 0.5 else rng.random(n).tolist()
        coma = rng.choice(choices, n).tolist() if rng.random() < 0.5 else rng.random(n).tolist()
        worst, value, dead_layers, c_worst, c_value, coma_layers = _numpy_dead_and_comatose(dead, coma)
        coach = Coach()
        state = _RunState(exp, ())
        state.streaks = {"dead": 10 ** 6, "comatose": 10 ** 6}   # fire whenever the value passes the threshold
        e = SimpleNamespace(run_id=1, step=1, dead_fraction=np.asarray(dead, np.float32),
                            comatose_fraction=np.asarray(coma, np.float32))
        ref = _numpy_dead_and_comatose(e.dead_fraction, e.comatose_fraction)
        worst, value, dead_layers, c_worst, c_value, coma_layers = ref
        f = coach._dead(state, e)
        assert (f is not None) == (value >= threshold("dead_fraction"))
        if f is not None:
            assert f.layers == dead_layers and f"of layer {worst + 1}'s" in f.seen and f"{value:.0%}" in f.seen
        g = coach._comatose(state, e)
        assert (g is not None) == (c_value >= threshold("comatose_fraction"))
        if g is not None:
            assert g.layers == coma_layers and f"of layer {c_worst + 1}'s" in g.seen
        checked += (f is not None) + (g is not None)
    assert checked > 100   # the comparison exercised the firing paths, not only the quiet ones
