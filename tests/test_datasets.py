"""engine.datasets: synthetic sets, Fashion-MNIST, CSV and NPZ files."""
from __future__ import annotations

import gzip
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from engine.data import fashion
from engine.data.core import KINDS
from engine.datasets import DATASETS, Dataset, load_dataset, make_grid, resolve_data_config
from engine.errors import DataError, ExperimentError
from engine.params import Param

TWO_D = ["circles", "moons", "xor", "spirals", "blobs"]
SPLITS = ("train", "val", "test")


def parts(ds: Dataset, what: str = "x"):
    return [getattr(ds, f"{what}_{s}") for s in SPLITS]


def all_points(ds: Dataset) -> tuple:
    x = ds.to_original(np.concatenate(parts(ds, "x")))
    y = np.concatenate(parts(ds, "y"))
    return x, y


def check_contract(ds: Dataset) -> None:
    d = ds.x_train.shape[1]
    for x, y in zip(parts(ds, "x"), parts(ds, "y")):
        assert x.dtype == np.float32 and x.flags.c_contiguous and x.ndim == 2 and x.shape[1] == d
        assert not x.flags.writeable and not y.flags.writeable
        assert len(y) == len(x)
        if ds.task == "classification":
            assert y.dtype == np.int64 and y.ndim == 1
            assert len(y) == 0 or (y.min() >= 0 and y.max() < ds.n_classes)
        else:
            assert y.dtype == np.float32 and y.ndim == 2 and ds.n_classes == 0
    assert ds.mean.shape == ds.std.shape == (d,) and np.all(ds.std > 0)
    assert len(ds.feature_names) == d
    if ds.task == "classification":
        assert len(ds.class_names) == ds.n_classes >= 2


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


# ------------------------------------------------------------- Fashion-MNIST (real files)

def _real_fashion_or_skip():
    try:
        return fashion.locate(None)
    except DataError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the Fashion-MNIST files "
                        f"(apt-get install dataset-fashion-mnist): {exc}")
        pytest.skip("Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def fashion_full():
    _real_fashion_or_skip()
    start = time.perf_counter()
    ds = load_dataset({"name": "fashion_mnist"}, 0)
    return ds, time.perf_counter() - start


def test_fashion_full_shapes_labels_and_pixels(fashion_full):
    ds, seconds = fashion_full
    check_contract(ds)
    assert seconds < 5.0  # about 1 s cold on the reference machine; generous for busy CI
    assert ds.x_train.shape == (54000, 784) and ds.x_val.shape == (6000, 784)
    assert ds.x_test.shape == (10000, 784)
    assert ds.image_shape == (28, 28) and ds.n_classes == 10
    assert ds.class_names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert np.array_equal(np.bincount(ds.y_train), [5400] * 10)   # stratified split
    assert np.array_equal(np.bincount(ds.y_val), [600] * 10)
    assert np.array_equal(np.bincount(ds.y_test), [1000] * 10)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-4)
    assert abs(float(ds.x_val.mean())) > 1e-5
    pixels = ds.to_original(ds.x_val[:500])
    assert pixels.min() > -1e-5 and pixels.max() < 1 + 1e-5 and pixels.max() > 0.99


def test_fashion_is_cached_and_fast(fashion_full, monkeypatch):
    calls = []
    real = fashion._read_bytes
    monkeypatch.setattr(fashion, "_read_bytes", lambda p: calls.append(p) or real(p))
    start = time.perf_counter()
    ds = load_dataset({"name": "fashion_mnist", "standardize": False}, 0)
    seconds = time.perf_counter() - start
    assert calls == []                         # no second decode in this process
    assert seconds < 2.0
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert np.array_equal(ds.y_train, fashion_full[0].y_train)   # split independent of scaling


