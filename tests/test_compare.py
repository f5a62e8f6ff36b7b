"""Comparisons: the section, the override rules, fair starts, the rule, the files, the curves."""
import json
import math

import numpy as np
import pytest

from engine import cli
from engine.control import RunControl
from engine.errors import ExperimentError
from engine.events import ComparisonFinished, ComparisonRecord
from engine.jobs.compare import comparison_runs
from engine.jobs.compare_report import (aggregate_curves, comparison_curves, distinguishable, format_table, gap_figures,
                                        summarize, verdict_kind)
from engine.jobs.runner import JobRequest, run_job
from engine.spec.overrides import apply_overrides
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer


def base(**changes):
    exp = {"seed": 5, "data": {"name": "moons", "n_samples": 300, "noise": 0.2},
           "model": {"layers": [{"units": 16, "activation": "elu"}, {"units": 16, "activation": "elu"}]},
           "optimizer": {"name": "nesterov", "learning_rate": 0.05, "momentum": 0.9, "clipnorm": 5.0},
           "training": {"epochs": 3, "batch_size": 16}}
    exp.update(changes)
    return exp


def with_compare(variants, **section):
    return resolve_experiment(base(compare={"variants": variants, **section}))


# ----------------------------------------------------------------------------- the section


def test_the_section_resolves_with_defaults():
    exp = with_compare([{"name": "a"}, {"name": "b", "overrides": {"optimizer": {"name": "adam"}}}])
    cfg = exp["compare"]
    assert cfg["seeds"] == [5, 6, 7]                 # 3 seeds from the experiment's seed
    assert cfg["target"] is None and cfg["metric"] == "auto"
    assert [v["name"] for v in cfg["variants"]] == ["a", "b"]
    assert cfg["variants"][0]["overrides"] == {} and cfg["variants"][0]["lr_finder"] is None
    assert resolve_experiment(exp)["compare"] == cfg  # resolving a resolved experiment changes nothing


@pytest.mark.parametrize("section, message", [
    ({"variants": [{"name": "a"}], "sedes": 3}, "compare.sedes (did you mean 'seeds'?)"),
    ({"variants": []}, "compare.variants must be a list of 1 to"),
    ({"variants": [{"name": "a"}, {"name": "a"}]}, "used by another variant"),
    ({"variants": [{"name": "a", "overides": {}}]}, "(did you mean 'overrides'?)"),
    ({"variants": [{"name": "x", "overrides": {"optimizer": {"learning_rate": -1}}}]},
     "compare.variants[0] (x): optimizer.learning_rate"),
    ({"variants": [{"name": "x", "overrides": {"seed": 3}}]}, "overrides may change"),
    ({"variants": [{"name": "a"}], "seeds": [1, 1]}, "must not repeat"),
    ({"variants": [{"name": "a"}], "seeds": 0}, "from 1 to"),
    ({"variants": [{"name": "a"}], "target": {"metric": "val_acc", "value": 0.9}}, "(did you mean 'val_accuracy'?)"),
    ({"variants": [{"name": "a"}], "target": {"metric": "val_accuracy", "value": 2}}, "from 0 to 1"),
    ({"variants": [{"name": "a", "lr_finder": {"max_lr": -1}}]}, "lr_finder.max_lr"),
])
def test_bad_sections_name_the_key(section, message):
    with pytest.raises(ExperimentError, match=None) as info:
        resolve_experiment(base(compare=section))
    assert message in str(info.value)


# ----------------------------------------------------------------------------- overrides


def test_another_optimizer_name_replaces_the_section_but_keeps_clipping():
    exp = resolve_experiment(base())
    adam = apply_overrides(exp, {"optimizer": {"name": "adam"}})["optimizer"]
    assert adam["name"] == "adam" and adam["learning_rate"] == 0.001 and "momentum" not in adam
    assert adam["clipnorm"] == 5.0
    same = apply_overrides(exp, {"optimizer": {"learning_rate": 0.1}})["optimizer"]
    assert same["name"] == "nesterov" and same["momentum"] == 0.9 and same["learning_rate"] == 0.1


