"""engine.spec.stages: the stages section, the runner's events, run folders, the shipped stage presets."""
import copy
import csv
import json
import math

import numpy as np
import pytest

from engine.jobs import stages as R
from engine.spec import stages as S
from engine.control import RunControl
from engine.errors import ExperimentError
from engine.events import EpochEnd, RunFinished, RunStarted, StepMetrics
from engine.spec.experiment import load_experiment, preset_paths, resolve_experiment
from engine.spec.overrides import apply_overrides


def elu_bn(units):
    return {"units": units, "activation": "elu", "batch_norm": "before", "use_bias": False}


TINY = {
    "name": "tiny-stages", "seed": 7,
    "data": {"name": "moons", "n_samples": 300},
    "model": {"layers": [elu_bn(8), elu_bn(8)], "output": {"activation": "auto"}},
    "optimizer": {"name": "sgd", "learning_rate": 0.05},
    "training": {"epochs": 2, "batch_size": 32},
    "stages": {"seeds": 2, "list": [
        {"name": "a", "title": "source"},
        {"name": "scratch", "data": {"n_samples": 100}},
        {"name": "reuse", "data": {"n_samples": 100}, "reuse": {"from": "a", "layers": "all_but_output"},
         "model": {"output": {"activation": "auto"}},
         "phases": [{"name": "frozen", "epochs": 2, "cache": True, "measure_caching": True},
                    {"name": "unfrozen", "epochs": 2, "freeze": "none", "learning_rate_factor": 0.1}]}],
        "report": {"baseline": "scratch", "target": 0.5}},
}


def tiny(**changes):
    raw = copy.deepcopy(TINY)
    raw.update(changes)
    return raw


@pytest.fixture(scope="module")
def tiny_events():
    return list(R.run_stages(resolve_experiment(tiny())))


def test_resolving_fills_defaults_and_is_idempotent():
    exp = resolve_experiment(tiny())
    st = exp["stages"]
    assert st["seeds"] == [7, 8]
    assert [s["name"] for s in st["list"]] == ["a", "scratch", "reuse"]
    reuse = st["list"][2]
    assert [p["freeze"] for p in reuse["phases"]] == [[0, 1], []]
    assert reuse["phases"][1]["optimizer"]["learning_rate"] == pytest.approx(0.005)
    assert st["list"][1]["data"]["n_samples"] == 100 and st["list"][1]["phases"][0]["freeze"] == []
    assert st["report"]["compare"] == ["reuse"]  # the stages with the baseline's data
    assert resolve_experiment(copy.deepcopy(exp)) == exp
    bare = tiny()
    bare["stages"] = bare["stages"]["list"]
    assert resolve_experiment(bare)["stages"]["seeds"] == [7]


@pytest.mark.parametrize("path, value, message", [
    (("stages", "bogus"), 1, "unknown key stages.bogus"),
    (("stages", "list", 2, "reuse", "from"), "later", "stages.list[2] (reuse).reuse.from must name an earlier stage"),
    (("stages", "list", 2, "reuse", "layers"), 5, "reuse.layers must be a number of hidden layers from 0 to 2"),
    (("stages", "list", 2, "reuse", "lyers"), 1, "unknown key stages.list[2] (reuse).reuse.lyers (did you mean 'layers'?)"),
    (("stages", "list", 2, "phases", 1, "freeze"), "some", "phases[1].freeze must be 'reused', 'none'"),
    (("stages", "list", 2, "phases", 1, "learning_rate"), 0.1, "give learning_rate or learning_rate_factor, not both"),
    (("stages", "list", 2, "phases", 1, "learning_rate_factor"), -1, "learning_rate_factor must be a number > 0"),
    (("stages", "list", 2, "phases", 1, "epochs"), 0, "phases[1]: training.epochs must be"),
    (("stages", "list", 2, "phases", 1, "cache"), True, "phases[1].cache: no frozen layer at the bottom"),
    (("stages", "list", 1, "name"), "a", "name 'a' is used by an earlier stage"),
    (("stages", "list", 1, "data", "noise"), -3, "stages.list[1] (scratch): data.noise must be"),
    (("stages", "list", 1, "optimizer", "learning_rate"), -1, "stages.list[1] (scratch): "),
    (("stages", "report", "baseline"), "scrach", "did you mean 'scratch'?"),
    (("stages", "report", "metric"), "accuracy", "stages.report.metric must be one of"),
    (("stages", "seeds"), 0, "stages.seeds must be from 1 to"),
    (("stages", "list", 2, "phases", 0, "freeze"), [0, 1, 2], "freezes every layer"),
])
def test_bad_stages_are_refused_with_the_key(path, value, message):
    raw = tiny()
    node = raw
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    with pytest.raises(ExperimentError) as err:
        resolve_experiment(raw)
    assert message in str(err.value)


