"""Shape ops that rearrange elements: reshape, transpose, expand_dims, squeeze and broadcasting.

Joining and cutting ops (concat, split, stack, tile, flip) live in ``shape_join.py``, indexing
ops (slice and its adjoint pad, gather, gather_nd, scatter_add, one_hot) in ``shape_index.py``
and ops that create tensors (shape_of, range, full, zeros, ones, full_like, constant) in
``shape_create.py``. The NumPy kernels and ONNX lowerings of all four are in one file each
(``executors/numpy/kernels/shape.py``, ``executors/onnx/lowering/shape.py``).

Type rules accept symbolic and unknown dims wherever the answer can still be known. Three
internal ops exist for VJP rules under symbolic dims, where a static shape attr would not do:
``broadcast_like``, ``reshape_like`` and ``split_like`` read the target sizes from another
tensor at run time (ONNX: ``Shape`` feeding ``Expand`` / ``Reshape`` / ``Split``).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import Dim, TensorType
from irflow.ops.common import bind, norm_axes, unbroadcast
from irflow.ops.batching import (LOOP_THIS, common_axis, elementwise_rule, first_batched, insert_axes, materialize,
                                 rank_of, shift_axes, to_front)
from irflow.ops.registry import Attr, defbatch, defop, defvjp

# Slice bounds that mean "to the end" (ONNX uses INT64_MAX / INT64_MIN the same way).
END = 2**63 - 1
BEGIN_REVERSED = -(2**63)


# -- helpers shared by the shape type rules --------------------------------------------------

def as_int_tuple(values: Any, what: str) -> tuple[int, ...]:
    """A tuple of Python ints from an int or a sequence of ints (NumPy ints too)."""
    if isinstance(values, (int,)) and not isinstance(values, bool):
        return (values,)
    try:
        out = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ShapeError(f"{what} must be an int or a sequence of ints, got {values!r}") from None
    return out


def norm_axis(axis: int, rank: int, op: str) -> int:
    """One axis in [-rank, rank) as a non-negative int, or ShapeError naming ``op``."""
    if not -rank <= axis < rank:
        raise ShapeError(f"{op}: axis {axis} is out of range for rank {rank}")
    return axis % rank


def same_dim(a: Dim, b: Dim, op: str, where: str) -> Dim:
    """Two dims that must be equal: the better-known one, or ShapeError for two different ints."""
    if a == b:
        return a
    if type(a) is int and type(b) is int:
        raise ShapeError(f"{op}: {where}: sizes {a} and {b} differ")
    if type(a) is int:
        return a
    if type(b) is int:
        return b
    return None  # two different symbols (or unknown): equal at run time or the kernel fails


def check_broadcastable(shape: tuple, target: tuple, op: str) -> None:
    """``shape`` must broadcast to exactly ``target`` (NumPy's rule, one direction only)."""
    if len(shape) > len(target):
        raise ShapeError(f"{op}: cannot broadcast shape {shape} to the lower-rank shape {target}")
    for d, t in zip(reversed(shape), reversed(target)):
        if d == 1 or d == t:
            continue
        if type(d) is int and type(t) is int:
            raise ShapeError(f"{op}: cannot broadcast shape {shape} to {target}")


def check_fill_value(op: str, value: float, dtype: DType) -> None:
    """A fill value must fit the dtype exactly: DTypeError for 1.5 as an int, 2 as a bool."""
    if dtype is DType.bool and value not in (0, 1):
        raise DTypeError(f"{op}: value {value!r} is not a bool (0 or 1)")
    if dtype.is_int and (not math.isfinite(value) or value != int(value)):
        raise DTypeError(f"{op}: value {value!r} is not an integer, but the dtype is {dtype.value}")


def _prod(dims) -> int:
    return math.prod(dims)


# -- identity ----------------------------------------------------------------------------------

defop("identity", lambda x: x, family="shape", storage=True)
defvjp("identity", lambda g, x, *, out: g)
defbatch("identity", elementwise_rule("identity"))


def identity(x):
    """Return ``x`` unchanged (a new value in graphs).

    >>> irf.identity(irf.tensor([1.0, 2.0])).numpy()
    array([1., 2.], dtype=float32)
    """
    return bind("identity", x)


# -- reshape -----------------------------------------------------------------------------------

def _reshape_type(x: TensorType, shape) -> TensorType:
    if any(d < -1 for d in shape) or sum(d == -1 for d in shape) > 1:
        raise ShapeError(f"reshape: target shape {shape} may hold sizes >= 0 and at most one -1")
    ints = [d for d in x.shape if type(d) is int]
    unknown = [d for d in x.shape if type(d) is not int]
    have = _prod(ints)  # the known part of the element count
    want = _prod(d for d in shape if d != -1)
    if -1 not in shape:
        if not unknown and have != want:
            raise ShapeError(f"reshape: cannot reshape {x.shape} ({have} elements) to {shape} ({want} elements)")
        return TensorType(dtype=x.dtype, shape=shape)
    if want == 0:
        raise ShapeError(f"reshape: the -1 in {shape} is ambiguous when the other sizes multiply to 0")
    if not unknown or have == 0:  # a 0 dim makes the element count 0 whatever the symbols are
        if have % want:
            raise ShapeError(f"reshape: cannot reshape {x.shape} ({have} elements) to {shape}")
        fill: Dim = have // want
    elif len(unknown) == 1 and isinstance(unknown[0], str) and have == want:
        fill = unknown[0]  # ("batch", 28, 28) -> (-1, 784) keeps "batch"
    else:
        fill = None
    return TensorType(dtype=x.dtype, shape=tuple(fill if d == -1 else d for d in shape))


def _reshape_vjp(g, x, *, out, shape):
    if x.type.is_static:
        return bind("reshape", g, shape=x.type.shape)
    return bind("reshape_like", g, x)


defop("reshape", _reshape_type, attrs={"shape": Attr("ints")}, family="shape", storage=True)
defvjp("reshape", _reshape_vjp)


@defbatch("reshape")
def _reshape_batch(inputs, dims, size, *, shape):
    x = to_front(inputs[0], dims[0])
    if -1 in shape:  # the batch takes the -1 unless the example's -1 can be resolved here
        example = x.type.shape[1:]
        if not all(type(v) is int for v in example) or _prod(d for d in shape if d != -1) == 0:
            return (bind("reshape", x, shape=(size,) + shape), 0) if type(size) is int else LOOP_THIS
        shape = tuple(_prod(example) // _prod(d for d in shape if d != -1) if d == -1 else d for d in shape)
    if type(size) is not int and _prod(shape) == 0:
        return LOOP_THIS  # neither the batch size nor a -1 can be known
    return bind("reshape", x, shape=(size if type(size) is int else -1,) + shape), 0


def reshape(x, shape: Sequence[int]):
    """Give ``x`` a new shape with the same elements (one size may be -1: inferred).

    >>> irf.reshape(irf.tensor(np.arange(6.0)), (2, -1)).shape
    (2, 3)
    """
    return bind("reshape", x, shape=as_int_tuple(shape, "reshape: shape"))


def _reshape_like_type(x: TensorType, like: TensorType) -> TensorType:
    if x.is_static and like.is_static and _prod(x.shape) != _prod(like.shape):
        raise ShapeError(f"reshape_like: cannot reshape {x.shape} to the shape {like.shape} of the other tensor")
    return TensorType(dtype=x.dtype, shape=like.shape)


defop("reshape_like", _reshape_like_type, inputs=2, family="shape", storage=True,
      doc="Reshape x to the run-time shape of `like` (internal: VJP rules under symbolic dims).")
defvjp("reshape_like", lambda g, x, like, *, out: (bind("reshape_like", g, x), None))


@defbatch("reshape_like")
def _reshape_like_batch(inputs, dims, size):
    (x, like), (dx, dl) = inputs, dims
    ref = first_batched(inputs, dims)
    if dl is None:  # one target shape for every example
        target = like.type.shape
        if all(type(v) is int for v in target) and (type(size) is int or _prod(target) > 0):
            return bind("reshape", to_front(x, dx), shape=(size if type(size) is int else -1,) + target), 0
        like = materialize(like, None, size, ref)  # broadcast_to / add: a view on NumPy
    return bind("reshape_like", materialize(x, dx, size, ref), to_front(like, dl)), 0


def reshape_like(x, like):
    """Reshape ``x`` to the shape ``like`` has at run time (used by gradients of symbolic shapes).

    >>> irf.reshape_like(irf.tensor(np.arange(6.0)), irf.tensor(np.zeros((3, 2)))).shape
    (3, 2)
    """
    return bind("reshape_like", x, like)


# -- expand_dims / squeeze / transpose -------------------------------------------------------------

def _expand_dims_type(x: TensorType, axes) -> TensorType:
    rank = x.rank + len(axes)
    ax = norm_axes(axes, rank, "expand_dims")
    it = iter(x.shape)
    return TensorType(dtype=x.dtype, shape=tuple(1 if i in ax else next(it) for i in range(rank)))


defop("expand_dims", _expand_dims_type, attrs={"axes": Attr("ints")}, family="shape", storage=True)
defvjp("expand_dims", lambda g, x, *, out, axes: bind("squeeze", g, axes=norm_axes(axes, out.type.rank, "expand_dims")))


@defbatch("expand_dims")
def _expand_dims_batch(inputs, dims, size, *, axes):
    x, d = inputs[0], dims[0]
    new, b = insert_axes(axes, rank_of(x, d) + len(axes), d, "expand_dims")
    return bind("expand_dims", x, axes=new), b


def expand_dims(x, axis):
    """Insert size-1 axes at ``axis`` (int or tuple; positions in the result).

    >>> irf.expand_dims(irf.tensor(np.zeros((2, 3))), 0).shape
    (1, 2, 3)
    """
    return bind("expand_dims", x, axes=as_int_tuple(axis, "expand_dims: axis"))


def _squeeze_axes(x: TensorType, axes) -> tuple[int, ...]:
    if axes is not None:
        return norm_axes(axes, x.rank, "squeeze")
    if not x.is_static:
        # NumPy drops every axis of size 1 at run time; with symbolic dims the type could not
        # say which, so the graph would lie about its rank.
        raise ShapeError(f"squeeze: axis=None is ambiguous for shape {x.shape} with symbolic dims; pass the axes")
    return tuple(i for i, d in enumerate(x.shape) if d == 1)


def _squeeze_type(x: TensorType, axes) -> TensorType:
    ax = _squeeze_axes(x, axes)
    for a in ax:
        if x.shape[a] != 1 and type(x.shape[a]) is int:
            raise ShapeError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    return TensorType(dtype=x.dtype, shape=tuple(d for i, d in enumerate(x.shape) if i not in ax))


def _squeeze_vjp(g, x, *, out, axes):
    ax = _squeeze_axes(x.type, axes)
    grad = bind("expand_dims", g, axes=ax) if ax else g
    if any(x.type.shape[a] != 1 for a in ax):  # a symbolic dim that was 1 at run time
        grad = bind("broadcast_like", grad, x)  # gives the gradient x's own (symbolic) type
    return grad


defop("squeeze", _squeeze_type, attrs={"axes": Attr("ints", default=None, optional=True)}, family="shape", storage=True)
defvjp("squeeze", _squeeze_vjp)


@defbatch("squeeze")
def _squeeze_batch(inputs, dims, size, *, axes):
    x, d = inputs[0], dims[0]
    example = TensorType(dtype=x.type.dtype, shape=x.type.shape[:d] + x.type.shape[d + 1:])
    ax, full = shift_axes(_squeeze_axes(example, axes), example.rank, d, "squeeze")  # never the batch axis
    return bind("squeeze", x, axes=full), d - sum(a < d for a in ax)


def squeeze(x, axis=None):
    """Drop size-1 axes (all of them when ``axis`` is None; then the shape must be static).

    >>> irf.squeeze(irf.tensor(np.zeros((1, 3, 1))), 0).shape
    (3, 1)
    """
    return bind("squeeze", x, axes=None if axis is None else as_int_tuple(axis, "squeeze: axis"))


def _transpose_type(x: TensorType, perm) -> TensorType:
    perm = tuple(range(x.rank))[::-1] if perm is None else perm
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"transpose: perm {perm} is not a permutation of the {x.rank} axes of {x.shape}")
    return TensorType(dtype=x.dtype, shape=tuple(x.shape[p] for p in perm))


def inverse_perm(perm: Sequence[int] | None, rank: int) -> tuple[int, ...]:
    perm = tuple(range(rank))[::-1] if perm is None else perm
    inv = [0] * rank
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


defop("transpose", _transpose_type, attrs={"perm": Attr("ints", default=None, optional=True)}, family="shape", storage=True)
defvjp("transpose", lambda g, x, *, out, perm: bind("transpose", g, perm=inverse_perm(perm, x.type.rank)))


@defbatch("transpose")
def _transpose_batch(inputs, dims, size, *, perm):
    x, d = inputs[0], dims[0]
    r = rank_of(x, d)
    perm = tuple(range(r))[::-1] if perm is None else perm
    return bind("transpose", x, perm=(d,) + tuple(p + (p >= d) for p in perm)), 0  # one transpose, batch first


def transpose(x, perm=None):
    """Permute axes (reverse them when ``perm`` is None), as ``np.transpose``.

    >>> irf.transpose(irf.tensor(np.zeros((2, 3))), (1, 0)).shape
    (3, 2)
    """
    if perm is not None:
        rank = len(x.shape)
        perm = tuple(p + rank if -rank <= p < 0 else p for p in as_int_tuple(perm, "transpose: perm"))
    return bind("transpose", x, perm=perm)


# -- broadcasting --------------------------------------------------------------------------------

def _broadcast_to_type(x: TensorType, shape) -> TensorType:
    if any(d < 0 for d in shape):
        raise ShapeError(f"broadcast_to: negative size in target shape {shape}")
    check_broadcastable(x.shape, shape, "broadcast_to")
    return TensorType(dtype=x.dtype, shape=shape)


defop("broadcast_to", _broadcast_to_type, attrs={"shape": Attr("ints")}, family="shape")
defvjp("broadcast_to", lambda g, x, *, out, shape: unbroadcast(g, out.type, x))


def _pad_rank(x, d, rank: int):
    """A batched ``x`` at axis 0 with size-1 axes after the batch up to ``rank`` example axes."""
    x = to_front(x, d)
    k = rank - rank_of(x, 0)
    return bind("expand_dims", x, axes=tuple(range(1, 1 + k))) if k else x


@defbatch("broadcast_to")
def _broadcast_to_batch(inputs, dims, size, *, shape):
    x = _pad_rank(inputs[0], dims[0], len(shape))
    if type(size) is int:
        return bind("broadcast_to", x, shape=(size,) + shape), 0
    # unknown batch size: ONNX Expand broadcasts both ways, so a 1 keeps the batch axis
    target = bind("constant", value=np.array((1,) + shape, np.int64))
    return bind("expand_dynamic", x, target, dims=(size,) + shape), 0


def broadcast_to(x, shape: Sequence[int]):
    """Broadcast ``x`` to a static ``shape``, as ``np.broadcast_to``.

    >>> irf.broadcast_to(irf.tensor([1.0, 2.0]), (3, 2)).shape
    (3, 2)
    """
    return bind("broadcast_to", x, shape=as_int_tuple(shape, "broadcast_to: shape"))


def _broadcast_like_type(x: TensorType, like: TensorType) -> TensorType:
    check_broadcastable(x.shape, like.shape, "broadcast_like")
    return TensorType(dtype=x.dtype, shape=like.shape)


defop("broadcast_like", _broadcast_like_type, inputs=2, family="shape",
      doc="Broadcast x to the shape of `like` (read at run time, so symbolic dims work).")
defvjp("broadcast_like", lambda g, x, like, *, out: (unbroadcast(g, out.type, x), None))


@defbatch("broadcast_like")
def _broadcast_like_batch(inputs, dims, size):
    (x, like), (dx, dl) = inputs, dims
    if dx is not None:
        x = _pad_rank(x, dx, like.type.rank - (dl is not None))
    if dl is not None:  # an unbatched x broadcasts against the batch axis by itself
        return bind("broadcast_like", x, to_front(like, dl)), 0
    shape = like.type.shape
    if all(type(v) is int for v in shape):
        return _broadcast_to_batch([x], [0], size, shape=shape)
    target = bind("concat", bind("constant", value=np.array([1], np.int64)), bind("shape_of", like), axis=0)
    return bind("expand_dynamic", x, target, dims=(size,) + shape), 0


def _sum_to_like_type(g: TensorType, like: TensorType, axes) -> TensorType:
    if g.rank != like.rank:
        raise ShapeError(f"sum_to_like: ranks differ ({g} vs {like})")
    return TensorType(dtype=g.dtype, shape=like.shape)


defop("sum_to_like", _sum_to_like_type, inputs=2, attrs={"axes": Attr("ints")}, family="shape",
      doc="Sum g (keepdims) over those of `axes` where `like` has size 1 and g does not, decided at "
          "run time: the gradient of a broadcast whose dims are symbolic.")
defvjp("sum_to_like", lambda g, x, like, *, out, axes: (bind("broadcast_like", g, x), None))


@defbatch("sum_to_like")
def _sum_to_like_batch(inputs, dims, size, *, axes):
    (g, like), d = common_axis(inputs, dims, size)  # like only gives sizes: broadcasting it is a view
    return bind("sum_to_like", g, like, axes=shift_axes(axes, g.type.rank - 1, d, "sum_to_like")[1]), d


def broadcast_like(x, like):
    """Broadcast ``x`` to the shape ``like`` has at run time.

    >>> irf.broadcast_like(irf.tensor([1.0, 2.0]), irf.tensor(np.zeros((3, 2)))).shape
    (3, 2)
    """
    return bind("broadcast_like", x, like)


__all__ = [
    "identity", "reshape", "reshape_like", "expand_dims", "squeeze", "transpose", "broadcast_to",
    "broadcast_like",
]

