"""ONNX import of axes computed at run time (issue 17): Reduce*'s ``axes``, Squeeze/Unsqueeze's
``axes``, CumSum/CumProd's ``axis``.

The static importers (``onnx_import_ops``, ``onnx_import_shape_ops``) handle axes known at
import (attributes, constants, initializers, folded shape computations), so models exported
from torch import exactly as before. This module wraps them: when the axes input is a
run-time value, the node becomes a run-time axes op (``irflow/ops/dynamic_axes.py``) taking it
as an input. Reduce{L1, L2, SumSquare, LogSum} decompose onto ``reduce_dynamic`` as the static
import decomposes them onto ``reduce_sum``; ReduceLogSumExp is max + log(sum(exp(x - max))).
"""
from __future__ import annotations

from typing import Callable

from irflow.frontends.onnx_import_base import IMPORTERS
from irflow.ops.dispatch import bind


def _wrap(op_type: str, index: int, dynamic: Callable) -> None:
    """Route ``op_type`` nodes whose input ``index`` is a run-time value to ``dynamic``."""
    static = IMPORTERS[op_type]

    def imp(n):
        return dynamic(n) if n.run_time(index) else static(n)

    imp.__name__ = f"import_{op_type}"
    IMPORTERS[op_type] = imp


def _reduce(kind: str, pre: Callable | None = None, post: Callable | None = None) -> Callable:
    def imp(n):
        x = n.input(0) if pre is None else pre(n.input(0))
        out = bind("reduce_dynamic", x, n.input(1), kind=kind, keepdims=bool(n.attr("keepdims", 1)),
                   noop_with_empty_axes=bool(n.attr("noop_with_empty_axes", 0)))
        return out if post is None else post(out)

    return imp


def _zero_where_inf(m):
    return bind("where", bind("isinf", m), bind("zeros_like", m), m)


def _reduce_log_sum_exp(n):
    # Stable, as the static logsumexp: m + log(sum(exp(x - m))) with m the max, taken as 0
    # where infinite (all -inf, which includes the empty set, or a +inf). With keepdims=0 the
    # max is reduced a second time without keepdims rather than squeezed by run-time axes.
    x, axes = n.input(0), n.input(1)
    keep, noop = bool(n.attr("keepdims", 1)), bool(n.attr("noop_with_empty_axes", 0))

    def reduce(t, kind, keepdims):
        return bind("reduce_dynamic", t, axes, kind=kind, keepdims=keepdims, noop_with_empty_axes=noop)

    m = _zero_where_inf(reduce(x, "max", True))
    total = reduce(bind("exp", bind("sub", x, m)), "sum", keep)
    return bind("add", bind("log", total), m if keep else _zero_where_inf(reduce(x, "max", False)))


for _op, _imp in dict(
    ReduceSum=_reduce("sum"), ReduceMean=_reduce("mean"), ReduceMax=_reduce("max"), ReduceMin=_reduce("min"),
    ReduceProd=_reduce("prod"), ReduceLogSumExp=_reduce_log_sum_exp,
    ReduceL1=_reduce("sum", pre=lambda x: bind("abs", x)),
    ReduceL2=_reduce("sum", pre=lambda x: bind("mul", x, x), post=lambda y: bind("sqrt", y)),
    ReduceSumSquare=_reduce("sum", pre=lambda x: bind("mul", x, x)),
    ReduceLogSum=_reduce("sum", post=lambda y: bind("log", y)),
).items():
    _wrap(_op, 1, _imp)

_wrap("Squeeze", 1, lambda n: bind("squeeze_dynamic", n.input(0), n.input(1)))
_wrap("Unsqueeze", 1, lambda n: bind("unsqueeze_dynamic", n.input(0), n.input(1)))


def _cum(op: str) -> Callable:
    def imp(n):
        return bind(op, n.input(0), n.input(1), exclusive=bool(n.attr("exclusive", 0)), reverse=bool(n.attr("reverse", 0)))

    return imp


_wrap("CumSum", 1, _cum("cumsum_dynamic"))
_wrap("CumProd", 1, _cum("cumprod_dynamic"))
