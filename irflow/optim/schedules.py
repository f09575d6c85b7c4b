"""Learning-rate schedules: callables ``schedule(step) -> learning rate``.

``step`` is the number of updates applied so far: a float32 tensor (a Variable's value,
eager or symbolic in a traced step), so schedules are written with irf ops and a traced
train step follows the schedule without retracing. Any such callable works as
``learning_rate=`` of an optimizer.

>>> opt = irf.optim.SGD(irf.optim.schedules.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5))  # doctest: +SKIP
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from irflow import ops
from irflow.errors import IrflowError

__all__ = ["ExponentialDecay", "CosineDecay", "PiecewiseConstant"]


class ExponentialDecay:
    """``initial * decay_rate ** (step / decay_steps)`` (``staircase``: the exponent floored)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False):
        if decay_steps <= 0:
            raise IrflowError(f"ExponentialDecay: decay_steps must be > 0, got {decay_steps!r}")
        self.initial, self.decay_steps, self.decay_rate, self.staircase = float(initial_learning_rate), decay_steps, float(decay_rate), staircase

    def __call__(self, step: Any) -> Any:
        p = step / float(self.decay_steps)
        if self.staircase:
            p = ops.floor(p)
        return ops.exp(p * math.log(self.decay_rate)) * self.initial


class CosineDecay:
    """``alpha_floor + (1 - alpha_floor) * initial * (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2``."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0):
        if decay_steps <= 0:
            raise IrflowError(f"CosineDecay: decay_steps must be > 0, got {decay_steps!r}")
        self.initial, self.decay_steps, self.alpha = float(initial_learning_rate), decay_steps, float(alpha)

    def __call__(self, step: Any) -> Any:
        p = ops.minimum(step, float(self.decay_steps)) / float(self.decay_steps)
        cosine = (ops.cos(p * math.pi) + 1.0) * 0.5
        return (cosine * (1.0 - self.alpha) + self.alpha) * self.initial


class PiecewiseConstant:
    """``values[i]`` while ``boundaries[i-1] <= step < boundaries[i]`` (len(values) = len(boundaries) + 1)."""

    def __init__(self, boundaries: Sequence[float], values: Sequence[float]):
        if len(values) != len(boundaries) + 1:
            raise IrflowError(f"PiecewiseConstant: {len(values)} values for {len(boundaries)} boundaries; need one more value")
        self.boundaries, self.values = [float(b) for b in boundaries], [float(v) for v in values]

    def __call__(self, step: Any) -> Any:
        lr = ops.full_like(step, self.values[0])
        for b, v in zip(self.boundaries, self.values[1:]):
            lr = ops.where(ops.greater_equal(step, b), ops.full_like(step, v), lr)
        return lr
