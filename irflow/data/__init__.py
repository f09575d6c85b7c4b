"""``irf.data``: input pipelines in TensorFlow's spelling (``Dataset`` chains) and PyTorch's
(a map-style dataset and a ``DataLoader``). See docs/data.md.

>>> ds = irf.data.Dataset.from_tensor_slices((np.zeros((10, 3), "float32"), np.arange(10)))
>>> [x.shape for x, y in ds.shuffle(10, seed=0).batch(4)]
[(4, 3), (4, 3), (2, 3)]
"""
from irflow.data.dataset import (AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset,
                                 DatasetLengthError)
from irflow.data.loader import DataLoader, MapStyleDataset, TensorDataset, default_collate
from irflow.data import batching, prefetch, sources, transforms  # noqa: F401  (the transformation classes)

__all__ = ["AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "Dataset", "DatasetLengthError",
           "DataLoader", "MapStyleDataset", "TensorDataset", "default_collate"]