def test_an_object_for_layers_changes_every_layer_and_a_new_activation_resets_its_companions():
    exp = resolve_experiment(base(model={"layers": [
        {"units": 16, "activation": "leaky_relu", "activation_params": {"alpha": 0.3}},
        {"units": 8, "activation": "tanh", "initializer": "random_normal", "initializer_params": {"stddev": 2.0}}]}))
    out = apply_overrides(exp, {"model": {"layers": {"activation": "selu"}}})["model"]["layers"]
    assert [l["activation"] for l in out] == ["selu", "selu"]
    assert [l["initializer"] for l in out] == ["lecun_normal", "lecun_normal"]   # Table 11-1's pair
    assert out[0]["activation_params"] == {} and out[1]["initializer_params"] == {}
    assert [l["units"] for l in out] == [16, 8]
    kept = apply_overrides(exp, {"model": {"layers": {"activation": "elu", "initializer": "glorot_normal"}}})
    assert [l["initializer"] for l in kept["model"]["layers"]] == ["glorot_normal"] * 2
    dropout = apply_overrides(exp, {"model": {"layers": {"dropout": 0.2}}})["model"]["layers"]
    assert dropout[0]["activation_params"] == {"alpha": 0.3} and dropout[1]["initializer_params"] == {"stddev": 2.0}
    listed = apply_overrides(exp, {"model": {"layers": [{"units": 4}]}})["model"]["layers"]
    assert len(listed) == 1 and listed[0]["units"] == 4


def test_overrides_return_a_resolved_experiment_without_compare_or_stages():
    exp = with_compare([{"name": "a"}])
    out = apply_overrides(exp, {"training": {"early_stopping": {"patience": 2}}})
    assert out["compare"] is None and out["stages"] is None
    assert out["training"]["early_stopping"]["patience"] == 2
    assert out["training"]["early_stopping"]["monitor"] == "val_loss"   # defaults filled


# ----------------------------------------------------------------------------- fair starts


def _kernels(trainer):
    return {t.name: trainer.net.tensor(t.name).copy() for t in trainer.net.tensors if t.name.endswith(".kernel")}


def test_variants_that_keep_the_architecture_start_from_identical_weights_and_batches():
    exp = with_compare([
        {"name": "nesterov"},
        {"name": "adam", "overrides": {"optimizer": {"name": "adam", "learning_rate": 0.01}}},
        {"name": "1cycle", "overrides": {"schedule": {"name": "onecycle", "max_lr": 0.1}}},
        {"name": "l2 + dropout", "overrides": {"model": {"layers": {"l2": 0.01, "dropout": 0.3}}}},
        {"name": "batch norm", "overrides": {"model": {"layers": {"batch_norm": "before"}}}},
        {"name": "leaky (He too)", "overrides": {"model": {"layers": {"activation": "leaky_relu"}}}},
        {"name": "wider", "overrides": {"model": {"layers": {"units": 32}}}},
        {"name": "glorot", "overrides": {"model": {"layers": {"initializer": "glorot_uniform"}}}},
    ], seeds=[11, 12])
    jobs = comparison_runs(exp)
    assert len(jobs) == 16 and [j.seed for j in jobs[:8]] == [11] * 8
    for seed in (11, 12):
        trainers = {j.variant: Trainer(j.experiment) for j in jobs if j.seed == seed}
        ref = trainers["nesterov"]
        ref_k = _kernels(ref)
        first_batch = ref._epoch_order()[0][:16]
        for name in ("adam", "1cycle", "l2 + dropout", "batch norm", "leaky (He too)"):
            t = trainers[name]
            k = _kernels(t)
            assert k.keys() == ref_k.keys() and all(np.array_equal(k[n], ref_k[n]) for n in k), name
            assert np.array_equal(t.x, ref.x) and np.array_equal(t._epoch_order()[0][:16], first_batch), name
        assert not np.array_equal(_kernels(trainers["glorot"])["layers.0.kernel"], ref_k["layers.0.kernel"])
        assert _kernels(trainers["wider"])["layers.0.kernel"].shape != ref_k["layers.0.kernel"].shape
    a, b = (Trainer(j.experiment) for j in jobs if j.variant == "nesterov")
    assert not np.array_equal(_kernels(a)["layers.0.kernel"], _kernels(b)["layers.0.kernel"])  # seeds differ


