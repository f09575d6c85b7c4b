"""``irf.cond``, ``irf.scan``, ``irf.while_loop``, ``irf.fori_loop``: Python control flow as IR.

Eagerly (no graph being built) each runs the Python functions directly: ``cond`` calls one
branch, the loops are Python loops of eager ops (so a GradientTape records them as usual).
Inside a trace or a Program each function is traced once into a nested, closed Graph by a
``NestedBuilder``: a symbolic tensor of an enclosing builder used inside (a closure, a
Variable's read) becomes an extra input of the nested graph and an explicit input of the
node ("const" inputs), so the node is self-contained.

>>> y = irf.cond(z > 0, lambda x: w1 * x, lambda x: w2 * x, x)            # doctest: +SKIP
>>> h, hs = irf.scan(lambda h, x: (irf.tanh(x @ wx + h @ wh),) * 2, h0, xs)  # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from irflow.errors import IrflowError
from irflow.frontends.structure import flatten, unflatten
from irflow.ir.graph import Graph, Value
from irflow.ir.types import TensorType
from irflow.ops.builder import GraphBuilder, SymbolicTensor
from irflow.ops.dispatch import BUILDER_STACK, bind


class NestedBuilder(GraphBuilder):
    """The builder of a branch or loop body: outer symbolic tensors become implicit inputs."""

    def __init__(self, name: str):
        super().__init__(name)
        self.captured: list[SymbolicTensor] = []  # outer tensors, in capture order
        self.capture_inputs: list[SymbolicTensor] = []  # the inputs standing for them here
        self._by_key: dict[tuple[int, str], SymbolicTensor] = {}

    def capture(self, x: SymbolicTensor) -> SymbolicTensor:
        if x.builder not in BUILDER_STACK:
            return super().capture(x)  # a value of a finished trace: the base class's error
        key = (id(x.builder), x.name)
        hit = self._by_key.get(key)
        if hit is None:
            hit = self.input(self.free_name(f"captured_{x.name}"), x.dtype, x.shape)
            self._by_key[key] = hit
            self.captured.append(x)
            self.capture_inputs.append(hit)
        return hit


class _Traced:
    """One traced function: its builder, declared inputs, flat outputs and output structure."""

    def __init__(self, builder: NestedBuilder, declared: list[SymbolicTensor], outs: list[SymbolicTensor], tree: Any):
        self.builder, self.declared, self.outs, self.tree = builder, declared, outs, tree


def _trace(fn: Callable, name: str, arg_types: Sequence[TensorType], arg_tree: Any, arg_names: Sequence[str],
           out_dtypes: Sequence[Any] | None = None, post: Callable | None = None) -> _Traced:
    """Run ``fn`` on symbolic inputs of ``arg_types`` (rebuilt into ``arg_tree``) in a new NestedBuilder."""
    b = NestedBuilder(name)
    declared = [b.input(b.free_name(n), t.dtype, t.shape) for n, t in zip(arg_names, arg_types)]
    with b:
        result = fn(*unflatten(arg_tree, iter(declared)))
        if post is not None:
            result = post(result)
        leaves: list = []
        tree = flatten(result, leaves)
        # leading outputs (loop carries) take their input's dtype when they are Python scalars
        dts = list(out_dtypes or ())
        outs = [b.to_symbolic(x, dts[i] if i < len(dts) else None) for i, x in enumerate(leaves)]
    return _Traced(b, declared, outs, tree)


def _close(traced: Sequence[_Traced], lead_declared: bool = False) -> tuple[list[Graph], list[SymbolicTensor]]:
    """Graphs with the same inputs: captures (union over ``traced``) then declared inputs,
    or declared then captures with ``lead_declared``. Returns the graphs and the outer tensors."""
    union: list[SymbolicTensor] = []
    seen: set[tuple[int, str]] = set()
    for t in traced:
        for x in t.builder.captured:
            k = (id(x.builder), x.name)
            if k not in seen:
                seen.add(k)
                union.append(x)
    graphs = []
    for t in traced:
        b = t.builder
        mine = {(id(x.builder), x.name): inp for x, inp in zip(b.captured, b.capture_inputs)}
        cap_vals = []
        for x in union:
            inp = mine.get((id(x.builder), x.name))
            if inp is None:  # the other branch uses it: an unused input here
                cap_vals.append(Value(name=b.fresh_name(f"unused_{x.name}"), type=x.type))
            else:
                cap_vals.append(Value(name=inp.name, type=inp.type))
        decl = [Value(name=s.name, type=s.type) for s in t.declared]
        inputs = decl + cap_vals if lead_declared else cap_vals + decl
        graphs.append(Graph(name=b.name, inputs=tuple(inputs), outputs=tuple(Value(name=s.name, type=s.type) for s in t.outs),
                            nodes=tuple(b.nodes), initializers=dict(b.initializers)))
    return graphs, union


def _as_tensors(tree: Any) -> Any:
    """Eager loop state: NumPy and Python leaves become Tensors (as the traced path makes them
    symbolic), so eager and traced results have the same types."""
    from irflow.frontends.eager import tensor

    leaves: list = []
    t = flatten(tree, leaves)
    conv = [tensor(x) if isinstance(x, (np.ndarray, np.generic, int, float, bool)) else x for x in leaves]
    return unflatten(t, iter(conv))


def _tracing() -> bool:
    return bool(BUILDER_STACK)


def _symbolic_leaves(leaves: list) -> list[SymbolicTensor]:
    b = BUILDER_STACK[-1]
    return [b.to_symbolic(x, None) for x in leaves]


def _as_list(x) -> list:
    return list(x) if isinstance(x, tuple) else [x]


# -- cond ---------------------------------------------------------------------------------------
def cond(pred: Any, true_fn: Callable, false_fn: Callable, *operands: Any) -> Any:
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)`` (``jax.lax.cond``).

    Eagerly (or for a Python bool) only the chosen branch runs. In a trace both branches are
    traced into one ``cond`` node; they must return the same structure, dtypes and ranks.
    Operands and results may be tensors or nested tuples/lists/dicts of them.

    >>> y = irf.cond(z > 0, lambda x: w1 * x, lambda x: w2 * x, x)    # doctest: +SKIP
    """
    if not _tracing() or isinstance(pred, (bool, np.bool_)):
        return true_fn(*operands) if bool(pred) else false_fn(*operands)
    b = BUILDER_STACK[-1]
    p = b.to_symbolic(pred, None)
    if p.ndim != 0 and all(d == 1 for d in p.shape):
        p = bind("reshape", p, shape=())
    leaves: list = []
    tree = flatten(tuple(operands), leaves)
    syms = _symbolic_leaves(leaves)
    types = [s.type for s in syms]
    names = [f"operand_{i}" for i in range(len(syms))]
    t = _trace(lambda *a: true_fn(*a), "then_branch", types, tree, names)
    f = _trace(lambda *a: false_fn(*a), "else_branch", types, tree, names)
    if t.tree != f.tree:
        raise IrflowError(f"irf.cond: the branches return different structures: true_fn gives {_describe(t.tree)}, "
                          f"false_fn gives {_describe(f.tree)}")
    (tg, fg), caps = _close([t, f], lead_declared=True)
    if not t.outs:
        return unflatten(t.tree, iter(()))
    res = _as_list(bind("cond", p, *syms, *caps, then_branch=tg, else_branch=fg))
    return unflatten(t.tree, iter(res))


