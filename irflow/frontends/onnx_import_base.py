"""The shared core of ONNX import: the importer table, the node view importers see, the
import context, dtype mapping and small helpers.

Every ``onnx_import_<family>.py`` file imports this module (and nothing else of the importer)
and registers its importers with ``@importer("OpType", ...)``; ``onnx_import.py`` imports the
families, so the arrows point one way:

    onnx_import_base <- onnx_import_shapes <- onnx_import_nodes <- onnx_import_<family> <- onnx_import

A new family is a new file plus one line in ``onnx_import.py``'s family import.

Import-time constant folding is bounded by ``DEFAULT_FOLD_LIMIT_BYTES`` (settable per call as
``load(..., fold_limit_bytes=...)``): a node is folded only when its constant inputs and its
outputs together fit the limit, and importers that would build a NumPy array from static
sizes (EyeLike, ConstantOfShape, Range, Trilu's mask, Resize's taps) check the same limit and
otherwise emit run-time ops.

>>> from irflow.frontends.onnx_import_base import importer, rank_of   # doctest: +SKIP
>>> @importer("MyOp")                                                 # doctest: +SKIP
... def _my_op(n): return bind("relu", n.input(0))
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import onnx
from onnx import numpy_helper

from irflow.errors import IrflowError, IRValidationError, UnsupportedOpError
from irflow.ir.dtypes import DType
from irflow.ops.builder import GraphBuilder, SymbolicTensor

STANDARD_DOMAINS = ("", "ai.onnx")
MIN_OPSET = 13
# Import-time folding and import-time arrays are limited to this many bytes (inputs plus
# outputs of one node; one array an importer builds). Change it here for every load, or per
# call with load(..., fold_limit_bytes=N). Larger values stay run-time ops in the IR.
DEFAULT_FOLD_LIMIT_BYTES = 1 << 20

ONNX_TO_DTYPE: dict[int, DType] = {
    onnx.TensorProto.FLOAT16: DType.float16,
    onnx.TensorProto.BFLOAT16: DType.bfloat16,
    onnx.TensorProto.FLOAT: DType.float32,
    onnx.TensorProto.DOUBLE: DType.float64,
    onnx.TensorProto.INT8: DType.int8,
    onnx.TensorProto.INT16: DType.int16,
    onnx.TensorProto.INT32: DType.int32,
    onnx.TensorProto.INT64: DType.int64,
    onnx.TensorProto.UINT8: DType.uint8,
    onnx.TensorProto.UINT16: DType.uint16,
    onnx.TensorProto.UINT32: DType.uint32,
    onnx.TensorProto.UINT64: DType.uint64,
    onnx.TensorProto.BOOL: DType.bool,
    onnx.TensorProto.FLOAT8E4M3FN: DType.float8_e4m3fn,
    onnx.TensorProto.FLOAT8E4M3FNUZ: DType.float8_e4m3fnuz,
    onnx.TensorProto.FLOAT8E5M2: DType.float8_e5m2,
    onnx.TensorProto.FLOAT8E5M2FNUZ: DType.float8_e5m2fnuz,
    onnx.TensorProto.FLOAT8E8M0: DType.float8_e8m0fnu,
    onnx.TensorProto.FLOAT4E2M1: DType.float4_e2m1fn,
    onnx.TensorProto.INT4: DType.int4,
    onnx.TensorProto.UINT4: DType.uint4,
    onnx.TensorProto.INT2: DType.int2,
    onnx.TensorProto.UINT2: DType.uint2,
}


def to_dtype(elem_type: int, where: str) -> DType:
    """The IR dtype of an ONNX element type, or UnsupportedOpError naming where it was met."""
    try:
        return ONNX_TO_DTYPE[elem_type]
    except KeyError:
        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() else str(elem_type)
        raise UnsupportedOpError(f"{where}: element type {name} is not an irflow dtype "
                                 f"(irflow has {', '.join(d.value for d in DType)})") from None


# -- node views: what an importer sees ---------------------------------------------------------------

class NodeView:
    """One ONNX node as an importer sees it: IR inputs, attributes, static input values."""

    def __init__(self, ctx: "ImportContext", node: onnx.NodeProto, inputs: list, opset: int):
        self.ctx = ctx
        self.proto = node
        self.op_type = node.op_type
        self.name = node.name or (node.output[0] if node.output else node.op_type)
        self.inputs = inputs  # SymbolicTensor / eager Tensor, or None for an omitted input
        self.input_names = list(node.input)
        self.output_names = list(node.output)
        self.opset = opset
        try:
            self.attrs = {a.name: _attr_value(a) for a in node.attribute}
        except IRValidationError as e:
            raise IRValidationError(f"{self.where()}: {e}") from None

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def input(self, i: int) -> Any:
        """The i-th input tensor, None when omitted."""
        return self.inputs[i] if i < len(self.inputs) else None

    def has_input(self, i: int) -> bool:
        return i < len(self.input_names) and self.input_names[i] != ""

    def run_time(self, i: int) -> bool:
        """Input ``i`` is given and its value is not known at import time (a shape argument the
        importer then passes to a run-time op as an input)."""
        return self.has_input(i) and self.ctx.known_value(self.input_names[i]) is None

    def const(self, i: int, what: str = "") -> np.ndarray | None:
        """The value of input ``i`` if known at import time (None when the input is omitted)."""
        if not self.has_input(i):
            return None
        value = self.ctx.known_value(self.input_names[i])
        if value is None:
            label = what or f"input {i}"
            raise UnsupportedOpError(
                f"{self.where()}: {label} ('{self.input_names[i]}') must be known at import time "
                "(a constant, an initializer or a shape computation); it is computed at run time"
            )
        return value

    def shape_value(self, i: int) -> tuple | None:
        """Input ``i`` as a shape value: a tuple of ints and symbols, or None if unknown."""
        if not self.has_input(i):
            return None
        return self.ctx.shape_value(self.input_names[i])

    def shape_arg(self, i: int, what: str) -> tuple:
        """Input ``i`` as a shape value, or UnsupportedOpError when it is only known at run time."""
        value = self.shape_value(i)
        if value is None:
            raise UnsupportedOpError(
                f"{self.where()}: {what} ('{self.input_names[i]}') must be known at import time "
                "(a constant, an initializer or a shape computation); it is computed at run time"
            )
        return value

    def type(self, i: int):
        t = self.inputs[i]
        return t.type if hasattr(t, "type") else None

    def where(self) -> str:
        return f"node '{self.name}' ({self.op_type}, opset {self.opset})"

    def unsupported(self, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.where()}: {why}")

    def error(self, why: str) -> IRValidationError:
        """A malformed node (an attribute or constant input ONNX would reject): names the node."""
        return IRValidationError(f"{self.where()}: {why}")

    def fits(self, shape: Any, dtype: Any = np.float64) -> bool:
        """Would an array of ``shape`` stay within the import-time size limit?"""
        size = nbytes(shape, dtype)
        return size is not None and size <= self.ctx.fold_limit

    def check_fits(self, shape: Any, dtype: Any, what: str) -> None:
        """UnsupportedOpError when an array the importer must build exceeds the limit."""
        if not self.fits(shape, dtype):
            size = nbytes(shape, dtype)
            raise self.unsupported(
                f"{what} of shape {tuple(shape)} ({'unbounded' if size is None else f'{size:,} bytes'}) would be "
                f"built at import time, above the limit of {self.ctx.fold_limit:,} bytes "
                "(pass fold_limit_bytes=... to irf.onnx.load to raise it)")

    def const_scalar(self, i: int, what: str, integer: bool = True) -> Any:
        """Input ``i`` (known at import time) as one Python int (or float): an error naming the
        node when it has several elements, is not finite, or is not an integer."""
        arr = np.asarray(self.const(i, what))
        if arr.size != 1:
            raise self.error(f"{what} must hold one value, it has shape {arr.shape}")
        v = arr.reshape(-1)[0]
        if arr.dtype.kind == "f" and not np.isfinite(v):
            raise self.error(f"{what} must be finite, got {v}")
        if integer:
            if arr.dtype.kind not in "iub" and float(v) != int(v):
                raise self.error(f"{what} must be an integer, got {v}")
            return int(v)
        return v.item()

    def const_ints(self, i: int, what: str) -> tuple[int, ...]:
        """Input ``i`` (known at import time) as a 1-D list of ints, or an error naming the node."""
        arr = np.asarray(self.const(i, what))
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise self.error(f"{what} must be a 1-D integer tensor, got {arr.dtype} of shape {arr.shape}")
        return tuple(int(v) for v in arr.reshape(-1))

    def attr_ints(self, name: str, length: int, default: Any = None) -> list[int] | None:
        """An ints attribute that must have ``length`` entries (None/default when absent)."""
        v = self.attrs.get(name)
        if v is None or (isinstance(v, list) and not v and default is not None):
            return default
        if not isinstance(v, (list, tuple)) or len(v) != length:
            raise self.error(f"attribute {name}={v!r} must have {length} entries")
        return [int(x) for x in v]

    def axis(self, axis: Any, rank: int, what: str = "axis") -> int:
        """``axis`` normalized into [0, rank), or an IRValidationError naming the node."""
        if rank == 0 or not -rank <= int(axis) < rank:
            raise self.error(f"{what}={axis} is out of range for an input of rank {rank}")
        return int(axis) % rank


def tensor_array(t: onnx.TensorProto, where: str) -> np.ndarray:
    """A TensorProto's values; a tensor whose data does not fit its dims or dtype is an
    IRValidationError naming ``where``."""
    try:
        return numpy_helper.to_array(t)
    except Exception as e:  # ValueError (size vs dims), TypeError/KeyError (data type), ...
        raise IRValidationError(f"{where}: tensor data does not match its dims {list(t.dims)} and type "
                                f"{t.data_type}: {type(e).__name__}: {' '.join(str(e).split())[:200]}") from None


def _attr_value(a: onnx.AttributeProto) -> Any:
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, onnx.TensorProto):
        return tensor_array(v, f"attribute '{a.name}'")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8", "replace") for x in v]
    return v


# -- the import context ------------------------------------------------------------------------------

class ImportContext:
    """The state of one import: the builder, ONNX name -> IR tensor, and import-time values."""

    def __init__(self, name: str, fold_limit: int | None = None):
        self.builder = GraphBuilder(name)
        # bytes: see DEFAULT_FOLD_LIMIT_BYTES (read at construction, so a changed default applies)
        self.fold_limit = DEFAULT_FOLD_LIMIT_BYTES if fold_limit is None else int(fold_limit)
        self.strict = True  # check types against ONNX schemas and declarations (load(strict=False) clears it)
        self.env: dict[str, Any] = {}          # onnx name -> SymbolicTensor (materialized values)
        self.consts: dict[str, np.ndarray] = {}  # foldable values known at import time
        self.weights: dict[str, np.ndarray] = {}  # initializers: known, but kept as graph values
        self.shapes: dict[str, tuple] = {}       # shape values with symbolic dims
        self.onnx_names: dict[str, str] = {}     # IR value name -> the ONNX name it stands for

    # values
    def known_value(self, name: str) -> np.ndarray | None:
        if name in self.consts:
            return self.consts[name]
        if name in self.weights:
            return self.weights[name]
        return None

    def shape_value(self, name: str) -> tuple | None:
        if name in self.shapes:
            return self.shapes[name]
        v = self.known_value(name)
        if v is not None and v.dtype.kind in "iu" and v.ndim <= 1:
            return tuple(int(x) for x in np.atleast_1d(v))
        return None

    def tensor(self, name: str) -> Any:
        """The IR tensor of ONNX value ``name``, making a constant of a folded value on first use."""
        if name == "":
            return None
        t = self.env.get(name)
        if t is not None:
            return t
        if name in self.consts:
            t = self.builder.constant(self.consts[name], name=_ir_name(name))
            self.env[name] = t
            return t
        raise IRValidationError(f"value '{name}' is used before it is defined")

    def define(self, name: str, value: Any) -> None:
        """Bind ONNX value ``name`` to an importer's result (IR tensor, eager Tensor or array)."""
        if name == "":
            return
        if isinstance(value, np.ndarray):
            self.consts[name] = value
        elif hasattr(value, "numpy") and not isinstance(value, SymbolicTensor):
            self.consts[name] = np.asarray(value.numpy())
        elif isinstance(value, SymbolicTensor):
            self.env[name] = value
            self.onnx_names.setdefault(value.name, name)
        else:
            raise IrflowError(f"importer produced a {type(value).__name__} for '{name}'")


