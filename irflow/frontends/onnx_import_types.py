"""Type checks of ONNX import (skipped with ``load(..., strict=False)``).

- Each node's input and output dtypes against its ONNX schema's type constraints: a dtype the
  schema does not allow for that input, or one type parameter (``T``) bound to two dtypes by
  different inputs/outputs, is a ``DTypeError`` naming the node, the input and the parameter
  (onnxruntime refuses such models too).
- Declared types (graph outputs, ``value_info``) against the types irflow infers: another
  dtype is a ``DTypeError``, another rank or a different static dim a ``ShapeError``, naming the
  value and the node that produces it. Symbols and unknown dims agree with anything.
"""
from __future__ import annotations

import functools
from typing import Any

import onnx

from irflow.errors import DTypeError, ShapeError
from irflow.frontends.onnx_import_base import ONNX_TO_DTYPE, ImportContext, onnx_dim
from irflow.ir.dtypes import DType, dtype_of_array

_TYPE_STR = {
    DType.float16: "tensor(float16)", DType.bfloat16: "tensor(bfloat16)", DType.float32: "tensor(float)",
    DType.float64: "tensor(double)", DType.int8: "tensor(int8)", DType.int16: "tensor(int16)",
    DType.int32: "tensor(int32)", DType.int64: "tensor(int64)", DType.uint8: "tensor(uint8)", DType.uint16: "tensor(uint16)",
    DType.uint32: "tensor(uint32)", DType.uint64: "tensor(uint64)", DType.bool: "tensor(bool)",
    DType.float8_e4m3fn: "tensor(float8e4m3fn)",
    DType.float8_e4m3fnuz: "tensor(float8e4m3fnuz)",
    DType.float8_e5m2: "tensor(float8e5m2)",
    DType.float8_e5m2fnuz: "tensor(float8e5m2fnuz)",
    DType.float8_e8m0fnu: "tensor(float8e8m0)",
    DType.float4_e2m1fn: "tensor(float4e2m1)",
    DType.int4: "tensor(int4)",
    DType.uint4: "tensor(uint4)",
    DType.int2: "tensor(int2)",
    DType.uint2: "tensor(uint2)",
}


@functools.lru_cache(maxsize=None)
def _constraints(op_type: str, opset: int):
    """(inputs, outputs, allowed per type parameter) of the op's schema, or None."""
    try:
        schema = onnx.defs.get_schema(op_type, opset, "")
    except Exception:
        return None
    allowed = {c.type_param_str: frozenset(c.allowed_type_strs) for c in schema.type_constraints}
    variadic = onnx.defs.OpSchema.FormalParameterOption.Variadic

    def formals(params):
        return tuple((p.name, p.type_str, p.option == variadic, p.is_homogeneous) for p in params)

    return formals(schema.inputs), formals(schema.outputs), allowed


def _formal(formals: tuple, i: int):
    if i < len(formals):
        return formals[i]
    if formals and formals[-1][2]:  # the variadic last formal takes the rest
        return formals[-1]
    return None


def dtype_of_value(ctx: ImportContext, name: str) -> DType | None:
    """The IR dtype of ONNX value ``name`` as imported so far (None if unknown)."""
    v = ctx.known_value(name)
    if v is not None:
        return dtype_of_array(v)
    t = ctx.env.get(name)
    if t is None and hasattr(ctx, "parent"):
        try:
            t = ctx.tensor(name)
        except Exception:  # not defined: the import reports it
            return None
    return t.type.dtype if t is not None and hasattr(t, "type") else None


