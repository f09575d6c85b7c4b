"""ONNX lowerings of the run-time axes ops (irflow/ops/dynamic_axes.py): the ONNX ops that take
axes as an input (opset 18 Reduce*, Squeeze, Unsqueeze, CumSum), plus what onnxruntime needs to
agree with the NumPy kernels, as the static lowerings in reduction.py do: narrow dtypes widened,
NaN kept by max/min, NaN for an empty mean, axes made non-negative (onnxruntime 1.31 mishandles
negative axes on inputs with a size-0 dim). onnxruntime 1.31 has no CumProd: it is a Loop of
doubling steps (Hillis-Steele) along the run-time axis, with Slice and Pad taking that axis.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from irflow.executors.onnx.context import ONNX_DTYPE
from irflow.executors.onnx.lowering import lowering
from irflow.executors.onnx.lowering.reduction import WIDEN_ARITH, WIDEN_ORDER, emit_widened, value_type
from irflow.ir.dtypes import DType

_ONNX_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin", "prod": "ReduceProd"}


def _i64(ctx, values, name: str = "const") -> str:
    return ctx.const(np.asarray(values, dtype=np.int64), name)


def _non_negative(ctx, axes: str, rank: int, dtype: DType = DType.int64) -> str:
    """Run-time axes (of ``dtype``) as int64, with rank added to the negative ones."""
    if dtype is not DType.int64:
        axes = ctx.emit("Cast", [axes], 1, to=TensorProto.INT64)[0]
    (neg,) = ctx.emit("Less", [axes, _i64(ctx, 0, "zero")])
    (up,) = ctx.emit("Add", [axes, _i64(ctx, rank, "rank")])
    return ctx.emit("Where", [neg, up, axes])[0]


@lowering("reduce_dynamic")
def _reduce_dynamic(ctx, node, ins, outs):
    x_type = value_type(ctx, ins[0])
    kind = node.attrs["kind"]
    attrs = dict(keepdims=int(node.attrs["keepdims"]), noop_with_empty_axes=int(node.attrs["noop_with_empty_axes"]))
    axes = _non_negative(ctx, ins[1], x_type.rank)
    # bool max/min in uint8: onnxruntime has no bool max/min over an empty set (uint8 gives 0 / 255)
    widen = {**WIDEN_ORDER, DType.bool: DType.uint8} if kind in ("max", "min") else WIDEN_ARITH
    out_dtype = node.outputs[0].type.dtype
    compute = widen.get(out_dtype, out_dtype)

    def emit(ctx, args, targets):
        x = args[0]
        if kind in ("max", "min") and x_type.dtype.is_float:
            # NaN in a slice makes its max NaN, as NumPy (onnxruntime may skip it).
            (ext,) = ctx.emit(_ONNX_REDUCE[kind], [x, axes], 1, **attrs)
            # The NaN test reduces a float 0/1 (onnxruntime has no bool max over an empty set).
            (isnan,) = ctx.emit("Cast", ctx.emit("IsNaN", [x]), 1, to=ONNX_DTYPE[compute])
            (nan,) = ctx.emit("Greater", [ctx.emit("ReduceMax", [isnan, axes], 1, **attrs)[0], ctx.scalar(0, compute)])
            ctx.emit("Where", [nan, ctx.scalar(np.nan, compute), ext], targets)
        elif kind == "mean" and not all(isinstance(d, int) and d > 0 for d in x_type.shape):
            # onnxruntime's mean over nothing is 0, NumPy's NaN (0/0): count the elements
            # each output averages (from the run-time shape and axes) and put NaN where it is 0.
            (mean,) = ctx.emit("ReduceMean", [x, axes], 1, **attrs)
            (shape,) = ctx.emit("Shape", [x])
            (picked,) = ctx.emit("ReduceProd", [ctx.emit("Gather", [shape, axes], 1, axis=0)[0]], 1, keepdims=0)
            everything = _i64(ctx, 1, "one") if attrs["noop_with_empty_axes"] else \
                ctx.emit("ReduceProd", [shape], 1, keepdims=0)[0]
            (no_axes,) = ctx.emit("Equal", [ctx.emit("Size", [axes])[0], _i64(ctx, 0, "zero")])
            (count,) = ctx.emit("Where", [no_axes, everything, picked])
            (empty,) = ctx.emit("Equal", [count, _i64(ctx, 0, "zero")])
            ctx.emit("Where", [empty, ctx.scalar(np.nan, compute), mean], targets)
        else:
            ctx.emit(_ONNX_REDUCE[kind], [x, axes], targets, **attrs)

    emit_widened(ctx, node, ins[:1], outs, widen, emit)


@lowering("squeeze_dynamic")
def _squeeze_dynamic(ctx, node, ins, outs):
    ctx.emit("Squeeze", [ins[0], _non_negative(ctx, ins[1], value_type(ctx, ins[0]).rank)], outs)


@lowering("unsqueeze_dynamic")
def _unsqueeze_dynamic(ctx, node, ins, outs):
    rank = value_type(ctx, ins[0]).rank + value_type(ctx, ins[1]).shape[0]
    ctx.emit("Unsqueeze", [ins[0], _non_negative(ctx, ins[1], rank)], outs)


def _axis_vector(ctx, axis: str, rank: int) -> str:
    """The run-time axis as a non-negative one-element int64 vector."""
    (vec,) = ctx.emit("Reshape", [axis, _i64(ctx, [1], "one_elem")])
    return _non_negative(ctx, vec, rank, value_type(ctx, axis).dtype)


@lowering("cumsum_dynamic")
def _cumsum_dynamic(ctx, node, ins, outs):
    axis = ctx.emit("Squeeze", [_axis_vector(ctx, ins[1], value_type(ctx, ins[0]).rank), _i64(ctx, [0], "axis0")])[0]

    def emit(ctx, args, targets):
        ctx.emit("CumSum", [args[0], axis], targets,
                 exclusive=int(node.attrs["exclusive"]), reverse=int(node.attrs["reverse"]))

    emit_widened(ctx, node, ins[:1], outs, WIDEN_ARITH, emit)


def _flip(emit, y: str, ax: str, ctx) -> str:
    """y reversed along the run-time axis: a Slice with step -1."""
    m1 = _i64(ctx, [-1], "minus_one")
    return emit("Slice", [y, m1, _i64(ctx, [-2**63], "int_min"), ax, m1])


def _shift(emit, y: str, k: str, n: str, ax: str, ctx, ones: str) -> str:
    """y moved k places along the run-time axis, ones in front: Pad(Slice(y, 0, n - k), k
    ones); k is clamped to n, so a size-0 axis stays size 0."""
    zero = _i64(ctx, [0], "zero1")
    k = emit("Min", [k, n])
    head = emit("Slice", [y, zero, emit("Sub", [n, k]), ax])
    return emit("Pad", [head, emit("Concat", [k, zero], axis=0), ones, ax], mode="constant")


@lowering("cumprod_dynamic")
def _cumprod_dynamic(ctx, node, ins, outs):
    x_type = value_type(ctx, ins[0])
    ax = _axis_vector(ctx, ins[1], x_type.rank)
    (n,) = ctx.emit("Gather", [ctx.emit("Shape", [ins[0]])[0], ax], 1, axis=0)  # (1,): the size along the axis
    one, zero = _i64(ctx, [1], "one1"), _i64(ctx, [0], "zero1")
    reverse, exclusive = node.attrs["reverse"], node.attrs["exclusive"]

    def outer(op, inputs, **attrs):
        return ctx.emit(op, inputs, 1, **attrs)[0]

    def emit(ctx, args, targets):
        dtype = node.outputs[0].type.dtype
        compute = WIDEN_ARITH.get(dtype, dtype)
        ones = ctx.scalar(1, compute)
        y = _flip(outer, args[0], ax, ctx) if reverse else args[0]
        if exclusive:
            y = _shift(outer, y, one, n, ax, ctx, ones)
        # The Loop body (iter, go, y, k) -> (k * 2 < n, y * shift(y, k), k * 2): log2(n) steps,
        # none for n <= 1. It reads n, the axis and constants from the outer graph.
        body_nodes: list = []

        def inner(op, inputs, **attrs):
            (name,) = [ctx.fresh(f"{ctx._prefix}/body_{op.lower()}")]
            body_nodes.append(helper.make_node(op, inputs, [name], **attrs))
            return name

        it, go_in, y_in, k_in = (ctx.fresh(f"{ctx._prefix}/body_{s}") for s in ("iter", "go", "y", "k"))
        y_out = inner("Mul", [y_in, _shift(inner, y_in, k_in, n, ax, ctx, ones)])
        k_out = inner("Mul", [k_in, _i64(ctx, [2], "two1")])
        go_out = inner("Squeeze", [inner("Less", [k_out, n]), zero])
        elem = ONNX_DTYPE[compute]
        body = helper.make_graph(
            body_nodes, f"{ctx._prefix}_cumprod_body".replace("/", "_"),
            [helper.make_tensor_value_info(it, TensorProto.INT64, []),
             helper.make_tensor_value_info(go_in, TensorProto.BOOL, []),
             helper.make_tensor_value_info(y_in, elem, None),
             helper.make_tensor_value_info(k_in, TensorProto.INT64, [1])],
            [helper.make_tensor_value_info(go_out, TensorProto.BOOL, []),
             helper.make_tensor_value_info(y_out, elem, None),
             helper.make_tensor_value_info(k_out, TensorProto.INT64, [1])])
        go = outer("Squeeze", [outer("Less", [one, n]), zero])
        result = ctx.fresh(f"{ctx._prefix}/cumprod") if reverse else targets[0]
        ctx.emit("Loop", ["", go, y, one], [result, ctx.fresh(f"{ctx._prefix}/k_final")], body=body)
        if reverse:  # flipped back, into the node's output
            _flip(lambda op, inputs, **attrs: ctx.emit(op, inputs, targets, **attrs)[0], result, ax, ctx)

    emit_widened(ctx, node, ins[:1], outs, WIDEN_ARITH, emit)
