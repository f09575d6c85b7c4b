"""ONNX import of If, Loop and Scan into irflow's ``cond``, ``scan`` and ``while_loop``.

A subgraph is imported by its own ``SubgraphContext`` whose builder is a
``control_flow.NestedBuilder``: a name the subgraph reads from an enclosing scope resolves
to the outer IR tensor, which the nested builder turns into an implicit input (so the IR
node stays closed, as every irflow control-flow node is).

- ``If`` -> ``cond(pred, *captured)``.
- ``Scan`` (opset 9+) -> ``scan``: inputs scanned along another axis are transposed first,
  reversed ones flipped; scan outputs likewise after. Opset 8 (a leading batch axis the body
  does not see): the body vectorized over the batch (``vmap_graph``), one ``scan`` over the sequence.
- ``Loop`` -> never a materialized ``range(M)``:
  * no scan outputs: a ``while_loop`` over (iter, cond, carried...), with
    ``max_iterations = M`` when ``M`` is a constant, ``iter < M`` in the condition otherwise;
  * ``cond_out`` passes ``cond_in`` through (or is a constant True) and there are scan outputs:
    a ``scan`` whose step counter is an extra carry: of ``length=M`` for a constant ``M`` (and a
    constant or absent initial cond), else of a run-time length (``dynamic_length``: the last
    input, ``max(M, 0)``, or 0 when the initial cond is False);
  * a data-dependent exit with scan outputs is not supported (UnsupportedOpError).
Sequence- and optional-typed values (test_if_seq, test_loop13_seq, ...) are not irflow types.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from irflow.errors import IrflowError, UnsupportedOpError
from irflow.frontends.control_flow import NestedBuilder, _close, _Traced
from irflow.frontends.onnx_import_base import ImportContext, importer, initializer_array, onnx_dim, to_dtype
from irflow.frontends.onnx_import_nodes import import_nodes
from irflow.ir.dtypes import DType
from irflow.ir.types import TensorType
from irflow.ops.dispatch import BUILDER_STACK, bind


class SubgraphContext(ImportContext):
    """Import state of one subgraph: own values first, then the enclosing scope's."""

    def __init__(self, parent: ImportContext, name: str):
        super().__init__(name, parent.fold_limit)
        self.strict = parent.strict
        self.builder = NestedBuilder(name)
        self.parent = parent

    def known_value(self, name: str):
        v = super().known_value(name)
        return v if v is not None or name in self.env else self.parent.known_value(name)

    def shape_value(self, name: str):
        v = super().shape_value(name)
        return v if v is not None or name in self.env else self.parent.shape_value(name)

    def tensor(self, name: str) -> Any:
        if name == "" or name in self.env or name in self.consts:
            return super().tensor(name)
        c = self.parent.known_value(name)
        if c is not None and name not in self.parent.weights:
            self.consts[name] = c  # a folded outer constant: a constant here too, still known
            return super().tensor(name)
        return self.parent.tensor(name)  # an outer tensor: captured when used here


def _value_type(vi: onnx.ValueInfoProto, where: str, fallback: TensorType | None = None) -> TensorType:
    t = vi.type
    if t.WhichOneof("value") is None and fallback is not None:  # an untyped formal input: the outer type
        return fallback
    if not t.HasField("tensor_type"):
        raise UnsupportedOpError(f"{where}: '{vi.name}' is not a tensor (sequence / optional values are not supported)")
    tt = t.tensor_type
    dtype = to_dtype(tt.elem_type, f"{where}: '{vi.name}'")
    if tt.HasField("shape"):
        return TensorType(dtype=dtype, shape=tuple(onnx_dim(d) for d in tt.shape.dim))
    if fallback is not None:
        return TensorType(dtype=dtype, shape=fallback.shape)
    raise UnsupportedOpError(f"{where}: subgraph input '{vi.name}' has no shape")


