"""Linear algebra: matmul (NumPy's rules) and einsum.

matmul follows ``np.matmul`` exactly:

- both operands 2-D or more: a batch of matrix products; the batch dims (all but the last
  two) broadcast as NumPy, symbolic dims included;
- a 1-D left operand ``(k,)`` is a row vector: it becomes ``(1, k)`` and the 1 is dropped
  from the result; a 1-D right operand ``(k,)`` is a column ``(k, 1)``, dropped likewise;
  1-D @ 1-D is the dot product (a scalar);
- scalars are rejected (use ``mul``); the contracted dims must agree (a symbolic dim
  agrees with anything, the executor checks it at run time).

Operands may be int or float (not bool) and promote as ``add`` does (float32 @ float64 is
float64; each operand's gradient comes back in its own dtype). float16/bfloat16 products
accumulate in float32 in the NumPy kernel.

einsum takes ``equation`` in NumPy's notation: explicit (``"ij,jk->ik"``) or implicit
(``"ij,jk"``: the output is the letters used once, sorted, as NumPy). Letters are ASCII
letters; each names one size (a symbolic dim agrees with any size). A letter repeated in one
operand takes a diagonal (``"ii->i"``); its gradient needs that letter's size to be a known
int. Ellipsis
(``...``) is not supported: write the batch axes out as letters.
"""
from __future__ import annotations

import string
from typing import Any

import numpy as np

from irflow.errors import DTypeError, ShapeError, UnsupportedOpError
from irflow.ir.dtypes import DType
from irflow.ir.types import Dim, TensorType
from irflow.ops.common import bind, broadcast_shape, promote_dtype, unbroadcast
from irflow.ops.batching import align_front, move_axis, rank_of, to_front
from irflow.ops.registry import Attr, defbatch, defop, defvjp


def _numeric_dtype(op: str, *types: TensorType) -> DType:
    dtype = promote_dtype(*(t.dtype for t in types))
    if dtype is DType.bool:
        raise DTypeError(f"{op} takes int or float tensors, got bool: cast first (irf.cast)")
    return dtype


def _agree(a: Dim, b: Dim) -> bool:
    return not (isinstance(a, int) and isinstance(b, int) and a != b)


def _merge(a: Dim, b: Dim) -> Dim:
    """The dim two agreeing dims name: an int wins over a symbol; two symbols stay if equal."""
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    return a if a == b else None


# -- matmul ---------------------------------------------------------------------------------

def _matmul_type(a: TensorType, b: TensorType) -> TensorType:
    dtype = _numeric_dtype("matmul", a, b)
    if a.rank == 0 or b.rank == 0:
        raise ShapeError(f"matmul needs operands of rank >= 1, got shapes {a.shape} and {b.shape} (use mul for scalars)")
    sa = (1,) + a.shape if a.rank == 1 else a.shape
    sb = b.shape + (1,) if b.rank == 1 else b.shape
    if not _agree(sa[-1], sb[-2]):
        raise ShapeError(
            f"matmul: contracted dims differ: {sa[-1]} (last of {a.shape}) vs {sb[-2]} "
            f"({'only' if b.rank == 1 else 'second-to-last'} of {b.shape})"
        )
    try:
        batch = broadcast_shape(sa[:-2], sb[:-2])
    except ShapeError:
        raise ShapeError(f"matmul: batch dims of {a.shape} and {b.shape} do not broadcast") from None
    shape = batch + ((sa[-2],) if a.rank > 1 else ()) + ((sb[-1],) if b.rank > 1 else ())
    return TensorType(dtype=dtype, shape=shape)


defop("matmul", _matmul_type, inputs=2, family="linalg",
      doc="Matrix product with NumPy's rules: batched, broadcasting batch dims, 1-D operands.")


@defvjp("matmul")
def _matmul_vjp(g, a, b, *, out):
    # Make both operands matrices (a 1-D a is a row (1, k), a 1-D b a column (k, 1)) and give
    # g the dims matmul dropped, so that g2 = a2 @ b2 and one pair of formulas serves all cases:
    #   ga2 = g2 @ b2^T, gb2 = a2^T @ g2.
    # Then drop the added dims again and sum away broadcast batch dims (unbroadcast).
    ra, rb = a.type.rank, b.type.rank
    a2 = bind("expand_dims", a, axes=(0,)) if ra == 1 else a
    b2 = bind("expand_dims", b, axes=(1,)) if rb == 1 else b
    if ra == 1 and rb == 1:  # g is a scalar: (1, 1)
        g2 = bind("expand_dims", g, axes=(0, 1))
    elif ra == 1:  # g is batch + (n,): insert the row dim before n
        g2 = bind("expand_dims", g, axes=(g.type.rank - 1,))
    elif rb == 1:  # g is batch + (m,): append the column dim
        g2 = bind("expand_dims", g, axes=(g.type.rank,))
    else:
        g2 = g
    ga = matmul(g2, _swap_last(b2))  # batch + (m, k)
    gb = matmul(_swap_last(a2), g2)  # batch + (k, n)
    if ra == 1:
        ga = bind("squeeze", ga, axes=(ga.type.rank - 2,))
    if rb == 1:
        gb = bind("squeeze", gb, axes=(gb.type.rank - 1,))
    return _as_input(unbroadcast(ga, ga.type, a), a), _as_input(unbroadcast(gb, gb.type, b), b)


