"""Holding an export to ONNX's own view of it: the checker and shape inference.

``shape_inference_mismatches(graph)`` exports ``graph`` *without* irflow's value_info, lets
ONNX shape inference (strict mode, data propagation) compute every type on its own, and
lists where its answer contradicts irflow's types. What counts as a contradiction:

- a different element type, or a different rank;
- two known sizes that differ;
- a symbol irflow took from the graph inputs (``"batch"``) against a different such symbol.

Less precise answers on either side are not contradictions: ONNX may know ``64`` where irflow
has ``None``, or report a fresh ``unk__0`` where irflow knows ``"batch"``.
"""
from __future__ import annotations

import onnx

from irflow.errors import ExecutorError
from irflow.executors.onnx.export import IRFLOW_DTYPE, to_model
from irflow.ir.graph import Graph


def _onnx_shape(t: onnx.TypeProto) -> tuple | None:
    tt = t.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def inferred_types(graph: Graph, *, opset: int | None = None) -> dict[str, tuple]:
    """ONNX shape inference's ``(elem_type, shape or None)`` for every value of ``graph``'s export."""
    model = to_model(graph, opset=opset, value_infos=False)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:  # onnx raises InferenceError (and others) with the node in the text
        raise ExecutorError(f"ONNX shape inference rejected the export of graph {graph.name!r}: {e}") from None
    g = inferred.graph
    out = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.type.HasField("tensor_type"):
            out[vi.name] = (vi.type.tensor_type.elem_type, _onnx_shape(vi.type))
    return out


def shape_inference_mismatches(graph: Graph, *, opset: int | None = None) -> list[str]:
    """Where ONNX shape inference contradicts irflow's types on ``graph``; [] when they agree.

    >>> assert shape_inference_mismatches(g) == []   # doctest: +SKIP
    """
    symbols = {d for v in graph.inputs for d in v.type.shape if isinstance(d, str)}
    inferred = inferred_types(graph, opset=opset)
    problems = []
    for node in graph.nodes:
        for v in node.outputs:
            got = inferred.get(v.name)
            if got is None:
                continue  # ONNX inferred nothing for this value: nothing to contradict
            elem, shape = got
            where = f"value %{v.name} (node {node.name}, op {node.op})"
            if elem != 0 and IRFLOW_DTYPE.get(elem) is not v.type.dtype:
                name = onnx.TensorProto.DataType.Name(elem)
                problems.append(f"{where}: irflow says {v.type.dtype.value}, ONNX infers {name}")
                continue
            if shape is None:
                continue
            if len(shape) != v.type.rank:
                problems.append(f"{where}: irflow says shape {v.type.shape}, ONNX infers {shape}")
                continue
            for mine, theirs in zip(v.type.shape, shape):
                both_ints = isinstance(mine, int) and isinstance(theirs, int)
                both_symbols = isinstance(mine, str) and isinstance(theirs, str) and theirs in symbols
                if (both_ints or both_symbols) and mine != theirs:
                    problems.append(f"{where}: irflow says shape {v.type.shape}, ONNX infers {shape}")
                    break
    return problems


def check_export(graph: Graph, *, opset: int | None = None) -> onnx.ModelProto:
    """Export ``graph``, run ``onnx.checker.check_model(full_check=True)`` and the shape
    inference comparison; raise ExecutorError listing any problem; return the model.

    >>> model = check_export(g)   # doctest: +SKIP
    """
    model = to_model(graph, opset=opset)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise ExecutorError(f"the ONNX export of graph {graph.name!r} fails onnx.checker: {e}") from None
    problems = shape_inference_mismatches(graph, opset=opset)
    if problems:
        raise ExecutorError(f"ONNX shape inference disagrees with irflow on graph {graph.name!r}:\n  " + "\n  ".join(problems))
    return model
