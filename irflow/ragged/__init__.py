"""``irf.ragged``: tensors whose rows differ in length (``tf.ragged``). See docs/data.md.

>>> rt = irf.ragged.constant([[1.0, 2.0, 3.0], [4.0]])
>>> irf.reduce_mean(rt, axis=1).numpy().tolist()
[2.0, 4.0]
"""
from irflow.ragged.tensor import RaggedTensor
from irflow.ragged.ops import (RaggedTensorSpec, constant, from_row_lengths, from_row_splits, gather, map_flat_values,
                               reduce_max, reduce_mean, reduce_min, reduce_sum, to_tensor)

__all__ = ["RaggedTensor", "RaggedTensorSpec", "constant", "from_row_lengths", "from_row_splits", "gather",
           "map_flat_values", "reduce_max", "reduce_mean", "reduce_min", "reduce_sum", "to_tensor"]
