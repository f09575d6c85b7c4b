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
   on NumPy, through the same ``bind``). Initializers are NOT folded (they stay weights, so
   ``irflow grad --wrt`` can name them), but their values are readable where an op needs a
   static argument (a Reshape's shape, a Slice's starts). ``Shape`` of a tensor with symbolic
   dims yields a *shape value* (a tuple of ints and symbols) that Gather/Slice/Concat/
   Unsqueeze/Squeeze/Cast propagate, so torch.onnx.export's Shape -> Gather -> Concat ->
   Reshape chains become static reshapes.
6. IR values are renamed to their ONNX names where possible, and the graph is pruned.

>>> g = load("model.onnx")          # doctest: +SKIP
>>> irf.run(g, {"x": x})            # doctest: +SKIP
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import onnx
import onnx.inliner
from onnx import numpy_helper

from irflow.errors import DTypeError, IrflowError, IRValidationError, ShapeError, UnsupportedOpError
from irflow.ir.dtypes import DType, dtype_of_array
from irflow.ir.graph import Graph, Node, Value
from irflow.ir.types import TensorType
from irflow.ops.builder import GraphBuilder, SymbolicTensor
from irflow.ops.dispatch import BUILDER_STACK

ONNX_TO_DTYPE: dict[int, DType] = {
    onnx.TensorProto.FLOAT16: DType.float16,
    onnx.TensorProto.BFLOAT16: DType.bfloat16,
    onnx.TensorProto.FLOAT: DType.float32,
    onnx.TensorProto.DOUBLE: DType.float64,
    onnx.TensorProto.INT8: DType.int8,
    onnx.TensorProto.INT16: DType.int16,
    onnx.TensorProto.INT32: DType.int32,
    onnx.TensorProto.INT64: DType.int64,
    onnx.TensorProto.UINT8: DType.uint8,
    onnx.TensorProto.BOOL: DType.bool,
}
STANDARD_DOMAINS = ("", "ai.onnx")
MIN_OPSET = 13
FOLD_LIMIT = 1 << 16  # fold a node at import time only when its constant inputs are this small


def to_dtype(elem_type: int, where: str) -> DType:
    """The IR dtype of an ONNX element type, or UnsupportedOpError naming where it was met."""
    try:
        return ONNX_TO_DTYPE[elem_type]
    except KeyError:
        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() else str(elem_type)
        raise UnsupportedOpError(f"{where}: element type {name} is not an irflow dtype "
                                 f"(irflow has {', '.join(d.value for d in DType)})") from None


# -- reading the model ----------------------------------------------------------------------------

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
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    return model


