"""``irf.onnx``: ONNX in and out.

>>> import irflow as irf
>>> model = irf.onnx.to_model(graph)                      # doctest: +SKIP
>>> irf.onnx.save(graph, "m.onnx", external_data=True)    # doctest: +SKIP
>>> irf.onnx.export(fn, "f.onnx", irf.TensorSpec(("batch", 784), "float32"))   # doctest: +SKIP
>>> irf.onnx.run("m.onnx", {"x": x})                      # doctest: +SKIP
>>> graph = irf.onnx.load("m.onnx")                       # doctest: +SKIP

(This module is ``irflow.onnx``; inside irflow, ``import onnx`` is absolute and still finds
the onnx package.)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx

from irflow.errors import ExecutorError, IrflowError
from irflow.executors.onnx.export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, save_model
from irflow.executors.onnx.export import to_model as _to_model
from irflow.frontends.onnx_export import STATE_METADATA_KEY, check_path, traced_graph, write_model  # noqa: F401
from irflow.ir.graph import Graph

__all__ = ["to_model", "save", "export", "run", "load", "graph_of", "DEFAULT_OPSET", "MIN_OPSET", "MAX_OPSET"]



def to_model(graph: Graph, *, opset: int | None = None) -> onnx.ModelProto:
    """Lower ``graph`` to an ``onnx.ModelProto`` (standard domain; opset default 21, allowed
    ``MIN_OPSET..MAX_OPSET``). The model passes ``onnx.checker.check_model(full_check=True)``.

    >>> model = irf.onnx.to_model(g, opset=21)   # doctest: +SKIP
    """
    if not isinstance(graph, Graph):
        raise IrflowError(f"irf.onnx.to_model takes an irflow Graph, got {type(graph).__name__}; for functions use irf.onnx.export")
    return _to_model(graph, opset=opset)


def save(graph: Graph, path: str | Path, *, external_data: bool = False, opset: int | None = None) -> Path:
    """Write ``graph`` as an ONNX file. ``external_data=True`` puts weights of 1 KB and more in
    one side file ``<path>.data`` next to it (needed above protobuf's 2 GB limit).

    >>> irf.onnx.save(g, "model.onnx")   # doctest: +SKIP
    """
    _check_path(path)  # before lowering: a bad path costs nothing
    return save_model(to_model(graph, opset=opset), path, external_data=external_data)


_check_path = check_path  # frontends/onnx_export.py: shared with Function.export_onnx

def graph_of(obj: Any, *specs: Any, training: bool = False) -> tuple[Graph, list[dict]]:
    """The graph to export for ``obj`` and the list of its Variables' wiring.

    ``obj`` is a Graph (returned as is), an ``irf.function`` Function, or any callable (a
    plain function, an ``nn.Module``), which is wrapped with ``irf.function`` first and traced
    for ``specs``; an ``nn.Module`` is traced in inference mode unless ``training=True``. Inference export (``training=False``): each Variable's graph input becomes
    an initializer holding its current value and the variable-update outputs are dropped
    (with the nodes only they needed). Training export: Variables stay inputs, their new
    values stay outputs; the wiring ``[{"variable", "input", "output"}]`` says which is which.
    """
    if isinstance(obj, Graph):
        if specs:
            raise IrflowError("irf.onnx.export: input specs are for functions; a Graph already has its input types")
        return obj, []
    fn = obj
    if not hasattr(fn, "get_concrete_function"):
        if not callable(fn):
            raise IrflowError(f"irf.onnx.export takes a Graph, an irf.function or a callable, got {type(obj).__name__}")
        try:
            from irflow.frontends.trace import function
        except ImportError as e:
            raise IrflowError(f"irf.onnx.export of a Python callable needs irf.function (irflow.frontends.trace): {e}") from None
        fn = function(fn)
    return traced_graph(fn, obj, *specs, training=training)


def export(
    obj: Any,
    path: str | Path,
    *specs: Any,
    training: bool = False,
    opset: int | None = None,
    external_data: bool = False,
) -> onnx.ModelProto:
    """Trace ``obj`` (an ``irf.function``, a callable or an ``nn.Module``) for ``specs`` and write
    it as ONNX to ``path``; return the model. See ``graph_of`` for what ``training`` changes.
    A training export records its Variables' wiring in the model's metadata
    (``irflow.variables``: a JSON list of ``{"variable", "input", "output"}``).

    >>> irf.onnx.export(model, "mlp.onnx", irf.TensorSpec(("batch", 784), "float32"))   # doctest: +SKIP
    """
    _check_path(path)  # before tracing and lowering
    graph, wiring = graph_of(obj, *specs, training=training)
    return write_model(graph, wiring, path, opset=opset, external_data=external_data)


def run(
    model: Graph | onnx.ModelProto | str | Path,
    inputs: Mapping[str, Any],
    *,
    device: str = "auto",
    options: Any = None,
    **ort_kwargs: Any,
) -> dict[str, np.ndarray]:
    """Run a Graph, an ``onnx.ModelProto`` or an ``.onnx`` file on onnxruntime; outputs by name.

    A Graph goes through the cached ``ort`` runner (as ``irf.run(..., executor="ort")``). A
    model or a file gets a fresh session per call: for repeated calls load it once
    (``irf.onnx.load``) and run the Graph.

    >>> irf.onnx.run("model.onnx", {"x": x}, device="cpu")   # doctest: +SKIP
    """
    if isinstance(model, Graph):
        from irflow.executors import run as run_graph

        return run_graph(model, inputs, executor="ort", device=device, options=options, **ort_kwargs)
    import onnxruntime as ort

    from irflow.executors.onnx.device import PROVIDERS, resolve_device
    from irflow.executors.onnx.runner import ort_options

    opts = ort_options(options, **ort_kwargs)
    resolved = resolve_device(device)
    if isinstance(model, onnx.ModelProto):
        source, what = model.SerializeToString(), "the given ModelProto"
    else:
        p = Path(model)
        if not p.is_file():
            raise IrflowError(f"no such file: {p}")
        source, what = str(p), str(p)
    try:
        session = ort.InferenceSession(source, opts.session_options(), providers=PROVIDERS[resolved])
        names = [o.name for o in session.get_outputs()]
        feeds = {k: np.asarray(v) for k, v in inputs.items()}
        return dict(zip(names, session.run(names, feeds)))
    except Exception as e:  # noqa: BLE001
        raise ExecutorError(f"onnxruntime failed on {what}: {e}") from None


def load(path: str | Path | onnx.ModelProto, *, static_inputs: Mapping[str, np.ndarray] | None = None,
         fold_limit_bytes: int | None = None, strict: bool = True) -> Graph:
    """Read an ONNX model into an irflow Graph (``irflow.frontends.onnx_import.load``).

    ``fold_limit_bytes`` bounds import-time constant folding (default 1 MiB: larger values stay
    run-time ops); ``strict=False`` loads a model whose declared types disagree with its ops.

    >>> g = irf.onnx.load("model.onnx")   # doctest: +SKIP
    """
    from irflow.frontends.onnx_import import load as _load

    return _load(path, static_inputs=static_inputs, fold_limit_bytes=fold_limit_bytes, strict=strict)
