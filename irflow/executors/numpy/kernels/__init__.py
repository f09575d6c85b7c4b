"""NumPy kernels by op name: ``kernel(*arrays, **attrs) -> array | tuple of arrays``.

One module per op family registers its kernels with ``@kernel("name")`` or the ``KERNELS``
table directly. The eager frontend and the interpreter both call these.
"""
from __future__ import annotations

from typing import Callable

from irflow.passes import fold_constants as _fold_constants

KERNELS: dict[str, Callable] = {}
# Constant folding (a pass, below the executors) evaluates with this table; the families
# imported at the end of this module fill it.
_fold_constants.set_kernels(KERNELS)


def kernel(name: str, *, out: bool = False) -> Callable[[Callable], Callable]:
    """Register a NumPy kernel: ``@kernel("relu") def relu(x): ...``.

    ``out=True`` declares that the kernel takes an optional ``out`` keyword: an uninitialized
    C-contiguous array of the output's shape and dtype that the interpreter offers for reuse
    (see irflow/executors/numpy/interpreter.py). The kernel writes its result there and returns
    it, or ignores it and returns a fresh array. Eager calls never pass it.
    """

    def register(fn: Callable) -> Callable:
        if name in KERNELS:
            raise ValueError(f"kernel for {name!r} registered twice")
        KERNELS[name] = fn
        fn.accepts_out = out
        return fn

    return register


def usable_out(out, shape, dtype) -> bool:
    """Whether an ``out`` buffer offered to an ``out=True`` kernel can take a result of this
    shape and dtype (kernels fall back to a fresh array otherwise)."""
    return out is not None and out.shape == tuple(shape) and out.dtype == dtype


from irflow.executors.numpy.kernels import elementwise, reduction, linalg, shape, nn, random  # noqa: E402,F401
from irflow.executors.numpy.kernels import special  # noqa: E402,F401
from irflow.executors.numpy.kernels import conv  # noqa: E402,F401
from irflow.executors.numpy.kernels import conv_nd  # noqa: E402,F401
from irflow.executors.numpy.kernels import resize  # noqa: E402,F401
from irflow.executors.numpy.kernels import vision  # noqa: E402,F401
from irflow.executors.numpy.kernels import extra  # noqa: E402,F401
from irflow.executors.numpy.kernels import control  # noqa: E402,F401
from irflow.executors.numpy.kernels import segment  # noqa: E402,F401
from irflow.executors.numpy.kernels import dynamic_axes  # noqa: E402,F401
from irflow.executors.numpy.kernels import data_dependent  # noqa: E402,F401
from irflow.executors.numpy.kernels import onnx_extra  # noqa: E402,F401
from irflow.executors.numpy.kernels import dynamic_shape  # noqa: E402,F401
from irflow.executors.numpy.kernels import quantized  # noqa: E402,F401
from irflow.executors.numpy.kernels import signal  # noqa: E402,F401