def test_stages_and_phases_inherit_by_the_one_merge_rule():
    """A stage is the top level with its sections merged in, a phase its stage with its own merged in,
    exactly as a comparison variant's overrides (engine.spec.overrides): nested objects merge, a new
    optimizer keeps the clipping keys, an output override merges into the output layer."""
    raw = tiny(optimizer={"name": "sgd", "learning_rate": 0.05, "clipnorm": 1.0},
               schedule={"name": "power", "s": 500.0, "c": 2.0},
               training={"epochs": 2, "batch_size": 32,
                         "early_stopping": {"monitor": "val_accuracy", "patience": 3}})
    raw["model"]["output"] = {"activation": "auto", "l2": 0.01}
    stage = {"name": "b", "model": {"layers": [elu_bn(4)], "output": {"initializer": "he_normal"}},
             "optimizer": {"name": "adam"}, "training": {"early_stopping": {"patience": 1}},
             "phases": [{"name": "p", "schedule": {"c": 1.0}, "epochs": 3}]}
    raw["stages"] = {"list": [stage]}
    exp = resolve_experiment(raw)
    got = exp["stages"]["list"][0]
    top = dict(exp, stages=None)
    want = apply_overrides(top, {k: stage[k] for k in ("model", "optimizer", "training")})
    for key in ("model", "optimizer", "schedule", "training"):
        assert got[key] == want[key], key
    assert got["optimizer"]["name"] == "adam" and got["optimizer"]["clipnorm"] == 1.0
    assert got["training"]["early_stopping"]["monitor"] == "val_accuracy"      # merged, not replaced
    assert got["model"]["output"]["l2"] == 0.01 and got["model"]["output"]["initializer"] == "he_normal"
    phase = got["phases"][0]
    want_phase = apply_overrides(want, {"schedule": {"c": 1.0}, "training": {"epochs": 3}})
    assert phase["schedule"] == want_phase["schedule"] and phase["schedule"]["s"] == 500.0
    assert phase["training"] == want_phase["training"]


def test_caching_with_dropout_below_the_cut_is_refused_on_load():
    raw = tiny()
    raw["model"]["layers"][1]["dropout"] = 0.2
    with pytest.raises(ExperimentError, match=r"phases\[0\].cache: .*layer 1 has dropout 0.2"):
        resolve_experiment(raw)


def test_events_follow_the_documented_order(tiny_events):
    kinds = [type(e).__name__ for e in tiny_events]
    assert kinds[0] == "StageStarted" and kinds[-1] == "StagesFinished"
    assert kinds.count("StageStarted") == kinds.count("StageFinished") == 6
    assert kinds.count("RunStarted") == kinds.count("RunFinished") == 8  # (1 + 1 + 2 phases) x 2 seeds
    started = [e for e in tiny_events if isinstance(e, S.StageStarted)]
    assert [(e.seed, e.stage, e.run_id) for e in started] == [
        (7, "a", 0), (7, "scratch", 1), (7, "reuse", 2), (8, "a", 3), (8, "scratch", 4), (8, "reuse", 5)]
    assert started[2].reuse == {"from": "a", "k": 2, "layers": "all_but_output"}
    labels = [e.stage for e in tiny_events if isinstance(e, RunStarted)][:4]
    assert labels == ["a", "scratch", "reuse/frozen", "reuse/unfrozen"]


def test_steps_continue_across_phases_of_one_network(tiny_events):
    run = [e for e in tiny_events if getattr(e, "run_id", None) == 2]
    starts = [e for e in run if isinstance(e, RunStarted)]
    finishes = [e for e in run if isinstance(e, RunFinished)]
    first, second = finishes
    assert second.step == first.step + second.summary["steps"]
    assert starts[1].total_steps == second.step
    steps = [e.step for e in run if isinstance(e, StepMetrics)]
    assert steps == sorted(steps) and len(set(steps)) == len(steps) and steps[-1] == second.step
    epochs = [e.epoch for e in run if isinstance(e, EpochEnd)]
    assert epochs == [1, 2, 3, 4]
    lrs = [e.experiment["optimizer"]["learning_rate"] for e in starts]
    assert lrs == [pytest.approx(0.05), pytest.approx(0.005)]
    assert [[l["trainable"] for l in e.experiment["model"]["layers"]] for e in starts] == [[False, False], [True, True]]