def _ir_name(onnx_name: str) -> str:
    return onnx_name if onnx_name else "value"


def initializer_array(init: onnx.TensorProto, where: str = "") -> np.ndarray:
    label = where or f"initializer '{init.name}'"
    to_dtype(init.data_type, label)
    arr = tensor_array(init, label)
    return np.ascontiguousarray(arr).reshape(arr.shape)  # ascontiguousarray would make 0-d arrays 1-d


def onnx_dim(d: onnx.TensorShapeProto.Dimension) -> Any:
    """An ONNX dim as an IR dim: an int, a symbol (``dim_param``) or None."""
    if d.HasField("dim_value"):
        return int(d.dim_value)
    if d.HasField("dim_param") and d.dim_param:
        return d.dim_param
    return None


# -- the importer table ------------------------------------------------------------------------------

IMPORTERS: dict[str, Callable] = {}
# Ops answered from types and shape values alone (Shape, Size), tried before IMPORTERS:
# ``fn(ctx, node, opset) -> bool`` (True: the outputs are defined).
SHAPE_IMPORTERS: dict[str, Callable] = {}
# Ops never folded at import time: random ops (each run draws anew) and control flow (its
# importers need a graph; an If on a known condition is inlined instead).
NOT_FOLDABLE = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial",
                "If", "Loop", "Scan"}