def _describe(tree: Any) -> str:
    if tree is None:
        return "a tensor"
    if tree[0] is dict:
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in zip(tree[1], tree[2])) + "}"
    return f"{tree[0].__name__}[" + ", ".join(_describe(v) for v in tree[1]) + "]"


# -- scan ---------------------------------------------------------------------------------------
def scan(fn: Callable, init: Any, xs: Any = None, length: int | None = None, reverse: bool = False) -> tuple[Any, Any]:
    """``jax.lax.scan``: ``fn(carry, x) -> (carry, y)`` over the leading axis of ``xs``.

    Returns ``(final carry, ys)`` where each leaf of ``ys`` stacks the step outputs along a
    new leading axis. ``xs`` may be None with ``length`` given. With ``reverse=True`` the steps
    run from the last index down and ``ys[t]`` is still step ``t``'s output. In a trace the
    length may be symbolic: one graph serves every sequence length.

    >>> h, hs = irf.scan(lambda h, x: (irf.tanh(x @ wx + h @ wh),) * 2, h0, xs)   # doctest: +SKIP
    """
    if not _tracing():
        return _scan_eager(fn, init, xs, length, reverse)
    c_leaves: list = []
    c_tree = flatten(init, c_leaves)
    x_leaves: list = []
    x_tree = flatten(() if xs is None else xs, x_leaves)
    carry = _symbolic_leaves(c_leaves)
    xsyms = _symbolic_leaves(x_leaves)
    if not xsyms and length is None:
        raise IrflowError("irf.scan: xs is None (or empty), so length= is required")
    for s in xsyms:
        if not s.ndim:
            raise IrflowError(f"irf.scan: scanned value %{s.name} ({s.type}) is 0-d; it needs a leading axis")
    c_types = [s.type for s in carry]
    x_types = [TensorType(dtype=s.dtype, shape=s.shape[1:]) for s in xsyms]
    names = [f"carry_{i}" for i in range(len(carry))] + [f"x_{i}" for i in range(len(xsyms))]

    def post(result):
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise IrflowError(f"irf.scan: fn must return a pair (carry, y), got {type(result).__name__}")
        return tuple(result)

    body = _trace(lambda c, x: fn(c, None if xs is None else x), "scan_body", c_types + x_types, (tuple, (c_tree, x_tree)), names,
                  out_dtypes=[t.dtype for t in c_types], post=post)
    if body.tree[0] is not tuple or body.tree[1][0] != c_tree:
        got = body.tree[1][0] if body.tree and body.tree[0] is tuple else body.tree
        raise IrflowError(f"irf.scan: fn must return the carry with the structure of init ({_describe(c_tree)}), got {_describe(got)}")
    y_tree = body.tree[1][1]
    (g,), caps = _close([body])
    res = _as_list(bind("scan", *caps, *carry, *xsyms, body=g, num_consts=len(caps), num_carry=len(carry),
                        length=length, reverse=bool(reverse)))
    it = iter(res)
    new_carry = unflatten(c_tree, it)
    return new_carry, unflatten(y_tree, it)


