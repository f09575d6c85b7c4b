"""ONNX ``LSTM``, ``GRU`` and ``RNN`` -> one ``scan`` per direction (``frontends/rnn.py``).

Supported: every direction (forward, reverse, bidirectional), custom activations with
``activation_alpha``/``activation_beta``, ``clip``, ``sequence_lens`` (steps past a
sequence's length keep its state and output zeros), initial states, ``layout`` 0 and 1,
LSTM peepholes (``P``) and ``input_forget``, GRU's ``linear_before_reset`` 0 and 1.
Outputs ``Y`` (T, D, B, H) (layout 1: (B, T, D, H)), ``Y_h`` and for LSTM ``Y_c``
(D, B, H) (layout 1: (B, D, H)).
"""
from __future__ import annotations

from typing import Any

from irflow.frontends.onnx_import_base import importer
from irflow.frontends.rnn import GATES, ONNX_GATE_ORDER, activations, recurrent_direction, sequence_mask, zero_state
from irflow.ops.dispatch import bind

_DEFAULT_ACTS = {"lstm": ["Sigmoid", "Tanh", "Tanh"], "gru": ["Sigmoid", "Tanh"], "rnn": ["Tanh"]}


def _strings(v: Any) -> list[str]:
    return [s.decode() if isinstance(s, bytes) else str(s) for s in (v or [])]


def _direction(x: Any, d: int) -> Any:
    """Row ``d`` of a per-direction input (D, ...)."""
    return bind("squeeze", bind("slice", x, starts=(d,), ends=(d + 1,), axes=(0,), steps=None), axes=(0,))


@importer("LSTM", "GRU", "RNN")
def _recurrent(n):
    kind = n.op_type.lower()
    x, w, r = n.input(0), n.input(1), n.input(2)
    b, seq_lens, h_init = n.input(3), n.input(4), n.input(5)
    c_init = n.input(6) if kind == "lstm" else None
    peep = n.input(7) if kind == "lstm" else None
    for what, t, rank in (("X", x, 3), ("W", w, 3), ("R", r, 3), ("B", b, 2), ("sequence_lens", seq_lens, 1),
                          ("initial_h", h_init, 3), ("initial_c", c_init, 3), ("P", peep, 2)):
        if t is not None and len(t.shape) != rank:
            raise n.error(f"{what} must have rank {rank}, it has shape {tuple(t.shape)}")
    hidden = n.attr("hidden_size") or (w.shape[1] // GATES[kind] if isinstance(w.shape[1], int) else None)
    if not isinstance(hidden, int):
        raise n.unsupported("hidden_size must be given or the weight's shape static")
    direction = n.attr("direction", "forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "reverse", "bidirectional"):
        raise n.unsupported(f"direction {direction!r}")
    num_dir = 2 if direction == "bidirectional" else 1
    layout = int(n.attr("layout", 0))
    if layout:
        x = bind("transpose", x, perm=(1, 0, 2))
        h_init = None if h_init is None else bind("transpose", h_init, perm=(1, 0, 2))
        c_init = None if c_init is None else bind("transpose", c_init, perm=(1, 0, 2))
    names = _strings(n.attr("activations")) or _DEFAULT_ACTS[kind] * num_dir
    per_dir = len(_DEFAULT_ACTS[kind])
    if len(names) != per_dir * num_dir:
        raise n.unsupported(f"{len(names)} activations for {num_dir} direction(s) (want {per_dir * num_dir})")
    acts = activations(names, n.attr("activation_alpha") or (), n.attr("activation_beta") or (), n.where())
    clip = n.attr("clip")
    mask = sequence_mask(x, seq_lens) if seq_lens is not None else None
    ys, hs, cs = [], [], []
    for d in range(num_dir):
        wb = rb = None
        if b is not None:
            wb, rb = bind("split", _direction(b, d), sizes=None, num=2, axis=0)
        h0 = _direction(h_init, d) if h_init is not None else zero_state(x, hidden)
        c0 = None
        if kind == "lstm":
            c0 = _direction(c_init, d) if c_init is not None else zero_state(x, hidden)
        y, h, c = recurrent_direction(
            kind, x, _direction(w, d), _direction(r, d), wb, rb, h0, c0,
            gate_order=ONNX_GATE_ORDER[kind], acts=acts[d * per_dir:(d + 1) * per_dir],
            reverse=direction == "reverse" or d == 1, mask=mask, clip=clip,
            linear_before_reset=bool(n.attr("linear_before_reset", 0)), input_forget=bool(n.attr("input_forget", 0)),
            peephole=_direction(peep, d) if peep is not None else None)
        ys.append(bind("expand_dims", y, axes=(1,)))
        hs.append(bind("expand_dims", h, axes=(0,)))
        if c is not None:
            cs.append(bind("expand_dims", c, axes=(0,)))

    def join(parts, axis):
        return parts[0] if len(parts) == 1 else bind("concat", *parts, axis=axis)

    y_all, h_all = join(ys, 1), join(hs, 0)  # (T, D, B, H), (D, B, H)
    c_all = join(cs, 0) if cs else None
    if layout:
        y_all = bind("transpose", y_all, perm=(2, 0, 1, 3))
        h_all = bind("transpose", h_all, perm=(1, 0, 2))
        c_all = None if c_all is None else bind("transpose", c_all, perm=(1, 0, 2))
    outs = (y_all, h_all, c_all) if kind == "lstm" else (y_all, h_all)
    return outs[:max(1, len(n.output_names))]