class _Binding:
    """Type parameters bound while walking one node's inputs and outputs."""

    def __init__(self, node: onnx.NodeProto, where: str, allowed: dict):
        self.node, self.where, self.allowed = node, where, allowed
        self.bound: dict[str, tuple[str, str]] = {}

    def check(self, role: str, value_name: str, formal, dtype: DType) -> None:
        if formal is None or dtype is None:
            return
        fname, type_str, variadic, homogeneous = formal
        have = _TYPE_STR[dtype]
        label = f"{role} '{value_name}' ({fname})"
        if type_str not in self.allowed:  # a concrete type, such as tensor(int64)
            if type_str.startswith("tensor(") and have != type_str:
                raise DTypeError(f"{self.where}: {label} is {dtype.value}; the ONNX schema requires {_plain(type_str)}")
            return
        allowed = self.allowed[type_str]
        if have not in allowed:
            names = sorted(_plain(t) for t in allowed if t.startswith("tensor("))
            raise DTypeError(f"{self.where}: {label} is {dtype.value}, which the ONNX schema does not allow for "
                             f"{type_str} (allowed: {', '.join(names)})")
        if variadic and not homogeneous:
            return
        first = self.bound.get(type_str)
        if first is None:
            self.bound[type_str] = (have, label)
        elif first[0] != have:
            raise DTypeError(f"{self.where}: type parameter {type_str} is {_plain(first[0])} for {first[1]} but "
                             f"{dtype.value} for {label}; the ONNX schema requires one type")


def _plain(type_str: str) -> str:
    return type_str[len("tensor("):-1] if type_str.startswith("tensor(") else type_str


def check_node_types(ctx: ImportContext, node: onnx.NodeProto, opset: int, where: str, outputs: bool) -> None:
    """The node's input dtypes (and, with ``outputs``, output dtypes) against its schema."""
    spec = _constraints(node.op_type, opset)
    if spec is None:
        return
    ins, outs, allowed = spec
    binding = _Binding(node, where, allowed)
    for i, name in enumerate(node.input):
        if name:
            binding.check("input", name, _formal(ins, i), dtype_of_value(ctx, name))
    if outputs:
        for i, name in enumerate(node.output):
            if name:
                binding.check("output", name, _formal(outs, i), dtype_of_value(ctx, name))


def check_declared(ctx: ImportContext, graph: onnx.GraphProto, opset: int) -> None:
    """Graph outputs and value_info against the IR's types."""
    producer = {o: n for n in graph.node for o in n.output if o}
    for kind, infos in (("graph output", graph.output), ("value_info", graph.value_info)):
        for vi in infos:
            if not vi.type.HasField("tensor_type"):
                continue
            _check_one(ctx, kind, vi, producer.get(vi.name), opset)


def _check_one(ctx: ImportContext, kind: str, vi: onnx.ValueInfoProto, node, opset: int) -> None:
    name = vi.name
    if ctx.known_value(name) is None and name not in ctx.env:
        return  # not produced here (pruned, or a dangling value_info): nothing to compare
    where = f"{kind} '{name}'" + (f" (output of node '{node.name or node.output[0]}', {node.op_type})" if node is not None else "")
    tt = vi.type.tensor_type
    got = dtype_of_value(ctx, name)
    if tt.elem_type and got is not None:
        want = ONNX_TO_DTYPE.get(tt.elem_type)
        if want != got:
            label = want.value if want is not None else onnx.TensorProto.DataType.Name(tt.elem_type).lower()
            raise DTypeError(f"{where}: declared {label}, but the model computes {got.value} "
                             "(load with strict=False to take the computed type)")
    if not tt.HasField("shape"):
        return
    declared = tuple(onnx_dim(d) for d in tt.shape.dim)
    v = ctx.known_value(name)
    shape: Any = v.shape if v is not None else ctx.env[name].type.shape
    if len(declared) != len(shape):
        raise ShapeError(f"{where}: declared rank {len(declared)} {declared}, but the model computes rank "
                         f"{len(shape)} {tuple(shape)} (load with strict=False to take the computed shape)")
    for i, (d, s) in enumerate(zip(declared, shape)):
        if isinstance(d, int) and isinstance(s, int) and d != s:
            raise ShapeError(f"{where}: declared shape {declared}, but the model computes {tuple(shape)} "
                             f"(dim {i}; load with strict=False to take the computed shape)")
