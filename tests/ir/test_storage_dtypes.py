"""Storage-only dtypes (float8, float4, int4, int2 ...): casts against onnx's reference evaluator
and onnxruntime, the spec's float8_e8m0fnu table written out by hand, clear errors for
arithmetic, moves (reshape, transpose, ...), JSON, and ONNX import/export."""
import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import irflow as irf
from irflow.errors import DTypeError, ExecutorError
from irflow.executors.onnx import to_model
from irflow.frontends.onnx_import import load
from irflow.ir import DType, load as load_ir

FLOAT8 = {"float8_e4m3fn": TensorProto.FLOAT8E4M3FN, "float8_e4m3fnuz": TensorProto.FLOAT8E4M3FNUZ,
          "float8_e5m2": TensorProto.FLOAT8E5M2, "float8_e5m2fnuz": TensorProto.FLOAT8E5M2FNUZ}
SMALL = {"float4_e2m1fn": TensorProto.FLOAT4E2M1, "int4": TensorProto.INT4, "uint4": TensorProto.UINT4,
         "int2": TensorProto.INT2, "uint2": TensorProto.UINT2}
ELEM = {np.float16: TensorProto.FLOAT16, np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE}


def _values(src) -> np.ndarray:
    rng = np.random.default_rng(0)
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, 448.0, 449.0, 464.0, 240.0, 57344.0, 61440.0, 1e5, -1e5,
               2.0 ** -10, 2.0 ** -17, 0.3, -0.3, 1.0625, 3.5, 6.5, 7.9]
    rand = rng.standard_normal(200) * np.exp2(rng.integers(-12, 14, 200))
    return np.concatenate([special, rand]).astype(src)


def _reference_cast(x, elem, saturate=1):
    node = helper.make_node("Cast", ["x"], ["y"], to=elem, saturate=saturate)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", ELEM[x.dtype.type], [x.size])],
                              [helper.make_tensor_value_info("y", elem, [x.size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


def _same_codes(got, want):
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    g, w = got.astype(np.float32), want.astype(np.float32)
    both_nan = np.isnan(g) & np.isnan(w)
    bad = ~both_nan & (g.view(np.uint32) != w.view(np.uint32))  # bit-exact, -0.0 included
    assert not bad.any(), f"differ at {np.flatnonzero(bad)[:5]}: got {g[bad][:5]}, want {w[bad][:5]}"


@pytest.mark.parametrize("to", sorted(FLOAT8))
@pytest.mark.parametrize("src", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("saturate", [True, False])
def test_float8_cast_matches_the_reference_evaluator(to, src, saturate):
    x = _values(src)
    want = _reference_cast(x, FLOAT8[to], int(saturate))
    with np.errstate(all="ignore"):
        got = irf.cast(irf.tensor(x), to, saturate=saturate).numpy()
    _same_codes(got, want)


@pytest.mark.parametrize("to", sorted(SMALL))
def test_small_dtype_cast_matches_the_reference_evaluator(to):
    x = np.array([0.0, 1.0, -1.0, 1.4, 2.6, -2.5, 3.0, 5.0, 7.0, -8.0, 0.25, 0.75], np.float32)
    _same_codes(irf.cast(irf.tensor(x), to).numpy(), _reference_cast(x, SMALL[to]))


def _round_trip(to, **attrs):
    return lambda x: irf.cast(irf.cast(x, to, **attrs), "float32")


@pytest.mark.parametrize("to", sorted(FLOAT8) + ["int4", "uint4", "int2", "uint2"])
@pytest.mark.parametrize("saturate", [True, False])
def test_numpy_and_onnxruntime_agree(to, saturate):
    x = _values(np.float32)
    if to[-1] in "42":  # ints: out-of-range values are undefined in ONNX; stay in range
        lo, hi = (0, 2 ** DType(to).bits - 1) if to.startswith("u") else (-(2 ** (DType(to).bits - 1)), 2 ** (DType(to).bits - 1) - 1)
        x = np.arange(lo, hi + 1, dtype=np.float32)
    fn = _round_trip(to, saturate=saturate)
    with np.errstate(all="ignore"):
        a = irf.function(fn)(x).numpy()
    b = irf.function(fn, executor="ort")(x).numpy()
    np.testing.assert_array_equal(a, b)


def test_e8m0_follows_the_spec_table_and_onnxruntime():
    x = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 3e38, 1e-39, 3.0, 0.75, -2.0, 1.5, 2.5, 2.0 ** 127], np.float32)
    lo, hi = 2.0 ** -127, 2.0 ** 127
    nan = np.nan
    want = {  # the spec: saturate clamps to [2**-127, 2**127], otherwise NaN; NaN stays NaN
        (True, "up"): [lo, lo, nan, hi, lo, hi, lo, 4, 1, lo, 2, 4, hi],
        (True, "down"): [lo, lo, nan, hi, lo, hi, lo, 2, 0.5, lo, 1, 2, hi],
        (True, "nearest"): [lo, lo, nan, hi, lo, hi, lo, 4, 1, lo, 2, 2, hi],
        (False, "up"): [nan, nan, nan, nan, nan, nan, nan, 4, 1, nan, 2, 4, hi],
        (False, "nearest"): [nan, nan, nan, nan, nan, nan, nan, 4, 1, nan, 2, 2, hi],
    }
    for (saturate, mode), expected in want.items():
        fn = _round_trip("float8_e8m0fnu", saturate=saturate, round_mode=mode)
        got = irf.function(fn)(x).numpy()
        np.testing.assert_array_equal(got, np.array(expected, np.float32), err_msg=f"{saturate} {mode}")
        np.testing.assert_array_equal(irf.function(fn, executor="ort")(x).numpy(), got)
    # in range (positive normal values) onnx's reference evaluator agrees
    y = np.exp2(np.random.default_rng(1).uniform(-120, 120, 300)).astype(np.float32)
    for mode in ("up", "down", "nearest"):
        node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E8M0, round_mode=mode)
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [300])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT8E8M0, [300])])
        ref = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])).run(None, {"x": y})[0]
        _same_codes(irf.cast(irf.tensor(y), "float8_e8m0fnu", round_mode=mode).numpy(), ref)