def import_subgraph(ctx: ImportContext, g: onnx.GraphProto, opset: int, where: str,
                    input_types: list[TensorType | None]) -> _Traced:
    """Import ``g`` into a nested builder; its formal inputs get ``input_types`` (or their own)."""
    sub = SubgraphContext(ctx, g.name or "subgraph")
    b = sub.builder
    declared = []
    for vi, t in zip(g.input, input_types + [None] * len(g.input)):
        typ = _value_type(vi, where, t)
        if t is not None:  # the outer value's type is what flows in (subgraph may declare less)
            typ = TensorType(dtype=typ.dtype, shape=t.shape) if typ.rank == t.rank else t
        s = b.input(b.free_name(vi.name), typ.dtype, typ.shape)
        sub.env[vi.name] = s
        declared.append(s)
    for init in g.initializer:
        arr = initializer_array(init)
        sub.weights[init.name] = arr
        sub.env[init.name] = b.constant(arr, name=init.name)
    import_nodes(sub, list(g.node), opset)
    with b:
        outs = [b.to_symbolic(sub.tensor(vo.name), None) for vo in g.output]
    for vo, o in zip(g.output, outs):
        _value_type(vo, where, o.type)  # sequence outputs: a clear error
    return _Traced(b, declared, outs, None)


def _need_graph(n) -> None:
    if not BUILDER_STACK:  # import-time folding runs importers eagerly: not for control flow
        raise IrflowError(f"{n.where()}: control flow is not folded at import time")


def _as_tuple(x) -> tuple:
    return x if isinstance(x, tuple) else (x,)


def _scalar_bool(x):
    return bind("reshape", x, shape=()) if x.ndim else x


@importer("If")
def _if(n):
    _need_graph(n)
    where = n.where()
    t = import_subgraph(n.ctx, n.attr("then_branch"), n.opset, where, [])
    e = import_subgraph(n.ctx, n.attr("else_branch"), n.opset, where, [])
    (tg, eg), caps = _close([t, e])
    return _as_tuple(bind("cond", _scalar_bool(n.input(0)), *caps, then_branch=tg, else_branch=eg))


@importer("Scan")
def _scan(n):
    _need_graph(n)
    if n.opset < 9 or (n.output_names and n.output_names[0] in getattr(n.ctx, "legacy_scans", ())):
        return _scan8(n)
    body_p = n.attr("body")
    k = int(n.attr("num_scan_inputs"))
    ins = [n.input(i) for i in range(len(n.input_names))]
    n_state = len(ins) - k
    state, xs = ins[:n_state], ins[n_state:]
    in_dirs = list(n.attr("scan_input_directions") or [0] * k)
    in_axes = list(n.attr("scan_input_axes") or [0] * k)
    n_out = len(body_p.output) - n_state
    out_dirs = list(n.attr("scan_output_directions") or [0] * n_out)
    out_axes = list(n.attr("scan_output_axes") or [0] * n_out)
    moved = []
    for x, d, a in zip(xs, in_dirs, in_axes):
        r = x.ndim
        a = a % r
        if a:
            x = bind("transpose", x, perm=(a,) + tuple(i for i in range(r) if i != a))
        if d:
            x = bind("flip", x, axes=(0,))
        moved.append(x)
    slice_types = [TensorType(dtype=x.dtype, shape=x.shape[1:]) for x in moved]
    body = import_subgraph(n.ctx, body_p, n.opset, n.where(), [s.type for s in state] + slice_types)
    (g,), caps = _close([body])
    res = _as_tuple(bind("scan", *caps, *state, *moved, body=g, num_consts=len(caps), num_carry=n_state,
                         length=None, reverse=False))
    outs = list(res[:n_state])
    for y, d, a in zip(res[n_state:], out_dirs, out_axes):
        if d:
            y = bind("flip", y, axes=(0,))
        r = y.ndim
        a = a % r
        if a:  # the scan axis goes to position a
            perm = list(range(1, r))
            perm.insert(a, 0)
            y = bind("transpose", y, perm=tuple(perm))
        outs.append(y)
    return tuple(outs)


