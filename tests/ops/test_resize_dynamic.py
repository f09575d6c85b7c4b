"""``resize_dynamic`` (ONNX Resize with run-time roi / scales / sizes), its transpose
``resize_dynamic_grad``, and antialias on both Resize paths.

References: onnx's ReferenceEvaluator on the original Resize node (the specification), NumPy
written here (repeat, the linear formula, the dense interpolation matrix), onnxruntime on the
original model (what the exported model must reproduce), finite differences in float64."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import irflow as irf
from irflow.errors import DTypeError, ExecutorError, ShapeError
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.ops.resize import resize_attrs
from tests.ops.harness import build_graph, check_grad, check_op

RNG = np.random.default_rng(7)
F32 = TensorProto.FLOAT


def resize_model(x_shape, *, roi=None, scales=None, sizes=None, const=(), opset=19, **attrs):
    """One Resize node; roi / scales / sizes are graph inputs (run-time) unless named in ``const``."""
    inputs = [helper.make_tensor_value_info("x", F32, list(x_shape))]
    inits, names = [], ["x"]
    for name, value, dtype in (("roi", roi, F32), ("scales", scales, F32), ("sizes", sizes, TensorProto.INT64)):
        if value is None:
            names.append("")
            continue
        names.append(name)
        if name in const:
            inits.append(helper.make_tensor(name, dtype, (len(value),), list(value)))
        else:
            inputs.append(helper.make_tensor_value_info(name, dtype, [len(value)]))
    while names[-1] == "":
        names.pop()
    node = helper.make_node("Resize", names, ["y"], **attrs)
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", F32, [None] * len(x_shape))], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


def feeds_of(model, x, **args):
    names = {i.name for i in model.graph.input}
    out = {"x": x}
    for k, v in args.items():
        if k in names and v is not None:
            out[k] = np.asarray(v, np.int64 if k == "sizes" else np.float32)
    return out


def ort_run(model, feeds):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


CASES = [  # (x shape, args, attrs): the specification's modes with run-time arguments
    ((1, 1, 4, 4), dict(scales=[1, 1, 0.6, 0.8]), dict(mode="linear")),
    ((1, 1, 4, 4), dict(scales=[1, 1, 2, 1.5]), dict(mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1)),
    ((2, 3, 5), dict(sizes=[2, 3, 9]), dict(mode="nearest", nearest_mode="ceil", coordinate_transformation_mode="asymmetric")),
    ((1, 2, 6, 5), dict(sizes=[3, 8]), dict(mode="linear", axes=[3, 2], coordinate_transformation_mode="pytorch_half_pixel")),
    ((1, 1, 5, 7), dict(sizes=[3, 3]), dict(mode="nearest", axes=[2, 3], keep_aspect_ratio_policy="not_larger")),
    ((1, 1, 5, 7), dict(sizes=[3, 3]), dict(mode="cubic", axes=[2, 3], keep_aspect_ratio_policy="not_smaller")),
    ((1, 1, 4, 6), dict(roi=[0.1, 0.3, 0.8, 0.9], sizes=[3, 5]),
     dict(mode="linear", axes=[2, 3], coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=10.0)),
    ((1, 1, 4, 6), dict(roi=[0, 0, -0.2, 0.13, 1, 1, 1.3, 0.77], scales=[1, 1, 1.5, 0.5]),  # no ties in float32
     dict(mode="nearest", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-1.0)),
    ((1, 1, 8, 8), dict(scales=[1, 1, 0.4, 0.6]), dict(mode="linear", antialias=1)),
    ((1, 1, 8, 8), dict(sizes=[3, 5]), dict(mode="cubic", antialias=1, axes=[2, 3], exclude_outside=1)),
    ((1, 1, 4, 4), dict(scales=[1, 1, 3, 3]), dict(mode="linear", antialias=1, coordinate_transformation_mode="half_pixel_symmetric")),
]


@pytest.mark.parametrize("shape,args,attrs", CASES, ids=[f"{c[2]['mode']}-{i}" for i, c in enumerate(CASES)])
def test_run_time_arguments_match_the_specification_and_onnxruntime(shape, args, attrs):
    model = resize_model(shape, **args, **attrs)
    x = RNG.standard_normal(shape).astype(np.float32)
    feeds = feeds_of(model, x, **args)
    g = irf.onnx.load(model)
    assert [n.op for n in g.nodes] == ["resize_dynamic"]
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    got = irf.run(g, feeds)["y"]
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the export is ONNX Resize with the same inputs: onnxruntime gives what it gives on the original
    exported = irf.onnx.to_model(g)
    assert [n.op_type for n in exported.graph.node] == ["Resize"]
    np.testing.assert_allclose(irf.run(g, feeds, executor="ort")["y"], ort_run(model, feeds), rtol=1e-5, atol=1e-5)


def test_type_keeps_the_dims_it_can_know():
    b = irf.GraphBuilder("t")
    x = b.input("x", "float32", ("N", 3, 8, 8))
    s = b.input("s", "float32", (2,))
    y = b.add_node("resize_dynamic", [x, None, s], dict(mode="linear", axes=(2, 3)))
    assert y.type.shape == ("N", 3, None, None)
    z = b.add_node("resize_dynamic", [x, None, b.input("s4", "float32", (4,))], dict(mode="linear"))
    assert z.type.shape == (None, None, None, None)  # every axis may be resized


def test_type_rule_errors_name_the_op():
    b = irf.GraphBuilder("t")
    x = b.input("x", "float32", (1, 3, 8, 8))
    with pytest.raises(DTypeError, match="resize_dynamic: sizes must be int64"):
        b.add_node("resize_dynamic", [x, None, None, b.input("sz", "int32", (2,))], dict(axes=(2, 3)))
    with pytest.raises(ShapeError, match="resize_dynamic: scales has 3 values"):
        b.add_node("resize_dynamic", [x, None, b.input("s", "float32", (3,))], dict(axes=(2, 3)))
    with pytest.raises(ShapeError, match="exactly one of scales and sizes"):
        b.add_node("resize_dynamic", [x, None, b.input("s2", "float32", (2,)), b.input("z", "int64", (2,))], dict(axes=(2, 3)))


def test_bad_run_time_values_are_executor_errors_naming_the_op():
    model = resize_model((1, 1, 4, 4), scales=[1, 1, 2, 2], mode="linear")
    g = irf.onnx.load(model)
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ExecutorError, match="resize_dynamic: scales .* finite positive"):
        irf.run(g, {"x": x, "scales": np.array([1, 1, -2, 2], np.float32)})
    model = resize_model((1, 1, 4, 4), sizes=[1, 1, 2, 2], mode="linear")
    with pytest.raises(ExecutorError, match="resize_dynamic: sizes .* non-negative"):
        irf.run(irf.onnx.load(model), {"x": x, "sizes": np.array([1, 1, -2, 2], np.int64)})


def test_nearest_upsample_by_run_time_scales_is_repeat():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    y = irf.bind("resize_dynamic", irf.tensor(x), None, irf.tensor(np.array([2.0, 3.0], np.float32)), mode="nearest",
                 axes=(1, 2), coordinate_transformation_mode="asymmetric", nearest_mode="floor").numpy()
    np.testing.assert_array_equal(y, np.repeat(np.repeat(x, 2, axis=1), 3, axis=2))


def test_linear_by_run_time_sizes_matches_the_formula():
    x = RNG.standard_normal((3, 5))
    y = irf.bind("resize_dynamic", irf.tensor(x), None, None, irf.tensor(np.array([8], np.int64)), mode="linear",
                 axes=(1,)).numpy()
    c = np.clip((np.arange(8) + 0.5) * 5 / 8 - 0.5, 0, None)  # half_pixel, clamped at the left edge
    lo = np.floor(c).astype(int)
    hi = np.minimum(lo + 1, 4)
    t = c - lo
    np.testing.assert_allclose(y, x[:, lo] * (1 - t) + x[:, hi] * t, rtol=1e-12)


def dense_matrix(in_size, out_size, *, reference_attrs, scale):
    """The (out, in) matrix of a 1-D resize, column j = the specification's resize of e_j."""
    eye = np.eye(in_size, dtype=np.float32)
    model = resize_model((in_size, in_size), scales=[1, scale], const=("scales",), **reference_attrs)
    return ReferenceEvaluator(model).run(None, {"x": eye})[0].T.astype(np.float64)


