"""Learning-rate schedules: golden values, 1cycle shape, performance
patience, chunking, and resumable state.  Parametrized over the registry, so
a new schedule must add its golden values here."""
import json
import math

import numpy as np
import pytest

from engine.errors import ExperimentError
from engine.catalog.schedules import SCHEDULES, make_schedule

NAMES = SCHEDULES.names()


def _at(schedule, step):
    return float(schedule.learning_rates(step, 1)[0])


def golden_constant():
    s = make_schedule({"name": "constant"})
    s.start(0.1, 1000, 10)
    return [(_at(s, t), 0.1) for t in (0, 7, 999, 5000)]


def golden_piecewise():
    by_epoch = make_schedule({"name": "piecewise", "boundaries": [2, 5], "values": [0.05, 0.001]})
    by_epoch.start(0.1, 1000, 10)  # 10 steps per epoch: boundaries at steps 20 and 50
    by_step = make_schedule({"name": "piecewise", "boundaries": [3], "values": [0.01], "unit": "step"})
    by_step.start(0.2, 1000, 10)
    return [(_at(by_epoch, 0), 0.1), (_at(by_epoch, 19), 0.1), (_at(by_epoch, 20), 0.05),
            (_at(by_epoch, 49), 0.05), (_at(by_epoch, 50), 0.001), (_at(by_epoch, 10**6), 0.001),
            (_at(by_step, 2), 0.2), (_at(by_step, 3), 0.01)]


def golden_exponential():
    s = make_schedule({"name": "exponential", "s": 100})
    s.start(0.1, 1000, 10)
    return [(_at(s, 0), 0.1), (_at(s, 50), 0.1 / math.sqrt(10)), (_at(s, 100), 0.01),
            (_at(s, 250), 0.1 / 10 ** 2.5)]


def golden_power():
    s = make_schedule({"name": "power", "s": 100, "c": 2})
    s.start(0.1, 1000, 10)
    default_c = make_schedule({"name": "power", "s": 100})
    default_c.start(0.1, 1000, 10)
    return [(_at(s, 0), 0.1), (_at(s, 100), 0.025), (_at(s, 300), 0.00625),
            (_at(default_c, 50), 0.1 / 1.5)]


def golden_performance():
    s = make_schedule({"name": "performance", "factor": 0.5, "patience": 2, "min_delta": 0.01,
                       "min_lr": 0.02})
    s.start(0.1, 1000, 10)
    pairs = [(_at(s, 0), 0.1)]
    # 0.995 is not better than 1.0 by more than min_delta
    for epoch, (loss, expected) in enumerate([(1.0, 0.1), (0.995, 0.1), (0.999, 0.05),
                                              (0.98, 0.05), (0.975, 0.05), (0.99, 0.025),
                                              (1.0, 0.025), (1.0, 0.02), (2.0, 0.02), (2.0, 0.02)]):
        s.on_epoch_end(epoch, loss)
        pairs.append((_at(s, 10 * epoch + 10), expected))
    return pairs


def golden_onecycle():
    # 100 steps: cycle 90 steps (peak at 45), anneal over the last 10 (final rate at step 99)
    s = make_schedule({"name": "onecycle"})
    s.start(0.1, 100, 10)
    low, final = 0.01, 0.01 / 1000
    pairs = [(_at(s, 0), low), (_at(s, 9), low + (0.1 - low) * 9 / 45), (_at(s, 45), 0.1),
             (_at(s, 60), 0.1 - (0.1 - low) * 15 / 45), (_at(s, 90), low),
             (_at(s, 95), low + (final - low) * 5 / 9), (_at(s, 99), final), (_at(s, 100), final),
             (_at(s, 500), final)]
    moms = s.momenta(0, 101)
    pairs += [(moms[0], 0.95), (moms[9], 0.95 - 0.1 * 9 / 45), (moms[45], 0.85),
              (moms[60], 0.85 + 0.1 * 15 / 45), (moms[90], 0.95), (moms[100], 0.95)]
    custom = make_schedule({"name": "onecycle", "max_lr": 0.5, "div_factor": 5, "final_div_factor": 10,
                            "anneal_fraction": 0.2, "max_momentum": 0.9, "min_momentum": 0.8})
    custom.start(0.1, 200, 10)  # cycle 160 steps, peak at 80
    pairs += [(_at(custom, 0), 0.1), (_at(custom, 80), 0.5), (_at(custom, 160), 0.1),
              (_at(custom, 180), 0.1 + (0.01 - 0.1) * 20 / 39), (_at(custom, 199), 0.01),
              (custom.momenta(80, 1)[0], 0.8)]
    return pairs