def test_cached_phase_reports_the_whole_network(tiny_events):
    run = [e for e in tiny_events if getattr(e, "run_id", None) == 2]
    started = next(e for e in run if isinstance(e, RunStarted))
    assert len(started.layers) == 3 and [li.trainable for li in started.layers] == [False, False, True]
    metrics = [e for e in run if isinstance(e, StepMetrics)]
    first_phase = [m for m in metrics if m.step <= 6]
    assert first_phase and all(len(m.grad_norm) == 3 and np.isnan(m.grad_norm[:2]).all()
                               and np.isfinite(m.grad_norm[2]) for m in first_phase)
    finished = next(e for e in run if isinstance(e, RunFinished))
    assert "layers.0.kernel" in finished.weights and finished.summary["n_params"] > 0


def test_frozen_phase_keeps_the_reused_weights_and_bn_statistics(tiny_events):
    a_final = next(e for e in tiny_events if isinstance(e, RunFinished) and e.run_id == 0)
    frozen_end = next(e for e in tiny_events if isinstance(e, RunFinished) and e.run_id == 2)
    unfrozen_end = [e for e in tiny_events if isinstance(e, RunFinished) and e.run_id == 2][1]
    names = [n for n in a_final.weights if int(n.split(".")[1]) < 2]
    assert any(n.endswith("bn.moving_variance") for n in names)
    for name in names:
        assert np.array_equal(frozen_end.weights[name], a_final.weights[name]), name
    assert not np.array_equal(unfrozen_end.weights["layers.0.kernel"], a_final.weights["layers.0.kernel"])


def test_stage_summaries_and_report(tiny_events):
    finished = [e for e in tiny_events if isinstance(e, S.StageFinished)]
    reuse = [e.summary for e in finished if e.stage == "reuse"]
    for s in reuse:
        c = s["caching"]
        assert c["max_weight_difference"] < 1e-5 and c["speedup_per_epoch"] > 0
        assert [p["phase"] for p in s["phases"]] == ["frozen", "unfrozen"]
        assert s["phases"][1]["first_step"] == s["phases"][0]["steps"]
        assert s["reused_layers"] == 2 and s["reused_from"] == "a"
    report = tiny_events[-1].report
    assert set(report["stages"]) == {"a", "scratch", "reuse"}
    assert report["stages"]["reuse"]["test_accuracy"]["n"] == 0  # moons has no test split by default
    comp = report["comparisons"][0]
    assert comp["stage"] == "reuse" and comp["baseline"] == "scratch" and comp["n"] == 0
    assert "no seed finished both" in comp["verdict"]
    assert report["stages"]["a"]["best_val_accuracy"]["n"] == 2


def test_report_gains_and_verdicts():
    staged = {"report": {"metric": "test_accuracy", "baseline": "b", "compare": ["x"], "target": None}}
    runs = lambda vals: [{"seed": i, "test_accuracy": v} for i, v in enumerate(vals)]
    rep = R.build_report(staged, {"b": runs([0.90, 0.92, 0.94]), "x": runs([0.95, 0.96, 0.97])})
    c = rep["comparisons"][0]
    assert c["wins"] == 3 and c["gain"]["mean"] == pytest.approx(0.04) and c["distinguishable"]
    assert "higher on 3 of 3 seeds" in c["verdict"] and "not distinguishable" not in c["verdict"]
    rep = R.build_report(staged, {"b": runs([0.90, 0.95, 0.93]), "x": runs([0.91, 0.94, 0.935])})
    c = rep["comparisons"][0]
    assert not c["distinguishable"] and "not distinguishable at 3 seeds" in c["verdict"]
    assert "not distinguishable at 3 seeds" in R.format_report(rep)


def test_stop_ends_the_workflow_with_a_report():
    control = RunControl()
    events = []
    for e in R.run_stages(resolve_experiment(tiny()), control):
        events.append(e)
        if isinstance(e, EpochEnd):
            control.stop()
    assert isinstance(events[-1], S.StagesFinished)
    assert sum(isinstance(e, S.StageStarted) for e in events) == 1


