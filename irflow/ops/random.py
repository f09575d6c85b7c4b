"""Random ops: random_uniform and random_normal, with an explicit seed and no inputs.

On the NumPy executor a random op is a pure function of its attrs: the same seed gives the
same bits every run (``numpy.random.default_rng(seed)``, bit-stable within one NumPy version).
On onnxruntime the same graph draws from ONNX RandomUniform/RandomNormal, whose generator
advances on every session run: the values agree with NumPy's in distribution, not in bits.
Neither op has a gradient with respect to anything (they take no inputs).
"""
from __future__ import annotations

from typing import Any, Sequence

from irflow.errors import DTypeError, IRValidationError
from irflow.ir.dtypes import DType, as_dtype
from irflow.ir.types import TensorType
from irflow.ops.common import bind
from irflow.ops.registry import Attr, defop


def random_type(op: str, *, shape, dtype, seed, **params: float) -> TensorType:
    """The type rule of both ops; their NumPy kernels call it too (eager calls skip type rules)."""
    if not (isinstance(shape, tuple) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise IRValidationError(f"{op}: shape must be a tuple of ints >= 0, got {shape!r}")
    if not isinstance(dtype, DType) or not dtype.is_float:
        raise DTypeError(f"{op}: dtype must be a float dtype, got {dtype!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise IRValidationError(f"{op}: seed must be an int >= 0, got {seed!r}")
    for name, value in params.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise IRValidationError(f"{op}: {name} must be a float, got {value!r}")
    if op == "random_uniform" and not params["low"] <= params["high"]:
        raise IRValidationError(f"{op}: low must be <= high, got low={params['low']}, high={params['high']}")
    if op == "random_normal" and not params["stddev"] >= 0:
        raise IRValidationError(f"{op}: stddev must be >= 0, got {params['stddev']}")
    return TensorType(dtype=dtype, shape=shape)


_COMMON = {"shape": Attr("ints"), "dtype": Attr("dtype", default=DType.float32), "seed": Attr("int", default=0)}

defop("random_uniform", lambda **a: random_type("random_uniform", **a), inputs=0, differentiable=False,
      attrs={**_COMMON, "low": Attr("float", default=0.0), "high": Attr("float", default=1.0)}, family="random",
      doc="Uniform samples in [low, high) of a static shape, seeded.")
defop("random_normal", lambda **a: random_type("random_normal", **a), inputs=0, differentiable=False,
      attrs={**_COMMON, "mean": Attr("float", default=0.0), "stddev": Attr("float", default=1.0)}, family="random",
      doc="Normal samples N(mean, stddev^2) of a static shape, seeded.")


def _shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (shape,) if isinstance(shape, int) else tuple(shape)


def random_uniform(shape: int | Sequence[int], low: float = 0.0, high: float = 1.0, dtype: Any = "float32",
                   seed: int = 0) -> Any:
    """Uniform samples in [low, high) (float16/bfloat16 are drawn in float32 and rounded).

    >>> irf.random_uniform((2, 3), seed=1).shape
    (2, 3)
    """
    return bind("random_uniform", shape=_shape(shape), dtype=as_dtype(dtype), seed=seed, low=float(low), high=float(high))


def random_normal(shape: int | Sequence[int], mean: float = 0.0, stddev: float = 1.0, dtype: Any = "float32",
                  seed: int = 0) -> Any:
    """Normal samples with the given mean and standard deviation.

    >>> irf.random_normal(4, stddev=0.1, seed=3).dtype
    <DType.float32: 'float32'>
    """
    return bind("random_normal", shape=_shape(shape), dtype=as_dtype(dtype), seed=seed, mean=float(mean),
                stddev=float(stddev))


__all__ = ["random_uniform", "random_normal"]
