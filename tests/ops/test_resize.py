"""The ``resize`` op (ONNX Resize as one op): NumPy references written here, the harness
(type rule, interpreter, onnxruntime on the ONNX Resize it lowers to, finite differences of
its matmul VJP), and ONNX import keeping Resize as Resize."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import irflow as irf
from irflow.ops.resize import resize_attrs
from tests.ops.harness import check_op

RNG = np.random.default_rng(0)


def linear_1d(x, out_size, axis, coords):
    """Linear interpolation along ``axis`` at source ``coords``, edges clamped."""
    n = x.shape[axis]
    lo = np.clip(np.floor(coords), 0, n - 1).astype(int)
    hi = np.clip(np.floor(coords) + 1, 0, n - 1).astype(int)
    t = (coords - np.floor(coords)).reshape((-1,) + (1,) * (x.ndim - axis - 1))
    return np.take(x, lo, axis=axis) * (1 - t) + np.take(x, hi, axis=axis) * t


def test_nearest_upsample_is_repeat():
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    attrs = resize_attrs(axes=(2, 3), out_sizes=(8, 15), scales=(2.0, 3.0), mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    check_op("resize", [x], lambda x: np.repeat(np.repeat(x, 2, axis=2), 3, axis=3), attrs)


@pytest.mark.parametrize("cmode", ["half_pixel", "align_corners", "asymmetric"])
def test_linear_matches_the_formula(cmode):
    x = RNG.standard_normal((1, 2, 5, 4)).astype(np.float32)
    out = (9, 8)

    def ref(x):
        y = x.astype(np.float64)
        for axis, o in zip((2, 3), out):
            n = x.shape[axis]
            i = np.arange(o, dtype=np.float64)
            scale = o / n
            coords = {"half_pixel": (i + 0.5) / scale - 0.5, "align_corners": i * (n - 1) / (o - 1),
                      "asymmetric": i / scale}[cmode]
            y = linear_1d(y, o, axis, coords)
        return y.astype(np.float32)

    attrs = resize_attrs(axes=(2, 3), out_sizes=out, scales=(9 / 5, 2.0), mode="linear",
                         coordinate_transformation_mode=cmode)
    check_op("resize", [x], ref, attrs, rtol=1e-5, atol=1e-5)


def test_cubic_downsample_gradient_and_ort():
    x = RNG.standard_normal((1, 1, 6, 6)).astype(np.float32)
    attrs = resize_attrs(axes=(2, 3), out_sizes=(4, 3), scales=(4 / 6, 0.5), mode="cubic", exclude_outside=1)
    check_op("resize", [x], None, attrs, rtol=1e-5, atol=1e-5)


def test_imported_resize_exports_as_resize():
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor("scales", TensorProto.FLOAT, (4,), [1, 1, 2, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    g = irf.onnx.load(model)
    assert [n.op for n in g.nodes] == ["resize"]
    exported = irf.onnx.to_model(g)
    assert [n.op_type for n in exported.graph.node] == ["Resize"]
    x = RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    for executor in ("numpy", "ort"):
        np.testing.assert_allclose(irf.run(g, {"x": x}, executor=executor)["y"], want, rtol=1e-5, atol=1e-6)
