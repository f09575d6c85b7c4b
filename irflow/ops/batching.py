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

import math
from typing import Any, Sequence

import numpy as np

from irflow.errors import ShapeError
from irflow.ops.common import align_front, elementwise_rule, move_axis, norm_axes, rank_of, to_front
from irflow.ops.dispatch import bind
from irflow.ops.registry import LOOP, BatchRule, defbatch

Dim = Any  # int: the batch axis of a value; None: the value is not batched


class _LoopThis:
    def __repr__(self) -> str:
        return "LOOP_THIS"


# A rule may ``return LOOP_THIS`` for an input combination it does not handle (e.g. a batched
# index where only batched data is supported): vmap then runs that node in a scan.
LOOP_THIS: Any = _LoopThis()


def broadcast_batch(x: Any, size: Any, like: tuple[Any, Dim] | None = None) -> Any:
    """An unbatched ``x`` repeated ``size`` times along a new leading axis.

    With a static ``size`` this is ``broadcast_to``; otherwise ``like`` (a batched tensor and
    its batch axis) gives the size at run time.
    """
    x1 = bind("expand_dims", x, axes=(0,))
    if isinstance(size, int) and x.type.is_static:
        return bind("broadcast_to", x1, shape=(size,) + tuple(x.type.shape))
    if isinstance(size, int):  # x's own shape is known only at run time (a scan of run-time length)
        return bind("add", x1, np.zeros((size,) + (1,) * x.type.rank, dtype=x.type.dtype.numpy))
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


def shift_axis(axis: int, example_rank: int, d: int, op: str) -> int:
    """One example axis (negatives allowed) -> the same axis in a value batched at ``d``.

    >>> shift_axis(-1, 3, 1, "softmax")   # axis 2 of the example; the batch sits at 1
    3
    """
    return shift_axes(axis, example_rank, d, op)[1][0]


def insert_axes(new_axes: Sequence[int], out_rank: int, d: int, op: str) -> tuple[tuple[int, ...], int]:
    """Where ops that insert axes (expand_dims, stack, one_hot) put them in a batched value.

    ``new_axes`` are positions in one example's result (of rank ``out_rank``); the input is
    batched at ``d``. The batch axis stays just before the example axis it preceded, so no
    transpose is needed: returns (the new axes' positions in the batched result, the batch
    axis of the result).

    >>> insert_axes((0,), 3, 1, "expand_dims")   # example (a, b) -> (1, a, b), batch after a
    ((0,), 2)
    """
    ax = norm_axes(tuple(new_axes), out_rank, op)
    kept = [i for i in range(out_rank) if i not in ax]  # where the input's example axes land
    b = kept[d] if d < len(kept) else out_rank
    return tuple(a + (a >= b) for a in ax), b


def common_axis(inputs: Sequence[Any], dims: Sequence[Dim], size: Any) -> tuple[list, int]:
    """Inputs all batched at one axis: when every present input is batched at the same axis
    they are left alone; otherwise each is moved (or broadcast) to axis 0. Returns (inputs,
    that axis); omitted (None) inputs stay None.

    >>> xs, d = common_axis([x, y], [1, None], size)   # x moved, y broadcast: d == 0  # doctest: +SKIP
    """
    present = [d for x, d in zip(inputs, dims) if x is not None]
    if all(d is not None and d == present[0] for d in present):
        return list(inputs), present[0]
    like = first_batched(inputs, dims)
    return [None if x is None else materialize(x, d, size, like) for x, d in zip(inputs, dims)], 0


def _static(dims: Sequence[Any]) -> bool:
    return all(isinstance(v, int) for v in dims)


def shape_part(x: Any, start: int, end: int | None = None) -> Any:
    """``shape_of(x)[start:end]`` as a 1-D int64 tensor (read at run time)."""
    return bind("slice", bind("shape_of", x), starts=(start,), ends=(2**63 - 1 if end is None else end,),
                axes=(0,), steps=None)


def const_ints(values: Sequence[int]) -> Any:
    return bind("constant", value=np.array(values, np.int64))


def reshape_to(x: Any, dims: Sequence[Any], run_time_shape: Any) -> Any:
    """``x`` reshaped to ``dims`` (ints, or symbols / None where unknown): a static reshape
    when at most one dim is unknown (it becomes -1), else ``reshape_dynamic`` with the shape
    ``run_time_shape()`` builds (a 1-D int64 tensor; called only then).

    >>> reshape_to(x, (None, 4), lambda: shape_tensor)   # reshape to (-1, 4)  # doctest: +SKIP
    """
    dims = tuple(dims)
    unknown = [i for i, v in enumerate(dims) if not isinstance(v, int)]
    if not unknown:
        return bind("reshape", x, shape=dims)
    if len(unknown) == 1 and math.prod(v for v in dims if isinstance(v, int)) > 0:
        return bind("reshape", x, shape=tuple(-1 if not isinstance(v, int) else v for v in dims))
    return bind("reshape_dynamic", x, run_time_shape(), dims=tuple(v if isinstance(v, (int, str)) else None for v in dims))


