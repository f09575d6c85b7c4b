"""Signal processing ops: ONNX's DFT, STFT and MelWeightMatrix.

Complex values are ONNX's layout: a trailing dim of 2 (real, imaginary); a trailing dim of 1
is a real signal. Each op lowers to the ONNX op of the same meaning.

- ``dft(x, axis, inverse, onesided, dft_length)``: the DFT along ``axis`` of (batch, ..., 1|2)
  x, unnormalized forward, 1/n inverse, as ``np.fft.fft`` / ``ifft``. ``onesided`` forward keeps
  the n//2 + 1 non-negative frequencies (rfft); ``onesided`` inverse takes those and returns
  the real signal of length n (irfft, n = 2 * (L - 1) by default). ``dft_length`` n zero-pads
  or truncates the input (None: the input's length). The axis is an attribute, or (ONNX
  opset 20, where it is an input) a run-time int64 scalar given as a second input.
  Linear, so its VJP is the adjoint transform (an inverse DFT scaled by n for the forward, the
  forward scaled by 1/n for the inverse, and for irfft the rfft with the doubled weights of
  the bins the Hermitian extension counts twice); it needs a static axis and length.
- ``stft(signal, frame_step, window, frame_length, onesided)``: the DFT of each (windowed)
  frame of (batch, length, 1|2) signal: (batch, frames, bins, 2). ``frame_step`` and
  ``frame_length`` are run-time int64 scalars (as ONNX has them), so frames and bins are
  known only at run time. Not differentiable: its adjoint is an overlap-add at run-time frame
  offsets, not written.
- ``mel_weight_matrix(num_mel_bins, dft_length, sample_rate, lower_edge_hertz,
  upper_edge_hertz, dtype)``: the (dft_length // 2 + 1, num_mel_bins) triangular filter bank
  of ONNX MelWeightMatrix, from run-time scalars. Not differentiable: piecewise constant in
  its integer bin edges.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow.errors import DTypeError, IrflowError, IRValidationError, ShapeError
from irflow.ir.dtypes import DType, as_dtype
from irflow.ir.types import TensorType
from irflow.ops.batching import LOOP, LOOP_THIS
from irflow.ops.common import move_axis
from irflow.ops.dispatch import bind
from irflow.ops.registry import Attr, defbatch, defop, defvjp

_INTS = (DType.int32, DType.int64)


def _int_scalar(op: str, name: str, t: TensorType | None) -> None:
    if t is None:
        return
    if t.dtype not in _INTS or t.rank > 1 or (t.rank == 1 and t.shape[0] not in (1, None)):
        raise DTypeError(f"{op}: {name} must be an int32/int64 scalar, got {t}")


def dft_length_of(length: Any, inverse: bool, onesided: bool, dft_length: int | None) -> Any:
    """The transform length n: dft_length, else the input's length (2 * (L - 1) for irfft)."""
    if dft_length is not None:
        return dft_length
    if not isinstance(length, int):
        return None
    return 2 * (length - 1) if inverse and onesided else length


