"""Value, Node and Graph: the IR itself. Pydantic models, frozen, tuple-typed.

A Graph is SSA: each value name is defined once, by a graph input, an initializer or one
node output, and nodes are kept in topological order. Passes build new graphs rather than
editing old ones.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, PlainValidator, ValidationError

from irflow.errors import IrflowError, IRValidationError
from irflow.ir.dtypes import dtype_of_array
from irflow.ir import serialize
from irflow.ir.serialize import decode_array, decode_attrs, encode_array, encode_attrs
from irflow.ir.types import TensorType

Array = Annotated[np.ndarray, PlainValidator(lambda v: decode_array(v)), PlainSerializer(encode_array)]
Attrs = Annotated[dict[str, Any], BeforeValidator(decode_attrs), PlainSerializer(encode_attrs)]


class Value(BaseModel):
    """A named, typed SSA value: ``Value(name="x", type=TensorType(dtype="float32", shape=(2,)))``."""

    model_config = ConfigDict(frozen=True)
    name: str
    type: TensorType

    def __str__(self) -> str:
        return f"%{self.name}: {self.type}"


class Node(BaseModel):
    """One op application.

    - ``op``: a name in the op registry (``irflow.ops.REGISTRY``), such as ``"matmul"``.
    - ``inputs``: names of the values it reads; ``""`` marks an omitted optional input.
    - ``outputs``: the values it defines, with their types (each name new in the graph).
    - ``attrs``: plain data (ints, floats, strings, bools, dtypes, tuples of those, arrays)
      and, for control flow, nested Graphs.
    - ``name``: a readable name used in error messages; unique in the graph.
    """

    model_config = ConfigDict(frozen=True)
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[Value, ...]
    attrs: Attrs = {}
    name: str = ""

    def __str__(self) -> str:
        outs = ", ".join(str(v) for v in self.outputs)
        ins = ", ".join(f"%{i}" if i else "_" for i in self.inputs)
        attrs = "".join(f", {k}={_short(v)}" for k, v in self.attrs.items())
        return f"{outs} = {self.op}({ins}{attrs})"


def _short(v: Any) -> str:
    if isinstance(v, Graph):
        return f"<graph {v.name}>"
    if isinstance(v, np.ndarray):
        return f"<array {v.dtype}{list(v.shape)}>"
    return repr(v.value if hasattr(v, "value") and not isinstance(v, (int, float, str)) else v)


class Graph(BaseModel):
    """A function: typed inputs, nodes in topological order, initializers, typed outputs.

    >>> from irflow.ops import GraphBuilder
    >>> b = GraphBuilder("g"); x = b.input("x", "float32", ("batch", 4))
    >>> b.output(b.op("relu", x)); g = b.build(); print(g)   # doctest: +SKIP
    """

    model_config = ConfigDict(frozen=True)
    name: str
    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]
    nodes: tuple[Node, ...]
    initializers: dict[str, Array] = {}
    opset_version: int = 1

    # -- queries -------------------------------------------------------------------------
    def value_types(self) -> dict[str, TensorType]:
        """Every value's type, by name: inputs, initializers and node outputs."""
        types = {v.name: v.type for v in self.inputs}
        for name, arr in self.initializers.items():
            types[name] = TensorType(dtype=dtype_of_array(arr), shape=arr.shape)
        for node in self.nodes:
            for v in node.outputs:
                types[v.name] = v.type
        return types

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.outputs)

    def verify(self) -> "Graph":
        """Check SSA, order, arity, attrs and types; raise IRValidationError naming the node.

        Returns the graph so calls chain: ``g = builder.build().verify()``.
        """
        if _verifier is None:
            raise IrflowError("Graph.verify: no verifier registered (irflow/ir/__init__.py imports irflow.ir.verify)")
        _verifier(self)
        return self

    # -- text and files ------------------------------------------------------------------
    def __str__(self) -> str:
        lines = [f"graph {self.name}({', '.join(str(v) for v in self.inputs)}) {{"]
        for name, arr in self.initializers.items():
            lines.append(f"  %{name}: {dtype_of_array(arr).value}{list(arr.shape)} = initializer")
        lines += [f"  {node}" for node in self.nodes]
        lines.append(f"  return {', '.join('%' + v.name for v in self.outputs)}")
        lines.append("}")
        return "\n".join(lines)

    def _repr_svg_(self) -> str | None:
        """A notebook's picture of the graph (graphviz's `dot` needed; None falls back to text)."""
        from irflow.ir.dot import notebook_svg

        return notebook_svg(self)

    def _repr_html_(self) -> str:
        """The picture when graphviz is installed, else the text form (``str(graph)``)."""
        from irflow.ir.dot import notebook_html

        return notebook_html(self)

    def __eq__(self, other: object) -> bool:
        # Arrays make field-wise equality ambiguous; the lossless JSON form is the identity.
        return isinstance(other, Graph) and self.model_dump_json() == other.model_dump_json()

    __hash__ = None  # type: ignore[assignment]

    def save(self, path: str | Path) -> None:
        """Write the graph as JSON (``*.irflow.json``); ``irflow.ir.load`` reads it back bit-exactly.

        The write is atomic (``irflow.atomic``): a failure midway leaves an existing file as it
        was. A path that cannot be written raises ``IrflowError`` before the graph is encoded.

        >>> g.save("model.irflow.json")   # doctest: +SKIP
        """
        from irflow.atomic import check_output_path, write_text

        check_output_path(path)
        write_text(path, self.model_dump_json())



# Nested graphs in attrs (control-flow bodies) are encoded and decoded as this class.
serialize.register_graph_class(Graph)
# Set by irflow/ir/verify.py when it is imported (irflow/ir/__init__.py imports it): the
# verifier reads graphs, so graph.py does not import it back.
_verifier: Callable[[Graph], None] | None = None


def register_verifier(fn: Callable[[Graph], None]) -> None:
    """Install the function ``Graph.verify`` calls (``irflow.ir.verify.verify_graph``)."""
    global _verifier
    _verifier = fn


def load(path: str | Path) -> Graph:
    """Read a graph written by ``Graph.save``.

    >>> g = load("model.irflow.json")   # doctest: +SKIP
    """
    p = Path(path)
    if not p.is_file():
        raise IrflowError(f"no such file: {p}")
    try:
        return Graph.model_validate_json(p.read_bytes())
    except ValidationError as e:
        raise IRValidationError(f"{p} is not a valid irflow graph: {describe_validation_error(e)}") from None
    except ValueError as e:  # defensive: any other ValueError from a validator
        raise IRValidationError(f"{p} is not a valid irflow graph: {' '.join(str(e).split())[:300]}") from None
    except RecursionError:
        raise IRValidationError(f"{p} is not a valid irflow graph: nested too deeply") from None


def describe_validation_error(e: ValidationError) -> str:
    """The first problem pydantic found, as ``field a.b.0.c: message``, plus how many more."""
    errors = e.errors(include_url=False, include_input=False)
    if not errors:
        return str(e)
    first = errors[0]
    loc = ".".join(str(part) for part in first.get("loc", ())) or "(top level)"
    msg = str(first.get("msg", "")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"field {loc}: {msg}{more}"
