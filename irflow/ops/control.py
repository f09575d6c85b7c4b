"""Control-flow ops: ``cond``, ``scan``, ``while_loop``, each holding nested Graphs as attrs.

Every nested graph is *closed*: a value of an enclosing graph that a branch or body uses
(a captured tensor, a Variable's read) is an explicit input of the node, passed to the nested
graph as one of its leading "const" inputs. So a node is self-contained: it can be moved,
differentiated, pruned and lowered without looking at an outer scope.

- ``cond(pred, *operands; then_branch, else_branch)``: both branches take the operands and
  return the same number of outputs with the same dtypes and ranks; ``pred`` is a 0-d bool.
- ``scan(*consts, *init, *xs; body, num_consts, num_carry, length, reverse)``: ``body(consts...,
  carry..., x_t...) -> (carry..., y_t...)``; outputs are the final carry then each ``y``
  stacked along a new leading axis (``jax.lax.scan``). With ``reverse`` the steps run from the
  last index to the first and ``ys[t]`` is still the output of step ``t``. With
  ``dynamic_length`` the inputs are ``(*consts, *init, n)``: ``n`` is a run-time int64 scalar
  step count (``max(n, 0)`` steps), nothing is scanned and the ys' leading dim is unknown
  (ONNX Loop's run-time ``M`` with scan outputs, without an index vector of ``n`` rows).
- ``while_loop(*consts, *carries; cond_graph, body_graph, num_consts, max_iterations)``:
  ``cond_graph(consts..., carry...) -> bool[]``, ``body_graph(consts..., carry...) -> carry...``;
  with ``max_iterations`` the loop also stops after that many steps (as ONNX Loop's ``M``).

VJP rules (see docs/control-flow.md): the gradient of ``cond`` is a ``cond`` of the branch
gradient graphs; the gradient of ``scan`` is a reverse ``scan`` over the per-step carries
(saved by a forward ``scan`` that also emits its carry-in at each step; the body is
recomputed from them inside the backward step); ``while_loop`` with ``max_iterations`` is
differentiated as the masked ``scan`` of that many steps; without it, it raises.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from irflow.errors import DTypeError, IrflowError, IRValidationError, ShapeError
from irflow.ir.dtypes import DType
from irflow.ir.graph import Graph
from irflow.ir.types import TensorType
from irflow.ops.dispatch import bind
from irflow.ops.registry import Attr, defbatch, defop, defvjp
from irflow.ops.special import graph_call_type
from irflow.ops.transforms import graph_transform


# -- type helpers -------------------------------------------------------------------------------
def _merge_dim(a, b):
    return a if a == b else None


def _same_kind(what: str, want: TensorType, got: TensorType) -> None:
    """dtype and rank equal, known int dims equal: the contract of a loop carry / branch output."""
    if want.dtype != got.dtype:
        raise DTypeError(f"{what}: dtype {got.dtype.value} differs from {want.dtype.value} ({got} vs {want})")
    if want.rank != got.rank:
        raise ShapeError(f"{what}: rank {got.rank} differs from {want.rank} ({got} vs {want})")
    for a, b in zip(want.shape, got.shape):
        if isinstance(a, int) and isinstance(b, int) and a != b:
            raise ShapeError(f"{what}: shape {got.shape} differs from {want.shape}")


def _check_graph(op: str, attr: str, g: Any) -> Graph:
    if not isinstance(g, Graph):
        raise IRValidationError(f"{op}: attribute '{attr}' must be an irflow Graph, got {type(g).__name__}")
    return g


def _check_pred(op: str, t: TensorType | None) -> None:
    if t is None:
        raise IRValidationError(f"{op}: the predicate is missing")
    if t.dtype is not DType.bool or any(d != 1 for d in t.shape):
        raise DTypeError(f"{op}: the predicate must be a bool with one element (bool[]), got {t}")


# -- cond ---------------------------------------------------------------------------------------
def _cond_type(pred, *operands, then_branch, else_branch):
    _check_pred("cond", pred)
    _check_graph("cond", "then_branch", then_branch)
    _check_graph("cond", "else_branch", else_branch)
    t_out = graph_call_type(operands, then_branch, "cond then_branch")
    e_out = graph_call_type(operands, else_branch, "cond else_branch")
    if len(t_out) != len(e_out):
        raise IRValidationError(
            f"cond: then_branch {then_branch.name!r} returns {len(t_out)} value(s), else_branch {else_branch.name!r} returns {len(e_out)}"
        )
    merged = []
    for i, (a, b) in enumerate(zip(t_out, e_out)):
        if a.dtype != b.dtype or a.rank != b.rank:
            raise IRValidationError(
                f"cond: output {i} is {a} in then_branch {then_branch.name!r} but {b} in else_branch {else_branch.name!r} "
                "(dtypes and ranks must agree)"
            )
        merged.append(TensorType(dtype=a.dtype, shape=tuple(_merge_dim(x, y) for x, y in zip(a.shape, b.shape))))
    return tuple(merged) if len(merged) != 1 else merged[0]


defop("cond", _cond_type, inputs=(1, None), attrs={"then_branch": Attr("graph"), "else_branch": Attr("graph")},
      family="control", doc="then_branch(*operands) if pred else else_branch(*operands); both graphs closed.")


# -- scan ---------------------------------------------------------------------------------------
def _scan_parts(inputs: Sequence, num_consts: int, num_carry: int) -> tuple[list, list, list]:
    return list(inputs[:num_consts]), list(inputs[num_consts:num_consts + num_carry]), list(inputs[num_consts + num_carry:])


def _scan_type(*inputs, body, num_consts, num_carry, length, reverse, dynamic_length=False):
    _check_graph("scan", "body", body)
    if num_consts < 0 or num_carry < 0 or num_consts + num_carry + int(bool(dynamic_length)) > len(inputs):
        raise IRValidationError(f"scan: num_consts={num_consts}, num_carry={num_carry} do not fit {len(inputs)} inputs")
    if dynamic_length:
        # the step count is the last input, a run-time int64 scalar; nothing is scanned over
        if length is not None or len(inputs) != num_consts + num_carry + 1:
            raise IRValidationError("scan: with dynamic_length the inputs are (consts..., carry..., length), with no "
                                    "scanned inputs and no 'length' attribute")
        n_in = inputs[-1]
        if n_in.dtype != DType.int64 or n_in.rank != 0:
            raise ShapeError(f"scan: the run-time length must be an int64 scalar, got {n_in}")
        inputs = inputs[:-1]
    consts, carry, xs = _scan_parts(inputs, num_consts, num_carry)
    if length is not None and (not isinstance(length, int) or length < 0):
        raise IRValidationError(f"scan: length must be a non-negative int or None, got {length!r}")
    n = length
    for i, x in enumerate(xs):
        if x.rank == 0:
            raise ShapeError(f"scan: scanned input {i} is 0-d ({x}); it needs a leading axis to scan over")
        d = x.shape[0]
        if n is None:
            n = d
        elif isinstance(n, int) and isinstance(d, int) and n != d:
            raise ShapeError(f"scan: scanned input {i} has length {d}, expected {n} (length attr or the first scanned input)")
    if not xs and length is None and not dynamic_length:
        raise IRValidationError("scan: with no scanned inputs the 'length' attribute is required")
    slices = [TensorType(dtype=x.dtype, shape=x.shape[1:]) for x in xs]
    outs = graph_call_type(tuple(consts + carry + slices), body, "scan body")
    if len(outs) < num_carry:
        raise IRValidationError(f"scan: body {body.name!r} returns {len(outs)} value(s), fewer than its {num_carry} carries")
    for i, (c, o) in enumerate(zip(carry, outs)):
        _same_kind(f"scan: body {body.name!r} carry {i} (output {body.outputs[i].name!r}) must keep the type of its input", c, o)
    ys = [TensorType(dtype=o.dtype, shape=(n,) + o.shape) for o in outs[num_carry:]]
    res = tuple(carry) + tuple(ys)
    return res if len(res) != 1 else res[0]


defop("scan", _scan_type, inputs=(1, None),
      attrs={"body": Attr("graph"), "num_consts": Attr("int", 0), "num_carry": Attr("int"),
             "length": Attr("int", None, optional=True), "reverse": Attr("bool", False),
             "dynamic_length": Attr("bool", False)},
      family="control", doc="jax.lax.scan: body(consts, carry, x_t) -> (carry, y_t); outputs final carry, stacked ys. "
                            "With dynamic_length the last input is an int64 scalar step count and nothing is scanned.")


# -- while_loop ---------------------------------------------------------------------------------
def _while_type(*inputs, cond_graph, body_graph, num_consts, max_iterations):
    _check_graph("while_loop", "cond_graph", cond_graph)
    _check_graph("while_loop", "body_graph", body_graph)
    if not 0 <= num_consts <= len(inputs):
        raise IRValidationError(f"while_loop: num_consts={num_consts} does not fit {len(inputs)} inputs")
    if max_iterations is not None and (not isinstance(max_iterations, int) or max_iterations < 0):
        raise IRValidationError(f"while_loop: max_iterations must be a non-negative int or None, got {max_iterations!r}")
    carry = inputs[num_consts:]
    conds = graph_call_type(inputs, cond_graph, "while_loop cond_graph")
    if len(conds) != 1:
        raise IRValidationError(f"while_loop: cond_graph {cond_graph.name!r} must return one bool, it returns {len(conds)} values")
    p = conds[0]
    try:
        _check_pred("while_loop", p)
    except DTypeError as e:
        raise DTypeError(f"{e} (cond_graph {cond_graph.name!r})") from None
    outs = graph_call_type(inputs, body_graph, "while_loop body_graph")
    if len(outs) != len(carry):
        raise IRValidationError(f"while_loop: body_graph {body_graph.name!r} returns {len(outs)} value(s) for {len(carry)} loop carries")
    for i, (c, o) in enumerate(zip(carry, outs)):
        _same_kind(f"while_loop: body_graph {body_graph.name!r} carry {i} must keep the type of its input", c, o)
    return tuple(carry) if len(carry) != 1 else carry[0]


defop("while_loop", _while_type, inputs=(0, None),
      attrs={"cond_graph": Attr("graph"), "body_graph": Attr("graph"), "num_consts": Attr("int", 0),
             "max_iterations": Attr("int", None, optional=True)},
      family="control", doc="while cond_graph(consts, carry): carry = body_graph(consts, carry); at most max_iterations steps.")


# -- gradient graphs of nested graphs -----------------------------------------------------------
def graph_vjp(graph: Graph, wrt: Sequence[int], name: str | None = None) -> Graph:
    """The graph ``(inputs..., ct per float output...) -> (grad of input i for i in wrt)``.

    Cotangents are positional (one per float output, duplicates and pass-through outputs
    allowed); a gradient nobody reaches is ``zeros_like`` of its input. All inputs are kept,
    so two branches' gradient graphs have the same signature.
    """
    from irflow.ops.builder import GraphBuilder

    backward, replay = graph_transform("backward"), graph_transform("replay")

    b = GraphBuilder(name or f"{graph.name}_vjp")
    env: dict[str, Any] = {}
    for v in graph.inputs:
        env[v.name] = b.input(b.free_name(v.name), v.type.dtype, v.type.shape)
    for nm, arr in graph.initializers.items():
        env[nm] = b.constant(arr, name=nm)
    with b:
        replay(graph, b, env)
        seeds: dict[str, Any] = {}
        for i, v in enumerate(graph.outputs):
            if not v.type.dtype.is_float:
                continue
            ct = b.input(b.free_name(f"ct_{i}"), v.type.dtype, v.type.shape)
            seeds[v.name] = seeds[v.name] + ct if v.name in seeds else ct
        wrt_names = [graph.inputs[i].name for i in wrt]
        grads = backward(graph, env, seeds, list(dict.fromkeys(wrt_names)))
        for nm in wrt_names:
            g = grads.get(nm)
            b.output(g if g is not None else bind("zeros_like", env[nm]))
    return graph_transform("prune")(b.build())


def inline(b, graph: Graph, args: Sequence) -> tuple:
    """Add ``graph``'s nodes to builder ``b`` applied to ``args``; return its outputs."""
    replay = graph_transform("replay")
    env = dict(zip(graph.input_names, args))
    for nm, arr in graph.initializers.items():
        env[nm] = b.constant(arr, name=nm)
    replay(graph, b, env)
    return tuple(env[nm] for nm in graph.output_names)


