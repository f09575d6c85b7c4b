"""The extra ops (irflow/ops/extra.py) through the shared harness: NumPy references written
here, type rule, interpreter, onnxruntime and finite-difference gradients."""
import numpy as np
import pytest

from tests.ops.harness import check_op

rng = np.random.default_rng(0)


@pytest.mark.parametrize("op,ref", [("asin", np.arcsin), ("acos", np.arccos), ("atan", np.arctan)])
def test_inverse_trig(op, ref):
    x = rng.uniform(-0.9, 0.9, (3, 4)).astype(np.float32)  # onnxruntime has float32 kernels only
    check_op(op, [x], ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("op,ref", [("bitwise_and", lambda a, b: a & b), ("bitwise_or", lambda a, b: a | b),
                                    ("bitwise_xor", lambda a, b: a ^ b)])
def test_bitwise_binary(op, ref):
    a = rng.integers(-50, 50, (3, 4)).astype(np.int32)
    b = rng.integers(-50, 50, (4,)).astype(np.int32)
    check_op(op, [a, b], ref)


def test_bitwise_not():
    a = rng.integers(0, 255, (5,)).astype(np.uint8)
    check_op("bitwise_not", [a], lambda x: (255 - x).astype(np.uint8))


def test_bit_shifts():
    a = np.array([1, 4, 16, 255], np.uint8)
    s = np.array([1, 2, 3, 1], np.uint8)
    check_op("bit_shift_left", [a, s], lambda x, y: np.array([2, 16, 128, 254], np.uint8))
    check_op("bit_shift_right", [a, s], lambda x, y: np.array([0, 1, 2, 127], np.uint8))


def _take_along(x, idx, axis):
    out = np.empty(idx.shape, x.dtype)
    for pos in np.ndindex(*idx.shape):
        src = list(pos)
        i = idx[pos]
        src[axis] = i + x.shape[axis] if i < 0 else i
        out[pos] = x[tuple(src)]
    return out


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements(axis):
    x = rng.standard_normal((3, 4))
    idx = rng.integers(-3, 3, (2, 4)) if axis == 0 else rng.integers(-4, 4, (3, 5))
    check_op("gather_elements", [x, idx.astype(np.int64)], lambda a, i: _take_along(a, i, axis % 2), {"axis": axis})


@pytest.mark.parametrize("reduction", ["none", "add", "max"])
def test_scatter_elements(reduction):
    data = rng.standard_normal((3, 4))
    idx = np.array([[1, 0, 2, 3], [0, 3, 1, 2]], np.int64)  # distinct per row: "none" is order-free
    upd = rng.standard_normal((2, 4))

    def ref(d, i, u):
        out = d.copy()
        for r in range(i.shape[0]):
            for c in range(i.shape[1]):
                j = i[r, c]
                out[r, j] = u[r, c] if reduction == "none" else (out[r, j] + u[r, c] if reduction == "add" else max(out[r, j], u[r, c]))
        return out

    check_op("scatter_elements", [data, idx, upd], ref, {"axis": 1, "reduction": reduction},
             grad=reduction != "max")


@pytest.mark.parametrize("reduction", ["none", "mul", "min"])
def test_scatter_nd(reduction):
    data = rng.standard_normal((4, 3))
    idx = np.array([[2], [0]], np.int64)
    upd = rng.standard_normal((2, 3))

    def ref(d, i, u):
        out = d.copy()
        for k in range(i.shape[0]):
            r = i[k, 0]
            out[r] = u[k] if reduction == "none" else (out[r] * u[k] if reduction == "mul" else np.minimum(out[r], u[k]))
        return out

    check_op("scatter_nd", [data, idx, upd], ref, {"reduction": reduction}, grad=reduction == "none")


@pytest.mark.parametrize("largest", [True, False])
def test_topk(largest):
    x = rng.permutation(24).reshape(2, 12).astype(np.float64)  # distinct values: a unique answer

    def ref(a):
        order = np.argsort(-a if largest else a, axis=1)[:, :3]
        return np.take_along_axis(a, order, axis=1), order.astype(np.int64)

    check_op("topk", [x], ref, {"k": 3, "axis": 1, "largest": largest})


def test_topk_ties_keep_lower_index_first():
    x = np.array([[1.0, 3.0, 3.0, 2.0]], np.float32)
    check_op("topk", [x], lambda a: (np.array([[3.0, 3.0]], np.float32), np.array([[1, 2]], np.int64)), {"k": 2},
             grad=False)


def test_reshape_dynamic_reads_the_shape_at_run_time():
    x = rng.standard_normal((2, 3, 4))
    check_op("reshape_dynamic", [x, np.array([0, -1, 2], np.int64)], lambda a, s: a.reshape(2, 6, 2),
             {"dims": (2, 6, 2)}, grad_inputs=[0])


def test_reshape_dynamic_allowzero_keeps_a_zero_as_an_empty_axis():
    x = np.zeros((0, 3, 4))
    check_op("reshape_dynamic", [x, np.array([3, 4, 0], np.int64)], lambda a, s: a.reshape(3, 4, 0),
             {"dims": (3, 4, 0), "allowzero": True}, grad_inputs=[0])


def test_expand_dynamic_broadcasts_both_ways():
    x = rng.standard_normal((3, 1))
    check_op("expand_dynamic", [x, np.array([2, 1, 4], np.int64)], lambda a, s: np.broadcast_to(a, (2, 3, 4)).copy(),
             {"dims": (2, 3, 4)}, grad_inputs=[0])


def test_full_dynamic_fills_a_run_time_shape():
    check_op("full_dynamic", [np.array([2, 3], np.int64)], lambda s: np.full((2, 3), 7, np.int32),
             {"value": np.array([7], np.int32), "dims": (2, 3)})


# -- bit_cast: the reference reinterprets each element's bytes with Python's struct -----------------------

_FMT = {"float16": "<e", "float32": "<f", "float64": "<d", "int8": "<b", "uint8": "<B", "int16": "<h",
        "uint16": "<H", "int32": "<i", "uint32": "<I", "int64": "<q", "uint64": "<Q"}


def _struct_bit_cast(x, to):
    import struct

    flat = [struct.unpack(_FMT[to], struct.pack(_FMT[str(x.dtype)], v))[0] for v in x.ravel().tolist()]
    return np.array(flat, dtype=to).reshape(x.shape)


@pytest.mark.parametrize("src, to", [("float32", "int32"), ("int32", "float32"), ("float64", "uint64"),
                                     ("int64", "float64"), ("float16", "int16"), ("uint16", "float16"),
                                     ("uint32", "int32"), ("int8", "uint8")])
def test_bit_cast_matches_struct(src, to):
    if np.dtype(src).kind == "f":
        x = np.array([[1.0, -2.5, 0.0], [-0.0, np.inf, 3e-5]], src)
    else:
        info = np.iinfo(src)
        x = np.array([[info.min, -1 if info.min else 7, 0], [1, info.max, 12345 % info.max]], src)
        if np.dtype(to).kind == "f":  # keep NaN patterns out: their payloads are not compared below
            x = _struct_bit_cast(np.array([[1.5, -0.0, 2.0], [np.inf, -7.25, 1e-3]], to), src)
    want = _struct_bit_cast(x, to)
    (got,) = check_op("bit_cast", [x], lambda a: want, {"dtype": to})
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_bit_cast_needs_equal_widths_and_opset_26_between_float_and_int():
    import irflow as irf
    from irflow.errors import DTypeError, ExecutorError
    from irflow.executors.onnx import to_model

    with pytest.raises(DTypeError, match="float32 \\(32 bits\\) and int16 \\(16 bits\\) differ in width"):
        irf.bit_cast(irf.tensor(np.zeros(2, np.float32)), "int16")
    g = irf.function(lambda x: irf.bit_cast(x, "int32")).get_concrete_function(
        irf.TensorSpec((2,), "float32")).graph
    assert to_model(g).opset_import[0].version == 26  # raised from the default for BitCast
    with pytest.raises(ExecutorError, match="opset=26"):
        to_model(g, opset=21)
    g8 = irf.function(lambda x: irf.bit_cast(x, "uint8")).get_concrete_function(irf.TensorSpec((2,), "int8")).graph
    model = to_model(g8, opset=21)  # same-width ints: a Cast, which wraps as two's complement
    assert [n.op_type for n in model.graph.node] == ["Cast"]


def test_bit_cast_imports_from_onnx_as_the_reference_evaluator_computes():
    import onnx
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    import irflow as irf
    from irflow.frontends.onnx_import import load

    node = helper.make_node("BitCast", ["x"], ["y"], to=TensorProto.UINT32)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT32, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)])
    onnx.checker.check_model(model)
    x = np.array([1.0, -0.0, np.nan], np.float32)
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    got = irf.run(load(model), {"x": x})["y"]
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, want)
