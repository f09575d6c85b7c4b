"""Numerics checks, as ``tf.debugging``: find the first op that produced NaN or Inf.

- ``check_numerics(x, message)``: the identity, as an op, that raises ``NumericsError`` (with
  ``message``) when ``x`` holds NaN or Inf. It works eagerly, in ``irf.function`` traces and
  static Programs, on the NumPy interpreter and on onnxruntime (where the exported ONNX carries
  the check as standard ops: see ``docs/reliability.md``); its gradient is checked too.
- ``enable_check_numerics()`` / ``disable_check_numerics()``: from now on every eager op and
  every node the NumPy interpreter runs (nested bodies included) checks its float outputs; the
  first one holding NaN or Inf raises ``NumericsError`` naming the node, its op, the output and
  its inputs. NaN or Inf already in a feed or an initializer is reported as such. onnxruntime
  runs are not checked node by node (``irflow run --check-numerics`` runs the interpreter).

>>> import irflow as irf, numpy as np
>>> irf.debugging.enable_check_numerics()
>>> try:
...     irf.log(irf.tensor(np.array([1.0, -1.0], "float32")))
... except irf.debugging.NumericsError as e:
...     print(e)
check_numerics: eager op log produced NaN in output 0 float32[2]
>>> irf.debugging.disable_check_numerics()
"""
from __future__ import annotations

from typing import Any

from irflow.errors import IrflowError, NumericsError
from irflow.ops.dispatch import bind

__all__ = ["check_numerics", "enable_check_numerics", "disable_check_numerics", "is_check_numerics_enabled",
           "NumericsError"]


def check_numerics(tensor: Any, message: str) -> Any:
    """``tensor`` unchanged; raises ``NumericsError`` with ``message`` if it holds NaN or Inf.

    >>> import irflow as irf, numpy as np
    >>> irf.debugging.check_numerics(irf.tensor(np.ones(2, "float32")), "ones").numpy()
    array([1., 1.], dtype=float32)
    """
    if not isinstance(message, str):
        raise IrflowError(f"check_numerics: message must be a str, got {type(message).__name__}")
    return bind("check_numerics", tensor, message=message)


def enable_check_numerics() -> None:
    """Check every eager op's and every interpreted node's float outputs for NaN and Inf.

    >>> import irflow as irf
    >>> irf.debugging.enable_check_numerics(); irf.debugging.is_check_numerics_enabled()
    True
    >>> irf.debugging.disable_check_numerics()
    """
    _set(True)


def disable_check_numerics() -> None:
    """Undo ``enable_check_numerics``.

    >>> import irflow as irf
    >>> irf.debugging.disable_check_numerics(); irf.debugging.is_check_numerics_enabled()
    False
    """
    _set(False)


def is_check_numerics_enabled() -> bool:
    """Whether ``enable_check_numerics`` is in effect.

    >>> import irflow as irf
    >>> irf.debugging.is_check_numerics_enabled()
    False
    """
    from irflow.executors.numpy import interpreter

    return interpreter.CHECK_NUMERICS


def _set(on: bool) -> None:
    from irflow.executors.numpy import interpreter
    from irflow.frontends import eager

    interpreter.CHECK_NUMERICS = on
    eager.CHECK_NUMERICS = on
