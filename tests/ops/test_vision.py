"""The vision sampling ops against independent references: onnx's reference evaluator (the
specification in Python), onnxruntime (through the harness: the ONNX op each lowers to),
PyTorch where installed, finite differences in float64, and vmap against a Python loop."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import irflow as irf
from irflow.errors import DTypeError, IRValidationError, ShapeError
from tests.ops.harness import check_op

RNG = np.random.default_rng(0)


def onnx_reference(op_type: str, inputs: list, opset: int, **attrs):
    """One node of ``op_type`` run by onnx.reference.ReferenceEvaluator."""
    names = [f"i{k}" for k in range(len(inputs))]
    node = helper.make_node(op_type, names, ["y"], **attrs)
    vis = [helper.make_tensor_value_info(nm, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for nm, a in zip(names, inputs)]
    graph = helper.make_graph([node], "g", vis, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))[0]


# -- grid_sample --------------------------------------------------------------------------------------

def _grid(shape, spread=1.3):
    """Grid values in [-spread, spread] (past the edges too), none exactly on a pixel boundary."""
    return RNG.uniform(-spread, spread, shape).astype(np.float32)


GS_CASES = [(m, p, a) for m in ("nearest", "linear", "cubic") for p in ("zeros", "border", "reflection") for a in (0, 1)]


@pytest.mark.parametrize("mode,padding,align", GS_CASES)
def test_grid_sample_2d_matches_onnx_reference_ort_and_gradients(mode, padding, align):
    x = RNG.standard_normal((2, 3, 5, 4)).astype(np.float32)
    grid = _grid((2, 3, 6, 2))
    attrs = dict(mode=mode, padding_mode=padding, align_corners=align)
    want = onnx_reference("GridSample", [x, grid], 20, **attrs)
    # onnxruntime's cubic border padding disagrees with the specification's reference near the
    # edges (it clamps differently); irflow follows the reference, so ORT is not compared there.
    check_op("grid_sample", [x, grid], lambda x, g: want, attrs, rtol=1e-5, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-5,
             ort=(mode, padding) != ("cubic", "border"))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_grid_sample_volumetric(mode, padding):
    x = RNG.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    grid = _grid((1, 2, 3, 2, 3))
    attrs = dict(mode=mode, padding_mode=padding, align_corners=0)
    want = onnx_reference("GridSample", [x, grid], 20, **attrs)
    check_op("grid_sample", [x, grid], lambda x, g: want, attrs, rtol=1e-5, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-5)


def test_grid_sample_identity_grid_reads_every_pixel():
    """align_corners=True with a grid through the pixel centres returns x itself (hand reference)."""
    x = RNG.standard_normal((1, 2, 3, 4)).astype(np.float32)
    ys, xs = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 4), indexing="ij")
    grid = np.stack([xs, ys], axis=-1)[None].astype(np.float32)
    for mode in ("nearest", "linear", "cubic"):
        got = irf.grid_sample(irf.tensor(x), irf.tensor(grid), mode=mode, align_corners=True).numpy()
        np.testing.assert_allclose(got, x, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
def test_grid_sample_matches_torch_values_and_both_gradients(mode, padding, align):
    torch = pytest.importorskip("torch", reason="PyTorch cross-checks need torch")
    x = RNG.standard_normal((2, 3, 5, 6))
    grid = RNG.uniform(-1.2, 1.2, (2, 4, 3, 2))
    ct = RNG.standard_normal((2, 3, 4, 3))
    tx = torch.tensor(x, requires_grad=True)
    tg = torch.tensor(grid, requires_grad=True)
    ty = torch.nn.functional.grid_sample(tx, tg, mode=mode, padding_mode=padding, align_corners=align)
    (ty * torch.tensor(ct)).sum().backward()

    def loss(x, grid):
        return irf.reduce_sum(irf.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=align) * ct)

    y = irf.grid_sample(irf.tensor(x), irf.tensor(grid), mode=mode, padding_mode=padding, align_corners=align)
    gx, gg = irf.grad(loss, argnums=(0, 1))(irf.tensor(x), irf.tensor(grid))
    if mode == "bicubic" and padding != "zeros":
        # PyTorch pads each cubic tap but does not clamp/reflect the coordinate first; ONNX
        # (and irflow) do both, so the two differ near the edges: compare inside only.
        inside = np.all(np.abs(grid) < (0.5 if not align else 0.6), axis=-1)[:, None]
        np.testing.assert_allclose(np.where(inside, y.numpy(), 0), np.where(inside, ty.detach().numpy(), 0), atol=1e-10)
        return
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gx.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gg.numpy(), tg.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_grid_sample_second_order_gradient_matches_finite_differences():
    """The VJP is IR, so it differentiates again: d/dgrid of <grad_x, v> against central differences."""
    x = RNG.standard_normal((1, 1, 4, 4))
    grid = RNG.uniform(-0.9, 0.9, (1, 2, 2, 2))
    v = RNG.standard_normal(x.shape)

    def inner(grid):
        gx = irf.grad(lambda x: irf.reduce_sum(irf.grid_sample(x, grid, mode="cubic") ** 2))(irf.tensor(x))
        return irf.reduce_sum(gx * v)

    got = irf.grad(inner)(irf.tensor(grid)).numpy()
    eps = 1e-6
    for k in np.ndindex(grid.shape):
        gp, gm = grid.copy(), grid.copy()
        gp[k] += eps
        gm[k] -= eps
        fd = (inner(irf.tensor(gp)).numpy() - inner(irf.tensor(gm)).numpy()) / (2 * eps)
        assert abs(fd - got[k]) < 1e-5 * max(1.0, abs(fd)), (k, fd, got[k])


def test_grid_sample_vmap_folds_into_the_batch():
    xs = RNG.standard_normal((3, 2, 1, 4, 4)).astype(np.float32)
    grids = _grid((3, 2, 2, 5, 2))
    f = irf.function(lambda x, g: irf.vmap(lambda a, b: irf.grid_sample(a, b, padding_mode="border"))(x, g))
    got = f(irf.tensor(xs), irf.tensor(grids)).numpy()
    assert "scan" not in [n.op for n in f.get_graph(irf.tensor(xs), irf.tensor(grids)).nodes]
    for b in range(3):
        want = irf.grid_sample(irf.tensor(xs[b]), irf.tensor(grids[b]), padding_mode="border").numpy()
        np.testing.assert_allclose(got[b], want, rtol=1e-6, atol=1e-6)


def test_grid_sample_errors_name_the_problem():
    x = irf.tensor(np.zeros((2, 1, 3, 3), np.float32))
    with pytest.raises(ShapeError, match="batch 2 but grid has batch 1"):
        irf.grid_sample(x, irf.tensor(np.zeros((1, 2, 2, 2), np.float32)))
    with pytest.raises(ShapeError, match="one coordinate per spatial dim"):
        irf.grid_sample(x, irf.tensor(np.zeros((2, 2, 2, 3), np.float32)))
    with pytest.raises(DTypeError, match="share one float dtype"):
        irf.grid_sample(x, irf.tensor(np.zeros((2, 2, 2, 2), np.float64)))
    with pytest.raises(IRValidationError, match="mode 'area'"):
        irf.grid_sample(x, irf.tensor(np.zeros((2, 2, 2, 2), np.float32)), mode="area")


def test_gridsample16_imports_and_exports_for_old_opsets():
    """GridSample-16 (bilinear/bicubic names, 4-D) imports; export at opset 18 writes it back."""
    node = helper.make_node("GridSample", ["x", "g"], ["y"], mode="bicubic", padding_mode="border")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 5]),
                                            helper.make_tensor_value_info("g", TensorProto.FLOAT, [1, 3, 3, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    g = irf.onnx.load(model)
    assert [n.op for n in g.nodes] == ["grid_sample"] and g.nodes[0].attrs["mode"] == "cubic"
    exported = irf.onnx.to_model(g, opset=18)
    assert [(n.op_type, helper.get_node_attr_value(n, "mode")) for n in exported.graph.node] == [("GridSample", b"bicubic")]
    onnx.checker.check_model(exported, full_check=True)
    x, grid = RNG.standard_normal((1, 2, 4, 5)).astype(np.float32), _grid((1, 3, 3, 2))
    # (onnx's reference evaluator knows only GridSample-20's names; the semantics are the same)
    want = onnx_reference("GridSample", [x, grid], 20, mode="cubic", padding_mode="border")
    np.testing.assert_allclose(irf.run(g, {"x": x, "g": grid})["y"], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("module", ["irflow.ops.vision", "irflow.ops.vision_conv"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), extraglobs={"irf": irf, "np": np})
    assert result.attempted > 0 and result.failed == 0


# -- roi_align ----------------------------------------------------------------------------------------

def _rois(r, h, w):
    x1, y1 = RNG.uniform(-1, w - 2, r), RNG.uniform(-1, h - 2, r)
    return np.stack([x1, y1, x1 + RNG.uniform(0.3, 4, r), y1 + RNG.uniform(0.3, 4, r)], axis=1).astype(np.float32)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("cmode", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("ratio", [0, 2])
def test_roi_align_matches_onnx_reference_and_ort(mode, cmode, ratio):
    x = RNG.standard_normal((2, 3, 6, 7)).astype(np.float32)
    rois = _rois(5, 6, 7)
    rois[0] = [2.0, 2.0, 2.0, 2.0]  # an empty ROI
    idx = np.array([0, 1, 1, 0, 1], np.int64)
    attrs = dict(mode=mode, output_height=3, output_width=2, sampling_ratio=ratio, spatial_scale=0.9,
                 coordinate_transformation_mode=cmode)
    want = onnx_reference("RoiAlign", [x, rois, idx], 16, **attrs)
    # gradients exist for avg with a fixed sampling_ratio (checked against finite differences)
    check_op("roi_align", [x, rois, idx], lambda *a: want, attrs, rtol=1e-5, atol=1e-6,
             grad=mode == "avg" and ratio > 0, grad_rtol=1e-4, grad_atol=1e-5)


def test_roi_align_hand_reference():
    """One ROI, one bin, sampling_ratio 2: the mean of four bilinear samples, written out."""
    x = RNG.standard_normal((1, 1, 5, 5)).astype(np.float32)
    got = irf.roi_align(irf.tensor(x), irf.tensor(np.array([[1.0, 1.0, 3.0, 3.0]], np.float32)),
                        irf.tensor(np.array([0])), output_size=1, sampling_ratio=2).numpy()
    img = x[0, 0].astype(np.float64)

    def bilinear(y, xx):
        y0, x0 = int(np.floor(y)), int(np.floor(xx))
        ly, lx = y - y0, xx - x0
        return ((1 - ly) * (1 - lx) * img[y0, x0] + (1 - ly) * lx * img[y0, x0 + 1]
                + ly * (1 - lx) * img[y0 + 1, x0] + ly * lx * img[y0 + 1, x0 + 1])

    # aligned: the ROI spans [0.5, 2.5]; samples at 1.0 and 2.0 along each axis
    want = np.mean([bilinear(y, xx) for y in (1.0, 2.0) for xx in (1.0, 2.0)])
    np.testing.assert_allclose(got[0, 0, 0, 0], want, rtol=1e-6)


def test_roi_align_errors_and_vmap():
    x = irf.tensor(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ShapeError, match="3 rois but 2 batch indices"):
        irf.roi_align(x, irf.tensor(np.zeros((3, 4), np.float32)), irf.tensor(np.zeros(2, np.int64)))
    with pytest.raises(ShapeError, match="batch index 3 of roi 0"):
        irf.roi_align(x, irf.tensor(np.zeros((1, 4), np.float32)), irf.tensor(np.array([3])))
    xs = RNG.standard_normal((2, 1, 2, 5, 5)).astype(np.float32)
    rois = np.stack([_rois(3, 5, 5), _rois(3, 5, 5)])
    idx = np.zeros(3, np.int64)
    got = irf.vmap(lambda a, b: irf.roi_align(a, b, idx, output_size=2), in_axes=(0, 0))(xs, rois).numpy()
    for b in range(2):
        want = irf.roi_align(irf.tensor(xs[b]), irf.tensor(rois[b]), irf.tensor(idx), output_size=2).numpy()
        np.testing.assert_allclose(got[b], want, rtol=1e-6)


# -- col2im -------------------------------------------------------------------------------------------

COL2IM_CASES = [  # image, block, strides, pads, dilations
    ((5, 5), (2, 2), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((6, 7), (3, 2), (2, 1), (1, 0, 1, 2), (1, 2)),
    ((4,), (3,), (1,), (1, 1), (1,)),
    ((3, 4, 3), (2, 2, 1), (1, 2, 1), (0, 1, 0, 0, 1, 0), (1, 1, 2)),
]


@pytest.mark.parametrize("image,block,strides,pads,dilations", COL2IM_CASES)
def test_col2im_matches_onnx_reference_ort_and_gradient(image, block, strides, pads, dilations):
    from irflow.ops.vision_conv import block_counts

    counts = block_counts(image, block, strides, pads, dilations)
    x = RNG.standard_normal((2, 3 * int(np.prod(block)), int(np.prod(counts)))).astype(np.float32)
    attrs = dict(image_shape=image, block_shape=block, strides=strides, pads=pads, dilations=dilations)
    want = onnx_reference("Col2Im", [x, np.array(image), np.array(block)], 18, strides=strides, pads=pads,
                          dilations=dilations)
    check_op("col2im", [x], lambda x: want, attrs, rtol=1e-5, atol=1e-5)


def test_col2im_matches_torch_fold():
    torch = pytest.importorskip("torch", reason="PyTorch cross-checks need torch")
    x = RNG.standard_normal((2, 3 * 6, 6))  # 3 x 2 blocks
    got = irf.col2im(irf.tensor(x), (5, 6), (2, 3), strides=(2, 1), pads=(1, 0, 1, 0), dilations=(1, 2)).numpy()
    want = torch.nn.functional.fold(torch.tensor(x), (5, 6), (2, 3), dilation=(1, 2), padding=(1, 0), stride=(2, 1))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)


def test_col2im_with_run_time_sizes_imports_as_col2im_dynamic():
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], strides=[1, 2])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, None]),
                                            helper.make_tensor_value_info("image", TensorProto.INT64, [2]),
                                            helper.make_tensor_value_info("block", TensorProto.INT64, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, None, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    g = irf.onnx.load(model)
    assert [n.op for n in g.nodes] == ["col2im_dynamic"]
    x, image, block = RNG.standard_normal((1, 8, 6)).astype(np.float32), np.array([4, 5]), np.array([2, 2])
    want = onnx_reference("Col2Im", [x, image, block], 18, strides=[1, 2])
    for executor in ("numpy", "ort"):
        np.testing.assert_allclose(irf.run(g, {"x": x, "image": image, "block": block}, executor=executor)["y"], want,
                                   rtol=1e-6)


def test_col2im_errors_and_vmap():
    with pytest.raises(ShapeError, match=r"dim 2 \(5\) must be the number of blocks"):
        irf.col2im(irf.tensor(np.zeros((1, 4, 5), np.float32)), (3, 3), (2, 2))
    with pytest.raises(ShapeError, match="not a multiple of prod"):
        irf.col2im(irf.tensor(np.zeros((1, 5, 4), np.float32)), (3, 3), (2, 2))
    xs = RNG.standard_normal((3, 2, 4, 4)).astype(np.float32)
    got = irf.vmap(lambda a: irf.col2im(a, (3, 3), (2, 2)))(xs).numpy()
    for b in range(3):
        np.testing.assert_allclose(got[b], irf.col2im(irf.tensor(xs[b]), (3, 3), (2, 2)).numpy(), rtol=1e-6)


# -- deform_conv --------------------------------------------------------------------------------------

DEFORM_CASES = [  # x shape, weight shape, strides, pads, dilations, groups, offset_groups, bias, mask
    ((1, 2, 5, 5), (3, 2, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1, 1, False, False),
    ((2, 4, 6, 5), (4, 2, 2, 3), (2, 1), (1, 0, 1, 2), (1, 2), 2, 2, True, True),
    ((1, 4, 4, 4), (2, 4, 2, 2), (1, 1), (1, 1, 1, 1), (1, 1), 1, 4, True, False),
]


@pytest.mark.parametrize("xs,ws,strides,pads,dilations,groups,ogroups,bias,mask", DEFORM_CASES)
def test_deform_conv_matches_onnx_reference_and_ort(xs, ws, strides, pads, dilations, groups, ogroups, bias, mask):
    from irflow.ops.conv_nd import out_dim

    out = tuple(out_dim(xs[2 + i], ws[2 + i], strides[i], dilations[i], pads[i], pads[2 + i]) for i in range(2))
    k = ws[2] * ws[3]
    x = RNG.standard_normal(xs).astype(np.float32)
    w = RNG.standard_normal(ws).astype(np.float32)
    off = RNG.uniform(-1.5, 1.5, (xs[0], ogroups * k * 2) + out).astype(np.float32)
    b = RNG.standard_normal(ws[0]).astype(np.float32) if bias else None
    m = RNG.uniform(0, 1, (xs[0], ogroups * k) + out).astype(np.float32) if mask else None
    attrs = dict(strides=strides, pads=pads, dilations=dilations, group=groups, offset_group=ogroups)
    ref_in = [x, w, off] + ([b if b is not None else np.zeros(ws[0], np.float32), m] if mask else [b] if bias else [])
    want = onnx_reference("DeformConv", ref_in, 19, kernel_shape=list(ws[2:]), **attrs)
    # gradients (every float input) against finite differences, through the grid_sample form
    check_op("deform_conv", [x, w, off, b, m], lambda *a: want,
             dict(strides=strides, pads=pads, dilations=dilations, groups=groups, offset_groups=ogroups),
             rtol=1e-5, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-5)


def test_deform_conv_graph_computes_what_the_kernel_computes():
    """The differentiable form the VJP uses (grid_sample + matmul) == the NumPy kernel."""
    from irflow.ops.vision_conv import deform_conv_graph

    x = RNG.standard_normal((2, 4, 5, 6))
    w = RNG.standard_normal((6, 2, 2, 3))
    off = RNG.uniform(-2, 2, (2, 2 * 6 * 2, 4, 3))
    m = RNG.uniform(0, 1, (2, 2 * 6, 4, 3))
    attrs = dict(strides=(1, 2), pads=(0, 1, 0, 0), dilations=(1, 1), groups=2, offset_groups=2)
    types = [None if a is None else irf.TensorType(dtype=irf.ir.as_dtype(a.dtype), shape=a.shape)
             for a in (x, w, off, None, m)]
    g = deform_conv_graph(types, attrs)
    got = irf.run(g, dict(zip(g.input_names, (x, w, off, m))))
    want = irf.deform_conv(irf.tensor(x), irf.tensor(w), irf.tensor(off), None, irf.tensor(m), **attrs).numpy()
    np.testing.assert_allclose(next(iter(got.values())), want, rtol=1e-10, atol=1e-10)


def test_deform_conv_without_offsets_is_conv():
    x = RNG.standard_normal((2, 4, 6, 6)).astype(np.float32)
    w = RNG.standard_normal((6, 2, 3, 3)).astype(np.float32)
    off = np.zeros((2, 2 * 9 * 2, 3, 3), np.float32)
    got = irf.deform_conv(irf.tensor(x), irf.tensor(w), irf.tensor(off), strides=(2, 2), pads=(1, 1, 1, 1),
                          groups=2, offset_groups=2).numpy()
    want = irf.convolution(irf.tensor(x), irf.tensor(w), strides=(2, 2), pads=(1, 1, 1, 1), groups=2).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_deform_conv_errors_and_vmap():
    x = irf.tensor(np.zeros((1, 2, 4, 4), np.float32))
    w = irf.tensor(np.zeros((1, 2, 2, 2), np.float32))
    with pytest.raises(ShapeError, match="offset must be"):
        irf.deform_conv(x, w, irf.tensor(np.zeros((1, 6, 3, 3), np.float32)))
    with pytest.raises(ShapeError, match="offset_groups=3 must divide"):
        irf.deform_conv(x, w, irf.tensor(np.zeros((1, 24, 3, 3), np.float32)), offset_groups=3)
    xs = RNG.standard_normal((3, 1, 2, 4, 4)).astype(np.float32)
    offs = RNG.uniform(-1, 1, (3, 1, 8, 3, 3)).astype(np.float32)
    wv = RNG.standard_normal((1, 2, 2, 2)).astype(np.float32)
    f = irf.function(lambda a, o: irf.vmap(lambda p, q: irf.deform_conv(p, wv, q))(a, o))
    got = f(irf.tensor(xs), irf.tensor(offs)).numpy()
    assert "scan" not in [n.op for n in f.get_graph(irf.tensor(xs), irf.tensor(offs)).nodes]
    for b in range(3):
        want = irf.deform_conv(irf.tensor(xs[b]), irf.tensor(wv), irf.tensor(offs[b])).numpy()
        np.testing.assert_allclose(got[b], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cmode", ["half_pixel", "output_half_pixel"])
def test_roi_align_gradient_wrt_x_and_rois(cmode):
    """avg with a fixed sampling_ratio: the grid_sample form == the kernel, and its gradients
    (x and rois) agree with finite differences."""
    from irflow.ops.vision import roi_align_graph

    x = RNG.standard_normal((2, 3, 6, 7))
    rois = _rois(4, 6, 7).astype(np.float64)
    rois[1] = [-2.5, -2.0, 9.0, 8.0]  # samples past every edge (border clamp, and outside [-1, size])
    idx = np.array([1, 0, 1, 1], np.int64)
    attrs = dict(mode="avg", output_height=2, output_width=3, sampling_ratio=2, spatial_scale=1.0,
                 coordinate_transformation_mode=cmode)
    g = roi_align_graph([irf.TensorType(dtype=irf.ir.as_dtype(a.dtype), shape=a.shape) for a in (x, rois, idx)], attrs)
    form = next(iter(irf.run(g, dict(zip(g.input_names, (x, rois, idx)))).values()))
    np.testing.assert_allclose(form, irf.bind("roi_align", irf.tensor(x), irf.tensor(rois), irf.tensor(idx), **attrs).numpy(),
                               rtol=1e-10, atol=1e-12)
    check_op("roi_align", [x.astype(np.float32), rois.astype(np.float32), idx], None, attrs, rtol=1e-5, atol=1e-6,
             grad_rtol=1e-4, grad_atol=1e-5)


def test_roi_align_gradient_of_max_mode_is_a_clear_error():
    x = irf.tensor(RNG.standard_normal((1, 1, 4, 4)))
    rois = irf.tensor(np.array([[0.0, 0.0, 2.0, 2.0]]))
    with pytest.raises(irf.IrflowError, match="written for mode='avg' with a fixed sampling_ratio"):
        irf.grad(lambda x: irf.reduce_sum(irf.roi_align(x, rois, np.array([0]), mode="max", sampling_ratio=2)))(x)


@pytest.mark.parametrize("op", ["grid_sample", "deform_conv", "col2im", "roi_align"])
def test_gradient_graphs_run_on_onnxruntime(op):
    """Each VJP is IR: the gradient graph (a node with only its required inputs) exports and
    onnxruntime agrees with the interpreter."""
    from irflow.autodiff import vjp
    from irflow.executors.numpy import Interpreter
    from irflow.executors.onnx import OrtRunner
    from tests.ops.harness import build_graph

    ins, attrs = {
        "grid_sample": ([RNG.standard_normal((1, 2, 4, 5)), RNG.uniform(-1.1, 1.1, (1, 3, 3, 2))],
                        dict(mode="cubic", padding_mode="reflection")),
        "deform_conv": ([RNG.standard_normal((1, 2, 4, 4)), RNG.standard_normal((2, 2, 2, 2)), RNG.uniform(-1, 1, (1, 8, 3, 3))],
                        dict(strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1))),
        "col2im": ([RNG.standard_normal((1, 8, 4))], dict(image_shape=(3, 3), block_shape=(2, 2), strides=(1, 1),
                                                          pads=(0, 0, 0, 0), dilations=(1, 1))),
        "roi_align": ([RNG.standard_normal((2, 2, 5, 5)), _rois(3, 5, 5).astype(np.float64), np.array([0, 1, 1])],
                      dict(output_height=2, output_width=2, sampling_ratio=2)),
    }[op]
    ins = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in ins]
    g = build_graph(op, ins, attrs)
    gg = vjp(g, wrt=[f"in{i}" for i, a in enumerate(ins) if a.dtype.kind == "f"])
    feeds = {f"in{i}": a for i, a in enumerate(ins)}
    feeds.update({v.name: RNG.standard_normal(v.type.shape).astype(np.float32) for v in gg.inputs if v.name not in feeds})
    want, got = Interpreter(gg).run(feeds), OrtRunner(gg).run(feeds)
    for name in gg.output_names:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)
