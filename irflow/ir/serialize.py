"""Lossless JSON encodings for the two things JSON cannot hold as they are: arrays and attrs.

Arrays are stored as raw little-endian bytes in base64 (so NaN payloads, -0.0 and bfloat16
survive); float attrs as ``float.hex`` strings for the same reason. No pickle anywhere.
"""
from __future__ import annotations

import base64
from typing import Any

import numpy as np

from irflow.errors import IRValidationError
from irflow.ir.dtypes import DType, as_dtype, dtype_of_array


def encode_array(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a).reshape(np.shape(a))  # ascontiguousarray makes 0-d arrays 1-d
    dtype = dtype_of_array(a)
    data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"dtype": dtype.value, "shape": list(a.shape), "data": base64.b64encode(data).decode("ascii")}


def decode_array(obj: Any) -> np.ndarray:
    if isinstance(obj, np.ndarray):
        dtype_of_array(obj)  # rejects dtypes the IR does not have
        return obj
    try:
        dtype = as_dtype(obj["dtype"]).numpy
        raw = base64.b64decode(obj["data"])
        a = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype, copy=True)
        return a.reshape(tuple(obj["shape"]))
    except (KeyError, TypeError, ValueError) as e:
        raise IRValidationError(f"corrupt array encoding: {e}") from None


# Attr tags: one letter per kind; lists carry the kind of their items.
def _encode_attr(value: Any) -> list:
    from irflow.ir.graph import Graph

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


def _decode_attr(tagged: list) -> Any:
    from irflow.ir.graph import Graph

    tag, payload = tagged
    if tag in ("b", "i", "s", "n"):
        return payload
    if tag == "f":
        return float.fromhex(payload)
    if tag == "t":
        return DType(payload)
    if tag == "g":
        return Graph.model_validate(payload)
    if tag == "a":
        return decode_array(payload)
    if tag == "l":
        return tuple(_decode_attr(v) for v in payload)
    raise IRValidationError(f"unknown attr tag {tag!r}")


def encode_attrs(attrs: dict[str, Any]) -> list:
    return [[name, *_encode_attr(v)] for name, v in attrs.items()]


def decode_attrs(obj: Any) -> dict[str, Any]:
    """Accept the JSON form (a list of [name, tag, payload]) or a plain dict (lists become tuples)."""
    if isinstance(obj, list):
        return {name: _decode_attr([tag, payload]) for name, tag, payload in obj}
    if isinstance(obj, dict):
        return {k: _freeze(v) for k, v in obj.items()}
    raise IRValidationError(f"attrs must be a dict, got {type(obj).__name__}")


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    return v