GOLDEN = {"constant": golden_constant, "piecewise": golden_piecewise, "exponential": golden_exponential,
          "power": golden_power, "performance": golden_performance, "onecycle": golden_onecycle}

SAMPLE_CONFIGS = {
    "constant": {},
    "piecewise": {"boundaries": [1, 3], "values": [0.05, 0.01]},
    "exponential": {"s": 50},
    "power": {"s": 40, "c": 1.5},
    "performance": {"patience": 1, "factor": 0.3},
    "onecycle": {"max_lr": 0.4},
}


@pytest.mark.parametrize("name", NAMES)
def test_golden_values(name):
    assert name in GOLDEN, f"add golden values for schedule {name!r}"
    actual, expected = zip(*GOLDEN[name]())
    assert list(actual) == pytest.approx(list(expected), rel=1e-12)


def test_onecycle_shape():
    s = make_schedule({"name": "onecycle", "max_lr": 0.2})
    total = 1000
    s.start(0.05, total, 37)
    rates, moms = s.learning_rates(0, total), s.momenta(0, total)
    cycle_end = 900
    peak = int(np.argmax(rates))
    assert peak == cycle_end // 2 and rates[peak] == pytest.approx(0.2)
    assert np.all(np.diff(rates[:peak + 1]) > 0) and np.all(np.diff(rates[peak:]) < 0)
    assert int(np.argmin(moms)) == peak  # momentum moves inversely
    assert np.all(np.diff(moms[:peak + 1]) < 0) and np.all(np.diff(moms[peak:cycle_end + 1]) > 0)
    assert moms[0] == pytest.approx(0.95) and moms[peak] == pytest.approx(0.85)
    assert np.all(moms[cycle_end:] == pytest.approx(0.95))
    assert rates[0] == pytest.approx(0.02) and rates[cycle_end] == pytest.approx(0.02)
    assert rates[-1] == pytest.approx(0.02 / 1000)  # the final anneal ends orders of magnitude lower


def test_only_onecycle_cycles_momentum():
    for name in NAMES:
        s = make_schedule({"name": name, **SAMPLE_CONFIGS[name]})
        s.start(0.1, 100, 10)
        assert (s.momenta(0, 5) is None) == (name != "onecycle"), name


def test_performance_reduces_after_exactly_patience_epochs():
    for patience in (1, 2, 4):
        s = make_schedule({"name": "performance", "patience": patience, "factor": 0.1})
        s.start(1.0, 10**6, 100)
        s.on_epoch_end(0, 5.0)
        for epoch in range(1, patience):
            s.on_epoch_end(epoch, 5.0)
            assert _at(s, 0) == 1.0, (patience, epoch)
        s.on_epoch_end(patience, 5.0)
        assert _at(s, 0) == pytest.approx(0.1)
        # the count restarts after a reduction; an improvement resets it too
        s.on_epoch_end(patience + 1, 1.0)
        for epoch in range(patience - 1):
            s.on_epoch_end(patience + 2 + epoch, float("nan"))
        assert _at(s, 0) == pytest.approx(0.1)
        s.on_epoch_end(2 * patience + 1, float("nan"))
        assert _at(s, 0) == pytest.approx(0.01)


