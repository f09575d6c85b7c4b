"""ONNX lowerings of the run-time shape-argument ops (irflow/ops/dynamic_shape.py): the ONNX op
that takes the argument as an input (opset >= 18 Slice, Pad, Split, Tile, TopK)."""
from __future__ import annotations

import numpy as np

from irflow.executors.onnx.context import ONNX_DTYPE
from irflow.executors.onnx.lowering import lowering
from irflow.ir.dtypes import DType


def _int64(ctx, name: str) -> str:
    """An integer input as int64 (ONNX wants one index type across Slice's / Pad's inputs)."""
    if not name or ctx.types[name].dtype is DType.int64:
        return name
    return ctx.emit("Cast", [name], 1, to=ONNX_DTYPE[DType.int64])[0]


def _one_element_1d(ctx, name: str) -> str:
    """A one-element tensor as shape (1,) (TopK's K)."""
    if ctx.types[name].rank == 1:
        return name
    return ctx.emit("Reshape", [name, ctx.const(np.asarray([1], np.int64), "shape")], 1)[0]


def _trim(ins: list[str]) -> list[str]:
    while ins and not ins[-1]:
        ins = ins[:-1]
    return ins


@lowering("slice_dynamic")
def _slice_dynamic(ctx, node, ins, outs):
    ctx.emit("Slice", [ins[0]] + _trim([_int64(ctx, n) for n in ins[1:]]), outs)


@lowering("pad_dynamic")
def _pad_dynamic(ctx, node, ins, outs):
    args = list(ins) + [""] * (4 - len(ins))
    value = args[2]
    if value and ctx.types[value].rank:  # ONNX's constant_value is a scalar
        value = ctx.emit("Reshape", [value, ctx.const(np.zeros(0, np.int64), "shape")], 1)[0]
    ctx.emit("Pad", _trim([ins[0], args[1], value, _int64(ctx, args[3])]), outs, mode=node.attrs["mode"])


@lowering("split_dynamic")
def _split_dynamic(ctx, node, ins, outs):
    ctx.emit("Split", ins, outs, axis=node.attrs["axis"])


@lowering("tile_dynamic")
def _tile_dynamic(ctx, node, ins, outs):
    ctx.emit("Tile", ins, outs)


@lowering("topk_dynamic")
def _topk_dynamic(ctx, node, ins, outs):
    a = node.attrs
    ctx.emit("TopK", [ins[0], _one_element_1d(ctx, ins[1])], outs, axis=a["axis"], largest=int(a["largest"]),
             sorted=int(a["sorted"]))


@lowering("one_hot_dynamic")
def _one_hot_dynamic(ctx, node, ins, outs):
    # Equal(indices unsqueezed at axis, range(depth) laid along that axis), cast to the dtype:
    # onnxruntime's OneHot covers few type combinations, these ops cover them all.
    out = node.outputs[0].type
    a = node.attrs["axis"] % out.rank
    i64 = ONNX_DTYPE[DType.int64]
    depth = ctx.emit("Cast", [ctx.emit("Reshape", [ins[1], ctx.const(np.zeros(0, np.int64), "shape")], 1)[0]], 1, to=i64)[0]
    idx = _int64(ctx, ins[0])
    zero = ctx.const(np.asarray(0, np.int64), "zero")
    idx = ctx.emit("Where", [ctx.emit("Less", [idx, zero], 1)[0], ctx.emit("Add", [idx, depth], 1)[0], idx], 1)[0]
    idx = ctx.emit("Unsqueeze", [idx, ctx.const(np.asarray([a], np.int64), "axes")], 1)[0]
    positions = ctx.emit("Range", [zero, depth, ctx.const(np.asarray(1, np.int64), "one")], 1)[0]
    trailing = out.rank - a - 1
    positions = ctx.emit("Reshape", [positions, ctx.const(np.asarray([-1] + [1] * trailing, np.int64), "shape")], 1)[0]
    hit = ctx.emit("Equal", [idx, positions], 1)[0]
    ctx.emit("Cast", [hit], outs, to=ONNX_DTYPE[out.dtype])