def _scan8(n):
    """Opset-8 Scan: every state and scan input has a leading batch axis the body does not see
    (scan inputs are (batch, sequence, ...)). The body is vectorized over that batch
    (``vmap_graph``, so one ``scan`` whatever the batch size, symbolic included) and runs over
    the sequence axis. sequence_lens must be absent or all of the full length."""
    from irflow.autodiff.vmap_transform import vmap_graph

    body_p = n.attr("body")
    k = int(n.attr("num_scan_inputs"))
    ins = [n.input(i) for i in range(1, len(n.input_names))]
    n_state = len(ins) - k
    state, xs = ins[:n_state], ins[n_state:]
    if not xs:
        raise n.error("num_scan_inputs must be at least 1")
    if any(v.ndim < 1 for v in state) or any(x.ndim < 2 for x in xs):
        raise n.error("opset-8 Scan states need a batch axis and scan inputs (batch, sequence) axes")
    batch, steps = xs[0].shape[0], xs[0].shape[1]
    for v in state + xs:
        b = v.shape[0]
        if type(b) is int and type(batch) is int and b != batch:
            raise n.error(f"states and scan inputs must share the batch size {batch}, got {v.shape}")
    if n.has_input(0):
        lens = np.asarray(n.const(0, "sequence_lens")).reshape(-1)
        if type(steps) is not int or not np.all(lens == steps):
            raise n.unsupported(f"opset-8 Scan with sequence_lens {lens.tolist()} other than the full length ({steps})")
    dirs = list(n.attr("directions") or [0] * k)
    slice_types = [TensorType(dtype=x.dtype, shape=x.shape[2:]) for x in xs]
    state_types = [TensorType(dtype=v.dtype, shape=v.shape[1:]) for v in state]
    body = import_subgraph(n.ctx, body_p, n.opset, n.where(), state_types + slice_types)
    (g,), caps = _close([body])
    # captured values are the same for every batch entry; states and slices carry the batch at 0
    g = vmap_graph(g, [None] * len(caps) + [0] * (n_state + k), batch)
    seq = [bind("transpose", x, perm=(1, 0) + tuple(range(2, x.ndim))) for x in xs]  # (sequence, batch, ...)
    seq = [bind("flip", x, axes=(0,)) if d else x for x, d in zip(seq, dirs)]
    res = _as_tuple(bind("scan", *caps, *state, *seq, body=g, num_consts=len(caps), num_carry=n_state,
                         length=None, reverse=False))
    ys = [bind("transpose", y, perm=(1, 0) + tuple(range(2, y.ndim))) for y in res[n_state:]]  # (batch, sequence, ...)
    return tuple(res[:n_state]) + tuple(ys)


def _passes_cond_through(g, cond_in: str) -> bool:
    """Is the body graph's first output its ``cond_in`` input (through identities) or True?"""
    producers = {v.name: node for node in g.nodes for v in node.outputs}
    name = g.outputs[0].name
    while True:
        if name == cond_in:
            return True
        if name in g.initializers:
            return bool(np.all(g.initializers[name]))
        node = producers.get(name)
        if node is None:
            return False
        if node.op == "identity":
            name = node.inputs[0]
        elif node.op == "constant":
            return bool(np.all(node.attrs["value"]))
        else:
            return False


