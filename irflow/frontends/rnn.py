"""Recurrent layers (LSTM, GRU, simple RNN) as one ``scan`` per direction.

The ONNX importers (``onnx_import_rnn``) and the ``irf.nn`` modules (``nn/recurrent.py``) both
call ``recurrent_direction``, so an imported ONNX ``LSTM`` and an ``irf.nn.LSTM`` are the same
IR: the input projection of every step as one matmul outside the loop, then a ``scan`` whose
body does the recurrent matmul and the gate arithmetic (``irflow/ops/rnn_cells.py``'s
``cell_step``). Being a ``scan``, the layer differentiates (the scan VJP), vectorizes, and runs
on NumPy; the ONNX export writes a scan that is still exactly this layer as ONNX's native
``LSTM`` / ``GRU`` / ``RNN`` (``executors/onnx/lowering/rnn.py``), any other scan as ``Scan``.

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

from irflow.frontends.control_flow import scan
from irflow.ir.dtypes import as_dtype
from irflow.ops.dispatch import bind
from irflow.ops.rnn_cells import (  # noqa: F401  (GATES, the orders and activations: this module's names before the split)
    ACTIVATIONS, DEFAULT_ACTIVATIONS, GATES, ONNX_GATE_ORDER, TORCH_GATE_ORDER, activations, blocks, cell_step,
)


# -- one direction of one layer -----------------------------------------------------------------
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
        acts = activations(DEFAULT_ACTIVATIONS[kind])
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
            parts = blocks(r_t, gate_order, axis=1)
            extra["r_zr"] = bind("concat", *(parts[g] for g in gate_order if g != "h"), axis=1)
            extra["r_h"] = parts["h"]
            extra["zr_order"] = "".join(g for g in gate_order if g != "h")
        extra["linear_before_reset"] = linear_before_reset

    def body(carry, xs):
        xw_t, m_t = xs if mask is not None else (xs, None)
        return cell_step(kind, carry, xw_t, m_t, r_t, gate_order, acts, clip, **extra)

    init = (h0, c0) if kind == "lstm" else (h0,)
    final, y = scan(body, init, (xw, mask) if mask is not None else xw, reverse=reverse)
    return y, final[0], (final[1] if kind == "lstm" else None)


def zero_state(x: Any, hidden: int) -> Any:
    """(B, H) zeros for time-major ``x`` (T, B, I), B possibly symbolic (not ``0 * x``: x may
    hold inf or NaN)."""
    first = bind("slice", x, starts=(0, 0), ends=(1, 1), axes=(0, 2), steps=None)  # (1, B, 1)
    col = bind("zeros_like", bind("squeeze", first, axes=(0,)))  # (B, 1)
    # as_dtype: x may be a NumPy array (a numpy dtype), the op's attribute is an irflow DType
    return bind("add", col, bind("zeros", shape=(int(hidden),), dtype=as_dtype(x.dtype)))


def sequence_mask(x: Any, seq_lens: Any) -> Any:
    """(T, B, 1) bool: ``t < seq_lens[b]`` for time-major ``x`` (T, B, I)."""
    shape = bind("shape_of", x)
    t = bind("reshape", bind("slice", shape, starts=(0,), ends=(1,), axes=(0,), steps=None), shape=())
    steps = bind("range", np.asarray(0, np.int64), t, np.asarray(1, np.int64))
    lens = bind("cast", seq_lens, dtype="int64")
    m = bind("less", bind("expand_dims", steps, axes=(1,)), bind("expand_dims", lens, axes=(0,)))
    return bind("expand_dims", m, axes=(2,))