def _matmul_batch(inputs, dims, size):
    a, b = inputs
    da, db = dims
    ra, rb = rank_of(a, da), rank_of(b, db)
    # A batch of (m, k) matrices times one (k, n) matrix is ONE (B*m, k) @ (k, n) product, and
    # one (m, k) matrix times a batch of (k, n) is (m, k) @ (k, B*n) with the batch at axis 1:
    # a single large GEMM instead of B small ones (jacobians and per-example gradients).
    if db is None and ra == 1 and rb == 2:  # a batch of vectors times one matrix: (B, k) @ (k, n)
        return matmul(to_front(a, da), b), 0
    if da is None and ra == 2 and rb == 1:  # one matrix times a batch of vectors: (m, k) @ (k, B)
        return matmul(a, move_axis(b, db, 1)), 1
    if db is None and ra == 2 and rb == 2 and _static(a.type.shape) and _static(b.type.shape):
        a0 = to_front(a, da)
        m, k = a0.type.shape[1:]
        flat = matmul(bind("reshape", a0, shape=(-1, k)), b)
        return bind("reshape", flat, shape=(-1, m, b.type.shape[1])), 0
    if da is None and ra == 2 and rb == 2 and _static(a.type.shape) and _static(b.type.shape):
        b1 = move_axis(b, db, 1)  # (k, B, n)
        k, n = b1.type.shape[0], b1.type.shape[2]
        flat = matmul(a, bind("reshape", b1, shape=(k, -1)))
        return bind("reshape", flat, shape=(a.type.shape[0], -1, n)), 1
    # General case: batch axes to the front, 1-D operands made matrices (a row, a column),
    # example ranks padded to agree so NumPy's batch broadcasting pairs the right dims.
    a, b = to_front(a, da), to_front(b, db)
    if ra == 1:
        a = bind("expand_dims", a, axes=(a.type.rank - 1,))
    if rb == 1:
        b = bind("expand_dims", b, axes=(b.type.rank,))
    a, b = align_front([a, b], [0 if da is not None else None, 0 if db is not None else None])
    out = matmul(a, b)
    drop = (() if ra > 1 else (out.type.rank - 2,)) + (() if rb > 1 else (out.type.rank - 1,))
    return (bind("squeeze", out, axes=drop) if drop else out), 0


def _static(shape) -> bool:
    return all(isinstance(d, int) for d in shape)


defbatch("matmul", _matmul_batch)


def _as_input(grad, x):
    """The gradient of ``x`` in x's own dtype (float32 @ float64 gives float64 products); None
    for an int operand, which has no gradient."""
    if not x.type.dtype.is_float:
        return None
    return grad if grad.type.dtype is x.type.dtype else bind("cast", grad, dtype=x.type.dtype)


def _swap_last(x):
    perm = tuple(range(x.type.rank - 2)) + (x.type.rank - 1, x.type.rank - 2)
    return bind("transpose", x, perm=perm)


def matmul(a: Any, b: Any) -> Any:
    """Matrix product with NumPy's rules (batched, broadcasting batch dims, 1-D operands).

    >>> irf.matmul(irf.tensor([[1.0, 2.0]]), irf.tensor([3.0, 4.0])).numpy()
    array([11.], dtype=float32)
    """
    return bind("matmul", a, b)


# -- einsum ---------------------------------------------------------------------------------