def _as_tuple(x) -> tuple:
    return x if isinstance(x, tuple) else (x,)


def _float_idx(types: Sequence[TensorType]) -> list[int]:
    return [i for i, t in enumerate(types) if t.dtype.is_float]


# -- cond VJP: a cond of the branch gradients ---------------------------------------------------
@defvjp("cond")
def _cond_vjp(g, pred, *operands, out, then_branch, else_branch):
    gs = _as_tuple(g)
    wrt = _float_idx([o.type for o in operands])
    fouts = _float_idx([v.type for v in then_branch.outputs])
    if not wrt or not fouts:
        return (None,) * (1 + len(operands))
    tg = graph_vjp(then_branch, wrt, f"{then_branch.name}_vjp")
    eg = graph_vjp(else_branch, wrt, f"{else_branch.name}_vjp")
    res = _as_tuple(bind("cond", pred, *operands, *[gs[i] for i in fouts], then_branch=tg, else_branch=eg))
    grads: list = [None] * len(operands)
    for i, r in zip(wrt, res):
        grads[i] = r
    return (None, *grads)


# -- scan VJP: a reverse scan over the saved per-step carries -----------------------------------
_SAVERS: dict[int, tuple[Graph, Graph]] = {}  # id(body) -> (body, its saver): one saver per body