# ----------------------------------------------------------------------------- the rule


def test_the_rule_compares_the_mean_paired_difference_with_the_seed_spread():
    a = {1: 0.80, 2: 0.85, 3: 0.90}
    close = distinguishable(a, {s: v - 0.01 for s, v in a.items()})
    assert close["n"] == 3 and math.isclose(close["mean_diff"], 0.01)
    assert math.isclose(close["spread"], 0.05) and not close["distinguishable"]
    # a constant shift is perfectly consistent over seeds (p = 0), but still within the spread: not enough
    assert close["p_value"] == 0.0 and close["wins_a"] == 3
    far = distinguishable(a, {s: v - 0.2 for s, v in a.items()})
    assert far["distinguishable"]
    one = distinguishable({1: 0.9}, {1: 0.1})
    assert one["n"] == 1 and not one["distinguishable"] and math.isnan(one["spread"])
    missing = distinguishable({1: 0.9, 2: float("nan"), 3: 0.8}, {1: 0.1, 2: 0.5, 4: 0.3})
    assert missing["n"] == 1   # only seed 1 has finite values on both sides


THREE_VARIANTS = {"variants": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "target": None, "metric": "auto"}


def three_variant_records(per_seed) -> list[dict]:
    """Finished runs of variants a, b, c over seeds 1, 2, 3: ``per_seed`` holds each seed's (a, b, c)
    validation accuracies (the losses are 1 - accuracy)."""
    return [{"variant": name, "seed": seed, "folder": f"{name}-{seed}", "status": "finished", "steps": 10,
             "final_val_accuracy": v, "final_val_loss": 1 - v, "best_val_accuracy": v, "best_val_loss": 1 - v,
             "test_accuracy": v, "steps_to_target": None, "train_seconds": 1.0, "wall_seconds": 1.5,
             "init_hash": "x", "data_hash": "y", "lr_found": None, "sparsity": 0.0}
            for seed, values in zip((1, 2, 3), per_seed) for name, v in zip("abc", values)]


def test_summary_says_plainly_when_variants_are_not_distinguishable():
    cfg = THREE_VARIANTS
    records = three_variant_records(((0.80, 0.81, 0.50), (0.86, 0.84, 0.52), (0.83, 0.84, 0.49)))
    s = summarize(records, cfg)
    assert s["metric"] == "val_accuracy" and s["ranking"][-1] == "c"
    best = s["best"]
    other = "a" if best == "b" else "b"
    assert s["variants"][other]["vs_best"]["verdict"].startswith("not distinguishable at 3 seeds")
    assert s["variants"]["c"]["vs_best"]["verdict"].startswith("worse by")
    table = format_table(s)
    assert "not distinguishable at 3 seeds" in table and "rule:" in table
    assert "Picking the best of several variants favours a lucky one" in table
    assert len(s["pairs"]) == 3
    # with a loss, lower is better: the verdict and the win counts follow
    losses = summarize(records, dict(cfg, metric="val_loss"))
    assert losses["metric"] == "val_loss" and losses["ranking"][-1] == "c"
    c = losses["variants"]["c"]["vs_best"]
    assert c["verdict"].startswith("worse by") and c["wins_a"] == 3 and c["mean_diff"] > 0