def parse_einsum(equation: str, n_operands: int | None = None) -> tuple[list[str], str]:
    """Split ``equation`` into the operands' subscripts and the output's (implicit made explicit).

    >>> parse_einsum("ij,jk")
    (['ij', 'jk'], 'ik')
    """
    eq = equation.replace(" ", "")
    if "." in eq:
        raise UnsupportedOpError(
            f"einsum: an einsum node's equation cannot hold an ellipsis ('...'), got {equation!r}; "
            "irf.einsum rewrites '...' into letters (irflow.ops.linalg.expand_ellipsis)"
        )
    lhs, arrow, out = eq.partition("->")
    ins = lhs.split(",")
    for s in ins + [out]:
        bad = [c for c in s if not (c.isascii() and c.isalpha())]
        if bad:
            raise ShapeError(f"einsum: {equation!r} has {bad[0]!r} where a subscript letter belongs")
    if n_operands is not None and len(ins) != n_operands:
        raise ShapeError(f"einsum: {equation!r} names {len(ins)} operands, got {n_operands}")
    used = "".join(ins)
    if not arrow:  # implicit: the letters used exactly once, sorted (ASCII, as NumPy)
        out = "".join(sorted(c for c in set(used) if used.count(c) == 1))
    if len(set(out)) != len(out):
        raise ShapeError(f"einsum: output subscripts {out!r} of {equation!r} repeat a letter")
    missing = [c for c in out if c not in used]
    if missing:
        raise ShapeError(f"einsum: output letter {missing[0]!r} of {equation!r} names no operand axis")
    return ins, out


def canonical_einsum(ins: list[str], out: str) -> str:
    return ",".join(ins) + "->" + out


def _einsum_type(*operands: TensorType, equation: str) -> TensorType:
    dtype = _numeric_dtype("einsum", *operands)
    ins, out = parse_einsum(equation, len(operands))
    shapes = ", ".join(str(t.shape) for t in operands)
    sizes: dict[str, Dim] = {}
    for i, (sub, t) in enumerate(zip(ins, operands)):
        if len(sub) != t.rank:
            raise ShapeError(f"einsum: operand {i} has rank {t.rank} but {sub!r} in {equation!r} names {len(sub)} axes (shapes {shapes})")
        for c, d in zip(sub, t.shape):
            if c in sizes and not _agree(sizes[c], d):
                raise ShapeError(f"einsum: letter {c!r} of {equation!r} is {sizes[c]} in one place and {d} in another (shapes {shapes})")
            sizes[c] = _merge(sizes[c], d) if c in sizes else d
    return TensorType(dtype=dtype, shape=tuple(sizes[c] for c in out))


defop("einsum", _einsum_type, inputs=(1, None), attrs={"equation": Attr("str")}, family="linalg",
      doc="Einstein summation in NumPy's notation (explicit or implicit; no ellipsis).")


def _einsum_batch(operands, dims, size, *, equation):
    # A fresh letter names the batch axis: inserted at its place in each batched operand's
    # subscripts and put first in the output. Unbatched operands keep theirs.
    ins, out = parse_einsum(equation, len(operands))
    b = next(c for c in string.ascii_letters if c not in equation)
    subs = [s if d is None else s[:d] + b + s[d:] for s, d in zip(ins, dims)]
    return bind("einsum", *operands, equation=canonical_einsum(subs, b + out)), 0


defbatch("einsum", _einsum_batch)


@defvjp("einsum")
def _einsum_vjp(g, *operands, out, equation):
    # The gradient of operand i is itself an einsum: g and the other operands contracted to
    # operand i's subscripts. Letters only operand i has (summed away in the forward) are not
    # in that einsum; they come back as size-1 axes broadcast to operand i's shape. A letter
    # repeated in operand i (a diagonal, "ii->i") is renamed apart ("ia") and tied back with
    # an identity matrix delta_ia, which needs that letter's size to be known.
    ins, out_sub = parse_einsum(equation, len(operands))
    unused = iter(c for c in string.ascii_letters if c not in equation)
    grads = []
    for i, (sub, x) in enumerate(zip(ins, operands)):
        if not x.type.dtype.is_float:
            grads.append(None)
            continue
        others = [j for j in range(len(operands)) if j != i]
        subs, args = [out_sub] + [ins[j] for j in others], [g] + [operands[j] for j in others]
        target = ""
        for k, c in enumerate(sub):
            if c in target:
                size = x.type.shape[k]
                if not isinstance(size, int):
                    raise UnsupportedOpError(
                        f"einsum: no gradient for operand {i} of {equation!r}: its repeated subscript {c!r} "
                        f"has the symbolic size {size!r} (the gradient needs an identity matrix of that size)"
                    )
                c2 = next(unused)
                subs.append(c + c2)
                args.append(np.eye(size, dtype=x.type.dtype.numpy))
                c = c2
            target += c
        seen = set("".join(subs))
        kept = "".join(c for c in target if c in seen)
        if len(subs) == 1:  # a single operand and no diagonal: g itself, maybe transposed
            gi = g if kept == out_sub else bind("transpose", g, perm=tuple(out_sub.index(c) for c in kept))
        else:
            gi = bind("einsum", *args, equation=canonical_einsum(subs, kept))
        dropped = tuple(k for k, c in enumerate(target) if c not in seen)
        if dropped:
            gi = bind("broadcast_like", bind("expand_dims", gi, axes=dropped), x)
        grads.append(_as_input(gi, x))
    return tuple(grads)


