"""Sweeps: the section's schema, the trials it expands to, the overrides they make, the report."""
import json
import math

import numpy as np
import pytest

from engine.errors import ExperimentError
from engine.jobs.compare_report import distinguishable
from engine.jobs.runs import RunSpec, train_to_record
from engine.jobs.sweep_report import (format_sweep_table, read_sweep, runs_csv, summarize_sweep, sweep_json,
                                      sweep_plot_data, trials_csv, write_sweep)
from engine.spec.experiment import load_experiment, resolve_experiment
from engine.spec.overrides import apply_overrides
from engine.spec.sweep import (MAX_RUNS, MAX_TRIALS, Trial, parse_key, space_points, sweep_trials, trial_count,
                               trial_experiment)


def base(**changes):
    exp = {"seed": 5, "data": {"name": "moons", "n_samples": 300, "noise": 0.2},
           "model": {"layers": [{"units": 16, "activation": "elu"}, {"units": 8, "activation": "elu"}]},
           "optimizer": {"name": "nesterov", "learning_rate": 0.05, "momentum": 0.9, "clipnorm": 5.0},
           "training": {"epochs": 3, "batch_size": 16}}
    exp.update(changes)
    return exp


def with_sweep(parameters, **section):
    return resolve_experiment(base(sweep={"parameters": parameters, **section}))


LR_GRID = {"optimizer.learning_rate": {"log_grid": {"low": 1e-4, "high": 1, "num": 9}}}


# ----------------------------------------------------------------------------- the section


def test_the_section_resolves_with_defaults_and_to_itself():
    exp = with_sweep(LR_GRID)
    cfg = exp["sweep"]
    assert cfg == {"method": "grid", "parameters": LR_GRID, "trials": None, "seeds": [5, 6, 7], "metric": "auto",
                   "sampler_seed": None}
    assert resolve_experiment(exp)["sweep"] == cfg
    random = with_sweep({"optimizer.learning_rate": {"log_uniform": [1e-4, 1]}}, method="random", trials=4)
    assert random["sweep"]["sampler_seed"] == 0 and random["sweep"]["trials"] == 4
    assert resolve_experiment(random)["sweep"] == random["sweep"]
    assert resolve_experiment(base())["sweep"] is None


@pytest.mark.parametrize("section, message", [
    ({"paramters": LR_GRID}, "unknown key sweep.paramters (did you mean 'parameters'?)"),
    ({"parameters": LR_GRID, "method": "grids"}, "sweep.method must be one of grid, random"),
    ({"parameters": {}}, "sweep.parameters must be an object of 1 to 16"),
    ({"parameters": {"optimizer.learning_rate": {"log_gird": {"low": 1, "high": 2, "num": 3}}}},
     "unknown space 'log_gird' (did you mean 'log_grid'?)"),
    ({"parameters": {"optimizer.name": {"choice": ["sgd", "adam"]}}}, "a categorical choice is {\"values\""),
    ({"parameters": {"optimizer.learning_rate": {"values": [0.1], "grid": {}}}}, "must be an object with one of"),
    ({"parameters": {"optimizer.learning_rate": {"uniform": [0.001, 0.1]}}},
     "uniform draws at random and has no grid points"),
    ({"parameters": {"optimizer.learning_rate": {"uniform": [0.001, 0.1]}}, "method": "random"},
     "random search needs a trial count"),
    ({"parameters": LR_GRID, "trials": 5}, "sweep.trials applies to random search"),
    ({"parameters": LR_GRID, "sampler_seed": 1}, "sweep.sampler_seed applies to random search"),
    ({"parameters": {"optimizer.learning_rate": {"log_grid": {"low": 0, "high": 1, "num": 3}}}},
     "low must be > 0 on a log scale"),
    ({"parameters": {"optimizer.learning_rate": {"grid": {"low": 1, "high": 0.1, "num": 3}}}},
     "low must be below high"),
    ({"parameters": {"optimizer.learning_rate": {"grid": {"low": 0.1, "high": 1, "num": 1}}}},
     "num must be from 2 to"),
    ({"parameters": {"optimizer.learning_rate": {"grid": {"low": 0.1, "high": 1, "nun": 3}}}},
     "(did you mean 'num'?)"),
    ({"parameters": {"optimizer.learning_rate": {"values": []}}}, "must be a list of 1 to"),
    ({"parameters": {"training.batch_size": {"int_uniform": [8, 32.5]}}, "method": "random", "trials": 2},
     "int_uniform[1] must be an integer"),
    ({"parameters": {"optimizr.learning_rate": {"values": [0.1]}}}, "got 'optimizr' (did you mean 'optimizer'?)"),
    ({"parameters": {"seed": {"values": [1, 2]}}}, "the seeds are sweep.seeds"),
    ({"parameters": {"optimizer.learning_rate[0]": {"values": [0.1]}}}, "an index [i] is allowed only on model.layers"),
    ({"parameters": {"optimizer..name": {"values": ["sgd"]}}}, "is not a key name"),
    ({"parameters": {"optimizer": {"values": [{"name": "sgd"}]}, "optimizer.learning_rate": {"values": [0.1]}}},
     "'optimizer' and 'optimizer.learning_rate' overlap"),
    ({"parameters": LR_GRID, "seeds": [1, 1]}, "sweep.seeds must not repeat"),
    ({"parameters": LR_GRID, "seeds": 0}, "sweep.seeds must be from 1 to"),
    ({"parameters": LR_GRID, "metric": "val_acc"}, "(did you mean 'val_accuracy'?)"),
    ({"parameters": {"optimizer.learning_rate": {"grid": {"low": 0.1, "high": 1, "num": 101}},
                     "training.batch_size": {"grid": {"low": 1, "high": 100, "num": 100}}}},
     f"the grid has 101 x 100 = 10,100 trials; at most {MAX_TRIALS:,}"),
    ({"parameters": {"optimizer.learning_rate": {"uniform": [0.01, 0.1]}}, "method": "random",
      "trials": MAX_TRIALS, "seeds": 6}, f"10,000 trials x 6 seeds = 60,000 runs; at most {MAX_RUNS:,}"),
])
def test_bad_sections_name_the_key(section, message):
    with pytest.raises(ExperimentError) as info:
        resolve_experiment(base(sweep=section))
    assert message in str(info.value)


