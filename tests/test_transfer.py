"""engine.training.transfer: reuse copies, frozen layers stay put, unfreezing, caching."""
import numpy as np
import pytest

from engine.training import transfer as T
from engine.data import load_dataset
from engine.errors import ExperimentError, WeightsError
from engine.events import RunFinished
from engine.spec.experiment import resolve_experiment
from engine.spec import reuse
from engine.training.trainer import Trainer

A_CLASSES = [0, 1, 2, 3, 4, 7, 8, 9]


def selu(units, **kw):
    return dict({"units": units, "activation": "selu", "initializer": "lecun_normal"}, **kw)


def elu_bn(units, **kw):
    return dict({"units": units, "activation": "elu", "batch_norm": "before", "use_bias": False}, **kw)


def exp(data, layers, output="auto", lr=0.01, epochs=2, optimizer="sgd", dtype="float64", seed=3, **training):
    return resolve_experiment({
        "seed": seed, "data": data, "model": {"layers": layers, "output": {"activation": output}},
        "optimizer": {"name": optimizer, "learning_rate": lr},
        "training": dict({"epochs": epochs, "batch_size": 32, "dtype": dtype}, **training)})


def train(experiment, dataset=None, network=None, max_steps=None):
    trainer = Trainer(experiment, dataset=dataset, network=network, max_steps=max_steps)
    last = None
    for event in trainer.run():
        if isinstance(event, RunFinished):
            last = event
    return trainer, last


A_DATA = {"name": "fashion_mnist", "classes": A_CLASSES, "per_class": 60, "val_per_class": 20, "test_per_class": 20}
B_DATA = {"name": "fashion_mnist", "classes": [5, 6], "per_class": 50, "val_per_class": 50, "test_per_class": 50}


@pytest.fixture(scope="module")
def model_a():
    """A small model A with batch norm, trained briefly on 8 classes (float64)."""
    ea = exp(A_DATA, [elu_bn(32), elu_bn(16), elu_bn(16)], epochs=2)
    trainer, _ = train(ea)
    return ea, trainer.net


def b_network(model_a, k=3, freeze=True, new_layers=(), epochs=2, lr=0.01, output_dropout=0.0, **kw):
    ea, net_a = model_a
    data = load_dataset(B_DATA, 3)
    layers = [dict(c, dropout=output_dropout) for c in new_layers]
    model = reuse.reused_model_config(ea["model"]["layers"], k, layers, {"activation": "logistic"}, freeze=freeze)
    eb = resolve_experiment(dict(exp(B_DATA, [], "logistic", lr=lr, epochs=epochs, **kw), model=model))
    net = T.build_reused_network(net_a.state_dict(), eb, data.n_features, data.task, data.n_classes, 1, k=k,
                                 seed=5, freeze=freeze)
    return eb, data, net


def test_reuse_copies_weights_and_training_b_leaves_a_intact(model_a):
    _, net_a = model_a
    before = net_a.state_dict()
    eb, data, net_b = b_network(model_a, freeze=False)
    for name in before:
        if int(name.split(".")[1]) < 3:
            assert np.array_equal(net_b.tensor(name), before[name]), name
            assert not np.shares_memory(net_b.tensor(name), net_a.tensor(name))
    train(eb, data, net_b)
    after = net_a.state_dict()
    for name in before:
        assert np.array_equal(after[name], before[name]), f"{name} of the source changed"
    assert not np.array_equal(net_b.tensor("layers.0.kernel"), before["layers.0.kernel"])


def test_frozen_layers_and_their_bn_statistics_do_not_change(model_a):
    eb, data, net_b = b_network(model_a, k=3, freeze=True)
    start = net_b.state_dict()
    assert T.frozen_prefix(net_b) == 3
    _, done = train(eb, data, net_b)
    assert done.status == "finished" and done.step > 0
    for name, value in start.items():
        layer = int(name.split(".")[1])
        if layer < 3:  # kernel, gamma, beta, moving mean and variance: bit for bit
            assert np.array_equal(net_b.tensor(name), value), f"frozen {name} changed"
    assert any(name.endswith("moving_mean") for name in start)
    assert not np.array_equal(net_b.tensor("layers.3.kernel"), start["layers.3.kernel"])


def test_unfreezing_with_a_lower_learning_rate(model_a):
    """After unfreezing, the reused layers move, and one SGD step moves them
    exactly lr_low / lr_high as far as with the higher rate."""
    moves = {}
    for lr in (0.01, 0.001):
        eb, data, net_b = b_network(model_a, k=3, freeze=True, lr=lr, shuffle=False)
        T.unfreeze_layers(net_b, range(3))
        assert net_b.lowest_trainable_layer() == 0
        start = net_b.tensor("layers.1.kernel").copy()
        train(eb, data, net_b, max_steps=1)
        moves[lr] = net_b.tensor("layers.1.kernel") - start
    assert np.abs(moves[0.01]).max() > 0
    np.testing.assert_allclose(moves[0.001] * 10, moves[0.01], rtol=1e-7, atol=1e-15)


