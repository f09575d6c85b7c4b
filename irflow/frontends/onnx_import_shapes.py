"""Shape values: import-time knowledge of 1-D int tensors that hold (symbolic) dims.

``Shape(x)`` of a tensor typed ``('batch', 128)`` is not a constant, but it is known to be
``('batch', 128)``. Exporters feed such values through Gather, Slice, Concat, Unsqueeze,
Squeeze and Cast into Reshape or Expand; following them here lets those ops get static
attributes (with at most one inferred dim) instead of needing run-time shape tensors.
Arithmetic on shape values is not followed (its result is simply unknown).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def propagate(ctx, node: onnx.NodeProto, opset: int) -> None:
    """Record ``ctx.shapes`` for the outputs of ``node`` when its inputs are shape values."""
    ins = list(node.input)
    if not node.output or node.output[0] in ctx.consts:
        return
    if not any(name in ctx.shapes for name in ins if name):
        return
    op = node.op_type
    a = _attrs(node)
    out = node.output[0]

    def sv(i):  # a shape value (tuple) or None
        return ctx.shape_value(ins[i]) if i < len(ins) and ins[i] else None

    def const(i):
        return ctx.known_value(ins[i]) if i < len(ins) and ins[i] else None

    value = None
    scalars = getattr(ctx, "scalar_shapes", set())
    scalar = False  # is the output a 0-d tensor (one dim) rather than a 1-D one?
    if op in ("Identity", "Cast") or op in _ARITH:
        scalar = ins[0] in scalars
    elif op == "Squeeze":
        scalar = True
    if op in ("Identity", "Cast"):
        value = sv(0)
    elif op == "Concat":
        parts = [sv(i) for i in range(len(ins))]
        if all(p is not None for p in parts):
            value = tuple(d for p in parts for d in p)
    elif op == "Gather":
        src, idx = sv(0), const(1)
        flat = np.asarray(idx).reshape(-1) if idx is not None else None
        if src is not None and flat is not None and flat.dtype.kind in "iu" and all(-len(src) <= int(i) < len(src) for i in flat):
            picked = [src[int(i)] for i in flat]
            value = tuple(picked)
            scalar = np.asarray(idx).ndim == 0  # a scalar dim: kept as a 1-tuple
    elif op == "Slice":
        src = sv(0)
        starts, ends = const(1), const(2)
        steps = const(4) if len(ins) > 4 and ins[4] else None
        parts = [np.asarray(v).reshape(-1) for v in (starts, ends) + ((steps,) if steps is not None else ()) if v is not None]
        if src is not None and len(parts) == (3 if steps is not None else 2) and all(p.size == 1 and p.dtype.kind in "iu" for p in parts):
            s, e = int(parts[0][0]), int(parts[1][0])
            st = int(parts[2][0]) if steps is not None else 1
            if st != 0:
                value = tuple(src[slice(s, min(e, len(src)) if e > 0 else e, st)])
    elif op in ("Unsqueeze", "Squeeze", "Reshape"):
        value = sv(0)
    elif op in _ARITH:
        x, y = sv(0), sv(1)
        if x is not None and y is not None and (len(x) == len(y) or 1 in (len(x), len(y))):
            n = max(len(x), len(y))
            x, y = (x * n if len(x) == 1 else x), (y * n if len(y) == 1 else y)
            value = tuple(_arith(op, a, b) for a, b in zip(x, y))
    if value is not None:
        ctx.shapes[out] = tuple(value)
        if scalar:
            ctx.scalar_shapes = scalars | {out}
        if all(isinstance(d, int) for d in value):  # every dim static: the value is a constant
            arr = np.asarray(value, dtype=np.int64)
            ctx.consts[out] = arr.reshape(()) if scalar and arr.size == 1 else arr


_ARITH = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}


def _arith(op: str, a, b):
    """One dim of Add/Sub/Mul/Div on shape values: ints compute (Div truncates, as ONNX on
    ints); anything symbolic becomes an expression symbol such as '(batch*4)'."""
    if isinstance(a, int) and isinstance(b, int):
        if op == "Add":
            return a + b
        if op == "Sub":
            return a - b
        if op == "Mul":
            return a * b
        return int(a / b) if b else 0
    if op == "Mul" and (a == 1 or b == 1):
        return b if a == 1 else a
    if op in ("Div",) and b == 1:
        return a
    if op in ("Add", "Sub") and b == 0:
        return a
    return f"({a}{_ARITH[op]}{b})"
