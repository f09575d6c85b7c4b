"""ONNX import: ``load(path_or_model) -> irflow.ir.Graph``.

How a model becomes IR:

1. The model is read (``onnx.load`` with its directory as the base of external data), checked
   with ``onnx.checker`` and its local functions inlined (``onnx.inliner``).
2. A pre-pass lists every node whose op irflow cannot import (no importer in
   ``onnx_import_ops.IMPORTERS`` and no function body in the ONNX schema) and raises ONE
   ``UnsupportedOpError`` naming them all, with domain, opset and node names.
3. Graph inputs become IR inputs (``dim_param`` -> a symbol, missing dims -> None),
   initializers become IR initializers under their ONNX names.
4. Each node goes through its importer, a small function that emits IR ops through ``bind``
   (inside ``with builder:``). Ops with no one-to-one IR op are decomposed there (Gemm,
   LayerNormalization, reductions whose axes are inputs, ...). Ops the table does not know
   but that the ONNX schema defines as a function (Celu, Swish, ...) are expanded into that
   function's body, which is imported node by node.
5. Values known at import time are folded: ``Constant`` outputs, ``Shape`` of a statically
   shaped tensor, and any node whose inputs are all such values (its importer runs eagerly
   on NumPy, through the same ``bind``) when its inputs and outputs fit ``fold_limit_bytes``
   (a dry run in a scratch builder gives the output types first; larger values stay run-time
   ops, see ``onnx_import_nodes``). Initializers are NOT folded (they stay weights, so
   ``irflow grad --wrt`` can name them), but their values are readable where an op needs a
   static argument (a Reshape's shape, a Slice's starts). ``Shape`` of a tensor with symbolic
   dims yields a *shape value* (a tuple of ints and symbols) that Gather/Slice/Concat/
   Unsqueeze/Squeeze/Cast propagate, so torch.onnx.export's Shape -> Gather -> Concat ->
   Reshape chains become static reshapes.
6. With ``strict=True`` (the default) every node's dtypes are checked against its ONNX
   schema's type constraints, and graph outputs and ``value_info`` against the inferred types
   (``onnx_import_types``). Any exception an importer raises that is not an ``IrflowError``
   becomes an ``IRValidationError`` naming the node.
7. IR values are renamed to their ONNX names where possible, and the graph is pruned.

>>> g = load("model.onnx")          # doctest: +SKIP
>>> irf.run(g, {"x": x})            # doctest: +SKIP
"""
from __future__ import annotations

import copy

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx
import onnx.inliner

# The families register their importers in onnx_import_base's table when imported.
from irflow.frontends import onnx_import_control, onnx_import_nn, onnx_import_ops, onnx_import_resize  # noqa: F401
from irflow.frontends import onnx_import_shape_ops, onnx_import_shape_args  # noqa: F401
from irflow.frontends import onnx_import_rnn  # noqa: F401  (LSTM, GRU, RNN)
from irflow.frontends import onnx_import_vision  # noqa: F401  (GridSample, RoiAlign, Col2Im, DeformConv)
from irflow.frontends import onnx_import_datadep  # noqa: F401  (NonZero, Unique, Compress, NonMaxSuppression)
from irflow.frontends import onnx_import_onnx_extra  # noqa: F401  (ReverseSequence, MaxUnpool, Det, TensorScatter)
# after the families above: it wraps their Reduce*/Squeeze/Unsqueeze/CumSum/CumProd importers
from irflow.frontends import onnx_import_axes  # noqa: F401,E402  (axes computed at run time)
from irflow.frontends import onnx_import_quantized  # noqa: F401  (QuantizeLinear, QLinearMatMul, ConvInteger, ...)
from irflow.frontends import onnx_import_signal  # noqa: F401  (DFT, STFT, MelWeightMatrix)
from irflow.frontends.onnx_import_base import (  # noqa: F401  (re-exported: the importer's public names)
    DEFAULT_FOLD_LIMIT_BYTES, IMPORTERS, MIN_OPSET, ONNX_TO_DTYPE, STANDARD_DOMAINS, ImportContext, NodeView,
    initializer_array, onnx_dim, to_dtype,
)
from irflow.frontends.onnx_import_types import check_declared
from irflow.frontends.onnx_import_nodes import check_supported, expand_function, has_function_body, import_nodes  # noqa: F401
from irflow.errors import DTypeError, IrflowError, IRValidationError, UnsupportedOpError
from irflow.ir.dtypes import dtype_of_array
from irflow.ir.graph import Graph, Node, Value
from irflow.ir.types import TensorType