@pytest.mark.parametrize("name", NAMES)
def test_chunks_equal_single_steps(name):
    s = make_schedule({"name": name, **SAMPLE_CONFIGS[name]})
    s.start(0.1, 300, 17)
    for epoch, loss in enumerate([1.0, 2.0, 2.0]):
        s.on_epoch_end(epoch, loss)
    for first, n in ((0, 1), (0, 300), (13, 57), (290, 25), (5, 0)):
        chunk = s.learning_rates(first, n)
        assert chunk.shape == (n,) and chunk.dtype == np.float64
        singles = [_at(s, first + i) for i in range(n)]
        np.testing.assert_array_equal(chunk, np.array(singles, dtype=np.float64))
        moms = s.momenta(first, n)
        if moms is not None:
            np.testing.assert_array_equal(moms, [s.momenta(first + i, 1)[0] for i in range(n)])
    assert np.all(s.learning_rates(0, 400) > 0)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_resumes_exactly(name):
    config = {"name": name, **SAMPLE_CONFIGS[name]}
    losses = [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7]
    original = make_schedule(config)
    original.start(0.1, 400, 50)
    for epoch, loss in enumerate(losses[:4]):
        original.on_epoch_end(epoch, loss)
    state = json.loads(json.dumps(original.state_dict(), allow_nan=False))
    resumed = make_schedule(json.loads(json.dumps(original.get_config())))
    resumed.start(0.1, 400, 50)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == original.state_dict()
    for epoch, loss in enumerate(losses[4:], start=4):
        a, b = original.learning_rates(epoch * 50, 50), resumed.learning_rates(epoch * 50, 50)
        np.testing.assert_array_equal(a, b)
        original.on_epoch_end(epoch, loss)
        resumed.on_epoch_end(epoch, loss)
    assert resumed.state_dict() == original.state_dict()


def test_performance_state_before_any_epoch_is_json():
    s = make_schedule({"name": "performance"})
    s.start(0.1, 10, 1)
    assert json.loads(json.dumps(s.state_dict(), allow_nan=False)) == {"best": None, "wait": 0, "scale": 1.0}


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_contract(name):
    cls = SCHEDULES.get(name)
    s = make_schedule({"name": name, **SAMPLE_CONFIGS[name]})
    config = s.get_config()
    assert config["name"] == name and set(config) == {"name", *cls.hyperparameters}
    assert make_schedule(json.loads(json.dumps(config))).get_config() == config
    for key, param in cls.hyperparameters.items():
        assert param.doc and "\n" not in param.doc, key
    assert cls().get_config()["name"] == name  # every default is valid


BAD_PARAMS = {
    "piecewise": [("boundaries", [3, 1]), ("values", [0.1]), ("unit", "epochs"), ("values", [-1.0])],
    "exponential": [("s", 0), ("s", -5.0)],
    "power": [("s", 0), ("c", 0)],
    "performance": [("factor", 1.0), ("factor", 0.0), ("patience", 0), ("patience", 1.5),
                    ("min_delta", -1.0), ("min_lr", -0.1)],
    "onecycle": [("max_lr", 0.0), ("div_factor", 0.5), ("anneal_fraction", 1.0),
                 ("max_momentum", 1.0), ("min_momentum", 0.99)],
}


@pytest.mark.parametrize("name", NAMES)
def test_bad_params_name_the_key(name):
    for key, value in BAD_PARAMS.get(name, []):
        with pytest.raises(ExperimentError, match=rf"schedule\.{key}"):
            make_schedule({"name": name, key: value})
    with pytest.raises(ExperimentError, match=r"schedule\.bogus"):
        make_schedule({"name": name, "bogus": 1})


def test_unknown_schedule_and_missing_name():
    with pytest.raises(ExperimentError, match="did you mean 'exponential'"):
        make_schedule({"name": "exponentail"})
    with pytest.raises(ExperimentError, match="schedule.name"):
        make_schedule({"s": 10})
    assert make_schedule(None).get_config() == {"name": "constant"}


def test_rates_need_start_and_onecycle_needs_steps():
    s = make_schedule({"name": "exponential"})
    with pytest.raises(RuntimeError):
        s.learning_rates(0, 3)
    with pytest.raises(ExperimentError, match="onecycle"):
        make_schedule({"name": "onecycle"}).start(0.1, 0, 10)


# ---------------------------------------------------------------- 1cycle meets the optimizer

def _trainer(optimizer, **schedule):
    from engine.spec.experiment import resolve_experiment
    from engine.training.trainer import Trainer

    return Trainer(resolve_experiment({
        "seed": 6, "data": {"name": "moons", "n_samples": 120},
        "model": {"layers": [{"units": 8, "activation": "tanh"}, {"units": 8, "activation": "elu"}]},
        "optimizer": {"learning_rate": 0.05, **optimizer}, "schedule": {"name": "onecycle", **schedule},
        "training": {"epochs": 3, "batch_size": 30, "shuffle": False}}))


