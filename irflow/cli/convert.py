"""`irflow convert IN OUT`: .onnx <-> .irflow.json (or .onnx -> .onnx through the IR)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from irflow.cli.common import STRICT_HELP, check_output, console, handle_errors, load_model, model_kind, save_model

EPILOG = """Examples:

  irflow convert model.onnx model.irflow.json

  irflow convert model.irflow.json model.onnx
"""


@handle_errors
def convert(
    source: Annotated[Path, typer.Argument(help="The model to read (.onnx or .irflow.json).", show_default=False)],
    target: Annotated[Path, typer.Argument(help="The file to write (.onnx or .irflow.json).", show_default=False)],
    strict: Annotated[bool, typer.Option("--strict/--no-strict", help=STRICT_HELP)] = True,
) -> None:
    """Convert a model between ONNX and irflow's JSON IR."""
    model_kind(target)  # reject an unknown target format or an unwritable path before any work
    check_output(target, "output")
    graph = load_model(source, strict=strict)
    save_model(graph, target)
    console.print(f"wrote {target} ({len(graph.nodes)} nodes, {len(graph.initializers)} initializers)")