def test_fashion_task_b_shirt_vs_sandal(fashion_full):
    cfg = {"name": "fashion_mnist", "classes": [5, 6], "per_class": 100}
    ds = load_dataset(cfg, 42)
    check_contract(ds)
    assert ds.x_train.shape == (200, 784)                 # the book's 200 labeled images
    assert np.array_equal(np.bincount(ds.y_train), [100, 100])
    assert ds.class_names == ("Sandal", "Shirt") and ds.n_classes == 2   # positive = shirt = 1
    assert np.array_equal(np.bincount(ds.y_val), [11, 11])              # 10% of train + val
    assert np.array_equal(np.bincount(ds.y_test), [1000, 1000])
    # labels really follow the images: sandals have far less ink than shirts
    ink = ds.to_original(ds.x_test).mean(axis=1)
    assert ink[ds.y_test == 0].mean() < 0.75 * ink[ds.y_test == 1].mean()
    again, other = load_dataset(cfg, 42), load_dataset(cfg, 43)
    assert np.array_equal(again.x_train, ds.x_train)
    assert not np.array_equal(other.x_train, ds.x_train)
    big_val = load_dataset({**cfg, "val_per_class": 500}, 42)
    assert np.array_equal(np.bincount(big_val.y_val), [500, 500]) and len(big_val.x_train) == 200


def test_fashion_task_a_and_order_of_classes(fashion_full):
    full = fashion_full[0]
    ds = load_dataset({"name": "fashion_mnist", "classes": [0, 1, 2, 3, 4, 7, 8, 9],
                       "test_per_class": 10}, 0)
    assert ds.n_classes == 8 and np.bincount(ds.y_train).min() > 5000 and ds.y_train.max() == 7
    assert "Sandal" not in ds.class_names and "Shirt" not in ds.class_names
    assert len(ds.x_test) == 80
    assert len(ds.x_train) + len(ds.x_val) == 48000
    swapped = load_dataset({"name": "fashion_mnist", "classes": [9, 0]}, 0)
    assert swapped.class_names == ("Ankle boot", "T-shirt/top")
    # boots (label 0 here) look like full's class 9, not class 0
    mean_boot = swapped.to_original(swapped.x_test[swapped.y_test == 0]).mean(axis=0)
    ref9 = full.to_original(full.x_test[full.y_test == 9]).mean(axis=0)
    ref0 = full.to_original(full.x_test[full.y_test == 0]).mean(axis=0)
    np.testing.assert_allclose(mean_boot, ref9, atol=1e-4)
    assert np.abs(mean_boot - ref0).max() > 0.1


def test_fashion_reconstruction_targets_are_inputs(fashion_full):
    ds = load_dataset({"name": "fashion_mnist", "classes": [5, 6], "per_class": 50,
                       "task": "reconstruction", "standardize": False}, 0)
    assert ds.task == "reconstruction" and ds.n_classes == 0
    assert ds.y_train is ds.x_train and ds.y_test.shape == (2000, 784)


# ------------------------------------------------------------- Fashion-MNIST (fake files)