def test_the_verdict_colour_follows_the_rule_not_the_p_value():
    """Issue 14: a row said "worse" in red beside p = 0.16.  The colour is the rule's (gap > spread);
    the p-value is shown beside the two figures the rule compares, and decides nothing."""
    cfg = THREE_VARIANTS
    # c: 1.83 points behind a on average, within a's seed-to-seed spread of 2 points; p ~ 0.16
    records = three_variant_records(((0.80, 0.795, 0.79), (0.82, 0.815, 0.81), (0.84, 0.845, 0.805)))
    s = summarize(records, cfg)
    assert s["best"] == "a"
    c = s["variants"]["c"]["vs_best"]
    # by hand: diffs a - c = 0.01, 0.01, 0.035 -> mean 0.018333; std of a = 0.02, of c = 0.0104 -> spread 0.02
    assert math.isclose(c["mean_diff"], 0.055 / 3) and math.isclose(c["spread"], 0.02)
    assert not c["distinguishable"] and verdict_kind(s, "c") == "same"
    b = s["variants"]["b"]["vs_best"]
    assert not b["distinguishable"] and verdict_kind(s, "b") == "same"
    assert verdict_kind(s, "a") == "best"
    gap, spread_, p = gap_figures(s, "c")
    assert (gap, spread_) == ("1.83 pts", "2.00 pts")
    # t = 0.01833 / (0.01443 / sqrt 3) = 2.20 with 2 degrees of freedom: p = 0.159
    assert p == "0.16" and c["p_value"] == pytest.approx(0.159, abs=0.002)
    assert gap_figures(s, "a") == ("-", "-", "-")
    # a clear gap: red, whatever the p-value
    far = [dict(r, final_val_accuracy=r["final_val_accuracy"] - 0.2) if r["variant"] == "c" else r for r in records]
    s2 = summarize(far, cfg)
    assert s2["variants"]["c"]["vs_best"]["distinguishable"] and verdict_kind(s2, "c") == "worse"
    one = summarize([r for r in records if r["seed"] == 1], cfg)
    assert verdict_kind(one, "c") == "none"   # one seed: nothing to colour


# ----------------------------------------------------------------------------- running


def test_a_comparison_runs_in_a_process_pool_and_writes_its_files(tmp_path):
    exp = resolve_experiment(base(compare={
        "variants": [{"name": "nesterov"}, {"name": "same again"},
                     {"name": "frozen", "overrides": {"optimizer": {"name": "sgd", "learning_rate": 1e-7}}}],
        "seeds": 2, "target": {"metric": "val_accuracy", "value": 0.8}}))
    events = list(run_job(JobRequest(exp, tmp_path / "cmp", workers=2)))
    seen = [(e.done, e.total) for e in events if isinstance(e, ComparisonRecord)]
    records = [e.record for e in events if isinstance(e, ComparisonRecord)]
    summary = events[-2].summary
    assert isinstance(events[-2], ComparisonFinished)
    assert summary["workers"] == 2 and sorted(seen) == [(i, 6) for i in range(1, 7)]
    folder = tmp_path / "cmp"
    for name in ("nesterov", "same-again", "frozen"):
        for seed in (5, 6):
            run = folder / f"{name}-seed{seed}"
            assert (run / "summary.json").is_file() and (run / "epochs.csv").is_file(), run
            assert json.loads((run / "summary.json").read_text())["status"] == "finished"
    data = json.loads((folder / "comparison.json").read_text())
    assert data["seeds"] == [5, 6] and data["metric"] == "val_accuracy"
    v = data["variants"]
    assert all(v[n]["same_initial_weights_as_first"] and v[n]["same_data_and_batches_as_first"] for n in v)
    # identical settings and seeds: bit-identical runs, so not distinguishable
    assert v["same again"]["final_val_accuracy"] == v["nesterov"]["final_val_accuracy"]
    verdicts = {n: v[n]["vs_best"]["verdict"] for n in v}
    assert any(t.startswith("not distinguishable at 2 seeds") for t in verdicts.values())
    assert verdicts["frozen"].startswith("worse by")
    assert v["frozen"]["steps_to_target"]["reached"] == 0
    assert v["nesterov"]["steps_to_target"]["reached"] == 2
    assert format_table(data).splitlines()[1:] == format_table(summary).splitlines()[1:]   # from the file too
    csv_text = (folder / "comparison.csv").read_text()
    assert csv_text.splitlines()[1].startswith("variant,n_seeds,statuses,final_mean")
    assert len(csv_text.splitlines()) == 5
    curves = comparison_curves(folder, "val_accuracy")
    assert set(curves) == {"nesterov", "same again", "frozen"}
    c = curves["nesterov"]
    assert list(c["steps"]) == [17.0, 34.0, 51.0] and list(c["count"]) == [2, 2, 2]
    assert np.all(c["min"] <= c["mean"]) and np.all(c["mean"] <= c["max"])
    # the window's live curves (from the job records) are the curves read back from the folder
    from engine.jobs.compare_report import CURVE_METRICS, read_comparison, record_curves

    read_summary, read_curves = read_comparison(folder)
    assert format_table(read_summary) == format_table(data)
    for metric in CURVE_METRICS:
        live = record_curves(records, metric)
        assert set(live) == set(read_curves[metric]) == {"nesterov", "same again", "frozen"}
        for name, c in live.items():
            for key in ("steps", "mean", "min", "max", "count"):
                np.testing.assert_allclose(c[key], read_curves[metric][name][key], rtol=1e-12, err_msg=metric)


