"""User data files: CSV and NumPy .npz.

Only the file the user named is read (``~`` expanded, relative paths taken
from the working directory).  Every problem is a DataError naming the file
and, for CSV, the line (1-based, as an editor shows it) and the column
(1-based number plus the header name when there is one).
"""
from __future__ import annotations

import csv
import io
import math
import zipfile
from pathlib import Path

import numpy as np

from engine.errors import DataError, ExperimentError, nearest
from engine.limits import check_npz
from engine.params import Param
from engine.data.core import (DatasetSpec, common_params, finish, load_source, register, rngs, split_indices, take,
                              user_path)

MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}
DELIMITERS = (",", ";", "\t", "|")
MAX_CLASSES = 1000
AUTO_MAX_CLASSES = 20
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _read_text(path: Path) -> str:
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if not path.is_file():
        raise DataError(f"data file {path} is not a file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------ CSV

def _split_rows(text: str, delimiter: str | None) -> list:
    """[(line number, cells)] for non-blank lines, cells stripped."""
    if delimiter == "whitespace":
        return [(i + 1, line.split()) for i, line in enumerate(text.splitlines()) if line.strip()]
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = []
    try:
        for cells in reader:
            if cells and (len(cells) > 1 or cells[0].strip()):
                rows.append((reader.line_num, [c.strip() for c in cells]))
    except csv.Error as exc:
        raise DataError(f"line {reader.line_num}: {exc}") from None
    return rows


def _sniff(text: str) -> str:
    """Pick the delimiter giving the same (> 1) number of fields on the most
    sample lines, preferring the one whose cells parse as numbers."""
    sample = "\n".join([ln for ln in text.splitlines() if ln.strip()][:50])
    best, best_score = None, None
    for delim in DELIMITERS + ("whitespace",):
        try:
            rows = [cells for _, cells in _split_rows(sample, delim)]
        except DataError:
            continue
        counts = [len(r) for r in rows]
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        numeric = sum(_is_number(c) for r in rows[1:] for c in r)
        score = (counts.count(mode) / len(counts), numeric)
        if best_score is None or score > best_score:
            best, best_score = delim, score
    return best or ","


def _column_label(j: int, header) -> str:
    return f"column {j + 1} ({header[j]!r})" if header else f"column {j + 1}"


def _bad_cell(path, line, j, header, cell, what) -> DataError:
    if cell.strip().lower() in MISSING:
        problem = "a missing value" + (f" ({cell!r})" if cell else "")
        hint = "fill or drop the row"
    elif what == "feature" and not _is_number(cell):
        problem = f"text {cell!r}"
        hint = "feature columns must be numbers (encode categories as numbers first)"
    elif _is_number(cell) and np.isfinite(float(cell)):
        problem = f"{cell!r}, beyond float32's range (at most ±{FLOAT32_MAX:.3g})"
        hint = "rescale the column (Descent trains in float32)"
    else:
        problem = f"{cell!r}, not a finite number"
        hint = "fix the value"
    return DataError(f"{path}, line {line}, {_column_label(j, header)}: {problem}; {hint}")


def _numeric_column(path, rows, j, header, what) -> np.ndarray:
    cells = [r[j] for _, r in rows]
    try:
        col = np.fromiter(map(float, cells), np.float64, count=len(cells))
    except ValueError:
        col = None
    if col is not None:
        bad = np.flatnonzero(~np.isfinite(col) | (np.abs(col) > FLOAT32_MAX))
        if not len(bad):
            return col
        i = int(bad[0])
    else:
        i = next(k for k, c in enumerate(cells) if not _is_number(c) or c.strip().lower() in MISSING)
    raise _bad_cell(path, rows[i][0], j, header, cells[i], what)


def _target_index(target, header, ncols, path) -> int:
    if target is None:
        return ncols - 1
    if isinstance(target, int):
        if not -ncols <= target < ncols:
            raise DataError(f"data.target={target} but {path} has {ncols} columns "
                            f"(indices 0..{ncols - 1}, or negative from the end)")
        return target % ncols
    if not header:
        raise DataError(f"data.target={target!r} names a column but {path} has no header row "
                        f"(give a 0-based column index, or set data.header to true)")
    if target not in header:
        raise DataError(f"data.target={target!r} is not a column of {path}{nearest(target, header)}; "
                        f"columns: {', '.join(header)}")
    return header.index(target)


def _csv_source(p: dict) -> dict:
    """The CSV file's text (keyed by data.path as written, which the driver and workers share)."""
    return {f"csv:{p['path']}": lambda: _read_text(user_path(p["path"]))}


def _load_csv(p: dict, seed: int):
    path = user_path(p["path"])
    text = load_source(_csv_source, p)
    delim = p["delimiter"] if p["delimiter"] is not None else _sniff(text)
    try:
        rows = _split_rows(text, delim)
    except DataError as exc:
        raise DataError(f"{path}, {exc}") from None
    if not rows:
        raise DataError(f"{path} is empty: no rows")
    ncols = len(rows[0][1])
    for line, cells in rows:
        if len(cells) != ncols:
            raise DataError(f"{path}, line {line}: {len(cells)} columns, but line {rows[0][0]} has "
                            f"{ncols} (ragged rows; check the delimiter {delim!r} and quoting)")
    header = p["header"]
    if header is None:
        first = rows[0][1]
        second = rows[1][1] if len(rows) > 1 else None
        header = (any(not _is_number(a) and _is_number(b) for a, b in zip(first, second))
                  if second else not any(_is_number(a) for a in first))
    names = tuple(rows[0][1]) if header else None
    if header:
        rows = rows[1:]
    if ncols < 2:
        raise DataError(f"{path} has a single column (delimiter {delim!r}); need feature "
                        f"columns and a target column")
    if not rows:
        raise DataError(f"{path} has no data rows" + (" (only a header)" if header else ""))
    if len(rows) < 2:
        raise DataError(f"{path} has a single data row; need at least 2 to train on")
    t = _target_index(p["target"], names, ncols, path)
    features = [j for j in range(ncols) if j != t]
    x = np.empty((len(rows), len(features)), np.float32)
    for k, j in enumerate(features):
        x[:, k] = _numeric_column(path, rows, j, names, "feature")

    cells = [r[t] for _, r in rows]
    for i, c in enumerate(cells):
        if c.strip().lower() in MISSING:
            raise _bad_cell(path, rows[i][0], t, names, c, "target")
    numeric = all(_is_number(c) for c in cells)
    task = p["task"]
    values = _numeric_column(path, rows, t, names, "target") if numeric else None
    if task == "auto":
        if not numeric:
            task = "classification"
        else:
            integer = bool(np.all(values == np.round(values)))
            distinct = len(np.unique(values))
            few = distinct <= min(AUTO_MAX_CLASSES, max(2, len(values) // 2))
            task = "classification" if integer and few else "regression"
    target_name = _column_label(t, names)
    if task == "regression":
        if not numeric:
            i = next(k for k, c in enumerate(cells) if not _is_number(c))
            raise DataError(f"{path}, line {rows[i][0]}, {target_name}: text {cells[i]!r} in the "
                            f"target; task 'regression' needs numbers")
        y = values.astype(np.float32)[:, None]
        class_names = ()
    else:
        if numeric:
            uniq, y = np.unique(values, return_inverse=True)
            class_names = tuple(str(int(v)) if v == int(v) else f"{v:g}" for v in uniq)
        else:
            uniq, y = np.unique(np.array(cells, dtype=np.str_), return_inverse=True)
            class_names = tuple(str(v) for v in uniq)
        if len(uniq) < 2:
            raise DataError(f"{path}: the target ({target_name}) has a single class "
                            f"{class_names[0]!r}; classification needs at least 2")
        if len(uniq) > MAX_CLASSES:
            raise DataError(f"{path}: the target ({target_name}) has {len(uniq)} distinct values, "
                            f"more than {MAX_CLASSES} classes; use task 'regression'?")
        y = y.astype(np.int64)
    g_split, = rngs(seed, 1)
    cls = task == "classification"
    tr, va, te = split_indices(y if cls else None, len(x), p["validation_split"], p["test_split"],
                               g_split, stratify=cls)
    feat_names = [names[j] for j in features] if names else [f"column {j + 1}" for j in features]
    return finish(path.name, task,
                  {"train": take(x, y, tr), "val": take(x, y, va), "test": take(x, y, te)},
                  standardize=p["standardize"], n_classes=len(class_names),
                  class_names=class_names, feature_names=feat_names)


def _check_csv(p: dict) -> None:
    t = p["target"]
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, str))):
        raise ExperimentError(f"data.target must be a column name, a 0-based column index or "
                              f"null (last column), got {t!r}")
    d = p["delimiter"]
    if d is not None and d != "whitespace" and len(d) != 1:
        raise ExperimentError(f"data.delimiter must be one character, 'whitespace' or null "
                              f"(auto), got {d!r}")


