"""Shape ops that join and cut tensors: concat, split (and split_like), stack, tile and flip.

The rest of the shape family is in ``shape.py`` (rearranging), ``shape_index.py`` (indexing)
and ``shape_create.py`` (creating); each op's block holds its type rule, VJP and batching rule.
"""
from __future__ import annotations

from typing import Any, Sequence

from irflow.errors import DTypeError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.types import Dim, TensorType
from irflow.ops.batching import common_axis, first_batched, insert_axes, materialize, reduction_rule, shift_axes, to_front
from irflow.ops.common import bind, norm_axes
from irflow.ops.registry import Attr, defbatch, defop, defvjp
from irflow.ops.shape import as_int_tuple, norm_axis, same_dim


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


@defbatch("concat")
def _concat_batch(inputs, dims, size, *, axis):
    xs, d = common_axis(inputs, dims, size)
    return bind("concat", *xs, axis=shift_axes(axis, xs[0].type.rank - 1, d, "concat")[1][0]), d


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
defbatch("split", reduction_rule("split", key="axis", keeps_rank=True))  # the axis shifted past the batch


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


@defbatch("split_like")
def _split_like_batch(inputs, dims, size, *, axis):
    x = materialize(inputs[0], dims[0], size, first_batched(inputs, dims))
    # a like only gives its size along the axis: give it the batch axis too (size 1 when unbatched)
    likes = [bind("expand_dims", t, axes=(0,)) if dt is None else to_front(t, dt) for t, dt in zip(inputs[1:], dims[1:])]
    return bind("split_like", x, *likes, axis=shift_axes(axis, x.type.rank - 1, 0, "split_like")[1][0]), 0


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


@defbatch("stack")
def _stack_batch(inputs, dims, size, *, axis):
    xs, d = common_axis(inputs, dims, size)
    (a,), b = insert_axes((axis,), xs[0].type.rank, d, "stack")
    return bind("stack", *xs, axis=a), b


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


@defbatch("tile")
def _tile_batch(inputs, dims, size, *, reps):
    d = dims[0]
    return bind("tile", inputs[0], reps=reps[:d] + (1,) + reps[d:]), d


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
defbatch("flip", reduction_rule("flip", keeps_rank=True))  # axes (None: all) shifted past the batch


def flip(x, axis=None):
    """Reverse the order of elements along ``axis`` (int, tuple, or None for all axes).

    >>> irf.flip(irf.tensor([1.0, 2.0, 3.0])).numpy()
    array([3., 2., 1.], dtype=float32)
    """
    return bind("flip", x, axes=None if axis is None else as_int_tuple(axis, "flip: axis"))


__all__ = ["concat", "split", "split_like", "stack", "tile", "flip"]
