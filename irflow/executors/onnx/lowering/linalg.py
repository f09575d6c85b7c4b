"""ONNX lowerings of matmul and einsum."""
from __future__ import annotations

from irflow.executors.onnx.lowering import simple

simple("matmul", "MatMul")
