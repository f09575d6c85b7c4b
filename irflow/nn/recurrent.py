"""Recurrent layers with PyTorch's interface and weight layout: ``LSTM``, ``GRU``, ``SimpleRNN``.

Parameters are named and shaped as ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` name theirs
(``weight_ih_l0`` (G*H, I), ``weight_hh_l0`` (G*H, H), ``bias_ih_l0``, ``bias_hh_l0``, and
``..._reverse`` for the backward direction; gate blocks in PyTorch's order), so
``load_state_dict({k: v.numpy() for k, v in torch_module.state_dict().items()})`` loads a
PyTorch layer. Each direction of each layer is one ``scan`` (``irflow/frontends/rnn.py``, the
same code the ONNX importer uses): eagerly a Python loop a GradientTape records, in a trace
one ``scan`` node that differentiates and exports to ONNX ``Scan``.

>>> lstm = irf.nn.LSTM(8, 16, num_layers=2, batch_first=True)        # doctest: +SKIP
>>> out, (h, c) = lstm(np.zeros((4, 10, 8), "float32"))               # doctest: +SKIP
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from irflow import ops
from irflow.errors import IrflowError, ShapeError
from irflow.frontends.rnn import GATES, TORCH_GATE_ORDER, activations, recurrent_direction, zero_state
from irflow.frontends.variables import Variable
from irflow.nn import init as initializers
from irflow.nn.layers import Dropout
from irflow.nn.module import Module

__all__ = ["LSTM", "GRU", "SimpleRNN"]


def _positive_int(value: Any, what: str, layer: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise IrflowError(f"{layer}: {what} must be a positive int, got {value!r}")
    return int(value)


class _Recurrent(Module):
    _kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = "float32", rng: Any = None, nonlinearity: str = "tanh"):
        super().__init__()
        layer = type(self).__name__
        self.input_size = _positive_int(input_size, "input_size", layer)
        self.hidden_size = _positive_int(hidden_size, "hidden_size", layer)
        self.num_layers = _positive_int(num_layers, "num_layers", layer)
        self.bias, self.batch_first, self.bidirectional = bool(bias), bool(batch_first), bool(bidirectional)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise IrflowError(f"{layer}: dropout must be a float in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.nonlinearity = nonlinearity
        self._acts = self._activations(nonlinearity)
        rng = initializers.generator(rng)
        bound = 1.0 / math.sqrt(self.hidden_size)  # PyTorch's U(-1/sqrt(H), 1/sqrt(H)) for every parameter
        draw = initializers.uniform(-bound, bound)
        g, h = GATES[self._kind] * self.hidden_size, self.hidden_size
        for k in range(self.num_layers):
            in_k = self.input_size if k == 0 else h * self.num_directions
            for suffix in self._suffixes():
                name = f"l{k}{suffix}"
                setattr(self, f"weight_ih_{name}", Variable(draw((g, in_k), dtype, rng), name=f"weight_ih_{name}"))
                setattr(self, f"weight_hh_{name}", Variable(draw((g, h), dtype, rng), name=f"weight_hh_{name}"))
                if self.bias:
                    setattr(self, f"bias_ih_{name}", Variable(draw((g,), dtype, rng), name=f"bias_ih_{name}"))
                    setattr(self, f"bias_hh_{name}", Variable(draw((g,), dtype, rng), name=f"bias_hh_{name}"))
        self.inter_layer_dropout = Dropout(self.dropout) if self.dropout and self.num_layers > 1 else None

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def _activations(self, nonlinearity: str) -> list:
        if nonlinearity not in ("tanh", "relu"):
            raise IrflowError(f"SimpleRNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        return activations([nonlinearity])

    def _split_state(self, hx: Any, x: Any, batched: bool) -> list:
        """(L*D, B, H) initial state -> L*D tensors (B, H); zeros when None."""
        n = self.num_layers * self.num_directions
        if hx is None:
            return [zero_state(x, self.hidden_size)] * n
        if not batched:
            hx = ops.expand_dims(hx, 1)
        want = (n, x.shape[1], self.hidden_size)
        if len(hx.shape) != 3 or any(isinstance(a, int) and isinstance(b, int) and a != b
                                     for a, b in zip(hx.shape, want)):
            raise ShapeError(f"{type(self).__name__}: initial state must have shape {want}, got {tuple(hx.shape)}")
        return list(ops.split(hx, n, axis=0)) if n > 1 else [hx]

    def _run(self, x: Any, states: list[list], training: bool | None) -> tuple[Any, list[list]]:
        """x time-major (T, B, I); states: per state kind, L*D (1, B, H) or (B, H) tensors."""
        finals: list[list] = [[] for _ in states]
        for k in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(self._suffixes()):
                name = f"l{k}{suffix}"
                i = k * self.num_directions + d
                init = [s[i] if len(s[i].shape) == 2 else ops.squeeze(s[i], 0) for s in states]
                y, h, c = recurrent_direction(
                    self._kind, x, getattr(self, f"weight_ih_{name}"), getattr(self, f"weight_hh_{name}"),
                    getattr(self, f"bias_ih_{name}", None), getattr(self, f"bias_hh_{name}", None),
                    init[0], init[1] if self._kind == "lstm" else None,
                    gate_order=TORCH_GATE_ORDER[self._kind], acts=self._acts, reverse=d == 1)
                outs.append(y)
                finals[0].append(h)
                if self._kind == "lstm":
                    finals[1].append(c)
            x = outs[0] if len(outs) == 1 else ops.concat(outs, axis=-1)
            if self.inter_layer_dropout is not None and k < self.num_layers - 1:
                x = self.inter_layer_dropout(x, training=training)
        return x, finals

    def _forward(self, x: Any, hx: Any, training: bool | None) -> tuple[Any, Any]:
        layer = type(self).__name__
        if not hasattr(x, "shape") or isinstance(x, (list, tuple)):
            x = np.asarray(x)
        if len(x.shape) not in (2, 3):
            raise ShapeError(f"{layer}: input must be (T, B, I), (B, T, I) with batch_first, or unbatched (T, I); "
                             f"got shape {tuple(x.shape)}")
        batched = len(x.shape) == 3
        if not batched:
            x = ops.expand_dims(x, 1)
        elif self.batch_first:
            x = ops.transpose(x, (1, 0, 2))
        if isinstance(x.shape[2], int) and x.shape[2] != self.input_size:
            raise ShapeError(f"{layer}: input has {x.shape[2]} features, the layer expects input_size={self.input_size}")
        if self._kind == "lstm":
            h0, c0 = (None, None) if hx is None else hx
            states = [self._split_state(h0, x, batched), self._split_state(c0, x, batched)]
        else:
            states = [self._split_state(hx, x, batched)]
        y, finals = self._run(x, states, training)
        stacked = [ops.stack(f, axis=0) for f in finals]  # (L*D, B, H)
        if not batched:
            y = ops.squeeze(y, 1)
            stacked = [ops.squeeze(s, 1) for s in stacked]
        elif self.batch_first:
            y = ops.transpose(y, (1, 0, 2))
        return y, (tuple(stacked) if self._kind == "lstm" else stacked[0])


class SimpleRNN(_Recurrent):
    """Elman RNN, ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (``torch.nn.RNN``).

    ``forward(x, h0=None) -> (output, h_n)``: x (T, B, I) (or (B, T, I) with ``batch_first``,
    or unbatched (T, I)); output (T, B, D*H); h_n (num_layers*D, B, H). ``nonlinearity``:
    "tanh" or "relu". ``dropout`` between layers applies in training mode only.

    >>> rnn = irf.nn.SimpleRNN(4, 8)                        # doctest: +SKIP
    >>> out, h = rnn(np.zeros((5, 2, 4), "float32"))         # doctest: +SKIP
    """

    _kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = "float32", rng: Any = None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype, rng,
                         nonlinearity=nonlinearity)

    def forward(self, x: Any, hx: Any = None, training: bool | None = None) -> tuple[Any, Any]:
        return self._forward(x, hx, training)


class GRU(_Recurrent):
    """Gated recurrent unit (``torch.nn.GRU``: gates r, z, n; ``h = (1 - z) * n + z * h``).

    ``forward(x, h0=None) -> (output, h_n)``, shapes as ``SimpleRNN``.

    >>> gru = irf.nn.GRU(4, 8, bidirectional=True)           # doctest: +SKIP
    >>> out, h = gru(np.zeros((5, 2, 4), "float32"))          # doctest: +SKIP
    """

    _kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = "float32", rng: Any = None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype, rng)

    def _activations(self, nonlinearity: str) -> list:
        return activations(["sigmoid", "tanh"])

    def forward(self, x: Any, hx: Any = None, training: bool | None = None) -> tuple[Any, Any]:
        return self._forward(x, hx, training)


class LSTM(_Recurrent):
    """Long short-term memory (``torch.nn.LSTM``: gates i, f, g, o).

    ``forward(x, (h0, c0)=None) -> (output, (h_n, c_n))``, shapes as ``SimpleRNN``; no
    ``proj_size``.

    >>> lstm = irf.nn.LSTM(4, 8, num_layers=2)                # doctest: +SKIP
    >>> out, (h, c) = lstm(np.zeros((5, 2, 4), "float32"))     # doctest: +SKIP
    """

    _kind = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = "float32", rng: Any = None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype, rng)

    def _activations(self, nonlinearity: str) -> list:
        return activations(["sigmoid", "tanh", "tanh"])

    def forward(self, x: Any, hx: Any = None, training: bool | None = None) -> tuple[Any, Any]:
        return self._forward(x, hx, training)
