"""Flattening the containers gradient functions accept (tensor, list, tuple, dict, nested).

``flatten(x)`` gives the leaves in order and a tree; ``unflatten(tree, leaves)`` rebuilds
the same container around new leaves, so ``tape.gradient(y, {"w": w, "b": b})`` returns a dict.
"""
from __future__ import annotations

from typing import Any


def is_symbolic(x: Any) -> bool:
    """True for a SymbolicTensor (a value of a graph being built)."""
    from irflow.ops.builder import SymbolicTensor

    return isinstance(x, SymbolicTensor)


def flatten(x: Any) -> tuple[list, Any]:
    """Leaves of ``x`` (anything that is not a list, tuple or dict is a leaf) and its tree.

    >>> flatten({"a": 1, "b": [2, 3]})[0]
    [1, 2, 3]
    """
    leaves: list = []
    tree = _flatten(x, leaves)
    return leaves, tree


def _flatten(x: Any, leaves: list) -> Any:
    if isinstance(x, dict):
        return ("dict", type(x), [(k, _flatten(v, leaves)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return ("seq", type(x), [_flatten(v, leaves) for v in x])
    leaves.append(x)
    return None


def unflatten(tree: Any, leaves: list) -> Any:
    """Rebuild the container ``tree`` describes around ``leaves`` (in order)."""
    it = iter(leaves)
    return _unflatten(tree, it)


def _unflatten(tree: Any, it) -> Any:
    if tree is None:
        return next(it)
    kind, typ, items = tree
    if kind == "dict":
        return typ((k, _unflatten(t, it)) for k, t in items)
    vals = [_unflatten(t, it) for t in items]
    return typ(vals) if typ in (list, tuple) else typ(*vals)  # namedtuples take positional args
