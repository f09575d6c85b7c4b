"""What every ONNX lowering works with: the opset range, the dtype table and ``LoweringContext``.

Split from ``export.py`` so the lowerings (``lowering/<family>.py``) import this module and
``export.py`` imports the lowerings, with no cycle between them.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from irflow.errors import ExecutorError
from irflow.ir.dtypes import DType
from irflow.ir.graph import Graph, Node, Value
from irflow.ir.types import TensorType

# Opset 21 is the newest opset that every runtime irflow supports runs (onnxruntime >= 1.18,
# onnx >= 1.16 in pyproject.toml), so an export made here loads on older deployments too.
# Newer opsets up to MAX_OPSET (what the installed onnxruntime 1.31 runs) can be asked for.
# Below 18, Reduce*/Split take axes as attributes; the lowerings target the input form.
DEFAULT_OPSET = 21
MIN_OPSET = 18
MAX_OPSET = min(26, onnx.defs.onnx_opset_version())

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
    DType.uint16: onnx.TensorProto.UINT16,
    DType.uint32: onnx.TensorProto.UINT32,
    DType.uint64: onnx.TensorProto.UINT64,
    DType.bool: onnx.TensorProto.BOOL,
    DType.float8_e4m3fn: onnx.TensorProto.FLOAT8E4M3FN,
    DType.float8_e4m3fnuz: onnx.TensorProto.FLOAT8E4M3FNUZ,
    DType.float8_e5m2: onnx.TensorProto.FLOAT8E5M2,
    DType.float8_e5m2fnuz: onnx.TensorProto.FLOAT8E5M2FNUZ,
    DType.float8_e8m0fnu: onnx.TensorProto.FLOAT8E8M0,
    DType.float4_e2m1fn: onnx.TensorProto.FLOAT4E2M1,
    DType.int4: onnx.TensorProto.INT4,
    DType.uint4: onnx.TensorProto.UINT4,
    DType.int2: onnx.TensorProto.INT2,
    DType.uint2: onnx.TensorProto.UINT2,
}
IRFLOW_DTYPE = {v: k for k, v in ONNX_DTYPE.items()}
# The first opset whose ops take these dtypes (float8: 19, int4/uint4: 21, float4: 23,
# float8e8m0: 24, int2/uint2: 25); to_model exports a graph holding one at that opset at least.
DTYPE_OPSET = {DType.float8_e4m3fn: 19, DType.float8_e4m3fnuz: 19, DType.float8_e5m2: 19, DType.float8_e5m2fnuz: 19,
               DType.int4: 21, DType.uint4: 21, DType.float4_e2m1fn: 23, DType.float8_e8m0fnu: 24, DType.int2: 25,
               DType.uint2: 25}

_SMALL_CONST = 64  # constants up to this many elements are shared between lowerings by value


class LoweringContext:
    """What a lowering may do: emit ONNX nodes, add constants, make fresh names.

    ``ctx.node`` is the IR node being lowered, ``ctx.opset`` the target opset (a lowering may
    choose ONNX ops by it), ``ctx.types`` every IR value's TensorType.
    """

    def __init__(self, graph: Graph, opset: int):
        self.graph = graph
        self.opset = opset
        self.types = graph.value_types()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.node: Node | None = None
        self._names: set[str] = set(self.types) | {n.name for n in graph.nodes if n.name}
        self._node_names: set[str] = set()
        self._const_cache: dict[tuple, str] = {}
        self._emitted_for_node = 0
        # set by a lowering that leaves ONNX nodes unused (a scan written as ONNX LSTM reads
        # the projection's inputs, not its result): the export then drops unused nodes
        self.rnn_fused = False

    def begin(self, node: Node) -> None:
        """Start lowering ``node`` (names made from now on are derived from its name)."""
        self.node = node
        self._emitted_for_node = 0

    @property
    def _prefix(self) -> str:
        if self.node is None:
            return self.graph.name
        return self.node.name or self.node.outputs[0].name

    def fresh(self, base: str, taken: set[str] | None = None) -> str:
        """``base``, or ``base_<n>`` if taken; reserved at once."""
        taken = self._names if taken is None else taken
        name, n = base, 1
        while name in taken:
            name = f"{base}_{n}"
            n += 1
        taken.add(name)
        return name

    def emit(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | int = 1, **attrs: Any) -> list[str]:
        """Add one ONNX node; ``outputs`` are names or a count of fresh names. Returns the names."""
        if isinstance(outputs, int):
            outputs = [self.fresh(f"{self._prefix}/{op_type.lower()}") for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=self.fresh(f"{self._prefix}/{op_type}", self._node_names), **attrs))
        self._emitted_for_node += 1
        return list(outputs)

    def const(self, value: np.ndarray, name: str = "const") -> str:
        """Add an initializer holding ``value``; return its name. Small equal constants are shared."""
        arr = np.asarray(value)
        key = None
        if arr.size <= _SMALL_CONST:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            hit = self._const_cache.get(key)
            if hit is not None:
                return hit
        nm = self.fresh(f"{self._prefix}/{name}")
        self.initializers.append(numpy_helper.from_array(arr, nm))
        if key is not None:
            self._const_cache[key] = nm
        return nm

    def scalar(self, value: Any, dtype: DType) -> str:
        """A rank-0 constant of ``dtype`` (an IR DType)."""
        return self.const(np.asarray(value, dtype=dtype.numpy), "scalar")

    def finish_node(self) -> None:
        """Name the ONNX node of a one-node lowering exactly as the IR node (``matmul_3``)."""
        if self._emitted_for_node == 1 and self.node is not None and self.node.name:
            self.nodes[-1].name = self.node.name


def tensor_type_proto(name: str, t: TensorType) -> onnx.ValueInfoProto:
    """A ValueInfoProto for an IR type: int dims -> dim_value, symbols -> dim_param, None -> unknown."""
    return helper.make_tensor_value_info(name, ONNX_DTYPE[t.dtype], list(t.shape))


def value_info(v: Value) -> onnx.ValueInfoProto:
    return tensor_type_proto(v.name, v.type)


def check_opset(opset: int) -> int:
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExecutorError(f"ONNX export supports opsets {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET}); got {opset!r}")
    return opset
