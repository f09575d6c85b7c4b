"""ONNX lowerings of the shape ops (standard domain, opset 21).

Most ops are one ONNX node whose shape-like attributes become int64 initializers. The
internal ``*_like`` ops read sizes with ``Shape`` at run time. onnxruntime's CPU kernels lack
a few type combinations (Pad on int16, ScatterND-add on float16/bfloat16); those go through a
wider type and back, which is exact for these ops.
"""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from irflow.errors import UnsupportedOpError
from irflow.executors.onnx.context import ONNX_DTYPE
from irflow.executors.onnx.lowering import lowering, simple
from irflow.ir.dtypes import DType
from irflow.ops.shape_index import slice_bounds

INT64_MIN = -(2**63)


def _ints(ctx, values) -> str:
    return ctx.const(np.asarray(values, dtype=np.int64).reshape(-1), "ints")


def _out_type(node, i: int = 0):
    return node.outputs[i].type


def _type_of(ctx, name: str):
    """The IR type of an input value (the graph's type table, computed once per export)."""
    return ctx.types[name]


def _via(ctx, op_type, ins, outs, dtype: DType, wide: DType, **attrs) -> None:
    """Run ``op_type`` with its first input cast from ``dtype`` to ``wide``, and cast back."""
    first = ctx.emit("Cast", [ins[0]], 1, to=ONNX_DTYPE[wide])[0]
    rest = list(ins[1:])
    if op_type == "ScatterND":  # updates share the data's dtype
        rest[1] = ctx.emit("Cast", [rest[1]], 1, to=ONNX_DTYPE[wide])[0]
    if op_type == "Pad" and len(rest) > 1:
        rest[1] = ctx.emit("Cast", [rest[1]], 1, to=ONNX_DTYPE[wide])[0]
    wide_out = ctx.emit(op_type, [first] + rest, 1, **attrs)[0]
    ctx.emit("Cast", [wide_out], outs, to=ONNX_DTYPE[dtype])


simple("identity", "Identity")
simple("shape_of", "Shape")


# -- layout ----------------------------------------------------------------------------------------

@lowering("reshape")
def _reshape(ctx, node, ins, outs):
    shape = node.attrs["shape"]
    # allowzero=1: a 0 in the shape means size 0 (as NumPy), not "copy the input's size"
    ctx.emit("Reshape", [ins[0], _ints(ctx, shape)], outs, allowzero=int(0 in shape))


@lowering("reshape_like")
def _reshape_like(ctx, node, ins, outs):
    shape = ctx.emit("Shape", [ins[1]])[0]
    ctx.emit("Reshape", [ins[0], shape], outs, allowzero=1)


@lowering("expand_dims")
def _expand_dims(ctx, node, ins, outs):
    ctx.emit("Unsqueeze", [ins[0], _ints(ctx, node.attrs["axes"])], outs)


@lowering("squeeze")
def _squeeze(ctx, node, ins, outs):
    axes = node.attrs["axes"]
    if axes is None:  # the type rule allows this for static shapes only: the size-1 axes
        axes = tuple(i for i, d in enumerate(_type_of(ctx, ins[0]).shape) if d == 1)
    if not axes:
        ctx.emit("Identity", [ins[0]], outs)
        return
    ctx.emit("Squeeze", [ins[0], _ints(ctx, axes)], outs)


@lowering("transpose")
def _transpose(ctx, node, ins, outs):
    perm = node.attrs["perm"]
    if perm is None:
        perm = tuple(range(node.outputs[0].type.rank))[::-1]
    if not perm:  # a scalar: onnx.helper cannot type an empty perm attribute
        ctx.emit("Identity", ins, outs)
        return
    ctx.emit("Transpose", ins, outs, perm=list(perm))


@lowering("broadcast_to")
def _broadcast_to(ctx, node, ins, outs):
    ctx.emit("Expand", [ins[0], _ints(ctx, node.attrs["shape"])], outs)


@lowering("broadcast_like")
def _broadcast_like(ctx, node, ins, outs):
    shape = ctx.emit("Shape", [ins[1]])[0]
    ctx.emit("Expand", [ins[0], shape], outs)


@lowering("concat")
def _concat(ctx, node, ins, outs):
    ctx.emit("Concat", ins, outs, axis=node.attrs["axis"])


@lowering("split")
def _split(ctx, node, ins, outs):
    if len(outs) == 1:
        ctx.emit("Identity", ins, outs)
        return
    axis, sizes = node.attrs["axis"], node.attrs["sizes"]
    if sizes is None:
        sizes = [v.type.shape[axis] for v in node.outputs]
    if all(type(s) is int for s in sizes):
        ctx.emit("Split", [ins[0], _ints(ctx, sizes)], outs, axis=axis)
    else:  # equal parts of a symbolic axis
        ctx.emit("Split", [ins[0]], outs, axis=axis, num_outputs=len(outs))


