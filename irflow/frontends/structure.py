"""Argument structures as hashable trees: ``flatten`` / ``unflatten`` of nested tuples, lists,
dicts, namedtuples and registered types (``register_structure``: irf.ragged registers
RaggedTensor). Shared by ``irf.function`` (trace.py), the control-flow functions and
``irf.static``; it imports nothing from irflow, so they all import it without a cycle.

>>> leaves = []; tree = flatten({"a": (1, 2)}, leaves); leaves, unflatten(tree, iter(leaves))
([1, 2], {'a': (1, 2)})
"""
from __future__ import annotations

from typing import Any, Callable, Sequence


# -- argument structures (hashable trees) -------------------------------------------------------
class _Registered:
    """Tree tag of a type registered with ``register_structure``."""


# type -> (parts of an instance, rebuild from parts); irf.ragged registers RaggedTensor here
_STRUCTURES: dict[type, tuple[Callable[[Any], Sequence[Any]], Callable[[list], Any]]] = {}
_CONTAINERS: tuple = (tuple, list, dict)


_PART_NAMES: dict[type, tuple[str, ...]] = {}  # graph input names of a registered argument's parts


def register_structure(cls: type, parts: Callable[[Any], Sequence[Any]], rebuild: Callable[[list], Any],
                       part_names: Sequence[str] | None = None) -> None:
    """Let arguments and results of type ``cls`` flatten into ``parts(x)`` (tensors or nested
    structures) and be rebuilt by ``rebuild(list of parts)``: a RaggedTensor argument becomes two
    graph inputs (values, row_splits) and the traced body receives a RaggedTensor of them.
    ``part_names`` name the graph inputs of an argument ``x``: ``x_values``, ``x_row_splits``."""
    global _CONTAINERS
    _STRUCTURES[cls] = (parts, rebuild)
    if part_names is not None:
        _PART_NAMES[cls] = tuple(part_names)
    _CONTAINERS = (tuple, list, dict, *_STRUCTURES)


def flatten(x: Any, leaves: list) -> Any:
    """Append the leaves of ``x`` (lists, tuples, dicts nest) to ``leaves``; return a hashable tree."""
    t = type(x)
    if t is tuple or t is list or (isinstance(x, tuple) and hasattr(x, "_fields")):
        return (t, tuple(flatten(v, leaves) for v in x))
    if t is dict:
        return (dict, tuple(x), tuple(flatten(v, leaves) for v in x.values()))
    if t in _STRUCTURES:
        return (_Registered, t, tuple(flatten(v, leaves) for v in _STRUCTURES[t][0](x)))
    leaves.append(x)
    return None


def unflatten(tree: Any, it: Any) -> Any:
    """Rebuild the structure ``tree`` from the iterator of leaves ``it``."""
    if tree is None:
        return next(it)
    if tree[0] is dict:
        return {k: unflatten(t, it) for k, t in zip(tree[1], tree[2])}
    if tree[0] is _Registered:
        return _STRUCTURES[tree[1]][1]([unflatten(t, it) for t in tree[2]])
    vals = [unflatten(t, it) for t in tree[1]]
    typ = tree[0]
    return typ(vals) if typ in (list, tuple) else typ(*vals)  # namedtuples take positional args
