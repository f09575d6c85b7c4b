"""Lossless JSON encodings for the two things JSON cannot hold as they are: arrays and attrs.

Arrays are stored as raw little-endian bytes in base64 (so NaN payloads, -0.0 and bfloat16
survive); float attrs as ``float.hex`` strings for the same reason. No pickle anywhere.
"""
from __future__ import annotations

import base64
from typing import Any

import numpy as np

from irflow.errors import IrflowError, IRValidationError
from irflow.ir.dtypes import DType, as_dtype, dtype_of_array


def encode_array(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a).reshape(np.shape(a))  # ascontiguousarray makes 0-d arrays 1-d
    dtype = dtype_of_array(a)
    data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"dtype": dtype.value, "shape": list(a.shape), "data": base64.b64encode(data).decode("ascii")}


def decode_array(obj: Any, where: str = "encoded array") -> np.ndarray:
    """An array from its JSON form, checked field by field.

    The declared shape must account for exactly the bytes present: nothing is allocated from a
    declared size, so a tiny file cannot ask for gigabytes.
    """
    if isinstance(obj, np.ndarray):
        dtype_of_array(obj)  # rejects dtypes the IR does not have
        return obj
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: an encoded array must be an object with dtype, shape and data, got {type(obj).__name__}")
    missing = [k for k in ("dtype", "shape", "data") if k not in obj]
    if missing:
        raise ValueError(f"{where}: encoded array lacks {', '.join(missing)}")
    if not isinstance(obj["dtype"], str):
        raise ValueError(f"{where}: dtype must be a string, got {obj['dtype']!r}")
    try:
        dtype = as_dtype(obj["dtype"]).numpy
    except IrflowError as e:
        raise ValueError(f"{where}: {e}") from None
    shape = obj["shape"]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"{where}: shape must be a list of non-negative ints, got {shape!r}")
    if len(shape) > 64:
        raise ValueError(f"{where}: rank {len(shape)} is over NumPy's limit of 64")
    if not isinstance(obj["data"], str):
        raise ValueError(f"{where}: data must be a base64 string, got {type(obj['data']).__name__}")
    count = 1
    for d in shape:
        count *= d
    expected = count * dtype.itemsize
    # base64: 4 characters per 3 bytes; compare before decoding, so a wrong size costs nothing.
    data = obj["data"]
    if abs(len(data) * 3 // 4 - expected) > 3:
        raise ValueError(f"{where}: shape {shape} of {obj['dtype']} needs {expected} bytes, the data holds about {len(data) * 3 // 4}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where}: data is not valid base64: {e}") from None
    if len(raw) != expected:
        raise ValueError(f"{where}: shape {shape} of {obj['dtype']} needs {expected} bytes, the data holds {len(raw)}")
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=True).reshape(tuple(shape))


# The Graph class, handed over by irflow/ir/graph.py once it is defined (graph.py imports this
# module for its field validators, so this module does not import graph.py back).
_graph_class: Any = None


def register_graph_class(cls: Any) -> None:
    """Tell the attr codec which class nested graphs (control-flow bodies) are."""
    global _graph_class
    _graph_class = cls


# Attr tags: one letter per kind; lists carry the kind of their items.
def _encode_attr(value: Any) -> list:
    Graph = _graph_class
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, DType):
        return ["t", value.value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["f", value.hex()]
    if isinstance(value, str):
        return ["s", value]
    if value is None:
        return ["n", None]
    if isinstance(value, Graph):
        return ["g", value.model_dump(mode="json")]
    if isinstance(value, np.ndarray):
        return ["a", encode_array(value)]
    if isinstance(value, tuple):
        return ["l", [_encode_attr(v) for v in value]]
    raise IRValidationError(f"attr value {value!r} of type {type(value).__name__} cannot be stored in the IR")


# What each tag's payload must be (JSON types), checked before it is used.
_PAYLOAD_CHECKS = {
    "b": (lambda v: isinstance(v, bool), "true or false"),
    "i": (lambda v: type(v) is int, "an integer"),
    "s": (lambda v: isinstance(v, str), "a string"),
    "n": (lambda v: v is None, "null"),
    "f": (lambda v: isinstance(v, str), "a float.hex string"),
    "t": (lambda v: isinstance(v, str), "a dtype name"),
    "g": (lambda v: isinstance(v, dict), "a graph object"),
    "a": (lambda v: isinstance(v, dict), "an encoded array"),
    "l": (lambda v: isinstance(v, list), "a list of tagged values"),
}


def _decode_attr(tagged: Any, where: str) -> Any:
    Graph = _graph_class
    if not isinstance(tagged, (list, tuple)) or len(tagged) != 2:
        raise ValueError(f"{where}: expected [tag, value], got {tagged!r:.80}")
    tag, payload = tagged
    check = _PAYLOAD_CHECKS.get(tag) if isinstance(tag, str) else None
    if check is None:
        raise ValueError(f"{where}: unknown attr tag {tag!r:.40}; known: {', '.join(_PAYLOAD_CHECKS)}")
    if not check[0](payload):
        raise ValueError(f"{where}: tag {tag!r} needs {check[1]}, got {payload!r:.80}")
    if tag in ("b", "i", "s", "n"):
        return payload
    if tag == "f":
        try:
            return float.fromhex(payload)
        except (ValueError, OverflowError):
            raise ValueError(f"{where}: {payload!r:.40} is not a float.hex string") from None
    if tag == "t":
        try:
            return DType(payload)
        except ValueError:
            raise ValueError(f"{where}: unknown dtype {payload!r:.40}") from None
    if tag == "g":
        return Graph.model_validate(payload)
    if tag == "a":
        return decode_array(payload, where)
    return tuple(_decode_attr(v, f"{where}[{i}]") for i, v in enumerate(payload))


def encode_attrs(attrs: dict[str, Any]) -> list:
    return [[name, *_encode_attr(v)] for name, v in attrs.items()]


def decode_attrs(obj: Any) -> dict[str, Any]:
    """Accept the JSON form (a list of [name, tag, payload]) or a plain dict (lists become tuples).

    Malformed entries raise ``ValueError`` (pydantic reports it with the field's location).
    """
    if isinstance(obj, list):
        attrs: dict[str, Any] = {}
        for i, entry in enumerate(obj):
            if not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], str):
                raise ValueError(f"attr entry #{i} must be [name, tag, value], got {entry!r:.80}")
            name, tag, payload = entry
            if name in attrs:
                raise ValueError(f"attr {name!r} is given twice")
            attrs[name] = _decode_attr([tag, payload], f"attr {name!r}")
        return attrs
    if isinstance(obj, dict):
        return {k: _freeze(v) for k, v in obj.items()}
    raise ValueError(f"attrs must be a list of [name, tag, value], got {type(obj).__name__}")


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    return v
