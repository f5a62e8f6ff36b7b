"""``python main.py predict WEIGHTS_FILE DATA_FILE``: an exported model on its own.

DATA_FILE holds inputs in the original units of the training data: raw
0-255 pixels for Fashion-MNIST (as in its IDX files; float or uint8), the
columns' own units for a table.  Every transformation training applied to
them, stored in the weights' metadata, is applied before the network sees
them: the loader's scaling (``data.input_scale``, 1/255 for pixels), then the
standardization (``data.mean``/``data.std``).  Rows far from anything the
network was trained on (on average more than :data:`FAR_STDS` training
standard deviations from the training mean) are predicted, with a warning: a
confident answer there means little.

* CSV: a numeric table, with or without a header.  With a header naming the
  training features, those columns are picked (others, such as the target,
  are ignored); otherwise there must be exactly one column per input.
* NPZ: array ``x`` (n, d) or images (n, h, w); no pickle.

Output is CSV: for classification ``row,class,label,p_<label>...`` (with
``--mc-dropout K``: the mean of K passes with dropout on, plus ``std_<label>``
columns); for regression ``row,y_0...`` (plus ``std_...``).
"""
from __future__ import annotations

import csv
import io
import math
import zipfile
from pathlib import Path

import numpy as np

from engine.errors import DataError, WeightsError
from engine.formats.models import load_network
from engine.formats.runfolder import run_weights_file
from engine.limits import check_npz
from engine.training.memory import prediction_memory

MAX_CSV_BYTES = 2 * 1024**3
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_MC_SAMPLES = 10_000   # Monte Carlo dropout passes (the book averages 100)
FAR_STDS = 10.0           # a row whose standardized inputs have an RMS above this is far from the training data


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _read_csv(path: Path, n_inputs: int, feature_names: list) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} as text: {exc}") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t ")
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path} has no rows")
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise DataError(f"{path} has a header but no data rows")
    columns = list(range(len(rows[0])))
    if header and feature_names and all(f in header for f in feature_names):
        columns = [header.index(f) for f in feature_names]
    elif len(columns) != n_inputs:
        named = f" ({', '.join(feature_names[:8])}{' ...' if len(feature_names) > 8 else ''})" if feature_names else ""
        raise DataError(f"{path} has {len(columns)} columns, but the network takes {n_inputs} inputs{named}; "
                        f"give one column per input, or a header naming them")
    x = np.empty((len(rows), len(columns)), dtype=np.float64)
    for i, row in enumerate(rows):
        if len(row) <= max(columns):
            raise DataError(f"{path}, data row {i + 1}: {len(row)} cells, expected {len(rows[0])}")
        for k, j in enumerate(columns):
            try:
                x[i, k] = float(row[j])
            except ValueError:
                raise DataError(f"{path}, data row {i + 1}, column {j + 1}: {row[j]!r} is not a number") from None
    return x


def _read_npz(path: Path) -> np.ndarray:
    check_npz(path, str(path), DataError)   # shapes claimed in the headers, before NumPy allocates them
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            key = "x" if "x" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise DataError(f"{path} has arrays {', '.join(keys) or 'none'}; put the inputs under 'x'")
            x = z[key]
    except DataError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path} is not a readable NPZ file of numbers ({exc})") from None
    if x.ndim < 2 or x.dtype.kind not in "fiu":
        raise DataError(f"{path}: array {key!r} must be a numeric array (n, d) or (n, h, w), got {x.shape} {x.dtype}")
    if len(x) == 0:
        raise DataError(f"{path}: array {key!r} has shape {x.shape}: no rows to predict")
    return x.reshape(len(x), math.prod(x.shape[1:]))


def _column_name(j: int, metadata: dict) -> str:
    names = (metadata.get("data") or {}).get("feature_names") or []
    return f"column {j + 1}" + (f" ({names[j]!r})" if j < len(names) else "")


def _check_float32(x: np.ndarray, path, metadata: dict, what: str) -> None:
    """Inputs the network (float32 at least) can hold: finite and within float32's range."""
    bad = ~np.isfinite(x) | (np.abs(np.nan_to_num(x)) > FLOAT32_MAX)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        value = x[i, j]
        problem = ("NaN or infinite" if not np.isfinite(value)
                   else f"{value:g}, beyond float32's range (±{FLOAT32_MAX:.3g})")
        raise DataError(f"{path}, row {i + 1}, {_column_name(j, metadata)}: {what} {problem}; "
                        f"fix or rescale that column")


def read_inputs(path, n_inputs: int, metadata: dict) -> np.ndarray:
    """Inputs (n, n_inputs) float64 in the original feature space."""
    path = Path(path)
    data = metadata.get("data") or {}
    if path.is_dir():
        raise DataError(f"data file {path} is a folder; give a CSV or NPZ file of inputs")
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if path.suffix.lower() == ".npz":
        x = _read_npz(path)
        if x.dtype == np.uint8 and data.get("image_shape") and data.get("input_scale") is None:
            x = x / 255.0  # a file written before input_scale: raw pixels -> the [0, 1] scale of training
    else:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise DataError(f"{path} is too large for a CSV of inputs; use an NPZ file")
        x = _read_csv(path, n_inputs, list(data.get("feature_names") or []))
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] != n_inputs:
        raise DataError(f"{path} has {x.shape[1]} features per row, the network takes {n_inputs}")
    _check_float32(x, path, metadata, "input")
    return x


