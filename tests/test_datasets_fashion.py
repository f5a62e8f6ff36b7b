"""engine.data: Fashion-MNIST, from the real files when installed and
from tiny fake IDX files written by the tests."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from engine.data import fashion
from engine.data import load_dataset
from engine.errors import DataError

from datasets_checks import check_contract, parts


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
    return load_dataset({"name": "fashion_mnist"}, 0), None


def test_fashion_full_shapes_labels_and_pixels(fashion_full):
    # how long loading takes is measured by bench/data_load.py, not asserted here (a shared
    # 2-core machine can miss any wall-clock limit)
    ds, _ = fashion_full
    check_contract(ds)
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
    real = fashion._read_idx
    monkeypatch.setattr(fashion, "_read_idx", lambda p, ndim: calls.append(p) or real(p, ndim))
    ds = load_dataset({"name": "fashion_mnist", "standardize": False}, 0)
    assert calls == []                         # no second decode in this process: what makes it fast
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
