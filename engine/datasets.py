"""Data sets: the public import point.

``load_dataset(config, seed)`` turns the ``data`` section of an experiment
into a :class:`Dataset` (train / validation / test arrays, standardized with
training statistics); ``resolve_data_config`` validates that section;
``DATASETS`` is the catalogue (name -> :class:`DatasetSpec` with ``kind`` "2d",
"1d", "image" or "file", its ``params`` and ``doc``), which the GUI reads to
build its pickers.  ``make_grid`` builds decision-boundary grids for 2-D sets.

The implementation lives in the :mod:`engine.data` package:
``core`` (contract, splits, standardization), ``synthetic`` (circles, moons,
xor, spirals, blobs, regression_1d), ``fashion`` (Fashion-MNIST IDX files) and
``files`` (csv, npz).
"""
from .data import DATASETS, Dataset, DatasetSpec, load_dataset, make_grid, resolve_data_config
from .data.fashion import CLASS_NAMES as FASHION_CLASS_NAMES

__all__ = ["DATASETS", "Dataset", "DatasetSpec", "load_dataset", "make_grid",
           "resolve_data_config", "FASHION_CLASS_NAMES"]
