"""`irflow grad MODEL --loss NAME --wrt NAME... -o OUT.onnx`: a model that also returns gradients.

The gradient graph comes from ``irflow.autodiff.vjp`` with the loss seeded with ones (for a
non-scalar loss that is the gradient of its sum). It is lowered to standard-domain ONNX only,
so it runs on stock onnxruntime.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from irflow.cli.common import CliError, console, handle_errors, load_model, save_model
from irflow.ir.graph import Graph, Node, Value

EPILOG = """Examples:

  irflow grad model.onnx --loss loss --wrt x --wrt fc1.weight -o model_grad.onnx

  irflow grad model.irflow.json --loss loss --wrt w -o grad.irflow.json
"""


class Mode(str, Enum):
    vjp = "vjp"


def _keep_output_names(graph: Graph, names: tuple[str, ...]) -> Graph:
    """The gradient pass renames the primal outputs; give them their original names back."""
    taken = set(graph.value_types()) | {n.name for n in graph.nodes}
    nodes, outputs = list(graph.nodes), list(graph.outputs)
    for i, want in enumerate(names):
        v = outputs[i]
        if v.name != want and want not in taken:
            nodes.append(Node(op="identity", inputs=(v.name,), outputs=(Value(name=want, type=v.type),), attrs={}, name=want))
            outputs[i] = Value(name=want, type=v.type)
            taken.add(want)
    return graph.model_copy(update={"nodes": tuple(nodes), "outputs": tuple(outputs)})


@handle_errors
def grad(
    model: Annotated[Path, typer.Argument(help="A .onnx or .irflow.json model.", show_default=False)],
    loss: Annotated[str, typer.Option("--loss", help="The value to differentiate (a graph output or any value).")],
    wrt: Annotated[list[str], typer.Option("--wrt", help="A graph input or initializer to differentiate with respect to; repeat for more.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the gradient model (.onnx or .irflow.json).")],
    mode: Annotated[Mode, typer.Option("--mode", help="Reverse mode (vjp) only: irflow has no forward-mode transform yet.")] = Mode.vjp,
) -> None:
    """Write a model with the original outputs plus one gradient output grad_<NAME> per --wrt."""
    from irflow.autodiff import vjp

    graph = load_model(model)
    types = graph.value_types()
    if loss not in types:
        raise CliError(f"--loss {loss!r} is not a value of the model; its outputs are {', '.join(graph.output_names)}")
    if not types[loss].dtype.is_float:
        raise CliError(f"--loss {loss!r} has dtype {types[loss].dtype.value}; only a float value can be differentiated")
    sources = {v.name for v in graph.inputs} | set(graph.initializers)
    for name in wrt:
        if name not in sources:
            raise CliError(
                f"--wrt {name!r} is neither a graph input nor an initializer; inputs: {', '.join(graph.input_names) or 'none'}"
                f"; initializers: {', '.join(list(graph.initializers)[:12]) or 'none'}{' ...' if len(graph.initializers) > 12 else ''}"
            )
        if not types[name].dtype.is_float:
            raise CliError(f"--wrt {name!r} has dtype {types[name].dtype.value}; only float values have gradients")
    grad_graph = _keep_output_names(vjp(graph, list(wrt), outputs=[loss], seed="ones"), graph.output_names)
    save_model(grad_graph, output)
    names = ", ".join(f"grad_{n}" for n in wrt)
    console.print(f"wrote {output}: outputs {', '.join(graph.output_names)} and {names}")
