"""ONNX lowerings of the nn ops: softmax, log_softmax, sparse_softmax_cross_entropy,
layer_norm, batch_norm, dropout.

Each is one standard ONNX op (opset 21), except sparse_softmax_cross_entropy (five nodes).
layer_norm without a scale gets ones of the normalized shape, since ONNX LayerNormalization
requires Scale. Training-mode dropout is ONNX Dropout with the same seed attribute:
onnxruntime's generator gives another mask than NumPy's (same distribution) and advances on
every run; the forward dropout and the dropout of its gradient advance together, so they keep
using the same mask within one run.
"""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from irflow.executors.onnx.lowering import lowering


def input_type(ctx, name: str):
    """The IR type of a value of the graph being lowered."""
    return ctx.types[name]


@lowering("softmax")
def _softmax(ctx, node, ins, outs):
    ctx.emit("Softmax", ins, outs, axis=node.attrs["axis"])


@lowering("log_softmax")
def _log_softmax(ctx, node, ins, outs):
    ctx.emit("LogSoftmax", ins, outs, axis=node.attrs["axis"])


@lowering("sparse_softmax_cross_entropy")
def _sparse_softmax_cross_entropy(ctx, node, ins, outs):
    # -GatherElements(LogSoftmax(logits), labels[..., None])[..., 0]. Not SoftmaxCrossEntropyLoss
    # (reduction="none"): it gives the same values on onnxruntime's CPU provider, but this is
    # plain ops every runtime has. GatherElements takes -classes..-1 as counting from the end
    # and fails on other labels out of range, where the NumPy kernel refuses every one.
    logits, labels = ins
    last = ctx.const(np.asarray([-1], dtype=np.int64), "axes")
    (logp,) = ctx.emit("LogSoftmax", [logits], axis=-1)
    (index,) = ctx.emit("Unsqueeze", [labels, last])
    (picked,) = ctx.emit("GatherElements", [logp, index], axis=-1)
    (picked,) = ctx.emit("Squeeze", [picked, last])
    ctx.emit("Neg", [picked], outs)


@lowering("layer_norm")
def _layer_norm(ctx, node, ins, outs):
    x_type = input_type(ctx, ins[0])
    axis = node.attrs["axis"] % x_type.rank
    args = list(ins) + [""] * (3 - len(ins))
    if not args[1]:
        normalized = x_type.shape[axis:]
        if all(isinstance(d, int) for d in normalized):
            args[1] = ctx.const(np.ones(normalized, dtype=x_type.dtype.numpy), "ones")
        else:
            shape = ctx.emit("Shape", [ins[0]], 1, start=axis)[0]
            one = numpy_helper.from_array(np.ones((1,), dtype=x_type.dtype.numpy))
            args[1] = ctx.emit("ConstantOfShape", [shape], 1, value=one)[0]
    if not args[2]:
        args = args[:2]
    ctx.emit("LayerNormalization", args, outs, axis=axis, epsilon=float(node.attrs["epsilon"]))


@lowering("batch_norm")
def _batch_norm(ctx, node, ins, outs):
    ctx.emit("BatchNormalization", ins, outs, epsilon=float(node.attrs["epsilon"]))


@lowering("dropout")
def _dropout(ctx, node, ins, outs):
    rate, training = node.attrs["rate"], node.attrs["training"]
    if not training or rate == 0.0:
        ctx.emit("Identity", ins, outs)
        return
    dtype = node.outputs[0].type.dtype
    ratio = ctx.scalar(rate, dtype)
    train = ctx.const(np.asarray(True), "training_mode")
    ctx.emit("Dropout", [ins[0], ratio, train], outs, seed=int(node.attrs["seed"]))
