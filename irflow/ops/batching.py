"""Helpers for batching rules (``defbatch``), so that most rules are one line.

A batching rule is ``rule(inputs, dims, size, **attrs) -> (outputs, out_dims)``:

- ``inputs``: the op's inputs as symbolic tensors, each carrying the batch axis at ``dims[i]``
  (an int) or not batched at all (``dims[i] is None``); None for an omitted optional input;
- ``size``: the batch size (an int, a symbol or None when unknown while tracing);
- ``attrs``: the op's attributes, defaults filled;
- it returns the op's output(s) (one tensor, or a tuple for a multi-output op) computed for the
  whole batch with ordinary ops (``bind``), and the batch axis of each output (an int, or None
  for an output that does not depend on the batch), as JAX's ``primitive_batchers``.

The vmap transform (``irflow.autodiff.vmap_transform``) calls a rule only when at least one input is
batched, and checks what the rule returns against the op's unbatched output type.

>>> defbatch("exp", elementwise_rule("exp"))                 # doctest: +SKIP
>>> defbatch("reduce_sum", reduction_rule("reduce_sum"))     # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Sequence

from irflow.errors import ShapeError
from irflow.ops.common import norm_axes
from irflow.ops.dispatch import bind
from irflow.ops.registry import LOOP, BatchRule, defbatch

Dim = Any  # int: the batch axis of a value; None: the value is not batched


class _LoopThis:
    def __repr__(self) -> str:
        return "LOOP_THIS"


# A rule may ``return LOOP_THIS`` for an input combination it does not handle (e.g. a batched
# index where only batched data is supported): vmap then runs that node in a scan.
LOOP_THIS: Any = _LoopThis()


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


def broadcast_batch(x: Any, size: Any, like: tuple[Any, Dim] | None = None) -> Any:
    """An unbatched ``x`` repeated ``size`` times along a new leading axis.

    With a static ``size`` this is ``broadcast_to``; otherwise ``like`` (a batched tensor and
    its batch axis) gives the size at run time.
    """
    x1 = bind("expand_dims", x, axes=(0,))
    if isinstance(size, int):
        return bind("broadcast_to", x1, shape=(size,) + tuple(x.type.shape))
    if like is None:
        raise ShapeError(f"cannot broadcast a value of type {x.type} to a batch of unknown size without a batched peer")
    ref, rd = like
    r = ref.type.rank
    # a (size,) vector of zeros read from the batched peer: the size becomes known at run time
    zeros = bind("reduce_sum", bind("zeros_like", ref), axes=tuple(i for i in range(r) if i != rd), keepdims=False)
    if zeros.type.dtype != x.type.dtype:
        zeros = bind("cast", zeros, dtype=x.type.dtype)
    zeros = bind("expand_dims", zeros, axes=tuple(range(1, 1 + x.type.rank))) if x.type.rank else zeros
    return bind("add", x1, zeros)


def materialize(x: Any, d: Dim, size: Any, like: tuple[Any, Dim] | None = None) -> Any:
    """``x`` batched at axis 0 whatever it was: moved there, or broadcast when unbatched."""
    return to_front(x, d) if d is not None else broadcast_batch(x, size, like)


def first_batched(inputs: Sequence[Any], dims: Sequence[Dim]) -> tuple[Any, Dim]:
    """The first batched input and its batch axis (a reference for the batch size)."""
    for x, d in zip(inputs, dims):
        if d is not None and x is not None:
            return x, d
    raise ShapeError("no batched input")


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


def same_shape_rule(op: str) -> BatchRule:
    """The rule of an elementwise op whose kernel wants equal input shapes (``relu_grad``):
    unbatched inputs are broadcast to the batch first."""

    def rule(inputs, dims, size, **attrs):
        like = first_batched(inputs, dims)
        full = [materialize(x, d, size, like) for x, d in zip(inputs, dims)]
        ref = next(f for f, d in zip(full, dims) if d is not None)
        full = [f if d is not None or f.type.shape == ref.type.shape else bind("broadcast_like", f, ref)
                for f, d in zip(full, dims)]
        return bind(op, *full, **attrs), 0

    rule.__name__ = f"batch_{op}"
    return rule


def shift_axes(axes: Any, example_rank: int, d: int, op: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Example axes (None = all, int, tuple, negatives allowed) -> (sorted example axes, the same
    axes in the batched value whose batch axis is ``d``)."""
    ax = norm_axes(axes, example_rank, op)
    return ax, tuple(a + (a >= d) for a in ax)


def reduction_rule(op: str, key: str = "axes", keeps_rank: bool = False) -> BatchRule:
    """The rule of a one-input op over axes given by attr ``key`` (``axes``: None/int/tuple, or
    ``axis``: one int): the axes are shifted past the batch axis, no transpose.

    The batch axis of the result moves left by the reduced axes before it unless
    ``keepdims`` is set or ``keeps_rank`` (softmax, cumsum: the rank does not change).
    """

    def rule(inputs, dims, size, **attrs):
        x, d = inputs[0], dims[0]
        if any(dd is not None for dd in dims[1:]):
            return LOOP_THIS
        ax, full = shift_axes(attrs[key], rank_of(x, d), d, op)
        attrs[key] = full[0] if key == "axis" else full
        out = bind(op, x, *inputs[1:], **attrs)
        if keeps_rank or attrs.get("keepdims", False):
            return out, d
        return out, d - sum(a < d for a in ax)

    rule.__name__ = f"batch_{op}"
    return rule


def defbatch_elementwise(*ops: str) -> None:
    """``defbatch(op, elementwise_rule(op))`` for each op."""
    for op in ops:
        defbatch(op, elementwise_rule(op))


__all__ = ["LOOP", "LOOP_THIS", "defbatch", "rank_of", "move_axis", "to_front", "broadcast_batch", "materialize",
           "first_batched", "align_front", "elementwise_rule", "same_shape_rule", "shift_axes", "reduction_rule",
           "defbatch_elementwise"]
