"""NumPy kernels of the signal ops (``irflow/ops/signal.py``), on ``numpy.fft`` in the input's
precision (16-bit floats in float32), rounded once to the input's dtype."""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import kernel
from irflow.ops.signal import dft_length_of


def _require(ok: bool, what: str) -> None:
    if not ok:  # a ValueError makes the eager path re-run the type rule, which says why
        raise ValueError(what)


def _complex(x: np.ndarray) -> np.ndarray:
    """(..., 1|2) -> real or complex (...) in x's precision (float32 stays single precision,
    as numpy.fft computes it and onnx's reference does: near-zero bins then agree)."""
    _require(x.ndim >= 1 and x.shape[-1] in (1, 2), "last dim must be 1 or 2")
    if x.dtype.itemsize == 2:  # numpy.fft has no half precision
        x = x.astype(np.float32)
    return x[..., 0] if x.shape[-1] == 1 else x[..., 0] + 1j * x[..., 1]


def _pack(c: np.ndarray, dtype) -> np.ndarray:
    return np.stack([c.real, c.imag], axis=-1).astype(dtype)


def _scalar_int(v, what: str) -> int:
    a = np.asarray(v)
    _require(a.dtype.kind in "iu" and a.size == 1, f"{what} must be one integer")
    return int(a.reshape(-1)[0])


@kernel("dft")
def dft(x, axis_value=None, axis=1, inverse=False, onesided=False, dft_length=None):
    _require(x.dtype.kind == "f", "float input expected")
    if axis_value is not None:
        axis = _scalar_int(axis_value, "axis")
        _require(-x.ndim <= axis < x.ndim, "axis out of range")
        axis %= x.ndim
    _require(1 <= axis <= x.ndim - 2, "axis must be a signal dim")
    n = dft_length_of(x.shape[axis], inverse, onesided, dft_length)
    _require(n >= 1, "empty transform")
    c = _complex(x)
    if not inverse:
        _require(not onesided or x.shape[-1] == 1, "onesided needs a real input")
        y = np.fft.fft(c, n=n, axis=axis)
        if onesided:
            y = np.take(y, np.arange(n // 2 + 1), axis=axis)
        return _pack(y, x.dtype)
    if onesided:  # irfft: the real signal of length n from the non-negative frequencies
        return np.fft.irfft(c, n=n, axis=axis)[..., None].astype(x.dtype)
    return _pack(np.fft.ifft(c, n=n, axis=axis), x.dtype)


@kernel("stft")
def stft(signal, frame_step, window=None, frame_length=None, onesided=True):
    _require(signal.dtype.kind == "f" and signal.ndim == 3, "(batch, length, 1|2) float signal expected")
    step = _scalar_int(frame_step, "frame_step")
    length = signal.shape[1]
    if frame_length is not None:
        n = _scalar_int(frame_length, "frame_length")
    else:
        n = window.shape[0] if window is not None else length
    _require(step >= 1 and 1 <= n <= length, "frame_step >= 1 and 1 <= frame_length <= signal length")
    _require(window is None or window.shape == (n,), "window length must equal frame_length")
    _require(not onesided or signal.shape[-1] == 1, "onesided needs a real signal")
    frames = 1 + (length - n) // step
    c = _complex(signal)  # (batch, length)
    starts = np.arange(frames) * step
    framed = c[:, starts[:, None] + np.arange(n)[None, :]]  # (batch, frames, n)
    if window is not None:
        framed = framed * window.astype(framed.real.dtype)
    y = np.fft.fft(framed, axis=-1)
    if onesided:
        y = y[..., : n // 2 + 1]
    return _pack(y, signal.dtype)


@kernel("mel_weight_matrix")
def mel_weight_matrix(num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz, dtype=None):
    """ONNX MelWeightMatrix as onnx's reference computes it: num_mel_bins + 2 points evenly
    spaced in mel (2595 log10(1 + f / 700)), step (high - low) / (num_mel_bins + 2), mapped
    to spectrum bins floor((dft_length + 1) * f / sample_rate); triangles between them."""
    bins, n, rate = (_scalar_int(v, name) for v, name in ((num_mel_bins, "num_mel_bins"),
                                                           (dft_length, "dft_length"), (sample_rate, "sample_rate")))
    _require(bins >= 1 and n >= 1 and rate >= 1, "num_mel_bins, dft_length and sample_rate must be positive")
    lo, hi = float(np.asarray(lower_edge_hertz).reshape(-1)[0]), float(np.asarray(upper_edge_hertz).reshape(-1)[0])
    spectrum = n // 2 + 1
    # the reference's exact float expressions, so bin edges (floors) agree at the boundaries
    low_mel, high_mel = 2595 * np.log1p(lo / 700) / np.log(10), 2595 * np.log1p(hi / 700) / np.log(10)
    points = np.arange(bins + 2) * ((high_mel - low_mel) / (bins + 2)) + low_mel
    hertz = 700 * np.expm1(points / 2595 * np.log(10))
    edges = (((n + 1) * hertz) // rate).astype(np.int64)
    _require(edges.min() >= 0 and edges.max() < spectrum + 1, "mel edges outside the spectrum")
    out = np.zeros((spectrum, bins))
    j = np.arange(spectrum)[:, None]
    left, center, right = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    rising = (j >= left) & (j <= center)
    out = np.where(rising, (j - left) / np.maximum(center - left, 1), out)
    falling = (j >= center) & (j < right)
    out = np.where(falling, (right - j) / np.maximum(right - center, 1), out)
    # a zero-width rise puts a 1 at the center (then the fall, if any, starts there at 1 too)
    out = np.where((center == left) & (j == center), 1.0, out)
    return out.astype(np.dtype(dtype.numpy) if hasattr(dtype, "numpy") else np.float32)
