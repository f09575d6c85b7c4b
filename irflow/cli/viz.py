"""`irflow viz MODEL -o OUT.dot|.svg`: the graph as Graphviz dot (svg through `dot` when installed)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from irflow.cli.common import CliError, check_output, console, handle_errors, load_model

if TYPE_CHECKING:
    from irflow.ir.graph import Graph

EPILOG = """Examples:

  irflow viz model.onnx -o model.dot

  irflow viz model.irflow.json -o model.svg     (needs graphviz's `dot` on PATH)
"""


def to_dot(graph: Graph) -> str:
    """The graph in Graphviz dot syntax: ops are boxes, inputs/outputs ellipses, edges are values.

    >>> print(to_dot(g))   # doctest: +SKIP
    """
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

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


@handle_errors
def viz(
    model: Annotated[Path, typer.Argument(help="A .onnx or .irflow.json model.", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="OUT.dot, or OUT.svg when graphviz is installed.")],
) -> None:
    """Draw the graph: write Graphviz dot, or svg through graphviz's `dot`."""
    suffix = output.suffix.lower()
    if suffix not in (".dot", ".svg"):
        raise CliError(f"-o {output}: choose a .dot or .svg file name")
    dot_exe = shutil.which("dot")
    if suffix == ".svg" and dot_exe is None:
        raise CliError("writing .svg needs graphviz's `dot` program, which is not on PATH; install graphviz or write .dot")
    check_output(output)
    graph = load_model(model)
    text = to_dot(graph)
    from irflow.atomic import write_bytes, write_text

    if suffix == ".dot":
        write_text(output, text)
    else:  # dot writes to a pipe; irflow writes the file, atomically
        done = subprocess.run([dot_exe, "-Tsvg"], input=text.encode("utf-8"), capture_output=True)
        if done.returncode != 0:
            raise CliError(f"graphviz `dot` failed: {done.stderr.decode('utf-8', 'replace').strip()}")
        write_bytes(output, done.stdout)
    console.print(f"wrote {output} ({len(graph.nodes)} nodes)")
