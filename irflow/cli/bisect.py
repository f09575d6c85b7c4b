"""Finding the first node where two executors disagree (``irflow run --compare --bisect``).

Every node output becomes a graph output, the graph runs once on the NumPy interpreter and
once on onnxruntime, and the node outputs are compared in topological order: the first node
whose outputs differ beyond tolerance is where the executors part ways (its inputs still
agreed, since every earlier node agreed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

from irflow.cli.common import Diff, compare_arrays

if TYPE_CHECKING:
    from irflow.ir.graph import Graph, Node


@dataclass
class Divergence:
    """The first node whose outputs differ between the two executors."""

    node: Node
    output: str
    diff: Diff
    input_types: list[str]
    numpy_value: np.ndarray
    ort_value: np.ndarray
    index: int


def expose_all(graph: Graph) -> Graph:
    """The same graph with every node output also a graph output (original outputs first)."""
    from irflow.ir.graph import Value

    seen = set(graph.output_names)
    outputs = list(graph.outputs)
    for node in graph.nodes:
        for v in node.outputs:
            if v.name not in seen:
                seen.add(v.name)
                outputs.append(Value(name=v.name, type=v.type))
    return graph.model_copy(update={"outputs": tuple(outputs)})


def bisect(graph: Graph, feeds: Mapping[str, np.ndarray], *, rtol: float, atol: float,
           device: str = "cpu") -> Divergence | None:
    """Run ``graph`` on both executors with every intermediate exposed; return the first divergence.

    >>> d = bisect(g, {"x": x}, rtol=1e-4, atol=1e-5)   # doctest: +SKIP
    >>> d.node.name, d.node.op, d.diff.max_abs           # doctest: +SKIP
    """
    from irflow.executors.numpy import Interpreter
    from irflow.executors.onnx import OrtRunner

    exposed = expose_all(graph)
    ref = Interpreter(exposed).run(feeds)
    ort = OrtRunner(exposed, device=device).run(feeds)
    types = graph.value_types()
    for index, node in enumerate(graph.nodes):
        for v in node.outputs:
            diff = compare_arrays(ort[v.name], ref[v.name], rtol, atol)
            if not diff.ok:
                ins = [f"%{n}: {types[n]}" if n else "_" for n in node.inputs]
                return Divergence(node, v.name, diff, ins, ref[v.name], ort[v.name], index)
    return None
