"""ONNX shape, indexing and creation ops -> IR (registered in ``onnx_import_base``'s table).

Shape arguments that ONNX passes as tensors (Reshape's shape, Squeeze's axes, ...) are taken
as attributes when known at import time: constants, initializers, or shape computations the
importer folded (see ``onnx_import_shapes``). Symbolic dims in them are resolved against the
input's type where that is unambiguous. Slice, Pad, Split, Tile, TopK and OneHot, whose
arguments may also be computed at run time, are in ``onnx_import_shape_args``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow.errors import UnsupportedOpError
from irflow.frontends.onnx_import_base import importer, ints as _ints, np_dtype, rank_of, shape_importer, to_dtype
from irflow.ops.dispatch import bind


def _axes(n, attr_input: int) -> tuple[int, ...] | None:
    """Axes given as an attribute (old opsets) or as input ``attr_input`` (opset 13+)."""
    axes = n.attr("axes")
    if axes is None and n.has_input(attr_input):
        known = n.ctx.known_value(n.input_names[attr_input])
        if known is not None and np.ndim(known) == 0 and np.asarray(known).dtype.kind in "iu":
            return (int(known),)  # a scalar axis (AffineGrid's function body): one axis, unambiguous
        axes = n.const_ints(attr_input, "axes")
    return None if axes is None else tuple(int(a) for a in axes)


# -- Shape and Size: answered from types when static (SHAPE_IMPORTERS run before IMPORTERS) --------

@shape_importer("Shape")
def _shape_static(ctx, node, opset) -> bool:
    x = ctx.tensor(node.input[0]) if node.input[0] not in ctx.consts else None
    shape = ctx.consts[node.input[0]].shape if x is None else x.type.shape
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", None)
    dims = tuple(shape)[slice(start, end)]
    if all(isinstance(d, int) for d in dims):
        ctx.consts[node.output[0]] = np.asarray(dims, dtype=np.int64).reshape(len(dims))
        return True
    if all(d is not None for d in dims):
        ctx.shapes[node.output[0]] = dims  # symbolic dims: the runtime op is emitted too
    return False


@shape_importer("Size")
def _size_static(ctx, node, opset) -> bool:
    x = ctx.tensor(node.input[0]) if node.input[0] not in ctx.consts else None
    shape = ctx.consts[node.input[0]].shape if x is None else x.type.shape
    if all(isinstance(d, int) for d in shape):
        ctx.consts[node.output[0]] = np.asarray(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
        return True
    return False


@shape_importer("CastLike")
def _cast_like_static(ctx, node, opset) -> bool:
    """CastLike of a constant to the dtype of a run-time tensor is still a constant."""
    src, like = node.input[0], node.input[1]
    if src not in ctx.consts:
        return False
    target = ctx.consts[like].dtype if like in ctx.consts else ctx.tensor(like).type.dtype.numpy
    if target.itemsize == 1 and target.kind in "fV":  # float8 & co: saturation rules, left to the cast op
        return False
    ctx.consts[node.output[0]] = ctx.consts[src].astype(target)
    return True


@importer("Shape")
def _shape(n):
    s = bind("shape_of", n.input(0))
    start, end = n.attr("start", 0), n.attr("end")
    if start != 0 or end is not None:
        s = bind("slice", s, starts=(start,), ends=(end if end is not None else 2**63 - 1,), axes=(0,), steps=None)
    return s


@importer("Size")
def _size(n):
    return bind("reduce_prod", bind("shape_of", n.input(0)), axes=None, keepdims=False)


# -- constants ---------------------------------------------------------------------------------------

@importer("Constant")
def _constant(n):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in n.attrs:
            v = n.attrs[key]
            if key.startswith("value_float"):
                return np.asarray(v, dtype=np.float32)
            if key.startswith("value_int"):
                return np.asarray(v, dtype=np.int64)
            return np.asarray(v)
    raise n.unsupported(f"Constant with attribute(s) {', '.join(n.attrs)} (strings and sparse tensors are not supported)")


@importer("ConstantOfShape")
def _constant_of_shape(n):
    value = n.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    if value.size != 1:
        raise n.error(f"value must hold one element, it has {value.size}")
    shape = n.shape_value(0)
    if shape is not None and any(isinstance(d, int) and d < 0 for d in shape):
        raise n.error(f"negative dim in the shape {shape}")
    if shape is not None and all(isinstance(d, int) for d in shape) and n.fits(shape, value.dtype):
        return np.full(shape, value.reshape(-1)[0], dtype=value.dtype)
    # Symbolic, unknown or large: filled when the model runs (a large fill stays an op, not a
    # constant the IR and every file written from it would carry).
    dims = shape if shape is not None else (None,) * _static_len(n, 0)
    return bind("full_dynamic", n.input(0), value=value.reshape(1), dims=tuple(d if isinstance(d, (int, str)) else None for d in dims))


@importer("EyeLike")
def _eye_like(n):
    x = n.input(0)
    shape = x.shape
    if len(shape) != 2:
        raise n.error(f"the input must be 2-D, it has rank {len(shape)}")
    if not all(isinstance(d, int) for d in shape):
        raise n.unsupported("EyeLike needs a static shape")
    dtype = to_dtype(n.attr("dtype"), n.where()).numpy if n.attr("dtype") is not None else np_dtype(x)
    k = int(n.attr("k", 0))
    if n.fits(shape, dtype):
        return np.eye(shape[0], shape[1], k=k, dtype=dtype)
    # Large: row index + k == column index, computed when the model runs.
    rows = bind("range", np.asarray(0, np.int64), np.asarray(shape[0], np.int64), np.asarray(1, np.int64))
    cols = bind("range", np.asarray(0, np.int64), np.asarray(shape[1], np.int64), np.asarray(1, np.int64))
    rows = bind("reshape", bind("add", rows, np.asarray(k, np.int64)), shape=(shape[0], 1))
    hit = bind("equal", rows, bind("reshape", cols, shape=(1, shape[1])))
    return bind("cast", hit, dtype=to_dtype(n.attr("dtype"), n.where()) if n.attr("dtype") is not None else x.dtype)


@importer("Range")
def _range(n):
    from irflow.ops.shape_create import RANGE_INPUT_DTYPES, range_length

    known = [n.ctx.known_value(name) for name in n.input_names[:3]]
    if all(k is not None for k in known):
        start, limit, delta = (np.asarray(k) for k in known)
        for what, v in (("start", start), ("limit", limit), ("delta", delta)):
            if v.size != 1:
                raise n.error(f"{what} must be a scalar, it has shape {v.shape}")
        start, limit, delta = (v.reshape(()) for v in (start, limit, delta))
        if not all(np.isfinite(v) for v in (start, limit, delta)) or delta == 0:
            raise n.error(f"start, limit and delta must be finite with delta != 0, got ({start}, {limit}, {delta})")
        count = range_length(start.item(), limit.item(), delta.item())
        if n.fits((count,), start.dtype):
            return (start + np.arange(count, dtype=start.dtype) * delta).astype(start.dtype)
    if n.input(0).dtype not in RANGE_INPUT_DTYPES:
        n.const(0, "start"), n.const(1, "limit"), n.const(2, "delta")  # raises: known only at run time
    bounds = []
    for i, what in enumerate(("start", "limit", "delta")):
        b = n.input(i)
        if b.shape == (1,):  # ONNX wants scalars; one-element vectors (AffineGrid's body) are read as such
            b = bind("reshape", b, shape=())
        elif len(b.shape):
            raise n.error(f"{what} must be a scalar, it has shape {b.shape}")
        bounds.append(b)
    return bind("range", *bounds)  # bounds read at run time (or too many values)


# -- reshaping ---------------------------------------------------------------------------------------

def resolve_shape(n, in_shape: tuple, target: tuple, allowzero: bool = False) -> tuple[int, ...]:
    """ONNX Reshape's target (0 copies a dim, -1 infers one, symbols from shape values) -> ints
    with at most one -1, so that the IR reshape can take it as an attribute."""
    out: list[Any] = []
    for i, d in enumerate(target):
        if isinstance(d, (int, np.integer)) and d == 0 and not allowzero:
            if i >= len(in_shape):
                raise n.error(f"shape {tuple(target)} copies dim {i} (a 0) of an input of rank {len(in_shape)}")
            out.append(in_shape[i])
        else:
            out.append(d if not isinstance(d, np.integer) else int(d))
    unknown = [i for i, d in enumerate(out) if not isinstance(d, int) or d == -1]
    symbols_out = [d for d in out if isinstance(d, str)]
    symbols_in = [d for d in in_shape if isinstance(d, str)]
    if out.count(-1) == 1 and symbols_out and sorted(symbols_out) == sorted(symbols_in) and None not in in_shape:
        # ('batch', -1) from ('batch', 3, 4): the symbols cancel, so the -1 is static (12).
        have = int(np.prod([d for d in in_shape if isinstance(d, int)], dtype=np.int64))
        want = int(np.prod([d for d in out if isinstance(d, int) and d != -1], dtype=np.int64))
        if want and have % want == 0:
            out = [have // want if d == -1 else d for d in out]
            unknown = [i for i, d in enumerate(out) if not isinstance(d, int)]
    if len(unknown) <= 1:
        return tuple(-1 if i in unknown else d for i, d in enumerate(out))
    # Several symbolic dims: fine if they match the input dims at the same positions in order
    # (the common "keep batch and seq, split the last axis" case) and the rest is static.
    if all(isinstance(d, str) for i, d in enumerate(out) if i in unknown) and len(set(out[i] for i in unknown)) == len(unknown):
        raise n.unsupported(f"reshape to {tuple(out)} with several symbolic dims; export the model with static shapes")
    raise n.unsupported(f"reshape to {tuple(out)}: more than one dim is unknown at import time")


@importer("Reshape")
def _reshape(n):
    x = n.input(0)
    target = n.shape_value(1)
    if target is None:
        if not n.has_input(1) or n.ctx.known_value(n.input_names[1]) is None and n.input(1) is None:
            n.shape_arg(1, "shape")  # raises: unknown
        if len(n.input(1).shape) != 1 or not isinstance(n.input(1).shape[0], int):
            n.shape_arg(1, "shape")
        dims = (None,) * n.input(1).shape[0]
        return bind("reshape_dynamic", x, n.input(1), dims=dims, allowzero=bool(n.attr("allowzero", 0)))
    try:
        return bind("reshape", x, shape=resolve_shape(n, x.shape, target, bool(n.attr("allowzero", 0))))
    except UnsupportedOpError:
        if n.attr("allowzero", 0):
            raise
        # Several dims known only at run time: reshape by the run-time shape tensor, keeping
        # what is known of each dim for the type (0 copies the input's dim, as ONNX).
        dims = tuple(x.shape[i] if d == 0 else (d if isinstance(d, int) and d > 0 else (d if isinstance(d, str) else None))
                     for i, d in enumerate(target))
        return bind("reshape_dynamic", x, n.input(1), dims=dims)


@importer("Flatten")
def _flatten(n):
    x = n.input(0)
    axis = n.attr("axis", 1)
    if not -rank_of(x) <= axis <= rank_of(x):
        raise n.error(f"axis={axis} is out of range for an input of rank {rank_of(x)}")
    axis = axis + rank_of(x) if axis < 0 else axis
    left, right = x.shape[:axis], x.shape[axis:]

    def prod(dims):
        return int(np.prod(dims, dtype=np.int64)) if all(isinstance(d, int) for d in dims) else None

    a, b = prod(left), prod(right)
    if a is None and b is None:
        raise n.unsupported(f"Flatten of {x.shape} at axis {axis}: symbolic dims on both sides")
    return bind("reshape", x, shape=(a if a is not None else -1, b if b is not None else -1))


@importer("Transpose")
def _transpose(n):
    perm = n.attr("perm")
    return bind("transpose", n.input(0), perm=None if perm is None else tuple(perm))


@importer("Squeeze")
def _squeeze(n):
    axes = _axes(n, 1)
    x = n.input(0)
    if axes is None and any(not isinstance(d, int) for d in x.shape):
        # No axes: ONNX drops every dim of size 1, so a dim known only at run time decides the
        # result's rank, and IR ranks are fixed. Such dims are assumed not 1 and kept: the
        # target shape is the run-time shape without its 1s, so a run-time 1 among them makes
        # reshape_dynamic's rank check fail with a clear error instead of a wrong rank.
        shape = bind("shape_of", x)
        target = bind("compress", shape, bind("not_equal", shape, bind("constant", value=np.ones((), np.int64))), axis=0)
        return bind("reshape_dynamic", x, target, dims=tuple(d for d in x.shape if d != 1))
    return bind("squeeze", x, axes=axes)


@importer("Unsqueeze")
def _unsqueeze(n):
    x = n.input(0)
    axes = _axes(n, 1)
    if axes is None:
        raise n.error("no axes given")
    rank = rank_of(x) + len(axes)
    axes = tuple(sorted(n.axis(a, rank, "axes") for a in axes))
    if len(set(axes)) != len(axes):
        raise n.error(f"axes {axes} repeat an axis")
    return bind("expand_dims", x, axes=axes)


@importer("Concat")
def _concat(n):
    xs = [x for x in n.inputs if x is not None]
    return bind("concat", *xs, axis=int(n.attr("axis")))


@importer("Expand")
def _expand(n):
    x = n.input(0)
    shape = n.shape_value(1)
    if shape is None:  # computed at run time: broadcast by the run-time shape tensor
        return bind("expand_dynamic", x, n.input(1), dims=_broadcast_dims(x.shape, (None,) * _static_len(n, 1)))
    out = _broadcast_dims(x.shape, shape)
    if all(isinstance(d, int) for d in out):
        return bind("broadcast_to", x, shape=tuple(out))
    if tuple(out) == tuple(x.shape):
        return bind("identity", x)
    return bind("expand_dynamic", x, n.input(1), dims=out)


def _static_len(n, i: int) -> int:
    t = n.input(i)
    if t is None or len(t.shape) != 1 or not isinstance(t.shape[0], int):
        n.shape_arg(i, "shape")  # raises: not even the rank is known
    return t.shape[0]


def _broadcast_dims(xs: tuple, shape: tuple) -> tuple:
    """ONNX Expand's bidirectional broadcast of x's dims with a target's (symbols, None kept)."""
    rank = max(len(shape), len(xs))
    xs = (1,) * (rank - len(xs)) + tuple(xs)
    ts = (1,) * (rank - len(shape)) + tuple(shape)
    out = []
    for a, b in zip(xs, ts):
        if b == 1:
            out.append(a)
        elif a == 1 or a == b:
            out.append(b)
        elif isinstance(b, int) and b > 1:
            out.append(b)
        elif isinstance(a, int) and a > 1:
            out.append(a)
        else:
            out.append(a if isinstance(a, str) and b is None else (b if isinstance(b, str) and a is None else None))
    return tuple(out)