def importer(*op_types: str) -> Callable[[Callable], Callable]:
    """Register an importer ``fn(n: NodeView) -> output(s)`` for one or more ONNX op types.

    >>> @importer("Relu6")                       # doctest: +SKIP
    ... def _relu6(n): return bind("minimum", bind("relu", n.input(0)), scalar(6, n.input(0)))
    """

    def register(fn: Callable) -> Callable:
        for op in op_types:
            IMPORTERS[op] = fn
        return fn

    return register


def shape_importer(*op_types: str) -> Callable[[Callable], Callable]:
    """Register a ``fn(ctx, node, opset) -> bool`` answered from types alone (see SHAPE_IMPORTERS)."""

    def register(fn: Callable) -> Callable:
        for op in op_types:
            SHAPE_IMPORTERS[op] = fn
        return fn

    return register


# -- helpers importers share -------------------------------------------------------------------------

def np_dtype(x: Any) -> np.dtype:
    """The NumPy dtype of an IR tensor or eager tensor."""
    d = x.dtype
    return d.numpy if hasattr(d, "numpy") else np.dtype(d)


def rank_of(x: Any) -> int:
    return len(x.shape)


def scalar(value: Any, like: Any) -> np.ndarray:
    """A 0-d array of ``like``'s dtype: constants in decompositions keep the input's dtype
    (an attribute value the dtype cannot hold, such as 1e30 for int32, is an IRValidationError)."""
    dtype = np_dtype(like)
    try:
        if dtype.kind in "iu" and not (np.iinfo(dtype).min <= value <= np.iinfo(dtype).max):
            raise OverflowError
        return np.asarray(value, dtype=dtype)
    except (OverflowError, ValueError, TypeError):
        raise IRValidationError(f"the value {value!r} does not fit the input's dtype {dtype}") from None


def ints(a: Any) -> tuple[int, ...]:
    """A constant's values as Python ints (any shape, flattened)."""
    return tuple(int(v) for v in np.asarray(a).reshape(-1))


def nbytes(shape: Any, dtype: Any) -> int | None:
    """Bytes of an array of ``shape`` (None when a dim is not a static int); huge shapes do not
    overflow (Python ints)."""
    total = np.dtype(dtype).itemsize
    for d in shape:
        if not isinstance(d, (int, np.integer)) or d < 0:
            return None
        total *= int(d)
    return total
