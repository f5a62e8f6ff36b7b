"""engine.data: the user's own data in CSV and NPZ files."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from engine.data import load_dataset
from engine.errors import DataError

from datasets_checks import all_points, check_contract


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
