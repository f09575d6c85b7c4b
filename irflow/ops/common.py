"""Shared type-rule helpers and factories, so that simple ops are a line or two each.

Broadcasting follows NumPy, extended to symbolic dims: equal dims stay, a 1 yields to the
other dim, a symbol against an int n > 1 gives n, two different symbols give None (unknown).
Dtype promotion: equal dtypes stay; floats widen (float16/bfloat16 < float32 < float64); ints
widen as NumPy; bool yields to any other type; int mixed with float is a DTypeError.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from irflow.errors import DTypeError, ShapeError, UnsupportedOpError
from irflow.ir.dtypes import DType
from irflow.ir.types import Dim, TensorType
from irflow.ops.dispatch import bind
from irflow.ops.registry import Attr, BatchRule, VJPRule, defbatch, defop, defvjp

FLOAT_RANK = {DType.float16: 1, DType.bfloat16: 1, DType.float32: 2, DType.float64: 3}


def broadcast_dims(a: Dim, b: Dim) -> Dim:
    if a == b:
        return a
    if a == 1:
        return b
    if b == 1:
        return a
    if isinstance(a, int) and isinstance(b, int):
        raise ShapeError(f"dims {a} and {b} do not broadcast")
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    return None  # two different symbols, or a symbol and None


def broadcast_shape(*shapes: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """NumPy broadcasting of several shapes, symbol-aware.

    >>> broadcast_shape(("batch", 1), (4,))
    ('batch', 4)
    """
    if len(shapes) == 2 and shapes[0] == shapes[1]:  # the common case, and the cheap one
        return tuple(shapes[0])
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = [1] * rank
    for s in shapes:
        padded = (1,) * (rank - len(s)) + tuple(s)
        try:
            out = [broadcast_dims(a, b) for a, b in zip(out, padded)]
        except ShapeError:
            raise ShapeError(f"shapes {' and '.join(str(tuple(x)) for x in shapes)} do not broadcast") from None
    return tuple(out)


def promote_dtype(*dtypes: DType) -> DType:
    """The common dtype of ``dtypes``, or DTypeError for int mixed with float.

    >>> promote_dtype(DType.float32, DType.float64)
    <DType.float64: 'float64'>
    """
    if len(dtypes) == 2 and dtypes[0] is dtypes[1]:
        return dtypes[0]
    ds = [d for d in dict.fromkeys(dtypes) if d is not DType.bool] or [DType.bool]
    if len(ds) == 1:
        return ds[0]
    floats = [d for d in ds if d.is_float]
    if floats and len(floats) != len(ds):
        raise DTypeError(
            f"cannot mix {' and '.join(d.value for d in dtypes)}: cast one side explicitly (irf.cast)"
        )
    if floats:
        top = max(FLOAT_RANK[d] for d in floats)
        if top == 1:  # float16 with bfloat16: neither holds the other
            return DType.float32
        return next(d for d in floats if FLOAT_RANK[d] == top)
    common = np.result_type(*(d.value for d in ds))
    if common.kind == "f":  # uint64 with a signed int: NumPy gives float64, no int holds both
        raise DTypeError(
            f"cannot mix {' and '.join(d.value for d in dtypes)}: no integer dtype holds both; "
            "cast one side explicitly (irf.cast)"
        )
    return DType(common.name)


def scatter_back(g: Any, x: Any, apply: Callable[[Any], Any]) -> Any:
    """The VJP of an op whose every output element copies one element of ``x`` (slice, tile,
    wrap padding, ...), whatever its shape arguments. ``apply`` is the op with its arguments;
    applied to the flat positions of x (``range(x.size)`` shaped like x) it tells where each
    output element came from, and ``scatter_add`` sums the cotangent there. All IR ops, so the
    gradient exports, and works for shapes known only at run time."""
    n = bind("reduce_prod", bind("shape_of", x), axes=None, keepdims=False)
    positions = bind("reshape_like", bind("range", np.zeros((), np.int64), n, np.ones((), np.int64)), x)
    source = bind("reshape", apply(positions), shape=(-1, 1))
    flat = bind("reshape", bind("zeros_like", x), shape=(-1,))
    total = bind("scatter_add", flat, source, bind("reshape", g, shape=(-1,)))
    return bind("reshape_like", total, x)


def unbroadcast(g: Any, from_type: TensorType, to: Any) -> Any:
    """Sum a broadcast gradient ``g`` (of ``from_type``) back down to the shape of ``to``
    (the primal input tensor, or just its TensorType when its dims are static).

    Leading axes that broadcasting added are summed away; axes where ``to`` has size 1 are
    summed with keepdims. A symbolic dim broadcast against another size might be 1 only at
    run time: ``sum_to_like`` decides those axes from the real shapes. Every broadcasting
    VJP rule uses this one helper, as JAX's ``_unbroadcast``.
    """
    to_type = to if isinstance(to, TensorType) else to.type
    if from_type.shape == to_type.shape:
        return g
    lead = from_type.rank - to_type.rank
    if lead:
        g = bind("reduce_sum", g, axes=tuple(range(lead)), keepdims=False)
    ones = tuple(i for i, d in enumerate(to_type.shape) if d == 1 and from_type.shape[lead + i] != 1)
    if ones:
        g = bind("reduce_sum", g, axes=ones, keepdims=True)
    # A symbol or unknown dim broadcast against another size may be 1 at run time (then its
    # gradient must be summed) or not: sum_to_like decides when the sizes are known.
    unsure = tuple(i for i, d in enumerate(to_type.shape) if not isinstance(d, int) and d != from_type.shape[lead + i])
    if unsure:
        if isinstance(to, TensorType):
            raise UnsupportedOpError(
                f"cannot sum a gradient of type {from_type} down to {to_type}: pass the tensor, not its type, "
                "so the sizes of its symbolic dims can be read at run time"
            )
        g = bind("sum_to_like", g, to, axes=unsure)
    return g


# -- factories ------------------------------------------------------------------------------

def _make_fn(name: str, nin: int, doc: str) -> Callable:
    if nin == 1:
        def fn(x):
            return bind(name, x)
    else:
        def fn(x, y):
            return bind(name, x, y)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def unary_op(
    name: str,
    vjp: VJPRule | None = None,
    *,
    kinds: str = "float",
    differentiable: bool = True,
    out_dtype: DType | None = None,
    doc: str = "",
) -> Callable:
    """Declare an elementwise unary op and return its public function.

    ``kinds`` says which dtypes it accepts: "float", "numeric" (int or float), "bool" or "any".
    """

    def type_rule(x: TensorType) -> TensorType:
        _check_kind(name, x.dtype, kinds)
        if out_dtype is None or out_dtype is x.dtype:
            return x  # types are frozen, so the input's type object can be shared
        return TensorType(dtype=out_dtype, shape=x.shape)

    defop(name, type_rule, inputs=1, differentiable=differentiable, family="elementwise", doc=doc)
    if vjp is not None:
        defvjp(name, vjp)
    _default_batch_rule(name)
    return _make_fn(name, 1, doc or f"Elementwise {name}.\n\n>>> irf.{name}(x)  # doctest: +SKIP")


def binary_op(
    name: str,
    vjp: VJPRule | None = None,
    *,
    kinds: str = "numeric",
    differentiable: bool = True,
    out_dtype: DType | None = None,
    doc: str = "",
) -> Callable:
    """Declare a broadcasting elementwise binary op and return its public function."""

    def type_rule(x: TensorType, y: TensorType) -> TensorType:
        dtype = promote_dtype(x.dtype, y.dtype)
        _check_kind(name, dtype, kinds)
        dtype = out_dtype or dtype
        shape = broadcast_shape(x.shape, y.shape)
        for t in (x, y):  # reuse an input's (frozen) type object when it already fits
            if t.dtype is dtype and t.shape == shape:
                return t
        return TensorType(dtype=dtype, shape=shape)

    defop(name, type_rule, inputs=2, differentiable=differentiable, family="elementwise", doc=doc)
    if vjp is not None:
        defvjp(name, vjp)
    _default_batch_rule(name)
    return _make_fn(name, 2, doc or f"Elementwise {name} with NumPy broadcasting.\n\n>>> irf.{name}(x, y)  # doctest: +SKIP")


def _default_batch_rule(name: str) -> None:
    """Elementwise ops made by the factories batch as one op on the whole batch."""
    defbatch(name, elementwise_rule(name))


# -- batching helpers the factories need (the rest are in irflow.ops.batching) ---------------------
def rank_of(x: Any, d: Dim) -> int:
    """The rank of one example of ``x`` (its rank without the batch axis)."""
    return x.type.rank - (d is not None)


def move_axis(x: Any, src: int, dst: int) -> Any:
    """``x`` with axis ``src`` moved to position ``dst`` (a transpose; nothing when equal)."""
    r = x.type.rank
    src, dst = src % r, dst % r
    if src == dst:
        return x
    perm = [i for i in range(r) if i != src]
    perm.insert(dst, src)
    return bind("transpose", x, perm=tuple(perm))


def to_front(x: Any, d: Dim) -> Any:
    """A batched ``x`` with its batch axis moved to 0 (unbatched values pass through)."""
    return x if d is None or d == 0 else move_axis(x, d, 0)


def align_front(inputs: Sequence[Any], dims: Sequence[Dim]) -> list:
    """Batched inputs moved to axis 0 and padded with size-1 axes after it to the largest
    example rank, so NumPy broadcasting from the right pairs example axes correctly; unbatched
    inputs are left as they are (they broadcast against the batch axis)."""
    ranks = [rank_of(x, d) for x, d in zip(inputs, dims)]
    r = max(ranks)
    out = []
    for x, d, k in zip(inputs, dims, ranks):
        if d is not None:
            x = to_front(x, d)
            if k < r:
                x = bind("expand_dims", x, axes=tuple(range(1, 1 + r - k)))
        out.append(x)
    return out


def elementwise_rule(op: str) -> BatchRule:
    """The rule of a broadcasting elementwise op (any number of inputs): one op on the batch."""

    def rule(inputs, dims, size, **attrs):
        d0 = dims[0]
        if all(d == d0 for d in dims) and len({rank_of(x, d) for x, d in zip(inputs, dims)}) == 1:
            return bind(op, *inputs, **attrs), d0  # all batched alike: nothing to move
        return bind(op, *align_front(inputs, dims), **attrs), 0

    rule.__name__ = f"batch_{op}"
    return rule


def _check_kind(op: str, dtype: DType, kinds: str) -> None:
    ok = {
        "float": dtype.is_float,
        "numeric": dtype is not DType.bool,
        "int": dtype.is_int,
        "bool": dtype is DType.bool,
        "any": True,
    }[kinds]
    if not ok:
        raise DTypeError(f"{op} takes {kinds} tensors, got {dtype.value}")


def norm_axes(axes: Any, rank: int, op: str) -> tuple[int, ...]:
    """Normalize an axis spec (None, int or tuple, negatives allowed) to sorted positive ints."""
    if axes is None:
        return tuple(range(rank))
    if isinstance(axes, int):
        axes = (axes,)
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise ShapeError(f"{op}: axis {a} is out of range for rank {rank}")
        out.append(a % rank if rank else 0)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: repeated axis in {tuple(axes)}")
    return tuple(sorted(out))


__all__ = ["Attr", "bind", "broadcast_shape", "promote_dtype", "unbroadcast", "unary_op", "binary_op", "norm_axes"]