def test_a_sweep_excludes_a_comparison():
    with pytest.raises(ExperimentError, match="a sweep section or a compare section, not both"):
        resolve_experiment(base(sweep={"parameters": LR_GRID}, compare={"variants": [{"name": "a"}]}))


def test_a_bad_value_in_a_late_trial_fails_at_load_naming_the_trial_and_the_key():
    with pytest.raises(ExperimentError) as info:
        with_sweep({"optimizer.name": {"values": ["sgd", "adam"]},
                    "optimizer.learning_rate": {"values": [0.1, 0.01, -1.0]}})
    text = str(info.value)
    assert text.startswith("sweep trial 2 (sgd-lr-1: optimizer.name='sgd', optimizer.learning_rate=-1.0): ")
    assert text.endswith("optimizer.learning_rate must be a number > 0, got -1.0")
    with pytest.raises(ExperimentError, match=r"sweep trial 0 \(sgd-mom0.9.*unknown key optimizer.momentum"):
        with_sweep({"optimizer.name": {"values": ["sgd", "momentum"]}, "optimizer.momentum": {"values": [0.9]}})
    with pytest.raises(ExperimentError, match=r"sweep trial 0 \(l2units4: model.layers\[2\].units=4\): "
                                              r"model.layers\[2\] does not exist: the model has 2 hidden layers"):
        with_sweep({"model.layers[2].units": {"values": [4, 8]}})


# ----------------------------------------------------------------------------- expansion


def test_a_grid_runs_every_combination_the_first_key_slowest():
    exp = with_sweep({"optimizer.name": {"values": ["sgd", "adam", "nadam"]},
                      "optimizer.learning_rate": {"values": [0.1, 0.001]}})
    trials = sweep_trials(exp)
    assert trial_count(exp["sweep"]) == len(trials) == 6
    assert [t.index for t in trials] == list(range(6))
    assert [t.name for t in trials] == ["sgd-lr0.1", "sgd-lr1e-03", "adam-lr0.1", "adam-lr1e-03", "nadam-lr0.1",
                                        "nadam-lr1e-03"]
    assert trials[3].params == {"optimizer.name": "adam", "optimizer.learning_rate": 0.001}
    assert trials[3].overrides == {"optimizer": {"name": "adam", "learning_rate": 0.001}}
    assert sweep_trials(exp) == trials                       # the same file gives the same trials


