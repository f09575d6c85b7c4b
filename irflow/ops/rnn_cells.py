"""The step of an LSTM / GRU / simple RNN layer, written with ``bind`` (no op of its own).

``frontends/rnn.py`` traces ``cell_step`` as the body of one ``scan`` per direction; the ONNX
export (``executors/onnx/lowering/rnn.py``) builds the same body again from the same function
and compares it node for node with a scan's body, to write that scan as ONNX's native
``LSTM`` / ``GRU`` / ``RNN``. Both sides call this one function, so a change to the cell here
changes both, and a body that differs in anything (an activation, an extra op, a constant)
is not recognized.

Gate blocks are stacked along the last axis of the projections in ``gate_order``
(``ONNX_GATE_ORDER`` or ``TORCH_GATE_ORDER``).

>>> state, y = cell_step("rnn", (h,), xw_t, None, r_t, "h", activations(["tanh"]), None)   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from irflow.errors import IrflowError
from irflow.ops.dispatch import bind

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
ONNX_GATE_ORDER = {"lstm": "iofc", "gru": "zrh", "rnn": "h"}
TORCH_GATE_ORDER = {"lstm": "ifco", "gru": "rzh", "rnn": "h"}
DEFAULT_ACTIVATIONS = {"lstm": ("sigmoid", "tanh", "tanh"), "gru": ("sigmoid", "tanh"), "rnn": ("tanh",)}


def _np_dtype(x: Any) -> np.dtype:
    d = x.dtype
    return d.numpy if hasattr(d, "numpy") else np.dtype(d)


def const_like(value: float, like: Any) -> np.ndarray:
    """A 0-d array of ``value`` in ``like``'s dtype (weak scalars do not exist inside ``bind``)."""
    return np.asarray(value, dtype=_np_dtype(like))


# -- activations (ONNX's names; alpha/beta defaults as ONNX's RNN operators give them) ----------
# name -> (function(x, alpha, beta), default alpha, default beta); None: takes no parameter.
def _affine(x, a, b):
    return bind("add", bind("mul", x, const_like(a, x)), const_like(b, x))


def _scaled_tanh(x, a, b):
    return bind("mul", bind("tanh", bind("mul", x, const_like(b, x))), const_like(a, x))


def _hard_sigmoid(x, a, b):
    return bind("clip", _affine(x, a, b), min=0.0, max=1.0)


def _thresholded_relu(x, a, b):
    return bind("where", bind("greater", x, const_like(a, x)), x, const_like(0, x))


def _softsign(x, a, b):
    return bind("div", x, bind("add", bind("abs", x), const_like(1, x)))


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


def blocks(t: Any, order: str, axis: int) -> dict[str, Any]:
    """The gate blocks of ``t`` along ``axis``, by gate letter."""
    parts = bind("split", t, sizes=None, num=len(order), axis=axis)
    parts = parts if isinstance(parts, tuple) else (parts,)
    return dict(zip(order, parts))


def _clip(x: Any, clip: float | None) -> Any:
    return x if clip is None else bind("clip", x, min=-float(clip), max=float(clip))


def cell_step(kind: str, carry: tuple, xw_t: Any, m_t: Any, r_t: Any, gate_order: str, acts: Sequence[Callable],
              clip: float | None, **extra: Any) -> tuple[tuple, Any]:
    """One step: ``(new carry, y_t)``. ``xw_t`` (B, G*H) is the step's input projection with
    the biases that only add folded in, ``r_t`` (H, G*H) the transposed recurrent weight;
    ``m_t`` (B, 1) bool or None: where False the carry is kept and ``y_t`` is zero (ONNX
    ``sequence_lens``). ``extra``: LSTM ``peephole``/``input_forget``; GRU ``rb``, ``r_zr``,
    ``r_h``, ``zr_order``, ``linear_before_reset`` (see ``frontends/rnn.py``)."""
    step = {"lstm": _lstm_step, "gru": _gru_step, "rnn": _rnn_step}[kind]
    state = step(carry, xw_t, r_t, gate_order, acts, clip, **extra)
    h_new = state[0]
    if m_t is None:
        return state, h_new
    state = tuple(bind("where", m_t, new, old) for new, old in zip(state, carry))
    return state, bind("where", m_t, h_new, const_like(0, h_new))


def _lstm_step(carry, xw_t, r_t, order, acts, clip, peephole=None, input_forget=False):
    h, c = carry
    f_act, g_act, h_act = acts
    gates = blocks(bind("add", xw_t, bind("matmul", h, r_t)), order, axis=-1)
    i, f, o, cc = gates["i"], gates["f"], gates["o"], gates["c"]
    if peephole is not None:
        p_i, p_o, p_f = peephole
        i = bind("add", i, bind("mul", p_i, c))
        f = bind("add", f, bind("mul", p_f, c))
    i = f_act(_clip(i, clip))
    f = bind("sub", const_like(1, i), i) if input_forget else f_act(_clip(f, clip))
    c_new = bind("add", bind("mul", f, c), bind("mul", i, g_act(_clip(cc, clip))))
    if peephole is not None:
        o = bind("add", o, bind("mul", p_o, c_new))
    o = f_act(_clip(o, clip))
    return bind("mul", o, h_act(c_new)), c_new


def _gru_step(carry, xw_t, r_t, order, acts, clip, rb=None, r_zr=None, r_h=None, zr_order="zr",
              linear_before_reset=True):
    (h,) = carry
    f_act, g_act = acts
    gx = blocks(xw_t, order, axis=-1)
    if linear_before_reset:
        hr = bind("matmul", h, r_t)
        if rb is not None:
            hr = bind("add", hr, rb)
        gh = blocks(hr, order, axis=-1)
        z = f_act(_clip(bind("add", gx["z"], gh["z"]), clip))
        rr = f_act(_clip(bind("add", gx["r"], gh["r"]), clip))
        cand = bind("add", gx["h"], bind("mul", rr, gh["h"]))
    else:
        gh = blocks(bind("matmul", h, r_zr), zr_order, axis=-1)
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