def _first_line(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text[:400]


def model_opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in STANDARD_DOMAINS:
            return o.version
    return MIN_OPSET


# -- node views: what an importer sees ---------------------------------------------------------------

class NodeView:
    """One ONNX node as an importer sees it: IR inputs, attributes, static input values."""

    def __init__(self, ctx: "ImportContext", node: onnx.NodeProto, inputs: list, opset: int):
        self.ctx = ctx
        self.proto = node
        self.op_type = node.op_type
        self.name = node.name or (node.output[0] if node.output else node.op_type)
        self.inputs = inputs  # SymbolicTensor / eager Tensor, or None for an omitted input
        self.input_names = list(node.input)
        self.output_names = list(node.output)
        self.opset = opset
        self.attrs = {a.name: _attr_value(a) for a in node.attribute}

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def input(self, i: int) -> Any:
        """The i-th input tensor, None when omitted."""
        return self.inputs[i] if i < len(self.inputs) else None

    def has_input(self, i: int) -> bool:
        return i < len(self.input_names) and self.input_names[i] != ""

    def const(self, i: int, what: str = "") -> np.ndarray | None:
        """The value of input ``i`` if known at import time (None when the input is omitted)."""
        if not self.has_input(i):
            return None
        value = self.ctx.known_value(self.input_names[i])
        if value is None:
            label = what or f"input {i}"
            raise UnsupportedOpError(
                f"{self.where()}: {label} ('{self.input_names[i]}') must be known at import time "
                "(a constant, an initializer or a shape computation); it is computed at run time"
            )
        return value

    def shape_value(self, i: int) -> tuple | None:
        """Input ``i`` as a shape value: a tuple of ints and symbols, or None if unknown."""
        if not self.has_input(i):
            return None
        return self.ctx.shape_value(self.input_names[i])

    def shape_arg(self, i: int, what: str) -> tuple:
        """Input ``i`` as a shape value, or UnsupportedOpError when it is only known at run time."""
        value = self.shape_value(i)
        if value is None:
            raise UnsupportedOpError(
                f"{self.where()}: {what} ('{self.input_names[i]}') must be known at import time "
                "(a constant, an initializer or a shape computation); it is computed at run time"
            )
        return value

    def type(self, i: int):
        t = self.inputs[i]
        return t.type if hasattr(t, "type") else None

    def where(self) -> str:
        return f"node '{self.name}' ({self.op_type}, opset {self.opset})"

    def unsupported(self, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.where()}: {why}")


def _attr_value(a: onnx.AttributeProto) -> Any:
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8", "replace") for x in v]
    return v


# -- the import context ------------------------------------------------------------------------------

class ImportContext:
    """The state of one import: the builder, ONNX name -> IR tensor, and import-time values."""

    def __init__(self, name: str):
        self.builder = GraphBuilder(name)
        self.env: dict[str, Any] = {}          # onnx name -> SymbolicTensor (materialized values)
        self.consts: dict[str, np.ndarray] = {}  # foldable values known at import time
        self.weights: dict[str, np.ndarray] = {}  # initializers: known, but kept as graph values
        self.shapes: dict[str, tuple] = {}       # shape values with symbolic dims
        self.onnx_names: dict[str, str] = {}     # IR value name -> the ONNX name it stands for

    # values
    def known_value(self, name: str) -> np.ndarray | None:
        if name in self.consts:
            return self.consts[name]
        if name in self.weights:
            return self.weights[name]
        return None

    def shape_value(self, name: str) -> tuple | None:
        if name in self.shapes:
            return self.shapes[name]
        v = self.known_value(name)
        if v is not None and v.dtype.kind in "iu" and v.ndim <= 1:
            return tuple(int(x) for x in np.atleast_1d(v))
        return None

    def tensor(self, name: str) -> Any:
        """The IR tensor of ONNX value ``name``, making a constant of a folded value on first use."""
        if name == "":
            return None
        t = self.env.get(name)
        if t is not None:
            return t
        if name in self.consts:
            t = self.builder.constant(self.consts[name], name=_ir_name(name))
            self.env[name] = t
            return t
        raise IRValidationError(f"value '{name}' is used before it is defined")

    def define(self, name: str, value: Any) -> None:
        """Bind ONNX value ``name`` to an importer's result (IR tensor, eager Tensor or array)."""
        if name == "":
            return
        if isinstance(value, np.ndarray):
            self.consts[name] = value
        elif hasattr(value, "numpy") and not isinstance(value, SymbolicTensor):
            self.consts[name] = np.asarray(value.numpy())
        elif isinstance(value, SymbolicTensor):
            self.env[name] = value
            self.onnx_names.setdefault(value.name, name)
        else:
            raise IrflowError(f"importer produced a {type(value).__name__} for '{name}'")


def _ir_name(onnx_name: str) -> str:
    return onnx_name if onnx_name else "value"


# -- the import loop ---------------------------------------------------------------------------------

def load(source: str | Path | onnx.ModelProto, *, name: str | None = None,
         static_inputs: Mapping[str, np.ndarray] | None = None) -> Graph:
    """Import an ONNX model (path or ModelProto) as an irflow Graph.

    Standard-domain ops of opsets 13 up to the newest the installed onnx knows. Raises
    ``UnsupportedOpError`` listing every op irflow cannot import, ``IRValidationError`` for a
    file that is not a valid ONNX model.

    ``static_inputs`` binds graph inputs to values at import time: they stop being inputs and
    become constants. This specializes a model whose shape arguments (Reshape's shape,
    ReduceSum's axes, ...) are graph inputs, which the IR needs as attributes.

    >>> g = load("model.onnx")                 # doctest: +SKIP
    >>> out = irf.run(g, {"x": x})             # doctest: +SKIP
    """
    from irflow.frontends.onnx_import_ops import IMPORTERS, SHAPE_IMPORTERS  # noqa: F401  (fills the table)

    model = read_model(source)
    opset = model_opset(model)
    if opset < MIN_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
            opset = MIN_OPSET
        except Exception as e:
            raise UnsupportedOpError(f"opset {opset} is older than {MIN_OPSET} and onnx cannot convert it: {_first_line(e)}") from None
    g = model.graph
    check_supported(model, opset)
    ctx = ImportContext(name or g.name or "onnx_model")
    b = ctx.builder
    for init in g.initializer:
        arr = _initializer_array(init)
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
        shape = tuple(_dim(d) for d in t.shape.dim) if t.HasField("shape") else None
        if shape is None:
            raise UnsupportedOpError(f"graph input '{vi.name}' has no shape (not even a rank)")
        ctx.env[vi.name] = b.input(vi.name, dtype, shape)
        ctx.onnx_names[vi.name] = vi.name
    import_nodes(ctx, list(g.node), opset)
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
            declared[vo.name] = tuple(_dim(d) for d in t.shape.dim)
    outputs = []
    for v in graph.outputs:
        dims = declared.get(v.name)
        if dims is not None and len(dims) == v.type.rank and all(a is None or b is None or a == b for a, b in zip(v.type.shape, dims)):
            merged = tuple(a if a is not None else b for a, b in zip(v.type.shape, dims))
            v = Value(name=v.name, type=TensorType(dtype=v.type.dtype, shape=merged))
        outputs.append(v)
    return tuple(outputs)


def _initializer_array(init: onnx.TensorProto) -> np.ndarray:
    to_dtype(init.data_type, f"initializer '{init.name}'")
    arr = numpy_helper.to_array(init)
    return np.ascontiguousarray(arr).reshape(arr.shape)  # ascontiguousarray would make 0-d arrays 1-d


def _dim(d: onnx.TensorShapeProto.Dimension) -> Any:
    if d.HasField("dim_value"):
        return int(d.dim_value)
    if d.HasField("dim_param") and d.dim_param:
        return d.dim_param
    return None


def check_supported(model: onnx.ModelProto, opset: int) -> None:
    """Raise one UnsupportedOpError listing every node irflow cannot import."""
    from irflow.frontends.onnx_import_ops import IMPORTERS

    bad: dict[tuple[str, str, int], list[str]] = {}
    domains = {o.domain: o.version for o in model.opset_import}

    def visit(nodes, version_of, where=""):
        for node in nodes:
            domain = node.domain or ""
            version = version_of(domain)
            label = where + (node.name or node.output[0])
            if domain in STANDARD_DOMAINS and node.op_type in IMPORTERS:
                continue
            if domain in STANDARD_DOMAINS and has_function_body(node.op_type, version):
                body = _static_function_body(node.op_type, version)
                if body is not None:  # look inside: an unsupported op there is reported here too
                    inner = next((o.version for o in body.opset_import if o.domain in STANDARD_DOMAINS), version)
                    visit(body.node, lambda d, v=inner: v, f"{label}/{node.op_type}/")
                continue
            bad.setdefault((domain or "ai.onnx", node.op_type, version), []).append(label)

    visit(model.graph.node, lambda d: domains.get(d, opset))
    if bad:
        parts = [f"{op} (domain {dom}, opset {ver}; node{'s' if len(names) > 1 else ''} {', '.join(names[:5])}"
                 f"{' ...' if len(names) > 5 else ''})" for (dom, op, ver), names in sorted(bad.items())]
        raise UnsupportedOpError(f"{len(bad)} unsupported op(s) in the model: " + "; ".join(parts))


def import_nodes(ctx: ImportContext, nodes: Sequence[onnx.NodeProto], opset: int) -> None:
    from irflow.frontends.onnx_import_ops import IMPORTERS, NOT_FOLDABLE, SHAPE_IMPORTERS

    for node in nodes:
        op = node.op_type
        if op == "If" and node.input[0] in ctx.consts and _inline_taken_branch(ctx, node, opset):
            continue
        if op in SHAPE_IMPORTERS:  # ops answered from types and shape values alone (Shape, Size)
            if SHAPE_IMPORTERS[op](ctx, node, opset):
                continue
        fn = IMPORTERS.get(op)
        if fn is None:
            expand_function(ctx, node, opset)
            continue
        names = [n for n in node.input if n]
        if op not in NOT_FOLDABLE and all(n in ctx.consts for n in names) \
                and sum(ctx.consts[n].size for n in names) <= FOLD_LIMIT and _fold(ctx, node, fn, opset, strict=not names):
            continue
        view = NodeView(ctx, node, [ctx.tensor(n) for n in node.input], opset)
        with ctx.builder:
            outs = _call(fn, view)
        _define_outputs(ctx, node, outs, view)
        _propagate_shape_values(ctx, node, opset)


def _inline_taken_branch(ctx: ImportContext, node: onnx.NodeProto, opset: int) -> bool:
    """An If whose condition is known at import time is its taken branch, imported in place
    (exporters leave such Ifs behind, e.g. on a tensor's rank; the other branch may not even
    be valid for these shapes)."""
    cond = np.asarray(ctx.consts[node.input[0]])
    if cond.size != 1:
        return False
    name = "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"
    branch = next((a.g for a in node.attribute if a.name == name), None)
    if branch is None or branch.initializer or len(branch.output) != len(node.output):
        return False
    import_nodes(ctx, list(branch.node), opset)
    for inner, outer in zip(branch.output, node.output):
        if not outer:
            continue
        if inner.name in ctx.consts and inner.name not in ctx.env:
            ctx.consts[outer] = ctx.consts[inner.name]
        else:
            t = ctx.tensor(inner.name)
            ctx.define(outer, t)
            ctx.onnx_names[t.name] = outer  # the If's output is the name the graph knows
        if inner.name in ctx.shapes:
            ctx.shapes[outer] = ctx.shapes[inner.name]
    return True


def _call(fn: Callable, view: NodeView) -> Any:
    try:
        return fn(view)
    except (ShapeError, DTypeError) as e:
        raise type(e)(f"{view.where()}: {e}") from None
    except UnsupportedOpError:
        raise
    except IrflowError as e:
        raise type(e)(f"{view.where()}: {e}") from None


def _define_outputs(ctx: ImportContext, node: onnx.NodeProto, outs: Any, view: NodeView) -> None:
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    for name, value in zip(node.output, outs):
        if value is not None:
            ctx.define(name, value)
    missing = [n for n, v in zip(node.output, list(outs) + [None] * len(node.output)) if n and v is None]
    if missing:
        raise view.unsupported(f"output(s) {', '.join(missing)} are not supported")


def _fold(ctx: ImportContext, node: onnx.NodeProto, fn: Callable, opset: int, strict: bool = False) -> bool:
    """Run the importer eagerly on import-time values; False (nothing defined) if that fails."""
    from irflow.frontends.eager import tensor

    saved = BUILDER_STACK[:]
    BUILDER_STACK.clear()
    try:
        view = NodeView(ctx, node, [tensor(ctx.consts[n]) if n else None for n in node.input], opset)
        outs = fn(view)
        if not isinstance(outs, (tuple, list)):
            outs = (outs,)
        values = [np.asarray(o.numpy()) if hasattr(o, "numpy") else (None if o is None else np.asarray(o)) for o in outs]
    except UnsupportedOpError:
        raise
    except IrflowError:
        if strict:
            raise
        return False
    finally:
        BUILDER_STACK[:] = saved
    for name, v in zip(node.output, values):
        if name and v is not None:
            dtype_of_array(v)
            ctx.consts[name] = v
    _propagate_shape_values(ctx, node, opset)
    return True


def _propagate_shape_values(ctx: ImportContext, node: onnx.NodeProto, opset: int) -> None:
    from irflow.frontends.onnx_import_shapes import propagate

    propagate(ctx, node, opset)


# -- function expansion ------------------------------------------------------------------------------

def _schema(op_type: str, version: int):
    try:
        return onnx.defs.get_schema(op_type, version, "")
    except Exception:
        return None


def has_function_body(op_type: str, version: int) -> bool:
    s = _schema(op_type, version)
    return bool(s is not None and (s.has_function or s.has_context_dependent_function))


def _static_function_body(op_type: str, version: int) -> onnx.FunctionProto | None:
    """The schema's function body when it does not depend on the node (else None)."""
    schema = _schema(op_type, version)
    if schema is None or not schema.has_function:
        return None
    versions = [v for v in schema.function_opset_versions if v <= version] or list(schema.function_opset_versions)
    fn = onnx.FunctionProto()
    fn.ParseFromString(schema.get_function_with_opset_version(max(versions)))
    return fn


def expand_function(ctx: ImportContext, node: onnx.NodeProto, opset: int) -> None:
    """Import ``node`` as the body of the function the ONNX schema defines for its op."""
    schema = _schema(node.op_type, opset)
    where = f"node '{node.name or node.output[0]}' ({node.op_type}, opset {opset})"
    if schema is None or not (schema.has_function or schema.has_context_dependent_function):
        raise UnsupportedOpError(f"{where}: no importer and no function body in the ONNX schema")
    fn = onnx.FunctionProto()
    if schema.has_function:
        versions = [v for v in schema.function_opset_versions if v <= opset] or list(schema.function_opset_versions)
        fn.ParseFromString(schema.get_function_with_opset_version(max(versions)))
    else:
        types = []
        for name in node.input:
            t = ctx.tensor(name) if name else None
            if t is None:
                types.append(onnx.TypeProto().SerializeToString())
                continue
            from irflow.executors.onnx.export import ONNX_DTYPE

            shape = [d if isinstance(d, int) else None for d in t.type.shape]
            types.append(onnx.helper.make_tensor_type_proto(ONNX_DTYPE[t.type.dtype], shape).SerializeToString())
        versions = [v for v in schema.context_dependent_function_opset_versions if v <= opset] \
            or list(schema.context_dependent_function_opset_versions)
        body = schema.get_context_dependent_function_with_opset_version(max(versions), node.SerializeToString(), types)
        if not body:
            raise UnsupportedOpError(f"{where}: the ONNX schema gives no function body for these inputs")
        fn.ParseFromString(body)
    inner_opset = next((o.version for o in fn.opset_import if o.domain in STANDARD_DOMAINS), opset)
    prefix = f"{node.name or node.output[0]}/{node.op_type}/"
    rename = {}
    for formal, actual in zip(fn.input, list(node.input) + [""] * len(fn.input)):
        rename[formal] = actual
    for formal, actual in zip(fn.output, node.output):
        rename[formal] = actual
    caller_attrs = {a.name: a for a in node.attribute}
    defaults = {k: a.default_value for k, a in schema.attributes.items() if a.default_value.type}
    scope = set(fn.input) | set(fn.output) | {o for inner in fn.node for o in inner.output}

    def outer(name: str) -> str:  # a function-scope name as the caller's graph knows it
        return rename.get(name, prefix + name) if name in scope else name

    body_nodes = []
    for inner in fn.node:
        new = onnx.NodeProto()
        new.CopyFrom(inner)
        del new.input[:]
        del new.output[:]
        new.input.extend(rename.get(n, prefix + n) if n else "" for n in inner.input)
        new.output.extend(rename.get(n, prefix + n) if n else "" for n in inner.output)
        new.name = prefix + (inner.name or inner.op_type + str(len(body_nodes)))
        del new.attribute[:]
        for a in inner.attribute:
            if a.ref_attr_name:
                src = caller_attrs.get(a.ref_attr_name) or defaults.get(a.ref_attr_name)
                if src is None:
                    continue
                copied = onnx.AttributeProto()
                copied.CopyFrom(src)
                copied.name = a.name
                new.attribute.append(copied)
            else:
                new.attribute.append(a)
        for a in new.attribute:  # subgraphs (If branches, Loop bodies) read function-scope values too
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _rename_outer_names(sub, outer)
        body_nodes.append(new)
    import_nodes(ctx, body_nodes, inner_opset)


def _rename_outer_names(graph: onnx.GraphProto, outer: Callable[[str], str]) -> None:
    """Rename, in place, the names a subgraph reads from enclosing scopes (not its own values)."""
    own = {v.name for v in graph.input} | {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}

    def r(name: str) -> str:
        return name if (not name or name in own) else outer(name)

    for n in graph.node:
        names = [r(i) for i in n.input]
        del n.input[:]
        n.input.extend(names)
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _rename_outer_names(sub, lambda x, r=r: r(x))
    for o in graph.output:
        o.name = r(o.name)


# -- naming ------------------------------------------------------------------------------------------

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