def test_arithmetic_on_storage_dtypes_is_a_clear_error():
    x = irf.tensor(np.array([1.0, 2.0], ml_dtypes.float8_e4m3fn))
    with pytest.raises(DTypeError, match="add does not compute on float8_e4m3fn: it is a storage-only dtype"):
        x + x
    with pytest.raises(DTypeError, match="reduce_sum does not compute on float8_e4m3fn"):
        irf.reduce_sum(x)
    q = irf.tensor(np.array([1, -2], ml_dtypes.int4))
    with pytest.raises(DTypeError, match="mul does not compute on int4"):
        q * 2
    with pytest.raises(DTypeError, match="matmul does not compute on int4"):
        irf.function(lambda a: irf.matmul(a, a))(np.ones((2, 2), ml_dtypes.int4))
    irf.zeros((2,), "float32")  # eager code judges an op's dtypes once: the dtype attr is part of that
    with pytest.raises(DTypeError, match="zeros does not compute on float4_e2m1fn"):
        irf.zeros((2,), "float4_e2m1fn")


def test_moves_keep_the_codes_and_casts_out_are_exact():
    a = np.arange(256, dtype=np.uint8).reshape(4, 8, 8).view(ml_dtypes.float8_e5m2)
    t = irf.tensor(a)
    for got, want in [(irf.reshape(t, (16, 16)), a.reshape(16, 16)), (irf.transpose(t, (2, 0, 1)), a.transpose(2, 0, 1)),
                      (irf.expand_dims(t, 0), a[None]), (irf.identity(t), a)]:
        assert got.dtype is DType.float8_e5m2
        assert got.numpy().tobytes() == np.ascontiguousarray(want).tobytes()
    wide = irf.cast(t, "float32").numpy()
    np.testing.assert_array_equal(wide, a.astype(np.float32))  # every float8 value is a float32


def test_graph_json_round_trip_and_onnx_export_with_storage_initializers(tmp_path):
    w = np.array([[1.5, -2.0], [448.0, 0.0625]], ml_dtypes.float8_e4m3fn)
    q = np.array([-8, 7, 3, 0], ml_dtypes.int4)

    def fn(x):
        # (onnxruntime has no Reshape for int4: the reshape comes after the cast here)
        return irf.cast(irf.constant(w), "float32") * x, irf.reshape(irf.cast(irf.constant(q), "float32"), (2, 2))

    g = irf.function(fn).get_graph(irf.TensorSpec((2, 2), "float32"))
    held = [n.outputs[0].type.dtype for n in g.nodes if n.op == "constant"]
    assert held == [DType.float8_e4m3fn, DType.int4]
    path = tmp_path / "g.irflow.json"
    g.save(path)
    back = load_ir(path)
    assert back == g
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    want = (w.astype(np.float32) * x, q.astype(np.float32).reshape(2, 2))
    outs = irf.run(back, {g.input_names[0]: x})
    for name, expected in zip(g.output_names, want):
        np.testing.assert_array_equal(outs[name], expected)
    model = to_model(back)
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for got, expected in zip(sess.run(None, {g.input_names[0]: x}), want):
        np.testing.assert_array_equal(got, expected)


