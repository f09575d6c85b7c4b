"""Shape ops that rearrange elements: reshape, transpose, expand_dims, squeeze, broadcasting,
concat, split, stack, tile and flip.

Indexing ops (slice and its adjoint pad, gather, gather_nd, scatter_add, one_hot) live in
``shape_index.py`` and
ops that create tensors (shape_of, range, full, zeros, ones, full_like, constant) in
``shape_create.py``. The NumPy kernels and ONNX lowerings of all three are in one file each
(``executors/numpy/kernels/shape.py``, ``executors/onnx/lowering/shape.py``).

Type rules accept symbolic and unknown dims wherever the answer can still be known. Three
internal ops exist for VJP rules under symbolic dims, where a static shape attr would not do:
``broadcast_like``, ``reshape_like`` and ``split_like`` read the target sizes from another
tensor at run time (ONNX: ``Shape`` feeding ``Expand`` / ``Reshape`` / ``Split``).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import Dim, TensorType
from irflow.ops.common import bind, norm_axes, unbroadcast
from irflow.ops.registry import Attr, defop, defvjp

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

defop("identity", lambda x: x, family="shape")
defvjp("identity", lambda g, x, *, out: g)


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


defop("reshape", _reshape_type, attrs={"shape": Attr("ints")}, family="shape")
defvjp("reshape", _reshape_vjp)


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


defop("reshape_like", _reshape_like_type, inputs=2, family="shape",
      doc="Reshape x to the run-time shape of `like` (internal: VJP rules under symbolic dims).")
defvjp("reshape_like", lambda g, x, like, *, out: (bind("reshape_like", g, x), None))


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


defop("expand_dims", _expand_dims_type, attrs={"axes": Attr("ints")}, family="shape")
defvjp("expand_dims", lambda g, x, *, out, axes: bind("squeeze", g, axes=norm_axes(axes, out.type.rank, "expand_dims")))


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


defop("squeeze", _squeeze_type, attrs={"axes": Attr("ints", default=None, optional=True)}, family="shape")
defvjp("squeeze", _squeeze_vjp)


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


defop("transpose", _transpose_type, attrs={"perm": Attr("ints", default=None, optional=True)}, family="shape")
defvjp("transpose", lambda g, x, *, out, perm: bind("transpose", g, perm=inverse_perm(perm, x.type.rank)))


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


def _sum_to_like_type(g: TensorType, like: TensorType, axes) -> TensorType:
    if g.rank != like.rank:
        raise ShapeError(f"sum_to_like: ranks differ ({g} vs {like})")
    return TensorType(dtype=g.dtype, shape=like.shape)


defop("sum_to_like", _sum_to_like_type, inputs=2, attrs={"axes": Attr("ints")}, family="shape",
      doc="Sum g (keepdims) over those of `axes` where `like` has size 1 and g does not, decided at "
          "run time: the gradient of a broadcast whose dims are symbolic.")
defvjp("sum_to_like", lambda g, x, like, *, out, axes: (bind("broadcast_like", g, x), None))


def broadcast_like(x, like):
    """Broadcast ``x`` to the shape ``like`` has at run time.

    >>> irf.broadcast_like(irf.tensor([1.0, 2.0]), irf.tensor(np.zeros((3, 2)))).shape
    (3, 2)
    """
    return bind("broadcast_like", x, like)


# -- concat / split / stack ----------------------------------------------------------------------

def _same_dtype(op: str, types: Sequence[TensorType]) -> DType:
    dtypes = {t.dtype for t in types}
    if len(dtypes) > 1:
        raise DTypeError(f"{op}: inputs have different dtypes ({', '.join(t.dtype.value for t in types)}); cast explicitly")
    return types[0].dtype


def _merge_shapes(op: str, types: Sequence[TensorType], skip_axis: int | None) -> list[Dim]:
    """The common shape of ``types`` (all the same rank), except on ``skip_axis``."""
    rank = types[0].rank
    for t in types:
        if t.rank != rank:
            raise ShapeError(f"{op}: inputs have different ranks: {', '.join(str(t.shape) for t in types)}")
    shape = list(types[0].shape)
    for t in types[1:]:
        for i, d in enumerate(t.shape):
            if i != skip_axis:
                shape[i] = same_dim(shape[i], d, op, f"axis {i} of shapes {', '.join(str(u.shape) for u in types)}")
    return shape


def _concat_type(*xs: TensorType, axis: int) -> TensorType:
    dtype = _same_dtype("concat", xs)
    if xs[0].rank == 0:
        raise ShapeError("concat: cannot concatenate scalars (rank 0); use stack")
    a = norm_axis(axis, xs[0].rank, "concat")
    shape = _merge_shapes("concat", xs, a)
    sizes = [t.shape[a] for t in xs]
    if all(type(d) is int for d in sizes):
        shape[a] = sum(sizes)
    elif len(xs) == 1:
        shape[a] = sizes[0]
    else:
        shape[a] = None
    return TensorType(dtype=dtype, shape=tuple(shape))


def _concat_vjp(g, *xs, out, axis):
    if len(xs) == 1:
        return (g,)
    a = axis % out.type.rank
    sizes = [x.type.shape[a] for x in xs]
    if all(type(d) is int for d in sizes):
        parts = bind("split", g, sizes=tuple(sizes), num=None, axis=a)
    else:
        parts = bind("split_like", g, *xs, axis=a)
    return tuple(parts)


defop("concat", _concat_type, inputs=(1, None), attrs={"axis": Attr("int", default=0)}, family="shape")
defvjp("concat", _concat_vjp)


def concat(tensors: Sequence[Any], axis: int = 0):
    """Join tensors of the same dtype along an existing ``axis``, as ``np.concatenate``.

    >>> irf.concat([irf.tensor(np.zeros((2, 3))), irf.tensor(np.ones((1, 3)))], axis=0).shape
    (3, 3)
    """
    return bind("concat", *tensors, axis=int(axis))


def _split_sizes(x: TensorType, sizes, num, axis: int, op: str = "split") -> tuple[int, tuple[Dim, ...]]:
    """The normalized axis and the output sizes along it."""
    if x.rank == 0:
        raise ShapeError(f"{op}: cannot split a scalar")
    a = norm_axis(axis, x.rank, op)
    d = x.shape[a]
    if (sizes is None) == (num is None):
        raise ShapeError(f"{op}: give exactly one of sizes and num, got sizes={sizes}, num={num}")
    if sizes is not None:
        if not sizes or any(s < 0 for s in sizes):
            raise ShapeError(f"{op}: sizes {sizes} must be one or more sizes >= 0")
        if type(d) is int and sum(sizes) != d:
            raise ShapeError(f"{op}: sizes {sizes} add up to {sum(sizes)}, but axis {a} of {x.shape} has size {d}")
        return a, tuple(sizes)
    if num < 1:
        raise ShapeError(f"{op}: num must be >= 1, got {num}")
    if type(d) is int:
        if d % num:
            raise ShapeError(f"{op}: axis {a} of {x.shape} (size {d}) does not split into {num} equal parts")
        return a, (d // num,) * num
    return a, ((d if num == 1 else None),) * num


def _split_type(x: TensorType, sizes, num, axis) -> tuple[TensorType, ...]:
    a, out_sizes = _split_sizes(x, sizes, num, axis)
    return tuple(TensorType(dtype=x.dtype, shape=x.shape[:a] + (s,) + x.shape[a + 1:]) for s in out_sizes)


def _split_vjp(g, x, *, out, sizes, num, axis):
    parts = g if isinstance(g, tuple) else (g,)
    return bind("concat", *parts, axis=axis)


defop("split", _split_type, family="shape", attrs={
    "sizes": Attr("ints", default=None, optional=True),
    "num": Attr("int", default=None, optional=True),
    "axis": Attr("int", default=0),
})
defvjp("split", _split_vjp)


def split(x, num_or_sizes: int | Sequence[int], axis: int = 0) -> tuple:
    """Split ``x`` along ``axis`` into ``num`` equal parts or parts of the given ``sizes``.

    Always returns a tuple (of one tensor when there is one part).

    >>> [p.shape for p in irf.split(irf.tensor(np.zeros((5, 2))), (2, 3))]
    [(2, 2), (3, 2)]
    """
    if isinstance(num_or_sizes, int) or (hasattr(num_or_sizes, "__index__") and not hasattr(num_or_sizes, "__len__")):
        out = bind("split", x, sizes=None, num=int(num_or_sizes), axis=int(axis))
    else:
        out = bind("split", x, sizes=as_int_tuple(num_or_sizes, "split: sizes"), num=None, axis=int(axis))
    return out if isinstance(out, tuple) else (out,)


def _split_like_type(x: TensorType, *likes: TensorType, axis: int) -> tuple[TensorType, ...]:
    a = norm_axis(axis, x.rank, "split_like")
    for t in likes:
        if t.rank != x.rank:
            raise ShapeError(f"split_like: part shape {t.shape} has not the rank of {x.shape}")
    sizes = [t.shape[a] for t in likes]
    if type(x.shape[a]) is int and all(type(s) is int for s in sizes) and sum(sizes) != x.shape[a]:
        raise ShapeError(f"split_like: parts of sizes {sizes} do not add up to axis {a} of {x.shape}")
    return tuple(TensorType(dtype=x.dtype, shape=x.shape[:a] + (s,) + x.shape[a + 1:]) for s in sizes)


def _split_like_vjp(g, x, *likes, out, axis):
    parts = g if isinstance(g, tuple) else (g,)
    return (bind("concat", *parts, axis=axis),) + (None,) * len(likes)


defop("split_like", _split_like_type, inputs=(2, None), attrs={"axis": Attr("int")}, family="shape",
      doc="Split x along axis into parts as long as each `like` tensor is there at run time (internal).")
defvjp("split_like", _split_like_vjp)


def split_like(x, likes: Sequence[Any], axis: int) -> tuple:
    """Split ``x`` along ``axis`` into pieces as long as each of ``likes`` is along it at run time.

    >>> [p.shape for p in irf.split_like(irf.tensor(np.zeros(5)), [irf.tensor(np.zeros(2)), irf.tensor(np.zeros(3))], 0)]
    [(2,), (3,)]
    """
    out = bind("split_like", x, *likes, axis=int(axis))
    return out if isinstance(out, tuple) else (out,)


def _stack_type(*xs: TensorType, axis: int) -> TensorType:
    dtype = _same_dtype("stack", xs)
    shape = _merge_shapes("stack", xs, None)
    a = norm_axis(axis, len(shape) + 1, "stack")
    return TensorType(dtype=dtype, shape=tuple(shape[:a]) + (len(xs),) + tuple(shape[a:]))


def _stack_vjp(g, *xs, out, axis):
    a = axis % out.type.rank
    parts = bind("split", g, sizes=None, num=len(xs), axis=a)
    parts = parts if isinstance(parts, tuple) else (parts,)
    return tuple(bind("squeeze", p, axes=(a,)) for p in parts)


defop("stack", _stack_type, inputs=(1, None), attrs={"axis": Attr("int", default=0)}, family="shape")
defvjp("stack", _stack_vjp)


def stack(tensors: Sequence[Any], axis: int = 0):
    """Join tensors of one shape and dtype along a new ``axis``, as ``np.stack``.

    >>> irf.stack([irf.tensor(np.zeros(3)), irf.tensor(np.ones(3))], axis=1).shape
    (3, 2)
    """
    return bind("stack", *tensors, axis=int(axis))


# -- tile / flip -------------------------------------------------------------------------------------

def _tile_type(x: TensorType, reps) -> TensorType:
    if len(reps) != x.rank or any(r < 0 for r in reps):
        raise ShapeError(f"tile: reps {reps} must be {x.rank} counts >= 0, one per axis of {x.shape}")
    shape = tuple(d * r if type(d) is int else (d if r == 1 else (0 if r == 0 else None))
                  for d, r in zip(x.shape, reps))
    return TensorType(dtype=x.dtype, shape=shape)


def _tile_vjp(g, x, *, out, reps):
    if all(r == 1 for r in reps):
        return g
    if 0 in reps:
        return bind("zeros_like", x)
    if x.type.is_static:  # (r0*d0, r1*d1, ...) -> (r0, d0, r1, d1, ...), summed over the r axes
        pairs = tuple(v for r, d in zip(reps, x.type.shape) for v in (r, d))
        g = bind("reshape", g, shape=pairs)
        return bind("reduce_sum", g, axes=tuple(range(0, 2 * x.type.rank, 2)), keepdims=False)
    for a, (r, d) in enumerate(zip(reps, x.type.shape)):  # symbolic dims: add up the r copies per axis
        if r == 1:
            continue
        if type(d) is int:
            parts = bind("split", g, sizes=(d,) * r, num=None, axis=a)
        else:
            parts = bind("split_like", g, *([x] * r), axis=a)
        g = parts[0]
        for p in parts[1:]:
            g = g + p
    return g


defop("tile", _tile_type, attrs={"reps": Attr("ints")}, family="shape")
defvjp("tile", _tile_vjp)


def tile(x, reps: int | Sequence[int]):
    """Repeat ``x`` ``reps[i]`` times along axis i, as ``np.tile`` (short reps get leading 1s).

    >>> irf.tile(irf.tensor(np.zeros((2, 3))), (2, 1)).shape
    (4, 3)
    """
    reps = as_int_tuple(reps, "tile: reps")
    rank = len(x.shape)
    if len(reps) > rank:  # np.tile promotes x by adding leading axes
        x = bind("expand_dims", x, axes=tuple(range(len(reps) - rank)))
    reps = (1,) * (rank - len(reps)) + reps
    return bind("tile", x, reps=reps)


def _flip_type(x: TensorType, axes) -> TensorType:
    norm_axes(axes, x.rank, "flip")
    return x


defop("flip", _flip_type, attrs={"axes": Attr("ints", default=None, optional=True)}, family="shape")
defvjp("flip", lambda g, x, *, out, axes: bind("flip", g, axes=axes))


def flip(x, axis=None):
    """Reverse the order of elements along ``axis`` (int, tuple, or None for all axes).

    >>> irf.flip(irf.tensor([1.0, 2.0, 3.0])).numpy()
    array([3., 2., 1.], dtype=float32)
    """
    return bind("flip", x, axes=None if axis is None else as_int_tuple(axis, "flip: axis"))


__all__ = [
    "identity", "reshape", "reshape_like", "expand_dims", "squeeze", "transpose", "broadcast_to",
    "broadcast_like", "concat", "split", "split_like", "stack", "tile", "flip",
]