@lowering("split_like")
def _split_like(ctx, node, ins, outs):
    if len(outs) == 1:
        ctx.emit("Identity", [ins[0]], outs)
        return
    a = node.attrs["axis"] % node.outputs[0].type.rank
    sizes = [ctx.emit("Shape", [like], 1, start=a, end=a + 1)[0] for like in ins[1:]]
    sizes = ctx.emit("Concat", sizes, 1, axis=0)[0]
    ctx.emit("Split", [ins[0], sizes], outs, axis=a)


@lowering("stack")
def _stack(ctx, node, ins, outs):
    a = node.attrs["axis"] % node.outputs[0].type.rank
    axes = _ints(ctx, [a])
    parts = [ctx.emit("Unsqueeze", [x, axes])[0] for x in ins]
    ctx.emit("Concat", parts, outs, axis=a)


@lowering("tile")
def _tile(ctx, node, ins, outs):
    ctx.emit("Tile", [ins[0], _ints(ctx, node.attrs["reps"])], outs)


@lowering("flip")
def _flip(ctx, node, ins, outs):
    rank = node.outputs[0].type.rank
    axes = node.attrs["axes"]
    axes = tuple(range(rank)) if axes is None else tuple(a % rank for a in axes)
    if not axes:
        ctx.emit("Identity", ins, outs)
        return
    k = len(axes)  # ONNX has no Flip: a Slice with step -1 from the last element to before the first
    ctx.emit("Slice", [ins[0], _ints(ctx, [-1] * k), _ints(ctx, [INT64_MIN] * k), _ints(ctx, axes),
                       _ints(ctx, [-1] * k)], outs)


