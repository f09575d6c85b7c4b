"""NumPy indexing (``x[...]``) for eager Tensors, Variables and symbolic tensors alike.

An index expression becomes ordinary ops, so it works the same eagerly, in a trace and in a
Program, and it differentiates and exports like any op:
- ints and slices -> one ``slice`` node (bounds normalized with ``slice.indices`` when the
  size is known, so the result is Python's), then ``squeeze`` for the int axes;
- ``None`` -> ``expand_dims``; ``...`` -> as many full slices as needed;
- one integer array -> ``gather`` along its axis;
- several integer arrays (ints count as arrays then, as in NumPy) -> ``gather_nd`` after moving
  the indexed axes to the front, then moved back where NumPy puts them;
- a boolean mask -> the integer arrays of ``np.nonzero(mask)`` eagerly; in a trace, a mask
  whose other index items are full slices (``x[mask]``, ``x[:, mask]``, ``x[..., mask]``) is
  ``boolean_mask`` (ONNX Compress), whose length is read at run time; other combinations
  with a traced mask are an error.

>>> t = irf.tensor(np.arange(12.0).reshape(3, 4))     # doctest: +SKIP
>>> t[1:, ::-2].numpy()                               # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow.errors import IrflowError, ShapeError
from irflow.ops.builder import SymbolicTensor
from irflow.ops.operators import TensorOperators


def _ops():
    import irflow.ops as ops  # the op functions (slice, gather, ...), declared after this module loads

    return ops


def _index_item(k: Any) -> tuple:
    """Classify one item of an index tuple."""
    if k is None:
        return ("new",)
    if k is Ellipsis:
        return ("ell",)
    if isinstance(k, bool) or isinstance(k, np.bool_):
        raise IrflowError(f"indexing with a Python bool ({k!r}) is not supported; index with a boolean array")
    if isinstance(k, (int, np.integer)):
        return ("int", int(k))
    if isinstance(k, slice):
        return ("slice", k)
    if isinstance(k, SymbolicTensor):
        if k.dtype.value == "bool":
            raise IrflowError(
                f"boolean mask indexing with symbolic tensor %{k.name} ({k.type}) is not possible while tracing: "
                "the result's size depends on the data, and only full slices may accompany a traced mask; "
                "use irf.boolean_mask(x, mask, axis), irf.where(mask, x, 0), or index eagerly"
            )
        if not k.dtype.is_int:
            raise IrflowError(f"index %{k.name} has dtype {k.dtype.value}; indices must be integers or booleans")
        return ("array", k)
    if hasattr(k, "_eager_value"):
        arr = k._eager_value()
    elif hasattr(k, "_value") and isinstance(k._value, np.ndarray):
        arr = k._value
    else:
        arr = np.asarray(k)
    if arr.dtype == np.bool_:
        return ("mask", arr)
    if arr.dtype.kind not in "iu":
        raise IrflowError(f"index of dtype {arr.dtype} (value {k!r}); indices must be integers, slices, None, ... or booleans")
    return ("array", arr.astype(np.int64, copy=False))


def _is_mask(k: Any) -> bool:
    if isinstance(k, SymbolicTensor):
        return k.dtype.value == "bool"
    if isinstance(k, (bool, np.bool_)) or k is None or k is Ellipsis or isinstance(k, (int, slice)):
        return False
    value = k._eager_value() if hasattr(k, "_eager_value") else getattr(k, "_value", k)
    return isinstance(value, np.ndarray) and value.dtype == np.bool_


def _traced_mask(x: Any, key: Any) -> Any:
    """``x[mask]`` with full slices (or one ``...``) around one mask, when tracing: the
    ``boolean_mask`` of ``x`` at the mask's axis; None when the key is anything else."""
    items = key if isinstance(key, tuple) else (key,)
    masks = [i for i, k in enumerate(items) if _is_mask(k)]
    if len(masks) != 1 or not (isinstance(x, SymbolicTensor) or isinstance(items[masks[0]], SymbolicTensor)):
        return None
    m = masks[0]
    rest = items[:m] + items[m + 1:]
    if not all(k is Ellipsis or (isinstance(k, slice) and k == slice(None)) for k in rest) or sum(k is Ellipsis for k in rest) > 1:
        return None
    mask = items[m]
    mask_rank = len(mask.shape) if hasattr(mask, "shape") else np.asarray(mask).ndim
    rank = len(x.shape)
    # with a `...` before the mask, the full slices after it count from the end
    ell = [k is Ellipsis for k in items]  # identity: `in` would call a tensor's __eq__
    axis = rank - (len(items) - m - 1) - mask_rank if any(ell[:m]) else m
    if axis < 0 or axis + mask_rank > rank or (not any(ell) and len(items) - 1 + mask_rank > rank):
        raise ShapeError(f"boolean index of shape {tuple(mask.shape)} does not fit the axes of a tensor of "
                         f"shape {tuple(x.shape)} (index {key!r})")
    return _ops().boolean_mask(x, mask, axis=axis)


