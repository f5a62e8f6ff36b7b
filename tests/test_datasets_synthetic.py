"""engine.data: the catalogue, config resolution, the synthetic sets
(2-D classification and 1-D regression), standardization and the grid."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data.core import KINDS
from engine.data import DATASETS, load_dataset, make_grid, resolve_data_config
from engine.errors import DataError, ExperimentError
from engine.params import Param

from datasets_checks import all_points, check_contract, parts

TWO_D = ["circles", "moons", "xor", "spirals", "blobs"]


# ------------------------------------------------------------- catalogue

def test_catalogue_entries_are_complete():
    assert set(TWO_D + ["regression_1d", "fashion_mnist", "csv", "npz"]) <= set(DATASETS.names())
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.kind in KINDS and spec.doc
        assert callable(spec.loader)
        assert all(isinstance(p, Param) and p.doc for p in spec.params.values())
        assert "validation_split" in spec.params and "standardize" in spec.params
    assert DATASETS.get("circles").kind == "2d"
    assert DATASETS.get("regression_1d").kind == "1d"
    assert DATASETS.get("fashion_mnist").kind == "image"
    assert DATASETS.get("csv").kind == DATASETS.get("npz").kind == "file"


def test_resolve_fills_defaults():
    cfg = resolve_data_config({"name": "circles"})
    assert cfg == {"name": "circles", "n_samples": 1000, "noise": 0.1, "factor": 0.5,
                   "validation_split": 0.1, "test_split": 0.0, "standardize": True}
    assert resolve_data_config({"name": "spirals", "n_classes": 3.0})["n_classes"] == 3


@pytest.mark.parametrize("config, message", [
    ({"name": "moons", "noise": -0.5}, "data.noise must be a number >= 0"),
    ({"name": "moons", "nosie": 0.2}, "unknown key data.nosie (did you mean 'noise'?)"),
    ({"name": "moon"}, "(did you mean 'moons'?)"),
    ({}, "data.name is required"),
    ({"name": "circles", "n_samples": 5}, "data.n_samples must be an integer >= 10"),
    ({"name": "circles", "factor": 1.0}, "data.factor must be a number > 0 and < 1"),
    ({"name": "spirals", "n_classes": 6}, "data.n_classes must be an integer >= 2 and <= 5"),
    ({"name": "circles", "validation_split": 0.5, "test_split": 0.5},
     "data.validation_split + data.test_split must be < 1"),
    ({"name": "circles", "validation_split": 1.0}, "data.validation_split must be a number >= 0 and < 1"),
    ({"name": "circles", "standardize": "yes"}, "data.standardize must be true or false"),
    ({"name": "csv"}, "data.path is required"),
    ({"name": "csv", "path": "a.csv", "target": [1]}, "data.target must be a column name"),
    ({"name": "csv", "path": "a.csv", "delimiter": ",,"}, "data.delimiter must be one character"),
    ({"name": "fashion_mnist", "classes": [5, 5]}, "data.classes must not repeat"),
    ({"name": "fashion_mnist", "classes": [5]}, "data.classes must list at least 2"),
    ({"name": "fashion_mnist", "classes": [5, 10]}, "data.classes[1] must be an integer >= 0 and <= 9"),
    ({"name": "fashion_mnist", "test_split": 0.1}, "unknown key data.test_split"),
    ({"name": "fashion_mnist", "task": "regression"}, "data.task must be one of"),
])
def test_resolve_rejects_with_key_named(config, message):
    with pytest.raises(ExperimentError) as err:
        resolve_data_config(config)
    assert message in str(err.value)


def test_seed_must_be_an_integer():
    with pytest.raises(ExperimentError, match="seed must be an integer"):
        load_dataset({"name": "moons"}, "1")


# ------------------------------------------------------------- synthetic 2-D

@pytest.mark.parametrize("name", TWO_D)
def test_synthetic_is_seeded_deterministic(name):
    cfg = {"name": name, "n_samples": 300, "test_split": 0.2}
    a, b, c = load_dataset(cfg, 7), load_dataset(cfg, 7), load_dataset(cfg, 8)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "mean", "std"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(all_points(a)[0], all_points(c)[0])


@pytest.mark.parametrize("name, n_classes", [(n, None) for n in TWO_D] +
                         [("spirals", k) for k in (3, 5)] + [("blobs", k) for k in (2, 7)])
def test_synthetic_shapes_and_balance(name, n_classes):
    cfg = {"name": name, "n_samples": 301, "test_split": 0.2, "validation_split": 0.1}
    if n_classes:
        cfg["n_classes"] = n_classes
    ds = load_dataset(cfg, 0)
    check_contract(ds)
    assert ds.task == "classification" and ds.image_shape is None
    assert ds.feature_names == ("x1", "x2")
    k = n_classes or (3 if name == "blobs" else 2)
    assert ds.n_classes == k
    x, y = all_points(ds)
    assert len(x) == 301
    counts = np.bincount(y, minlength=k)
    assert counts.max() - counts.min() <= 1
    # stratified: every split is balanced too
    for part in parts(ds, "y"):
        c = np.bincount(part, minlength=k)
        assert c.max() - c.min() <= 2
    assert abs(len(ds.x_val) - 30) <= k and abs(len(ds.x_test) - 60) <= k
    # natural range: about [-6, 6] at the default noise
    assert np.abs(x).max() < 7.5 and np.abs(x).max() > 3.0


def test_circles_noise_free_radius_split():
    ds = load_dataset({"name": "circles", "n_samples": 400, "noise": 0.0, "factor": 0.3}, 1)
    x, y = all_points(ds)
    r = np.hypot(x[:, 0], x[:, 1])
    np.testing.assert_allclose(r[y == 0], 5.0, rtol=1e-5)
    np.testing.assert_allclose(r[y == 1], 1.5, rtol=1e-5)
    assert r[y == 1].max() < r[y == 0].min()
    assert ds.class_names == ("outer", "inner")


def test_circles_noise_blurs_the_rings():
    ds = load_dataset({"name": "circles", "n_samples": 400, "noise": 0.2}, 1)
    x, y = all_points(ds)
    r = np.hypot(x[:, 0], x[:, 1])
    assert 0.6 < r[y == 0].std() < 1.4  # noise 0.2 of radius 5 -> sd 1 per axis


def test_moons_noise_free_are_separable():
    ds = load_dataset({"name": "moons", "n_samples": 500, "noise": 0.0}, 2)
    x, y = all_points(ds)
    unit = x / (5.0 / 1.5) + np.array([0.5, 0.25])     # back to make_moons coordinates
    np.testing.assert_allclose(np.hypot(*unit[y == 0].T), 1.0, atol=1e-4)
    np.testing.assert_allclose(np.hypot(*(unit[y == 1] - [1.0, 0.5]).T), 1.0, atol=1e-4)
    assert unit[y == 0, 1].min() > -1e-4 and unit[y == 1, 1].max() < 0.5 + 1e-4
    gap = np.linalg.norm(x[y == 0][:, None] - x[y == 1][None], axis=2).min()
    assert gap > 0.4 * 5 / 1.5
    # and the standardized train set classifies the val set perfectly by 1-NN
    d = np.linalg.norm(ds.x_val[:, None] - ds.x_train[None], axis=2)
    assert np.array_equal(ds.y_train[d.argmin(axis=1)], ds.y_val)


def test_xor_noise_free_sign_rule():
    ds = load_dataset({"name": "xor", "n_samples": 400, "noise": 0.0}, 3)
    x, y = all_points(ds)
    assert np.array_equal((x[:, 0] * x[:, 1] < 0).astype(np.int64), y)
    assert np.abs(x).min() > 0.2                        # kept off the axes


def test_spirals_arms_are_rotations():
    ds = load_dataset({"name": "spirals", "n_samples": 300, "noise": 0.0, "n_classes": 3,
                       "turns": 1.0}, 4)
    x, y = all_points(ds)
    t = np.hypot(x[:, 0], x[:, 1]) / 5.0
    angle = np.arctan2(x[:, 1], x[:, 0])
    expected = 2 * np.pi * (t + y / 3)
    diff = np.angle(np.exp(1j * (angle - expected)))
    assert np.abs(diff).max() < 1e-3


def test_blobs_cluster_around_distinct_centres():
    ds = load_dataset({"name": "blobs", "n_samples": 600, "n_classes": 4, "spread": 0.05}, 5)
    x, y = all_points(ds)
    centres = np.array([x[y == k].mean(axis=0) for k in range(4)])
    np.testing.assert_allclose(np.hypot(*centres.T), 3.5, atol=0.15)
    assert np.linalg.norm(centres[0] - centres[1]) > 4


def test_noise_changes_points_but_not_labels():
    a = load_dataset({"name": "moons", "n_samples": 200, "noise": 0.0}, 9)
    b = load_dataset({"name": "moons", "n_samples": 200, "noise": 0.3}, 9)
    assert np.array_equal(a.y_train, b.y_train)
    assert not np.allclose(a.to_original(a.x_train), b.to_original(b.x_train))


# ------------------------------------------------------------- standardization

def test_standardization_uses_training_split_only():
    cfg = {"name": "blobs", "n_samples": 500, "test_split": 0.2, "validation_split": 0.2}
    raw = load_dataset({**cfg, "standardize": False}, 11)
    std = load_dataset(cfg, 11)
    assert np.array_equal(raw.y_train, std.y_train)           # same split either way
    assert np.array_equal(raw.mean, [0, 0]) and np.array_equal(raw.std, [1, 1])
    np.testing.assert_allclose(std.mean, raw.x_train.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std.std, raw.x_train.std(axis=0), rtol=1e-4)
    everything = np.concatenate(parts(raw))
    assert not np.allclose(std.mean, everything.mean(axis=0), rtol=0, atol=1e-4)
    np.testing.assert_allclose(std.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(std.x_train.std(axis=0), 1, atol=1e-4)
    assert np.abs(std.x_val.mean(axis=0)).max() > 1e-4      # not re-centred on its own stats
    np.testing.assert_allclose(std.to_original(std.x_val), raw.x_val, atol=1e-5)
    np.testing.assert_allclose(std.standardize(raw.x_test), std.x_test, atol=1e-5)


def test_constant_feature_gets_unit_std(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("a,b,y\n" + "".join(f"{i},3.5,{i % 2}\n" for i in range(20)))
    ds = load_dataset({"name": "csv", "path": str(f)}, 0)
    assert ds.std[1] == 1.0 and ds.mean[1] == 3.5
    assert np.all(np.isfinite(ds.x_train)) and np.all(ds.x_train[:, 1] == 0)


# ------------------------------------------------------------- 1-D regression

def test_regression_1d():
    ds = load_dataset({"name": "regression_1d", "n_samples": 200, "noise": 0.0}, 0)
    check_contract(ds)
    assert ds.task == "regression" and ds.n_classes == 0 and ds.class_names == ()
    assert ds.x_train.shape[1] == 1 and ds.y_train.shape == (len(ds.x_train), 1)
    x = ds.to_original(ds.x_train)[:, 0]
    assert -1 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(ds.y_train[:, 0], np.sin(3 * x), atol=1e-5)
    noisy = load_dataset({"name": "regression_1d", "n_samples": 200, "noise": 0.5}, 0)
    assert 0.3 < np.std(noisy.y_train[:, 0] - np.sin(3 * noisy.to_original(noisy.x_train)[:, 0])) < 0.7
    step = load_dataset({"name": "regression_1d", "n_samples": 50, "noise": 0.0, "function": "step"}, 0)
    assert set(np.unique(step.y_train)) == {-0.5, 0.5}
    other = load_dataset({"name": "regression_1d", "n_samples": 200}, 1)
    assert not np.array_equal(other.x_train, load_dataset({"name": "regression_1d", "n_samples": 200}, 2).x_train)


def test_zero_validation_split_gives_empty_val():
    ds = load_dataset({"name": "xor", "n_samples": 100, "validation_split": 0.0}, 0)
    assert ds.x_val.shape == (0, 2) and ds.y_val.shape == (0,) and len(ds.x_train) == 100
    assert ds.x_test.shape == (0, 2)


# ------------------------------------------------------------- grid

def test_make_grid():
    ds = load_dataset({"name": "moons", "n_samples": 200, "test_split": 0.1}, 0)
    xs, ys, grid = make_grid(ds, n=30, margin=0.1)
    assert xs.shape == ys.shape == (30,) and grid.shape == (900, 2)
    assert grid.dtype == np.float32 and grid.flags.c_contiguous
    x, _ = all_points(ds)
    span = x.max(axis=0) - x.min(axis=0)
    np.testing.assert_allclose([xs[0], ys[0]], x.min(axis=0) - 0.1 * span, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose([xs[-1], ys[-1]], x.max(axis=0) + 0.1 * span, rtol=1e-4, atol=1e-4)
    back = ds.to_original(grid)
    np.testing.assert_allclose(back[1], [xs[1], ys[0]], atol=1e-4)    # row-major, x fastest
    np.testing.assert_allclose(back[30], [xs[0], ys[1]], atol=1e-4)
    with pytest.raises(DataError, match="2 input features"):
        make_grid(load_dataset({"name": "regression_1d", "n_samples": 20}, 0))
