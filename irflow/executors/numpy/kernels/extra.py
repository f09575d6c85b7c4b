"""NumPy kernels of the extra ops (irflow/ops/extra.py)."""
from __future__ import annotations

import numpy as np

from irflow.errors import ExecutorError
from irflow.executors.numpy.kernels import KERNELS, kernel
from irflow.ir.dtypes import as_dtype

KERNELS.update(
    asin=np.arcsin, acos=np.arccos, atan=np.arctan,
    bitwise_and=np.bitwise_and, bitwise_or=np.bitwise_or, bitwise_xor=np.bitwise_xor, bitwise_not=np.invert,
)


@kernel("bit_shift_left")
def bit_shift_left(x, y):
    return np.left_shift(x, y).astype(np.result_type(x, y), copy=False)


@kernel("bit_cast")
def bit_cast(x, dtype):
    to = as_dtype(dtype).numpy
    if to.itemsize != x.dtype.itemsize:  # eager code checks types once per input dtype, not per attr:
        raise ValueError("widths differ")  # this makes it ask the type rule, which says why
    # A view, as reshape's kernel returns: the interpreter keeps viewed arrays out of reuse.
    return x.view(to)


@kernel("bit_shift_right")
def bit_shift_right(x, y):
    return np.right_shift(x, y).astype(np.result_type(x, y), copy=False)


def _full_index(indices: np.ndarray, axis: int, dim: int) -> tuple:
    """Index arrays addressing ``indices`` positions with the axis coordinate replaced."""
    idx = np.where(indices < 0, indices + dim, indices).astype(np.int64)
    grids = list(np.indices(indices.shape, sparse=True))
    grids[axis] = idx
    return tuple(grids)


@kernel("gather_elements")
def gather_elements(x, indices, axis=0):
    axis = axis % x.ndim
    return x[_full_index(indices, axis, x.shape[axis])]


_UFUNC = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


@kernel("scatter_elements")
def scatter_elements(data, indices, updates, axis=0, reduction="none"):
    axis = axis % data.ndim
    out = data.copy()
    where = _full_index(indices, axis, data.shape[axis])
    if reduction == "none":
        out[where] = updates
    else:
        _UFUNC[reduction].at(out, where, updates)
    return out


@kernel("scatter_nd")
def scatter_nd(data, indices, updates, reduction="none"):
    out = data.copy()
    k = indices.shape[-1]
    idx = indices.reshape(-1, k)
    upd = updates.reshape((idx.shape[0],) + data.shape[k:])
    for i in range(idx.shape[0]):  # in order, so later updates win for "none" as ONNX specifies
        t = tuple(idx[i])
        out[t] = upd[i] if reduction == "none" else _UFUNC[reduction](out[t], upd[i])
    return out


@kernel("topk")
def topk(x, k, axis=-1, largest=True, sorted=True):
    axis = axis % x.ndim
    keys = x.astype(np.float64)
    order = np.argsort(-keys if largest else keys, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)


@kernel("reshape_dynamic")
def reshape_dynamic(x, shape, dims=(), allowzero=False):
    target = [int(d) for d in shape]
    if len(target) != len(dims):  # the graph's types promised len(dims) axes
        raise ExecutorError(f"reshape_dynamic: the run-time shape {target} has {len(target)} entries, but the graph "
                            f"declares a result of rank {len(dims)} (dims {tuple(dims)}); ranks are fixed in irflow's IR")
    if not allowzero:
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]  # ONNX: 0 copies the dim
    return np.reshape(x, target)


@kernel("expand_dynamic")
def expand_dynamic(x, shape, dims=()):
    target = np.broadcast_shapes(x.shape, tuple(int(d) for d in shape))  # ONNX Expand broadcasts both ways
    return np.broadcast_to(x, target).copy()


@kernel("full_dynamic")
def full_dynamic(shape, value, dims=()):
    return np.full(tuple(int(d) for d in shape), value.reshape(-1)[0], dtype=value.dtype)