def _scan_eager(fn, init, xs, length, reverse):
    from irflow.frontends.eager import tensor
    from irflow.ops.shape_join import stack

    x_leaves: list = []
    x_tree = flatten(() if xs is None else xs, x_leaves)
    x_leaves = [x if hasattr(x, "shape") and not isinstance(x, np.ndarray) else tensor(x) for x in x_leaves]
    n = length
    for x in x_leaves:
        if not x.shape:
            raise IrflowError("irf.scan: a scanned value is 0-d; it needs a leading axis")
        if n is None:
            n = x.shape[0]
        elif x.shape[0] != n:
            raise IrflowError(f"irf.scan: scanned values have leading dims {[a.shape[0] for a in x_leaves]}, expected {n}")
    if n is None:
        raise IrflowError("irf.scan: xs is None (or empty), so length= is required")
    carry = _as_tensors(init)
    ys: list = [None] * n
    y_tree = None
    for t in (range(n - 1, -1, -1) if reverse else range(n)):
        x_t = unflatten(x_tree, iter([x[t] for x in x_leaves]))
        out = fn(carry, None if xs is None else x_t)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise IrflowError(f"irf.scan: fn must return a pair (carry, y), got {type(out).__name__}")
        carry, y = out
        leaves: list = []
        y_tree = flatten(y, leaves)
        ys[t] = leaves
    if n == 0:
        return carry, None
    stacked = [stack([ys[t][j] for t in range(n)], axis=0) for j in range(len(ys[0]))]
    return carry, unflatten(y_tree, iter(stacked))


