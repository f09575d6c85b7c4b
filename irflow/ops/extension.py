"""Types from above the op set that some op functions accept.

``irflow.ragged`` registers ``RaggedTensor`` here so that TensorFlow's spellings
``irf.gather(table, ragged_ids)`` and ``irf.reduce_mean(ragged, axis=1)`` work, without the op
set importing ``irflow.ragged`` (which sits above it). The check in an op function is one
dict lookup by type (``type(x) in HANDLERS``), nothing on the eager hot path beyond that.
"""
from __future__ import annotations

from typing import Any, Callable

HANDLERS: dict[type, dict[str, Callable[..., Any]]] = {}


def register(cls: type, name: str, fn: Callable[..., Any]) -> None:
    """Let the op function ``name`` hand arguments of type ``cls`` to ``fn``."""
    HANDLERS.setdefault(cls, {})[name] = fn


def handler(x: Any, name: str) -> Callable[..., Any]:
    """The function registered for ``type(x)`` and ``name`` (callers checked ``type(x) in HANDLERS``)."""
    table = HANDLERS[type(x)]
    if name not in table:
        from irflow.errors import IrflowError

        raise IrflowError(f"irf.{name} does not take a {type(x).__name__} (it supports: {', '.join(sorted(table))})")
    return table[name]