def _body_with_carry_out(body: Graph, num_consts: int, num_carry: int) -> Graph:
    """``body`` that also emits its carry inputs as extra per-step outputs (the residuals)."""
    hit = _SAVERS.get(id(body))
    if hit is not None and hit[0] is body:
        return hit[1]
    if len(_SAVERS) > 512:
        _SAVERS.clear()
    carry_in = body.inputs[num_consts:num_consts + num_carry]
    saver = Graph(name=f"{body.name}_save", inputs=body.inputs, outputs=body.outputs + tuple(carry_in),
                  nodes=body.nodes, initializers=body.initializers, opset_version=body.opset_version)
    _SAVERS[id(body)] = (body, saver)
    return saver


def _backward_body(body: Graph, num_consts: int, num_carry: int, float_consts: list[int],
                   float_carry: list[int], float_xs: list[int], float_ys: list[int]) -> Graph:
    """One backward step: (consts..., ct_carry[float]..., acc[float consts]..., carry_t..., x_t...,
    ct_y[float]...) -> (ct_carry_prev[float]..., acc + dconsts..., dx_t[float]...)."""
    from irflow.ops.builder import GraphBuilder

    n_x = len(body.inputs) - num_consts - num_carry
    wrt = [i for i in float_consts] + [num_consts + i for i in float_carry] + [num_consts + num_carry + i for i in float_xs]
    vg = graph_vjp(body, wrt, f"{body.name}_vjp")
    b = GraphBuilder(f"{body.name}_bwd")
    ins = body.inputs
    consts = [b.input(f"c_{i}", ins[i].type.dtype, ins[i].type.shape) for i in range(num_consts)]
    ct_c = [b.input(f"ct_carry_{i}", ins[num_consts + i].type.dtype, ins[num_consts + i].type.shape) for i in float_carry]
    acc = [b.input(f"acc_{i}", ins[i].type.dtype, ins[i].type.shape) for i in float_consts]
    carry = [b.input(f"carry_{i}", ins[num_consts + i].type.dtype, ins[num_consts + i].type.shape) for i in range(num_carry)]
    xs = [b.input(f"x_{i}", ins[num_consts + num_carry + i].type.dtype, ins[num_consts + num_carry + i].type.shape) for i in range(n_x)]
    outs = body.outputs
    ct_y = [b.input(f"ct_y_{j}", outs[num_carry + j].type.dtype, outs[num_carry + j].type.shape) for j in float_ys]
    # cotangents of the body's float outputs, in output order: carries then ys
    by_carry = dict(zip(float_carry, ct_c))
    by_y = dict(zip(float_ys, ct_y))
    cts = []
    for k, v in enumerate(outs):
        if not v.type.dtype.is_float:
            continue
        if k < num_carry:
            cts.append(by_carry[k])
        else:
            cts.append(by_y[k - num_carry])
    with b:  # the step's gradient graph inlined (a nested `call` would cost an Interpreter per step)
        res = inline(b, vg, [*consts, *carry, *xs, *cts])
        d_consts = res[:len(float_consts)]
        d_carry = res[len(float_consts):len(float_consts) + len(float_carry)]
        d_xs = res[len(float_consts) + len(float_carry):]
        b.output(*d_carry, *[a + d for a, d in zip(acc, d_consts)], *d_xs)
    return b.build()


