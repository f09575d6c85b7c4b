"""Elements of a dataset: nested tuples and dicts of NumPy arrays.

As in ``tf.data``, a tuple (or namedtuple) and a dict are structure; everything else is a
component (a leaf). A Python list is data, not structure: ``from_tensor_slices([1, 2, 3])``
is one component of three elements, as in TensorFlow.

Inside a pipeline components are NumPy arrays (cheap to stack and slice); at the iterator's
boundary they become ``irf.Tensor`` (``for x, y in ds``) or stay NumPy (``as_numpy_iterator``).
Strings stay NumPy arrays of str: irflow tensors have no string dtype.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from irflow.errors import DTypeError, IrflowError
from irflow.frontends.eager import Tensor, _wrap
from irflow.frontends.variables import Variable


def is_structure(x: Any) -> bool:
    return isinstance(x, (tuple, dict))


def flatten(x: Any) -> list:
    """The components of ``x`` in order (tuples by position, dicts by insertion order)."""
    if isinstance(x, tuple):
        out: list = []
        for v in x:
            out.extend(flatten(v)) if isinstance(v, (tuple, dict)) else out.append(v)
        return out
    if isinstance(x, dict):
        out = []
        for v in x.values():
            out.extend(flatten(v)) if isinstance(v, (tuple, dict)) else out.append(v)
        return out
    return [x]


def map_structure(fn: Callable[[Any], Any], x: Any) -> Any:
    """``x`` with ``fn`` applied to every component (namedtuples keep their type)."""
    if isinstance(x, tuple):
        vals = [map_structure(fn, v) for v in x]
        return type(x)(*vals) if hasattr(x, "_fields") else tuple(vals)
    if isinstance(x, dict):
        return type(x)((k, map_structure(fn, v)) for k, v in x.items())
    return fn(x)


def unflatten_like(like: Any, leaves: list) -> Any:
    """The structure of ``like`` around ``leaves`` (in ``flatten`` order)."""
    it = iter(leaves)
    return map_structure(lambda _: next(it), like)


def same_structure(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(same_structure(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same_structure(a[k], b[k]) for k in a)
    return not isinstance(b, (tuple, dict))


def to_array(x: Any, where: str) -> Any:
    """One component as a NumPy array, by irflow's rules: arrays keep their dtype, Python
    floats (and lists of them) become float32, ints int64 (as ``irf.tensor``)."""
    t = type(x)
    if t is np.ndarray:
        return x
    if t is Tensor or isinstance(x, Variable):
        return x._value
    if isinstance(x, np.generic):
        return np.asarray(x)
    if _is_ragged(x):
        return x
    if hasattr(x, "__irflow_symbolic__") and not hasattr(x, "_value"):
        raise IrflowError(f"{where}: got a symbolic tensor {x!r}; a dataset holds concrete values")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise IrflowError(f"{where}: cannot make an array of {type(x).__name__}: {e}") from None
    if arr.dtype.kind in "USO":
        if arr.dtype.kind == "O":
            raise DTypeError(f"{where}: {type(x).__name__} gives an object array; rows of different lengths "
                             "need irf.ragged.constant or Dataset.from_generator")
        return arr
    return Tensor(x)._value  # Python floats -> float32, ints -> int64, bools -> bool


def _is_ragged(x: Any) -> bool:
    return getattr(x, "_irflow_ragged", False)


def wrap(arr: Any) -> Any:
    """A NumPy component as what the iterator yields: an irf.Tensor (strings stay NumPy)."""
    t = type(arr)
    if t is np.ndarray or isinstance(arr, np.generic):
        if arr.dtype.kind in "USO":
            return arr
        return _wrap(arr) if t is np.ndarray else _wrap(np.asarray(arr))
    return arr


def wrap_element(element: Any) -> Any:
    if type(element) is np.ndarray or isinstance(element, np.generic):
        return wrap(element)
    return map_structure(wrap, element)


def to_numpy_element(element: Any, where: str) -> Any:
    if type(element) is np.ndarray:
        return element
    return map_structure(lambda c: to_array(c, where), element)


def call_with_element(fn: Callable, element: Any) -> Any:
    """``fn(*element)`` for a tuple element (as ``tf.data`` unpacks it), ``fn(element)`` otherwise;
    components are passed as irf.Tensors so irf ops and NumPy both take them."""
    wrapped = wrap_element(element)
    if isinstance(wrapped, tuple) and not hasattr(wrapped, "_fields"):
        return fn(*wrapped)
    return fn(wrapped)


def describe(element: Any) -> str:
    """A short description of an element's structure, shapes and dtypes (for error messages)."""
    def one(c):
        if _is_ragged(c):
            return f"RaggedTensor{tuple(c.shape)}"
        return f"{c.dtype}{tuple(c.shape)}" if hasattr(c, "shape") else type(c).__name__
    if isinstance(element, (tuple, dict)):
        return str(map_structure(one, element))
    return one(element)