def _dft_type(x: TensorType, axis_t: TensorType | None = None, *, axis, inverse, onesided, dft_length):
    op = "dft"
    if not x.dtype.is_float:
        raise DTypeError(f"{op} takes a float tensor (a trailing dim of 1: real, 2: real and imaginary), got {x.dtype.value}")
    if x.rank < 3:
        raise ShapeError(f"{op}: input must be (batch, signal dims..., 1 or 2), got {x}")
    if x.shape[-1] not in (1, 2, None):
        raise ShapeError(f"{op}: the last dim must be 1 (real) or 2 (complex), got {x.shape}")
    if dft_length is not None and dft_length < 1:
        raise IRValidationError(f"{op}: dft_length must be positive, got {dft_length}")
    _int_scalar(op, "the axis input", axis_t)
    out_last = 1 if inverse and onesided else 2
    if axis_t is not None:  # a run-time axis: the transformed dim is unknown unless lengths stay
        keeps = dft_length is None and not onesided
        return TensorType(dtype=x.dtype, shape=(x.shape[0],) + (tuple(x.shape[1:-1]) if keeps else (None,) * (x.rank - 2))
                          + (out_last,))
    if not 1 <= axis <= x.rank - 2:
        raise ShapeError(f"{op}: axis {axis} must be a signal dim (1..{x.rank - 2}) of {x.shape}")
    if onesided and not inverse and x.shape[-1] == 2:
        raise ShapeError(f"{op}: a one-sided forward transform needs a real input (last dim 1), got {x.shape}")
    n = dft_length_of(x.shape[axis], inverse, onesided, dft_length)
    if isinstance(n, int) and n < 1:
        raise ShapeError(f"{op}: the transform length {n} of {x.shape} along axis {axis} must be positive")
    size = (n // 2 + 1 if isinstance(n, int) else None) if onesided and not inverse else n
    shape = list(x.shape)
    shape[axis], shape[-1] = size, out_last
    return TensorType(dtype=x.dtype, shape=tuple(shape))


defop("dft", _dft_type, inputs=(1, 2), family="signal",
      attrs={"axis": Attr("int", default=1), "inverse": Attr("bool", default=False),
             "onesided": Attr("bool", default=False), "dft_length": Attr("int", default=None, optional=True)},
      doc="ONNX DFT along one signal axis of a (batch, ..., 1|2) tensor: fft, ifft, rfft or irfft.")


def _fit(t: Any, axis: int, length: int) -> Any:
    """t cut or zero-padded at the end of ``axis`` to ``length``."""
    have = t.shape[axis]
    if have > length:
        return bind("slice", t, starts=(0,), ends=(length,), axes=(axis,), steps=None)
    if have < length:
        pads = [0] * (2 * t.ndim)
        pads[t.ndim + axis] = length - have
        return bind("pad", t, pads=tuple(pads), mode="constant", value=0.0)
    return t


@defvjp("dft")
def _dft_vjp(g, x, *axis_t, out, axis, inverse, onesided, dft_length):
    if axis_t and axis_t[0] is not None:
        raise IrflowError("dft gradient: needs a static axis (this dft's axis is a run-time input)")
    length = x.shape[axis]
    n = dft_length_of(length, inverse, onesided, dft_length)
    if not isinstance(length, int) or not isinstance(n, int):
        raise IrflowError(f"dft gradient: needs a static length along axis {axis}, got shape {x.shape}")
    dtype = x.dtype.numpy if hasattr(x.dtype, "numpy") else np.dtype(x.dtype)
    if not inverse:  # y = S F P x: x's gradient P^T F^H S^T g, and F^H = n * ifft
        g_full = _fit(g, axis, n) if onesided else g
        gx = bind("mul", bind("dft", g_full, axis=axis, inverse=True, onesided=False, dft_length=None),
                  np.asarray(n, dtype))
    elif not onesided:  # y = (1/n) conj(F) P x: the adjoint is fft / n
        gx = bind("mul", bind("dft", g, axis=axis, inverse=False, onesided=False, dft_length=None),
                  np.asarray(1.0 / n, dtype))
    else:  # irfft: y_t = (1/n) sum_k c_k Re(X_k e^{2 pi i k t / n}), c_k = 2 but 1 for DC and Nyquist
        gx = bind("dft", g, axis=axis, inverse=False, onesided=True, dft_length=None)
        bins = n // 2 + 1
        weights = np.full(bins, 2.0 / n)
        weights[0] = 1.0 / n
        if n % 2 == 0:
            weights[-1] = 1.0 / n
        shape = [1] * x.ndim
        shape[axis] = bins
        gx = bind("mul", gx, weights.reshape(shape).astype(dtype))
    gx = _fit(gx, axis, length)
    if x.shape[-1] == 1:  # a real input: the real part's gradient
        gx = bind("slice", gx, starts=(0,), ends=(1,), axes=(x.ndim - 1,), steps=None)
    return (gx,) + (None,) * len(axis_t)


@defbatch("dft")
def _dft_batch(inputs, dims, size, *, axis, inverse, onesided, dft_length):
    # The vmap batch goes in front of ONNX's batch dim and the axis shifts by one; a batched
    # or run-time axis input runs in a loop.
    if len(inputs) > 1 and inputs[1] is not None:
        return LOOP_THIS
    x = inputs[0] if dims[0] in (None, 0) else move_axis(inputs[0], dims[0], 0)
    return bind("dft", x, axis=axis + 1, inverse=inverse, onesided=onesided, dft_length=dft_length), 0


def dft(x: Any, axis: int = 1, inverse: bool = False, onesided: bool = False, dft_length: int | None = None) -> Any:
    """ONNX DFT of ``x`` (batch, ..., 1 or 2) along ``axis``; complex as a trailing dim of 2.

    >>> y = irf.dft(np.array([[[1.0], [2.0], [3.0], [4.0]]], "float32"))   # (1, 4, 1) real
    >>> y.numpy()[0]
    array([[10.,  0.],
           [-2.,  2.],
           [-2.,  0.],
           [-2., -2.]], dtype=float32)
    """
    rank = len(x.shape)
    a = int(axis) % rank if -rank <= int(axis) < rank else int(axis)
    return bind("dft", x, axis=a, inverse=bool(inverse), onesided=bool(onesided),
                dft_length=None if dft_length is None else int(dft_length))


# -- stft -------------------------------------------------------------------------------------------
def _stft_type(signal: TensorType, frame_step: TensorType, window: TensorType | None = None,
               frame_length: TensorType | None = None, *, onesided):
    op = "stft"
    if not signal.dtype.is_float:
        raise DTypeError(f"{op} takes a float signal, got {signal.dtype.value}")
    if signal.rank != 3 or signal.shape[-1] not in (1, 2, None):
        raise ShapeError(f"{op}: the signal must be (batch, length, 1 or 2), got {signal}")
    _int_scalar(op, "frame_step", frame_step)
    _int_scalar(op, "frame_length", frame_length)
    if window is not None:
        if window.dtype != signal.dtype or window.rank != 1:
            raise ShapeError(f"{op}: the window must be 1-D of the signal's dtype {signal.dtype.value}, got {window}")
    if onesided and signal.shape[-1] == 2:
        raise ShapeError(f"{op}: onesided needs a real signal (last dim 1), got {signal.shape}")
    n = window.shape[0] if window is not None and frame_length is None else None
    bins = (n // 2 + 1 if onesided else n) if isinstance(n, int) else None
    return TensorType(dtype=signal.dtype, shape=(signal.shape[0], None, bins, 2))


defop("stft", _stft_type, inputs=(2, 4), attrs={"onesided": Attr("bool", default=True)}, family="signal",
      differentiable=False,  # its adjoint is an overlap-add at run-time frame offsets: not written
      doc="ONNX STFT: the DFT of each windowed frame of a (batch, length, 1|2) signal, (batch, frames, bins, 2).")
# frame_step and frame_length are run-time values: a loop keeps every batch element's own frames.
defbatch("stft", LOOP)


def stft(signal: Any, frame_step: Any, window: Any = None, frame_length: Any = None, onesided: bool = True) -> Any:
    """ONNX STFT of ``signal`` (batch, length, 1|2): frames every ``frame_step`` samples.

    >>> s = np.arange(8, dtype="float32").reshape(1, 8, 1)
    >>> irf.stft(s, np.int64(4), np.ones(4, "float32")).shape
    (1, 2, 3, 2)
    """
    return bind("stft", signal, frame_step, window, frame_length, onesided=bool(onesided))


# -- mel_weight_matrix ------------------------------------------------------------------------------
def _mel_type(num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz, *, dtype):
    op = "mel_weight_matrix"
    for name, t in (("num_mel_bins", num_mel_bins), ("dft_length", dft_length), ("sample_rate", sample_rate)):
        _int_scalar(op, name, t)
    for name, t in (("lower_edge_hertz", lower_edge_hertz), ("upper_edge_hertz", upper_edge_hertz)):
        if not t.dtype.is_float or t.rank > 1:
            raise DTypeError(f"{op}: {name} must be a float scalar, got {t}")
    if not as_dtype(dtype).is_float:
        raise DTypeError(f"{op}: the output dtype must be a float dtype, got {dtype}")
    return TensorType(dtype=as_dtype(dtype), shape=(None, None))


defop("mel_weight_matrix", _mel_type, inputs=5, attrs={"dtype": Attr("dtype", default=DType.float32)},
      family="signal", differentiable=False,  # piecewise constant in its integer bin edges
      doc="ONNX MelWeightMatrix: the (dft_length // 2 + 1, num_mel_bins) triangular mel filter bank.")
defbatch("mel_weight_matrix", LOOP)  # the output's shape comes from the (batched) scalar inputs


def mel_weight_matrix(num_mel_bins: Any, dft_length: Any, sample_rate: Any, lower_edge_hertz: Any,
                      upper_edge_hertz: Any, dtype: Any = "float32") -> Any:
    """ONNX MelWeightMatrix: weights mapping dft_length // 2 + 1 spectrum bins to mel bins.

    >>> irf.mel_weight_matrix(np.int64(4), np.int64(16), np.int64(8000), np.float32(0), np.float32(4000)).shape
    (9, 4)
    """
    return bind("mel_weight_matrix", num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz,
                dtype=as_dtype(dtype))


__all__ = ["dft", "stft", "mel_weight_matrix"]
