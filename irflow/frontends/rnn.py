"""Recurrent layers (LSTM, GRU, simple RNN) as one ``scan`` per direction.

The ONNX importers (``onnx_import_rnn``) and the ``irf.nn`` modules (``nn/recurrent.py``) both
call ``recurrent_direction``, so an imported ONNX ``LSTM`` and an ``irf.nn.LSTM`` are the same
IR: the input projection of every step as one matmul outside the loop, then a ``scan`` whose
body does the recurrent matmul and the gate arithmetic. Being a ``scan``, the layer
differentiates (the scan VJP), runs on NumPy, and exports to ONNX ``Scan``.

Weights are in the stacked layout both ONNX and PyTorch use for one direction:
``w`` (G*H, I), ``r`` (G*H, H), biases ``wb``/``rb`` (G*H,). Only the order of the G gate
blocks differs, so it is a parameter (``gate_order``):

- LSTM: ONNX ``"iofc"``, PyTorch ``"ifco"`` (PyTorch's i, f, g, o with g the cell candidate);
- GRU: ONNX ``"zrh"``, PyTorch ``"rzh"`` (PyTorch's r, z, n);
- RNN: ``"h"``.

>>> y, h, c = recurrent_direction("lstm", x, w, r, wb, rb, h0, c0, gate_order="iofc")   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from irflow.errors import IrflowError
from irflow.frontends.control_flow import scan
from irflow.ops.dispatch import bind

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
ONNX_GATE_ORDER = {"lstm": "iofc", "gru": "zrh", "rnn": "h"}
TORCH_GATE_ORDER = {"lstm": "ifco", "gru": "rzh", "rnn": "h"}


def _np_dtype(x: Any) -> np.dtype:
    d = x.dtype
    return d.numpy if hasattr(d, "numpy") else np.dtype(d)


def _const(value: float, like: Any) -> np.ndarray:
    return np.asarray(value, dtype=_np_dtype(like))


# -- activations (ONNX's names; alpha/beta defaults as ONNX's RNN operators give them) ----------
# name -> (function(x, alpha, beta), default alpha, default beta); None: takes no parameter.
def _affine(x, a, b):
    return bind("add", bind("mul", x, _const(a, x)), _const(b, x))


def _scaled_tanh(x, a, b):
    return bind("mul", bind("tanh", bind("mul", x, _const(b, x))), _const(a, x))


def _hard_sigmoid(x, a, b):
    return bind("clip", _affine(x, a, b), min=0.0, max=1.0)


def _thresholded_relu(x, a, b):
    return bind("where", bind("greater", x, _const(a, x)), x, _const(0, x))


def _softsign(x, a, b):
    return bind("div", x, bind("add", bind("abs", x), _const(1, x)))


ACTIVATIONS: dict[str, tuple[Callable, float | None, float | None]] = {
    "sigmoid": (lambda x, a, b: bind("sigmoid", x), None, None),
    "tanh": (lambda x, a, b: bind("tanh", x), None, None),
    "relu": (lambda x, a, b: bind("relu", x), None, None),
    "softsign": (_softsign, None, None),
    "softplus": (lambda x, a, b: bind("softplus", x), None, None),
    "affine": (_affine, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: bind("leaky_relu", x, alpha=float(a)), 0.01, None),
    "thresholdedrelu": (_thresholded_relu, 1.0, None),
    "scaledtanh": (_scaled_tanh, 1.0, 1.0),
    "hardsigmoid": (_hard_sigmoid, 0.2, 0.5),
    "elu": (lambda x, a, b: bind("elu", x, alpha=float(a)), 1.0, None),
}


def activations(names: Sequence[str], alphas: Sequence[float] = (), betas: Sequence[float] = (),
                where: str = "recurrent layer") -> list[Callable]:
    """Functions of one tensor for ONNX activation names. ``alphas``/``betas`` are consumed in
    order by the activations that take the parameter (onnxruntime's reading of the spec)."""
    alphas, betas = list(alphas), list(betas)
    out = []
    for name in names:
        key = name.lower() if isinstance(name, str) else name
        if key not in ACTIVATIONS:
            raise IrflowError(f"{where}: activation {name!r} is not one of {', '.join(sorted(ACTIVATIONS))}")
        fn, a, b = ACTIVATIONS[key]
        if a is not None and alphas:
            a = alphas.pop(0)
        if b is not None and betas:
            b = betas.pop(0)
        out.append(lambda x, fn=fn, a=a, b=b: fn(x, a, b))
    return out


# -- one direction of one layer -----------------------------------------------------------------
def _blocks(t: Any, order: str, axis: int) -> dict[str, Any]:
    parts = bind("split", t, sizes=None, num=len(order), axis=axis)
    parts = parts if isinstance(parts, tuple) else (parts,)
    return dict(zip(order, parts))


def _clip(x: Any, clip: float | None) -> Any:
    return x if clip is None else bind("clip", x, min=-float(clip), max=float(clip))


def recurrent_direction(kind: str, x: Any, w: Any, r: Any, wb: Any, rb: Any, h0: Any, c0: Any = None, *,
                        gate_order: str, acts: Sequence[Callable] | None = None, reverse: bool = False,
                        mask: Any = None, clip: float | None = None, linear_before_reset: bool = True,
                        input_forget: bool = False, peephole: Any = None) -> tuple[Any, Any, Any]:
    """One direction of an LSTM / GRU / RNN layer over time-major ``x`` (T, B, I).

    ``w`` (G*H, I), ``r`` (G*H, H), ``wb``/``rb`` (G*H,) or None, ``h0``/``c0`` (B, H);
    ``acts``: the activation functions (f, g, h for LSTM; f, g for GRU; f for RNN), default
    sigmoid/tanh as ONNX; ``mask`` (T, B, 1) bool: steps where it is False keep the state and
    output zeros (ONNX ``sequence_lens``); ``peephole`` (3H,) in ONNX's (i, o, f) order.
    Returns ``(y (T, B, H), h_T, c_T)`` (``c_T`` None unless LSTM); with ``reverse`` the steps
    run from the last one down and ``y[t]`` is still step t's output.

    >>> y, h, _ = recurrent_direction("rnn", x, w, r, None, None, h0, gate_order="h")   # doctest: +SKIP
    """
    if acts is None:
        acts = activations({"lstm": ("sigmoid", "tanh", "tanh"), "gru": ("sigmoid", "tanh"), "rnn": ("tanh",)}[kind])
    split_recurrent_bias = kind == "gru" and linear_before_reset
    # Biases that only add to the gate pre-activations fold into the input projection (once,
    # outside the loop). GRU's recurrent bias of the candidate gate is multiplied by r when
    # linear_before_reset, so it stays inside the step.
    bias = wb
    if rb is not None and not split_recurrent_bias:
        bias = rb if bias is None else bind("add", bias, rb)
    xw = bind("matmul", x, bind("transpose", w, perm=(1, 0)))
    if bias is not None:
        xw = bind("add", xw, bias)
    r_t = bind("transpose", r, perm=(1, 0))  # (H, G*H)
    step = {"lstm": _lstm_step, "gru": _gru_step, "rnn": _rnn_step}[kind]
    extra: dict[str, Any] = {}
    if kind == "lstm":
        if peephole is not None:
            p_i, p_o, p_f = bind("split", peephole, sizes=None, num=3, axis=0)
            extra["peephole"] = (p_i, p_o, p_f)
        extra["input_forget"] = input_forget
    if kind == "gru":
        if split_recurrent_bias:
            extra["rb"] = rb
        else:  # r multiplies h before the candidate's matmul: the candidate's block of r apart
            blocks = _blocks(r_t, gate_order, axis=1)
            extra["r_zr"] = bind("concat", *(blocks[g] for g in gate_order if g != "h"), axis=1)
            extra["r_h"] = blocks["h"]
            extra["zr_order"] = "".join(g for g in gate_order if g != "h")
        extra["linear_before_reset"] = linear_before_reset

    def body(carry, xs):
        xw_t, m_t = xs if mask is not None else (xs, None)
        state = step(carry, xw_t, r_t, gate_order, acts, clip, **extra)
        h_new = state[0]
        if m_t is not None:
            state = tuple(bind("where", m_t, new, old) for new, old in zip(state, carry))
            y_t = bind("where", m_t, h_new, _const(0, h_new))
        else:
            y_t = h_new
        return state, y_t

    init = (h0, c0) if kind == "lstm" else (h0,)
    final, y = scan(body, init, (xw, mask) if mask is not None else xw, reverse=reverse)
    return y, final[0], (final[1] if kind == "lstm" else None)


def _lstm_step(carry, xw_t, r_t, order, acts, clip, peephole=None, input_forget=False):
    h, c = carry
    f_act, g_act, h_act = acts
    gates = _blocks(bind("add", xw_t, bind("matmul", h, r_t)), order, axis=-1)
    i, f, o, cc = gates["i"], gates["f"], gates["o"], gates["c"]
    if peephole is not None:
        p_i, p_o, p_f = peephole
        i = bind("add", i, bind("mul", p_i, c))
        f = bind("add", f, bind("mul", p_f, c))
    i = f_act(_clip(i, clip))
    f = bind("sub", _const(1, i), i) if input_forget else f_act(_clip(f, clip))
    c_new = bind("add", bind("mul", f, c), bind("mul", i, g_act(_clip(cc, clip))))
    if peephole is not None:
        o = bind("add", o, bind("mul", p_o, c_new))
    o = f_act(_clip(o, clip))
    return bind("mul", o, h_act(c_new)), c_new


def _gru_step(carry, xw_t, r_t, order, acts, clip, rb=None, r_zr=None, r_h=None, zr_order="zr",
              linear_before_reset=True):
    (h,) = carry
    f_act, g_act = acts
    gx = _blocks(xw_t, order, axis=-1)
    if linear_before_reset:
        hr = bind("matmul", h, r_t)
        if rb is not None:
            hr = bind("add", hr, rb)
        gh = _blocks(hr, order, axis=-1)
        z = f_act(_clip(bind("add", gx["z"], gh["z"]), clip))
        rr = f_act(_clip(bind("add", gx["r"], gh["r"]), clip))
        cand = bind("add", gx["h"], bind("mul", rr, gh["h"]))
    else:
        gh = _blocks(bind("matmul", h, r_zr), zr_order, axis=-1)
        z = f_act(_clip(bind("add", gx["z"], gh["z"]), clip))
        rr = f_act(_clip(bind("add", gx["r"], gh["r"]), clip))
        cand = bind("add", gx["h"], bind("matmul", bind("mul", rr, h), r_h))
    hh = g_act(_clip(cand, clip))
    # (1 - z) * hh + z * h, written as hh + z * (h - hh): one multiply fewer
    return (bind("add", hh, bind("mul", z, bind("sub", h, hh))),)


def _rnn_step(carry, xw_t, r_t, order, acts, clip):
    (h,) = carry
    (f_act,) = acts
    return (f_act(_clip(bind("add", xw_t, bind("matmul", h, r_t)), clip)),)


def zero_state(x: Any, hidden: int) -> Any:
    """(B, H) zeros for time-major ``x`` (T, B, I), B possibly symbolic (not ``0 * x``: x may
    hold inf or NaN)."""
    first = bind("slice", x, starts=(0, 0), ends=(1, 1), axes=(0, 2), steps=None)  # (1, B, 1)
    col = bind("zeros_like", bind("squeeze", first, axes=(0,)))  # (B, 1)
    return bind("add", col, bind("zeros", shape=(int(hidden),), dtype=x.dtype))


def sequence_mask(x: Any, seq_lens: Any) -> Any:
    """(T, B, 1) bool: ``t < seq_lens[b]`` for time-major ``x`` (T, B, I)."""
    shape = bind("shape_of", x)
    t = bind("reshape", bind("slice", shape, starts=(0,), ends=(1,), axes=(0,), steps=None), shape=())
    steps = bind("range", np.asarray(0, np.int64), t, np.asarray(1, np.int64))
    lens = bind("cast", seq_lens, dtype="int64")
    m = bind("less", bind("expand_dims", steps, axes=(1,)), bind("expand_dims", lens, axes=(0,)))
    return bind("expand_dims", m, axes=(2,))
