"""ONNX lowerings of the reductions (standard domain, opset 18+: Reduce* take axes as an input).

onnxruntime's CPU kernels lack some dtypes irflow has (ReduceSum has no int8, nothing has
bfloat16, ...). Those are computed in a wider dtype and cast back, which gives NumPy's
results exactly: integer sums and products wrap the same way modulo 2**8 whether computed in
8 or 32 bits, and max/min/argmax are exact in any wider type.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from onnx import helper

from irflow.executors.onnx.lowering import lowering
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType

# dtype -> the dtype onnxruntime computes it in, per kind of op.
# Sums and products of unsigned ints wrap alike in a signed type of at least their width
# (two's complement), uint64 in int64; order needs a type that holds every value, so uint64
# has no widening for max/min/argmax (onnxruntime then reports the missing kernel). uint32
# orders in float64 (exact below 2**53), not int64: onnxruntime 1.31's int64 ReduceMax
# returns 6 for [4294967295, 2, 3, 4, 5, 6] (measured; 2**40 works).
WIDEN_ARITH = {DType.int8: DType.int32, DType.int16: DType.int32, DType.uint8: DType.int32, DType.bfloat16: DType.float32,
               DType.uint16: DType.int32, DType.uint32: DType.int64, DType.uint64: DType.int64}
WIDEN_ORDER = {DType.int16: DType.int32, DType.bfloat16: DType.float32,  # ReduceMax/Min
               DType.uint16: DType.int32, DType.uint32: DType.float64}
WIDEN_ARG = {**WIDEN_ORDER, DType.bool: DType.uint8}  # ArgMax/ArgMin
WIDEN_FLOAT32 = {DType.float16: DType.float32, DType.bfloat16: DType.float32}  # logsumexp, as the kernel


def cast(ctx, name: str, dtype: DType) -> str:
    """Emit a Cast of ``name`` to ``dtype``; return the new name."""
    return ctx.emit("Cast", [name], 1, to=helper.np_dtype_to_tensor_dtype(dtype.numpy))[0]


def emit_widened(ctx, node, ins: Sequence[str], outs: Sequence[str], widen: dict, emit: Callable) -> None:
    """Call ``emit(ctx, args, targets)`` to lower ``node`` in a dtype onnxruntime supports.

    The compute dtype is the node's output dtype when that is a value dtype (the promoted
    input dtype: mixed float32/float64 matmul operands meet in float64), else the input's
    (argmax), and then ``widen[dtype]`` if onnxruntime lacks it. Inputs of another dtype are
    cast to it, and value outputs are cast back, so ``emit`` sees one dtype throughout.
    """
    in_dtypes = [value_type(ctx, n).dtype for n in ins]
    out_dtype = node.outputs[0].type.dtype
    value_op = out_dtype in in_dtypes
    compute = out_dtype if value_op else in_dtypes[0]
    compute = widen.get(compute, compute)
    args = [n if d == compute else cast(ctx, n, compute) for n, d in zip(ins, in_dtypes)]
    back = [value_op and v.type.dtype != compute for v in node.outputs]
    targets = [ctx.fresh(f"{o}_wide") if b else o for o, b in zip(outs, back)]
    emit(ctx, args, targets)
    for t, o, b, v in zip(targets, outs, back, node.outputs):
        if b:
            ctx.emit("Cast", [t], [o], to=helper.np_dtype_to_tensor_dtype(v.type.dtype.numpy))


def value_type(ctx, name: str) -> TensorType:
    """The IR type of a value of the graph being lowered."""
    return ctx.types[name]


def _norm(axes, rank: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(rank))
    return tuple(sorted(a % rank for a in axes)) if rank else ()


def _axes_input(ctx, axes, rank: int) -> list[str]:
    """The optional axes input of a Reduce* node: omitted for None (all axes), else made
    non-negative (onnxruntime 1.31 mishandles negative axes on inputs with a size-0 dim)."""
    return [] if axes is None else [ctx.const(np.asarray(_norm(axes, rank), dtype=np.int64), "axes")]


def reduce_with_axes(ctx, onnx_op: str, node, ins, outs, widen: dict = WIDEN_ARITH) -> None:
    """One Reduce* node. Reducing no axis at all (``axes=()``, or a scalar) is an Identity:
    ONNX would read an empty axes list as "all axes" (noop_with_empty_axes=0)."""
    axes, keepdims = node.attrs["axes"], node.attrs["keepdims"]
    rank = value_type(ctx, ins[0]).rank
    if not _norm(axes, rank):
        ctx.emit("Identity", [ins[0]], outs)
        return

    def emit(ctx, args, targets):
        ctx.emit(onnx_op, [args[0], *_axes_input(ctx, axes, rank)], targets, keepdims=int(keepdims))

    emit_widened(ctx, node, ins, outs, widen, emit)


def _any_nan(ctx, x: str, axes, rank: int, keepdims: bool) -> str:
    """A bool tensor: does the slice reduced over ``axes`` hold a NaN? (ReduceMax of IsNaN)"""
    (isnan,) = ctx.emit("IsNaN", [x])
    return ctx.emit("ReduceMax", [isnan, *_axes_input(ctx, axes, rank)], 1, keepdims=int(keepdims))[0]


def _reduce(onnx_op: str, widen: dict) -> Callable:
    def lower(ctx, node, ins, outs):
        reduce_with_axes(ctx, onnx_op, node, ins, outs, widen)

    lower.__name__ = f"lower_{onnx_op}"
    return lower


def _extremum(onnx_op: str) -> Callable:
    # onnxruntime's ReduceMax/Min skip a NaN or not depending on where it is; NumPy's (and
    # irflow's) max of a slice holding a NaN is NaN. Float inputs get Where(any NaN, NaN, max).
    def lower(ctx, node, ins, outs):
        x_type = value_type(ctx, ins[0])
        axes, keepdims = node.attrs["axes"], node.attrs["keepdims"]
        if not x_type.dtype.is_float or not _norm(axes, x_type.rank):
            reduce_with_axes(ctx, onnx_op, node, ins, outs, WIDEN_ORDER)
            return

        def emit(ctx, args, targets):
            (extremum,) = ctx.emit(onnx_op, [args[0], *_axes_input(ctx, axes, x_type.rank)], 1, keepdims=int(keepdims))
            nan = ctx.scalar(np.nan, WIDEN_ORDER.get(x_type.dtype, x_type.dtype))
            ctx.emit("Where", [_any_nan(ctx, args[0], axes, x_type.rank, keepdims), nan, extremum], targets)

        emit_widened(ctx, node, ins, outs, WIDEN_ORDER, emit)

    lower.__name__ = f"lower_{onnx_op}"
    return lower


lowering("reduce_sum")(_reduce("ReduceSum", WIDEN_ARITH))
lowering("reduce_prod")(_reduce("ReduceProd", WIDEN_ARITH))
lowering("reduce_max")(_extremum("ReduceMax"))
lowering("reduce_min")(_extremum("ReduceMin"))


@lowering("reduce_mean")
def _reduce_mean(ctx, node, ins, outs):
    # onnxruntime's ReduceMean gives 0 over a size-0 axis where NumPy (and irflow) give NaN
    # (0/0). Unless every reduced dim is a known positive int, count the reduced elements at
    # run time and put NaN where the count is 0.
    x_type = value_type(ctx, ins[0])
    axes = _norm(node.attrs["axes"], x_type.rank)
    if all(isinstance(x_type.shape[a], int) and x_type.shape[a] > 0 for a in axes):
        reduce_with_axes(ctx, "ReduceMean", node, ins, outs)
        return
    dtype = node.outputs[0].type.dtype
    compute = WIDEN_ARITH.get(dtype, dtype)

    def emit(ctx, args, targets):
        (mean,) = ctx.emit("ReduceMean", [args[0], *_axes_input(ctx, axes, x_type.rank)], 1,
                           keepdims=int(node.attrs["keepdims"]))
        (shape,) = ctx.emit("Shape", [args[0]])
        (dims,) = ctx.emit("Gather", [shape, ctx.const(np.asarray(axes, dtype=np.int64), "axes")], 1, axis=0)
        (count,) = ctx.emit("ReduceProd", [dims], 1, keepdims=0)
        (empty,) = ctx.emit("Equal", [count, ctx.const(np.asarray(0, dtype=np.int64), "zero")])
        ctx.emit("Where", [empty, ctx.scalar(np.nan, compute), mean], targets)

    emit_widened(ctx, node, ins, outs, WIDEN_ARITH, emit)


@lowering("logsumexp")
def _logsumexp(ctx, node, ins, outs):
    # m + log(sum(exp(x - m))) with m the max over the axes, replaced by 0 where it is
    # infinite (all -inf, or a +inf), exactly as the NumPy kernel.
    axes, keepdims = node.attrs["axes"], node.attrs["keepdims"]
    rank = value_type(ctx, ins[0]).rank
    reduced = _norm(axes, rank)
    if not reduced:
        ctx.emit("Identity", [ins[0]], outs)
        return

    def emit(ctx, args, targets):
        x = args[0]
        dtype = WIDEN_FLOAT32.get(node.outputs[0].type.dtype, node.outputs[0].type.dtype)
        (m,) = ctx.emit("ReduceMax", [x, *_axes_input(ctx, axes, rank)], 1, keepdims=1)
        (inf,) = ctx.emit("IsInf", [m])
        (m,) = ctx.emit("Where", [inf, ctx.scalar(0, dtype), m])
        (e,) = ctx.emit("Exp", ctx.emit("Sub", [x, m]))
        (s,) = ctx.emit("ReduceSum", [e, *_axes_input(ctx, axes, rank)], 1, keepdims=1)
        if keepdims:
            ctx.emit("Add", [ctx.emit("Log", [s])[0], m], targets)
        else:
            (r,) = ctx.emit("Add", [ctx.emit("Log", [s])[0], m])
            ctx.emit("Squeeze", [r, ctx.const(np.asarray(reduced, dtype=np.int64), "axes")], targets)

    emit_widened(ctx, node, ins, outs, WIDEN_FLOAT32, emit)


def _arg(onnx_op: str):
    def lower(ctx, node, ins, outs):
        # select_last_index=0: the first index on ties, as NumPy. For floats, as NumPy, a
        # slice holding a NaN answers its first NaN (onnxruntime alone would skip it or not).
        x_type = value_type(ctx, ins[0])
        axis = node.attrs["axis"] % x_type.rank  # non-negative: see _axes_input
        keepdims = int(node.attrs["keepdims"])

        def emit(ctx, args, targets):
            if not x_type.dtype.is_float:
                ctx.emit(onnx_op, args, targets, axis=axis, keepdims=keepdims, select_last_index=0)
                return
            (index,) = ctx.emit(onnx_op, args, 1, axis=axis, keepdims=keepdims, select_last_index=0)
            (isnan,) = ctx.emit("Cast", ctx.emit("IsNaN", args), 1, to=helper.np_dtype_to_tensor_dtype(np.dtype(np.uint8)))
            (first_nan,) = ctx.emit("ArgMax", [isnan], 1, axis=axis, keepdims=keepdims, select_last_index=0)
            ctx.emit("Where", [_any_nan(ctx, args[0], (axis,), x_type.rank, keepdims), first_nan, index], targets)

        emit_widened(ctx, node, ins, outs, WIDEN_ARG, emit)

    return lower


lowering("argmax")(_arg("ArgMax"))
lowering("argmin")(_arg("ArgMin"))


@lowering("cumsum")
def _cumsum(ctx, node, ins, outs):
    def emit(ctx, args, targets):
        axis = ctx.const(np.asarray(node.attrs["axis"] % value_type(ctx, ins[0]).rank, dtype=np.int64), "axis")
        ctx.emit("CumSum", [args[0], axis], targets,
                 exclusive=int(node.attrs["exclusive"]), reverse=int(node.attrs["reverse"]))

    emit_widened(ctx, node, ins, outs, WIDEN_ARITH, emit)
