"""The ONNX import loop: each node through its importer, import-time folding (bounded by
size), function bodies expanded, and every stray exception turned into an error naming the
node.

``import_nodes(ctx, nodes, opset)`` is shared by the top-level import (``onnx_import.load``) and
subgraph import (``onnx_import_control``). Importers come from the table in
``onnx_import_base``; this module imports no family, so families can import it.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import onnx

from irflow.errors import IrflowError, IRValidationError, UnsupportedOpError
from irflow.frontends.onnx_import_base import (
    IMPORTERS, NOT_FOLDABLE, SHAPE_IMPORTERS, STANDARD_DOMAINS, ImportContext, NodeView, nbytes,
)
from irflow.frontends.onnx_import_shapes import propagate
from irflow.frontends.onnx_import_types import check_node_types
from irflow.ir.dtypes import dtype_of_array
from irflow.ops.builder import GraphBuilder
from irflow.ops.dispatch import BUILDER_STACK

def check_supported(model: onnx.ModelProto, opset: int) -> None:
    """Raise one UnsupportedOpError listing every node irflow cannot import."""
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
    """Import ``nodes`` in order into ``ctx``. Every failure is an IrflowError naming the node:
    an exception that is not one (an importer meeting input it did not expect) is wrapped."""
    for node in nodes:
        try:
            if ctx.strict:
                check_node_types(ctx, node, opset, node_where(node, opset), outputs=False)
            _import_node(ctx, node, opset)
            if ctx.strict:
                check_node_types(ctx, node, opset, node_where(node, opset), outputs=True)
        except IrflowError:
            raise
        except MemoryError:
            raise IrflowError(f"{node_where(node, opset)}: out of memory while importing this node "
                              f"(import-time arrays are limited to {ctx.fold_limit:,} bytes; a kernel or "
                              "type rule asked for more)") from None
        except RecursionError:
            raise IRValidationError(f"{node_where(node, opset)}: nesting too deep to import") from None
        except Exception as e:
            raise IRValidationError(
                f"{node_where(node, opset)}: import failed: {type(e).__name__}: {_first_line(e)} "
                "(a malformed attribute or input this importer does not check; please report it)") from e


def node_where(node: onnx.NodeProto, opset: int) -> str:
    """'node NAME (OpType, opset N)', as NodeView.where() says it."""
    name = node.name or (node.output[0] if node.output else node.op_type)
    return f"node '{name}' ({node.op_type}, opset {opset})"


def _first_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def _import_node(ctx: ImportContext, node: onnx.NodeProto, opset: int) -> None:
    op = node.op_type
    if op == "If" and node.input and node.input[0] in ctx.consts and _inline_taken_branch(ctx, node, opset):
        return
    if op in SHAPE_IMPORTERS:  # ops answered from types and shape values alone (Shape, Size)
        if SHAPE_IMPORTERS[op](ctx, node, opset):
            return
    fn = IMPORTERS.get(op)
    if fn is None:
        expand_function(ctx, node, opset)
        return
    names = [n for n in node.input if n]
    if op not in NOT_FOLDABLE and all(n in ctx.consts for n in names) \
            and sum(ctx.consts[n].nbytes for n in names) <= ctx.fold_limit \
            and _fold(ctx, node, fn, opset):
        return
    view = NodeView(ctx, node, [ctx.tensor(n) for n in node.input], opset)
    with ctx.builder:
        outs = _call(fn, view)
    _define_outputs(ctx, node, outs, view)
    propagate(ctx, node, opset)


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
    except UnsupportedOpError:
        raise
    except IrflowError as e:
        if str(e).startswith(view.where()):
            raise
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


def _output_values(outs: Any) -> list:
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    return list(outs)


def _dry_run(ctx: ImportContext, node: onnx.NodeProto, fn: Callable, opset: int) -> list | None:
    """The importer run on symbolic stand-ins of the constant inputs, in a scratch builder:
    its outputs' types (or NumPy values, when the importer computes them itself) without
    computing anything large. None when it fails (the real import reports the error)."""
    scratch = GraphBuilder("fold_check")
    stand_ins = []
    for name in node.input:
        if not name:
            stand_ins.append(None)
            continue
        arr = ctx.consts[name]
        stand_ins.append(scratch.input(scratch.free_name("c"), dtype_of_array(arr), arr.shape))
    view = NodeView(ctx, node, stand_ins, opset)
    try:
        with scratch:
            return _output_values(fn(view))
    except UnsupportedOpError:
        raise
    except IrflowError:
        return None


def _fold(ctx: ImportContext, node: onnx.NodeProto, fn: Callable, opset: int) -> bool:
    """Run the importer eagerly on import-time values when its outputs fit ``ctx.fold_limit``;
    False (nothing defined) when they do not, or when that fails: the node is then imported
    as run-time ops."""
    from irflow.frontends.eager import tensor

    planned = _dry_run(ctx, node, fn, opset)
    if planned is None:
        return False
    total = 0
    for o in planned:
        if o is None:
            continue
        size = o.nbytes if isinstance(o, np.ndarray) else nbytes(o.type.shape, o.type.dtype.numpy)
        if size is None:
            return False
        total += size
    if total > ctx.fold_limit:
        return False
    if all(o is None or isinstance(o, np.ndarray) for o in planned):
        values = planned  # the importer computed the values itself (Constant, Range, ...)
    else:
        saved = BUILDER_STACK[:]
        BUILDER_STACK.clear()
        try:
            view = NodeView(ctx, node, [tensor(ctx.consts[n]) if n else None for n in node.input], opset)
            outs = _output_values(fn(view))
            values = [np.asarray(o.numpy()) if hasattr(o, "numpy") else (None if o is None else np.asarray(o)) for o in outs]
        except UnsupportedOpError:
            raise
        except IrflowError:
            return False
        finally:
            BUILDER_STACK[:] = saved
    for name, v in zip(node.output, values):
        if name and v is not None:
            dtype_of_array(v)
            ctx.consts[name] = v
    propagate(ctx, node, opset)
    return True


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
