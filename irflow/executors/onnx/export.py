"""Lowering an IR Graph to an ONNX ModelProto (standard domain only).

``to_model`` walks the nodes once and asks each op's lowering (``LOWERINGS``) to emit ONNX
nodes through a ``LoweringContext``. Symbolic dims become ``dim_param``; initializers stay
initializers.
"""
from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from irflow.errors import UnsupportedOpError
from irflow.executors.onnx.lowering import LOWERINGS
from irflow.ir.dtypes import DType
from irflow.ir.graph import Graph, Value

DEFAULT_OPSET = 21  # ORT 1.31 runs up to 26; 21 keeps the export loadable by older runtimes too
ONNX_DTYPE = {
    DType.float16: onnx.TensorProto.FLOAT16,
    DType.bfloat16: onnx.TensorProto.BFLOAT16,
    DType.float32: onnx.TensorProto.FLOAT,
    DType.float64: onnx.TensorProto.DOUBLE,
    DType.int8: onnx.TensorProto.INT8,
    DType.int16: onnx.TensorProto.INT16,
    DType.int32: onnx.TensorProto.INT32,
    DType.int64: onnx.TensorProto.INT64,
    DType.uint8: onnx.TensorProto.UINT8,
    DType.bool: onnx.TensorProto.BOOL,
}


class LoweringContext:
    """What a lowering may do: emit ONNX nodes, add constants, make fresh names."""

    def __init__(self, graph: Graph, opset: int):
        self.graph = graph
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names = set(graph.value_types())
        self._counter = itertools.count()
        self._node_prefix = graph.name

    def fresh(self, base: str) -> str:
        name = base
        while name in self._names:
            name = f"{base}_{next(self._counter)}"
        self._names.add(name)
        return name

    def emit(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | int = 1, **attrs: Any) -> list[str]:
        """Add one ONNX node; ``outputs`` are names or a count of fresh names. Returns the names."""
        if isinstance(outputs, int):
            outputs = [self.fresh(f"{self._node_prefix}_{op_type.lower()}") for _ in range(outputs)]
        self.nodes.append(
            helper.make_node(op_type, list(inputs), list(outputs), name=self.fresh(f"{op_type}_{outputs[0]}"), **attrs)
        )
        return list(outputs)

    def const(self, value: np.ndarray, name: str = "const") -> str:
        """Add an initializer holding ``value``; return its name."""
        nm = self.fresh(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), nm))
        return nm

    def scalar(self, value: Any, dtype: DType) -> str:
        return self.const(np.asarray(value, dtype=dtype.numpy), "scalar")


def value_info(v: Value) -> onnx.ValueInfoProto:
    dims = [d if d is not None else "" for d in v.type.shape]
    shape = [None if d == "" else d for d in dims]
    return helper.make_tensor_value_info(v.name, ONNX_DTYPE[v.type.dtype], shape)


def to_model(graph: Graph, *, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Lower ``graph`` to an ONNX model.

    >>> model = to_model(g); onnx.checker.check_model(model, full_check=True)   # doctest: +SKIP
    """
    missing = sorted({n.op for n in graph.nodes if n.op not in LOWERINGS})
    if missing:
        raise UnsupportedOpError(f"graph {graph.name!r}: no ONNX lowering for op(s) {', '.join(missing)}")
    ctx = LoweringContext(graph, opset)
    for node in graph.nodes:
        LOWERINGS[node.op](ctx, node, list(node.inputs), [v.name for v in node.outputs])
    inits = [numpy_helper.from_array(np.asarray(a), name) for name, a in graph.initializers.items()]
    onnx_graph = helper.make_graph(
        ctx.nodes,
        graph.name,
        [value_info(v) for v in graph.inputs],
        [value_info(v) for v in graph.outputs],
        initializer=inits + ctx.initializers,
    )
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="irflow")
    model.ir_version = 10
    return model
