"""Give a graph's outputs the names a user chose (dict keys, ``<variable>_new``).

A traced function returning ``{"loss": loss}`` should have an output called ``loss`` in its
IR and in the exported ONNX model, not the name of the node that happened to compute it
(``reduce_sum_4``). Renaming the value where it is defined (and in every node that reads it)
costs nothing at run time; an identity node is added only where a rename is impossible: the
value is a graph input or initializer (a function returning its argument), or the same
value is returned under two names.
"""
from __future__ import annotations

from typing import Sequence

from irflow.ir.graph import Graph, Node, Value


def _free(name: str, used: set[str]) -> str:
    candidate, i = name, 1
    while candidate in used:
        candidate = f"{name}_{i}"
        i += 1
    return candidate


def name_outputs(graph: Graph, names: Sequence[str | None]) -> Graph:
    """``graph`` with output ``i`` renamed to ``names[i]`` (None keeps its name).

    A wanted name that is already another value's name gets a ``_<n>`` suffix, so the graph
    stays SSA; the caller reads the final names from the returned graph's outputs.

    >>> g2 = name_outputs(g, ["loss", None])     # doctest: +SKIP
    >>> [v.name for v in g2.outputs]             # doctest: +SKIP
    ['loss', 'w_new']
    """
    if len(names) != len(graph.outputs):
        raise ValueError(f"name_outputs: {len(names)} names for {len(graph.outputs)} outputs")
    produced_by_node = {v.name for n in graph.nodes for v in n.outputs}
    used = {v.name for v in graph.inputs} | set(graph.initializers) | produced_by_node
    output_counts: dict[str, int] = {}
    for v in graph.outputs:
        output_counts[v.name] = output_counts.get(v.name, 0) + 1

    node_names = {n.name for n in graph.nodes}
    renames: dict[str, str] = {}
    identities: list[Node] = []
    outputs: list[Value] = []
    for value, want in zip(graph.outputs, names):
        if want is None or want == value.name:
            outputs.append(value)
            continue
        new = _free(want, used)
        used.add(new)
        if value.name in produced_by_node and output_counts[value.name] == 1 and value.name not in renames:
            renames[value.name] = new
        else:
            node_name = _free(new, node_names)
            node_names.add(node_name)
            identities.append(Node(op="identity", inputs=(value.name,), outputs=(Value(name=new, type=value.type),), name=node_name))
        outputs.append(Value(name=new, type=value.type))
    if not renames and not identities:
        return graph

    def rn(name: str) -> str:
        return renames.get(name, name)

    nodes = []
    for n in graph.nodes:
        if any(i in renames for i in n.inputs) or any(v.name in renames for v in n.outputs):
            n = Node(
                op=n.op,
                inputs=tuple(rn(i) for i in n.inputs),
                outputs=tuple(Value(name=rn(v.name), type=v.type) for v in n.outputs),
                attrs=n.attrs,
                name=n.name,
            )
        nodes.append(n)
    # An identity reads its source under the source's final name (itself possibly renamed).
    nodes.extend(Node(op=i.op, inputs=(rn(i.inputs[0]),), outputs=i.outputs, name=i.name) for i in identities)
    return Graph(
        name=graph.name,
        inputs=graph.inputs,
        outputs=tuple(outputs),
        nodes=tuple(nodes),
        initializers=graph.initializers,
        opset_version=graph.opset_version,
    )