# -- while_loop ---------------------------------------------------------------------------------
def while_loop(cond_fn: Callable, body_fn: Callable, loop_vars: Any, max_iterations: int | None = None) -> Any:
    """``while cond_fn(vars): vars = body_fn(vars)``; returns the final ``vars`` (``jax.lax.while_loop``).

    ``loop_vars`` is a tensor or a tuple/list/dict of them, passed as ONE argument. With
    ``max_iterations`` the loop stops after at most that many steps, and the loop can be
    differentiated (as a masked scan of that many steps); without it, differentiating raises.

    >>> i, x = irf.while_loop(lambda v: v[1] < 100.0, lambda v: (v[0] + 1, v[1] * 2.0), (0, x0))  # doctest: +SKIP
    """
    if not _tracing():
        v, i = _as_tensors(loop_vars), 0
        while (max_iterations is None or i < max_iterations) and bool(cond_fn(v)):
            v = body_fn(v)
            i += 1
        return v
    leaves: list = []
    tree = flatten(loop_vars, leaves)
    carry = _symbolic_leaves(leaves)
    types = [s.type for s in carry]
    names = [f"carry_{i}" for i in range(len(carry))]

    def to_pred(p):
        s = BUILDER_STACK[-1].to_symbolic(p, None)
        return bind("reshape", s, shape=()) if s.ndim else s

    c = _trace(lambda v: cond_fn(v), "while_cond", types, (tuple, (tree,)), names, post=to_pred)
    body = _trace(lambda v: body_fn(v), "while_body", types, (tuple, (tree,)), names, out_dtypes=[t.dtype for t in types])
    if body.tree != tree:
        raise IrflowError(f"irf.while_loop: body_fn must return loop_vars' structure {_describe(tree)}, got {_describe(body.tree)}")
    (cg, bg), caps = _close([c, body])
    res = _as_list(bind("while_loop", *caps, *carry, cond_graph=cg, body_graph=bg, num_consts=len(caps),
                        max_iterations=max_iterations))
    return unflatten(tree, iter(res))


# -- fori_loop ----------------------------------------------------------------------------------
def fori_loop(lower: Any, upper: Any, body_fn: Callable, init: Any) -> Any:
    """``for i in range(lower, upper): val = body_fn(i, val)``; returns ``val`` (``jax.lax.fori_loop``).

    ``i`` is an int64 scalar tensor in every mode. With Python int bounds the loop is a
    ``scan`` of ``upper - lower`` steps (so it differentiates); with tensor bounds it is a
    ``while_loop`` (not differentiable).

    >>> y = irf.fori_loop(0, 10, lambda i, y: y * w, x)      # doctest: +SKIP
    """
    static = all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in (lower, upper))
    if not _tracing():
        from irflow.frontends.eager import tensor

        lo, hi = int(np.asarray(_value(lower))), int(np.asarray(_value(upper)))
        val = _as_tensors(init)
        for i in range(lo, hi):
            val = body_fn(tensor(np.int64(i)), val)
        return val
    if static:
        lo, hi = int(lower), int(upper)

        def step(carry, _):
            i, val = carry
            return (i + 1, body_fn(i, val)), ()

        (_, val), _ = scan(step, (np.asarray(lo, np.int64), init), None, length=max(hi - lo, 0))
        return val

    def c(v):
        return v[0] < v[1]

    def body(v):
        i, hi_, val = v
        return (i + 1, hi_, body_fn(i, val))

    _, _, val = while_loop(c, body, (_as_int64(lower), _as_int64(upper), init))
    return val


def _as_int64(bound: Any) -> Any:
    """A loop bound as an int64 scalar: Python ints as constants, tensors cast."""
    if isinstance(bound, (int, np.integer)) and not isinstance(bound, bool):
        return np.asarray(int(bound), np.int64)
    return bind("cast", bound, dtype="int64")


def _value(x):
    return x.numpy() if hasattr(x, "numpy") else x


__all__ = ["cond", "scan", "while_loop", "fori_loop"]
