"""The verifier: SSA, topological order, arity, attrs and types, re-checked from scratch.

It consults the op registry (``irflow.ops.registry``, which imports nothing but the IR types)
for arities, attr schemas and type rules; that is the one import from ``ir`` into ``ops``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from irflow.errors import DTypeError, IRValidationError, ShapeError, UnsupportedOpError
from irflow.ir.dtypes import DType
from irflow.ir import graph as graph_module
from irflow.ir.graph import Graph
from irflow.ir.types import TensorType

_KIND_CHECKS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "dtype": lambda v: isinstance(v, DType),
    "ints": lambda v: isinstance(v, tuple) and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
    "floats": lambda v: isinstance(v, tuple) and all(isinstance(x, (int, float)) for x in v),
    "strs": lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v),
    "array": lambda v: isinstance(v, np.ndarray),
    "graph": lambda v: isinstance(v, Graph),
    "any": lambda v: True,
}


def types_compatible(declared: TensorType, inferred: TensorType) -> bool:
    """Same dtype and rank; dims equal where both are known (None matches anything)."""
    if declared.dtype != inferred.dtype or declared.rank != inferred.rank:
        return False
    return all(a is None or b is None or a == b for a, b in zip(declared.shape, inferred.shape))


def verify_graph(g: Graph, outer: dict[str, TensorType] | None = None) -> None:
    """Raise IRValidationError for the first broken rule, naming the node."""
    from irflow.ops.registry import REGISTRY

    defined: dict[str, TensorType] = dict(outer or {})
    where_defined: dict[str, str] = {}

    def define(name: str, t: TensorType, by: str) -> None:
        if not name:
            raise IRValidationError(f"graph {g.name!r}: {by} defines a value with an empty name")
        if name in where_defined:
            raise IRValidationError(f"graph {g.name!r}: value %{name} is defined twice ({where_defined[name]} and {by})")
        where_defined[name] = by
        defined[name] = t

    for v in g.inputs:
        define(v.name, v.type, "graph input")
    for name, arr in g.initializers.items():
        from irflow.ir.dtypes import dtype_of_array

        define(name, TensorType(dtype=dtype_of_array(arr), shape=arr.shape), "initializer")

    producers = {v.name: i for i, n in enumerate(g.nodes) for v in n.outputs}
    node_names: set[str] = set()
    for i, node in enumerate(g.nodes):
        label = f"node {node.name or '#' + str(i)} ({node.op})"
        if node.name:
            if node.name in node_names:
                raise IRValidationError(f"graph {g.name!r}: {label}: node name is used twice")
            node_names.add(node.name)
        opdef = REGISTRY.get(node.op)
        if opdef is None:
            raise IRValidationError(f"graph {g.name!r}: {label}: unknown op '{node.op}'")
        # order and definitions
        in_types = []
        for position, name in enumerate(node.inputs):
            if name == "":
                if position < opdef.min_inputs:
                    raise IRValidationError(f"graph {g.name!r}: {label}: input #{position} is required but is empty (\"\")")
                in_types.append(None)
                continue
            if name not in defined:
                if name in producers and producers[name] >= i:
                    kind = "cycle" if _reaches(g, producers[name], i, producers) else "use before definition"
                    raise IRValidationError(
                        f"graph {g.name!r}: {label}: {kind}: input %{name} is produced by a later node "
                        f"{g.nodes[producers[name]].name or '#' + str(producers[name])}"
                    )
                raise IRValidationError(f"graph {g.name!r}: {label}: input %{name} is not defined")
            in_types.append(defined[name])
        # arity
        n = len(node.inputs)
        if n < opdef.min_inputs or (opdef.max_inputs is not None and n > opdef.max_inputs):
            raise IRValidationError(
                f"graph {g.name!r}: {label}: takes {opdef.min_inputs}..{opdef.max_inputs} inputs, got {n}"
            )
        # attrs
        for k, v in node.attrs.items():
            spec = opdef.attrs.get(k)
            if spec is None:
                raise IRValidationError(f"graph {g.name!r}: {label}: unknown attribute '{k}'")
            if v is None and spec.optional:
                continue
            if not _KIND_CHECKS[spec.kind](v):
                raise IRValidationError(f"graph {g.name!r}: {label}: attribute '{k}' must be {spec.kind}, got {v!r}")
        missing = [k for k, spec in opdef.attrs.items() if k not in node.attrs]
        if missing:
            raise IRValidationError(f"graph {g.name!r}: {label}: missing attribute(s) {', '.join(missing)}")
        for k, v in node.attrs.items():
            if isinstance(v, Graph):
                # Nested graphs (call, custom_call, cond, scan, while_loop) are closed: every
                # value they read is one of their inputs, so they verify with no outer scope.
                try:
                    verify_graph(v)
                except IRValidationError as e:
                    raise IRValidationError(f"graph {g.name!r}: {label}: attribute '{k}': {e}") from None
        # types
        try:
            inferred = opdef.infer_type(tuple(in_types), dict(node.attrs))
        except (ShapeError, DTypeError, UnsupportedOpError) as e:
            raise IRValidationError(f"graph {g.name!r}: {label}: {e}") from None
        except IRValidationError:
            raise
        except Exception as e:  # a type rule meeting inputs or attrs it does not expect (a hand-edited file)
            raise IRValidationError(
                f"graph {g.name!r}: {label}: its type rule rejects inputs "
                f"({', '.join(str(t) if t is not None else '_' for t in in_types)}) and attrs: {type(e).__name__}: {e}"
            ) from None
        if len(inferred) != len(node.outputs):
            raise IRValidationError(
                f"graph {g.name!r}: {label}: produces {len(inferred)} outputs, node declares {len(node.outputs)}"
            )
        for v, t in zip(node.outputs, inferred):
            if not types_compatible(v.type, t):
                raise IRValidationError(
                    f"graph {g.name!r}: {label}: output %{v.name} is declared {v.type} but the op gives {t}"
                )
        for v in node.outputs:
            define(v.name, v.type, label)

    for v in g.outputs:
        if v.name not in defined:
            raise IRValidationError(f"graph {g.name!r}: output %{v.name} is not defined")
        if not types_compatible(v.type, defined[v.name]):
            raise IRValidationError(f"graph {g.name!r}: output %{v.name} is declared {v.type} but is {defined[v.name]}")


def _reaches(g: Graph, start: int, target: int, producers: dict[str, int]) -> bool:
    """Does node ``start`` depend (transitively) on node ``target``? Then the graph has a cycle."""
    seen: set[int] = set()
    stack = [start]
    while stack:
        i = stack.pop()
        if i == target:
            return True
        if i in seen:
            continue
        seen.add(i)
        stack.extend(producers[name] for name in g.nodes[i].inputs if name in producers)
    return False


graph_module.register_verifier(verify_graph)