def write_idx(folder: Path, n_train=60, n_test=20, side=4, gz=True, names=None):
    """Tiny IDX files: labels cycle 0..9; pixel 0 = label * 20, pixel 1 = index."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = np.zeros((n, side, side), np.uint8)
        images[:, 0, 0] = labels * 20
        images[:, 0, 1] = np.arange(n) % 256
        images[:, 1, 1] = 255
        blobs = {
            f"{split}-images-idx3-ubyte": bytes([0, 0, 8, 3]) + b"".join(
                int(v).to_bytes(4, "big") for v in (n, side, side)) + images.tobytes(),
            f"{split}-labels-idx1-ubyte": bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + labels.tobytes(),
        }
        for name, data in blobs.items():
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder


def test_fake_files_from_path_remap_and_split(tmp_path):
    folder = write_idx(tmp_path / "fm")
    ds = load_dataset({"name": "fashion_mnist", "path": str(folder), "classes": [6, 5],
                       "per_class": 4, "val_per_class": 2}, 0)
    check_contract(ds)
    assert ds.image_shape == (4, 4) and ds.class_names == ("Shirt", "Sandal")
    raw = load_dataset({"name": "fashion_mnist", "path": str(folder), "classes": [6, 5],
                        "per_class": 4, "val_per_class": 2, "standardize": False}, 0)
    for x, y in zip(parts(raw, "x"), parts(raw, "y")):
        orig = np.rint(x[:, 0] * 255 / 20).astype(int)   # the original class
        assert np.array_equal(np.where(y == 0, 6, 5), orig)
    assert np.bincount(raw.y_train).tolist() == [4, 4] and np.bincount(raw.y_val).tolist() == [2, 2]
    train_ids = set(np.rint(raw.x_train[:, 1] * 255).astype(int))
    val_ids = set(np.rint(raw.x_val[:, 1] * 255).astype(int))
    assert len(train_ids) == 8 and not train_ids & val_ids   # validation never overlaps
    assert len(raw.x_test) == 4
    # constant pixels: floored std, finite values
    assert np.all(np.isfinite(ds.x_test)) and ds.std.min() == pytest.approx(fashion.PIXEL_STD_FLOOR)


def test_fake_uncompressed_files_and_env_var(tmp_path, monkeypatch):
    write_idx(tmp_path / "root" / "fashion-mnist", gz=False)
    monkeypatch.setenv("DESCENT_DATA_DIR", str(tmp_path / "root"))
    ds = load_dataset({"name": "fashion_mnist", "validation_split": 0.5}, 0)
    assert ds.image_shape == (4, 4) and len(ds.x_train) == 30 and len(ds.x_val) == 30


def test_per_class_larger_than_available(tmp_path):
    folder = write_idx(tmp_path / "fm")
    with pytest.raises(DataError, match=r"class 5 \(Sandal\) has 6 training images"):
        load_dataset({"name": "fashion_mnist", "path": str(folder), "classes": [5, 6],
                      "per_class": 6}, 0)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b"not gzip at all", "not a valid gzip file"),
    (lambda b: gzip.compress(gzip.decompress(b)[:-5]), "truncated or corrupt"),
    (lambda b: gzip.compress(b"\x00\x00\x08\x01" + gzip.decompress(b)[4:]), "magic number"),
])
def test_damaged_file_names_it(tmp_path, damage, message):
    folder = write_idx(tmp_path / "fm")
    victim = folder / "train-images-idx3-ubyte.gz"
    victim.write_bytes(damage(victim.read_bytes()))
    with pytest.raises(DataError) as err:
        load_dataset({"name": "fashion_mnist", "path": str(folder)}, 0)
    assert str(victim) in str(err.value) and message in str(err.value)


def test_bad_label_value(tmp_path):
    folder = write_idx(tmp_path / "fm")
    f = folder / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(f.read_bytes()))
    data[-1] = 12
    f.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DataError, match="label 12"):
        load_dataset({"name": "fashion_mnist", "path": str(folder)}, 0)


def test_cache_notices_a_changed_file(tmp_path):
    folder = write_idx(tmp_path / "fm", n_train=100)
    assert len(load_dataset({"name": "fashion_mnist", "path": str(folder)}, 0).x_train) == 90
    write_idx(folder, n_train=200)
    assert len(load_dataset({"name": "fashion_mnist", "path": str(folder)}, 0).x_train) == 180


def test_missing_files_in_path(tmp_path):
    folder = write_idx(tmp_path / "fm")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as err:
        load_dataset({"name": "fashion_mnist", "path": str(folder)}, 0)
    msg = str(err.value)
    assert str(folder) in msg and "missing t10k-labels-idx1-ubyte.gz" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "/usr/share/datasets" not in msg.split("\n")[1]   # only the named folder is searched


def test_missing_files_lists_every_location(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "usr-share")
    monkeypatch.setattr(fashion, "REPO_DIR", tmp_path / "repo" / "data" / "fashion-mnist")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DESCENT_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist").mkdir(parents=True)
    with pytest.raises(DataError) as err:
        load_dataset({"name": "fashion_mnist"}, 0)
    msg = str(err.value)
    for place in [tmp_path / "env", tmp_path / "env" / "fashion-mnist",
                  tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist",
                  tmp_path / "home" / ".cache" / "descent" / "fashion-mnist",
                  tmp_path / "usr-share", tmp_path / "data" / "fashion-mnist",
                  tmp_path / "repo" / "data" / "fashion-mnist"]:
        assert str(place) in msg
    assert "missing train-images-idx3-ubyte.gz" in msg          # the keras folder exists, empty
    assert "apt-get install dataset-fashion-mnist" in msg and "data.path" in msg


def test_standard_location_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "nothing")
    monkeypatch.delenv("DESCENT_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_idx(tmp_path / "home" / ".cache" / "descent" / "fashion-mnist")
    assert fashion.locate(None)["train_images"].parent == tmp_path / "home" / ".cache" / "descent" / "fashion-mnist"


# ------------------------------------------------------------- CSV

def csv_file(tmp_path, text, name="data.csv"):
    f = tmp_path / name
    f.write_text(text)
    return str(f)


def load_csv(path, **kw):
    return load_dataset({"name": "csv", "path": path, **kw}, 0)


def iris_like(rows=30):
    species = ["setosa", "versicolor", "virginica"]
    return "sepal_length,sepal_width,species\n" + "".join(
        f"{1 + i * 0.1:.1f},{(i % 7) * 0.5:.1f},{species[i % 3]}\n" for i in range(rows))


def test_csv_text_target_is_classification(tmp_path):
    ds = load_csv(csv_file(tmp_path, iris_like()), validation_split=0.2)
    check_contract(ds)
    assert ds.task == "classification" and ds.class_names == ("setosa", "versicolor", "virginica")
    assert ds.feature_names == ("sepal_length", "sepal_width") and ds.name == "data.csv"
    raw = load_csv(csv_file(tmp_path, iris_like()), validation_split=0.2, standardize=False)
    x, y = all_points(raw)
    # row i has sepal_length 1 + 0.1 i and species i % 3
    i = np.rint((x[:, 0] - 1) / 0.1).astype(int)
    assert np.array_equal(y, i % 3) and sorted(i) == list(range(30))
    assert np.bincount(raw.y_val).tolist() == [2, 2, 2]


def test_csv_integer_target_classification_and_float_regression(tmp_path):
    ds = load_csv(csv_file(tmp_path, "".join(f"{i},{i * 2},{[3, 7][i % 2]}\n" for i in range(20))))
    assert ds.task == "classification" and ds.class_names == ("3", "7")
    assert ds.feature_names == ("column 1", "column 2")            # no header detected
    reg = load_csv(csv_file(tmp_path, "x;y\n" + "".join(f"{i};{i * 0.37:.3f}\n" for i in range(20))))
    assert reg.task == "regression" and reg.y_train.shape[1] == 1 and reg.feature_names == ("x",)
    x, y = all_points(reg)
    np.testing.assert_allclose(y[:, 0], x[:, 0] * 0.37, atol=1e-3)
    forced = load_csv(csv_file(tmp_path, "".join(f"{i},{i % 3}\n" for i in range(20))), task="regression")
    assert forced.task == "regression"
    many = load_csv(csv_file(tmp_path, "".join(f"{i},{i}\n" for i in range(40))))
    assert many.task == "regression"                                 # 40 distinct ints


def test_csv_target_choice_delimiters_and_header(tmp_path):
    text = "a\tlabel\tb\n" + "".join(f"{i}\t{i % 2}\t{-i}\n" for i in range(10))
    path = csv_file(tmp_path, text)
    by_name = load_csv(path, target="label", standardize=False)
    by_index = load_csv(path, target=1, standardize=False)
    by_negative = load_csv(path, target=-2, standardize=False)
    assert by_name.feature_names == ("a", "b")
    for ds in (by_index, by_negative):
        assert np.array_equal(ds.x_train, by_name.x_train) and np.array_equal(ds.y_train, by_name.y_train)
    x, y = all_points(by_name)
    assert np.array_equal(x[:, 1], -x[:, 0]) and np.array_equal(y, x[:, 0].astype(int) % 2)
    ws = load_csv(csv_file(tmp_path, "".join(f"{i}  {i * i}   {i % 2}\n" for i in range(10))))
    assert ws.n_features == 2 and len(ws.x_train) + len(ws.x_val) == 10
    quoted = load_csv(csv_file(tmp_path, '"x","y"\n' + "".join(f'"{i}","{i % 2}"\n' for i in range(10))))
    assert quoted.feature_names == ("x",)
    forced = load_csv(csv_file(tmp_path, "1,2\n" + "".join(f"{i},{i % 2}\n" for i in range(10))),
                      header=True)
    assert forced.feature_names == ("1",)


@pytest.mark.parametrize("text, parts_", [
    ("a,b,y\n1,2,0\n3,,1\n5,6,0\n", ["line 3", "column 2 ('b')", "missing value"]),
    ("a,b,y\n1,2,0\n3,NA,1\n5,6,0\n", ["line 3", "column 2 ('b')", "missing value ('NA')"]),
    ("a,b,y\n1,2,0\n3,red,1\n5,6,0\n", ["line 3", "column 2 ('b')", "text 'red'"]),
    ("1,2,0\n3,4,1\n5,red,0\n", ["line 3", "column 2", "text 'red'"]),
    ("a,b,y\n1,2,0\n3,inf,1\n5,6,0\n", ["line 3", "column 2 ('b')", "not a finite number"]),
    ("a,b,y\n1,2,0\n\n3,4\n5,6,0\n", ["line 4", "2 columns", "has 3"]),
    ("a,b,y\n1,2,0\n3,4,\n5,6,1\n", ["line 3", "column 3 ('y')", "missing value"]),
    ("", ["is empty"]),
    ("\n\n", ["is empty"]),
    ("a,b,y\n", ["no data rows"]),
    ("a,b,y\n1,2,0\n", ["single data row"]),
    ("a,b,y\n1,2,0\n3,4,0\n5,6,0\n", ["single class '0'", "column 3 ('y')"]),
    ("a,b,y\n1,2,cat\n3,4,cat\n", ["single class 'cat'"]),
    ("x\n1\n2\n3\n", ["single column"]),
])
def test_csv_errors_name_file_line_and_column(tmp_path, text, parts_):
    path = csv_file(tmp_path, text, "bad.csv")
    with pytest.raises(DataError) as err:
        load_csv(path)
    msg = str(err.value)
    assert "bad.csv" in msg
    for part in parts_:
        assert part in msg, (part, msg)


def test_csv_target_and_task_errors(tmp_path):
    path = csv_file(tmp_path, iris_like(), "iris.csv")
    with pytest.raises(DataError, match=r"'specis' is not a column of .*iris.csv \(did you mean 'species'\?\)"):
        load_csv(path, target="specis")
    with pytest.raises(DataError, match="data.target=5 but .* has 3 columns"):
        load_csv(path, target=5)
    with pytest.raises(DataError, match="line 2, column 3 \\('species'\\): text 'setosa' in the target"):
        load_csv(path, task="regression")
    headerless = csv_file(tmp_path, "1,2,0\n3,4,1\n", "nohead.csv")
    with pytest.raises(DataError, match="no header row"):
        load_csv(headerless, target="y")


def test_csv_file_problems(tmp_path):
    with pytest.raises(DataError, match=r"nope.csv does not exist"):
        load_csv(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="is not a file"):
        load_csv(str(tmp_path))
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\x81")
    with pytest.raises(DataError, match="bin.csv is not UTF-8"):
        load_csv(str(binary))


def test_csv_path_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    csv_file(tmp_path, iris_like(), "home.csv")
    assert load_csv("~/home.csv").n_classes == 3


# ------------------------------------------------------------- NPZ

def npz_file(tmp_path, name="d.npz", **arrays):
    f = tmp_path / name
    np.savez(f, **arrays)
    return str(f)


def load_npz(path, **kw):
    return load_dataset({"name": "npz", "path": path, **kw}, 0)


def test_npz_classification_regression_and_test_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    y = np.repeat([10, 20], 25)
    ds = load_npz(npz_file(tmp_path, x=x, y=y, x_test=x[:5], y_test=y[:5]))
    check_contract(ds)
    assert ds.task == "classification" and ds.class_names == ("10", "20")
    assert len(ds.x_train) + len(ds.x_val) == 50 and len(ds.x_test) == 5
    assert np.array_equal(ds.y_test, (y[:5] == 20).astype(int))
    np.testing.assert_allclose(ds.to_original(ds.x_test), x[:5], atol=1e-5)
    reg = load_npz(npz_file(tmp_path, "r.npz", x=x, y=x[:, :2] * 2), test_split=0.2)
    assert reg.task == "regression" and reg.y_train.shape[1] == 2 and len(reg.x_test) == 10
    np.testing.assert_allclose(reg.y_train, reg.to_original(reg.x_train)[:, :2] * 2, atol=1e-4)
    named = load_npz(npz_file(tmp_path, "n.npz", x=x, y=y % 3, feature_names=np.array(["a", "b", "c"]),
                              class_names=np.array(["neg", "pos"])))
    assert named.feature_names == ("a", "b", "c")
    images = load_npz(npz_file(tmp_path, "i.npz", x=rng.random((20, 5, 4)), y=np.arange(20) % 2))
    assert images.image_shape == (5, 4) and images.n_features == 20
    rec = load_npz(npz_file(tmp_path, "a.npz", x=x), task="reconstruction")
    assert rec.y_train is rec.x_train


class Trap:
    """Unpickling this creates a file: proves whether a loader unpickled."""
    path = None

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_npz_object_array_is_never_unpickled(tmp_path):
    sentinel = tmp_path / "UNPICKLED"
    trap = Trap()
    trap.path = str(sentinel)
    arr = np.empty(2, dtype=object)
    arr[:] = [trap, trap]
    path = npz_file(tmp_path, x=np.zeros((2, 2)), y=arr)
    with pytest.raises(DataError, match="'y' holds Python objects.*never unpickles"):
        load_npz(path)
    assert not sentinel.exists()
    raw_pickle = tmp_path / "p.npz"
    raw_pickle.write_bytes(pickle.dumps(trap))
    with pytest.raises(DataError, match="p.npz is not a .npz archive"):
        load_npz(str(raw_pickle))
    assert not sentinel.exists()


@pytest.mark.parametrize("arrays, parts_", [
    ({"X": np.zeros((4, 2)), "y": np.arange(4)}, ["no array 'x'", "holds X, y", "did you mean"]),
    ({"x": np.zeros((4, 2))}, ["no array 'y'"]),
    ({"x": np.zeros((4, 2)), "y": np.arange(3)}, ["x has 4 rows but y has shape (3,)"]),
    ({"x": np.array([[0, 1], [np.nan, 2], [1, 1], [0, 0]]), "y": np.arange(4) % 2},
     ["'x' has 1 NaN or infinite", "index [1, 0]"]),
    ({"x": np.zeros((4, 2)), "y": np.array([0, 1, np.inf, 1.0])}, ["'y' has 1 NaN or infinite"]),
    ({"x": np.zeros((4, 2)), "y": np.zeros(4, int)}, ["single class 0"]),
    ({"x": np.zeros((0, 2)), "y": np.zeros(0)}, ["shape (0, 2)"]),
    ({"x": np.array([["a", "b"]] * 4), "y": np.arange(4)}, ["'x' has dtype <U1"]),
    ({"x": np.zeros((4, 2)), "y": np.arange(4) % 2, "x_test": np.zeros((2, 3)),
      "y_test": np.zeros(2, int)}, ["x has 2 features but x_test has 3"]),
    ({"x": np.zeros((4, 2)), "y": np.arange(4) % 2, "x_test": np.zeros((2, 2))}, ["x_test but no y_test"]),
    ({"x": np.zeros((4, 2)), "y": np.arange(4) % 2, "x_test": np.zeros((2, 2)),
      "y_test": np.array([0, 5])}, ["y_test has label 5"]),
])
def test_npz_errors(tmp_path, arrays, parts_):
    path = npz_file(tmp_path, "bad.npz", **arrays)
    with pytest.raises(DataError) as err:
        load_npz(path)
    msg = str(err.value)
    assert "bad.npz" in msg
    for part in parts_:
        assert part in msg, (part, msg)


def test_npz_file_problems(tmp_path):
    with pytest.raises(DataError, match="gone.npz does not exist"):
        load_npz(str(tmp_path / "gone.npz"))
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="single array"):
        load_npz(str(single))
    broken = tmp_path / "broken.npz"
    good = Path(npz_file(tmp_path, x=np.zeros((4, 2)), y=np.arange(4))).read_bytes()
    broken.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="broken.npz"):
        load_npz(str(broken))
    with pytest.raises(DataError, match="has its own x_test, so data.test_split must be 0"):
        load_npz(npz_file(tmp_path, "t.npz", x=np.zeros((4, 2)), y=np.arange(4) % 2,
                          x_test=np.zeros((2, 2)), y_test=np.array([0, 1])), test_split=0.1)
