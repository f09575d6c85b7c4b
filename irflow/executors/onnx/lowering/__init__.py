"""ONNX lowerings by op name: ``lowering(ctx, node, inputs, outputs) -> None``.

A lowering emits standard-domain ONNX nodes through ``ctx`` (see ``export.LoweringContext``)
so that the op's outputs get exactly the names in ``outputs``. Simple ops are one line:
``simple("exp", "Exp")``.
"""
from __future__ import annotations

from typing import Callable

LOWERINGS: dict[str, Callable] = {}

# Lowerings that need a newer opset than the default for some nodes: op name ->
# fn(node, types) -> the least opset that lowers that node (types: every visible value's
# TensorType). ``to_model`` without an explicit opset exports at the highest of these.
NEEDS_OPSET: dict[str, Callable] = {}


def lowering(name: str) -> Callable[[Callable], Callable]:
    """Register a lowering: ``@lowering("relu") def _(ctx, node, ins, outs): ...``."""

    def register(fn: Callable) -> Callable:
        if name in LOWERINGS:
            raise ValueError(f"lowering for {name!r} registered twice")
        LOWERINGS[name] = fn
        return fn

    return register


def simple(name: str, onnx_op: str, **fixed_attrs) -> None:
    """Lower ``name`` to one ONNX node of type ``onnx_op`` with the same inputs and outputs."""

    def lower(ctx, node, ins, outs):
        ctx.emit(onnx_op, ins, outs, **fixed_attrs)

    lower.__name__ = f"lower_{name}"
    lowering(name)(lower)


from irflow.executors.onnx.lowering import elementwise, reduction, linalg, shape, nn, random  # noqa: E402,F401
from irflow.executors.onnx.lowering import special  # noqa: E402,F401
from irflow.executors.onnx.lowering import conv  # noqa: E402,F401
from irflow.executors.onnx.lowering import conv_nd  # noqa: E402,F401
from irflow.executors.onnx.lowering import resize, resize_dynamic  # noqa: E402,F401
from irflow.executors.onnx.lowering import vision  # noqa: E402,F401
from irflow.executors.onnx.lowering import extra  # noqa: E402,F401
from irflow.executors.onnx.lowering import control  # noqa: E402,F401
from irflow.executors.onnx.lowering import segment  # noqa: E402,F401
from irflow.executors.onnx.lowering import dynamic_axes  # noqa: E402,F401
from irflow.executors.onnx.lowering import data_dependent  # noqa: E402,F401
from irflow.executors.onnx.lowering import onnx_extra  # noqa: E402,F401
from irflow.executors.onnx.lowering import dynamic_shape  # noqa: E402,F401
from irflow.executors.onnx.lowering import quantized  # noqa: E402,F401
from irflow.executors.onnx.lowering import signal  # noqa: E402,F401
