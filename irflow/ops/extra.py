"""Ops that ONNX import needs beyond the core op set, where no reasonable decomposition exists.

- ``asin``, ``acos``, ``atan``: inverse trigonometry (no identity over the core ops gives them).
- ``bitwise_and/or/xor/not``, ``bit_shift_left/right``: integer bit ops (not differentiable).
- ``bit_cast``: ONNX BitCast, the same bits read as another dtype of the same width.
- ``gather_elements`` / ``scatter_elements``: ONNX GatherElements / ScatterElements (=
  ``np.take_along_axis`` / ``np.put_along_axis``); each is the other's adjoint.
- ``scatter_nd``: ONNX ScatterND with reduction none/mul/max/min (``add`` is the core
  ``scatter_add``).
- ``topk``: ONNX TopK with a static k: (values, int64 indices), ties broken by lower index.
"""
from __future__ import annotations

from irflow.errors import DTypeError, IrflowError, ShapeError
from irflow.ir.dtypes import DType, as_dtype
from irflow.ir.types import TensorType
import numpy as np

from irflow.ir.dtypes import dtype_of_array
from irflow.ops.common import binary_op, bind, elementwise_rule, norm_axes, unary_op, unbroadcast
from irflow.ops.batching import LOOP, LOOP_THIS, common_axis, reduction_rule, shift_axis, to_front
from irflow.ops.registry import Attr, defbatch, defop, defvjp
from irflow.ops.shape_index import scatter_nd_batch


def _sqrt_one_minus_sq(x):
    return bind("sqrt", bind("sub", bind("ones_like", x), bind("mul", x, x)))


asin = unary_op("asin", lambda g, x, *, out: bind("div", g, _sqrt_one_minus_sq(x)),
                doc="Elementwise arcsine.\n\n>>> irf.asin(x)  # doctest: +SKIP")
acos = unary_op("acos", lambda g, x, *, out: bind("neg", bind("div", g, _sqrt_one_minus_sq(x))),
                doc="Elementwise arccosine.\n\n>>> irf.acos(x)  # doctest: +SKIP")
atan = unary_op("atan", lambda g, x, *, out: bind("div", g, bind("add", bind("ones_like", x), bind("mul", x, x))),
                doc="Elementwise arctangent.\n\n>>> irf.atan(x)  # doctest: +SKIP")

bitwise_and = binary_op("bitwise_and", kinds="int", differentiable=False, doc="Bitwise and of integers.\n\n>>> irf.bitwise_and(a, b)  # doctest: +SKIP")
bitwise_or = binary_op("bitwise_or", kinds="int", differentiable=False, doc="Bitwise or of integers.\n\n>>> irf.bitwise_or(a, b)  # doctest: +SKIP")
bitwise_xor = binary_op("bitwise_xor", kinds="int", differentiable=False, doc="Bitwise xor of integers.\n\n>>> irf.bitwise_xor(a, b)  # doctest: +SKIP")
bitwise_not = unary_op("bitwise_not", kinds="int", differentiable=False, doc="Bitwise not of integers.\n\n>>> irf.bitwise_not(a)  # doctest: +SKIP")
bit_shift_left = binary_op("bit_shift_left", kinds="int", differentiable=False,
                           doc="x << y for unsigned integers (uint8 ... uint64).\n\n>>> irf.bit_shift_left(a, b)  # doctest: +SKIP")
bit_shift_right = binary_op("bit_shift_right", kinds="int", differentiable=False,
                            doc="x >> y for unsigned integers (uint8 ... uint64).\n\n>>> irf.bit_shift_right(a, b)  # doctest: +SKIP")


# -- bit_cast -----------------------------------------------------------------------------------------

def _bit_cast_type(x: TensorType, dtype) -> TensorType:
    to = as_dtype(dtype)
    if to.bits != x.dtype.bits:
        raise DTypeError(f"bit_cast: {x.dtype.value} ({x.dtype.bits} bits) and {to.value} ({to.bits} bits) "
                         "differ in width; bit_cast keeps the shape, so the widths must be equal")
    return TensorType(dtype=to, shape=x.shape)