def getitem(x: Any, key: Any) -> Any:
    """``x[key]`` with NumPy's rules, built from slice/squeeze/expand_dims/gather/gather_nd.

    >>> irf.tensor(np.arange(6.0).reshape(2, 3))[:, [2, 0]].numpy()   # doctest: +SKIP
    array([[2., 0.], [5., 3.]], dtype=float32)
    """
    masked = _traced_mask(x, key)
    if masked is not None:
        return masked
    items = [_index_item(k) for k in (key if isinstance(key, tuple) else (key,))]
    shape = tuple(x.shape)
    rank = len(shape)
    symbolic = isinstance(x, SymbolicTensor)

    # Expand `...` into full slices.
    consumed = sum(1 if it[0] in ("int", "slice", "array") else (it[1].ndim if it[0] == "mask" else 0) for it in items)
    ells = [i for i, it in enumerate(items) if it[0] == "ell"]
    if len(ells) > 1:
        raise IrflowError(f"an index can only have a single ellipsis ('...'), got {len(ells)}")
    if consumed > rank:
        raise ShapeError(f"too many indices for a tensor of shape {shape}: {consumed} axes indexed, rank {rank}")
    fill = [("slice", slice(None))] * (rank - consumed)
    if ells:
        # An ellipsis that stands for no axis still separates advanced indices (NumPy's rule).
        items = items[:ells[0]] + (fill or [("sep",)]) + items[ells[0] + 1:]
    else:
        items = items + fill

    # Boolean masks become the integer arrays of their nonzero entries (eager only).
    expanded = []
    axis = 0
    for it in items:
        if it[0] == "mask":
            mask = it[1]
            if symbolic:
                raise IrflowError(
                    f"boolean mask indexing of symbolic tensor %{x.name} ({x.type}) is not possible while tracing: "
                    "the result's size depends on the data, and only full slices may accompany a traced mask; "
                "use irf.boolean_mask(x, mask, axis), irf.where(mask, x, 0), or index eagerly"
                )
            want = shape[axis:axis + mask.ndim]
            if mask.shape != want:
                raise ShapeError(f"boolean index of shape {mask.shape} does not match the indexed dims {want} of a tensor of shape {shape}")
            expanded.extend(("array", a.astype(np.int64)) for a in np.nonzero(mask))
            axis += mask.ndim
        else:
            expanded.append(it)
            axis += it[0] not in ("new", "sep")
    # Where NumPy puts the advanced-index dims: in place if those indices are adjacent.
    adv_at = [i for i, it in enumerate(expanded) if it[0] in ("array", "int")]
    adjacent = adv_at == list(range(adv_at[0], adv_at[0] + len(adv_at))) if adv_at else True
    items = [it for it in expanded if it[0] != "sep"]

    has_array = any(it[0] == "array" for it in items)
    if has_array:  # ints are advanced indices too when arrays are present (NumPy's rule)
        items = [("array", np.asarray(it[1], np.int64)) if it[0] == "int" else it for it in items]

    # 1. Slices and ints in one slice node.
    starts, ends, axes, steps, int_axes = [], [], [], [], []
    axis = 0
    for it in items:
        if it[0] == "new":
            continue
        d = shape[axis]
        if it[0] == "int":
            i = it[1]
            if isinstance(d, int) and not -d <= i < d:
                raise ShapeError(f"index {i} is out of bounds for axis {axis} with size {d} (tensor of shape {shape})")
            starts.append(i)
            ends.append(None if i == -1 else i + 1)
            axes.append(axis)
            steps.append(1)
            int_axes.append(axis)
        elif it[0] == "slice":
            s = it[1]
            if not (s.start is None and s.stop is None and s.step in (None, 1)):
                start, stop, step = _python_bounds(s, d)
                starts.append(start)
                ends.append(stop)
                axes.append(axis)
                steps.append(step)
        axis += 1
    y = x
    if axes:
        y = _ops().slice(y, starts, ends, axes=axes, steps=steps)

    if not has_array:
        # 2. Drop int axes, insert None axes.
        if int_axes:
            y = _ops().squeeze(y, tuple(int_axes))
        new_axes, pos = [], 0
        for it in items:
            if it[0] == "new":
                new_axes.append(pos)
                pos += 1
            elif it[0] == "slice":
                pos += 1
        if new_axes:
            y = _ops().expand_dims(y, tuple(new_axes))
        if y is x and not isinstance(x, (SymbolicTensor,)) and hasattr(x, "_eager_value"):
            return x.read_value()  # a Variable indexed with `...` or `:`: a read, not the variable
        return y

    # 2'. Advanced indexing: every entry now maps to one axis of y (None axes inserted first).
    new_axes = [i for i, it in enumerate(items) if it[0] == "new"]
    if new_axes:
        y = _ops().expand_dims(y, tuple(new_axes))
    yshape = tuple(y.shape)
    adv = [i for i, it in enumerate(items) if it[0] == "array"]
    arrays = [items[i][1] for i in adv]
    for i, a in zip(adv, arrays):
        d = yshape[i]
        if isinstance(a, np.ndarray) and isinstance(d, int) and a.size and (a.max() >= d or a.min() < -d):
            bad = a.max() if a.max() >= d else a.min()
            raise ShapeError(f"index {bad} is out of bounds for axis {i} with size {d} (tensor of shape {shape})")
    if len(adv) == 1:
        return _ops().gather(y, arrays[0], axis=adv[0])
    if any(isinstance(a, SymbolicTensor) for a in arrays):
        raise IrflowError("indexing with several integer arrays needs concrete index arrays (not symbolic tensors)")
    try:
        bcast = np.broadcast_arrays(*arrays)
    except ValueError:
        raise ShapeError(f"index arrays of shapes {', '.join(str(a.shape) for a in arrays)} do not broadcast") from None
    idx = np.stack(bcast, axis=-1)  # (*broadcast shape, number of indexed axes)
    rest = [i for i in range(len(yshape)) if i not in adv]
    perm = tuple(adv + rest)
    if perm != tuple(range(len(yshape))):
        y = _ops().transpose(y, perm)
    out = _ops().gather_nd(y, idx)
    nb = bcast[0].ndim
    if adjacent and adv[0] > 0 and nb:
        first = adv[0]
        n_out = nb + len(rest)
        perm_back = tuple(range(nb, nb + first)) + tuple(range(nb)) + tuple(range(nb + first, n_out))
        out = _ops().transpose(out, perm_back)
    return out


