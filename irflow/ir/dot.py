"""Pictures of a Graph: Graphviz dot text, and svg through graphviz's `dot` program.

Public as ``irf.viz.to_dot`` / ``irf.viz.to_svg``; ``irflow viz`` and a notebook's display of
a Graph (``Graph._repr_svg_`` / ``_repr_html_``) use the same code.
"""
from __future__ import annotations

import html
import shutil
import subprocess
from typing import TYPE_CHECKING

from irflow.errors import IrflowError

if TYPE_CHECKING:
    from irflow.ir.graph import Graph

# Larger graphs are shown as text in notebooks: graphviz takes seconds on thousands of nodes.
NOTEBOOK_SVG_MAX_NODES = 400


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: Graph) -> str:
    """The graph in Graphviz dot syntax: ops are boxes, inputs/outputs ellipses, edges are values.

    >>> import irflow as irf
    >>> b = irf.GraphBuilder("g"); x = b.input("x", "float32", (2,))
    >>> with b: b.output(irf.relu(x), names=["y"])
    >>> print(irf.viz.to_dot(b.build()).splitlines()[0])
    digraph "g" {
    """
    q = _quote
    lines = [f"digraph {q(graph.name)} {{", "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=10];']
    producer: dict[str, str] = {}
    for v in graph.inputs:
        lines.append(f"  {q('in:' + v.name)} [shape=ellipse, label={q(v.name + chr(10) + str(v.type))}];")
        producer[v.name] = "in:" + v.name
    for i, node in enumerate(graph.nodes):
        nid = f"node:{node.name or i}"
        lines.append(f"  {q(nid)} [shape=box, style=rounded, label={q(node.op + chr(10) + (node.name or ''))}];")
        for name in node.inputs:
            if name in producer:
                lines.append(f"  {q(producer[name])} -> {q(nid)} [label={q(name)}, fontsize=8];")
        for v in node.outputs:
            producer[v.name] = nid
    for v in graph.outputs:
        oid = "out:" + v.name
        lines.append(f"  {q(oid)} [shape=ellipse, style=bold, label={q(v.name + chr(10) + str(v.type))}];")
        if v.name in producer:
            lines.append(f"  {q(producer[v.name])} -> {q(oid)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_program() -> str | None:
    """The path of graphviz's `dot`, or None when it is not installed."""
    return shutil.which("dot")


def to_svg(graph: Graph) -> str:
    """The graph as an svg document, drawn by graphviz's `dot` (an IrflowError if it is missing).

    >>> svg = irf.viz.to_svg(graph)   # doctest: +SKIP
    """
    exe = dot_program()
    if exe is None:
        raise IrflowError("irf.viz.to_svg needs graphviz's `dot` program, which is not on PATH; install graphviz "
                          "(apt install graphviz, conda install graphviz) or use irf.viz.to_dot")
    done = subprocess.run([exe, "-Tsvg"], input=to_dot(graph).encode("utf-8"), capture_output=True)
    if done.returncode != 0:
        raise IrflowError(f"graphviz `dot` failed on graph {graph.name!r}: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout.decode("utf-8")


def notebook_svg(graph: Graph) -> str | None:
    """svg for a notebook, or None (no `dot`, or a graph too large to draw quickly)."""
    if dot_program() is None or len(graph.nodes) > NOTEBOOK_SVG_MAX_NODES:
        return None
    try:
        return to_svg(graph)
    except IrflowError:
        return None


def notebook_html(graph: Graph) -> str:
    """The picture when graphviz is there, else the readable text form in a <pre> block."""
    svg = notebook_svg(graph)
    return svg if svg is not None else f"<pre>{html.escape(str(graph))}</pre>"
