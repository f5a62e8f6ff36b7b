"""Data sets (see :mod:`engine.datasets`, the public import point).

Importing this package registers every data set in :data:`DATASETS`.
"""
from .core import (DATASETS, Dataset, DatasetSpec, load_dataset, make_grid,  # noqa: F401
                   resolve_data_config)
from . import synthetic, fashion, files, pairs  # noqa: F401,E402  (registration)