def test_export_opset_follows_the_dtypes():
    g = irf.function(_round_trip("float4_e2m1fn")).get_graph(irf.TensorSpec((3,), "float32"))
    assert to_model(g).opset_import[0].version == 23  # FLOAT4E2M1 is new in opset 23
    with pytest.raises(ExecutorError, match="float4_e2m1fn \\(opset 23\\), which ONNX opset 21 does not have"):
        to_model(g, opset=21)


def _quant_model(op, x_elem, out_elem, inits, **attrs):
    node = helper.make_node(op, ["x"] + [i.name for i in inits], ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", x_elem, [6])],
                              [helper.make_tensor_value_info("y", out_elem, [6])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])


@pytest.mark.parametrize("to", ["float8_e4m3fn", "float8_e5m2", "int4", "uint4", "int2", "float4_e2m1fn"])
@pytest.mark.parametrize("saturate", [1, 0])
def test_quantize_and_dequantize_linear_import_as_the_reference_evaluator_computes(to, saturate):
    elem = {**FLOAT8, **SMALL}[to]
    x = np.array([-1000.0, -3.3, -0.26, 0.0, 1.74, 900.0], np.float32)
    scale = numpy_helper.from_array(np.array(0.5, np.float32), "scale")
    zp = numpy_helper.from_array(np.array(0, DType(to).numpy), "zp")
    qmodel = _quant_model("QuantizeLinear", TensorProto.FLOAT, elem, [scale, zp], saturate=saturate)
    (want_q,) = ReferenceEvaluator(qmodel).run(None, {"x": x})
    with np.errstate(all="ignore"):
        got_q = irf.run(load(qmodel), {"x": x})["y"]
    _same_codes(got_q, want_q)
    dmodel = _quant_model("DequantizeLinear", elem, TensorProto.FLOAT, [scale, zp])
    (want_d,) = ReferenceEvaluator(dmodel).run(None, {"x": want_q})
    np.testing.assert_array_equal(irf.run(load(dmodel), {"x": want_q})["y"], want_d)


@pytest.mark.parametrize("to", ["int4", "uint8", "float8_e4m3fn"])
def test_blocked_quantization_with_a_remainder_block_matches_the_reference(to):
    elem = {**FLOAT8, **SMALL, "uint8": TensorProto.UINT8}[to]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 7)).astype(np.float32) * 4
    scale = numpy_helper.from_array(rng.uniform(0.5, 2.0, (3, 3)).astype(np.float32), "scale")  # ceil(7 / 3) blocks
    zp = numpy_helper.from_array(np.zeros((3, 3), DType(to).numpy), "zp")
    xi = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 7])
    q = helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["q"], axis=1, block_size=3)
    d = helper.make_node("DequantizeLinear", ["q", "scale", "zp"], ["y"], axis=1, block_size=3)
    graph = helper.make_graph([q, d], "g", [xi], [helper.make_tensor_value_info("q", elem, [3, 7]),
                                                  helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 7])],
                              initializer=[scale, zp])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    want_q, want_y = ReferenceEvaluator(model).run(None, {"x": x})
    outs = irf.run(load(model), {"x": x})
    _same_codes(outs["q"], want_q)
    np.testing.assert_array_equal(outs["y"], want_y)


def test_blocked_quantization_names_a_scale_of_the_wrong_shape():
    scale = numpy_helper.from_array(np.ones((3, 2), np.float32), "scale")  # 7 / 3 needs 3 blocks
    node = helper.make_node("DequantizeLinear", ["x", "scale"], ["y"], axis=1, block_size=3)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT8, [3, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 7])], initializer=[scale])
    with pytest.raises(irf.IrflowError, match=r"block_size 3 must have shape \(3, 3\), it has \(3, 2\)"):
        load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)]), strict=False)


@pytest.mark.parametrize("output_dtype", [0, TensorProto.FLOAT])
def test_dequantize_uint16_with_a_float16_scale_rounds_once_as_the_reference(output_dtype):
    x = np.array([65535, 40001, 2049, 0, 30000, 12345], np.uint16)  # not all float16 values
    scale = numpy_helper.from_array(np.array(0.0999, np.float16), "scale")
    zp = numpy_helper.from_array(np.array(3, np.uint16), "zp")
    attrs = {"output_dtype": output_dtype} if output_dtype else {}
    node = helper.make_node("DequantizeLinear", ["x", "scale", "zp"], ["y"], **attrs)
    out_elem = output_dtype or TensorProto.FLOAT16
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT16, [6])],
                              [helper.make_tensor_value_info("y", out_elem, [6])], initializer=[scale, zp])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    got = irf.run(load(model), {"x": x})["y"]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
