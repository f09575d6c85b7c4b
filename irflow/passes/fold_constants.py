"""Constant folding: nodes whose result is known before any feed are computed once.

A node folds when every input is a constant (an initializer or an earlier folded value), or is
read only for its static shape (``ones_like(loss)``, ``broadcast_like(g, x)`` with a static x).
That is the usual start of a gradient graph: the seed ``ones_like(loss)`` scaled by 1/batch,
expanded and broadcast to the batch, five nodes that cost more per step in dispatch than in
arithmetic. Folded values become initializers. Only small results fold (at most
``max_elements`` each, so exports do not swell with big constant tensors), only ops of the
deterministic families (no random, control flow or calls), and never a graph output.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np

from irflow.ir.graph import Graph, Node

# Ops that read these input positions only for their (static) shape and dtype.
SHAPE_ONLY_INPUTS: dict[str, frozenset[int]] = {
    "ones_like": frozenset({0}),
    "zeros_like": frozenset({0}),
    "shape_of": frozenset({0}),
    "broadcast_like": frozenset({1}),
    "reshape_like": frozenset({1}),
    "sum_to_like": frozenset({1}),
}
FOLDABLE_FAMILIES = frozenset({"elementwise", "shape", "reduction", "linalg"})

# The kernels folding computes with: op name -> kernel(*arrays, **attrs). Passes sit below the
# executors and import none of them; the NumPy executor hands its kernel table over when it is
# imported (irflow/executors/numpy/kernels/__init__.py). Without one, nothing folds.
_kernels: Mapping[str, Callable] = {}


def set_kernels(kernels: Mapping[str, Callable]) -> None:
    """Give constant folding the kernels to evaluate nodes with (the NumPy executor's table)."""
    global _kernels
    _kernels = kernels


def fold_constants(graph: Graph, max_elements: int = 4096) -> Graph:
    """A graph where small values computable without feeds are initializers. Initializers
    that only folded nodes read remain: run ``prune`` afterwards to drop them.

    >>> g2 = prune(fold_constants(vjp(g, wrt=["w"], seed="ones")))   # doctest: +SKIP
    """
    from irflow.ops.registry import REGISTRY

    kernels = _kernels

    types = graph.value_types()
    consts: dict[str, np.ndarray] = dict(graph.initializers)
    outputs = set(graph.output_names)
    kept: list[Node] = []
    for node in graph.nodes:
        args = _constant_args(node, consts, types)
        opdef = REGISTRY.get(node.op)
        if (args is None or opdef is None or opdef.family not in FOLDABLE_FAMILIES or node.op not in kernels
                or any(v.name in outputs for v in node.outputs)
                or not all(v.type.is_static and math.prod(v.type.shape) <= max_elements for v in node.outputs)):
            kept.append(node)
            continue
        try:
            results = kernels[node.op](*args, **node.attrs)
        except Exception:  # leave it to fail at run time, where the executor names the node
            kept.append(node)
            continue
        results = results if isinstance(results, tuple) else (results,)
        for v, r in zip(node.outputs, results):
            # Own a contiguous copy of the declared dtype: kernels may return views of inputs.
            consts[v.name] = np.array(r, dtype=v.type.dtype.numpy, order="C")
    if len(kept) == len(graph.nodes):
        return graph
    return Graph(name=graph.name, inputs=graph.inputs, outputs=graph.outputs, nodes=tuple(kept),
                 initializers=consts, opset_version=graph.opset_version)


def _constant_args(node: Node, consts: dict, types: dict) -> list | None:
    """The node's arguments if all are known before any feed, else None."""
    shape_only = SHAPE_ONLY_INPUTS.get(node.op, frozenset())
    args = []
    for i, name in enumerate(node.inputs):
        if not name:
            args.append(None)
        elif name in consts:
            args.append(consts[name])
        elif i in shape_only and types[name].is_static:
            t = types[name]  # only its shape is read: a zero-stride stand-in, no memory
            args.append(np.broadcast_to(np.zeros((), dtype=t.dtype.numpy), t.shape))
        else:
            return None
    return args if node.inputs else None  # a node without inputs (range, ...) stays a node