def test_layer_counts_and_architecture_checks(model_a):
    assert reuse.resolve_layer_count("all_but_output", 5) == 5
    assert reuse.resolve_layer_count("all_but_top_1", 5) == 4
    assert reuse.resolve_layer_count(2, 5) == 2
    for bad in (6, -1, "all", "all_but_top_9", True, 1.5):
        with pytest.raises(ExperimentError, match="reuse.layers"):
            reuse.resolve_layer_count(bad, 5)
    ea, _ = model_a
    other = [dict(c) for c in ea["model"]["layers"]]
    other[1] = dict(other[1], units=17)
    with pytest.raises(ExperimentError, match="layer 1 of the new model has units=17"):
        reuse.check_compatible(ea["model"]["layers"], other, 3)


def test_reuse_of_mismatched_shapes_names_the_tensor(model_a):
    _, net_a = model_a
    weights = net_a.state_dict()
    weights["layers.0.kernel"] = weights["layers.0.kernel"][:100]
    eb, data, _ = b_network(model_a)
    with pytest.raises(WeightsError, match="layers.0.kernel"):
        T.build_reused_network(weights, eb, data.n_features, data.task, 2, 1, k=3)


def test_formats_reuse_layers_goes_through_transfer(model_a):
    from engine.formats import reuse_layers

    eb, data, net_b = b_network(model_a, k=2)
    _, net_a = model_a
    via_formats = reuse_layers(net_a.state_dict(), eb, 2, dataset=data, seed=5)
    for name in net_a.state_dict():
        if int(name.split(".")[1]) < 2:
            assert np.array_equal(via_formats.tensor(name), net_a.tensor(name))
    assert via_formats.lowest_trainable_layer() == 2


def test_caching_gives_the_same_trajectory(model_a):
    """Frozen BN layers below the cut, dropout above it: cached and uncached
    training end at the same weights (float64 rounding only)."""
    eb, data, net_b = b_network(model_a, k=3, new_layers=[selu(16)], output_dropout=0.3, epochs=3)
    start = net_b.state_dict()
    figures = T.measure_caching_speedup(net_b, eb, data, warmup=False)
    assert figures["cut"] == 3 and figures["steps"] == 12
    assert figures["max_weight_difference"] < 1e-10
    assert figures["uncached_test_accuracy"] == figures["cached_test_accuracy"]
    assert figures["speedup_per_epoch"] > 0
    for name, value in start.items():  # measuring does not touch the network
        assert np.array_equal(net_b.tensor(name), value)
    # and the pieces by hand: features == layer outputs, merge writes back
    k, upper, up_exp, feats, _ = T.cached_phase(net_b, eb, data)
    assert feats.x_train.shape == (len(data.x_train), 16) and feats.y_train is data.y_train
    train(up_exp, feats, upper)
    T.merge_upper(net_b, upper, k)
    assert not np.array_equal(net_b.tensor("layers.3.kernel"), start["layers.3.kernel"])
    assert np.array_equal(net_b.tensor("layers.0.kernel"), start["layers.0.kernel"])


def test_cached_features_keep_reconstruction_targets(model_a):
    _, net_a = model_a
    data = load_dataset(dict(B_DATA, task="reconstruction"), 1)
    feats, _ = T.cache_features(net_a, data, 2)
    assert feats.x_train.shape[1] == 16
    assert feats.y_train is data.y_train and feats.y_train.shape[1] == 784


@pytest.mark.parametrize("layer, problem", [({"dropout": 0.2}, "layer 1 has dropout 0.2"),
                                            ({"activation": "rrelu", "initializer": "he_normal"},
                                             "layer 1 uses RReLU")])
def test_caching_is_refused_when_the_frozen_layers_are_random(layer, problem):
    data = load_dataset(B_DATA, 1)
    layers = [elu_bn(8, trainable=False), dict(elu_bn(8, trainable=False), **layer), elu_bn(8)]
    eb = exp(B_DATA, layers, "logistic")
    from engine.training.network import Network
    net = Network(eb, data.n_features, data.task, 2, 1)
    net.initialize(0)
    assert problem in " ".join(T.caching_problems(net, 2))
    with pytest.raises(ExperimentError, match=problem):
        T.cached_phase(net, eb, data)
    with pytest.raises(ExperimentError, match="nothing to cache"):
        T.check_cacheable(net, 0)
    T.unfreeze_layers(net, [0])
    with pytest.raises(ExperimentError, match="layer 0 is trainable"):
        T.check_cacheable(net, 2)
