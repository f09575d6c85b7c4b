"""`irflow viz MODEL -o OUT.dot|.svg`: the graph as Graphviz dot (svg through `dot` when installed)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from irflow.cli.common import CliError, check_output, console, handle_errors, load_model

EPILOG = """Examples:

  irflow viz model.onnx -o model.dot

  irflow viz model.irflow.json -o model.svg     (needs graphviz's `dot` on PATH)
"""


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
    from irflow.atomic import write_bytes, write_text
    from irflow.ir.dot import to_dot, to_svg  # irf.viz's code: the CLI only writes the file

    if suffix == ".dot":
        write_text(output, to_dot(graph))
    else:  # dot writes to a pipe; irflow writes the file, atomically
        write_bytes(output, to_svg(graph).encode("utf-8"))
    console.print(f"wrote {output} ({len(graph.nodes)} nodes)")