def _save_in_forward_node(out, inputs, body: Graph, saver: Graph):
    """Swap the forward scan node (in the builder the backward pass extends) for the same
    node with ``saver`` as body, whose extra outputs are the per-step carries; return them.

    The swap keeps the node's name, inputs and first outputs, so everything already built on
    it is unchanged; the forward then runs once, not twice. None when the forward node is
    not a node of the active builder (an eager tape's gradient reads forward values as inputs).
    """
    from irflow.ir.graph import Node, Value
    from irflow.ops.builder import SymbolicTensor
    from irflow.ops.dispatch import BUILDER_STACK
    from irflow.ops.registry import get_op

    first = _as_tuple(out)[0] if out is not None else None
    b = BUILDER_STACK[-1] if BUILDER_STACK else None
    if b is None or not isinstance(first, SymbolicTensor) or first.builder is not b:
        return None
    for i in range(len(b.nodes) - 1, -1, -1):
        node = b.nodes[i]
        if any(v.name == first.name for v in node.outputs):
            break
    else:
        return None
    if node.op != "scan" or node.outputs[0].name != first.name or node.inputs != tuple(x.name for x in inputs):
        return None
    if node.attrs["body"] is saver:  # swapped by an earlier gradient of the same node (jacobian rows)
        n_saved = len(saver.outputs) - len(body.outputs)
        return tuple(SymbolicTensor(b, v.name, v.type) for v in node.outputs[len(node.outputs) - n_saved:])
    if node.attrs["body"] is not body:
        return None
    attrs = {**node.attrs, "body": saver}
    types = get_op("scan").infer_type(tuple(b.types[n] for n in node.inputs), attrs)
    extra = tuple(Value(name=b.fresh_name(f"{node.name}_carry_in_{k}"), type=t)
                  for k, t in enumerate(types[len(node.outputs):]))
    b.nodes[i] = Node(op="scan", inputs=node.inputs, outputs=node.outputs + extra, attrs=attrs, name=node.name)
    for v in extra:
        b.types[v.name] = v.type
    return tuple(SymbolicTensor(b, v.name, v.type) for v in extra)


