"""Data sets (see :mod:`engine.data`, the public import point).

Importing this package registers every data set in :data:`DATASETS`.
"""
from engine.data.core import (DATASETS, Dataset, DatasetSpec, data_sources, load_dataset, make_grid,  # noqa: F401
                              preloaded, resolve_data_config)
from engine.data import synthetic, fashion, files, pairs  # noqa: F401,E402  (registration)
