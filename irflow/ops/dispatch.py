"""The one dispatch point: ``bind(op, *inputs, **attrs)``.

While a GraphBuilder is active (a trace, a Program, an autodiff pass) every op call adds a
node to it and runs the op's type rule at once, so a shape error points at the user's line.
Otherwise the op runs eagerly through the handler the eager frontend installs; that path
builds no IR objects at all.
"""
from __future__ import annotations

from typing import Any, Callable

from irflow.errors import IrflowError

# The active builders, innermost last. Pushed and popped by GraphBuilder.__enter__/__exit__.
BUILDER_STACK: list = []

# Installed by irflow.frontends.eager: eager_handler(op, inputs, attrs) -> Tensor | tuple.
_eager_handler: Callable[[str, tuple, dict], Any] | None = None


def set_eager_handler(handler: Callable[[str, tuple, dict], Any]) -> None:
    global _eager_handler
    _eager_handler = handler


def bind(op: str, *inputs: Any, **attrs: Any) -> Any:
    """Apply ``op`` to ``inputs``: add a node to the active builder, or run it eagerly.

    >>> import irflow as irf, numpy as np
    >>> bind("add", irf.tensor(np.ones(2, "float32")), 1.0)   # doctest: +SKIP
    """
    if BUILDER_STACK:
        return BUILDER_STACK[-1].apply(op, inputs, attrs)
    if _eager_handler is None:
        raise IrflowError("no eager handler installed: import irflow, not irflow.ops alone")
    return _eager_handler(op, inputs, attrs)