def test_cli_writes_one_folder_per_stage_and_phase(tmp_path, capsys):
    from engine.cli import main

    path = tmp_path / "tiny.json"
    raw = tiny()
    raw["stages"]["seeds"] = 1
    path.write_text(json.dumps(raw))
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and set(summary["report"]["stages"]) == {"a", "scratch", "reuse"}
    rows = list(csv.DictReader((out / "stages.csv").open()))
    assert [r["stage"] for r in rows] == ["a", "scratch", "reuse"]
    assert float(rows[2]["caching_speedup_per_epoch"]) > 0
    for sub in ("seed-7/01-a", "seed-7/02-scratch", "seed-7/03-reuse/01-frozen", "seed-7/03-reuse/02-unfrozen"):
        assert (out / sub / "weights.safetensors").is_file() and (out / sub / "epochs.csv").is_file(), sub
    assert json.loads((out / "experiment.json").read_text())["stages"]["list"][2]["reuse"]["from"] == "a"
    # every stage's weights carry its data statistics: predict needs no --raw
    from engine.data import load_dataset
    from engine.formats.predict import predict_file
    from engine.formats.weights import load_any

    for sub in ("seed-7/01-a", "seed-7/03-reuse/02-unfrozen"):
        _, meta = load_any(out / sub / "weights.safetensors")
        assert meta["data"]["n_inputs"] == 2 and len(meta["data"]["mean"]) == 2, sub
    _, meta = load_any(out / "seed-7/03-reuse/02-unfrozen/weights.safetensors")
    source = load_dataset(resolve_experiment(raw)["stages"]["list"][0]["data"], 7)   # standardized like stage a
    np.testing.assert_allclose(meta["data"]["mean"], source.mean, rtol=1e-6)
    points = tmp_path / "points.csv"
    points.write_text("x1,x2\n0.5,0.25\n-1.0,0.75\n")
    table = predict_file(out / "seed-7/03-reuse/02-unfrozen/weights.safetensors", points)
    assert table.splitlines()[0].startswith("row,") and len(table.splitlines()) == 3
    history = list(csv.DictReader((out / "seed-7/03-reuse/02-unfrozen/history.csv").open()))
    first = list(csv.DictReader((out / "seed-7/03-reuse/01-frozen/history.csv").open()))
    assert int(history[0]["step"]) > int(first[-1]["step"])  # one time axis across phases
    assert main(["run", str(path), "--out", str(tmp_path / "x"), "--init-weights", "w.npz"]) == 2
    assert "does not apply to a staged experiment" in capsys.readouterr().err


def stage_presets():
    return [name for name, p in preset_paths().items() if '"stages"' in p.read_text()]


def test_the_stage_presets_ship():
    names = stage_presets()
    for prefix in ("12-", "13-", "14-"):
        assert any(n.startswith(prefix) for n in names), prefix


def shrunk(data: dict) -> dict:
    """The same data set with few images (the smoke test is about the workflow, not the numbers)."""
    data = dict(data)
    if data.get("name", "fashion_mnist") == "fashion_mnist":
        data.update(per_class=20, val_per_class=10, test_per_class=10)
    elif data["name"] == "fashion_mnist_pairs":
        data.update(pairs=200, val_pairs=40, test_pairs=40, val_images_per_class=10)
    return data


@pytest.mark.parametrize("name", stage_presets())
def test_stage_preset_loads_and_runs_a_few_steps(name):
    exp = load_experiment(name)
    for key in ("title", "section", "description", "look_at"):
        assert len(exp[key]) > 20, key
    assert resolve_experiment(copy.deepcopy(exp)) == exp
    raw = json.loads(preset_paths()[name].read_text())
    raw["data"] = shrunk(raw["data"])
    for stage in raw["stages"]["list"]:
        if "data" in stage:
            stage["data"] = shrunk(dict(raw["data"], **stage["data"]) if "name" not in stage["data"]
                                   else stage["data"])
    small = resolve_experiment(raw)
    events = list(R.run_stages(small, max_steps=2, seeds=small["stages"]["seeds"][:1]))
    report = events[-1].report
    assert set(report["stages"]) == {s["name"] for s in exp["stages"]["list"]}
    for e in events:
        if isinstance(e, RunFinished):
            assert e.status == "finished" and 1 <= e.summary["steps"] <= 2
            assert all(np.isfinite(v).all() for v in e.weights.values())