class _TargetParam(Param):
    """A column name (str) or a 0-based index (int)."""

    def check(self, value, where):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if value is None or isinstance(value, str):
            return super().check(value, where)
        raise ExperimentError(f"{where} must be a column name, a 0-based column index or null "
                              f"(last column), got {value!r}")


_TARGET = _TargetParam(None, "Target column: its header name or 0-based index (negative counts "
                             "from the end). Empty: the last column.", "str", optional=True)

register(DatasetSpec(
    name="csv", kind="file",
    params={
        "path": Param(None, "The CSV file to read.", "str"),
        "target": _TARGET,
        "delimiter": Param(None, "Field separator: one character or 'whitespace'. Empty: "
                                 "detect among , ; tab | and whitespace.", "str", optional=True),
        "header": Param(None, "Whether the first row holds column names. Empty: detect.",
                        "bool", optional=True),
        "task": Param("auto", "auto: classification when the target is text, or integers with "
                              f"at most {AUTO_MAX_CLASSES} distinct values (and at most half as "
                              "many as rows); regression otherwise.",
                      "choice", choices=("auto", "classification", "regression")),
        **common_params(),
    },
    doc="A table of numbers, one example per row; one column is the target.",
    loader=_load_csv, check=_check_csv, sources=_csv_source))


