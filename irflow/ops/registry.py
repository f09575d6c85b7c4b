"""The op registry: one OpDef per op name.

An OpDef holds what the IR needs to know of an op: its arity, its attribute schema, its
type rule, and its VJP rule (or ``differentiable=False``). Kernels and ONNX lowerings live in
the executors and are registered there by op name, so this module imports no executor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from irflow.errors import DTypeError, UnsupportedOpError
from irflow.ir.dtypes import STORAGE_DTYPES, DType, as_dtype
from irflow.ir.types import TensorType


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# Attr kinds, as checked by the verifier. "ints" is a tuple of ints, and so on.
ATTR_KINDS = ("int", "float", "bool", "str", "dtype", "ints", "floats", "strs", "array", "graph", "any")


@dataclass(frozen=True, slots=True)
class Attr:
    """An attribute's kind and default (``REQUIRED`` when it has none). ``optional`` admits None."""

    kind: str
    default: Any = REQUIRED
    optional: bool = False


# A type rule takes the input types (None for an omitted optional input) and the attrs,
# and returns the output type, or a tuple of them for multi-output ops.
TypeRule = Callable[..., "TensorType | tuple[TensorType, ...]"]

# A VJP rule: rule(g, *inputs, out=..., **attrs) -> one gradient per input (None: no gradient).
# g and out are tuples for multi-output ops. Inputs, g and out are symbolic tensors, and the
# rule computes with ordinary irf ops, so gradients are IR too.
VJPRule = Callable[..., Any]

# A batching rule (vectorization, ``irf.vmap``): rule(inputs, dims, size, **attrs) ->
# (outputs, out_dims). ``inputs`` are symbolic tensors (None for an omitted optional input),
# ``dims`` one int (the batch axis of that input) or None (not batched) per input, ``size``
# the batch size (an int, a symbol or None). The rule emits IR with ordinary ops / ``bind``
# and returns the op's output(s) (a tensor, or a tuple for multi-output ops) and the batch
# axis of each (int, or None for an output that does not depend on the batch). The helpers
# are in ``irflow.ops.batching``; see docs/vectorization.md.
BatchRule = Callable[..., Any]


class _Loop:
    """The batching rule of an op that cannot be vectorized: a ``scan`` over the batch."""

    def __repr__(self) -> str:
        return "LOOP"


LOOP: Any = _Loop()


@dataclass(slots=True)
class OpDef:
    """Everything the IR knows about one op."""

    name: str
    type_rule: TypeRule
    min_inputs: int
    max_inputs: int | None  # None: variadic
    attrs: dict[str, Attr] = field(default_factory=dict)
    vjp: VJPRule | None = None
    differentiable: bool = True
    family: str = ""
    doc: str = ""
    batch: BatchRule | None = None  # None: no rule yet (vmap loops with a scan); LOOP: declared so
    storage: bool = False  # takes and makes storage-only dtypes (float8, int4, ...): it moves or converts

    def infer_type(self, input_types: tuple, attrs: dict) -> tuple[TensorType, ...]:
        if not self.storage:
            for t in input_types:
                if t is not None and t.dtype in STORAGE_DTYPES:
                    raise storage_dtype_error(self.name, t.dtype)
        out = self.type_rule(*input_types, **attrs)
        out = out if isinstance(out, tuple) else (out,)
        if not self.storage:
            for t in out:
                if t.dtype in STORAGE_DTYPES:
                    raise storage_dtype_error(self.name, t.dtype)
        return out

    def fill_attrs(self, attrs: dict, where: str) -> dict:
        """Check attr names and fill defaults; raise IRValidationError naming ``where``."""
        from irflow.errors import IRValidationError

        for k in attrs:
            if k not in self.attrs:
                known = ", ".join(self.attrs) or "none"
                raise IRValidationError(f"{where}: op '{self.name}' has no attribute '{k}' (known: {known})")
        full = {}
        for k, spec in self.attrs.items():
            if k in attrs:
                full[k] = _normalize_attr(spec.kind, attrs[k])
            elif spec.default is REQUIRED:
                raise IRValidationError(f"{where}: op '{self.name}' needs attribute '{k}'")
            else:
                full[k] = spec.default
        return full


def storage_dtype_error(op: str, dtype: DType) -> DTypeError:
    return DTypeError(
        f"{op} does not compute on {dtype.value}: it is a storage-only dtype (held, moved, cast and "
        f"bit_cast, nothing else); cast it to a float or int dtype first (irf.cast)"
    )


def _normalize_attr(kind: str, value: Any) -> Any:
    """Plain, canonical attr values: dtype names become DTypes, lists become tuples, NumPy
    scalars become Python numbers. Values of the wrong kind pass through for the verifier
    (or the type rule) to reject with the node's name."""
    if kind == "dtype" and value is not None and not isinstance(value, DType):
        try:
            return as_dtype(value)
        except DTypeError:
            return value  # the verifier names the node and the bad value
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, tuple):
        return tuple(v.item() if isinstance(v, np.generic) else v for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


REGISTRY: dict[str, OpDef] = {}


def defop(
    name: str,
    type_rule: TypeRule,
    *,
    inputs: int | tuple[int, int | None] = 1,
    attrs: dict[str, Attr] | None = None,
    differentiable: bool = True,
    family: str = "",
    doc: str = "",
    storage: bool = False,
) -> OpDef:
    """Declare an op. ``inputs`` is an exact count or a (min, max) range, max None = variadic.
    ``storage=True``: the op only moves or converts values, so it may take and make the
    storage-only dtypes (float8, int4, ...); any other op raises a DTypeError naming itself."""
    if name in REGISTRY:
        raise ValueError(f"op {name!r} is declared twice")
    lo, hi = (inputs, inputs) if isinstance(inputs, int) else inputs
    op = OpDef(name, type_rule, lo, hi, dict(attrs or {}), None, differentiable, family, doc, storage=storage)
    REGISTRY[name] = op
    return op


def defvjp(name: str, rule: VJPRule | None = None) -> Any:
    """Attach a VJP rule to a declared op: ``defvjp("exp", rule)`` or ``@defvjp("exp")``."""
    if rule is None:
        return lambda fn: defvjp(name, fn)
    get_op(name).vjp = rule
    return rule


def defbatch(name: str, rule: BatchRule | None = None) -> Any:
    """Attach a batching rule to a declared op: ``defbatch("exp", rule)`` or ``@defbatch("exp")``.

    ``defbatch(name, LOOP)`` declares that no vectorized rule exists: ``vmap`` then runs the op
    in a ``scan`` over the batch (in the IR, not in Python), which is also what happens to an op
    with no rule at all.
    """
    if rule is None:
        return lambda fn: defbatch(name, fn)
    get_op(name).batch = rule
    return rule


def get_op(name: str, where: str = "") -> OpDef:
    """The OpDef of ``name``, or UnsupportedOpError listing the known ops."""
    try:
        return REGISTRY[name]
    except KeyError:
        at = f" (at {where})" if where else ""
        raise UnsupportedOpError(
            f"unknown op '{name}'{at}; known ops: {', '.join(sorted(REGISTRY))}"
        ) from None