def _shape_of(x) -> tuple:
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else np.shape(x)


def expand_ellipsis(equation: str, operands: tuple) -> tuple[str, tuple]:
    """Rewrite an einsum with ``...`` into one with letters only, as NumPy reads it.

    Each operand's ``...`` covers its dims that have no letter; these broadcast across
    operands right-aligned (NumPy's rule) and each broadcast position gets a fresh letter. A
    size-1 dim facing a larger one is squeezed out of its operand (a missing letter is how
    einsum broadcasts), so the einsum node never needs size-1 broadcasting, and the squeeze's
    own VJP rule takes care of the gradient. An implicit output is ``...`` then the letters
    used once, sorted, as NumPy.

    >>> expand_ellipsis("...ij,...jk", (np.zeros((2, 3, 4)), np.zeros((4, 5))))[0]
    'Aij,jk->Aik'
    """
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(operands):
        raise ShapeError(f"einsum: {equation!r} names {len(ins)} operands, got {len(operands)}")
    for sub in ins + [out]:
        if sub.count("...") > 1 or sub.replace("...", "").count("."):
            raise ShapeError(f"einsum: {equation!r}: '.' only appears as one '...' per operand")
    shapes = [_shape_of(x) for x in operands]
    # The dims each operand's ellipsis covers, and their broadcast (right-aligned).
    covered = []
    for i, (sub, shape) in enumerate(zip(ins, shapes)):
        n = len(shape) - len(sub.replace("...", ""))
        if "..." not in sub or n < 0:
            n = 0  # rank errors are the type rule's to report
        start = sub.index("...") if "..." in sub else 0
        covered.append((start, shape[start:start + n]))
    n_ell = max(len(dims) for _, dims in covered)
    try:
        broadcast = broadcast_shape(*(dims for _, dims in covered))
    except ShapeError:
        shown = ", ".join(str(s) for s in shapes)
        raise ShapeError(f"einsum: the '...' dims of {equation!r} do not broadcast (shapes {shown})") from None
    fresh = [c for c in string.ascii_uppercase + string.ascii_lowercase if c not in eq][:n_ell]
    if len(fresh) < n_ell:
        raise ShapeError(f"einsum: {equation!r} needs more letters than ASCII has")
    new_ins, new_ops = [], []
    for sub, x, (start, dims) in zip(ins, operands, covered):
        letters, squeeze = "", []
        for j, d in enumerate(dims):
            p = n_ell - len(dims) + j
            if d == 1 and broadcast[p] != 1:
                squeeze.append(start + j)
            else:
                letters += fresh[p]
        new_ins.append(sub.replace("...", letters))
        new_ops.append(bind("squeeze", x, axes=tuple(squeeze)) if squeeze else x)
    if not arrow:
        named = "".join(sub.replace("...", "") for sub in ins)
        out = "".join(fresh) + "".join(sorted(c for c in set(named) if named.count(c) == 1))
    elif "..." in out:
        out = out.replace("...", "".join(fresh))
    elif n_ell:
        raise ShapeError(f"einsum: {equation!r} has '...' dims but its output has no '...' to put them")
    return canonical_einsum(new_ins, out), tuple(new_ops)


def einsum(equation: str, *operands: Any) -> Any:
    """Einstein summation, NumPy's notation: explicit ``"ij,jk->ik"``, implicit ``"ij,jk"``
    and ``...`` for broadcast dims (``"...ij,...jk->...ik"``).

    The einsum node stores an explicit equation of letters only (``expand_ellipsis``).

    >>> irf.einsum("ij,j->i", irf.tensor([[1.0, 2.0], [3.0, 4.0]]), irf.tensor([1.0, 1.0])).numpy()
    array([3., 7.], dtype=float32)
    >>> irf.einsum("...i,...i", irf.tensor(np.ones((2, 3))), irf.tensor(np.ones(3))).numpy()
    array([3., 3.])
    """
    if "." in equation:
        equation, operands = expand_ellipsis(equation, operands)
    ins, out = parse_einsum(equation, len(operands))
    return bind("einsum", *operands, equation=canonical_einsum(ins, out))


__all__ = ["matmul", "einsum"]
