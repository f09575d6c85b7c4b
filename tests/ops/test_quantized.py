"""Integer-quantized ops (MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv): each against
a hand-written NumPy reference (through check_op: eager, type rule, interpreter, onnxruntime on
the export), and the imported ONNX op against onnx's reference evaluator and onnxruntime."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import irflow as irf
from irflow.errors import DTypeError, ShapeError
from tests.ops.harness import check_op

RNG = np.random.default_rng(0)
U8, I8, F32 = np.uint8, np.int8, np.float32


def _q(shape, dtype):
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max + 1, shape).astype(dtype)


def _requant(acc, multiplier, zp):
    """round-half-even(acc * multiplier) + zp, saturated: ONNX's requantization, written out."""
    info = np.iinfo(zp.dtype)
    return np.clip(np.rint(acc.astype(np.float64) * np.float64(multiplier)) + int(zp), info.min, info.max).astype(zp.dtype)


def _conv_by_hand(x, w, strides, pads):
    """int64 direct convolution of 2-D NCHW x with OIHW w (one group), zero padding."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + pads[0] + pads[2], wd + pads[1] + pads[3]), np.int64)
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + wd] = x
    oh, ow = (xp.shape[2] - kh) // strides[0] + 1, (xp.shape[3] - kw) // strides[1] + 1
    y = np.zeros((n, o, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw]
            y[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w.astype(np.int64))
    return y


@pytest.mark.parametrize("adt,bdt", [(U8, U8), (I8, I8), (U8, I8), (I8, U8)])
def test_matmul_integer(adt, bdt):
    a, b = _q((2, 3, 5), adt), _q((5, 4), bdt)
    azp, bzp = _q((), adt), _q((4,), bdt)  # b's zero point per column
    want = lambda a, b, azp, bzp: ((a.astype(np.int64) - int(azp)) @ (b.astype(np.int64) - bzp)).astype(np.int32)
    check_op("matmul_integer", [a, b, azp, bzp], want)
    check_op("matmul_integer", [a, b, None, None], lambda a, b, *_: (a.astype(np.int64) @ b).astype(np.int32))


def test_matmul_integer_per_row_zero_point():
    a, b = _q((3, 4), U8), _q((4, 2), U8)
    azp = _q((3,), U8)  # one per row of a
    want = lambda a, b, azp: ((a.astype(np.int64) - azp[:, None]) @ b.astype(np.int64)).astype(np.int32)
    check_op("matmul_integer", [a, b, azp], want, ort=False)  # onnxruntime takes per-tensor a zero points only


@pytest.mark.parametrize("dt", [U8, I8])
def test_qlinear_matmul(dt):
    a, b = _q((2, 3, 6), dt), _q((2, 6, 4), dt)
    azp, bzp, yzp = _q((), dt), _q((), dt), _q((), dt)
    a_s, b_s, y_s = F32(0.02), F32(0.03), F32(0.7)

    def want(a, a_s, azp, b, b_s, bzp, y_s, yzp):
        acc = (a.astype(np.int64) - int(azp)) @ (b.astype(np.int64) - int(bzp))
        return _requant(acc, F32(a_s * b_s / y_s), yzp)

    check_op("qlinear_matmul", [a, a_s, azp, b, b_s, bzp, y_s, yzp], want)


def test_qlinear_conv_and_conv_integer():
    x, w = _q((2, 3, 6, 5), U8), _q((4, 3, 3, 2), I8)
    xzp, wzp = _q((), U8), _q((), I8)
    attrs = dict(strides=(2, 1), pads=(1, 0, 1, 1), dilations=(1, 1), groups=1)
    acc = lambda x, w, xzp, wzp: _conv_by_hand(x.astype(np.int64) - int(xzp), w.astype(np.int64) - int(wzp), (2, 1),
                                               (1, 0, 1, 1))
    check_op("conv_integer", [x, w, xzp, wzp], lambda *a: acc(*a).astype(np.int32), attrs)
    bias = RNG.integers(-500, 500, (4,)).astype(np.int32)
    x_s, y_s, yzp = F32(0.05), F32(0.4), _q((), U8)
    w_s = np.array([0.01, 0.02, 0.03, 0.04], F32)  # per output channel

    def want(x, x_s, xzp, w, w_s, wzp, y_s, yzp, bias):
        total = acc(x, w, xzp, wzp) + bias[:, None, None]
        info = np.iinfo(yzp.dtype)
        mult = (x_s * w_s / y_s).astype(np.float64)[:, None, None]
        return np.clip(np.rint(total * mult) + int(yzp), info.min, info.max).astype(yzp.dtype)

    check_op("qlinear_conv", [x, x_s, xzp, w, w_s, wzp, y_s, yzp, bias], want, attrs)


def test_conv_integer_per_channel_zero_point_and_groups():
    x, w = _q((1, 4, 5, 5), U8), _q((4, 2, 2, 2), U8)
    wzp = _q((4,), U8)
    attrs = dict(strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=2)

    def want(x, w, xzp, wzp):
        ws = w.astype(np.int64) - wzp[:, None, None, None]
        xs = x.astype(np.int64)
        return np.concatenate([_conv_by_hand(xs[:, :2], ws[:2], (1, 1), (0,) * 4),
                               _conv_by_hand(xs[:, 2:], ws[2:], (1, 1), (0,) * 4)], axis=1).astype(np.int32)

    # onnxruntime's ConvInteger takes per-tensor weight zero points only
    check_op("conv_integer", [x, w, None, wzp], want, attrs, ort=False)


def test_type_rules_name_what_is_wrong():
    with pytest.raises(DTypeError, match="a must be int8 or uint8"):
        irf.matmul_integer(np.ones((2, 2), np.int32), np.ones((2, 2), U8))
    with pytest.raises(DTypeError, match="a_zero_point must have its tensor's dtype uint8"):
        irf.matmul_integer(np.ones((2, 2), U8), np.ones((2, 2), U8), np.int8(0))
    with pytest.raises(ShapeError, match="b_zero_point must be a scalar, one element or 2 values"):
        irf.matmul_integer(np.ones((2, 2), U8), np.ones((2, 2), U8), None, np.zeros((3,), U8))
    with pytest.raises(DTypeError, match="y_scale must be a float tensor"):
        irf.qlinear_matmul(np.ones((2, 2), U8), F32(1), U8(0), np.ones((2, 2), U8), F32(1), U8(0), np.int32(1), U8(0))


def _model(op, inputs, attrs=None, opset=21):
    """One-node model with every input a graph input (nothing known at import)."""
    names = [k for k, _ in inputs]
    vis = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in inputs]
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    out = TensorProto.INT32 if op.endswith("Integer") else vis[-1 if op == "QLinearMatMul" else 7].type.tensor_type.elem_type
    rank = max(np.ndim(v) for _, v in inputs)  # the output has its widest input's rank
    graph = helper.make_graph([node], "g", vis, [helper.make_tensor_value_info("y", out, [None] * rank)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


@pytest.mark.parametrize("op,inputs,attrs", [
    ("MatMulInteger", [("a", _q((3, 4), U8)), ("b", _q((4, 5), I8)), ("azp", _q((), U8)), ("bzp", _q((), I8))], {}),
    ("QLinearMatMul", [("a", _q((2, 3, 4), I8)), ("as", np.array([0.05], F32)), ("azp", np.array([3], I8)),
                       ("b", _q((4, 5), I8)), ("bs", np.array([0.02], F32)), ("bzp", np.array([-2], I8)),
                       ("ys", np.array([0.3], F32)), ("yzp", np.array([1], I8))], {}),
    ("ConvInteger", [("x", _q((1, 2, 5, 6, 4), U8)), ("w", _q((3, 2, 2, 3, 2), U8)), ("xzp", _q((), U8))],
     dict(pads=[1, 0, 1, 0, 1, 1], strides=[1, 2, 1])),
    ("QLinearConv", [("x", _q((1, 2, 5, 6), U8)), ("xs", F32(0.1)), ("xzp", _q((), U8)), ("w", _q((4, 1, 3, 2), I8)),
                     ("ws", np.array([0.01, 0.02, 0.03, 0.04], F32)), ("wzp", np.zeros((4,), I8)), ("ys", F32(0.5)),
                     ("yzp", _q((), U8)), ("B", RNG.integers(-100, 100, (4,)).astype(np.int32))],
     dict(group=2, auto_pad="SAME_UPPER")),
])
def test_imported_against_reference_evaluator_and_onnxruntime(op, inputs, attrs):
    model = _model(op, inputs, attrs)
    feeds = {k: np.asarray(v) for k, v in inputs}
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    ort_want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert np.abs(ort_want.astype(np.int64) - want).max() <= 1  # requantization rounding may differ at ties
    g = irf.onnx.load(model)
    got = irf.run(g, feeds)["y"]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(irf.run(g, feeds, executor="ort")["y"], ort_want)
