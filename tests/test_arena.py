"""The optimizer arena (engine side).

The arena must race the network engine's own optimizers, so the first tests
replay every (optimizer, surface) pair by hand with ``update_step`` and
demand identical paths.  Then the chapter's lessons are asserted, each over
several starting points (never one lucky case):

* on a bowl with condition number 100, momentum reaches loss < 1e-6 in
  fewer steps than gradient descent at the same learning rate, and Nesterov
  in no more steps than momentum;
* AdaGrad's effective step shrinks monotonically (per coordinate: the
  scalar |Δθ|/|g| mixes the two coordinates with changing weights);
* with momentum 0.99999 the path has not settled after 1,000 steps (while
  0.9 has, so the check can tell the difference).

Finally presets: every shipped one loads and runs, and malformed ones are
rejected with a message that says what is wrong.
"""
import csv
import io
import json

import numpy as np
import pytest

from engine.arena.race import (MAX_RACERS, Arena, RacerSpec, arena_preset_paths, arena_presets,
                          is_adaptive, load_arena_preset, parse_arena_preset, suggested_learning_rate)
from engine.errors import ExperimentError
from engine.catalog.optimizers import OPTIMIZERS, make_optimizer
from engine.arena.surfaces import SURFACES, make_surface

OPTIMIZER_NAMES = OPTIMIZERS.names()
SURFACE_NAMES = SURFACES.names()

BOWL_STARTS = [(-10.0, 2.0), (-8.0, -5.0), (9.0, 3.0), (5.0, -8.0), (-3.0, 9.0), (10.0, 10.0)]


def steps_to_loss(racer, tol=1e-6):
    """First step at which the loss is below tol (None if never)."""
    hits = np.nonzero(racer.losses < tol)[0]
    return int(hits[0]) if hits.size else None


def race(surface, racers, steps, **kwargs):
    arena = Arena(surface, racers, **kwargs)
    arena.step(steps)
    return arena


# ------------------------------------------------- same optimizers as the engine
@pytest.mark.parametrize("surface_name", SURFACE_NAMES)
@pytest.mark.parametrize("opt_name", OPTIMIZER_NAMES)
def test_arena_replays_the_engine_optimizer_exactly(opt_name, surface_name):
    surface = make_surface(surface_name)
    lr = suggested_learning_rate(surface, opt_name)
    config = {"name": opt_name, "learning_rate": lr}
    arena = race(surface, [("r", config)], 40)
    racer = arena.racers[0]

    optimizer = make_optimizer(config)
    theta = np.array(surface.start, dtype=np.float64)
    state = optimizer.build(2)
    expected = [theta.copy()]
    for _ in range(racer.steps):
        _, grad = surface.value_and_gradient(theta)
        optimizer.update_step(theta, grad, state)
        expected.append(theta.copy())
    np.testing.assert_array_equal(racer.path, np.array(expected))
    np.testing.assert_array_equal(racer.state.slots, state.slots)


@pytest.mark.parametrize("surface_name", SURFACE_NAMES)
@pytest.mark.parametrize("opt_name", OPTIMIZER_NAMES)
def test_every_racer_path_grows_and_readouts_have_shapes(opt_name, surface_name):
    surface = make_surface(surface_name)
    arena = Arena(surface, [("r", {"name": opt_name,
                                   "learning_rate": suggested_learning_rate(surface, opt_name)})])
    for total in (1, 5, 25):
        arena.step(total - arena.steps)
        racer = arena.racers[0]
        assert racer.stopped is None, f"{opt_name} diverged on {surface_name} at its suggested rate"
        assert racer.path.shape == (total + 1, 2) and racer.losses.shape == (total + 1,)
        assert racer.gradients.shape == (total, 2) and racer.learning_rates.shape == (total,)
        assert np.all(np.isfinite(racer.path)) and np.all(np.isfinite(racer.losses))
        assert racer.distance == pytest.approx(float(surface.distance_to_minimum(racer.position)))
        assert racer.velocity().shape == (2,)
        assert racer.gains().shape == (2,)
        assert set(racer.slots()) == set(racer.optimizer.slot_names)
    np.testing.assert_array_equal(racer.path[0], surface.start)


