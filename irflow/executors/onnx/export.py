"""Lowering an IR Graph to an ONNX ModelProto (standard domain only), and saving it.

``to_model`` walks the nodes once and asks each op's lowering (``LOWERINGS``) to emit ONNX
nodes through a ``LoweringContext``. What the export keeps from the IR:

- dtypes, one to one (``ONNX_DTYPE``); nothing is cast on the way out;
- symbolic dims become ``dim_param`` (the same symbol, the same name), unknown dims (None)
  become dims with neither value nor param;
- initializers stay initializers, under their IR names;
- every IR value that is not a graph input or output gets a ``value_info`` entry from its IR
  type, so tools (and ONNX shape inference in strict mode, run by the full checker) see the
  same types irflow computed;
- node names are stable and readable: an IR node ``matmul_3`` lowered to one ONNX node keeps
  the name ``matmul_3``; a lowering that emits several gives ``matmul_3/Shape``,
  ``matmul_3/Expand``, ... and helper values ``matmul_3/shape``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper, helper, numpy_helper

from irflow.errors import ExecutorError, UnsupportedOpError
from irflow.ir.graph import Graph
from irflow._version import __version__
from irflow.executors.onnx.context import (  # noqa: F401  (re-exported: export's names before the split)
    DEFAULT_OPSET, DTYPE_OPSET, IRFLOW_DTYPE, MAX_OPSET, MIN_OPSET, ONNX_DTYPE, LoweringContext, check_opset, tensor_type_proto,
    value_info,
)
from irflow.executors.onnx.lowering import LOWERINGS, NEEDS_OPSET
from irflow.executors.onnx.lowering.rnn_graph import tidy


def least_opset(graph: Graph, outer: dict | None = None) -> int:
    """The least opset that lowers every node of ``graph`` and its nested graphs (0 when any
    supported opset does: most graphs). A float <-> int bit_cast needs 26 (ONNX BitCast), a
    storage-only dtype the opset that introduced it (``DTYPE_OPSET``)."""
    types = {**(outer or {}), **graph.value_types()}
    need = max((DTYPE_OPSET.get(t.dtype, 0) for t in types.values()), default=0)
    for node in graph.nodes:
        rule = NEEDS_OPSET.get(node.op)
        if rule is not None:
            need = max(need, rule(node, types))
        for value in node.attrs.values():
            if isinstance(value, Graph):
                need = max(need, least_opset(value, types))
    return need


def _check_dtypes_fit(graph: Graph, opset: int) -> None:
    """ExecutorError when the graph holds a dtype that ``opset`` does not have yet."""
    late = {t.dtype for t in graph.value_types().values() if DTYPE_OPSET.get(t.dtype, 0) > opset}
    if late:
        shown = ", ".join(f"{d.value} (opset {DTYPE_OPSET[d]})" for d in sorted(late, key=lambda d: d.value))
        raise ExecutorError(f"graph {graph.name!r} holds {shown}, which ONNX opset {opset} does not have; "
                            "export with a newer opset or leave the opset out")


def to_model(graph: Graph, *, opset: int | None = None, value_infos: bool = True) -> onnx.ModelProto:
    """Lower ``graph`` to an ONNX model (standard domain, ``opset`` default ``DEFAULT_OPSET``).

    ``value_infos=False`` leaves out the types of intermediate values (ONNX shape inference
    then computes them on its own; the tests use that to compare its answer with irflow's).

    >>> model = to_model(g); onnx.checker.check_model(model, full_check=True)   # doctest: +SKIP
    """

    need = least_opset(graph)
    if opset is not None:
        _check_dtypes_fit(graph, check_opset(opset))
    opset = check_opset(max(DEFAULT_OPSET, need) if opset is None else opset)
    missing = sorted({n.op for n in graph.nodes if n.op not in LOWERINGS})
    if missing:
        raise UnsupportedOpError(f"graph {graph.name!r}: no ONNX lowering for op(s) {', '.join(missing)}")
    ctx = LoweringContext(graph, opset)
    for node in graph.nodes:
        ctx.begin(node)
        try:
            LOWERINGS[node.op](ctx, node, list(node.inputs), [v.name for v in node.outputs])
        except (UnsupportedOpError, ExecutorError):
            raise
        except Exception as e:  # a lowering's own bug: say which node met it
            raise ExecutorError(f"lowering node {node.name} ({node.op}) to ONNX opset {opset} failed: {type(e).__name__}: {e}") from e
        ctx.finish_node()
    ctx.node = None
    inits = [numpy_helper.from_array(np.asarray(a), name) for name, a in graph.initializers.items()] + ctx.initializers
    boundary = set(graph.input_names) | set(graph.output_names) | set(graph.initializers)
    infos = []
    if value_infos:
        infos = [value_info(v) for node in graph.nodes for v in node.outputs if v.name not in boundary]
    if ctx.rnn_fused:  # a scan written as ONNX LSTM/GRU/RNN left its input projection unused
        ctx.nodes = tidy(ctx.nodes, list(graph.output_names), inits)
        made = {o for n in ctx.nodes for o in n.output}
        infos = [i for i in infos if i.name in made]
    onnx_graph = helper.make_graph(
        ctx.nodes,
        graph.name,
        [value_info(v) for v in graph.inputs],
        [value_info(v) for v in graph.outputs],
        initializer=inits,
        value_info=infos,
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="irflow")
    model.producer_version = __version__
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model


def save_model(
    model: onnx.ModelProto,
    path: str | Path,
    *,
    external_data: bool = False,
    size_threshold: int = 1024,
    location: str | None = None,
) -> Path:
    """Write ``model`` to ``path``. With ``external_data=True`` every initializer of at least
    ``size_threshold`` bytes goes to one side file (``<name>.onnx.data`` next to the model,
    or ``location``, a plain file name in the model's directory), as models over 2 GB must;
    the .onnx then holds only the graph. ``model`` itself is left as it was.

    Both files are written atomically (``irflow.atomic``): each goes to a temporary file beside
    its target and is fsync'ed; then the data file is renamed into place first and the model
    last, and a failed rename puts the old data file back. A failure (disk full, a file-size
    limit) leaves an existing model and data file byte-identical, and no temporary behind.

    >>> save_model(model, "m.onnx", external_data=True)   # doctest: +SKIP
    """
    from irflow.atomic import atomic_write_many, check_output_path, write_bytes
    from irflow.errors import IrflowError

    path = Path(path)
    try:
        check_output_path(path)
    except IrflowError as e:
        raise ExecutorError(f"cannot save ONNX model: {e}") from None
    if not external_data:
        if model.ByteSize() >= 2**31:
            raise ExecutorError(f"model for {path} is {model.ByteSize() / 2**30:.1f} GiB, over protobuf's 2 GiB limit; save it with external_data=True")
        write_bytes(path, model.SerializeToString())
        return path
    location = location or path.name + ".data"
    if Path(location).name != location or location in (".", ".."):
        raise ExecutorError(f"external data location {location!r} must be a file name in the model's directory, not a path")
    side = path.parent / location
    if side.resolve() == path.resolve():
        raise ExecutorError(f"external data location {location!r} is the model file itself")
    try:
        check_output_path(side)
    except IrflowError as e:
        raise ExecutorError(f"cannot save the ONNX model's external data: {e}") from None
    tensors = [t for t in _initializer_tensors(model.graph) if t.HasField("raw_data") and len(t.raw_data) >= size_threshold]
    kept: list[tuple[onnx.TensorProto, bytes]] = []
    try:
        with atomic_write_many([side, path]) as (data_file, model_file):
            offset = 0
            for tensor in tensors:
                raw = tensor.raw_data
                # Large tensors start on a page boundary, as onnx's own writer does, so
                # runtimes can map them in place.
                if len(raw) >= 2**20 and offset % 4096:
                    data_file.write(b"\0" * (4096 - offset % 4096))
                    offset += 4096 - offset % 4096
                data_file.write(raw)
                kept.append((tensor, raw))
                external_data_helper.set_external_data(tensor, location, offset, len(raw))
                tensor.ClearField("raw_data")
                offset += len(raw)
            model_file.write(model.SerializeToString())
    finally:
        for tensor, raw in kept:  # give the caller's proto its data back
            del tensor.external_data[:]
            tensor.ClearField("data_location")
            tensor.raw_data = raw
    return path


def _initializer_tensors(graph: onnx.GraphProto):
    """Initializers of ``graph`` and of every subgraph (If/Loop/Scan bodies)."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _initializer_tensors(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _initializer_tensors(g)