def test_the_cli_runs_a_comparison_and_prints_the_table(tmp_path, capsys):
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(base(compare={"variants": [
        {"name": "nesterov"}, {"name": "adam", "overrides": {"optimizer": {"name": "adam", "learning_rate": 0.01}}}],
        "seeds": 3})))
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--workers", "1", "--seeds", "2", "--epochs", "1", "--out", str(out),
                     "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "comparison of 2 variants over 2 seeds [5, 6]" in text and "rule:" in text
    assert sorted(p.name for p in out.iterdir()) == ["adam-seed5", "adam-seed6", "comparison.csv",
                                                     "comparison.json", "nesterov-seed5", "nesterov-seed6"]
    assert json.loads((out / "nesterov-seed5" / "experiment.json").read_text())["training"]["epochs"] == 1
    assert cli.main(["run", str(path), "--seeds", "1,x", "--out", str(tmp_path / "o2")]) == 2
    assert "--seeds must be" in capsys.readouterr().err


def test_seeds_and_workers_options_need_a_compare_section(tmp_path, capsys):
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(base()))
    assert cli.main(["run", str(path), "--workers", "2", "--out", str(tmp_path / "o")]) == 2
    assert "compare or sweep section" in capsys.readouterr().err


# ----------------------------------------------------------------------------- curves


def test_curves_aggregate_to_a_mean_and_a_band_on_a_common_axis():
    curves = {"a": [([10, 20, 30], [0.5, 0.6, 0.7]), ([10, 20, 30], [0.3, 0.4, 0.9])],
              "b": [([10, 20, 30, 40], [1.0, 2.0, 3.0, 4.0]), ([10, 20], [3.0, 4.0]),
                    ([10, 20, 30, 40], [0.0, 0.0, float("nan"), float("nan")])]}
    out = aggregate_curves(curves)
    a = out["a"]
    assert list(a["steps"]) == [10, 20, 30]
    assert np.allclose(a["mean"], [0.4, 0.5, 0.8]) and np.allclose(a["min"], [0.3, 0.4, 0.7])
    assert np.allclose(a["max"], [0.5, 0.6, 0.9]) and list(a["count"]) == [2, 2, 2]
    b = out["b"]
    assert list(b["steps"]) == [10, 20, 30, 40]
    # the short run and the diverged one stop counting where they stop
    assert list(b["count"]) == [3, 3, 1, 1]
    assert np.allclose(b["mean"], [4 / 3, 2.0, 3.0, 4.0])
    grid = aggregate_curves({"a": [([0, 10], [0.0, 1.0]), ([0, 5, 10], [0.0, 1.0, 1.0])]}, n_points=3)["a"]
    assert np.allclose(grid["steps"], [0, 5, 10]) and np.allclose(grid["mean"], [0.0, 0.75, 1.0])
    assert np.allclose(grid["min"], [0.0, 0.5, 1.0])


def test_a_stop_request_stops_the_remaining_runs_and_the_report_says_so(tmp_path):
    exp = resolve_experiment(base(compare={"variants": [{"name": "a"}, {"name": "b"}], "seeds": [1, 2]},
                                  training={"epochs": 3, "batch_size": 16, "log_every": 2}))
    control = RunControl()
    for event in run_job(JobRequest(exp, tmp_path / "cmp", workers=1), control):
        if isinstance(event, ComparisonRecord):
            control.stop()       # after the first run: the others stop at once and still report
        elif isinstance(event, ComparisonFinished):
            summary = event.summary
    statuses = [r["status"] for v in summary["variants"].values() for r in v["runs"]]
    assert statuses.count("finished") == 1 and statuses.count("stopped") == 3
    assert "stopped" in format_table(summary)