# ------------------------------------------------------------------ NPZ

def _array(z, key: str, path: Path) -> np.ndarray:
    try:
        a = z[key]
    except ValueError as exc:
        if "pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(f"{path}: array {key!r} holds Python objects (an object array); Descent "
                            f"never unpickles data files. Save plain numeric arrays, e.g. "
                            f"np.savez(path, x=x.astype(np.float32), y=y)") from None
        raise DataError(f"{path}: array {key!r} cannot be read ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: array {key!r} is corrupt ({exc})") from None
    if a.dtype.kind in "OV":
        raise DataError(f"{path}: array {key!r} has dtype {a.dtype}; expected numbers")
    return a


def _features(a: np.ndarray, key: str, path: Path) -> tuple:
    if a.dtype.kind not in "biuf":
        raise DataError(f"{path}: array {key!r} has dtype {a.dtype}; expected numbers")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim not in (2, 3) or a.shape[0] == 0 or math.prod(a.shape[1:]) == 0:
        raise DataError(f"{path}: array {key!r} has shape {a.shape}; expected (n, d) with n > 0 and d > 0 "
                        f"(or (n, h, w) images)")
    image = a.shape[1:] if a.ndim == 3 else None
    a = a.reshape(len(a), math.prod(a.shape[1:]))
    _finite(a, key, path)
    return a.astype(np.float32), image


