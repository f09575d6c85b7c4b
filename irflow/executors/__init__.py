"""Executors: the NumPy interpreter (reference) and onnxruntime, behind one ``run``."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from irflow.errors import ExecutorError
from irflow.executors.device_names import canonical_device
from irflow.ir.graph import Graph

EXECUTORS = ("numpy", "ort")
_CACHE: dict[tuple, Any] = {}
_CACHE_LIMIT = 256


def get_runner(graph: Graph, executor: str = "numpy", device: str = "auto", options: Any = None, **ort_kwargs: Any):
    """The cached runner of ``graph`` on ``executor``: an ``Interpreter`` or an ``OrtRunner``.

    Runners are keyed by the graph object's identity, the executor, the resolved device and
    the onnxruntime options, so one graph gets one onnxruntime session per setting.
    ``options`` is an ``irflow.executors.onnx.OrtOptions``; keyword arguments
    (``intra_op_num_threads=1``, ``allow_spinning=False``, ...) override its fields.

    >>> runner = get_runner(g, "ort", "cpu", intra_op_num_threads=1)   # doctest: +SKIP
    """
    # Fast path: the same call as before (the device probe's answer never changes in a process).
    raw_key = (id(graph), executor, device, options, tuple(sorted(ort_kwargs.items())) if ort_kwargs else ())
    hit = _CACHE.get(raw_key)
    if hit is not None and hit[0] is graph:
        return hit[1]
    device = canonical_device(device)
    if executor == "numpy":
        if device not in ("auto", "cpu"):
            raise ExecutorError(f"the numpy executor runs on the CPU only; got device={device!r} (use executor='ort' for CUDA)")
        if options is not None or ort_kwargs:
            raise ExecutorError("onnxruntime options were given but executor='numpy'; pass executor='ort'")
        key: tuple = (id(graph), "numpy")
    elif executor == "ort":
        from irflow.executors.onnx.device import resolve_device
        from irflow.executors.onnx.runner import ort_options

        options = ort_options(options, **ort_kwargs)
        device = resolve_device(device)
        key = (id(graph), "ort", device, options)
    else:
        raise ExecutorError(f"unknown executor {executor!r}; choose one of {', '.join(map(repr, EXECUTORS))}")
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is graph:
        runner = hit[1]
    elif executor == "numpy":
        from irflow.executors.numpy import Interpreter

        runner = Interpreter(graph)
    else:
        from irflow.executors.onnx.runner import OrtRunner

        runner = OrtRunner(graph, device=device, options=options)
    while len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.pop(next(iter(_CACHE)))  # the oldest entry; dicts keep insertion order
    _CACHE[key] = (graph, runner)
    _CACHE[raw_key] = (graph, runner)
    return runner


def run(
    graph: Graph,
    inputs: Mapping[str, Any],
    *,
    executor: str = "numpy",
    device: str = "auto",
    options: Any = None,
    **ort_kwargs: Any,
) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``inputs`` (name -> array); return outputs by name.

    ``executor="numpy"`` (the reference) or ``"ort"`` (onnxruntime); ``device="auto"`` (CUDA
    when onnxruntime can use it, else CPU), ``"cpu"`` or ``"cuda"``. onnxruntime settings:
    ``options=OrtOptions(...)`` or keywords such as ``intra_op_num_threads=2``.

    >>> outs = irf.run(g, {"x": np.ones((2, 4), "float32")})   # doctest: +SKIP
    >>> outs = irf.run(g, {"x": x}, executor="ort", intra_op_num_threads=1)   # doctest: +SKIP
    """
    return get_runner(graph, executor, device, options, **ort_kwargs).run(inputs)