def standardize(x: np.ndarray, metadata: dict, source) -> np.ndarray:
    """Apply the run's input transformations (as the data loaders do: float32): the loader's
    scaling of the original units (``data.input_scale``), then the standardization."""
    data = metadata.get("data") or {}
    x = x * float(data.get("input_scale") or 1.0)
    if data.get("mean") is None:
        experiment = metadata.get("experiment") or {}
        if (experiment.get("data") or {}).get("standardize", True):
            raise WeightsError(f"{source} does not record the training set's standardization (mean/std), so "
                               f"inputs in original units cannot be mapped; re-export the run with this version, "
                               f"or pass --raw with inputs already standardized")
        return x
    mean, std = np.asarray(data["mean"], np.float32), np.asarray(data["std"], np.float32)
    with np.errstate(over="ignore", invalid="ignore"):   # overflow is reported by the caller, per column
        return (x.astype(np.float32) - mean) / std


def input_warnings(x_original: np.ndarray, z: np.ndarray, metadata: dict) -> list[str]:
    """Warnings about inputs unlike the training data: rows whose standardized inputs (``z``) have
    an RMS above :data:`FAR_STDS`, and inputs that look already scaled when the network takes raw
    units (every value within [0, 1] where training scaled by 1/255)."""
    out = []
    data = metadata.get("data") or {}
    if data.get("mean") is not None:
        rms = np.sqrt(np.mean(np.square(z, dtype=np.float64), axis=1))
        far = np.flatnonzero(rms > FAR_STDS)
        if far.size:
            rows = ", ".join(str(int(i) + 1) for i in far[:5]) + (" ..." if far.size > 5 else "")
            out.append(f"{far.size} of {len(z)} rows (rows {rows}) lie far outside the training data: their "
                       f"inputs are on average {float(rms[far].max()):.3g} training standard deviations from the "
                       f"training mean (more than {FAR_STDS:g}); check their units, the predictions there mean "
                       f"little")
    scale = float(data.get("input_scale") or 1.0)
    if scale < 1.0 and x_original.size and 0.0 <= float(x_original.min()) and float(x_original.max()) <= 1.0:
        out.append(f"every input is within [0, 1], but this network takes inputs in original units, which "
                   f"training multiplied by {scale:.4g} (raw 0-{1 / scale:.0f} pixels); if they are already "
                   f"scaled, multiply them by {1 / scale:.0f} first")
    return out


def predict_table(net, x: np.ndarray, metadata: dict, mc_samples: int = 0, seed: int = 0) -> tuple[list, list]:
    """(header, rows) of the prediction CSV."""
    if mc_samples > 0:
        samples = net.mc_predict(x, mc_samples, seed=seed)
        mean, spread = samples.mean(axis=0), samples.std(axis=0)
    else:
        mean, spread = net.predict(x), None
    data = metadata.get("data") or {}
    if net.loss in ("cross_entropy", "binary_cross_entropy"):
        if net.output_activation == "logistic":
            mean = np.hstack([1.0 - mean, mean])
            spread = None if spread is None else np.hstack([spread, spread])
        names = list(data.get("class_names") or []) or [str(c) for c in range(mean.shape[1])]
        if len(names) != mean.shape[1]:
            names = [str(c) for c in range(mean.shape[1])]
        header = ["row", "class", "label"] + [f"p_{n}" for n in names]
        header += [f"std_{n}" for n in names] if spread is not None else []
        pred = mean.argmax(axis=1)
        rows = [[i, int(pred[i]), names[pred[i]]] + [repr(float(v)) for v in mean[i]]
                + ([repr(float(v)) for v in spread[i]] if spread is not None else []) for i in range(len(mean))]
    else:
        k = mean.shape[1]
        header = ["row"] + [f"y_{j}" for j in range(k)] + ([f"std_{j}" for j in range(k)] if spread is not None else [])
        rows = [[i] + [repr(float(v)) for v in mean[i]]
                + ([repr(float(v)) for v in spread[i]] if spread is not None else []) for i in range(len(mean))]
    return header, rows


def predict_file(weights_path, data_path, mc_samples: int = 0, raw: bool = False, seed: int = 0,
                 warn=None) -> str:
    """The prediction CSV (text) for a data file, from a weights file alone (or the one in a run folder).
    ``warn`` (a callable taking one message) hears about inputs unlike the training data."""
    if Path(weights_path).is_dir():
        weights_path = run_weights_file(weights_path)
    if isinstance(mc_samples, bool) or not 0 <= mc_samples <= MAX_MC_SAMPLES:
        raise DataError(f"--mc-dropout must be from 1 to {MAX_MC_SAMPLES:,} passes, got {mc_samples!r}")
    net, metadata = load_network(weights_path)
    x = read_inputs(data_path, net.n_inputs, metadata)
    prediction_memory(net, len(x), mc_samples).check(f"predicting {len(x):,} rows of {data_path}"
                                                     + (f" with {mc_samples:,} dropout passes" if mc_samples else ""))
    if not raw:
        original = x
        x = standardize(x, metadata, weights_path)
        _check_float32(x, data_path, metadata, "standardized, the input is")
        for message in input_warnings(original, x, metadata) if warn is not None else ():
            warn(f"{data_path}: {message}")
    header, rows = predict_table(net, x, metadata, mc_samples, seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