@pytest.mark.parametrize("attrs,scale", [(dict(mode="linear"), 1.75), (dict(mode="cubic", antialias=1), 0.5),
                                         (dict(mode="nearest", coordinate_transformation_mode="align_corners"), 0.6)])
def test_transpose_is_the_transposed_interpolation_matrix(attrs, scale):
    x = RNG.standard_normal((2, 7))
    m = dense_matrix(7, int(7 * scale), reference_attrs=attrs, scale=scale)
    g = RNG.standard_normal((2, m.shape[0]))
    scales = np.array([scale], np.float32)
    got = irf.bind("resize_dynamic_grad", irf.tensor(g), irf.tensor(x), None, irf.tensor(scales), axes=(1,), **attrs).numpy()
    # m's weights come from the reference evaluator in float32 (~6e-8 relative each), so an entry
    # that cancels to near zero is off by ~1e-8 absolute: atol 1e-9 failed for some RNG draws
    np.testing.assert_allclose(got, g @ m, rtol=1e-6, atol=1e-6)
    fwd = irf.bind("resize_dynamic", irf.tensor(x), None, irf.tensor(scales), axes=(1,), **attrs).numpy()
    np.testing.assert_allclose(fwd, x @ m.T, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("attrs,args", [
    (dict(mode="linear", axes=(1, 2)), dict(scales=np.array([1.5, 0.5], np.float32))),
    (dict(mode="cubic", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=3.0, axes=(1, 2)),
     # (not an output size equal to the input's: onnxruntime then returns the input, ignoring roi)
     dict(roi=np.array([0.2, -0.1, 0.9, 0.8]), sizes=np.array([4, 7]))),
    (dict(mode="linear", antialias=1, axes=(2,)), dict(scales=np.array([0.4], np.float32))),
])
def test_gradient_op_on_numpy_and_onnxruntime_and_finite_differences(attrs, args):
    """resize_dynamic_grad through the harness (its ONNX lowering builds each axis' matrix as
    Resize of an identity), and resize_dynamic's VJP wrt x against finite differences."""
    x = RNG.standard_normal((2, 5, 6)).astype(np.float32)
    ins = [x, args.get("roi"), args.get("scales"), args.get("sizes")]
    while ins[-1] is None:
        ins.pop()
    y = irf.bind("resize_dynamic", *[None if a is None else irf.tensor(a) for a in ins], **attrs).numpy()
    g = RNG.standard_normal(y.shape).astype(np.float32)
    check_op("resize_dynamic_grad", [g] + ins, None, attrs, grad_inputs=(0,), ort_rtol=1e-4, ort_atol=1e-5)
    check_grad("resize_dynamic", ins, attrs, grad_inputs=(0,))


def test_gradient_of_an_imported_run_time_resize_exports():
    model = resize_model((1, 2, 4, 5), scales=[1, 1, 1.5, 0.6], mode="linear")
    g = irf.onnx.load(model)
    gg = vjp(g, wrt=["x"])
    x = RNG.standard_normal((1, 2, 4, 5)).astype(np.float32)
    scales = np.array([1, 1, 1.5, 0.6], np.float32)
    y = irf.run(g, {"x": x, "scales": scales})["y"]
    ct = RNG.standard_normal(y.shape).astype(np.float32)
    ct_name = next(v.name for v in gg.inputs if v.name not in ("x", "scales"))
    feeds = {"x": x, "scales": scales, ct_name: ct}
    out = gg.output_names[-1]
    on_numpy = irf.run(gg, feeds)[out]
    np.testing.assert_allclose(irf.run(gg, feeds, executor="ort")[out], on_numpy, rtol=1e-5, atol=1e-6)
    # against the static op's VJP (a matmul with each axis' constant matrix)
    static = irf.onnx.load(resize_model((1, 2, 4, 5), scales=[1, 1, 1.5, 0.6], const=("scales",), mode="linear"))
    assert [n.op for n in static.nodes] == ["resize"]
    sg = vjp(static, wrt=["x"])
    ct_static = next(v.name for v in sg.inputs if v.name != "x")
    np.testing.assert_allclose(irf.run(sg, {"x": x, ct_static: ct})[sg.output_names[-1]], on_numpy, rtol=1e-5, atol=1e-6)


def test_vmap_with_unbatched_scales_needs_no_loop():
    b = irf.GraphBuilder("v")
    x = b.input("x", "float64", (3, 4))
    s = b.input("s", "float32", (1,))
    b.output(b.add_node("resize_dynamic", [x, None, s], dict(mode="cubic", axes=(1,))))
    graph = b.build()
    from irflow.autodiff.vmap_transform import vmap_graph

    batched = vmap_graph(graph, [0, None], 5)
    assert [n.op for n in batched.nodes if n.op == "scan"] == []
    xs = RNG.standard_normal((5, 3, 4))
    scales = np.array([1.75], np.float32)
    got = Interpreter(batched).run({"x": xs, "s": scales})[batched.output_names[0]]
    want = np.stack([Interpreter(graph).run({"x": xi, "s": scales})[graph.output_names[0]] for xi in xs])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_symbolic_resized_axis_with_constant_scales_runs_at_run_time():
    """A resized axis of symbolic size used to be unsupported; its output size is now computed when it runs."""
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", F32, [1, 1, "H", "W"])],
                              [helper.make_tensor_value_info("y", F32, [None] * 4)],
                              [helper.make_tensor("scales", F32, (4,), [1, 1, 2, 0.5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    g = irf.onnx.load(model)
    assert [n.op for n in g.nodes] == ["resize_dynamic"]
    x = RNG.standard_normal((1, 1, 3, 8)).astype(np.float32)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(irf.run(g, {"x": x})["y"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(irf.run(g, {"x": x}, executor="ort")["y"], ort_run(model, {"x": x}), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_antialias_on_the_static_path(mode):
    """Constant scales with antialias=1 stay the static ``resize`` op (antialias attribute)."""
    model = resize_model((1, 1, 9, 9), scales=[1, 1, 0.45, 0.7], const=("scales",), mode=mode, antialias=1)
    g = irf.onnx.load(model)
    assert [n.op for n in g.nodes] == ["resize"] and g.nodes[0].attrs["antialias"] == 1
    x = RNG.standard_normal((1, 1, 9, 9)).astype(np.float32)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(irf.run(g, {"x": x})["y"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(irf.run(g, {"x": x}, executor="ort")["y"], ort_run(model, {"x": x}), rtol=1e-5, atol=1e-6)


def test_static_antialias_matches_the_dense_matrices_and_its_gradient():
    x = RNG.standard_normal((1, 1, 8, 6)).astype(np.float32)
    attrs = resize_attrs(axes=(2, 3), out_sizes=(3, 4), scales=(3 / 8, 4 / 6), mode="linear", antialias=1)
    m = dense_matrix(8, 3, reference_attrs=dict(mode="linear", antialias=1), scale=3 / 8)
    n = dense_matrix(6, 4, reference_attrs=dict(mode="linear", antialias=1), scale=4 / 6)
    check_op("resize", [x], lambda x: (np.einsum("ij,klj...->kli...", m, x.astype(np.float64)) @ n.T).astype(np.float32),
             attrs, rtol=1e-5, atol=1e-6)


def test_opset_13_style_empty_scales_with_run_time_sizes():
    """Opset 11-13 models pass an empty scales tensor next to sizes; a run-time roi is ignored
    outside tf_crop_and_resize."""
    node = helper.make_node("Resize", ["x", "roi", "scales", "sizes"], ["y"], mode="linear")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", F32, [1, 1, 4, 6]),
                                            helper.make_tensor_value_info("roi", F32, [8]),
                                            helper.make_tensor_value_info("sizes", TensorProto.INT64, [4])],
                              [helper.make_tensor_value_info("y", F32, [None] * 4)],
                              [helper.make_tensor("scales", F32, (0,), [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    g = irf.onnx.load(model)
    assert [n.op for n in g.nodes] == ["resize_dynamic"]
    feeds = {"x": RNG.standard_normal((1, 1, 4, 6)).astype(np.float32), "roi": np.zeros(8, np.float32),
             "sizes": np.array([1, 1, 7, 3], np.int64)}
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    np.testing.assert_allclose(irf.run(g, feeds)["y"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(irf.run(g, feeds, executor="ort")["y"], ort_run(model, feeds), rtol=1e-5, atol=1e-6)


def test_tiny_antialias_scale_with_an_empty_output_is_empty():
    y = irf.bind("resize_dynamic", irf.tensor(np.ones((2, 5))), None, irf.tensor(np.array([1e-12], np.float32)),
                 mode="linear", antialias=1, axes=(1,)).numpy()
    assert y.shape == (2, 0)


def test_gradient_export_names_what_is_missing_for_keep_aspect_ratio():
    attrs = dict(mode="linear", axes=(1, 2), keep_aspect_ratio_policy="not_larger")
    x = RNG.standard_normal((1, 4, 6)).astype(np.float32)
    sizes = np.array([2, 2])
    # not_larger: scale min(2/4, 2/6) = 1/3 -> output sizes round(4/3), round(6/3) = (1, 2)
    want = irf.bind("resize_dynamic", irf.tensor(x), None, None, irf.tensor(sizes), **attrs).numpy()
    assert want.shape == (1, 1, 2)
    ct = RNG.standard_normal(want.shape).astype(np.float32)
    gx = irf.bind("resize_dynamic_grad", irf.tensor(ct), irf.tensor(x), None, None, irf.tensor(sizes), **attrs).numpy()
    assert gx.shape == x.shape
    np.testing.assert_allclose(np.sum(x * gx), np.sum(want * ct), rtol=1e-5)  # <x, R^T ct> = <R x, ct>
    graph = build_graph("resize_dynamic_grad", [ct, x, None, None, sizes], attrs)
    with pytest.raises(irf.errors.UnsupportedOpError, match="keep_aspect_ratio_policy 'not_larger' has no ONNX lowering"):
        irf.onnx.to_model(graph)


def test_torch_interpolate_to_a_run_time_size_forward_and_gradient(tmp_path):
    """A UNet-style skip connection: F.interpolate to another tensor's symbolic size exports
    Resize with sizes computed from Shape; it imports as resize_dynamic and matches torch
    (values and the gradient wrt x) on NumPy and on onnxruntime."""
    torch = pytest.importorskip("torch", reason="compared against PyTorch where it is installed")
    import torch.nn.functional as F

    class Up(torch.nn.Module):
        def forward(self, x, skip):
            return F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False) * skip

    x = torch.randn(2, 3, 5, 7, requires_grad=True)
    skip = torch.randn(2, 3, 11, 13)
    path = tmp_path / "up.onnx"
    torch.onnx.export(Up(), (x, skip), str(path), dynamo=False, input_names=["x", "skip"], output_names=["y"],
                      dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}, "skip": {0: "N", 2: "H2", 3: "W2"}}, opset_version=18)
    g = irf.onnx.load(path)
    assert "resize_dynamic" in [n.op for n in g.nodes]
    want = Up()(x, skip)
    ct = RNG.standard_normal(tuple(want.shape)).astype(np.float32)
    want.backward(torch.from_numpy(ct))
    gg = vjp(g, wrt=["x"])
    ct_name = next(v.name for v in gg.inputs if v.name not in ("x", "skip"))
    feeds = {"x": x.detach().numpy(), "skip": skip.numpy()}
    for executor in ("numpy", "ort"):
        np.testing.assert_allclose(irf.run(g, feeds, executor=executor)["y"], want.detach().numpy(), rtol=1e-5, atol=1e-5)
        got = irf.run(gg, {**feeds, ct_name: ct}, executor=executor)[gg.output_names[-1]]
        np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-5, atol=1e-5)