def _replay_by_hand(trainer, steps, momenta):
    """The trainer's steps with its own gradient and update kernels called one by one: the
    rate of the schedule, and ``momenta[s]`` (or the optimizer's own setting where None) as
    the momentum column of the kernel's hyperparameters."""
    from engine.kernels import optim
    from engine.kernels.network import MODE_TRAIN, loss_and_gradient

    net, work, data, opt = trainer.net, trainer._work, trainer._train_set, trainer.optimizer
    order, starts = trainer._epoch_order()
    lrs = trainer.schedule.learning_rates(0, steps)
    for s in range(steps):
        batch = s % trainer.steps_per_epoch
        rows = order[starts[batch]:starts[batch + 1]]
        loss_and_gradient(net.ints, net.floats, net.theta, work.grad, net.buffers, data.x, data.y_int,
                          data.y_float, net.loss_code, rows, work.rng, work.ws, work.uws, work.xb,
                          net.lowest_trainable_layer(), MODE_TRAIN)
        hyper = opt.hyper_array()
        if momenta is not None:
            hyper[optim.H_MOMENTUM] = momenta[s]
        for lo, hi in net.trainable_ranges():
            opt.kernel(net.theta, work.grad, trainer.opt_state.slots, lo, hi, s + 1, lrs[s], hyper)
    return net.theta.copy()


CYCLING = [({"name": "momentum", "momentum": 0.9}, True), ({"name": "nesterov", "momentum": 0.9}, True),
           ({"name": "rmsprop", "momentum": 0.5}, True), ({"name": "adam"}, True), ({"name": "adamax"}, True),
           ({"name": "nadam", "momentum_decay": 0.004}, True), ({"name": "rmsprop"}, False), ({"name": "momentum", "momentum": 0.0}, False),
           ({"name": "adam", "beta_1": 0.0}, False), ({"name": "sgd"}, False), ({"name": "adagrad"}, False),
           ({"name": "ftrl", "keep_initial_weights": True, "initial_accumulator_value": 0.0}, False)]
# (the Nadam and FTRL cases also check that the training loop hands the kernels Nadam's momentum_decay and FTRL's
# flags, with the step numbered from 1)


@pytest.mark.parametrize("optimizer,cycles", CYCLING, ids=lambda v: str(v))
def test_1cycle_cycles_a_momentum_only_where_one_is_on(optimizer, cycles):
    steps = 10   # 4 batches an epoch, 12 steps in all: the cycle's peak (step 5) lies inside
    trained = _trainer(optimizer)
    moms = np.concatenate([trained.run_steps(*trained._epoch_order(), 0, n)[4] for n in (4, 4, 2)])
    assert trained.optimizer.momentum_on == cycles
    cycled = trained.schedule.momenta(0, steps)
    if cycles:   # the cycled value reached the kernel, step by step
        np.testing.assert_array_equal(moms, cycled)
        assert np.array_equal(trained.net.theta, _replay_by_hand(_trainer(optimizer), steps, cycled))
        assert not np.array_equal(trained.net.theta, _replay_by_hand(_trainer(optimizer), steps, None))
    else:        # the optimizer's own setting (0 for RMSProp) at every step, bit for bit
        assert np.all(moms < 0)   # "not cycled" as the training loop encodes it
        assert np.array_equal(trained.net.theta, _replay_by_hand(_trainer(optimizer), steps, None))
        untouched = _trainer(optimizer, cycle_momentum=False)
        for n in (4, 4, 2):
            untouched.run_steps(*untouched._epoch_order(), 0, n)
        assert np.array_equal(trained.net.theta, untouched.net.theta)


def test_cycle_momentum_false_leaves_even_sgd_momentum_alone():
    s = make_schedule({"name": "onecycle", "cycle_momentum": False})
    s.start(0.1, 100, 10)
    assert s.momenta(0, 5) is None and s.learning_rates(45, 1)[0] == pytest.approx(0.1)
    trainer = _trainer({"name": "momentum", "momentum": 0.9}, cycle_momentum=False)
    assert np.all(trainer.run_steps(*trainer._epoch_order(), 0, 4)[4] < 0)