# Reinterpreting bits has no derivative (a float's bits as an int jump at every exponent).
defop("bit_cast", _bit_cast_type, attrs={"dtype": Attr("dtype")}, differentiable=False, family="extra", storage=True,
      doc="ONNX BitCast: the same bits read as another dtype of the same width.")
defbatch("bit_cast", elementwise_rule("bit_cast"))  # per element: the batch axis stays where it is


def bit_cast(x, dtype):
    """The bits of ``x`` read as ``dtype``, which must have the same width (ONNX BitCast,
    ``np.ndarray.view``); the shape is unchanged. Not a conversion: see ``irf.cast``.

    >>> irf.bit_cast(irf.tensor(np.float32([1.0, -2.0])), "int32").numpy()
    array([ 1065353216, -1073741824], dtype=int32)
    """
    return bind("bit_cast", x, dtype=as_dtype(dtype))


# -- gather_elements / scatter_elements ---------------------------------------------------------------

def _check_index(op: str, t: TensorType) -> None:
    if t.dtype not in (DType.int32, DType.int64):
        raise DTypeError(f"{op}: indices must be int32 or int64, got {t.dtype.value}")


def _gather_elements_type(x: TensorType, indices: TensorType, axis: int) -> TensorType:
    _check_index("gather_elements", indices)
    if x.rank != indices.rank:
        raise ShapeError(f"gather_elements: data {x.shape} and indices {indices.shape} must have the same rank")
    norm_axes(axis, x.rank, "gather_elements")
    return TensorType(dtype=x.dtype, shape=indices.shape)


defop("gather_elements", _gather_elements_type, inputs=2, attrs={"axis": Attr("int", default=0)}, family="extra",
      doc="ONNX GatherElements: out[i][j] = x[idx[i][j]][j] along axis (np.take_along_axis).")
defvjp("gather_elements", lambda g, x, indices, *, out, axis: (
    bind("scatter_elements", bind("zeros_like", x), indices, g, axis=axis, reduction="add"), None))


def _along_axis_batch(op: str):
    """gather_elements / scatter_elements: inputs of one rank, so all get the batch axis (an
    unbatched one broadcast) and the axis shifts past it."""

    def rule(inputs, dims, size, *, axis, **attrs):
        xs, d = common_axis(inputs, dims, size)
        return bind(op, *xs, axis=shift_axis(axis, xs[0].type.rank - 1, d, op), **attrs), d

    rule.__name__ = f"batch_{op}"
    return rule


defbatch("gather_elements", _along_axis_batch("gather_elements"))


def gather_elements(x, indices, axis: int = 0):
    """Pick entries of ``x`` along ``axis`` at ``indices`` (same rank as x), as ``np.take_along_axis``.

    >>> irf.gather_elements(irf.tensor([[1.0, 2.0], [3.0, 4.0]]), np.array([[1, 0], [0, 0]]), axis=1)  # doctest: +SKIP
    """
    return bind("gather_elements", x, indices, axis=int(axis))


_REDUCTIONS = ("none", "add", "mul", "max", "min")