def test_grid_points_golden():
    assert space_points({"log_grid": {"low": 1e-4, "high": 1, "num": 9}}) == [
        1e-4, 3.16227766017e-4, 1e-3, 3.16227766017e-3, 0.01, 0.0316227766017, 0.1, 0.316227766017, 1.0]
    assert space_points({"grid": {"low": 0.1, "high": 0.5, "num": 5}}) == [0.1, 0.2, 0.3, 0.4, 0.5]
    ints = space_points({"log_grid": {"low": 16, "high": 256, "num": 5}})
    assert ints == [16, 32, 64, 128, 256] and all(isinstance(v, int) for v in ints)
    # 12 significant digits: a grid point is a clean number in sweep.csv and in trial names
    assert space_points({"grid": {"low": 0, "high": 10, "num": 4}}) == [0.0, 3.33333333333, 6.66666666667, 10.0]
    assert space_points({"uniform": [0, 1]}) is None


def test_trial_names_are_short_unique_and_folder_safe():
    exp = with_sweep({"optimizer.learning_rate": {"values": [0.00123, 0.001234, 2e5]},
                      "model.layers.activation": {"values": ["elu", "leaky_relu"]},
                      "model.layers.use_bias": {"values": [False]}})
    names = [t.name for t in sweep_trials(exp)]
    assert names[:2] == ["lr1.23e-03-act_elu-use_bias_false", "lr1.23e-03-act_leaky_relu-use_bias_false"]
    assert names[2].startswith("lr1.234e-03")                 # more digits where 3 would collide
    assert names[4] == "lr2e05-act_elu-use_bias_false"        # no "+" in a folder name
    assert len(set(names)) == len(names) and all(len(n) <= 60 for n in names)
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") for n in names)


def test_random_search_is_reproducible_from_its_sampler_seed():
    params = {"optimizer.learning_rate": {"log_uniform": [1e-4, 1]}, "training.batch_size": {"int_uniform": [8, 12]},
              "model.layers.dropout": {"uniform": [0.0, 0.5]}, "optimizer.name": {"values": ["sgd", "adam"]}}
    a = sweep_trials(with_sweep(params, method="random", trials=200, sampler_seed=7))
    again = sweep_trials(with_sweep(params, method="random", trials=200, sampler_seed=7))
    other = sweep_trials(with_sweep(params, method="random", trials=200, sampler_seed=8))
    assert a == again
    assert [t.params for t in a] != [t.params for t in other]
    assert a[0].name.startswith("t000-lr") and len({t.name for t in a}) == 200
    lrs = np.array([t.params["optimizer.learning_rate"] for t in a])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1
    assert 0.35 < np.mean(lrs < 1e-2) < 0.65                 # log-uniform: half the draws below the middle decade
    assert {t.params["training.batch_size"] for t in a} == {8, 9, 10, 11, 12}   # both ends included
    assert {t.params["optimizer.name"] for t in a} == {"sgd", "adam"}
    drops = [t.params["model.layers.dropout"] for t in a]
    assert 0.0 <= min(drops) and max(drops) < 0.5


# ----------------------------------------------------------------------------- overrides


def test_dotted_keys_resolve_to_the_intended_experiments():
    exp = with_sweep({"optimizer.name": {"values": ["adam"]},
                      "optimizer.learning_rate": {"values": [0.003]},
                      "training.batch_size": {"values": [64]},
                      "model.layers.dropout": {"values": [0.2]},
                      "model.layers[1].units": {"values": [32]},
                      "model.layers[1].activation": {"values": ["selu"]},
                      "training.early_stopping.patience": {"values": [2]},
                      "data.n_samples": {"values": [200]}})
    trial, = sweep_trials(exp)
    run = trial_experiment(exp, trial, seed=11)
    assert run["optimizer"] == dict(apply_overrides(exp, {"optimizer": {"name": "adam"}})["optimizer"],
                                    learning_rate=0.003)   # Adam's own defaults, at the swept rate
    assert run["optimizer"]["clipnorm"] == 5.0 and "momentum" not in run["optimizer"]
    assert run["training"]["batch_size"] == 64 and run["training"]["early_stopping"]["patience"] == 2
    assert [layer["dropout"] for layer in run["model"]["layers"]] == [0.2, 0.2]
    assert [layer["units"] for layer in run["model"]["layers"]] == [16, 32]
    assert [layer["activation"] for layer in run["model"]["layers"]] == ["elu", "selu"]
    assert [layer["initializer"] for layer in run["model"]["layers"]] == ["he_normal", "lecun_normal"]  # Table 11-1
    assert run["data"]["n_samples"] == 200
    assert run["seed"] == 11 and run["sweep"] is None and run["name"] == f"{exp['name']}-{trial.name}"
    assert apply_overrides(exp, trial.overrides) == dict(run, seed=exp["seed"], name=exp["name"],
                                                        title=exp["title"])


