"""uint16 / uint32 / uint64: promotion, eager and traced ops against NumPy written here, ONNX
import (against onnx's reference evaluator) and export (run by onnxruntime)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import irflow as irf
from irflow.errors import DTypeError
from irflow.executors.onnx import to_model
from irflow.frontends.onnx_import import load
from irflow.ir import DType
from irflow.ops.common import promote_dtype

U16, U32, U64 = DType.uint16, DType.uint32, DType.uint64


@pytest.mark.parametrize("a, b, want", [
    (U16, DType.uint8, U16), (U32, U16, U32), (U64, DType.uint8, U64),
    (U16, DType.int8, DType.int32), (U32, DType.int32, DType.int64), (U16, DType.bool, U16),
])
def test_promotion_widens_as_numpy(a, b, want):
    assert promote_dtype(a, b) is want and promote_dtype(b, a) is want


@pytest.mark.parametrize("other", [DType.int8, DType.int64, DType.float32])
def test_uint64_with_a_signed_int_or_a_float_is_an_error(other):
    # NumPy would give float64 for uint64 + int64: no integer dtype holds both
    with pytest.raises(DTypeError, match="cannot mix"):
        promote_dtype(U64, other)


def _pair(dtype):
    info = np.iinfo(dtype)
    a = np.array([info.max, 7, info.max // 2 + 5, 0], dtype)
    b = np.array([3, info.max - 1, 2, 9], dtype)
    return a, b


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
def test_eager_arithmetic_wraps_and_divides_as_numpy(dtype):
    a, b = _pair(dtype)
    x, y = irf.tensor(a), irf.tensor(b)
    with np.errstate(over="ignore"):
        cases = [
            (x + y, a + b), (x - y, a - b), (x * y, a * b), (irf.div(x, y), a // b), (irf.mod(x, y), a % b),
            (irf.maximum(x, y), np.maximum(a, b)), (irf.minimum(x, y), np.minimum(a, b)),
            (irf.bitwise_xor(x, y), a ^ b), (irf.bitwise_not(x), ~a),
            (irf.bit_shift_left(x, irf.tensor(np.array([1, 2, 3, 0], dtype))), a << np.array([1, 2, 3, 0], dtype)),
            (x + 1, a + np.array(1, dtype)),
        ]
    for got, want in cases:
        assert got.dtype is DType(dtype)
        np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal((x < y).numpy(), a < b)


@pytest.mark.parametrize("dtype", ["uint32", "uint64"])
def test_traced_graph_on_numpy_and_onnxruntime(dtype):
    a, b = _pair(dtype)

    def fn(x, y):
        return irf.div(x, y), irf.mod(x, y), x - y, irf.bitwise_and(x, y), irf.cast(x, "float64")

    with np.errstate(over="ignore"):
        want = (a // b, a % b, a - b, a & b, a.astype(np.float64))
    for executor in ("numpy", "ort"):
        got = irf.function(fn, executor=executor)(irf.tensor(a), irf.tensor(b))
        for g, w in zip(got, want):
            assert g.numpy().dtype == w.dtype
            np.testing.assert_array_equal(g.numpy(), w)


@pytest.mark.parametrize("elem", [TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64])
def test_onnx_import_and_export_keep_the_unsigned_type(elem):
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    node = helper.make_node("Sub", ["x", "y"], ["z"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, elem, [4]) for n in "xy"],
                              [helper.make_tensor_value_info("z", elem, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    a, b = _pair(dtype)
    (want,) = ReferenceEvaluator(model).run(None, {"x": a, "y": b})
    g = load(model)
    assert g.inputs[0].type.dtype is DType(str(dtype))
    np.testing.assert_array_equal(irf.run(g, {"x": a, "y": b})["z"], want)
    exported = to_model(g)
    assert exported.graph.input[0].type.tensor_type.elem_type == elem
    import onnxruntime as ort

    sess = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": a, "y": b})
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    onnx.checker.check_model(exported)


# Ops whose onnxruntime kernels lack some of these dtypes, and how NumPy computes them: the
# export computes them in a wider dtype (or as 0 - x for unsigned neg), so both executors
# give NumPy's values. uint64 max/min/argmax/topk have no exact wider type: left out here.
_OPS = {
    "reduce_sum": (lambda x: irf.reduce_sum(x, axis=0), lambda a: a.sum(axis=0, dtype=a.dtype)),
    "reduce_prod": (lambda x: irf.reduce_prod(x, axis=1), lambda a: a.prod(axis=1, dtype=a.dtype)),
    "cumsum": (lambda x: irf.cumsum(x, axis=1), lambda a: a.cumsum(axis=1, dtype=a.dtype)),
    "neg": (irf.neg, lambda a: (np.zeros_like(a) - a)),
    "matmul": (lambda x: irf.matmul(x, irf.transpose(x)), lambda a: np.matmul(a, a.T)),
    "maximum": (lambda x: irf.maximum(x, irf.flip(x, axis=1)), lambda a: np.maximum(a, a[:, ::-1])),
    "minimum": (lambda x: irf.minimum(x, irf.flip(x, axis=1)), lambda a: np.minimum(a, a[:, ::-1])),
    "where": (lambda x: irf.where(x > 2, x, irf.flip(x, axis=0)), lambda a: np.where(a > 2, a, a[::-1])),
    "clip": (lambda x: irf.clip(x, 2, 5), lambda a: np.clip(a, 2, 5).astype(a.dtype)),
    "pad": (lambda x: irf.pad(x, ((1, 0), (0, 1))), lambda a: np.pad(a, ((1, 0), (0, 1)))),
    "relu": (irf.relu, lambda a: np.maximum(a, 0).astype(a.dtype)),
}
_ORDER = {
    "reduce_max": (lambda x: irf.reduce_max(x, axis=1), lambda a: a.max(axis=1)),
    "reduce_min": (lambda x: irf.reduce_min(x), lambda a: a.min()),
    "argmax": (lambda x: irf.argmax(x, axis=1), lambda a: a.argmax(axis=1)),
    "topk": (lambda x: irf.topk(x, 2)[0], lambda a: -np.sort(-a.astype(np.float64), axis=-1)[:, :2].astype(a.dtype)),
}


@pytest.mark.parametrize("dtype", ["int16", "uint16", "uint32", "uint64"])
def test_ops_onnxruntime_lacks_run_widened_with_numpys_values(dtype):
    info = np.iinfo(dtype)
    a = np.array([[info.max, 2, 3], [4, 5, info.max - 1], [7, 8, 0]], dtype)
    ops = dict(_OPS, **({} if dtype == "uint64" else _ORDER))
    for name, (fn, ref) in ops.items():
        with np.errstate(over="ignore"):
            want = np.asarray(ref(a))
        for executor in ("numpy", "ort"):
            got = irf.function(fn, executor=executor)(irf.tensor(a)).numpy()
            assert got.dtype == want.dtype, (name, executor, got.dtype)
            np.testing.assert_array_equal(got, want, err_msg=f"{name} on {executor}")


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
def test_bit_shifts_on_both_executors(dtype):
    # onnxruntime has no uint16 BitShift: the export shifts in uint32 and keeps the low bits
    info = np.iinfo(dtype)
    a = np.array([info.max, 1, 0x1234, 7], dtype)
    s = np.array([1, 15, 4, 0], dtype)
    for op, want in (("bit_shift_left", a << s), ("bit_shift_right", a >> s)):
        for executor in ("numpy", "ort"):
            got = irf.function(lambda x, y: irf.bind(op, x, y), executor=executor)(irf.tensor(a), irf.tensor(s)).numpy()
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"{op} on {executor}")
