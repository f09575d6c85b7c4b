"""ONNX lowerings of matmul (MatMul: NumPy's rules, 1-D operands included) and einsum (Einsum).

Operands of different dtypes (float32 @ float64) are cast to the promoted dtype first, and
dtypes onnxruntime's MatMul/Einsum lack (int8, int16, uint8, bfloat16) are computed in
int32/float32 and cast back: integer products wrap the same way modulo 2**8 either way.
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from irflow.executors.onnx.lowering import lowering
from irflow.executors.onnx.lowering.reduction import WIDEN_ARITH, emit_widened, value_type


def explicit_equation(equation: str) -> str:
    """The explicit form of an einsum equation (the type rule has validated it already).

    Implicit output: the letters used once, in ASCII order, as NumPy (the builder's public
    ``irf.einsum`` stores explicit equations; hand-built graphs may not).
    """
    eq = equation.replace(" ", "")
    if "->" in eq:
        return eq
    letters = eq.replace(",", "")
    return eq + "->" + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))


@lowering("matmul")
def _matmul(ctx, node, ins, outs):
    # onnxruntime 1.31's MatMul mishandles some size-0 cases: it rejects (0, k) @ (k,) and a
    # size-0 batch dim on the right operand only, and gives wrong results for (m, 0) @ (0,)
    # and for a size-0 contraction with broadcast batch dims. So: a 1-D right operand goes in
    # as a (k, 1) column (the 1 is squeezed away after), and a product known to be empty or
    # to contract nothing is emitted as zeros of its (static) shape. With symbolic dims that
    # turn out 0 at run time, the batch-dim cases remain onnxruntime's.
    a_type, b_type = value_type(ctx, ins[0]), value_type(ctx, ins[1])
    out_type = node.outputs[0].type
    k = a_type.shape[-1]
    if out_type.is_static and (k == 0 or 0 in out_type.shape):
        shape = ctx.const(np.asarray(out_type.shape, dtype=np.int64), "shape")
        ctx.emit("Expand", [ctx.scalar(0, out_type.dtype), shape], outs)
        return

    def emit(ctx, args, targets):
        if b_type.rank != 1:
            ctx.emit("MatMul", args, targets)
            return
        last = ctx.const(np.asarray([-1], dtype=np.int64), "axes")
        (column,) = ctx.emit("Unsqueeze", [args[1], last])
        (product,) = ctx.emit("MatMul", [args[0], column])
        ctx.emit("Squeeze", [product, last], targets)

    emit_widened(ctx, node, ins, outs, WIDEN_ARITH, emit)


@lowering("einsum")
def _einsum(ctx, node, ins, outs):
    # onnxruntime 1.31's Einsum dies with SIGFPE (killing the process) on some size-0
    # operands, e.g. "ad,acd->ad" with a = 0. With an empty operand the result is all zeros
    # (a letter of size 0 is either in the output, which is then empty, or summed over, and an
    # empty sum is 0), so: a known empty operand gives zeros directly, and symbolic dims get a
    # run-time guard If(some operand is empty, zeros, Einsum).
    equation = explicit_equation(node.attrs["equation"])
    lhs, out_sub = equation.split("->")
    in_subs = lhs.split(",")
    types = [value_type(ctx, n) for n in ins]
    out_type = node.outputs[0].type
    compute = WIDEN_ARITH.get(out_type.dtype, out_type.dtype)

    def emit(ctx, args, targets):
        if any(0 in t.shape for t in types):
            ctx.emit("Expand", [ctx.scalar(0, compute), _einsum_shape(ctx, args, in_subs, out_sub, out_type)], targets)
        elif all(t.is_static for t in types):
            ctx.emit("Einsum", args, targets, equation=equation)
        else:
            sizes = [ctx.emit("Size", [a])[0] for a in args]
            (smallest,) = ctx.emit("Min", sizes) if len(sizes) > 1 else sizes[:1]
            (empty,) = ctx.emit("Equal", [smallest, ctx.const(np.asarray(0, dtype=np.int64), "zero")])
            elem = helper.np_dtype_to_tensor_dtype(compute.numpy)
            zeros, result = ctx.fresh(f"{targets[0]}/zeros"), ctx.fresh(f"{targets[0]}/einsum")
            shape = _einsum_shape(ctx, args, in_subs, out_sub, out_type)
            then_branch = helper.make_graph([helper.make_node("Expand", [ctx.scalar(0, compute), shape], [zeros])],
                                            "empty_operand", [], [helper.make_tensor_value_info(zeros, elem, None)])
            else_branch = helper.make_graph([helper.make_node("Einsum", args, [result], equation=equation)],
                                            "einsum", [], [helper.make_tensor_value_info(result, elem, None)])
            ctx.emit("If", [empty], targets, then_branch=then_branch, else_branch=else_branch)

    emit_widened(ctx, node, ins, outs, WIDEN_ARITH, emit)


def _einsum_shape(ctx, args, in_subs, out_sub, out_type) -> str:
    """The output shape of an einsum as an int64 tensor: a constant, or read from the operands."""
    if out_type.is_static:
        return ctx.const(np.asarray(out_type.shape, dtype=np.int64), "shape")
    dims = []
    for c in out_sub:
        j = next(j for j, sub in enumerate(in_subs) if c in sub)
        k = in_subs[j].index(c)
        dims += ctx.emit("Shape", [args[j]], 1, start=k, end=k + 1)
    return dims[0] if len(dims) == 1 else ctx.emit("Concat", dims, 1, axis=0)[0]