def test_a_trial_is_a_comparison_variant_and_overrides_drop_the_sweep():
    exp = with_sweep(LR_GRID)
    trial = sweep_trials(exp)[2]
    assert trial.as_variant() == {"name": "lr1e-03", "overrides": {"optimizer": {"learning_rate": 0.001}},
                                  "lr_finder": None, "zero_weights_below": None}
    assert apply_overrides(exp, {})["sweep"] is None
    assert isinstance(trial, Trial) and parse_key("model.layers[1].units") == ("model", "layers", 1, "units")


def test_the_preset_sweeps_six_optimizers_over_nine_rates():
    exp = load_experiment("16-learning-rate-sensitivity")
    trials = sweep_trials(exp)
    assert len(trials) == 54 and len(exp["sweep"]["seeds"]) == 3 and exp["section"] == "Faster Optimizers"
    assert [t.params["optimizer.name"] for t in trials[::9]] == ["sgd", "momentum", "nesterov", "rmsprop", "adam",
                                                                 "nadam"]
    assert [t.params["optimizer.learning_rate"] for t in trials[:9]] == space_points(LR_GRID["optimizer.learning_rate"])


# ----------------------------------------------------------------------------- report


SEEDS = [1, 2, 3]


def record(name, seed, acc, status="finished", loss=None):
    return {"variant": name, "seed": seed, "status": status, "final_val_accuracy": acc,
            "final_val_loss": 1.0 - acc if loss is None else loss, "best_val_accuracy": acc + 0.01,
            "best_val_loss": 0.5, "test_accuracy": acc, "steps": 10, "wall_seconds": 2.0,
            "folder": f"{name}-seed{seed}", "init_hash": "same", "data_hash": "same"}


def hand_made():
    exp = with_sweep({"optimizer.learning_rate": {"values": [0.1, 0.01, 0.001, 1.0]}}, seeds=SEEDS, metric="auto")
    trials = sweep_trials(exp)
    names = [t.name for t in trials]
    accs = {names[0]: [0.80, 0.82, 0.84], names[1]: [0.70, 0.71, 0.75], names[2]: [0.81, 0.83, 0.90]}
    records = [record(n, s, a) for n, values in accs.items() for s, a in zip(SEEDS, values)]
    # the third seed of trial 2 diverged: its last epoch's 0.90 is not a result
    records[-1]["status"] = "diverged"
    records += [record(names[3], s, 0.95, status="diverged") for s in SEEDS]
    return exp, trials, summarize_sweep(records, trials, exp["sweep"], experiment=exp["name"])


def test_report_statistics_golden():
    _, trials, s = hand_made()
    t = s["trials"]
    assert s["metric"] == "val_accuracy" and s["higher_is_better"]
    assert t[0]["final_val_accuracy"]["mean"] == pytest.approx(0.82)
    assert t[0]["final_val_accuracy"]["std"] == pytest.approx(0.02)
    assert t[1]["final_val_accuracy"]["mean"] == pytest.approx(0.72)
    assert t[1]["final_val_accuracy"]["std"] == pytest.approx(math.sqrt(0.0007))
    assert (t[1]["final_val_accuracy"]["min"], t[1]["final_val_accuracy"]["max"]) == (0.70, 0.75)
    # diverged runs count as such: out of the statistics, never as good results
    assert t[2]["final_val_accuracy"]["mean"] == pytest.approx(0.82) and t[2]["final_val_accuracy"]["n"] == 2
    assert t[2]["diverged"] == 1 and t[2]["no_result"] == 1
    assert t[3]["final_val_accuracy"]["n"] == 0 and t[3]["vs_best"]["verdict"] == "no result: diverged on 3 of 3 seeds"
    assert s["ranking"] == [0, 1, 2, 3] and s["best"] == 0       # trial 2 ranks after every trial without losses
    assert [e["rank"] for e in t] == [1, 2, 3, 4]
    assert t[0]["same_initial_weights_as_first"] is True