@defvjp("scan")
def _scan_vjp(g, *inputs, out, body, num_consts, num_carry, length, reverse, dynamic_length=False):
    gs = _as_tuple(g)
    # a run-time length gets no gradient; the backward scan runs over the saved per-step
    # carries / the ys cotangents, which are that many rows long, so it needs no length
    stepped = inputs[:-1] if dynamic_length else inputs
    consts, carry, xs = _scan_parts(stepped, num_consts, num_carry)
    fc = _float_idx([c.type for c in consts])
    fcar = _float_idx([c.type for c in carry])
    fx = _float_idx([x.type for x in xs])
    fy = _float_idx([v.type for v in body.outputs[num_carry:]])
    if not (fc or fcar or fx) or not (fcar or fy):
        return (None,) * len(inputs)
    # the carry at the start of every step: from the forward node itself when it is in the
    # builder being extended, else from a second forward scan that saves it
    saver = _body_with_carry_out(body, num_consts, num_carry)
    saved = _save_in_forward_node(out, inputs, body, saver)
    if saved is None:
        fwd = _as_tuple(bind("scan", *inputs, body=saver, num_consts=num_consts, num_carry=num_carry, length=length,
                             reverse=reverse, dynamic_length=dynamic_length))
        saved = fwd[len(fwd) - num_carry:]
    bwd = _backward_body(body, num_consts, num_carry, fc, fcar, fx, fy)
    ct_carry = [gs[i] for i in fcar]
    ct_ys = [gs[num_carry + j] for j in fy]
    acc0 = [bind("zeros_like", consts[i]) for i in fc]
    res = _as_tuple(bind("scan", *consts, *ct_carry, *acc0, *saved, *xs, *ct_ys, body=bwd, num_consts=num_consts,
                         num_carry=len(fcar) + len(fc), length=length, reverse=not reverse))
    d_init = res[:len(fcar)]
    d_consts = res[len(fcar):len(fcar) + len(fc)]
    d_xs = res[len(fcar) + len(fc):]
    grads: list = [None] * len(inputs)
    for i, d in zip(fc, d_consts):
        grads[i] = d
    for i, d in zip(fcar, d_init):
        grads[num_consts + i] = d
    for i, d in zip(fx, d_xs):
        grads[num_consts + num_carry + i] = d
    return tuple(grads)


