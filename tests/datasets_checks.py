"""Checks shared by the engine.data tests (tests/test_datasets_*.py):
the contract every Dataset keeps, and its splits put back together."""
from __future__ import annotations

import numpy as np

from engine.data import Dataset

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
