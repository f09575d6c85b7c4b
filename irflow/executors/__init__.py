"""Executors: the NumPy interpreter (reference) and onnxruntime, behind one ``run``."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from irflow.errors import ExecutorError
from irflow.ir.graph import Graph

_CACHE: dict[tuple, Any] = {}


def get_runner(graph: Graph, executor: str = "numpy", device: str = "cpu"):
    """The cached runner of ``graph`` on ``executor`` (keyed by the graph object's identity)."""
    key = (id(graph), executor, device)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is graph:
        return hit[1]
    if executor == "numpy":
        from irflow.executors.numpy import Interpreter

        runner = Interpreter(graph)
    elif executor == "ort":
        from irflow.executors.onnx import OrtRunner

        runner = OrtRunner(graph, device=device)
    else:
        raise ExecutorError(f"unknown executor {executor!r}; choose 'numpy' or 'ort'")
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[key] = (graph, runner)
    return runner


def run(graph: Graph, inputs: Mapping[str, Any], *, executor: str = "numpy", device: str = "cpu") -> dict[str, np.ndarray]:
    """Run ``graph`` on ``inputs`` (name -> array); return outputs by name.

    >>> outs = irf.run(g, {"x": np.ones((2, 4), "float32")})   # doctest: +SKIP
    """
    return get_runner(graph, executor, device).run(inputs)
