"""`irflow inspect MODEL`: inputs, outputs, op histogram, parameters and opset, as rich tables."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from irflow.cli.common import STRICT_HELP, console, handle_errors, load_model, model_kind

EPILOG = """Example:

  irflow inspect model.onnx
"""


def _onnx_summary(path: Path) -> tuple[str, Counter]:
    """The model's opset imports and its ONNX op histogram (as written, before import)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    return opsets, Counter(n.op_type for n in model.graph.node)


@handle_errors
def inspect(model: Annotated[Path, typer.Argument(help="A .onnx or .irflow.json model.", show_default=False)],
            strict: Annotated[bool, typer.Option("--strict/--no-strict", help=STRICT_HELP)] = True) -> None:
    """Show a model's inputs and outputs, op histogram, parameter count and opset."""
    graph = load_model(model, strict=strict)
    onnx_ops: Counter | None = None
    if model_kind(model) == "onnx":
        opset, onnx_ops = _onnx_summary(model)
    else:
        opset = f"irflow IR (opset_version {graph.opset_version})"
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

    if onnx_ops is not None:
        console.print(_histogram("ONNX ops (as in the file)", onnx_ops))
    console.print(_histogram("IR ops" + (" (after import)" if onnx_ops is not None else ""), Counter(n.op for n in graph.nodes)))


def _histogram(title: str, counts: Counter) -> Table:
    table = Table(title=title)
    table.add_column("op")
    table.add_column("count", justify="right")
    for op, count in counts.most_common():
        table.add_row(*map(Text, (op, str(count))))
    return table


def _shape(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