def test_report_verdicts_are_the_comparison_rule():
    _, trials, s = hand_made()
    t = s["trials"]
    values = {i: {r["seed"]: r["final_val_accuracy"] for r in t[i]["runs"] if r["status"] == "finished"}
              for i in range(4)}
    for i in (1, 2):
        expected = distinguishable(values[0], values[i])
        got = t[i]["vs_best"]
        assert {k: got[k] for k in expected if k != "p_value"} == {k: v for k, v in expected.items() if k != "p_value"}
    assert t[1]["vs_best"]["distinguishable"] and t[1]["vs_best"]["verdict"].startswith("worse by 10.00 points")
    assert not t[2]["vs_best"]["distinguishable"]
    assert t[2]["vs_best"]["verdict"].endswith("; diverged on 1 of 3 seeds")
    assert s["not_distinguishable_from_best"] == [0]           # trial 2 lost a seed: not a tie with the best


def test_a_loss_metric_ranks_lower_first():
    exp = with_sweep({"optimizer.learning_rate": {"values": [0.1, 0.01]}}, seeds=SEEDS, metric="val_loss")
    trials = sweep_trials(exp)
    records = [record(trials[0].name, s, 0.5, loss=v) for s, v in zip(SEEDS, (0.9, 0.8, 1.0))]
    records += [record(trials[1].name, s, 0.5, loss=v) for s, v in zip(SEEDS, (0.5, 0.45, 0.55))]
    s = summarize_sweep(records, trials, exp["sweep"])
    assert s["metric"] == "val_loss" and not s["higher_is_better"] and s["ranking"] == [1, 0]
    d = distinguishable({k: -v for k, v in zip(SEEDS, (0.5, 0.45, 0.55))}, {k: -v for k, v in zip(SEEDS, (0.9, 0.8, 1.0))})
    assert s["trials"][0]["vs_best"]["mean_diff"] == pytest.approx(d["mean_diff"]) and d["distinguishable"]


def _reject(token):
    raise AssertionError(f"{token} in strict JSON")


def test_files_are_strict_json_and_tidy_csv(tmp_path):
    _, trials, s = hand_made()
    data = json.loads(sweep_json(s), parse_constant=_reject)
    assert data["trials"][3]["final_val_accuracy"]["mean"] is None      # NaN written as null
    assert data["trials"][0]["params"] == {"optimizer.learning_rate": 0.1}
    runs = runs_csv(s).splitlines()
    assert runs[0].split(",")[:4] == ["trial", "name", "optimizer.learning_rate", "seed"]
    assert len(runs) == 1 + 4 * 3
    rows = trials_csv(s).splitlines()
    assert len(rows) == 1 + 4 and rows[1].startswith("1,0,lr0.1,0.1,val_accuracy,3,3,0,finished=3,0.82")
    assert "nan" not in runs_csv(s).lower() + trials_csv(s).lower()
    write_sweep(tmp_path, s)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.csv", "sweep.json", "sweep_trials.csv"]
    back = read_sweep(tmp_path)
    assert math.isnan(back["trials"][3]["final_val_accuracy"]["mean"])
    assert format_sweep_table(back) == format_sweep_table(s)
    with pytest.raises(ExperimentError, match="no sweep.json here"):
        read_sweep(tmp_path / "elsewhere")


def test_the_table_ranks_and_shows_the_value_grid():
    exp = with_sweep({"optimizer.name": {"values": ["sgd", "adam"]},
                      "optimizer.learning_rate": {"values": [0.01, 0.1]}}, seeds=SEEDS)
    trials = sweep_trials(exp)
    accs = {"sgd-lr0.01": 0.8, "sgd-lr0.1": 0.85, "adam-lr0.01": 0.7, "adam-lr0.1": 0.1}
    records = [record(n, seed, a + 0.01 * seed, status="diverged" if n == "adam-lr0.1" else "finished")
               for n, a in accs.items() for seed in SEEDS]
    text = format_sweep_table(summarize_sweep(records, trials, exp["sweep"]))
    lines = text.splitlines()
    assert lines[2].split()[:3] == ["1", "sgd-lr0.1", "87.00%"] and "best mean" in lines[2]
    assert "no result: diverged on 3 of 3 seeds" in lines[5]
    grid = lines.index("val_accuracy (%): optimizer.name by optimizer.learning_rate")
    assert lines[grid + 2].split() == ["sgd", "82.0", "87.0"] and lines[grid + 3].split() == ["adam", "72.0", "div"]