@pytest.mark.parametrize("surface_name", SURFACE_NAMES)
def test_suggested_learning_rates_do_not_diverge(surface_name):
    """A racer added in the window starts at its suggested rate: it must not blow up."""
    surface = make_surface(surface_name)
    names = OPTIMIZER_NAMES
    for chunk in (names[:MAX_RACERS], names[MAX_RACERS:]):
        if not chunk:
            continue
        arena = race(surface, [(n, {"name": n, "learning_rate": suggested_learning_rate(surface, n)})
                               for n in chunk], 1000)
        for racer in arena.racers:
            assert racer.stopped is None, (surface_name, racer.label)
            assert racer.loss < racer.losses[0], (surface_name, racer.label)


def test_step_decay_tells_accumulating_optimizers_apart():
    from engine.arena.race import step_decay

    expected_shrinking = {"adagrad": True, "ftrl": True, "sgd": False, "momentum": False,
                          "rmsprop": False, "adam": False}
    for name, shrinking in expected_shrinking.items():
        if name in OPTIMIZERS:
            assert (step_decay(make_optimizer({"name": name})) < 0.5) == shrinking, name


def test_adaptive_classification_follows_behaviour():
    expected = {"sgd": False, "momentum": False, "nesterov": False, "adagrad": True,
                "rmsprop": True, "adam": True, "nadam": True, "adamw": True, "adamax": True,
                "ftrl": True}
    for name in OPTIMIZER_NAMES:
        if name in expected:
            assert is_adaptive(make_optimizer({"name": name})) == expected[name], name


# ---------------------------------------------------------------- the lessons
@pytest.mark.parametrize("lr", [0.5, 1.0])
@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_momentum_beats_gradient_descent_and_nesterov_is_no_slower(lr, angle):
    bowl = {"name": "bowl", "condition_number": 100.0, "angle": angle}
    racers = [("gd", {"name": "sgd", "learning_rate": lr}),
              ("momentum", {"name": "momentum", "learning_rate": lr, "momentum": 0.9}),
              ("nesterov", {"name": "nesterov", "learning_rate": lr, "momentum": 0.9})]
    for start in BOWL_STARTS:
        gd, momentum, nesterov = (steps_to_loss(r) for r in race(bowl, racers, 3000, start=start).racers)
        assert None not in (gd, momentum, nesterov), (start, gd, momentum, nesterov)
        assert momentum < gd, (start, gd, momentum)
        assert nesterov <= momentum, (start, momentum, nesterov)
        # not a photo finish (the margin is smallest from starts on the steep axis)
        assert momentum * 2 < gd, (start, gd, momentum)


@pytest.mark.parametrize("surface", [{"name": "bowl", "condition_number": 100.0},
                                     {"name": "bowl", "condition_number": 10.0, "angle": 45.0},
                                     {"name": "rosenbrock"}, {"name": "beale"},
                                     {"name": "plateau"}])
