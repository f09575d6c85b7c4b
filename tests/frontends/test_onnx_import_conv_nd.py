"""ONNX Conv / ConvTranspose / MaxPool / AveragePool over 3 spatial dims, and pooling with
dilations (any rank), imported to the N-D ops: against onnxruntime on the original model,
on NumPy and re-exported."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import irflow as irf

RNG = np.random.default_rng(0)
W3 = RNG.standard_normal((4, 3, 3, 3, 3)).astype(np.float32)
WT3 = RNG.standard_normal((3, 2, 2, 3, 2)).astype(np.float32)

CASES = [
    ("Conv", dict(pads=[1, 1, 1, 1, 1, 1], strides=[2, 1, 1]), (2, 3, 5, 6, 7), {"w": W3}),
    ("Conv", dict(auto_pad="SAME_UPPER", strides=[2, 2, 1]), (2, 3, 5, 6, 7), {"w": W3}),
    ("Conv", dict(auto_pad="SAME_LOWER", strides=[2, 1, 2]), (1, 3, 5, 6, 4), {"w": W3}),
    ("ConvTranspose", dict(strides=[2, 1, 2], output_padding=[1, 0, 0]), (1, 3, 3, 4, 3), {"w": WT3}),
    ("ConvTranspose", dict(strides=[2, 2, 2], output_shape=[6, 7, 6]), (1, 3, 3, 3, 3), {"w": WT3}),
    ("MaxPool", dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2], ceil_mode=1), (1, 2, 5, 6, 7), {}),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[1, 2], dilations=[2, 1], pads=[1, 1, 1, 1]), (1, 2, 8, 9), {}),
    ("MaxPool", dict(kernel_shape=[3], strides=[2], dilations=[2], ceil_mode=1), (1, 2, 10), {}),
    ("MaxPool", dict(kernel_shape=[3, 3, 3], auto_pad="SAME_UPPER", strides=[2, 2, 2]), (1, 2, 5, 6, 7), {}),
    ("AveragePool", dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2], ceil_mode=1), (1, 2, 5, 6, 7), {}),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 2], dilations=[2, 1], pads=[1, 1, 1, 1]), (1, 2, 8, 9), {}),
    ("AveragePool", dict(kernel_shape=[3, 3, 3], pads=[1, 1, 1, 1, 1, 1], count_include_pad=1), (1, 2, 4, 4, 4), {}),
]


@pytest.mark.parametrize("op,attrs,xshape,inits", CASES)
def test_matches_onnxruntime(op, attrs, xshape, inits):
    node = helper.make_node(op, ["x", *inits], ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, xshape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * len(xshape))],
                              [helper.make_tensor(k, TensorProto.FLOAT, v.shape, v.ravel()) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    x = RNG.standard_normal(xshape).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    g = irf.onnx.load(model)
    assert not {"conv2d", "max_pool2d", "avg_pool2d", "conv_transpose2d"} & {n.op for n in g.nodes}
    for executor in ("numpy", "ort"):
        np.testing.assert_allclose(irf.run(g, {"x": x}, executor=executor)["y"], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attrs,xshape", [
    (dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), (2, 3, 7, 6)),
    (dict(kernel_shape=[2, 2, 2], strides=[1, 2, 2], dilations=[2, 1, 1]), (1, 2, 5, 4, 6)),
    (dict(kernel_shape=[3], strides=[2], ceil_mode=1), (2, 2, 8)),
])
def test_max_pool_indices_output_matches_onnxruntime(attrs, xshape):
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, xshape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * len(xshape)),
                               helper.make_tensor_value_info("i", TensorProto.INT64, [None] * len(xshape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    x = RNG.standard_normal(xshape).astype(np.float32)
    y, i = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_array_equal(x.reshape(-1)[i], y)  # what Indices means, independently of irflow
    g = irf.onnx.load(model)
    for executor in ("numpy", "ort"):
        out = irf.run(g, {"x": x}, executor=executor)
        np.testing.assert_array_equal(out["y"], y)
        np.testing.assert_array_equal(out["i"], i)


def test_max_pool_gradient_model_reimports(tmp_path):
    # The gradient of a max pool lowers to MaxPool's Indices + ScatterElements; irflow must
    # import what it exports (`irflow grad` then `irflow run`).
    from irflow.autodiff.vjp import vjp

    b = irf.GraphBuilder("cnn")
    x = b.input("x", "float32", (2, 3, 8, 8))
    w = b.constant(RNG.standard_normal((4, 3, 3, 3)).astype(np.float32), name="w")
    with b:
        h = irf.max_pool2d(irf.relu(irf.conv2d(x, w, padding=1)), 2)
        h3 = irf.max_pool(irf.expand_dims(h, 2), (1, 2, 2))
        b.output(irf.reduce_sum(h3 * h3))
    gg = vjp(b.build(), ["x", "w"], seed="ones")
    path = tmp_path / "grad.onnx"
    irf.onnx.save(gg, str(path))
    back = irf.onnx.load(str(path))
    feeds = {"x": RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)}
    want = irf.run(gg, feeds)
    got = irf.run(back, feeds)
    on_ort = irf.onnx.run(str(path), feeds)  # the saved file on onnxruntime: a reference outside irflow
    for name in gg.output_names:
        np.testing.assert_allclose(want[name], on_ort[name], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


def _one_node_model(op, attrs, xshape, outs=("y",), x_type=TensorProto.FLOAT, out_types=None, opset=22):
    node = helper.make_node(op, ["x"], list(outs), **attrs)
    out_types = out_types or [x_type] * len(outs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", x_type, xshape)],
                              [helper.make_tensor_value_info(o, t, [None] * len(xshape)) for o, t in zip(outs, out_types)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _lp_pool_by_hand(x, kernel, strides, dil, pads, p, out_sizes):
    """Each output: (sum of |x|^p over its window)^(1/p), taps outside x (padding, or past the
    end for ceil_mode's last window) adding nothing."""
    r = len(kernel)
    y = np.zeros(x.shape[:2] + tuple(out_sizes))
    for pos in np.ndindex(*out_sizes):
        total = 0.0
        for tap in np.ndindex(*kernel):
            idx = [pos[i] * strides[i] - pads[i] + tap[i] * dil[i] for i in range(r)]
            if all(0 <= idx[i] < x.shape[2 + i] for i in range(r)):
                total = total + np.abs(x[(slice(None), slice(None)) + tuple(idx)].astype(np.float64)) ** p
        y[(slice(None), slice(None)) + pos] = total ** (1.0 / p)
    return y


@pytest.mark.parametrize("attrs,xshape,pads,out_sizes", [
    (dict(kernel_shape=[2, 2, 2], p=3), (1, 2, 5, 6, 4), [0, 0, 0], (4, 5, 3)),
    (dict(kernel_shape=[2, 2], dilations=[2, 2], p=2), (1, 2, 6, 5), [0, 0], (4, 3)),
    (dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1], ceil_mode=1, p=2), (2, 2, 8, 7), [1, 0], (5, 4)),
    (dict(kernel_shape=[3, 3, 2], strides=[2, 1, 2], dilations=[1, 2, 1], ceil_mode=1, p=1), (1, 2, 6, 7, 5),
     [0, 0, 0], (3, 3, 3)),
    (dict(kernel_shape=[2, 3, 2], auto_pad="SAME_LOWER", strides=[2, 2, 1], p=2), (1, 1, 5, 6, 4), [1, 1, 1], (3, 3, 4)),
])
def test_lp_pool_nd_matches_references(attrs, xshape, pads, out_sizes):
    """LpPool over 3-D, with dilations, with ceil_mode: a hand-written window sum and
    onnxruntime on the original model against irflow on NumPy and re-exported; without
    ceil_mode also onnx's reference evaluator (which scales ceil_mode's partial last windows
    by the full kernel size, unlike onnxruntime and the sum ONNX specifies)."""
    from onnx.reference import ReferenceEvaluator

    model = _one_node_model("LpPool", attrs, xshape)
    x = RNG.standard_normal(xshape).astype(np.float32)
    r = len(xshape) - 2
    want = _lp_pool_by_hand(x, attrs["kernel_shape"], attrs.get("strides", [1] * r), attrs.get("dilations", [1] * r),
                            pads, attrs["p"], out_sizes)
    ort_want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(ort_want, want, rtol=1e-5, atol=1e-5)
    if not attrs.get("ceil_mode"):
        np.testing.assert_allclose(ReferenceEvaluator(model).run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-5)
    g = irf.onnx.load(model)
    for executor in ("numpy", "ort"):
        np.testing.assert_allclose(irf.run(g, {"x": x}, executor=executor)["y"], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attrs,xshape", [
    (dict(kernel_shape=[2, 2], strides=[2, 2], storage_order=1), (2, 3, 5, 5)),
    (dict(kernel_shape=[3, 2], strides=[1, 2], pads=[1, 0, 1, 1], storage_order=1), (1, 2, 4, 7)),
    (dict(kernel_shape=[2, 2, 2], strides=[2, 1, 2], storage_order=1), (1, 2, 4, 3, 5)),
])
def test_max_pool_column_major_indices(attrs, xshape):
    from onnx.reference import ReferenceEvaluator

    model = _one_node_model("MaxPool", attrs, xshape, outs=("y", "i"), out_types=[TensorProto.FLOAT, TensorProto.INT64])
    x = RNG.standard_normal(xshape).astype(np.float32)
    y, i = ReferenceEvaluator(model).run(None, {"x": x})
    # column-major spatial positions (first spatial dim fastest), N and C outermost: by hand
    n, c = xshape[:2]
    col_major = np.stack([np.stack([x[a, b].transpose().reshape(-1) for b in range(c)]) for a in range(n)])
    np.testing.assert_array_equal(col_major.reshape(-1)[i], y)
    ort_i = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[1]
    np.testing.assert_array_equal(ort_i, i)
    g = irf.onnx.load(model)
    for executor in ("numpy", "ort"):
        out = irf.run(g, {"x": x}, executor=executor)
        np.testing.assert_array_equal(out["y"], y)
        np.testing.assert_array_equal(out["i"], i)


def test_max_pool_uint8_and_int8():
    from onnx.reference import ReferenceEvaluator

    for x_type, dtype in ((TensorProto.UINT8, np.uint8), (TensorProto.INT8, np.int8)):
        model = _one_node_model("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 1], pads=[1, 1, 1, 1]), (1, 2, 5, 6),
                                x_type=x_type)
        info = np.iinfo(dtype)
        x = RNG.integers(info.min, info.max + 1, (1, 2, 5, 6)).astype(dtype)
        # by hand: pad with the dtype's minimum (never chosen over a real element), window max
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=info.min)
        want = np.stack([np.stack([np.max(xp[:, :, 2 * a:2 * a + 3, b:b + 3], axis=(2, 3)) for b in range(6)], -1)
                         for a in range(3)], -2)
        np.testing.assert_array_equal(ReferenceEvaluator(model).run(None, {"x": x})[0], want)
        g = irf.onnx.load(model)
        for executor in ("numpy", "ort"):
            got = irf.run(g, {"x": x}, executor=executor)["y"]
            assert got.dtype == dtype
            np.testing.assert_array_equal(got, want)