def test_plot_data_lines_per_group_with_the_seed_band():
    exp = with_sweep({"optimizer.name": {"values": ["sgd", "adam"]}, **LR_GRID}, seeds=SEEDS)
    trials = sweep_trials(exp)
    records = [record(t.name, seed, 0.5 + 0.1 * i / 9 + 0.01 * seed) for i, t in enumerate(trials) for seed in SEEDS]
    data = sweep_plot_data(summarize_sweep(records, trials, exp["sweep"]))
    assert data["kind"] == "lines" and data["x"] == "optimizer.learning_rate" and data["log_x"]
    assert [line["label"] for line in data["lines"]] == ["sgd", "adam"]
    adam = data["lines"][1]
    assert adam["x"] == space_points(LR_GRID["optimizer.learning_rate"]) and adam["trials"] == list(range(9, 18))
    assert adam["mean"][0] == pytest.approx(0.5 + 0.1 + 0.02) and adam["min"][0] == pytest.approx(0.61)
    assert adam["max"][0] == pytest.approx(0.63) and adam["std"][0] == pytest.approx(0.01) and adam["n"][0] == 3


def test_plot_data_heat_map_for_two_numeric_keys():
    exp = with_sweep({"training.batch_size": {"values": [16, 64, 32]},
                      "optimizer.learning_rate": {"values": [0.1, 0.001, 0.01]}}, seeds=SEEDS)
    trials = sweep_trials(exp)
    records = [record(t.name, seed, 0.5) for t in trials for seed in SEEDS]
    data = sweep_plot_data(summarize_sweep(records, trials, exp["sweep"]))
    assert data["kind"] == "heatmap" and (data["x"], data["y"]) == ("training.batch_size", "optimizer.learning_rate")
    assert not data["log_x"] and data["log_y"]                  # 0.001 .. 0.1 spans a factor 100
    panel, = data["panels"]
    assert panel["x_values"] == [16, 32, 64] and panel["y_values"] == [0.001, 0.01, 0.1]
    at = {(t.params["training.batch_size"], t.params["optimizer.learning_rate"]): t.index for t in trials}
    assert panel["trials"][0][2] == at[(64, 0.001)] and panel["mean"][1][1] == pytest.approx(0.5)


def test_plot_data_scatter_for_random_draws_and_no_axis_for_names():
    exp = with_sweep({"optimizer.learning_rate": {"log_uniform": [1e-3, 1]},
                      "optimizer.momentum": {"uniform": [0.5, 0.99]}}, method="random", trials=5, seeds=SEEDS)
    trials = sweep_trials(exp)
    summary = summarize_sweep([record(t.name, seed, 0.5) for t in trials for seed in SEEDS], trials, exp["sweep"])
    data = sweep_plot_data(summary)
    assert data["kind"] == "scatter" and data["log_x"] and not data["log_y"]
    assert data["panels"][0]["x"] == [t.params["optimizer.learning_rate"] for t in trials]
    lines = sweep_plot_data(summary, x="optimizer.momentum")
    assert lines["kind"] == "lines" and lines["scatter"] and lines["groups"] == ["optimizer.learning_rate"]
    names = with_sweep({"optimizer.name": {"values": ["sgd", "adam"]}}, seeds=SEEDS)
    named = summarize_sweep([], sweep_trials(names), names["sweep"])
    with pytest.raises(ValueError, match="not numbers"):
        sweep_plot_data(named, x="optimizer.name")
    with pytest.raises(ValueError, match="no swept key takes numbers"):
        sweep_plot_data(named)


def test_trials_run_like_comparison_variants_from_the_same_start(tmp_path):
    """The runner's seam: trial_experiment + train_to_record give records the report reads, and every trial of a
    seed starts from the same kernels and batches."""
    exp = with_sweep({"optimizer.learning_rate": {"values": [0.05, 0.01]}}, seeds=[3, 4])
    trials = sweep_trials(exp)
    records = []
    for seed in exp["sweep"]["seeds"]:
        for t in trials:
            run = apply_overrides(trial_experiment(exp, t, seed), {"training": {"max_steps": 5}})
            records.append(train_to_record(RunSpec(len(records), t.name, seed, run, None, f"{t.name}-seed{seed}"),
                                           str(tmp_path)))
    s = summarize_sweep(records, trials, exp["sweep"])
    assert [e["same_initial_weights_as_first"] for e in s["trials"]] == [True, True]
    assert [e["same_data_and_batches_as_first"] for e in s["trials"]] == [True, True]
    assert all(e["statuses"] == {"finished": 2} and e["final_val_accuracy"]["n"] == 2 for e in s["trials"])
    assert (tmp_path / "lr0.05-seed3" / "summary.json").is_file()