def _finite(a: np.ndarray, key: str, path: Path) -> None:
    """Refuse NaN, infinities and values float32 (what Descent trains in) cannot hold, naming the
    first one's index (its column for a table)."""
    if a.dtype.kind in "fiu":
        with np.errstate(invalid="ignore"):
            bad = np.argwhere(~np.isfinite(a)) if a.dtype.kind == "f" else np.zeros((0, a.ndim), int)
            big = np.argwhere(np.abs(a.astype(np.float64)) > FLOAT32_MAX) if not len(bad) else bad[:0]
        if len(bad):
            where = ", ".join(str(int(i)) for i in bad[0])
            raise DataError(f"{path}: array {key!r} has {len(bad)} NaN or infinite value(s), "
                            f"the first at index [{where}]")
        if len(big):
            where = ", ".join(str(int(i)) for i in big[0])
            column = f", column {int(big[0][1])}" if a.ndim == 2 else ""
            raise DataError(f"{path}: array {key!r}{column} holds {a[tuple(big[0])]:.3g} (index [{where}]), beyond "
                            f"float32's range (at most ±{FLOAT32_MAX:.3g}); rescale it (Descent trains in float32)")


def _read_npz(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"data file {path} does not exist" if not path.exists()
                        else f"data file {path} is not a file")
    check_npz(path, str(path), DataError)   # the shapes its headers claim, before NumPy allocates them
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None


def _npz_source(p: dict) -> dict:
    """The .npz file's bytes (keyed by data.path as written)."""
    return {f"npz:{p['path']}": lambda: _read_npz(user_path(p["path"]))}


