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
    for name in gg.output_names:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)
