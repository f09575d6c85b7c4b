"""A ``scan`` that is exactly one direction of an LSTM / GRU / simple RNN layer, written as
ONNX's native ``LSTM`` / ``GRU`` / ``RNN`` (onnxruntime runs those as one fused kernel; an
ONNX ``Scan`` runs its body step by step, 4-6x slower on small layers).

The IR keeps the ``scan`` (so gradients and ``vmap`` work on it); only the export decides.
No marker is trusted: the scan's body is compared node for node, attribute for attribute and
constant for constant with a body built again by the same ``rnn_cells.cell_step`` that
``frontends/rnn.py`` traces (``irf.onnx.load`` of LSTM/GRU/RNN, ``irf.nn.LSTM``/``GRU``/
``SimpleRNN``), for the few variants the native ops express (default activations, or Relu
for an RNN; ``clip``; GRU's ``linear_before_reset`` 0 and 1; a ``sequence_lens`` mask;
PyTorch's or ONNX's gate order). The scanned input must be the input projection
``matmul(x, w^T) [+ bias]`` computed outside the loop, and a mask must be
``t < seq_lens`` as ``sequence_mask`` builds it. Anything else (a changed activation, an
extra op, a gradient or a vectorized scan, float64, peepholes) is written as ``Scan``.

The projection's own nodes are then unused: ``rnn_graph.tidy`` drops them from the ONNX graph
(onnxruntime would run them otherwise) and joins a forward and a reverse layer into one
bidirectional op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from irflow.ir.dtypes import DType
from irflow.ir.graph import Graph, Node
from irflow.ir.types import TensorType
from irflow.ops.builder import GraphBuilder
from irflow.ops.rnn_cells import DEFAULT_ACTIVATIONS, GATES, ONNX_GATE_ORDER, TORCH_GATE_ORDER, activations, cell_step

_ONNX_OP = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
_ONNX_ACT = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}
# onnxruntime's CPU kernels of LSTM/GRU/RNN are float32 only ("does not support double yet")
_DTYPES = (DType.float32,)


@dataclass
class RnnMatch:
    kind: str
    order: str
    acts: tuple[str, ...]
    clip: float | None
    lbr: bool  # GRU's linear_before_reset (True for LSTM/RNN: unused)
    consts: dict[str, Any] = field(default_factory=dict)  # role -> outer value name or ndarray
    x: str = ""
    wt: str = ""
    bias: str | None = None
    lens: str | None = None  # int64 (B,) sequence lengths


# -- comparing two graphs ----------------------------------------------------------------------
def _attr_equal(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_attr_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, (Graph, dict)) or isinstance(b, (Graph, dict)):
        return False  # no nested graph in a cell
    return type(a) is type(b) and a == b


def _array_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def match_graphs(want: Graph, got: Graph, fixed: dict[str, str], free: set[str]) -> dict[str, str] | None:
    """Whether ``got`` computes exactly what ``want`` does: same outputs from the same ops,
    attributes and constants, and no other node. Inputs of ``want`` in ``fixed`` must be the
    named inputs of ``got``; those in ``free`` may be any other input or an initializer of
    ``got`` (of the same type), one each. Returns that assignment of the free inputs, or None."""
    if len(want.nodes) != len(got.nodes) or len(want.outputs) != len(got.outputs):
        return None
    w_prod = {v.name: (n, k) for n in want.nodes for k, v in enumerate(n.outputs)}
    g_prod = {v.name: (n, k) for n in got.nodes for k, v in enumerate(n.outputs)}
    w_types = {v.name: v.type for v in want.inputs}
    g_types = {v.name: v.type for v in got.inputs}
    vmap: dict[str, str] = {}
    used: set[str] = set()
    nmap: dict[int, int] = {}
    fixed_targets = set(fixed.values())

    def same(wv: str, gv: str) -> bool:
        if wv in vmap:
            return vmap[wv] == gv
        if wv in want.initializers:
            ok = gv in got.initializers and _array_equal(np.asarray(want.initializers[wv]), np.asarray(got.initializers[gv]))
        elif wv in fixed:
            ok = fixed[wv] == gv
        elif wv in free:
            ok = gv not in used and gv not in fixed_targets and (
                (gv in g_types and gv not in got.initializers and g_types[gv] == w_types[wv])
                or (gv in got.initializers and _init_type(got.initializers[gv]) == w_types[wv]))
        elif wv in w_prod and gv in g_prod:
            (wn, wk), (gn, gk) = w_prod[wv], g_prod[gv]
            if wk != gk or wn.op != gn.op or len(wn.inputs) != len(gn.inputs) or len(wn.outputs) != len(gn.outputs):
                return False
            if set(wn.attrs) != set(gn.attrs) or not all(_attr_equal(wn.attrs[k], gn.attrs[k]) for k in wn.attrs):
                return False
            if id(wn) in nmap:
                ok = nmap[id(wn)] == id(gn)
            else:
                nmap[id(wn)] = id(gn)
                ok = all((a == "") == (b == "") and (a == "" or same(a, b)) for a, b in zip(wn.inputs, gn.inputs))
        else:
            ok = False
        if ok:
            if gv in used and gv not in got.initializers:
                return False  # two values of want are one value of got
            vmap[wv] = gv
            used.add(gv)
        return ok

    if not all(same(w.name, g.name) for w, g in zip(want.outputs, got.outputs)):
        return None
    if len(nmap) != len(got.nodes):  # got has a node want has not (even an unused one)
        return None
    return {k: vmap[k] for k in free if k in vmap}


def _init_type(a: Any) -> TensorType:
    from irflow.ir.dtypes import dtype_of_array

    a = np.asarray(a)
    return TensorType(dtype=dtype_of_array(a), shape=a.shape)


# -- the body ---------------------------------------------------------------------------------
def _candidates(kind: str, clips: list[float | None]):
    orders = dict.fromkeys((ONNX_GATE_ORDER[kind], TORCH_GATE_ORDER[kind]))
    acts = [DEFAULT_ACTIVATIONS[kind]] + ([("relu",)] if kind == "rnn" else [])
    # GRU: (linear_before_reset, the recurrent bias added inside the step)
    variants = [(True, True), (True, False), (False, False)] if kind == "gru" else [(True, False)]
    for order in orders:
        for a in acts:
            for clip in clips:
                for lbr, rb in variants:
                    yield order, a, clip, lbr, rb


def _canonical(kind: str, order: str, acts, clip, lbr: bool, has_rb: bool, carry_types, x_types, h: int,
               dtype: DType) -> tuple[Graph, list[str]]:
    b = GraphBuilder("rnn_cell")
    g = GATES[kind]
    with b:
        carry = tuple(b.input(f"carry_{i}", t.dtype, t.shape) for i, t in enumerate(carry_types))
        xs = [b.input(f"x_{i}", t.dtype, t.shape) for i, t in enumerate(x_types)]
        extra: dict[str, Any] = {}
        r_t = None
        if kind == "gru" and not lbr:
            zr = "".join(c for c in order if c != "h")
            extra.update(r_zr=b.input("r_zr", dtype, (h, 2 * h)), r_h=b.input("r_h", dtype, (h, h)), zr_order=zr,
                         linear_before_reset=False)
        else:
            r_t = b.input("r_t", dtype, (h, g * h))
            if kind == "gru":
                extra.update(rb=b.input("rb", dtype, (g * h,)) if has_rb else None, linear_before_reset=True)
        if kind == "lstm":
            extra["input_forget"] = False
        state, y = cell_step(kind, carry, xs[0], xs[1] if len(xs) > 1 else None, r_t, order, activations(acts),
                             clip, **extra)
        b.output(*state, y)
    graph = b.build()
    return graph, [v.name for v in graph.inputs[len(carry_types) + len(x_types):]]


def match_body(node: Node) -> RnnMatch | None:
    """The layer a ``scan`` node's body is, or None. Only the body and the types are read."""
    a = node.attrs
    body, nc, ncar = a["body"], a["num_consts"], a["num_carry"]
    if a.get("dynamic_length") or ncar not in (1, 2) or len(body.outputs) != ncar + 1:
        return None
    carry_types = [v.type for v in body.inputs[nc:nc + ncar]]
    x_types = [v.type for v in body.inputs[nc + ncar:]]
    if len(x_types) not in (1, 2) or any(t.rank != 2 for t in carry_types + x_types[:1]):
        return None
    h, dtype = carry_types[0].shape[1], carry_types[0].dtype
    gh = x_types[0].shape[1]
    if not (isinstance(h, int) and isinstance(gh, int) and h > 0) or dtype not in _DTYPES:
        return None
    if any(t != carry_types[0] for t in carry_types) or x_types[0].dtype != dtype or x_types[0].shape[0] != carry_types[0].shape[0]:
        return None
    if len(x_types) == 2 and x_types[1] != TensorType(dtype=DType.bool, shape=(carry_types[0].shape[0], 1)):
        return None
    kind = "lstm" if ncar == 2 else {3: "gru", 1: "rnn"}.get(gh // h if gh % h == 0 else 0)
    if kind is None or gh != GATES[kind] * h:
        return None
    clips: list[float | None] = [None]
    for n in body.nodes:
        if n.op == "clip" and n.attrs.get("max") is not None and n.attrs.get("min") == -n.attrs["max"]:
            clips.append(float(n.attrs["max"]))
            break
    fixed = {f"carry_{i}": v.name for i, v in enumerate(body.inputs[nc:nc + ncar])}
    fixed.update({f"x_{i}": v.name for i, v in enumerate(body.inputs[nc + ncar:])})
    for order, acts, clip, lbr, has_rb in _candidates(kind, clips):
        want, roles = _canonical(kind, order, acts, clip, lbr, has_rb, carry_types, x_types, h, dtype)
        got = match_graphs(want, body, fixed, set(roles))
        if got is not None and len(got) == len(roles):
            m = RnnMatch(kind, order, tuple(acts), clip, lbr)
            const_pos = {v.name: i for i, v in enumerate(body.inputs[:nc])}
            for role in roles:
                gv = got[role]
                m.consts[role] = const_pos[gv] if gv in const_pos else np.asarray(body.initializers[gv])
            return m
    return None


# -- the scan's inputs: the projection outside the loop and the mask -------------------------------
def _producers(ctx) -> dict[str, tuple[Node, int]]:
    graph = ctx.graph
    cache = getattr(ctx, "_rnn_producers", None)
    if cache is None or cache[0] is not graph:
        cache = (graph, {v.name: (n, k) for n in graph.nodes for k, v in enumerate(n.outputs)})
        ctx._rnn_producers = cache
    return cache[1]


def _initializer(ctx, name: str) -> np.ndarray | None:
    inits = ctx.graph.initializers
    return np.asarray(inits[name]) if name in inits else None


def _match_projection(ctx, m: RnnMatch, xw: str, gh: int) -> bool:
    """``xw`` = ``matmul(x, wt)`` or that plus a (G*H,) bias, x (T, B, I), wt (I, G*H)."""
    prod = _producers(ctx)
    if xw not in prod:
        return False
    node, _ = prod[xw]
    if node.op == "add":
        for mm, bias in (node.inputs, node.inputs[::-1]):
            if mm in prod and prod[mm][0].op == "matmul" and ctx.types[bias] == TensorType(dtype=ctx.types[xw].dtype, shape=(gh,)):
                m.bias = bias
                node = prod[mm][0]
                break
        else:
            return False
    if node.op != "matmul":
        return False
    x, wt = node.inputs
    tx, tw = ctx.types[x], ctx.types[wt]
    if tx.rank != 3 or tw.rank != 2 or tw.shape[1] != gh or tx.dtype != tw.dtype or tx.shape[2] != tw.shape[0]:
        return False
    m.x, m.wt = x, wt
    return True


def _is(ctx, name: str, op: str, **attrs: Any) -> Node | None:
    prod = _producers(ctx)
    if name not in prod:
        return None
    node = prod[name][0]
    if node.op != op or any(not _attr_equal(node.attrs.get(k), v) for k, v in attrs.items()):
        return None
    return node


def _match_mask(ctx, m: RnnMatch, mask: str) -> bool:
    """``mask`` = ``expand_dims(less(expand_dims(steps, 1), expand_dims(lens, 0)), 2)`` with
    ``steps`` = 0, 1, ..., T-1 (``range(0, ., 1)``: the scan makes its length T; or those
    values as a constant) and ``lens`` int64 (B,): ``frontends/rnn.py``'s ``sequence_mask``."""
    outer = _is(ctx, mask, "expand_dims", axes=(2,))
    less = outer and _is(ctx, outer.inputs[0], "less")
    if not less:
        return False
    col = _is(ctx, less.inputs[0], "expand_dims", axes=(1,))
    row = _is(ctx, less.inputs[1], "expand_dims", axes=(0,))
    if not (col and row):
        return False
    steps, lens = col.inputs[0], row.inputs[0]
    rng = _is(ctx, steps, "range")
    if rng is not None:
        start, delta = _initializer(ctx, rng.inputs[0]), _initializer(ctx, rng.inputs[2])
        if start is None or delta is None or start.shape != () or delta.shape != () or start != 0 or delta != 1:
            return False
    else:
        arr = _initializer(ctx, steps)
        if arr is None or arr.ndim != 1 or not np.array_equal(arr, np.arange(arr.shape[0])):
            return False
    if ctx.types[steps].dtype != DType.int64 or ctx.types[lens].dtype != DType.int64 or ctx.types[lens].rank != 1:
        return False
    m.lens = lens
    return True


# -- writing the ONNX op --------------------------------------------------------------------------
def _reorder(ctx, value: str, order: str, want: str, axis: int) -> str:
    """``value`` with its gate blocks along ``axis`` taken from ``order`` into ``want``'s order."""
    if order == want:
        return value
    parts = ctx.emit("Split", [value], len(order), axis=axis, num_outputs=len(order))
    by = dict(zip(order, parts))
    return ctx.emit("Concat", [by[g] for g in want], 1, axis=axis)[0]


def _stacked(ctx, value: str, order: str, kind: str) -> str:
    """(in, G*H) with the blocks in ``order`` -> ONNX's (1, G*H, in) in ONNX's order."""
    v = _reorder(ctx, value, order, ONNX_GATE_ORDER[kind], axis=1)
    v = ctx.emit("Transpose", [v], 1, perm=[1, 0])[0]
    return ctx.emit("Unsqueeze", [v, ctx.const(np.asarray([0], np.int64), "axes")], 1)[0]


def lower_native_rnn(ctx, node: Node, ins: list[str], outs: list[str]) -> bool:
    """Emit ``node`` as ONNX LSTM/GRU/RNN if it is exactly one; False (nothing emitted) if not."""
    a = node.attrs
    nc, ncar = a["num_consts"], a["num_carry"]
    n_xs = len(ins) - nc - ncar
    if a.get("dynamic_length") or n_xs not in (1, 2):
        return False
    m = match_body(node)
    if m is None:
        return False
    g = GATES[m.kind]
    h = node.attrs["body"].inputs[nc].type.shape[1]
    xw = ins[nc + ncar]
    if not _match_projection(ctx, m, xw, g * h) or (n_xs == 2 and not _match_mask(ctx, m, ins[nc + ncar + 1])):
        return False

    def const_value(role: str) -> str:
        c = m.consts[role]
        return ins[c] if isinstance(c, int) else ctx.const(c, role)

    onnx_order = ONNX_GATE_ORDER[m.kind]
    w = _stacked(ctx, m.wt, m.order, m.kind)
    if "r_t" in m.consts:
        r = _stacked(ctx, const_value("r_t"), m.order, m.kind)
    else:  # GRU without linear_before_reset: (r_zr (H, 2H) in zr order, r_h (H, H))
        zr = "".join(c for c in m.order if c != "h")
        parts = dict(zip(zr, ctx.emit("Split", [const_value("r_zr")], 2, axis=1, num_outputs=2)))
        parts["h"] = const_value("r_h")
        rt = ctx.emit("Concat", [parts[c] for c in onnx_order], 1, axis=1)[0]
        r = _stacked(ctx, rt, onnx_order, m.kind)
    dtype = ctx.types[xw].dtype.numpy
    bias = ""
    if m.bias is not None or "rb" in m.consts:
        zeros = ctx.const(np.zeros(g * h, dtype), "zero_bias")
        wb = _reorder(ctx, m.bias, m.order, onnx_order, axis=0) if m.bias is not None else zeros
        rb = _reorder(ctx, const_value("rb"), m.order, onnx_order, axis=0) if "rb" in m.consts else zeros
        bias = ctx.emit("Concat", [wb, rb], 1, axis=0)[0]
        bias = ctx.emit("Unsqueeze", [bias, ctx.const(np.asarray([0], np.int64), "axes")], 1)[0]
    lens = empty = ""
    cache = ctx.__dict__.setdefault("_rnn_lens", {})  # both directions read one (so they join)
    if m.lens is not None and (m.lens, m.x) in cache:
        lens, empty = cache[m.lens, m.x]
    elif m.lens is not None:
        # sequence_mask keeps every step of a length over T and none of a negative one;
        # onnxruntime refuses lengths outside [0, T], so they are clamped first. For a length
        # of 0 onnxruntime's final state is zeros, the scan's its initial state: put it back.
        t = ctx.emit("Shape", [m.x], 1, start=0, end=1)[0]
        zero = ctx.const(np.asarray(0, np.int64), "zero")
        lens = ctx.emit("Max", [m.lens, zero], 1)[0]
        lens = ctx.emit("Min", [lens, t], 1)[0]
        empty = ctx.emit("Equal", [lens, zero], 1)[0]
        empty = ctx.emit("Unsqueeze", [empty, ctx.const(np.asarray([1], np.int64), "axes")], 1)[0]  # (B, 1)
        lens = ctx.emit("Cast", [lens], 1, to=onnx.TensorProto.INT32)[0]
        cache[m.lens, m.x] = lens, empty
    axes0 = ctx.const(np.asarray([0], np.int64), "axes")
    states = [ctx.emit("Unsqueeze", [c, axes0], 1)[0] for c in ins[nc:nc + ncar]]
    attrs: dict[str, Any] = dict(hidden_size=int(h), direction="reverse" if a["reverse"] else "forward")
    if m.acts != DEFAULT_ACTIVATIONS[m.kind]:
        attrs["activations"] = [_ONNX_ACT[n] for n in m.acts]
    if m.clip is not None:
        attrs["clip"] = float(m.clip)
    if m.kind == "gru":
        attrs["linear_before_reset"] = int(m.lbr)
    n_out = 3 if m.kind == "lstm" else 2
    y_all = [ctx.fresh(f"{node.name}/{nm}") for nm in ("Y", "Y_h", "Y_c")[:n_out]]
    ctx.emit(_ONNX_OP[m.kind], [m.x, w, r, bias, lens, *states], y_all, **attrs)
    for i in range(ncar):  # final carries: (1, B, H) -> (B, H)
        if empty:
            last = ctx.emit("Squeeze", [y_all[1 + i], axes0], 1)[0]
            ctx.emit("Where", [empty, ins[nc + i], last], [outs[i]])
        else:
            ctx.emit("Squeeze", [y_all[1 + i], axes0], [outs[i]])
    ctx.emit("Squeeze", [y_all[0], ctx.const(np.asarray([1], np.int64), "axes")], [outs[ncar]])
    ctx.rnn_fused = True
    return True
