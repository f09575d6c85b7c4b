"""NumPy kernels of the special ops: stop_gradient, call, custom_call.

``call`` runs its graph with the reference Interpreter, built once per graph object.
"""
from __future__ import annotations

from typing import Any

from irflow.executors.numpy.kernels import kernel

# Interpreter per graph object (keyed by id; the graph is kept alive by the entry itself).
_INTERPRETERS: dict[int, tuple[Any, Any]] = {}
# The Interpreter class, handed over by irflow/executors/numpy/interpreter.py when it is
# defined: the interpreter imports the kernels, so the kernels do not import it back.
_interpreter_class: Any = None


def set_interpreter_class(cls: Any) -> None:
    """Tell the nested-graph kernels (call, cond, scan, while_loop) which Interpreter runs bodies."""
    global _interpreter_class
    _interpreter_class = cls


def interpreter_for(graph) -> Any:
    """The cached Interpreter of ``graph``."""
    hit = _INTERPRETERS.get(id(graph))
    if hit is not None and hit[0] is graph:
        return hit[1]
    # Set by then: importing anything under irflow.executors.numpy runs its __init__, which
    # imports the interpreter.
    interp = _interpreter_class(graph)
    if len(_INTERPRETERS) > 512:
        _INTERPRETERS.clear()
    _INTERPRETERS[id(graph)] = (graph, interp)
    return interp


def run_graph(graph, arrays: tuple) -> Any:
    """Run ``graph`` on positional ``arrays``: one array, or a tuple for several outputs."""
    outs = interpreter_for(graph).run(dict(zip(graph.input_names, arrays)), check=False)
    names = graph.output_names
    if len(names) == 1:
        return outs[names[0]]
    return tuple(outs[n] for n in names)


@kernel("stop_gradient")
def stop_gradient(x):
    return x


@kernel("call")
def call(*arrays, graph):
    return run_graph(graph, arrays)


@kernel("custom_call")
def custom_call(*arrays, fwd, bwd):
    return run_graph(fwd, arrays)


@kernel("check_numerics")
def check_numerics(x, *, message):
    """``x`` itself, or NumericsError when it holds NaN or Inf (NaN is reported first)."""
    import numpy as np

    if not np.isfinite(x).all():
        from irflow.errors import NumericsError

        raise NumericsError(numerics_message(message, "NaN" if np.isnan(x).any() else "Inf"))
    return x


def numerics_message(message: str, kind: str) -> str:
    """The text of a failed ``check_numerics`` (shared with the onnxruntime runner)."""
    return f"check_numerics: {message}: the tensor had {kind} values"