def _scatter_elements_type(data: TensorType, indices: TensorType, updates: TensorType, axis: int, reduction: str) -> TensorType:
    _check_index("scatter_elements", indices)
    if reduction not in _REDUCTIONS:
        raise ShapeError(f"scatter_elements: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not (data.rank == indices.rank == updates.rank):
        raise ShapeError(f"scatter_elements: data {data.shape}, indices {indices.shape} and updates {updates.shape} must have one rank")
    if updates.dtype != data.dtype:
        raise DTypeError(f"scatter_elements: updates are {updates.dtype.value} but data is {data.dtype.value}")
    norm_axes(axis, data.rank, "scatter_elements")
    return data


defop("scatter_elements", _scatter_elements_type, inputs=3, family="extra",
      attrs={"axis": Attr("int", default=0), "reduction": Attr("str", default="none")},
      doc="ONNX ScatterElements: data with updates written (or combined) at indices along axis.")


@defvjp("scatter_elements")
def _scatter_elements_vjp(g, data, indices, updates, *, out, axis, reduction):
    g_updates = bind("gather_elements", g, indices, axis=axis)
    if reduction == "add":
        return g, None, g_updates
    if reduction == "none":  # overwritten entries of data get no gradient
        g_data = bind("scatter_elements", g, indices, bind("zeros_like", updates), axis=axis, reduction="none")
        return g_data, None, g_updates
    raise IrflowError(f"differentiation rule for scatter_elements with reduction={reduction!r} not implemented")


defbatch("scatter_elements", _along_axis_batch("scatter_elements"))


def scatter_elements(data, indices, updates, axis: int = 0, reduction: str = "none"):
    """``data`` with ``updates`` put at ``indices`` along ``axis`` (``np.put_along_axis``), or
    combined there with reduction "add", "mul", "max" or "min".

    >>> irf.scatter_elements(irf.tensor(np.zeros((2, 2))), np.array([[1], [0]]), irf.tensor(np.ones((2, 1))), axis=1)  # doctest: +SKIP
    """
    return bind("scatter_elements", data, indices, updates, axis=int(axis), reduction=reduction)


# -- scatter_nd ---------------------------------------------------------------------------------------

def _scatter_nd_type(data: TensorType, indices: TensorType, updates: TensorType, reduction: str) -> TensorType:
    _check_index("scatter_nd", indices)
    if reduction not in _REDUCTIONS:
        raise ShapeError(f"scatter_nd: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    k = indices.shape[-1] if indices.rank else None
    if not isinstance(k, int) or not 1 <= k <= data.rank:
        raise ShapeError(f"scatter_nd: the last dim of indices {indices.shape} must be static and in 1..{data.rank}")
    want = indices.shape[:-1] + data.shape[k:]
    if updates.rank != len(want):
        raise ShapeError(f"scatter_nd: updates must have shape {want}, got {updates.shape}")
    if updates.dtype != data.dtype:
        raise DTypeError(f"scatter_nd: updates are {updates.dtype.value} but data is {data.dtype.value}")
    return data


defop("scatter_nd", _scatter_nd_type, inputs=3, family="extra", attrs={"reduction": Attr("str", default="none")},
      doc="ONNX ScatterND: data with updates written (or combined) at index tuples.")


@defvjp("scatter_nd")
def _scatter_nd_vjp(g, data, indices, updates, *, out, reduction):
    g_updates = bind("gather_nd", g, indices)
    if reduction == "add":
        return g, None, g_updates
    if reduction == "none":
        return bind("scatter_nd", g, indices, bind("zeros_like", updates), reduction="none"), None, g_updates
    raise IrflowError(f"differentiation rule for scatter_nd with reduction={reduction!r} not implemented")


defbatch("scatter_nd", scatter_nd_batch("scatter_nd"))


def scatter_nd(data, indices, updates, reduction: str = "none"):
    """``data`` with ``updates`` written at the index tuples in the last axis of ``indices``
    (``out[tuple(indices[i])] = updates[i]``), or combined with "add", "mul", "max", "min".

    >>> irf.scatter_nd(irf.tensor(np.zeros(4)), np.array([[1], [3]]), irf.tensor([5.0, 6.0]))  # doctest: +SKIP
    """
    return bind("scatter_nd", data, indices, updates, reduction=reduction)


# -- topk ---------------------------------------------------------------------------------------------

def _topk_type(x: TensorType, k: int, axis: int, largest: bool, sorted: bool) -> tuple[TensorType, TensorType]:
    a = norm_axes(axis, x.rank, "topk")[0]
    d = x.shape[a]
    if k < 0 or (isinstance(d, int) and k > d):
        raise ShapeError(f"topk: k={k} must be in 0..{d} (axis {axis} of {x.shape})")
    shape = x.shape[:a] + (k,) + x.shape[a + 1:]
    return TensorType(dtype=x.dtype, shape=shape), TensorType(dtype=DType.int64, shape=shape)


defop("topk", _topk_type, inputs=1, family="extra",
      attrs={"k": Attr("int"), "axis": Attr("int", default=-1), "largest": Attr("bool", default=True),
             "sorted": Attr("bool", default=True)},
      doc="ONNX TopK with a static k: the k largest (or smallest) entries along axis and their indices.")


@defvjp("topk")
def _topk_vjp(g, x, *, out, k, axis, largest, sorted):
    g_values = g[0]
    return bind("scatter_elements", bind("zeros_like", x), out[1], g_values, axis=axis, reduction="add")


defbatch("topk", reduction_rule("topk", key="axis", keeps_rank=True))


def topk(x, k: int, axis: int = -1, largest: bool = True, sorted: bool = True):
    """The ``k`` largest (or smallest) entries of ``x`` along ``axis`` and their int64 indices;
    equal values keep the lower index first, as ONNX TopK.

    >>> values, indices = irf.topk(irf.tensor([1.0, 3.0, 2.0]), 2)  # doctest: +SKIP
    """
    return bind("topk", x, k=int(k), axis=int(axis), largest=bool(largest), sorted=bool(sorted))


# -- reshape_dynamic ----------------------------------------------------------------------------------

def _reshape_dynamic_type(x: TensorType, shape: TensorType, dims, allowzero: bool = False) -> TensorType:
    if shape.dtype is not DType.int64 or shape.rank != 1:
        raise DTypeError(f"reshape_dynamic: shape must be a 1-D int64 tensor, got {shape}")
    if isinstance(shape.shape[0], int) and shape.shape[0] != len(dims):
        raise ShapeError(f"reshape_dynamic: dims {dims} do not match the length {shape.shape[0]} of the shape tensor")
    return TensorType(dtype=x.dtype, shape=tuple(dims))


defop("reshape_dynamic", _reshape_dynamic_type, inputs=2, family="extra", storage=True,
      attrs={"dims": Attr("any"), "allowzero": Attr("bool", default=False)},
      doc="ONNX Reshape with a shape read at run time (0 copies a dim unless allowzero, -1 infers one); "
          "`dims` is what is known of it at build time.")
defvjp("reshape_dynamic", lambda g, x, shape, *, out, dims, allowzero: (bind("reshape_like", g, x), None))

_ZERO = np.zeros(1, np.int64)
_ONE = np.ones(1, np.int64)


# These ops' attr is called `dims`, like the rule's second parameter: their rules take
# (*args, **attrs), so the attr does not collide with it.

@defbatch("reshape_dynamic")
def _reshape_dynamic_batch(*args, **attrs):
    (x, shape), (dx, ds), size = args
    if ds is not None:  # a target shape per example: a data-dependent shape
        return LOOP_THIS
    x = to_front(x, dx)
    # x's batch in front and a 0 (ONNX: copy the input's dim) before the target: the batch stays.
    # With allowzero a 0 means an empty axis, so the batch size is read from x instead.
    lead = bind("constant", value=_ZERO) if not attrs.get("allowzero") else bind(
        "slice", bind("shape_of", x), starts=(0,), ends=(1,), axes=(0,), steps=None)
    target = bind("concat", lead, shape, axis=0)
    return bind("reshape_dynamic", x, target, dims=(size,) + tuple(attrs["dims"]), allowzero=attrs.get("allowzero", False)), 0


def reshape_dynamic(x, shape, dims, allowzero: bool = False):
    """Reshape ``x`` to the int64 tensor ``shape`` read at run time (ONNX Reshape: 0 copies the
    input's dim, or with ``allowzero`` is a 0-size dim; -1 infers one). ``dims`` gives the
    result's dims as far as known (ints, symbols, None); ONNX import uses it for reshapes whose
    target has several symbolic dims.

    >>> irf.reshape_dynamic(x, irf.shape_of(y), dims=("batch", "seq"))  # doctest: +SKIP
    """
    return bind("reshape_dynamic", x, shape, dims=tuple(dims), allowzero=bool(allowzero))


# -- expand_dynamic / full_dynamic --------------------------------------------------------------------

def _dims_type_check(op: str, shape: TensorType, dims) -> None:
    if shape.dtype is not DType.int64 or shape.rank != 1:
        raise DTypeError(f"{op}: shape must be a 1-D int64 tensor, got {shape}")
    if isinstance(shape.shape[0], int) and shape.shape[0] != len(dims):
        raise ShapeError(f"{op}: dims {dims} do not match the length {shape.shape[0]} of the shape tensor")


def _expand_dynamic_type(x: TensorType, shape: TensorType, dims) -> TensorType:
    _dims_type_check("expand_dynamic", shape, dims)
    if len(dims) < x.rank:
        raise ShapeError(f"expand_dynamic: dims {dims} have a lower rank than x {x.shape}")
    return TensorType(dtype=x.dtype, shape=tuple(dims))


defop("expand_dynamic", _expand_dynamic_type, inputs=2, family="extra", attrs={"dims": Attr("any")},
      doc="ONNX Expand with a shape read at run time; `dims` (the result's dims as known at build time) must have the result's rank.")
defvjp("expand_dynamic", lambda g, x, shape, *, out, dims: (unbroadcast(g, out.type, x), None))


@defbatch("expand_dynamic")
def _expand_dynamic_batch(*args, **attrs):
    (x, shape), (dx, ds), size = args
    if ds is not None:  # a target shape per example: a data-dependent shape
        return LOOP_THIS
    out_dims = tuple(attrs["dims"])
    x = to_front(x, dx)
    k = len(out_dims) - (x.type.rank - 1)
    if k:  # size-1 axes after the batch up to the result's rank: broadcasting then pairs axes right
        x = bind("expand_dims", x, axes=tuple(range(1, 1 + k)))
    target = bind("concat", bind("constant", value=_ONE), shape, axis=0)  # Expand keeps the batch for a 1
    return bind("expand_dynamic", x, target, dims=(size,) + out_dims), 0


def expand_dynamic(x, shape, dims):
    """Broadcast ``x`` against the int64 tensor ``shape`` read at run time (ONNX Expand); ``dims``
    are the result's dims as far as known (ints, symbols, None), one per result axis.

    >>> irf.expand_dynamic(bias, irf.shape_of(x), dims=("batch", 4))  # doctest: +SKIP
    """
    return bind("expand_dynamic", x, shape, dims=tuple(dims))


def _full_dynamic_type(shape: TensorType, value, dims) -> TensorType:
    _dims_type_check("full_dynamic", shape, dims)
    if not isinstance(value, np.ndarray) or value.size != 1:
        raise ShapeError("full_dynamic: value must be a one-element array")
    return TensorType(dtype=dtype_of_array(value), shape=tuple(dims))


defop("full_dynamic", _full_dynamic_type, inputs=1, differentiable=False, family="extra",
      attrs={"value": Attr("array"), "dims": Attr("any")},
      doc="ONNX ConstantOfShape: a tensor of the run-time shape `shape` filled with `value`.")
# A batched shape gives each example its own shape: data-dependent, so a loop over the batch.
defbatch("full_dynamic", LOOP)


def full_dynamic(shape, value, dims):
    """A tensor of the run-time shape ``shape`` (1-D int64) filled with ``value`` (a one-element
    array, which also gives the dtype), as ONNX ConstantOfShape.

    >>> irf.full_dynamic(irf.shape_of(x), np.zeros(1, "float32"), dims=("batch", 4))  # doctest: +SKIP
    """
    return bind("full_dynamic", shape, value=np.asarray(value).reshape(1), dims=tuple(dims))


__all__ = ["expand_dynamic", "full_dynamic", "reshape_dynamic", "asin", "acos", "atan", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bit_shift_left",
           "bit_shift_right", "bit_cast", "gather_elements", "scatter_elements", "scatter_nd", "topk"]