def _load_npz(p: dict, seed: int):
    path = user_path(p["path"])
    try:
        z = np.load(io.BytesIO(load_source(_npz_source, p)), allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path} is not a .npz archive ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path} cannot be read as a .npz archive ({exc})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path} holds a single array (.npy); save a .npz with np.savez(path, x=..., y=...)")
    with z:
        keys = set(z.files)
        task = p["task"]
        need = {"x"} if task == "reconstruction" else {"x", "y"}
        if not need <= keys:
            miss = sorted(need - keys)
            same = [k for k in keys if k.lower() == miss[0]]
            hint = (f" (did you mean {same[0]!r}? names are case-sensitive)" if same
                    else nearest(miss[0], sorted(keys)))
            raise DataError(f"{path} has no array {', '.join(map(repr, miss))}{hint}; it holds "
                            f"{', '.join(sorted(keys)) or 'nothing'} (expected x (n, d) and "
                            f"y (n,) or (n, k))")
        has_test = "x_test" in keys
        if has_test and task != "reconstruction" and "y_test" not in keys:
            raise DataError(f"{path} has x_test but no y_test")
        if "y_test" in keys and not has_test:
            raise DataError(f"{path} has y_test but no x_test")
        if has_test and p["test_split"] > 0:
            raise DataError(f"{path} has its own x_test, so data.test_split must be 0 "
                            f"(got {p['test_split']:g})")
        x, image = _features(_array(z, "x", path), "x", path)
        x_test = None
        if has_test:
            x_test, _ = _features(_array(z, "x_test", path), "x_test", path)
            if x_test.shape[1] != x.shape[1]:
                raise DataError(f"{path}: x has {x.shape[1]} features but x_test has {x_test.shape[1]}")
        ys = {}
        if task != "reconstruction":
            for key in ("y", "y_test") if has_test else ("y",):
                y = _array(z, key, path)
                n = len(x if key == "y" else x_test)
                if y.ndim == 0 or len(y) != n or y.ndim > 2:
                    xk = "x" if key == "y" else "x_test"
                    raise DataError(f"{path}: {xk} has {n} rows but {key} has shape {y.shape}; "
                                    f"expected ({n},) or ({n}, k)")
                if y.dtype.kind not in "biufU":
                    raise DataError(f"{path}: array {key!r} has dtype {y.dtype}; expected numbers "
                                    f"or strings")
                _finite(y, key, path)
                ys[key] = y
        feat_names = _names(z, "feature_names", x.shape[1], path)
        given_classes = _names(z, "class_names", None, path)

    if task == "auto":
        y = ys["y"]
        task = "classification" if (y.dtype.kind in "biuU" and y.ndim == 1) else "regression"
    class_names = ()
    if task == "classification":
        y = ys["y"]
        if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
            raise DataError(f"{path}: y has shape {y.shape}; classification needs one label per row")
        uniq, y_lab = np.unique(y.reshape(-1), return_inverse=True)
        if len(uniq) < 2:
            raise DataError(f"{path}: y has a single class {uniq[0].item()!r}; classification "
                            f"needs at least 2")
        if len(uniq) > MAX_CLASSES:
            raise DataError(f"{path}: y has {len(uniq)} distinct values, more than {MAX_CLASSES} "
                            f"classes; use task 'regression'?")
        class_names = tuple(str(v.item()) if not isinstance(v.item(), float) or v != int(v)
                            else str(int(v)) for v in uniq)
        if given_classes is not None:
            if y.dtype.kind in "biu" and uniq.min() >= 0 and len(given_classes) > int(uniq.max()):
                class_names = tuple(given_classes[int(v)] for v in uniq)
            elif len(given_classes) == len(uniq):
                class_names = tuple(given_classes)
            else:
                raise DataError(f"{path}: class_names has {len(given_classes)} entries but y has "
                                f"{len(uniq)} classes ({', '.join(class_names)})")
        ys["y"] = y_lab.astype(np.int64)
        if has_test:
            yt = ys["y_test"].reshape(-1)
            pos = np.searchsorted(uniq, yt)
            pos = np.minimum(pos, len(uniq) - 1)
            unknown = uniq[pos] != yt
            if unknown.any():
                raise DataError(f"{path}: y_test has label {yt[np.argmax(unknown)].item()!r} that "
                                f"never appears in y")
            ys["y_test"] = pos.astype(np.int64)
    elif task == "regression":
        for key, y in ys.items():
            if y.dtype.kind == "U":
                raise DataError(f"{path}: {key} holds strings; task 'regression' needs numbers")
            ys[key] = y.astype(np.float32)
    y = ys.get("y")
    g_split, = rngs(seed, 1)
    cls = task == "classification"
    tr, va, te = split_indices(y if cls else None, len(x), p["validation_split"],
                               0.0 if has_test else p["test_split"], g_split, stratify=cls)
    splits = {"train": take(x, y, tr), "val": take(x, y, va)}
    splits["test"] = (x_test, ys.get("y_test")) if has_test else take(x, y, te)
    return finish(path.name, task, splits, standardize=p["standardize"],
                  n_classes=len(class_names), class_names=class_names, image_shape=image,
                  feature_names=feat_names or [f"x{j}" for j in range(x.shape[1])])


def _names(z, key: str, count, path: Path):
    if key not in z.files:
        return None
    a = _array(z, key, path)
    if a.ndim != 1 or a.dtype.kind not in "US" or (count is not None and len(a) != count):
        raise DataError(f"{path}: {key} must be a 1-D array of strings"
                        + (f" with {count} entries" if count is not None else "") +
                        f", got dtype {a.dtype} shape {a.shape}")
    return [str(v) for v in a]


register(DatasetSpec(
    name="npz", kind="file",
    params={
        "path": Param(None, "The .npz file (np.savez) with arrays x (n, d) and y (n,) or (n, k); "
                            "optional x_test/y_test, feature_names, class_names.", "str"),
        "task": Param("auto", "auto: classification for integer or string y of shape (n,), "
                              "regression for float y; reconstruction ignores y (autoencoders).",
                      "choice", choices=("auto", "classification", "regression", "reconstruction")),
        **common_params(),
    },
    doc="NumPy arrays saved with np.savez; loaded without pickle, always.",
    loader=_load_npz, sources=_npz_source))
