"""`irflow inspect MODEL`: inputs, outputs, op histogram, parameters and opset, as rich tables."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from irflow.cli.common import console, handle_errors, load_model, model_kind

EPILOG = """Example:

  irflow inspect model.onnx
"""


def _onnx_opsets(path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)


@handle_errors
def inspect(model: Annotated[Path, typer.Argument(help="A .onnx or .irflow.json model.", show_default=False)]) -> None:
    """Show a model's inputs and outputs, op histogram, parameter count and opset."""
    graph = load_model(model)
    opset = _onnx_opsets(model) if model_kind(model) == "onnx" else f"irflow IR (opset_version {graph.opset_version})"
    params = sum(int(a.size) for a in graph.initializers.values())
    nbytes = sum(int(a.nbytes) for a in graph.initializers.values())
    console.print(Text(f"{graph.name}  ({model})", style="bold"))
    console.print(f"opset: {opset}")
    console.print(f"nodes: {len(graph.nodes)}   parameters: {params:,} in {len(graph.initializers)} initializer(s), {_human_bytes(nbytes)}")

    io = Table(title="inputs and outputs")
    for column in ("kind", "name", "dtype", "shape"):
        io.add_column(column)
    for kind, values in (("input", graph.inputs), ("output", graph.outputs)):
        for v in values:
            io.add_row(*map(Text, (kind, v.name, v.type.dtype.value, _shape(v.type.shape))))
    console.print(io)

    ops = Table(title="ops")
    ops.add_column("op")
    ops.add_column("count", justify="right")
    for op, count in Counter(n.op for n in graph.nodes).most_common():
        ops.add_row(*map(Text, (op, str(count))))
    console.print(ops)


def _shape(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