@importer("Gather")
def _gather(n):
    return bind("gather", n.input(0), n.input(1), axis=int(n.attr("axis", 0)))


@importer("GatherND")
def _gather_nd(n):
    data, indices = n.input(0), n.input(1)
    b = int(n.attr("batch_dims", 0))
    if not b:
        return bind("gather_nd", data, indices)
    # batch_dims b: each index tuple also addresses the batch entry it sits in, so prepend the
    # batch coordinates (a constant grid over indices' leading axes) and gather_nd as usual
    lead = tuple(indices.shape[:-1])
    if not 0 < b < min(rank_of(data), rank_of(indices)) or not all(type(d) is int for d in lead):
        raise n.unsupported(f"GatherND with batch_dims={b} needs 0 < batch_dims < both ranks and static leading "
                            f"index dims, got data {data.shape}, indices {indices.shape}")
    n.check_fits(lead + (b,), np.int64, "the batch coordinates of GatherND")
    grid = np.indices(lead[:b], dtype=np.int64)  # (b, *batch)
    grid = np.moveaxis(grid, 0, -1).reshape(lead[:b] + (1,) * (len(lead) - b) + (b,))
    grid = np.ascontiguousarray(np.broadcast_to(grid, lead + (b,)))
    idx = indices if np_dtype(indices) == np.int64 else bind("cast", indices, dtype="int64")
    return bind("gather_nd", data, bind("concat", bind("constant", value=grid), idx, axis=-1))


