"""Export of a traced function to an ONNX file: what ``Function.export_onnx`` and
``irf.onnx.export`` share.

It sits with the frontends (``irflow.onnx``, the public namespace, is a layer above) and takes
an object that already traces (an ``irf.function`` Function or its bound method), so it does
not import ``trace.py``, which imports it: ``irf.onnx.export`` wraps a plain callable with
``irf.function`` first.

>>> import irflow as irf, numpy as np
>>> f = irf.function(lambda x: irf.relu(x) * 2.0)
>>> model = export_traced(f, "f.onnx", irf.TensorSpec((None, 3), "float32"))
>>> [o.name for o in model.graph.input]
['x']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx

from irflow.atomic import check_output_path
from irflow.errors import ExecutorError, IrflowError
from irflow.executors.onnx.export import save_model
from irflow.executors.onnx.export import to_model as _to_model
from irflow.ir.graph import Graph

# the model metadata key of a training export's Variable wiring
STATE_METADATA_KEY = "irflow.variables"


def check_path(path: str | Path) -> None:
    """An ExecutorError if ``path`` cannot be written (checked before tracing and lowering)."""
    try:
        check_output_path(path)
    except IrflowError as e:
        raise ExecutorError(f"cannot save ONNX model: {e}") from None


def _name(x: Any) -> str:
    return x if isinstance(x, str) else x.name


def traced_graph(fn: Any, obj: Any, *specs: Any, training: bool = False) -> tuple[Graph, list[dict]]:
    """The graph of ``fn`` (anything with ``get_concrete_function``: an ``irf.function``) for
    ``specs`` and its Variables' wiring; ``obj`` is what the user passed (an ``nn.Module`` is
    traced in inference mode unless ``training``). See ``irflow.onnx.graph_of``.

    >>> import irflow as irf
    >>> g, wiring = traced_graph(irf.function(lambda x: x + 1.0), None, irf.TensorSpec((2,), "float32"))
    >>> [n.op for n in g.nodes], wiring
    (['add'], [])
    """
    modes = None
    if not training and callable(getattr(obj, "eval", None)) and hasattr(obj, "submodules"):
        # An nn.Module exports its inference mode (Dropout off, BatchNorm on running statistics),
        # as torch.onnx.export does by default; the modes are restored afterwards.
        modes = [(m, m.training) for m in [obj, *obj.submodules]]
        obj.eval()
    try:
        cf = fn.get_concrete_function(*specs)
    finally:
        for m, mode in modes or ():
            m.training = mode
    if not training:
        return cf.bound_graph(), []
    var_outputs = {id(v): _name(n) for n, v in cf.variable_outputs}
    wiring = [
        {"variable": getattr(v, "name", None) or _name(n), "input": _name(n), "output": var_outputs.get(id(v))}
        for n, v in cf.variable_inputs
    ]
    return cf.graph, wiring


def write_model(graph: Graph, wiring: list[dict], path: str | Path, *, opset: int | None = None,
                external_data: bool = False) -> onnx.ModelProto:
    """Lower ``graph`` to ONNX, record ``wiring`` in the metadata, write it to ``path``; return
    the model (as lowered: saving with external data rewrites a copy).

    >>> import irflow as irf
    >>> g, _ = traced_graph(irf.function(lambda x: x * 3.0), None, irf.TensorSpec((2,), "float32"))
    >>> write_model(g, [], "times3.onnx").graph.node[0].op_type
    'Mul'
    """
    model = _to_model(graph, opset=opset)
    if wiring:
        onnx.helper.set_model_props(model, {STATE_METADATA_KEY: json.dumps(wiring)})
    written = onnx.ModelProto()
    written.CopyFrom(model)
    save_model(written, path, external_data=external_data)
    return model


def export_traced(fn: Any, path: str | Path, *specs: Any, training: bool = False, obj: Any = None,
                  opset: int | None = None, external_data: bool = False) -> onnx.ModelProto:
    """Trace ``fn`` (an ``irf.function``) for ``specs`` and write it as ONNX to ``path``
    (``irf.onnx.export`` for an object that already traces; see the module example)."""
    check_path(path)  # before tracing and lowering
    graph, wiring = traced_graph(fn, fn if obj is None else obj, *specs, training=training)
    return write_model(graph, wiring, path, opset=opset, external_data=external_data)


__all__ = ["STATE_METADATA_KEY", "check_path", "traced_graph", "write_model", "export_traced"]