def test_adagrad_effective_step_shrinks_monotonically(surface):
    s = make_surface(surface)
    x0, x1, y0, y1 = s.view
    rng = np.random.default_rng(3)
    starts = [s.start] + [(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(4)]
    for start in starts:
        arena = race(s, [("adagrad", {"name": "adagrad", "learning_rate": s.learning_rates["adaptive"]})],
                     300, start=start)
        racer = arena.racers[0]
        per_coordinate = racer.effective_steps_per_coordinate()
        for i in range(2):
            e = per_coordinate[:, i]
            e = e[np.isfinite(e)]
            assert e.size > 100
            # non-increasing, up to rounding (effective_steps_per_coordinate
            # leaves out steps too small to measure to a millionth)
            assert np.all(np.diff(e) <= 1e-5 * e[:-1]), (surface, start, i)
            assert e[-1] < e[0]


def test_adagrad_gains_probe_shrinks_and_matches_its_accumulator():
    arena = Arena({"name": "bowl", "condition_number": 100.0},
                  [("adagrad", {"name": "adagrad", "learning_rate": 0.5})])
    racer = arena.racers[0]
    previous = np.full(2, np.inf)
    for _ in range(100):
        arena.step(1)
        gains = racer.gains()
        assert np.all(gains <= previous * (1 + 1e-6))
        previous = gains
        s = racer.slots()["accumulator"]
        np.testing.assert_allclose(gains, 0.5 / (np.sqrt(s) + 1e-10), rtol=1e-5)


@pytest.mark.parametrize("lr", [0.1, 0.5, 1.0])
def test_momentum_close_to_one_never_settles(lr):
    bowl = {"name": "bowl", "condition_number": 100.0}
    racers = [("friction", {"name": "momentum", "learning_rate": lr, "momentum": 0.9}),
              ("no friction", {"name": "momentum", "learning_rate": lr, "momentum": 0.99999})]
    for start in BOWL_STARTS:
        sensible, frictionless = race(bowl, racers, 1000, start=start).racers
        # momentum 0.9 has settled: tiny last steps, at the minimum
        assert sensible.step_lengths()[-100:].max() < 1e-3 and sensible.loss < 1e-6
        # momentum 0.99999 still moves by a visible amount every stretch of
        # 100 steps and is still swinging far from the minimum
        last = frictionless.step_lengths()[-100:]
        assert last.max() > 0.1, (lr, start, last.max())
        assert frictionless.distances()[-100:].max() > 0.5 * np.linalg.norm(start), (lr, start)
        assert frictionless.loss > 1e-3
        assert frictionless.stopped is None  # oscillating, not diverging


# ------------------------------------------------------------ read-outs
def test_velocity_is_what_momentum_carries_and_zero_without_memory():
    arena = race({"name": "bowl"}, [("gd", {"name": "sgd", "learning_rate": 0.5}),
                                    ("adagrad", {"name": "adagrad", "learning_rate": 0.5}),
                                    ("momentum", {"name": "momentum", "learning_rate": 0.5, "momentum": 0.9}),
                                    ("adam", {"name": "adam", "learning_rate": 0.1})], 7)
    gd, adagrad, momentum, adam = arena.racers
    assert not gd.has_velocity() and not adagrad.has_velocity()
    np.testing.assert_array_equal(gd.velocity(), 0.0)
    # coasting with zero gradient: b <- 0.9 b; step = -lr * b
    np.testing.assert_allclose(momentum.velocity(), -0.5 * 0.9 * momentum.slots()["velocity"])
    assert momentum.has_velocity() and adam.has_velocity()
    # momentum's last step was -lr * b: the velocity (book's m) before the friction
    np.testing.assert_allclose(momentum.path[-1] - momentum.path[-2], -0.5 * momentum.slots()["velocity"])
    # probing leaves the race untouched
    before = momentum.path.copy(), momentum.state.slots.copy(), momentum.state.step
    momentum.velocity(), momentum.gains()
    np.testing.assert_array_equal(momentum.path, before[0])
    np.testing.assert_array_equal(momentum.state.slots, before[1])
    assert momentum.state.step == before[2]


def test_gains_are_isotropic_for_sgd_and_unequal_for_adaptive_methods_on_the_bowl():
    arena = race({"name": "bowl", "condition_number": 100.0},
                 [("gd", {"name": "sgd", "learning_rate": 0.5}),
                  ("rmsprop", {"name": "rmsprop", "learning_rate": 0.05}),
                  ("adam", {"name": "adam", "learning_rate": 0.1})], 30, start=(-10.0, 4.0))
    gd, rmsprop, adam = arena.racers
    np.testing.assert_allclose(gd.gains(), [0.5, 0.5])
    # the gentle x direction gets the larger per-coordinate rate
    for racer in (rmsprop, adam):
        gx, gy = racer.gains()
        assert gx > 3 * gy, (racer.label, gx, gy)


def test_effective_step_is_step_over_gradient():
    arena = race({"name": "rosenbrock"}, [("gd", {"name": "sgd", "learning_rate": 0.001})], 5)
    racer = arena.racers[0]
    assert racer.effective_step == pytest.approx(0.001)
    np.testing.assert_allclose(racer.effective_steps(), 0.001)
    np.testing.assert_allclose(racer.effective_steps_per_coordinate(), 0.001)


def test_first_readouts_before_any_step():
    racer = Arena({"name": "bowl"}, [("gd", {"name": "sgd"})]).racers[0]
    assert racer.steps == 0 and racer.path.shape == (1, 2)
    assert np.isnan(racer.effective_step) and racer.gains() is None


# ---------------------------------------------------- noise, clipping, schedules
def test_noise_is_seeded_shared_and_chunking_does_not_matter():
    racers = [("gd", {"name": "sgd", "learning_rate": 0.1}), ("gd too", {"name": "sgd", "learning_rate": 0.1})]
    a = race({"name": "saddle"}, racers, 50, noise_std=0.3, seed=7)
    b = Arena({"name": "saddle"}, racers, noise_std=0.3, seed=7)
    for _ in range(10):
        b.step(5)
    np.testing.assert_array_equal(a.racers[0].path, b.racers[0].path)
    # every racer sees the same noise (the same "mini-batches")
    np.testing.assert_array_equal(a.racers[0].path, a.racers[1].path)
    c = race({"name": "saddle"}, racers, 50, noise_std=0.3, seed=8)
    assert not np.array_equal(a.racers[0].path, c.racers[0].path)
    quiet = race({"name": "saddle"}, racers, 50)
    # the noise is what the optimizer saw, not the surface's gradient
    surface = make_surface("saddle")
    gx, gy = surface.gradient(a.racers[0].path[:-1, 0], a.racers[0].path[:-1, 1])
    noise = a.racers[0].gradients - np.stack([gx, gy], axis=1)
    assert 0.2 < noise.std() < 0.4
    assert not np.array_equal(a.racers[0].path, quiet.racers[0].path)


def test_reset_replays_the_same_race():
    arena = race({"name": "himmelblau"}, [("adam", {"name": "adam", "learning_rate": 0.1})], 30,
                 noise_std=0.5, seed=3)
    first = arena.racers[0].path.copy()
    arena.reset()
    assert arena.steps == 0
    arena.step(30)
    np.testing.assert_array_equal(arena.racers[0].path, first)


def test_set_start_moves_the_start_and_resets():
    arena = race({"name": "bowl"}, [("gd", {"name": "sgd", "learning_rate": 0.5})], 10)
    arena.set_start((3.0, -4.0))
    assert arena.steps == 0
    np.testing.assert_array_equal(arena.racers[0].path, [[3.0, -4.0]])
    arena.step(3)
    np.testing.assert_array_equal(arena.racers[0].path[0], [3.0, -4.0])
    with pytest.raises(ExperimentError, match="start must be"):
        arena.set_start((1.0, float("nan")))


@pytest.mark.parametrize("clip, check", [
    ({"clipnorm": 1.0}, lambda g: np.linalg.norm(g, axis=1) <= 1.0 + 1e-12),
    ({"global_clipnorm": 2.0}, lambda g: np.linalg.norm(g, axis=1) <= 2.0 + 1e-12),
    ({"clipvalue": 0.5}, lambda g: np.abs(g) <= 0.5),
])
def test_clipping_bounds_the_gradient_the_optimizer_sees(clip, check):
    arena = race({"name": "plateau"}, [("clipped", {"name": "sgd", "learning_rate": 1.0}, None, clip),
                                       ("raw", {"name": "sgd", "learning_rate": 1.0})], 200)
    clipped, raw = arena.racers
    assert np.all(check(clipped.gradients))
    assert not np.all(check(raw.gradients)), "the cliff should produce gradients worth clipping"


def test_clip_keys_in_the_optimizer_section_are_accepted():
    spec = RacerSpec.coerce({"label": "x", "optimizer": {"name": "sgd", "clipnorm": 1.0}})
    assert spec.clip == {"clipnorm": 1.0} and "clipnorm" not in spec.optimizer


def test_schedules_set_the_learning_rate_of_each_step():
    arena = race({"name": "bowl"}, [
        ("exp", {"name": "sgd", "learning_rate": 0.5}, {"name": "exponential", "s": 10}),
        ("1cycle", {"name": "momentum", "learning_rate": 0.5}, {"name": "onecycle"}),
        ("perf", {"name": "sgd", "learning_rate": 0.5}, {"name": "performance", "patience": 1,
                                                           "min_delta": 1.0})], 40, horizon=40)
    exp, onecycle, perf = arena.racers
    np.testing.assert_allclose(exp.learning_rates, 0.5 * 0.1 ** (np.arange(40) / 10))
    assert onecycle.learning_rates.max() == pytest.approx(0.5, rel=0.05)
    assert onecycle.learning_rates[0] == pytest.approx(0.05)
    assert perf.learning_rates[-1] < perf.learning_rates[0]  # reduced on the loss plateau


def test_divergence_stops_a_racer_but_not_the_race():
    arena = race({"name": "bowl"}, [("too fast", {"name": "sgd", "learning_rate": 2.5}),
                                    ("fine", {"name": "sgd", "learning_rate": 0.5})], 400)
    bad, good = arena.racers
    assert bad.stopped == "diverged" and bad.steps < 400
    assert good.stopped is None and good.steps == 400
    assert arena.steps == 400


def test_arena_limits():
    with pytest.raises(ExperimentError, match="1 to 9 racers"):
        Arena({"name": "bowl"}, [(f"r{i}", {"name": "sgd"}) for i in range(MAX_RACERS + 1)])
    with pytest.raises(ExperimentError, match="racers\\[0\\].*momentun.*did you mean 'momentum'"):
        Arena({"name": "bowl"}, [("r", {"name": "momentun"})])
    with pytest.raises(ExperimentError, match="noise_std"):
        Arena({"name": "bowl"}, [("r", {"name": "sgd"})], noise_std=-1.0)


# -------------------------------------------------------------------- export
def test_csv_export(tmp_path):
    arena = race({"name": "saddle"}, [("GD, plain", {"name": "sgd", "learning_rate": 0.1}),
                                      ("Adam", {"name": "adam", "learning_rate": 0.05})], 12)
    path = tmp_path / "paths.csv"
    arena.export_csv(path)
    rows = list(csv.reader(io.StringIO(path.read_text())))
    header, body = rows[0], rows[1:]
    assert header[:7] == ["racer", "label", "optimizer", "step", "x", "y", "loss"]
    assert len(body) == 2 * 13
    first = [r for r in body if r[0] == "0"]
    assert first[0][1] == "GD, plain" and first[0][2] == "sgd"
    xy = np.array([[float(r[4]), float(r[5])] for r in first])
    np.testing.assert_array_equal(xy, arena.racers[0].path)  # repr round-trips exactly
    assert first[-1][8] == "" and first[0][11] == ""


# -------------------------------------------------------------------- presets
REQUIRED_TITLES = [
    "Momentum versus gradient descent on an elongated bowl",
    "Nesterov overshoots less",
    "AdaGrad versus gradient descent",
    "AdaGrad stalls, RMSProp does not",
    "Adam on Rosenbrock",
    "never settles",
]


def test_the_chapter_presets_are_shipped():
    titles = [p.title for p in arena_presets()]
    for wanted in REQUIRED_TITLES:
        assert any(wanted in t for t in titles), wanted
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", list(arena_preset_paths()))
def test_every_preset_loads_and_runs(name):
    preset = load_arena_preset(name)
    assert preset.title and len(preset.explanation) > 200, "one paragraph of explanation"
    arena = Arena.from_preset(preset)
    arena.step(min(preset.steps, 300))
    for racer in arena.racers:
        assert racer.stopped is None, (name, racer.label)
        assert racer.steps == min(preset.steps, 300)
        assert racer.losses[-1] < racer.losses[0], (name, racer.label)
    # round trip through JSON
    again = parse_arena_preset(json.loads(json.dumps(preset.to_json())), name)
    assert again.to_json() == preset.to_json()


def test_preset_lessons_hold():
    """The explanations promise outcomes; check the ones they state."""
    def run(name):
        preset = load_arena_preset(name)
        arena = Arena.from_preset(preset)
        arena.step(preset.steps)
        return {r.label: r for r in arena.racers}

    r = run("01-momentum-vs-gradient-descent")
    assert r["Momentum 0.9"].distance < 0.01 < 1.0 < r["Gradient descent"].distance
    r = run("02-nesterov-overshoots-less")
    assert steps_to_loss(r["Nesterov 0.9"]) < steps_to_loss(r["Momentum 0.9"])
    r = run("03-adagrad-vs-gradient-descent")
    assert steps_to_loss(r["AdaGrad"]) < 300 and steps_to_loss(r["Gradient descent"]) is None
    r = run("04-adagrad-stalls-rmsprop-does-not")
    assert 0.4 < r["AdaGrad"].distances()[1000] < 0.7 and r["RMSProp"].distances()[250] < 0.1
    r = run("05-adam-on-rosenbrock")
    assert r["Adam 0.05"].distance < 0.01 and r["Gradient descent"].distance > 0.3
    fast = r["Adam 0.1"]  # reaches the minimum, then is thrown out around step 2,700
    arrived = fast.steps_to_loss(1e-10)
    assert arrived < 2000 and fast.distances()[arrived:].max() > 0.05
    assert 2500 < arrived + int(np.argmax(fast.distances()[arrived:])) < 2900
    r = run("06-momentum-close-to-1-never-settles")
    assert r["Momentum 0.9"].loss < 1e-12 and r["Momentum 0.99999"].loss > 1.0
    r = run("07-gradient-clipping-at-the-cliff")
    x0 = make_surface("plateau").view[0]
    assert r["Gradient descent"].path[:, 0].min() < x0 < r["Gradient descent, clipped"].path[:, 0].min()
    assert r["Gradient descent, clipped"].step_lengths().max() <= 1.0 + 1e-12
    assert (r["Momentum 0.9"].path[:, 0].min() < r["Momentum 0.9, clipped"].path[:, 0].min()
            < r["Gradient descent, clipped"].path[:, 0].min())
    assert all(racer.loss < 1e-6 for racer in r.values())
    r = run("08-escaping-a-saddle-point")

    def steps_near_saddle(racer):
        return int(np.sum(np.hypot(racer.path[:, 0], racer.path[:, 1]) < 0.2))

    assert steps_near_saddle(r["Gradient descent"]) > 80
    assert steps_near_saddle(r["Momentum 0.9"]) < 20
    assert steps_near_saddle(r["RMSProp"]) == steps_near_saddle(r["Adam"]) == 0
    assert all(racer.distance < 0.05 for racer in r.values())

    r = run("09-six-optimizers-on-one-bowl")
    finish = {label: racer.steps_to_loss() for label, racer in r.items()}
    assert None not in finish.values(), finish
    order = sorted(finish, key=finish.get)
    assert order == ["Nesterov 0.9", "RMSProp", "AdaGrad", "Momentum 0.9", "Adam", "Gradient descent"], finish
    assert finish["Nesterov 0.9"] < 90 and 400 < finish["Gradient descent"] < 500
    rms = r["RMSProp"]
    assert rms.step_lengths()[-100:].max() > 0.1  # still hopping around the bottom

    # rotated 45 degrees, AdaGrad and Adam fall far behind momentum
    preset = load_arena_preset("09-six-optimizers-on-one-bowl")
    arena = Arena({**preset.surface, "angle": 45.0}, preset.racers, start=preset.start)
    arena.step(1000)
    rotated = {racer.label: racer.steps_to_loss() for racer in arena.racers}
    assert rotated["Adam"] > 3 * rotated["Momentum 0.9"]
    assert rotated["AdaGrad"] is None or rotated["AdaGrad"] > 3 * rotated["Momentum 0.9"]



def test_momentum_and_noise_escape_rastrigin_dimples_over_seeds():
    preset = load_arena_preset("10-momentum-and-noise-on-rastrigin")
    quiet = Arena(preset.surface, preset.racers, start=preset.start)
    quiet.step(300)
    stuck = {round(r.distance, 6) for r in quiet.racers}
    assert len(stuck) == 1, "without noise all stop in the same dimple"
    for seed in range(5):
        arena = Arena(preset.surface, preset.racers, start=preset.start, noise_std=preset.noise_std,
                      seed=seed)
        arena.step(preset.steps)
        r = {racer.label: racer.distance for racer in arena.racers}
        assert r["Momentum 0.9"] + 1.5 < min(r["Gradient descent"], r["Adam"]), (seed, r)
        assert abs(r["Gradient descent"] - next(iter(stuck))) < 0.5  # still in its first dimple


def test_noise_helps_gradient_descent_off_the_saddle():
    """What the saddle preset invites the user to try, over several seeds."""
    preset = load_arena_preset("08-escaping-a-saddle-point")
    gd = [s for s in preset.racers if s.label == "Gradient descent"]

    def steps_near_saddle(noise, seed):
        arena = Arena(preset.surface, gd, start=preset.start, noise_std=noise, seed=seed)
        arena.step(300)
        path = arena.racers[0].path
        return int(np.sum(np.hypot(path[:, 0], path[:, 1]) < 0.2))

    quiet = steps_near_saddle(0.0, 0)
    for seed in range(5):
        assert steps_near_saddle(0.01, seed) * 1.8 < quiet


def _write(tmp_path, data, text=None):
    path = tmp_path / "bad.json"
    path.write_text(text if text is not None else json.dumps(data))
    return path


GOOD = {"title": "t", "explanation": "e", "surface": {"name": "bowl"},
        "racers": [{"label": "gd", "optimizer": {"name": "sgd", "learning_rate": 0.5}}]}


@pytest.mark.parametrize("change, message", [
    ({"titel": "x"}, r"unknown key preset\.titel \(did you mean 'title'\?\)"),
    ({"racers": []}, "racers must be a list of 1 to 9 racers"),
    ({"racers": [GOOD["racers"][0]] * 10}, "racers must be a list of 1 to 9 racers"),
    ({"surface": {"name": "rosenbrok"}}, r"surface: unknown surface 'rosenbrok' \(did you mean 'rosenbrock'\?\)"),
    ({"surface": {"name": "bowl", "angle": 400}}, r"surface\.angle must be a number >= -90 and <= 90"),
    ({"start": [1.0]}, r"start must be two numbers"),
    ({"start": "origin"}, r"preset\.start must be a list of numbers"),
    ({"steps": 0}, r"preset\.steps must be an integer >= 1"),
    ({"noise_std": -0.1}, r"preset\.noise_std must be a number >= 0"),
    ({"racers": [{"label": "gd", "optimizer": {"name": "sgd", "momentum": 0.9}}]},
     r"racers\[0\]: unknown key optimizer\.momentum"),
    ({"racers": [{"label": "gd", "optimizer": {"name": "sgd"}, "colour": "#ff0000"}]},
     r"unknown key racers\[0\]\.colour \(did you mean 'color'\?\)"),
    ({"racers": [{"label": "gd", "optimizer": {"name": "sgd"}, "color": "red"}]},
     r"racers\[0\]\.color must be a colour like"),
    ({"racers": [{"label": "gd", "optimizer": {"name": "adam", "beta_1": 1.0}}]},
     r"racers\[0\]: optimizer\.beta_1 must be a number >= 0 and < 1"),
    ({"racers": [{"label": "gd", "optimizer": {"name": "sgd"}, "schedule": {"name": "cosine"}}]},
     r"racers\[0\]: unknown schedule 'cosine'"),
    ({"racers": [{"optimizer": {"name": "sgd"}}]}, r"racers\[0\]\.label is missing"),
    ({"racers": [{"label": "gd", "optimizer": {"name": "sgd"}, "clip": {"clipnorm": -1}}]},
     r"racers\[0\]\.clip\.clipnorm must be a number > 0"),
])
def test_malformed_preset_gives_a_clear_error(tmp_path, change, message):
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(ExperimentError, match=message) as info:
        load_arena_preset(path)
    assert str(path) in str(info.value), "the message names the file"


@pytest.mark.parametrize("text, message", [
    ("{\"title\": ", "not valid JSON at line 1"),
    ('{"title": NaN}', "NaN is not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"title": "t"}', "explanation is missing"),
])
def test_unreadable_preset_gives_a_clear_error(tmp_path, text, message):
    with pytest.raises(ExperimentError, match=message):
        load_arena_preset(_write(tmp_path, None, text))


def test_unknown_preset_name_suggests_the_nearest():
    with pytest.raises(ExperimentError, match="did you mean '05-adam-on-rosenbrock'"):
        load_arena_preset("05-adam-on-rosenbrok")