def _python_bounds(s: slice, d: Any) -> tuple:
    """(start, stop, step) for the slice op giving Python's result on an axis of size ``d``.

    ONNX Slice and Python agree except for a backward slice starting before the axis
    (``x[-5::-1]`` on 3 elements is empty in Python, one element in ONNX); with a known size
    the bounds are normalized by ``slice.indices``, so they always agree.
    """
    step = 1 if s.step is None else _as_bound(s.step)
    if step == 0:
        raise ShapeError("slice step cannot be zero")
    if not isinstance(d, int):
        return _as_bound(s.start), _as_bound(s.stop), step
    start, stop, step = slice(_as_bound(s.start), _as_bound(s.stop), step).indices(d)
    if len(range(start, stop, step)) == 0:
        return 0, 0, 1
    if step < 0 and stop < 0:
        stop = None  # down to and including index 0
    return start, stop, step


def _as_bound(v: Any) -> Any:
    if v is None:
        return None
    if hasattr(v, "__index__"):
        return int(v.__index__())
    raise IrflowError(f"slice bounds must be ints or None, got {v!r}")


def setitem(x: Any, key: Any, value: Any) -> None:
    """Tensors are immutable values (as in JAX and TensorFlow): item assignment is an error."""
    raise IrflowError(
        f"{type(x).__name__} does not support item assignment (x[...] = v): tensors are immutable; "
        "build the new value with irf.where or irf.scatter_add, and keep state in a Variable (assign)"
    )


TensorOperators.__getitem__ = getitem  # type: ignore[attr-defined]  (Tensor, Variable, SymbolicTensor)
TensorOperators.__setitem__ = setitem  # type: ignore[attr-defined]