@importer("Trilu")
def _trilu(n):
    x = n.input(0)
    if rank_of(x) < 2:
        raise n.error(f"the input must have rank >= 2, it has rank {rank_of(x)}")
    rows, cols = x.shape[-2], x.shape[-1]
    if not (isinstance(rows, int) and isinstance(cols, int)):
        raise n.unsupported("Trilu needs static sizes of the last two axes")
    if not n.fits((rows, cols), np.int64):  # j - i as run-time ops: a large mask is not a constant
        r_idx = bind("range", np.asarray(0, np.int64), np.asarray(rows, np.int64), np.asarray(1, np.int64))
        c_idx = bind("range", np.asarray(0, np.int64), np.asarray(cols, np.int64), np.asarray(1, np.int64))
        diagonal = bind("sub", bind("reshape", c_idx, shape=(1, cols)), bind("reshape", r_idx, shape=(rows, 1)))
    else:
        diagonal = np.arange(cols)[None, :] - np.arange(rows)[:, None]  # j - i: which diagonal each entry is on
    upper = bool(n.attr("upper", 1))
    k = n.ctx.known_value(n.input_names[1]) if n.has_input(1) else np.asarray(0)
    if k is not None:
        if np.asarray(k).size != 1:
            raise n.error(f"k must be a scalar, it has shape {np.asarray(k).shape}")
        k = int(np.asarray(k).reshape(()))
        mask = (diagonal >= k) if upper else (diagonal <= k)
    else:  # k read at run time: compare the (constant) diagonal numbers with it
        k = bind("cast", n.input(1), dtype="int64")
        mask = bind("greater_equal" if upper else "less_equal", bind("cast", diagonal, dtype="int64"), k)
    return bind("where", mask, x, bind("zeros_like", x))