# -- while_loop VJP: the masked scan of max_iterations steps -------------------------------------
def masked_scan_body(cond_graph: Graph, body_graph: Graph, num_consts: int) -> Graph:
    """A scan body equivalent to the while loop: carry (active, carry...), one step is
    ``p = active and cond(carry); carry = where(p, body(carry), carry); active = p``."""
    from irflow.ops.builder import GraphBuilder

    b = GraphBuilder(f"{body_graph.name}_masked")
    ins = body_graph.inputs
    consts = [b.input(f"c_{i}", v.type.dtype, v.type.shape) for i, v in enumerate(ins[:num_consts])]
    active = b.input("active", DType.bool, ())
    carry = [b.input(f"carry_{i}", v.type.dtype, v.type.shape) for i, v in enumerate(ins[num_consts:])]
    with b:
        p = bind("logical_and", active, bind("reshape", inline(b, cond_graph, [*consts, *carry])[0], shape=()))
        new = inline(b, body_graph, [*consts, *carry])
        b.output(p, *[bind("where", p, n, c) for n, c in zip(new, carry)])
    return b.build()


@defvjp("while_loop")
def _while_vjp(g, *inputs, out, cond_graph, body_graph, num_consts, max_iterations):
    if max_iterations is None:
        raise IrflowError(
            "differentiating while_loop needs a bound on its trip count: pass max_iterations=N to irf.while_loop "
            "(it is then differentiated as a masked scan of N steps), or use irf.fori_loop / irf.scan with a known length"
        )
    gs = _as_tuple(g)
    consts, carry = list(inputs[:num_consts]), list(inputs[num_consts:])
    body = masked_scan_body(cond_graph, body_graph, num_consts)
    active = bind("constant", value=np.asarray(True))
    res = _scan_vjp((None, *gs), *consts, active, *carry,
                    out=None, body=body, num_consts=num_consts, num_carry=1 + len(carry), length=max_iterations, reverse=False)
    return tuple(res[:num_consts]) + tuple(res[num_consts + 1:])


