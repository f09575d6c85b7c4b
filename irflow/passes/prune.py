"""Dead-code elimination: keep only the nodes and initializers the outputs need."""
from __future__ import annotations

from typing import Sequence

from irflow.ir.graph import Graph, Value
from irflow.ops.transforms import register_graph_transform


def prune(graph: Graph, outputs: Sequence[str] | None = None, keep_inputs: bool = True) -> Graph:
    """A new graph holding only what computes ``outputs`` (default: the graph's outputs).

    With ``keep_inputs=False`` graph inputs nobody needs are dropped too (as a Session does
    for placeholders the fetches do not need).

    >>> small = prune(g, outputs=["loss"])   # doctest: +SKIP
    """
    types = graph.value_types()
    wanted = list(outputs) if outputs is not None else list(graph.output_names)
    needed = set(wanted)
    kept = []
    for node in reversed(graph.nodes):
        if any(v.name in needed for v in node.outputs):
            kept.append(node)
            needed.update(n for n in node.inputs if n)
    kept.reverse()
    inputs = graph.inputs if keep_inputs else tuple(v for v in graph.inputs if v.name in needed)
    return Graph(
        name=graph.name,
        inputs=inputs,
        outputs=tuple(Value(name=n, type=types[n]) for n in wanted),
        nodes=tuple(kept),
        initializers={k: v for k, v in graph.initializers.items() if k in needed},
        opset_version=graph.opset_version,
    )


register_graph_transform("prune", prune)  # for the nested-graph rules in irflow.ops (ops/transforms.py)