@pytest.mark.slow
def test_preset_12_shortened_over_3_seeds_teaches_what_was_measured():
    """Preset 12 with a smaller model A (500 images per class, 2 epochs) and
    the book's task B, over 3 seeds.  What the full preset measured, and
    what holds here too: A's frozen features alone (only the new output
    trains) already separate shirts from sandals; caching the frozen layers
    changes nothing but the time; and reusing A's layers gives no gain over
    training B from scratch that clears the seed-to-seed spread (the book
    admits its own gain came from trying setups until one looked good)."""
    raw = json.loads(preset_paths()["12-transfer-learning"].read_text())
    raw["data"].update(per_class=500, val_per_class=100, test_per_class=200)
    raw["training"]["epochs"] = 2
    raw["stages"]["list"] = [s for s in raw["stages"]["list"] if s["name"] in ("a", "b_scratch", "b_on_a")]
    raw["stages"]["seeds"] = 3    # the preset runs 6 seeds and the chapter's exercise variants; the recipe here
    for stage in raw["stages"]["list"][1:]:
        stage["data"]["test_per_class"] = 500
    raw["stages"]["report"]["compare"] = ["b_on_a"]
    exp = resolve_experiment(raw)
    assert exp["stages"]["seeds"] == [42, 43, 44]
    finished = [e for e in R.run_stages(exp)]
    summaries = [e.summary for e in finished if isinstance(e, S.StageFinished)]
    on_a = [s for s in summaries if s["stage"] == "b_on_a"]
    assert len(on_a) == 3
    for s in on_a:
        frozen = s["phases"][0]
        assert frozen["frozen"] == [0, 1, 2, 3, 4] and frozen["cached"]
        assert frozen["final_val_accuracy"] >= 0.85, s
        assert s["caching"]["max_weight_difference"] < 1e-6
        assert s["caching"]["speedup_per_epoch"] > 1.0
        assert s["phases"][1]["learning_rate"] == pytest.approx(1e-4)
    comp = finished[-1].report["comparisons"][0]
    assert comp["n"] == 3
    assert not (comp["distinguishable"] and comp["gain"]["mean"] > 0), comp["verdict"]


def test_pair_builder_labels_and_distinct_images():
    from engine.data.pairs import _pairs

    rng = np.random.default_rng(0)
    pools = [np.arange(0, 5), np.arange(100, 103), np.arange(200, 210)]
    a, b, same = _pairs(pools, 2000, 0.3, rng)
    assert np.array_equal(a // 100 == b // 100, same == 1)
    assert np.all(a != b) and same.mean() == pytest.approx(0.3)
    assert set(np.unique(a // 100)) == {0, 1, 2}


def test_pairs_dataset_shapes_and_reuse_scaling():
    from engine.data import load_dataset
    from engine.errors import DataError

    small = {"name": "fashion_mnist_pairs", "pairs": 300, "val_pairs": 50, "test_pairs": 60,
             "val_images_per_class": 20, "classes": [0, 5, 9]}
    d = load_dataset(small, 1)
    assert d.x_train.shape == (300, 784) and d.x_val.shape == (50, 784) and d.x_test.shape == (60, 784)
    assert d.n_classes == 2 and d.class_names == ("different", "same") and d.y_train.mean() == pytest.approx(0.5)
    cat = load_dataset(dict(small, combine="concatenate"), 1)
    assert cat.x_train.shape == (300, 1568) and cat.mean.shape == (1568,)
    # a single-image classifier scaled like the pair pool: (pixel - pool mean) / pool std
    single = load_dataset({"name": "fashion_mnist", "classes": [0, 5, 9], "per_class": 5, "val_per_class": 2,
                           "test_per_class": 2}, 1)
    scaled = R._restandardize(single, d)
    np.testing.assert_allclose(scaled.x_train, (single.to_original(single.x_train) - d.mean) / d.std, atol=1e-4)
    with pytest.raises(ExperimentError, match="1568 features"):
        R._restandardize(single, cat)
    with pytest.raises(DataError, match="images_per_class"):
        load_dataset(dict(small, images_per_class=60000), 1)
    with pytest.raises(ExperimentError, match="at least 2 classes"):
        load_dataset(dict(small, classes=[3]), 1)