@importer("Loop")
def _loop(n):
    _need_graph(n)
    body_p = n.attr("body")
    m_given, c_given = n.has_input(0), n.has_input(1)
    carried = [n.input(i) for i in range(2, len(n.input_names))]
    n_carry = len(carried)
    n_scan_out = len(body_p.output) - 1 - n_carry
    if n_scan_out < 0:
        raise n.error(f"the body has {len(body_p.output)} outputs, fewer than 1 + {n_carry} loop-carried values")
    i64, b1 = TensorType(dtype=DType.int64, shape=()), TensorType(dtype=DType.bool, shape=())
    body = import_subgraph(n.ctx, body_p, n.opset, n.where(), [i64, b1] + [c.type for c in carried])
    cond_in_name = body.declared[1].name
    m_const = None
    if m_given and n.ctx.known_value(n.input_names[0]) is not None:
        m_arr = np.asarray(n.const(0, "M"))
        if m_arr.size != 1:
            raise n.error(f"the trip count M must be a scalar, it has shape {m_arr.shape}")
        m_const = max(int(m_arr.reshape(())), 0)
    c_const = None
    if c_given and n.ctx.known_value(n.input_names[1]) is not None:
        c_arr = np.asarray(n.const(1, "cond"))
        if c_arr.size != 1:
            raise n.error(f"the loop condition must be a scalar, it has shape {c_arr.shape}")
        c_const = bool(c_arr.reshape(()))
    (g,), caps = _close([body], lead_declared=True)
    fixed_count = _passes_cond_through(g, cond_in_name)
    if fixed_count and not m_given:
        raise n.unsupported("a Loop with neither a trip count nor a loop condition never ends")
    if fixed_count and n_scan_out and m_const is not None and (not c_given or c_const is not None):
        # A known trip count with scan outputs: a scan of that length whose step counter is
        # one more carry (nothing of the trip count's size is built before the loop runs).
        scan_body = _loop_as_counted_scan_body(g, n_carry)
        res = _as_tuple(bind("scan", *caps, *carried, np.asarray(0, np.int64), body=scan_body, num_consts=len(caps),
                             num_carry=n_carry + 1, length=m_const if c_const is not False else 0,
                             reverse=False))
        return res[:n_carry] + res[n_carry + 1:]
    if fixed_count and n_scan_out:
        # A run-time trip count (or condition) with scan outputs: the same counted scan, its
        # step count a run-time scalar (dynamic_length); no index vector is built.
        m = bind("reshape", bind("cast", n.input(0), dtype="int64"), shape=())
        if c_given:
            m = bind("where", _scalar_bool(n.input(1)), m, np.asarray(0, np.int64))
        m = bind("maximum", m, np.asarray(0, np.int64))
        scan_body = _loop_as_counted_scan_body(g, n_carry)
        res = _as_tuple(bind("scan", *caps, *carried, np.asarray(0, np.int64), m, body=scan_body, num_consts=len(caps),
                             num_carry=n_carry + 1, length=None, reverse=False, dynamic_length=True))
        return res[:n_carry] + res[n_carry + 1:]
    if n_scan_out:
        raise n.unsupported("a Loop whose body computes its exit condition AND has scan outputs (a run-time "
                            "number of stacked outputs) is not supported")
    # No scan outputs: a while_loop over (iter, cond, carried...): the trip count is
    # max_iterations when known, else `iter < M` in the condition; the counter is a carry.
    cond0 = _scalar_bool(n.input(1)) if c_given else bind("constant", value=np.asarray(True))
    dynamic_m = m_given and m_const is None
    cg, bg = _loop_as_while(g, n_carry, len(caps), dynamic_m)
    extra = [bind("reshape", bind("cast", n.input(0), dtype="int64"), shape=())] if dynamic_m else []
    res = _as_tuple(bind("while_loop", *caps, *extra, np.asarray(0, np.int64), cond0, *carried, cond_graph=cg, body_graph=bg,
                         num_consts=len(caps) + len(extra), max_iterations=m_const))
    return res[2:]


def _loop_as_counted_scan_body(g, n_carry: int):
    """Loop body (iter, cond, carried..., caps...) -> (cond, carried..., ys...) as a scan body
    (caps..., carried..., iter) -> (carried..., iter + 1, ys...)."""
    from irflow.ops.builder import GraphBuilder
    from irflow.ops.special import call

    b = GraphBuilder(f"{g.name}_counted")
    ins = g.inputs
    caps = [b.input(f"cap_{i}", v.type.dtype, v.type.shape) for i, v in enumerate(ins[2 + n_carry:])]
    carry = [b.input(f"carry_{i}", v.type.dtype, v.type.shape) for i, v in enumerate(ins[2:2 + n_carry])]
    it = b.input("iter", DType.int64, ())
    with b:
        res = _as_tuple(call(it, np.asarray(True), *carry, *caps, graph=g))
        b.output(*res[1:1 + n_carry], it + 1, *res[1 + n_carry:])
    return b.build()


def _loop_as_while(g, n_carry: int, n_caps: int, dynamic_m: bool):
    """cond and body graphs of a while_loop over (iter, cond, carried...) with consts
    (caps..., [M])."""
    from irflow.ops.builder import GraphBuilder
    from irflow.ops.special import call

    ins = g.inputs

    def inputs(b):
        caps = [b.input(f"cap_{i}", v.type.dtype, v.type.shape) for i, v in enumerate(ins[2 + n_carry:])]
        m = [b.input("trip_count", DType.int64, ())] if dynamic_m else []
        it = b.input("iter", DType.int64, ())
        c = b.input("cond", DType.bool, ())
        carry = [b.input(f"carry_{i}", v.type.dtype, v.type.shape) for i, v in enumerate(ins[2:2 + n_carry])]
        return caps, m, it, c, carry

    cb = GraphBuilder(f"{g.name}_cond")
    caps, m, it, c, carry = inputs(cb)
    with cb:
        cb.output(bind("logical_and", c, bind("less", it, m[0])) if m else bind("identity", c))
    bb = GraphBuilder(f"{g.name}_step")
    caps, m, it, c, carry = inputs(bb)
    with bb:
        res = _as_tuple(call(it, c, *carry, *caps, graph=g))
        bb.output(it + 1, _scalar_bool(res[0]), *res[1:1 + n_carry])
    return cb.build(), bb.build()
