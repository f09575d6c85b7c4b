"""``irf.custom_gradient``: a function with its own gradient, kept in the IR.

TF style: the decorated function returns ``(y, grad_fn)`` where ``grad_fn(dy)`` returns one
gradient per input. On each new input signature (dtypes and shapes) the function is traced
once into two graphs: ``fwd`` (inputs -> y) and ``bwd`` (inputs, dy -> gradients; whatever
``grad_fn`` uses of the forward pass is recomputed there from the inputs). A call then binds
ONE op, ``custom_call(*inputs, fwd=fwd, bwd=bwd)``: eagerly it runs ``fwd`` (and a tape
records it as one node), in a trace it is a node of the graph. Its VJP rule emits
``call(*inputs, *dy, graph=bwd)``, so the custom gradient exports to ONNX like any gradient and
second derivatives differentiate ``bwd`` with the ordinary rules (as TF does).

Gradients flow to the positional tensor arguments only; a tensor the function closes over is a
constant of its graphs.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from irflow.errors import IrflowError
from irflow.ir.dtypes import as_dtype
from irflow.ir.graph import Graph
from irflow.ops.builder import GraphBuilder
from irflow.ops.dispatch import bind
from irflow.passes.prune import prune


def _signature(x: Any) -> tuple:
    if hasattr(x, "type") and hasattr(x, "builder"):
        return (x.type.dtype.value, tuple(x.type.shape))
    arr = x._eager_value() if hasattr(x, "_eager_value") else (x.numpy() if hasattr(x, "numpy") else np.asarray(x))
    return (str(arr.dtype), tuple(arr.shape))


class _CustomGradientBuilder(GraphBuilder):
    """The builder a custom_gradient function is traced in: reading a Variable is an error,
    since its value would be frozen into the cached graphs."""

    def read_variable(self, var: Any) -> Any:
        raise IrflowError(
            f"custom_gradient: {self.name} reads Variable {getattr(var, 'name', '?')!r}; its value would be "
            "frozen into the traced graphs. Pass it as an argument (gradients flow to arguments only)"
        )


def _trace(fn: Callable, name: str, sig: tuple) -> tuple[Graph, Graph]:
    b = _CustomGradientBuilder(name)
    xs = [b.input(f"x{i}", as_dtype(d), s) for i, (d, s) in enumerate(sig)]
    with b:
        result = fn(*xs)
        if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
            raise IrflowError(f"custom_gradient: {name} must return (output, grad_fn)")
        y, grad_fn = result
        ys = list(y) if isinstance(y, (list, tuple)) else [y]
        ys = [b.to_symbolic(v, None) for v in ys]
        b.output(*ys)
        fwd = prune(b.build())
        b.outputs = []
        cts = [b.input(f"d{k}", v.type.dtype, v.type.shape) for k, v in enumerate(ys) if v.type.dtype.is_float]
        grads = grad_fn(*cts)
        grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
        if len(grads) != len(xs):
            raise IrflowError(f"custom_gradient: grad_fn of {name} returned {len(grads)} gradient(s) for {len(xs)} input(s)")
        for x, g in zip(xs, grads):
            g = bind("zeros_like", x) if g is None else b.to_symbolic(g, x.type.dtype)
            if g.type.dtype != x.type.dtype:
                raise IrflowError(f"custom_gradient: grad_fn of {name} returned {g.type} for input {x.type}")
            b.output(g)
    bwd = prune(b.build())
    return fwd, Graph(name=f"{name}_bwd", inputs=bwd.inputs, outputs=bwd.outputs, nodes=bwd.nodes,
                      initializers=bwd.initializers)


def custom_gradient(fn: Callable) -> Callable:
    """Decorate ``fn(*xs) -> (y, grad_fn)`` so its gradient is ``grad_fn(dy)`` (TF style).

    >>> @irf.custom_gradient
    ... def log1pexp(x):
    ...     def grad_fn(dy):
    ...         return dy * irf.sigmoid(x)      # stable where exp(x) overflows
    ...     return irf.softplus(x), grad_fn     # doctest: +SKIP
    """
    cache: dict[tuple, tuple[Graph, Graph]] = {}

    @functools.wraps(fn)
    def wrapped(*args: Any) -> Any:
        from irflow.autodiff.tape import Tensor  # the tape is autodiff's one link to the eager frontend

        # Python numbers become tensors as irf.tensor makes them (floats: float32).
        args = tuple(Tensor(a) if isinstance(a, (bool, int, float)) else a for a in args)
        sig = tuple(_signature(a) for a in args)
        graphs = cache.get(sig)
        if graphs is None:
            graphs = cache[sig] = _trace(fn, getattr(fn, "__name__", "custom"), sig)
        fwd, bwd = graphs
        return bind("custom_call", *args, fwd=fwd, bwd=bwd)

    return wrapped