# -- batching rules (vmap) -----------------------------------------------------------------------
# Branches and bodies are batched as graphs (``autodiff.vmap_transform.batch_graph``, looked up in
# ops/transforms.py: ops sit below autodiff) with the same per-input batch axes as the node's inputs.


def _front_all(inputs, dims, size):
    from irflow.ops.batching import first_batched, materialize

    like = first_batched(inputs, dims)
    return [materialize(x, d, size, like) for x, d in zip(inputs, dims)]


def _pred_mask(pred, d, size, rank):
    """A batched bool[] predicate as a (size, 1, ..., 1) mask for rank-``rank`` batched values."""
    from irflow.ops.batching import to_front

    p = bind("reshape", to_front(pred, d), shape=(-1,) + (1,) * rank)
    return p


@defbatch("cond")
def _cond_batch(inputs, dims, size, *, then_branch, else_branch):
    pred, ops = inputs[0], list(inputs[1:])
    pd, od = dims[0], list(dims[1:])
    if pd is None:  # one branch for the whole batch: both branch graphs batched alike
        tg, _ = graph_transform("batch_graph")(then_branch, od, size, front="all")
        eg, _ = graph_transform("batch_graph")(else_branch, od, size, front="all")
        res = bind("cond", pred, *ops, then_branch=tg, else_branch=eg)
        res = res if isinstance(res, tuple) else (res,)
        return res, (0,) * len(res)
    # a predicate per example: run both branches on the whole batch and select per example
    outs = []
    branch_outs = []
    for g in (then_branch, else_branch):
        env = {v.name: (x, d) for v, x, d in zip(g.inputs, ops, od)}
        for nm, arr in g.initializers.items():
            env[nm] = (bind("constant", value=arr), None)
        graph_transform("batch_nodes")(g, env, size)
        branch_outs.append([env[v.name] for v in g.outputs])
    for (t, td), (e, ed) in zip(*branch_outs):
        t, e = _front_all([t, e, pred], [td, ed, pd], size)[:2]
        outs.append(bind("where", _pred_mask(pred, pd, size, t.type.rank - 1), t, e))
    return tuple(outs), (0,) * len(outs)


def _carry_fixed_point(body: Graph, lead_dims: list, carry_dims: list, tail_dims: list, size, n_carry: int,
                       front_extra: Sequence[int] = ()) -> tuple[list, Graph, list]:
    """Which carries must be batched: those batched on entry, plus those the batched body makes
    batched, until nothing changes. Returns the carry flags, the batched body and its output dims."""
    batched = [d is not None for d in carry_dims]
    while True:
        in_dims = lead_dims + [0 if f else None for f in batched] + tail_dims
        front = [i for i in range(n_carry) if batched[i]] + list(front_extra)
        g, odims = graph_transform("batch_graph")(body, in_dims, size, front=front)
        grown = [batched[i] or odims[i] is not None for i in range(n_carry)]
        if grown == batched:
            return batched, g, odims
        batched = grown


def _carry_inits(carry, carry_dims, batched, size, like):
    from irflow.ops.batching import materialize

    return [materialize(c, d, size, like) if f else c for c, d, f in zip(carry, carry_dims, batched)]


