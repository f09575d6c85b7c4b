"""Canonical form of a Graph, for comparing IRs built by different frontends.

Values are renamed in topological order (inputs by position, constants and node outputs in
order of first use), node names are dropped, and constants are compared by value (dtype,
shape, bytes). Two graphs are structurally equal when their canonical forms are equal.
"""
from __future__ import annotations

import numpy as np

import irflow as irf


def _attr_key(v):
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, irf.Graph):
        return ("graph", canonical(v))
    if isinstance(v, (list, tuple)):
        return tuple(_attr_key(x) for x in v)
    return v


def canonical(g: irf.Graph) -> tuple:
    names: dict[str, str] = {}
    inputs = []
    for i, v in enumerate(g.inputs):
        names[v.name] = f"in{i}"
        inputs.append((f"in{i}", str(v.type)))
    consts = []
    nodes = []
    for node in g.nodes:
        ins = []
        for n in node.inputs:
            if n == "":
                ins.append("")
                continue
            if n not in names:
                if n not in g.initializers:
                    raise AssertionError(f"value {n!r} used before definition in graph {g.name!r}")
                arr = g.initializers[n]
                names[n] = f"c{len(consts)}"
                consts.append((names[n], arr.dtype.str, arr.shape, arr.tobytes()))
            ins.append(names[n])
        outs = []
        for v in node.outputs:
            names[v.name] = f"v{len(names)}"
            outs.append((names[v.name], str(v.type)))
        attrs = tuple(sorted((k, _attr_key(a)) for k, a in node.attrs.items()))
        nodes.append((node.op, tuple(ins), tuple(outs), attrs))
    outputs = tuple((names[v.name], str(v.type)) for v in g.outputs)
    return (tuple(inputs), tuple(consts), tuple(nodes), outputs)
