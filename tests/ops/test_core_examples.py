"""The example ops of the core skeleton, through the shared harness."""
import numpy as np
import pytest

from tests.ops.harness import check_op

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 4)).astype(np.float32)
B = rng.standard_normal((4,)).astype(np.float32)


@pytest.mark.parametrize("op,ref", [("add", np.add), ("sub", np.subtract), ("mul", np.multiply)])
def test_binary_broadcasting(op, ref):
    check_op(op, [A, B], ref)


def test_relu():
    check_op("relu", [A], lambda x: np.maximum(x, 0))


def test_matmul():
    check_op("matmul", [A, rng.standard_normal((4, 5)).astype(np.float32)], np.matmul)


def test_reduce_sum_axes():
    check_op("reduce_sum", [A], lambda x: x.sum(axis=1, keepdims=True), {"axes": (1,), "keepdims": True})
