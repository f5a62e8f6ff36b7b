"""The chapter's qualitative results, in shortened versions, each over 3 seeds (never one lucky seed).

(a) vanishing gradients, as this engine measures them: logistic + Glorot in a 10-layer net leaves the
    first layer with < 1e-3 of the output layer's gradient; He + ELU keeps every layer within 100x; the
    pre-2010 N(0, 1) init does not shrink the gradient much but saturates the logistic units.
(b) a high learning rate kills > 30% of the ReLUs of some layer of a deep ReLU net; leaky ReLU: none.
(c) 100 SELU layers with LeCun init keep mean ~0 and std ~1 on standardized Gaussian inputs.
(d) batch normalization lets a 10-layer logistic net reach the target accuracy (the plain one never does).
(e) the default configuration reaches > 85% validation accuracy on Fashion-MNIST within 3 epochs (slow).
Plus MC dropout: its average equals the plain prediction exactly when there is no dropout, and the
uncertainty it reports on two moons is higher away from the data than next to it.
"""
import numpy as np
import pytest

from helpers import run_comparison
from engine.events import DecisionSurface, RunFinished, StepMetrics
from engine.spec.experiment import load_experiment, resolve_experiment
from engine.training.network import Network
from engine.training.trainer import Trainer

SEEDS = (1, 2, 3)
FASHION = {"name": "fashion_mnist", "per_class": 200, "val_per_class": 50, "test_per_class": 5}


def first_record(exp) -> StepMetrics:
    """Diagnostics after the first logged step (log_every 1)."""
    for event in Trainer(resolve_experiment(exp), max_steps=1).run():
        if isinstance(event, StepMetrics):
            return event
    raise AssertionError("no StepMetrics")


def deep(activation, initializer, seed, n=10):
    return {"seed": seed, "data": FASHION,
            "model": {"layers": [{"units": 100, "activation": activation, "initializer": initializer}] * n},
            "optimizer": {"name": "sgd", "learning_rate": 0.01}, "training": {"epochs": 1, "log_every": 1}}


# ----------------------------------------------------------------------------- (a)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_vanishing_gradients_as_measured(seed):
    glorot = np.asarray(first_record(deep("logistic", "glorot_uniform", seed)).grad_norm)
    assert glorot[0] / glorot[-1] < 1e-3           # measured: about 4e-6
    he_elu = np.asarray(first_record(deep("elu", "he_normal", seed)).grad_norm)
    assert he_elu.min() / he_elu.max() > 1e-2      # measured: about 0.3
    normal = first_record(deep("logistic", "random_normal", seed))
    assert np.nanmean(normal.saturated) > 0.4      # measured: about 0.53
    g = np.asarray(normal.grad_norm)
    assert g[0] / g[-1] > 1e-2                     # ... while its gradients are NOT vanishing


# ----------------------------------------------------------------------------- (b)


def dead_after_training(activation, seed):
    exp = {"seed": seed, "data": FASHION, "model": {"layers": [{"units": 100, "activation": activation}] * 8},
           "optimizer": {"name": "adam", "learning_rate": 0.01}, "training": {"epochs": 2}}
    last = [e for e in Trainer(resolve_experiment(exp)).run() if isinstance(e, StepMetrics)][-1]
    return np.asarray(last.dead_fraction[:-1])


@pytest.mark.parametrize("seed", SEEDS)
def test_b_a_high_learning_rate_kills_relus_but_not_leaky_relus(seed):
    assert np.nanmax(dead_after_training("relu", seed)) > 0.3    # measured: 0.50-0.57
    assert np.all(dead_after_training("leaky_relu", seed) == 0.0)


# ----------------------------------------------------------------------------- (c)


@pytest.mark.parametrize("seed", SEEDS)
def test_c_selu_self_normalizes_through_100_layers(seed):
    exp = resolve_experiment({"data": {"name": "moons"}, "model": {"layers": [
        {"units": 300, "activation": "selu", "initializer": "lecun_normal"}] * 100}})
    net = Network(exp, 100, "classification", 2)
    net.initialize(seed)
    x = np.random.default_rng(seed + 100).standard_normal((256, 100)).astype(np.float32)
    stats = net.probe(x)
    mean, std = stats["mean"][:-1], stats["std"][:-1]
    assert np.max(np.abs(mean)) < 0.1 and np.max(np.abs(std - 1)) < 0.2   # measured: < 0.04 and < 0.07
    relu = resolve_experiment({"data": {"name": "moons"}, "model": {"layers": [
        {"units": 300, "activation": "relu", "initializer": "he_normal"}] * 100}})
    rnet = Network(relu, 100, "classification", 2)
    rnet.initialize(seed)
    rstats = rnet.probe(x)
    assert np.max(np.abs(rstats["std"][:-1] - 1)) > 0.2    # ReLU + He: no such fixed point


# ----------------------------------------------------------------------------- (d)


