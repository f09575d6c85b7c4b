"""irflow: one typed IR for deep learning, with eager, traced and static frontends,
IR-level autodiff, a NumPy interpreter and ONNX export.

>>> import irflow as irf, numpy as np
>>> float(irf.reduce_sum(irf.relu(irf.tensor([-1.0, 2.0]))))
2.0

``import irflow`` itself imports almost nothing: the public names live in ``irflow._api``
and are loaded on the first access of any ``irf.<name>`` (a module ``__getattr__``, PEP 562),
so the ``irflow`` command starts without pydantic, onnx, onnxruntime or ml_dtypes until a
command needs them. ``irf.onnx`` (which imports the onnx package) loads only when used.
"""
from __future__ import annotations

import importlib
from typing import Any

from irflow.errors import DTypeError, ExecutorError, IrflowError, IRValidationError, ShapeError, UnsupportedOpError

from irflow._version import __version__

# Submodules reachable as attributes that _api does not import (they pull in onnx).
_LAZY_SUBMODULES = frozenset({"onnx"})


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)  # copy/pickle/doctest probe dunders: never load the API for them
    api = importlib.import_module("irflow._api")
    if name in _LAZY_SUBMODULES:
        value = importlib.import_module(f"irflow.{name}")
    else:
        try:
            value = getattr(api, name)
        except AttributeError:
            raise AttributeError(f"module 'irflow' has no attribute {name!r}") from None
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    api = importlib.import_module("irflow._api")
    return sorted(set(globals()) | {n for n in vars(api) if not n.startswith("_")} | _LAZY_SUBMODULES)