def read_model(source: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """Read and check a model; every failure is an IrflowError naming the file."""
    if isinstance(source, onnx.ModelProto):
        model, where = source, "model"
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise IrflowError(f"no such file: {path}")
        try:
            model = onnx.load(str(path))  # external data is read relative to the model's directory
        except Exception as e:  # DecodeError, truncated files, missing external data
            raise IRValidationError(f"{path} is not a readable ONNX model: {type(e).__name__}: {_first_line(e)}") from None
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise IRValidationError(f"{where} fails the ONNX checker: {_first_line(e)}") from None
    _check_text(model.graph, where)
    for f in model.functions:
        _check_names(f.name, list(f.input) + list(f.output), f.node, f"{where}: function")
    if model.functions:
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:
            raise IRValidationError(f"{where}: its local functions cannot be inlined: {_first_line(e)}") from None
    return model


def _check_text(g: onnx.GraphProto, where: str) -> None:
    """Names that are not valid UTF-8 (protobuf hands them to Python as bytes) are an error
    naming the graph or node, before anything uses them as strings."""
    values = [v.name for v in list(g.input) + list(g.output) + list(g.value_info)] + [t.name for t in g.initializer]
    _check_names(g.name, values, g.node, f"{where}: graph")


def _check_names(owner: Any, values: list, nodes, where: str) -> None:
    if isinstance(owner, bytes):
        raise IRValidationError(f"{where} name {owner!r} is not valid UTF-8")
    for v in values:
        if isinstance(v, bytes):
            raise IRValidationError(f"{where} '{owner}': value name {v!r} is not valid UTF-8")
    for i, node in enumerate(nodes):
        fields = [node.name, node.op_type, node.domain, *node.input, *node.output, *(a.name for a in node.attribute)]
        bad = [f for f in fields if isinstance(f, bytes)]
        if bad:
            label = node.name if isinstance(node.name, str) and node.name else f"#{i} ({node.op_type!r})"
            raise IRValidationError(f"{where} '{owner}': node {label}: {bad[0]!r} is not valid UTF-8")
        for a in node.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _check_text(sub, f"{where} '{owner}', node {node.name}")


def _first_line(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text[:400]


def model_opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in STANDARD_DOMAINS:
            return o.version
    return MIN_OPSET

# -- the import loop ---------------------------------------------------------------------------------

_LEGACY_DOMAIN = "irflow.legacy_scan"


def _hide_legacy_scans(model: onnx.ModelProto) -> tuple[onnx.ModelProto, frozenset]:
    """Opset-8 Scan nodes (a batch axis the body does not see) moved to a private domain, so
    onnx's version converter leaves them alone: its Scan 8 -> 9 adapter drops the batch axis
    from the graph's declared inputs, so the model no longer takes its own feeds. The importer
    runs them per batch entry (onnx_import_control._scan8)."""
    scans = [node for node in model.graph.node if node.op_type == "Scan" and node.domain in ("", "ai.onnx")]
    if not scans:
        return model, frozenset()
    model = copy.deepcopy(model)
    names = []
    for node in model.graph.node:
        if node.op_type == "Scan" and node.domain in ("", "ai.onnx"):
            node.domain = _LEGACY_DOMAIN
            names.append(node.output[0])
    model.opset_import.append(onnx.helper.make_opsetid(_LEGACY_DOMAIN, 1))
    return model, frozenset(names)


def _restore_legacy_scans(model: onnx.ModelProto, names: frozenset) -> None:
    if not names:
        return
    for node in model.graph.node:
        if node.domain == _LEGACY_DOMAIN:
            node.domain = ""
    keep = [o for o in model.opset_import if o.domain != _LEGACY_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def load(source: str | Path | onnx.ModelProto, *, name: str | None = None,
         static_inputs: Mapping[str, np.ndarray] | None = None, fold_limit_bytes: int | None = None,
         strict: bool = True) -> Graph:
    """Import an ONNX model (path or ModelProto) as an irflow Graph.

    Standard-domain ops of opsets 13 up to the newest the installed onnx knows. Raises
    ``UnsupportedOpError`` listing every op irflow cannot import, ``IRValidationError`` for a
    file that is not a valid ONNX model.

    ``static_inputs`` binds graph inputs to values at import time: they stop being inputs and
    become constants. This specializes a model whose shape arguments (Reshape's shape,
    ReduceSum's axes, ...) are graph inputs: without it, those import as run-time ops that read
    them when the graph runs (``reshape_dynamic``, ``reduce_dynamic``, ...), whose result dims
    the types then often leave unknown.

    ``fold_limit_bytes`` bounds import-time work (default ``DEFAULT_FOLD_LIMIT_BYTES`` of
    ``irflow.frontends.onnx_import_base``, 1 MiB): a node whose known inputs or outputs exceed it
    is not folded but stays a run-time op, and so does a large ConstantOfShape, Range or EyeLike.

    ``strict=False`` skips the type checks (graph outputs and ``value_info`` against the types
    irflow infers, each node's dtypes against its ONNX schema's type constraints), loading a
    model onnxruntime would refuse.

    >>> g = load("model.onnx")                 # doctest: +SKIP
    >>> out = irf.run(g, {"x": x})             # doctest: +SKIP
    """
    model = read_model(source)
    opset = model_opset(model)
    legacy_scans: frozenset = frozenset()
    if opset < MIN_OPSET:
        if opset < 9:
            model, legacy_scans = _hide_legacy_scans(model)
        try:
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
            opset = MIN_OPSET
        except Exception as e:
            raise UnsupportedOpError(f"opset {opset} is older than {MIN_OPSET} and onnx cannot convert it: {_first_line(e)}") from None
        _restore_legacy_scans(model, legacy_scans)
    g = model.graph
    check_supported(model, opset)
    if fold_limit_bytes is not None and (not isinstance(fold_limit_bytes, (int, np.integer)) or fold_limit_bytes < 0):
        raise IrflowError(f"fold_limit_bytes must be a non-negative int, got {fold_limit_bytes!r}")
    ctx = ImportContext(name or g.name or "onnx_model", fold_limit_bytes)
    ctx.strict = bool(strict)
    ctx.legacy_scans = legacy_scans
    b = ctx.builder
    for init in g.initializer:
        arr = initializer_array(init)
        ctx.weights[init.name] = arr
        ctx.env[init.name] = b.constant(arr, name=init.name)
    for sparse in g.sparse_initializer:
        raise UnsupportedOpError(f"sparse initializer '{sparse.values.name}' is not supported")
    static_inputs = dict(static_inputs or {})
    known_inputs = {vi.name for vi in g.input}
    for key in static_inputs:
        if key not in known_inputs:
            raise IrflowError(f"static_inputs: the model has no input {key!r}")
    for vi in g.input:
        if vi.name in ctx.env:  # an initializer listed as an input too (old exporters): a weight
            continue
        if vi.name in static_inputs:
            arr = np.asarray(static_inputs[vi.name])
            want = to_dtype(vi.type.tensor_type.elem_type, f"graph input '{vi.name}'")
            if dtype_of_array(arr) != want:
                raise DTypeError(f"static_inputs: input '{vi.name}' must be {want.value}, got {arr.dtype}")
            ctx.consts[vi.name] = arr
            continue
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise UnsupportedOpError(f"graph input '{vi.name}' is not a tensor (sequences and optionals are not supported)")
        dtype = to_dtype(t.elem_type, f"graph input '{vi.name}'")
        shape = tuple(onnx_dim(d) for d in t.shape.dim) if t.HasField("shape") else None
        if shape is None:
            raise UnsupportedOpError(f"graph input '{vi.name}' has no shape (not even a rank)")
        ctx.env[vi.name] = b.input(vi.name, dtype, shape)
        ctx.onnx_names[vi.name] = vi.name
    import_nodes(ctx, list(g.node), opset)
    if ctx.strict:
        check_declared(ctx, g, opset)
    outputs = []
    for vo in g.output:
        t = ctx.tensor(vo.name)
        outputs.append((vo.name, t))
    for onnx_name, t in outputs:
        b.outputs.append(Value(name=t.name, type=t.type))
    graph = b.build()
    graph = _rename_to_onnx_names(graph, ctx, [n for n, _ in outputs])
    from irflow.passes.prune import prune

    graph = prune(graph)
    return graph.model_copy(update={"opset_version": opset, "outputs": _declared_output_types(graph, g)})


def _declared_output_types(graph: Graph, onnx_graph: onnx.GraphProto) -> tuple[Value, ...]:
    """Graph outputs with dims the IR could not infer (None) taken from the ONNX declaration,
    when that declaration is consistent with what the IR inferred."""
    declared = {}
    for vo in onnx_graph.output:
        t = vo.type.tensor_type
        if vo.type.HasField("tensor_type") and t.HasField("shape"):
            declared[vo.name] = tuple(onnx_dim(d) for d in t.shape.dim)
    outputs = []
    for v in graph.outputs:
        dims = declared.get(v.name)
        if dims is not None and len(dims) == v.type.rank and all(a is None or b is None or a == b for a, b in zip(v.type.shape, dims)):
            merged = tuple(a if a is not None else b for a, b in zip(v.type.shape, dims))
            v = Value(name=v.name, type=TensorType(dtype=v.type.dtype, shape=merged))
        outputs.append(v)
    return tuple(outputs)



def _rename_to_onnx_names(graph: Graph, ctx: ImportContext, output_names: list[str]) -> Graph:
    """Give IR values their ONNX names where that keeps names unique; graph outputs always."""
    produced = {v.name for n in graph.nodes for v in n.outputs}
    fixed = set(graph.input_names) | set(graph.initializers)
    mapping: dict[str, str] = {}
    taken = set(fixed) | {n.name for n in graph.nodes}
    targets: set[str] = set()
    for ir, onnx_name in ctx.onnx_names.items():
        if ir in produced and ir != onnx_name and onnx_name not in fixed and onnx_name not in targets \
                and onnx_name not in produced:
            mapping[ir] = onnx_name
            targets.add(onnx_name)
    # names still held by unrenamed values must not be reused
    final_names = {mapping.get(n, n) for n in produced} | fixed
    if len(final_names) != len(produced | fixed):
        mapping = {}

    def r(name: str) -> str:
        return mapping.get(name, name)

    nodes = [
        Node(op=n.op, inputs=tuple(r(i) if i else "" for i in n.inputs),
             outputs=tuple(Value(name=r(v.name), type=v.type) for v in n.outputs), attrs=n.attrs, name=n.name)
        for n in graph.nodes
    ]
    types = {v.name: v.type for n in nodes for v in n.outputs}
    types.update({v.name: v.type for v in graph.inputs})
    types.update({k: TensorType(dtype=dtype_of_array(a), shape=a.shape) for k, a in graph.initializers.items()})
    outputs = []
    used_names = set(types) | {n.name for n in nodes}
    for out_value, onnx_name in zip(graph.outputs, output_names):
        cur = r(out_value.name)
        if cur != onnx_name:  # an input, an initializer or a value used twice: add an identity
            name = onnx_name if onnx_name not in used_names else f"{onnx_name}_out"
            used_names.add(name)
            nodes.append(Node(op="identity", inputs=(cur,), outputs=(Value(name=name, type=types[cur]),), attrs={}, name=name))
            types[name] = types[cur]
            cur = name
        outputs.append(Value(name=cur, type=types[cur]))
    return Graph(name=graph.name, inputs=graph.inputs, outputs=tuple(outputs), nodes=tuple(nodes),
                 initializers=graph.initializers, opset_version=graph.opset_version)


__all__ = ["load", "read_model", "check_supported", "NodeView", "ImportContext", "to_dtype", "ONNX_TO_DTYPE"]