@lowering("pad")
def _pad(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    mode = node.attrs["mode"]
    if mode == "wrap" and ctx.opset < 19:
        raise UnsupportedOpError(f"pad (node {node.name}): mode 'wrap' needs opset >= 19 (ONNX Pad gained it there), "
                          f"exporting at opset {ctx.opset}")
    args = [ins[0], _ints(ctx, node.attrs["pads"])]
    if mode == "constant":
        args.append(ctx.scalar(node.attrs["value"], dtype))
    if dtype in (DType.int16, DType.uint16):  # onnxruntime's Pad has neither
        _via(ctx, "Pad", args, outs, dtype, DType.int32, mode=mode)
    else:
        ctx.emit("Pad", args, outs, mode=mode)


# -- indexing ----------------------------------------------------------------------------------------

def _onnx_slice_bounds(d, start: int, end: int, step: int) -> tuple[int, int, int]:
    """Bounds onnxruntime reads as the ONNX spec does.

    onnxruntime takes a huge end with a negative step (such as INT64_MAX) to mean "down to the
    first element", where the spec clamps it to d - 1 (an empty slice). Static sizes get their
    bounds resolved here; on a symbolic axis such a slice is empty whatever the size.
    """
    if type(d) is int:
        first, last, _ = slice_bounds(d, start, end, step)
        return first, (last if last >= 0 else INT64_MIN), step
    if step < 0 and end >= 2**31 - 1:
        return 0, 0, 1
    return start, end, step


@lowering("slice")
def _slice(ctx, node, ins, outs):
    a = node.attrs
    n = len(a["starts"])
    axes = tuple(range(n)) if a["axes"] is None else a["axes"]
    steps = (1,) * n if a["steps"] is None else a["steps"]
    shape = _type_of(ctx, ins[0]).shape
    bounds = [_onnx_slice_bounds(shape[ax], s, e, k) for ax, s, e, k in zip(axes, a["starts"], a["ends"], steps)]
    ctx.emit("Slice", [ins[0]] + [_ints(ctx, [b[i] for b in bounds]) for i in range(2)]
             + [_ints(ctx, axes), _ints(ctx, [b[2] for b in bounds])], outs)


@lowering("gather")
def _gather(ctx, node, ins, outs):
    ctx.emit("Gather", ins, outs, axis=node.attrs["axis"])


def _int64_indices(ctx, name: str) -> str:
    """GatherND and ScatterND take int64 indices only."""
    if _type_of(ctx, name).dtype is DType.int64:
        return name
    return ctx.emit("Cast", [name], 1, to=ONNX_DTYPE[DType.int64])[0]


@lowering("gather_nd")
def _gather_nd(ctx, node, ins, outs):
    ctx.emit("GatherND", [ins[0], _int64_indices(ctx, ins[1])], outs)


@lowering("scatter_add")
def _scatter_add(ctx, node, ins, outs):
    dtype = node.outputs[0].type.dtype
    args = [ins[0], _int64_indices(ctx, ins[1]), ins[2]]
    if dtype in (DType.float16, DType.bfloat16):
        _via(ctx, "ScatterND", args, outs, dtype, DType.float32, reduction="add")
    else:
        ctx.emit("ScatterND", args, outs, reduction="add")


@lowering("one_hot")
def _one_hot(ctx, node, ins, outs):
    # Equal(unsqueezed indices, arange(depth) laid along the new axis), cast to the dtype.
    # (ONNX OneHot exists, but onnxruntime implements few of its type combinations.)
    depth, out = node.attrs["depth"], _out_type(node)
    a = node.attrs["axis"] % out.rank
    idx_dtype = _type_of(ctx, ins[0]).dtype.numpy
    negative = ctx.emit("Less", [ins[0], ctx.const(np.zeros((), idx_dtype))])[0]
    wrapped = ctx.emit("Add", [ins[0], ctx.const(np.asarray(depth, idx_dtype))])[0]
    idx = ctx.emit("Where", [negative, wrapped, ins[0]])[0]
    idx = ctx.emit("Unsqueeze", [idx, _ints(ctx, [a])])[0]
    positions = ctx.const(np.arange(depth, dtype=idx_dtype).reshape((depth,) + (1,) * (out.rank - a - 1)))
    hot = ctx.emit("Equal", [idx, positions])[0]
    ctx.emit("Cast", [hot], outs, to=ONNX_DTYPE[out.dtype])


# -- creation ----------------------------------------------------------------------------------------

_RANGE_DTYPES = (DType.int16, DType.int32, DType.int64, DType.float32, DType.float64)


@lowering("range")
def _range(ctx, node, ins, outs):
    a, dtype = node.attrs, _out_type(node).dtype
    if ins:
        if dtype in _RANGE_DTYPES:
            ctx.emit("Range", ins, outs)
        else:  # float16 / bfloat16 bounds: counted in float64 (as ONNX's reference does), then cast
            wide = [ctx.emit("Cast", [b], 1, to=ONNX_DTYPE[DType.float64])[0] for b in ins]
            ctx.emit("Cast", [ctx.emit("Range", wide, 1)[0]], outs, to=ONNX_DTYPE[dtype])
        return
    # Range runs in the dtype itself where onnxruntime has it, else in int64/float64 and is cast.
    wide = dtype if dtype in _RANGE_DTYPES else (DType.int64 if dtype.is_int else DType.float64)
    bounds = [ctx.scalar(a[k], wide) for k in ("start", "limit", "delta")]
    if wide is dtype:
        ctx.emit("Range", bounds, outs)
    else:
        r = ctx.emit("Range", bounds, 1)[0]
        ctx.emit("Cast", [r], outs, to=ONNX_DTYPE[dtype])


def _constant_of_shape(ctx, node, outs, value) -> None:
    dtype = _out_type(node).dtype
    fill = numpy_helper.from_array(np.asarray([value], dtype=dtype.numpy), "value")
    ctx.emit("ConstantOfShape", [_ints(ctx, node.attrs["shape"])], outs, value=fill)


@lowering("full")
def _full(ctx, node, ins, outs):
    _constant_of_shape(ctx, node, outs, node.attrs["value"])


@lowering("zeros")
def _zeros(ctx, node, ins, outs):
    _constant_of_shape(ctx, node, outs, 0)


@lowering("ones")
def _ones(ctx, node, ins, outs):
    _constant_of_shape(ctx, node, outs, 1)


@lowering("full_like")
def _full_like(ctx, node, ins, outs):
    shape = ctx.emit("Shape", ins)[0]
    ctx.emit("Expand", [ctx.scalar(node.attrs["value"], _out_type(node).dtype), shape], outs)


@lowering("constant")
def _constant(ctx, node, ins, outs):
    ctx.emit("Constant", [], outs, value=numpy_helper.from_array(np.asarray(node.attrs["value"]), "value"))


@lowering("sum_to_like")
def _sum_to_like(ctx, node, ins, outs):
    # The axes to sum are chosen at run time: those of `axes` where like has size 1 and g not.
    axes = ctx.const(np.asarray(node.attrs["axes"], dtype=np.int64), "sum_axes")
    g_dims = ctx.emit("Gather", [ctx.emit("Shape", [ins[0]])[0], axes])[0]
    like_dims = ctx.emit("Gather", [ctx.emit("Shape", [ins[1]])[0], axes])[0]
    one = ctx.const(np.asarray(1, dtype=np.int64), "one")
    like_is_one = ctx.emit("Equal", [like_dims, one])[0]
    g_not_one = ctx.emit("Not", [ctx.emit("Equal", [g_dims, one])[0]])[0]
    picked = ctx.emit("Compress", [axes, ctx.emit("And", [like_is_one, g_not_one])[0]], axis=0)[0]
    ctx.emit("ReduceSum", [ins[0], picked], outs, keepdims=1, noop_with_empty_axes=1)
