"""Initializers: functions ``init(shape, dtype="float32", rng=None) -> np.ndarray``.

Randomness comes from ``rng`` when given, else from this module's generator, which
``seed(n)`` resets: ``irf.nn.init.seed(0)`` before building a model makes its weights
reproducible. Fans: a 2-d shape is (fan_in, fan_out) (Linear stores its weight as (in, out));
a conv kernel (out, in/groups, kh, kw) has fan_in = in/groups*kh*kw, fan_out = out*kh*kw.

>>> irf.nn.init.seed(0)                                                   # doctest: +SKIP
>>> w = irf.nn.init.glorot_uniform((784, 256))                            # doctest: +SKIP
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from irflow.errors import IrflowError
from irflow.ir.dtypes import as_dtype

__all__ = ["seed", "generator", "fans", "zeros", "ones", "constant", "glorot_uniform", "glorot_normal",
           "he_uniform", "he_normal", "normal", "uniform", "get"]

_GENERATOR = np.random.default_rng(0)

Initializer = Callable[..., np.ndarray]


def seed(n: int) -> None:
    """Reset the default generator of the initializers (``numpy.random.default_rng(n)``)."""
    global _GENERATOR
    _GENERATOR = np.random.default_rng(n)


def generator(rng: np.random.Generator | int | None = None) -> np.random.Generator:
    """``rng`` as a Generator: a Generator as is, an int seeds a new one, None is the default."""
    if rng is None:
        return _GENERATOR
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise IrflowError(f"initializer rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape (see the module docstring for the layouts)."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


def _np_dtype(dtype: Any) -> np.dtype:
    d = as_dtype(dtype)
    if not d.is_float:
        raise IrflowError(f"random initializers make float weights, got dtype {d.value}")
    return np.dtype(d.numpy)


def zeros(shape: Sequence[int], dtype: Any = "float32", rng: Any = None) -> np.ndarray:
    """All zeros (biases, BatchNorm's shift)."""
    return np.zeros(tuple(shape), as_dtype(dtype).numpy)


def ones(shape: Sequence[int], dtype: Any = "float32", rng: Any = None) -> np.ndarray:
    """All ones (LayerNorm/BatchNorm scales)."""
    return np.ones(tuple(shape), as_dtype(dtype).numpy)


def constant(value: float) -> Initializer:
    """An initializer filling with ``value``: ``constant(0.1)((3,))``."""
    return lambda shape, dtype="float32", rng=None: np.full(tuple(shape), value, as_dtype(dtype).numpy)


def uniform(low: float = -0.05, high: float = 0.05) -> Initializer:
    """An initializer drawing from U[low, high)."""
    return lambda shape, dtype="float32", rng=None: generator(rng).uniform(low, high, tuple(shape)).astype(_np_dtype(dtype))


def normal(stddev: float = 0.05, mean: float = 0.0) -> Initializer:
    """An initializer drawing from N(mean, stddev^2)."""
    return lambda shape, dtype="float32", rng=None: (mean + stddev * generator(rng).standard_normal(tuple(shape))).astype(_np_dtype(dtype))


def glorot_uniform(shape: Sequence[int], dtype: Any = "float32", rng: Any = None) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio 2010; Keras' default)."""
    fi, fo = fans(shape)
    a = math.sqrt(6.0 / max(fi + fo, 1))
    return generator(rng).uniform(-a, a, tuple(shape)).astype(_np_dtype(dtype))


def glorot_normal(shape: Sequence[int], dtype: Any = "float32", rng: Any = None) -> np.ndarray:
    """N(0, 2 / (fan_in + fan_out))."""
    fi, fo = fans(shape)
    return (math.sqrt(2.0 / max(fi + fo, 1)) * generator(rng).standard_normal(tuple(shape))).astype(_np_dtype(dtype))


def he_uniform(shape: Sequence[int], dtype: Any = "float32", rng: Any = None) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / fan_in) (He et al. 2015, for ReLU networks)."""
    fi, _ = fans(shape)
    a = math.sqrt(6.0 / max(fi, 1))
    return generator(rng).uniform(-a, a, tuple(shape)).astype(_np_dtype(dtype))


def he_normal(shape: Sequence[int], dtype: Any = "float32", rng: Any = None) -> np.ndarray:
    """N(0, 2 / fan_in)."""
    fi, _ = fans(shape)
    return (math.sqrt(2.0 / max(fi, 1)) * generator(rng).standard_normal(tuple(shape))).astype(_np_dtype(dtype))


_BY_NAME = {"zeros": zeros, "ones": ones, "glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
            "he_uniform": he_uniform, "he_normal": he_normal, "xavier_uniform": glorot_uniform,
            "xavier_normal": glorot_normal, "kaiming_uniform": he_uniform, "kaiming_normal": he_normal}


def get(init: str | Initializer) -> Initializer:
    """An initializer by name (``"he_normal"``) or the callable itself."""
    if callable(init):
        return init
    try:
        return _BY_NAME[init]
    except KeyError:
        raise IrflowError(f"unknown initializer {init!r}; known: {sorted(_BY_NAME)}") from None