def test_d_batch_norm_reaches_the_target_in_fewer_steps(tmp_path):
    layer = {"units": 100, "activation": "logistic", "initializer": "glorot_uniform"}
    exp = resolve_experiment({
        "seed": 1, "data": FASHION, "model": {"layers": [layer] * 10},
        "optimizer": {"name": "sgd", "learning_rate": 0.1}, "training": {"epochs": 4},
        "compare": {"variants": [
            {"name": "plain"},
            {"name": "BN", "overrides": {"model": {"layers": {"batch_norm": "before", "use_bias": False,
                                                              "bn_momentum": 0.9}}}}],
            "seeds": list(SEEDS), "target": {"metric": "val_accuracy", "value": 0.65}}})
    summary = run_comparison(exp, tmp_path, workers=2)
    runs = {name: {r["seed"]: r["steps_to_target"] for r in summary["variants"][name]["runs"]}
            for name in ("plain", "BN")}
    inf = float("inf")
    faster = sum((runs["BN"][s] or inf) < (runs["plain"][s] or inf) for s in SEEDS)
    assert faster >= 2, runs                                       # measured: 3 of 3 (plain never gets there)
    assert summary["variants"]["BN"]["same_initial_weights_as_first"]


# ----------------------------------------------------------------------------- (e)


@pytest.mark.slow
def test_e_the_default_configuration_passes_85_percent_within_3_epochs(tmp_path):
    default = load_experiment("default")
    exp = resolve_experiment(dict(default, training=dict(default["training"], epochs=3),
                                  compare={"variants": [{"name": "default"}], "seeds": list(SEEDS)}))
    summary = run_comparison(exp, tmp_path, workers=2)
    accs = [r["final_val_accuracy"] for r in summary["variants"]["default"]["runs"]]
    best = [r["best_val_accuracy"] for r in summary["variants"]["default"]["runs"]]
    assert len(accs) == 3 and max(best) > 0.85 and min(best) > 0.85, (accs, best)


# ----------------------------------------------------------------------------- MC dropout


def moons_experiment(seed, dropout, **training):
    return resolve_experiment({
        "seed": seed, "data": {"name": "moons", "n_samples": 500, "noise": 0.1},
        "model": {"layers": [{"units": 64, "activation": "relu", "dropout": dropout}] * 3},
        "optimizer": {"name": "adam", "learning_rate": 0.01}, "training": {"epochs": 30, **training}})


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_mc_dropout_average_differs_from_the_plain_prediction_only_with_dropout(dropout):
    exp = resolve_experiment({"data": {"name": "moons"}, "model": {"layers": [
        {"units": 32, "activation": "elu", "dropout": dropout, "batch_norm": "before"},
        {"units": 32, "activation": "rrelu", "dropout": dropout}]}, "training": {"dtype": "float64"}})
    net = Network(exp, 2, "classification", 2)
    net.initialize(4)
    x = np.random.default_rng(0).standard_normal((200, 2))
    plain = net.predict(x)
    mc = net.predict(x, mc_samples=20, seed=3)
    samples = net.mc_predict(x, 20, seed=3)
    assert np.allclose(samples.mean(axis=0), mc)
    if dropout == 0.0:
        assert np.allclose(mc, plain, rtol=0, atol=1e-12) and np.all(samples.std(axis=0) < 1e-12)
    else:
        assert np.abs(mc - plain).max() > 1e-3 and samples.std(axis=0).max() > 1e-2


@pytest.mark.parametrize("seed", SEEDS)
def test_mc_dropout_uncertainty_is_higher_away_from_the_data_on_two_moons(seed):
    trainer = Trainer(moons_experiment(seed, 0.2))
    for _ in trainer.run():
        pass
    surface = trainer.decision_surface(mc_samples=50)
    unc = np.asarray(surface.uncertainty).ravel()
    assert surface.uncertainty.shape == surface.probabilities.shape[:2] and np.all(unc >= 0)
    gx, gy = np.meshgrid(surface.xs, surface.ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    train = trainer.data.to_original(trainer.data.x_train)
    dist = np.sqrt(((grid[:, None, :] - train[None, ::4, :]) ** 2).sum(-1)).min(axis=1)
    span = float((grid.max(0) - grid.min(0)).max())
    near, far = unc[dist < 0.03 * span].mean(), unc[dist > 0.1 * span].mean()
    assert far > 2 * near, (near, far)                     # measured: 3.4x to 5.8x (ReLU)
    none = Trainer(moons_experiment(seed, 0.0, epochs=2))
    for _ in none.run():
        pass
    assert np.all(np.asarray(none.decision_surface(mc_samples=5).uncertainty) < 1e-6)


def test_a_run_asked_for_mc_samples_ends_with_an_uncertainty_map():
    events = list(Trainer(moons_experiment(1, 0.2, epochs=2, mc_dropout_samples=10)).run())
    assert isinstance(events[-1], RunFinished)
    surfaces = [e for e in events if isinstance(e, DecisionSurface)]
    assert surfaces[-1].uncertainty is not None and events[-2] is surfaces[-1]
    assert all(s.uncertainty is None for s in surfaces[:-1])
