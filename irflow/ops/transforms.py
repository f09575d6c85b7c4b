"""The graph transforms that nested-graph ops' rules call, looked up instead of imported.

The VJP and batching rules of ``cond``, ``scan``, ``while_loop``, ``call`` and ``custom_call``
(in ``ops/control.py`` and ``ops/special.py``, beside each op) transform their nested graphs:
they replay and differentiate them (``autodiff.vjp``), prune them (``passes.prune``) and batch
them (``autodiff.vmap_transform``). Those modules sit above ``irflow.ops``, so the rules look
the functions up in ``GRAPH_TRANSFORMS``, which the modules fill when they are imported:
``replay``, ``backward``, ``vjp`` (``irflow.autodiff.vjp``), ``prune`` (``irflow.passes.prune``),
``batch_graph``, ``batch_nodes`` (``irflow.autodiff.vmap_transform``). A VJP rule runs only inside
``autodiff.vjp.backward`` and a batching rule only inside ``vmap_transform``, so the table is
filled by the time any rule needs it.

>>> import irflow.autodiff  # fills the table
>>> graph_transform("prune").__name__
'prune'
"""
from __future__ import annotations

from typing import Callable

from irflow.errors import IrflowError

GRAPH_TRANSFORMS: dict[str, Callable] = {}


def register_graph_transform(name: str, fn: Callable) -> None:
    """Make ``fn`` the graph transform ``name`` for the rules in ``irflow.ops`` (called by
    ``irflow.autodiff`` and ``irflow.passes`` modules at import).

    >>> from irflow.passes.prune import prune
    >>> register_graph_transform("prune", prune)
    """
    GRAPH_TRANSFORMS[name] = fn


def graph_transform(name: str) -> Callable:
    """The registered graph transform ``name``; an IrflowError naming the module to import if
    nothing registered it (a rule called outside autodiff / vmap).

    >>> import irflow.autodiff.vmap_transform
    >>> callable(graph_transform("batch_graph"))
    True
    """
    try:
        return GRAPH_TRANSFORMS[name]
    except KeyError:
        owner = {"prune": "irflow.passes.prune", "batch_graph": "irflow.autodiff.vmap_transform",
                 "batch_nodes": "irflow.autodiff.vmap_transform"}.get(
            name, "irflow.autodiff.vjp")
        raise IrflowError(f"the graph transform {name!r} that a nested-graph op's VJP or batching rule needs "
                          f"is not registered: import {owner} first (the rule ran outside autodiff / vmap)") from None


__all__ = ["GRAPH_TRANSFORMS", "register_graph_transform", "graph_transform"]
