"""Eager code as IR: record what eager ops ran and turn the record into a Graph.

While a ``GraphRecorder`` is active the eager handler hands it each op call (the same light
hook a GradientTape uses: op, inputs, result, attrs; no IR objects). ``to_graph`` replays the
record into a builder with the same rules as tracing (Variables become inputs, other
tensors and Python scalars constants), so eager code gives the same IR as the same code
traced with ``irf.function`` or built in a Program.

>>> x = irf.tensor(np.ones((2, 3), "float32"))
>>> with GraphRecorder() as rec:
...     y = irf.relu(x) * 2.0
>>> print(rec.to_graph(inputs={"x": x}, outputs=[y]))        # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from irflow.errors import IrflowError
from irflow.frontends.eager import RECORDERS
from irflow.frontends.variables import StateBuilder
from irflow.ir.dtypes import dtype_of_array
from irflow.ir.graph import Graph


class GraphRecorder:
    """Records eager op calls; ``to_graph(inputs, outputs)`` makes them a Graph."""

    def __init__(self, name: str = "eager"):
        self.name = name
        self.records: list[tuple[str, tuple, Any, dict]] = []

    def record(self, op: str, inputs: tuple, result: Any, attrs: dict) -> None:
        self.records.append((op, inputs, result, attrs))

    def __enter__(self) -> "GraphRecorder":
        RECORDERS.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        RECORDERS.remove(self)

    def to_graph(self, inputs: Mapping[str, Any], outputs: Sequence[Any]) -> Graph:
        """The recorded ops from ``inputs`` (name -> eager Tensor) to ``outputs`` as a Graph.

        Graph inputs: ``inputs`` in order, then one per Variable read (first-read order), as
        in a trace. Tensors that are neither inputs nor results of recorded ops are constants.
        """
        b = StateBuilder(self.name)
        env: dict[int, Any] = {}
        for name, t in inputs.items():
            arr = t.numpy()
            env[id(t)] = b.input(name, dtype_of_array(arr), arr.shape)
        for op, ins, result, attrs in self.records:
            mapped = tuple(env.get(id(x), x) for x in ins)
            out = b.apply(op, mapped, dict(attrs))
            if isinstance(result, tuple):
                for r, s in zip(result, out if isinstance(out, tuple) else (out,)):
                    env[id(r)] = s
            else:
                env[id(result)] = out
        for t in outputs:
            if id(t) not in env:
                raise IrflowError(f"GraphRecorder: output {t!r} was not computed by a recorded op")
            b.output(env[id(t)])
        return b.build()