@importer("Dropout")
def _dropout(n):
    if n.has_input(2):
        if n.const_scalar(2, "training_mode"):
            raise n.unsupported("Dropout in training mode (random) is not imported")
    x = n.input(0)
    y = bind("identity", x)
    if len(n.output_names) > 1 and n.output_names[1]:
        return y, bind("logical_not", bind("zeros_like", bind("cast", x, dtype="bool")))
    return y


@importer("DepthToSpace", "SpaceToDepth")
def _depth_space(n):
    x = n.input(0)
    b = int(n.attr("blocksize"))
    if rank_of(x) != 4:
        raise n.error(f"the input must be 4-D (N, C, H, W), it has rank {rank_of(x)}")
    if b < 1:
        raise n.error(f"blocksize must be positive, got {b}")
    N, C, H, W = x.shape
    if not all(isinstance(d, int) for d in (C, H, W)):
        raise n.unsupported(f"{n.op_type} needs static C, H, W")
    N = -1 if not isinstance(N, int) else N
    if n.op_type == "DepthToSpace" and C % (b * b) or n.op_type == "SpaceToDepth" and (H % b or W % b):
        raise n.error(f"blocksize {b} does not divide the input's {'channels' if n.op_type == 'DepthToSpace' else 'H and W'} "
                      f"(shape {tuple(x.shape)})")
    if n.op_type == "DepthToSpace":
        if n.attr("mode", "DCR") == "DCR":
            t = bind("reshape", x, shape=(N, b, b, C // (b * b), H, W))
            t = bind("transpose", t, perm=(0, 3, 4, 1, 5, 2))
        else:
            t = bind("reshape", x, shape=(N, C // (b * b), b, b, H, W))
            t = bind("transpose", t, perm=(0, 1, 4, 2, 5, 3))
        return bind("reshape", t, shape=(N, C // (b * b), H * b, W * b))
    t = bind("reshape", x, shape=(N, C, H // b, b, W // b, b))
    crd = n.attr("mode", "DCR") == "CRD"
    t = bind("transpose", t, perm=(0, 1, 3, 5, 2, 4) if crd else (0, 3, 5, 1, 2, 4))
    return bind("reshape", t, shape=(N, C * b * b, H // b, W // b))


@importer("Hardmax")
def _hardmax(n):
    x = n.input(0)
    axis = n.axis(n.attr("axis", -1), rank_of(x))
    depth = x.shape[axis]
    if not isinstance(depth, int):
        raise n.unsupported("Hardmax needs a static size on its axis")
    idx = bind("argmax", x, axis=axis, keepdims=False)
    return bind("one_hot", idx, depth=depth, axis=axis, dtype=x.dtype)


@importer("GatherElements")
def _gather_elements(n):
    return bind("gather_elements", n.input(0), n.input(1), axis=int(n.attr("axis", 0)))


@importer("ScatterElements", "Scatter")
def _scatter_elements(n):
    reduction = n.attr("reduction", "none")
    return bind("scatter_elements", n.input(0), n.input(1), n.input(2), axis=int(n.attr("axis", 0)), reduction=reduction)


@importer("ScatterND")
def _scatter_nd(n):
    reduction = n.attr("reduction", "none")
    if reduction == "add":
        return bind("scatter_add", n.input(0), n.input(1), n.input(2))
    return bind("scatter_nd", n.input(0), n.input(1), n.input(2), reduction=reduction)


@importer("BitShift")
def _bit_shift(n):
    op = "bit_shift_left" if n.attr("direction") == "LEFT" else "bit_shift_right"
    return bind(op, n.input(0), n.input(1))