def merge_axes(x: Any, a: int) -> Any:
    """Axes ``a`` and ``a + 1`` of ``x`` merged into one (a-major): (.., P, Q, ..) -> (.., P * Q, ..).

    >>> merge_axes(x, 1)   # (N, B, C, H, W) -> (N, B * C, H, W)  # doctest: +SKIP
    """
    s = tuple(x.type.shape)
    merged = s[a] * s[a + 1] if _static(s[a:a + 2]) else None
    return reshape_to(x, s[:a] + (merged,) + s[a + 2:],
                      lambda: bind("concat", shape_part(x, 0, a), const_ints([-1]), shape_part(x, a + 2), axis=0))


def split_axis(y: Any, a: int, like: Any, la: int) -> Any:
    """Undo ``merge_axes``: axis ``a`` of ``y`` split into axes ``la, la + 1`` of ``like``.

    >>> split_axis(y, 0, x, 0)   # (B * N, ...) -> (B, N, ...), B and N from x  # doctest: +SKIP
    """
    s = tuple(y.type.shape)
    two = tuple(like.type.shape[la:la + 2])
    return reshape_to(y, s[:a] + two + s[a + 1:],
                      lambda: bind("concat", shape_part(y, 0, a), shape_part(like, la, la + 2), shape_part(y, a + 1),
                                   axis=0))


def split_batch(y: Any, a: int, ref: Any) -> Any:
    """Axis ``a`` of ``y`` holds B blocks one after another (batch-major, as ``merge_axes``
    makes them): split it into (B, block) with B the leading dim of ``ref``.

    >>> split_batch(y, 1, w)   # (N, B * O, H, W) -> (N, B, O, H, W), B = w.shape[0]  # doctest: +SKIP
    """
    s = tuple(y.type.shape)
    bsz = ref.type.shape[0]
    block = s[a] // bsz if _static((s[a], bsz)) and bsz else None
    return reshape_to(y, s[:a] + (bsz, block) + s[a + 1:],
                      lambda: bind("concat", shape_part(y, 0, a), shape_part(ref, 0, 1), const_ints([-1]),
                                   shape_part(y, a + 1), axis=0))


def fold_leading(x: Any) -> Any:
    """Merge the two leading axes of ``x``: (B, N, *rest) -> (B * N, *rest), so an op with a
    batch axis of its own (conv, pooling) runs once on B * N examples."""
    return merge_axes(x, 0)


def unfold_leading(y: Any, like: Any) -> Any:
    """Undo ``fold_leading``: (B * N, *rest) -> (B, N, *rest) with B, N the leading dims of ``like``."""
    return split_axis(y, 0, like, 0)


def fold_rule(op: str, folded: int | None = None) -> BatchRule:
    """The rule of an op whose first ``folded`` inputs (all, by default) carry a leading batch
    axis N of the op's own (pooling, the pooling gradients): those inputs, moved or broadcast to
    batch axis 0, are folded into N (B * N examples), the op runs once, the result is unfolded.
    Other inputs (weights) must be unbatched, else the node loops.

    >>> defbatch("max_pool2d", fold_rule("max_pool2d"))   # doctest: +SKIP
    """

    def rule(inputs, dims, size, **attrs):
        n = len(inputs) if folded is None else folded
        if any(d is not None for d in dims[n:]):
            return LOOP_THIS
        like = first_batched(inputs[:n], dims[:n])
        front = [materialize(x, d, size, like) for x, d in zip(inputs[:n], dims[:n])]
        out = bind(op, *[fold_leading(x) for x in front], *inputs[n:], **attrs)
        return unfold_leading(out, front[0]), 0

    rule.__name__ = f"batch_{op}"
    return rule


def batch_index_column(idx: Any) -> Any:
    """For nd-indices ``idx`` batched at axis 0, shape (B, ..., k): a (B, ..., 1) tensor of
    the same dtype holding each row's batch index b. Prepended to the index tuples it turns a
    per-example gather_nd / scatter into one op on the batch (no static B needed).

    >>> batch_index_column(idx)   # (B, 4, 2) -> (B, 4, 1) holding b  # doctest: +SKIP
    """
    first = bind("slice", idx, starts=(0,), ends=(1,), axes=(idx.type.rank - 1,), steps=None)
    return bind("cumsum", bind("ones_like", first), axis=0, exclusive=True, reverse=False)


def with_batch_index(idx: Any) -> Any:
    """nd-indices (B, ..., k) batched at axis 0 -> (B, ..., 1 + k) addressing data batched at 0.

    >>> bind("gather_nd", data_front, with_batch_index(idx_front))   # doctest: +SKIP
    """
    return bind("concat", batch_index_column(idx), idx, axis=idx.type.rank - 1)


def defbatch_elementwise(*ops: str) -> None:
    """``defbatch(op, elementwise_rule(op))`` for each op."""
    for op in ops:
        defbatch(op, elementwise_rule(op))


__all__ = ["LOOP", "LOOP_THIS", "defbatch", "rank_of", "move_axis", "to_front", "broadcast_batch", "materialize",
           "first_batched", "align_front", "elementwise_rule", "same_shape_rule", "shift_axes", "reduction_rule",
           "defbatch_elementwise", "shift_axis", "insert_axes", "common_axis", "fold_leading", "unfold_leading",
           "reshape_to", "merge_axes", "split_axis", "split_batch", "fold_rule", "shape_part", "const_ints",
           "batch_index_column", "with_batch_index"]
