"""tools/results.py: the figures it keeps for the preset texts (issue 12, item 12)."""
import json
import math

import pytest

from tools import results as R

TINY = {
    "name": "tiny-compare", "seed": 3,
    "data": {"name": "moons", "n_samples": 200, "noise": 0.1},
    "model": {"layers": [{"units": 8, "activation": "relu"}, {"units": 8, "activation": "tanh"}]},
    "optimizer": {"name": "sgd", "learning_rate": 0.05},
    "training": {"epochs": 2, "batch_size": 20, "log_every": 3},
    "compare": {"variants": [{"name": "SGD 0.05"},
                             {"name": "Adam (0.01)", "overrides": {"optimizer": {"name": "adam",
                                                                                 "learning_rate": 0.01}}}],
                "seeds": 2},
}


def test_slug_keeps_letters_and_digits_only():
    assert R.slug("leaky ReLU 0.01") == "leaky_relu_0_01"
    assert R.slug("ReLU + Glorot (mismatch)") == "relu_glorot_mismatch"
    assert R.slug("logistic + Glorot ×4") == "logistic_glorot_x4"


def test_figure_is_mean_and_sample_std_of_the_finite_values():
    f = R.figure([1, 2, 3, 4], [0.5, 0.7, None, math.nan])
    assert f["values"] == [0.5, 0.7, None, None]
    assert f["n"] == 2 and f["mean"] == pytest.approx(0.6)
    assert f["std"] == pytest.approx(math.sqrt(0.02))      # ((0.1^2 + 0.1^2) / (2 - 1)) ** 0.5
    assert (f["min"], f["max"]) == (0.5, 0.7)
    assert R.figure([1], [None])["mean"] is None


def test_history_metrics_read_the_first_and_last_records(tmp_path):
    # two hidden layers (0, 1) and the output layer (2), numbers chosen by hand
    cols = ["step", "grad_norm_0", "grad_norm_1", "grad_norm_2", "saturated_0", "saturated_1", "saturated_2",
            "dead_fraction_0", "dead_fraction_1", "dead_fraction_2", "act_std_0", "act_std_1", "act_std_2",
            "act_mean_0", "act_mean_1", "act_mean_2"]
    first = [10, 1e-4, 1e-3, 1e-2, 0.2, 0.4, "nan", 0.0, 0.5, "nan", 0.9, 1.3, 2.0, 0.1, -0.3, 0.0]
    last = [20, 2.0, 1.0, 4.0, 0.1, 0.3, "nan", 0.1, 0.2, "nan", 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    (tmp_path / "history.csv").write_text("\n".join(",".join(map(str, r)) for r in (cols, first, last)) + "\n")
    m = R.history_metrics(tmp_path)
    assert m["grad_ratio@first"] == pytest.approx(1e-2)           # 1e-4 / 1e-2
    assert m["grad_gain@first"] == pytest.approx(0.1)             # (1e-2) ** (1/2)
    assert m["grad_spread@first"] == pytest.approx(100.0)         # 1e-2 / 1e-4
    assert m["saturated@first"] == pytest.approx(0.3)             # mean of the hidden layers' 0.2, 0.4
    assert (m["dead_first@first"], m["dead_max@first"], m["dead_min_upper@first"]) == (0.0, 0.5, 0.5)
    assert m["act_std_first@first"] == 0.9 and m["act_std_last@first"] == 1.3
    assert m["act_std_dev@first"] == pytest.approx(0.3) and m["act_mean_dev@first"] == pytest.approx(0.3)
    assert m["grad_ratio@last"] == pytest.approx(0.5) and m["dead_max@last"] == pytest.approx(0.2)


def test_experiment_hash_ignores_the_texts_only(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps(dict(TINY, description="a")))
    before = R.experiment_hash(path)
    path.write_text(json.dumps(dict(TINY, description="b", look_at="c")))
    assert R.experiment_hash(path) == before
    path.write_text(json.dumps(dict(TINY, optimizer={"name": "sgd", "learning_rate": 0.1})))
    assert R.experiment_hash(path) != before


def test_measure_keeps_what_the_comparison_report_says(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "RUNS", tmp_path / "runs")
    path = tmp_path / "tiny-compare.json"
    path.write_text(json.dumps(TINY))
    figures, seeds = R.measure("tiny-compare", path, workers=1)
    assert seeds == [3, 4]
    saved = json.loads((tmp_path / "runs" / "tiny-compare" / "comparison.json").read_text())
    for name, key in (("SGD 0.05", "sgd_0_05"), ("Adam (0.01)", "adam_0_01")):
        fig = figures[f"{key}/val_accuracy"]
        assert fig["seeds"] == [3, 4] and fig["n"] == 2
        assert fig["mean"] == pytest.approx(saved["variants"][name]["final_val_accuracy"]["mean"], abs=1e-12)
        assert fig["std"] == pytest.approx(saved["variants"][name]["final_val_accuracy"]["std"], abs=1e-12)
        assert figures[f"{key}/grad_ratio@first"]["n"] == 2     # read from each run's history.csv
