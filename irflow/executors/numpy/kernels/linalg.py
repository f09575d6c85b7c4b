"""NumPy kernels of matmul and einsum (semantics: irflow/ops/linalg.py).

Results keep the promoted input dtype. float16/bfloat16 operands are multiplied in float32
and rounded once at the end (NumPy would otherwise accumulate in 16 bits).
"""
from __future__ import annotations

import numpy as np

from irflow.errors import UnsupportedOpError
from irflow.executors.numpy.kernels import kernel
from irflow.ir.dtypes import is_float16_or_bfloat16



def _result_dtype(arrays) -> np.dtype:
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) == 1:
        return dtypes.pop()
    return np.result_type(*dtypes)


def _compute(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if is_float16_or_bfloat16(a.dtype) else a


@kernel("matmul", out=True)
def matmul(a, b, out=None):
    dt = a.dtype
    if dt.char in "fd" and dt == b.dtype:  # the hot case (eager and interpreter): float32/64
        if out is not None and out.dtype == dt and (a.ndim > 1 or b.ndim > 1):
            return np.matmul(a, b, out=out)
        out = np.matmul(a, b)
        return out if a.ndim > 1 or b.ndim > 1 else np.asarray(out)
    if a.dtype == np.bool_ or b.dtype == np.bool_:
        raise TypeError("matmul does not take bool")
    dtype = _result_dtype((a, b))
    if is_float16_or_bfloat16(dtype):
        return np.matmul(_compute(a), _compute(b)).astype(dtype)
    return np.asarray(np.matmul(a, b))


@kernel("einsum")
def einsum(*operands, equation):
    if "." in equation:
        raise UnsupportedOpError(
            f"einsum: an einsum node's equation cannot hold an ellipsis ('...'), got {equation!r}; "
            "irf.einsum rewrites '...' into letters (irflow.ops.linalg.expand_ellipsis)"
        )
    if any(a.dtype == np.bool_ for a in operands):
        raise TypeError("einsum does not take bool")
    # NumPy would broadcast a letter of size 1 against a larger one; irflow's type rule (and
    # ONNX) do not, so eager code must not either. A ValueError here makes the eager frontend
    # report the type rule's ShapeError.
    sizes: dict[str, int] = {}
    for sub, a in zip(equation.replace(" ", "").split("->")[0].split(","), operands):
        if len(sub) != a.ndim or any(sizes.setdefault(c, d) != d for c, d in zip(sub, a.shape)):
            raise ValueError(f"einsum {equation!r}: operand shapes do not fit")
    dtype = _result_dtype(operands)
    out = np.einsum(equation, *(_compute(a) for a in operands), optimize=len(operands) > 2)
    return np.asarray(out).astype(dtype, copy=False)
