"""`irflow grad MODEL --loss NAME --wrt NAME... -o OUT.onnx`: a model that also returns gradients.

The gradient graph comes from ``irflow.autodiff.vjp`` with the loss seeded with ones (for a
non-scalar loss that is the gradient of its sum). It is lowered to standard-domain ONNX only,
so it runs on stock onnxruntime.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from irflow.cli.common import CliError, check_output, console, handle_errors, load_model, model_kind, save_model

if TYPE_CHECKING:  # the IR is imported when the command runs, not by `irflow --help`
    from irflow.ir.graph import Graph

EPILOG = """Examples:

  irflow grad model.onnx --loss loss --wrt x --wrt fc1.weight -o model_grad.onnx

  irflow grad model.irflow.json --loss loss --wrt w -o grad.irflow.json
"""


class Mode(str, Enum):
    vjp = "vjp"
    jvp = "jvp"
    hvp = "hvp"


def _keep_output_names(graph: Graph, names: tuple[str, ...]) -> Graph:
    """The gradient pass renames the primal outputs; give them their original names back."""
    from irflow.ir.graph import Node, Value

    taken = set(graph.value_types()) | {n.name for n in graph.nodes}
    nodes, outputs = list(graph.nodes), list(graph.outputs)
    for i, want in enumerate(names):
        v = outputs[i]
        if v.name != want and want not in taken:
            nodes.append(Node(op="identity", inputs=(v.name,), outputs=(Value(name=want, type=v.type),), attrs={}, name=want))
            outputs[i] = Value(name=want, type=v.type)
            taken.add(want)
    return graph.model_copy(update={"nodes": tuple(nodes), "outputs": tuple(outputs)})


def forward_mode(graph: Graph, loss: str, wrt: list[str], mode: str) -> Graph:
    """A graph of the original outputs plus J.t (mode "jvp", tangent inputs ``tangent_<w>``) or
    H.v (mode "hvp", vector inputs ``vector_<w>``, the Hessian of the loss's sum), built with
    ``irf.jvp`` and ``irf.grad`` over a replay of ``graph`` (so the result is IR, then ONNX)."""
    import irflow as irf
    from irflow.autodiff import replay
    from irflow.ops import GraphBuilder

    b = GraphBuilder(f"{graph.name}_{mode}")
    base = {v.name: b.input(v.name, v.type.dtype, v.type.shape) for v in graph.inputs}
    prefix = "tangent" if mode == "jvp" else "vector"
    types = graph.value_types()
    extra = [b.input(b.free_name(f"{prefix}_{w}"), types[w].dtype, types[w].shape) for w in wrt]
    with b:
        base.update({k: b.constant(a, name=k) for k, a in graph.initializers.items()})

        def loss_of(*values):
            env = dict(base)
            env.update(zip(wrt, values))
            replay(graph, b, env)
            return irf.reduce_sum(env[loss]) if mode == "hvp" else env[loss]

        env = dict(base)
        replay(graph, b, env)
        for v in graph.outputs:
            b.output(env[v.name], names=[v.name])
        primals = tuple(base[w] for w in wrt)
        if mode == "jvp":
            _, tangent = irf.jvp(loss_of, primals, tuple(extra))
            b.output(tangent, names=[f"jvp_{loss}"])
        else:
            gradient = irf.grad(loss_of, argnums=tuple(range(len(wrt))))
            _, hv = irf.jvp(lambda *ws: tuple(gradient(*ws)), primals, tuple(extra))
            for w, h in zip(wrt, hv if isinstance(hv, (tuple, list)) else (hv,)):
                b.output(h, names=[f"hvp_{w}"])
    from irflow.passes.prune import prune

    return prune(b.build())


@handle_errors
def grad(
    model: Annotated[Path, typer.Argument(help="A .onnx or .irflow.json model.", show_default=False)],
    loss: Annotated[str, typer.Option("--loss", help="The value to differentiate (a graph output or any value).")],
    wrt: Annotated[list[str], typer.Option("--wrt", help="A graph input or initializer to differentiate with respect to; repeat for more.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the gradient model (.onnx or .irflow.json).")],
    mode: Annotated[Mode, typer.Option("--mode", help="vjp: gradients grad_<NAME>; jvp: inputs tangent_<NAME>, output jvp_<LOSS>; hvp: inputs vector_<NAME>, outputs hvp_<NAME>.")] = Mode.vjp,
) -> None:
    """Write a model with the original outputs plus derivative outputs (by default one gradient grad_<NAME> per --wrt)."""
    from irflow.autodiff import vjp

    model_kind(output)  # an unknown format or an unwritable path fails before any work
    check_output(output)
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
    if mode is Mode.vjp:
        grad_graph = _keep_output_names(vjp(graph, list(wrt), outputs=[loss], seed="ones"), graph.output_names)
        names = ", ".join(f"grad_{n}" for n in wrt)
    else:
        grad_graph = forward_mode(graph, loss, list(wrt), mode.value)
        names = f"jvp_{loss}" if mode is Mode.jvp else ", ".join(f"hvp_{n}" for n in wrt)
    save_model(grad_graph, output)
    console.print(f"wrote {output}: outputs {', '.join(graph.output_names)} and {names}")