@defbatch("scan")
def _scan_batch(inputs, dims, size, *, body, num_consts, num_carry, length, reverse, dynamic_length=False):
    from irflow.ops.batching import first_batched, move_axis

    n_dyn = []
    if dynamic_length:
        if dims[-1] is not None:
            raise IrflowError("scan: the run-time length (last input of a dynamic_length scan) is batched: every "
                              "batch element would need its own step count; vmap over a scan of one length")
        n_dyn, inputs, dims = [inputs[-1]], inputs[:-1], dims[:-1]
    consts, carry, xs = _scan_parts(inputs, num_consts, num_carry)
    cd, kd, xd = _scan_parts(dims, num_consts, num_carry)
    like = first_batched(inputs, dims)
    # scanned inputs are sliced along axis 0: the batch axis must be elsewhere (1 if it was 0);
    # a step's slice then carries it one axis lower
    xs = [move_axis(x, 0, 1) if d == 0 else x for x, d in zip(xs, xd)]
    slice_dims = [None if d is None else (0 if d == 0 else d - 1) for d in xd]
    batched, g, odims = _carry_fixed_point(body, list(cd), list(kd), slice_dims, size, num_carry)
    init = _carry_inits(carry, kd, batched, size, like)
    res = bind("scan", *consts, *init, *xs, *n_dyn, body=g, num_consts=num_consts, num_carry=num_carry, length=length,
               reverse=reverse, dynamic_length=dynamic_length)
    res = res if isinstance(res, tuple) else (res,)
    out_dims = [0 if f else None for f in batched] + [None if d is None else d + 1 for d in odims[num_carry:]]
    return res, tuple(out_dims)


@defbatch("while_loop")
def _while_batch(inputs, dims, size, *, cond_graph, body_graph, num_consts, max_iterations):
    from irflow.ops.batching import first_batched
    from irflow.ops.builder import GraphBuilder

    consts, carry = list(inputs[:num_consts]), list(inputs[num_consts:])
    cd, kd = list(dims[:num_consts]), list(dims[num_consts:])
    like = first_batched(inputs, dims)
    n = len(carry)
    batched, body_b, _ = _carry_fixed_point(body_graph, cd, kd, [], size, n)
    in_dims = cd + [0 if f else None for f in batched]
    cond_b, (pdim,) = graph_transform("batch_graph")(cond_graph, in_dims, size)
    if pdim is None:  # every example stops at the same step
        res = bind("while_loop", *consts, *_carry_inits(carry, kd, batched, size, like), cond_graph=cond_b,
                   body_graph=body_b, num_consts=num_consts, max_iterations=max_iterations)
        res = res if isinstance(res, tuple) else (res,)
        return res, tuple(0 if f else None for f in batched)
    # examples stop at different steps: loop while ANY continues; a finished example keeps its carry
    batched = [True] * n
    in_dims = cd + [0] * n
    body_b, _ = graph_transform("batch_graph")(body_graph, in_dims, size, front="all")
    cond_b, _ = graph_transform("batch_graph")(cond_graph, in_dims, size, front="all")
    cb = GraphBuilder(f"{cond_graph.name}_any")
    bb = GraphBuilder(f"{body_graph.name}_masked")
    for g in (cb, bb):
        g_in = [g.input(v.name, v.type.dtype, v.type.shape) for v in body_b.inputs]
        with g:
            p = inline(g, cond_b, g_in)[0]
            if g is cb:
                alive = bind("reduce_sum", bind("cast", p, dtype=DType.int64), axes=None, keepdims=False)
                g.output(bind("reshape", bind("greater", alive, 0), shape=()))  # any example continues
            else:
                new = inline(g, body_b, g_in)
                olds = g_in[num_consts:]
                g.output(*[bind("where", _pred_mask(p, 0, size, o.type.rank - 1), nw, o) for nw, o in zip(new, olds)])
    res = bind("while_loop", *consts, *_carry_inits(carry, kd, batched, size, like), cond_graph=cb.build(),
               body_graph=bb.build(), num_consts=num_consts, max_iterations=max_iterations)
    res = res if isinstance(res, tuple) else (res,)
    return res, (0,) * n


__all__: list[str] = []
