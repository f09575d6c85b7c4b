"""The typed IR: dtypes, TensorType, Value, Node, Graph; verifier; JSON I/O."""
from irflow.ir.dtypes import DType, as_dtype
from irflow.ir.graph import Graph, Node, Value, load
from irflow.ir import verify as _verify  # noqa: F401  (registers Graph.verify's verifier)
from irflow.ir.types import Dim, TensorType

__all__ = ["DType", "as_dtype", "TensorType", "Dim", "Value", "Node", "Graph", "load"]
