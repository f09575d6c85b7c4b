"""Checking feeds against a graph's inputs, shared by every executor."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from irflow.errors import DTypeError, ExecutorError, ShapeError
from irflow.ir.graph import Graph


def check_feeds(graph: Graph, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Return feeds as arrays after checking names, dtypes and shapes (symbols bound consistently).

    Python scalars and lists are converted to the input's dtype; an array of another dtype is a
    DTypeError, never silently cast.
    """
    expected = {v.name: v.type for v in graph.inputs}
    unknown = [k for k in feeds if k not in expected]
    if unknown:
        raise ExecutorError(
            f"graph {graph.name!r}: unknown input(s) {', '.join(map(repr, unknown))}; inputs are {', '.join(expected) or 'none'}"
        )
    missing = [k for k in expected if k not in feeds]
    if missing:
        raise ExecutorError(f"graph {graph.name!r}: missing input(s) {', '.join(map(repr, missing))}")
    out: dict[str, np.ndarray] = {}
    symbols: dict[str, tuple[int, str]] = {}
    for name, t in expected.items():
        x = feeds[name]
        want = t.dtype.numpy
        if isinstance(x, np.ndarray):
            arr = x
        elif hasattr(x, "__array__") and not isinstance(x, (list, tuple, int, float, bool)):
            arr = np.asarray(x)
        else:
            arr = np.asarray(x, dtype=want)
        if arr.dtype != want:
            raise DTypeError(f"graph {graph.name!r}: input '{name}' must be {t.dtype.value}, got {arr.dtype}")
        if arr.ndim != t.rank:
            raise ShapeError(f"graph {graph.name!r}: input '{name}' must have shape {t.shape} (rank {t.rank}), got {arr.shape}")
        for axis, (want_dim, got) in enumerate(zip(t.shape, arr.shape)):
            if isinstance(want_dim, int) and want_dim != got:
                raise ShapeError(f"graph {graph.name!r}: input '{name}' must have shape {t.shape}, got {arr.shape}")
            if isinstance(want_dim, str):
                seen = symbols.setdefault(want_dim, (got, name))
                if seen[0] != got:
                    raise ShapeError(
                        f"graph {graph.name!r}: dim '{want_dim}' is {seen[0]} in input '{seen[1]}' but {got} in input '{name}'"
                    )
        out[name] = arr
    return out
