"""The run-time shape-argument ops (irflow/ops/dynamic_shape.py): each against a NumPy reference
written here through the harness (type rule, interpreter, onnxruntime, finite differences), and
the ONNX node with its shape arguments as graph inputs against onnx's ReferenceEvaluator:
imported with nothing bound, run on the NumPy interpreter and exported to onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import irflow as irf
from irflow.errors import IrflowError
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner
from tests.ops.harness import check_op

RNG = np.random.default_rng(0)
I64 = np.int64
BIG = np.iinfo(np.int64).max


def _elem(a: np.ndarray) -> int:
    return helper.np_dtype_to_tensor_dtype(a.dtype)


def check_onnx_node(op_type: str, inputs: list, n_out: int = 1, opset: int = 21, known: tuple = (), **attrs) -> None:
    """One ONNX node whose inputs are graph inputs (nothing known at import; the ``known`` ones are
    initializers instead): onnx's
    ReferenceEvaluator vs irflow import -> NumPy interpreter and import -> export -> onnxruntime."""
    names = [f"i{k}" if a is not None else "" for k, a in enumerate(inputs)]
    outs = [f"o{k}" for k in range(n_out)]
    node = helper.make_node(op_type, names, outs, **attrs)
    given = [(k, n, a) for k, (n, a) in enumerate(zip(names, inputs)) if a is not None]
    g_in = [helper.make_tensor_value_info(n, _elem(a), a.shape) for k, n, a in given if k not in known]
    inits = [onnx.numpy_helper.from_array(a, n) for k, n, a in given if k in known]  # known at import
    feeds = {n: a for k, n, a in given if k not in known}

    def model_with(g_out):
        return helper.make_model(helper.make_graph([node], "g", g_in, g_out, initializer=inits),
                                 opset_imports=[helper.make_opsetid("", opset)], ir_version=10)

    want = ReferenceEvaluator(model_with([onnx.ValueInfoProto(name=o) for o in outs])).run(None, feeds)
    # Outputs declared with their dtype and rank only: the dims are the importer's to work out.
    model = model_with([helper.make_tensor_value_info(o, _elem(w), [None] * w.ndim) for o, w in zip(outs, want)])
    graph = irf.onnx.load(model)
    got_np = Interpreter(graph).run(feeds)
    got_ort = OrtRunner(graph).run(feeds)
    for o, w in zip(outs, want):
        for got, path in ((got_np[o], "numpy"), (got_ort[o], "onnxruntime")):
            assert got.dtype == w.dtype and got.shape == w.shape, f"{op_type} {path}: {got.dtype}{got.shape} vs {w.dtype}{w.shape}"
            np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6, err_msg=f"{op_type} via {path}")


# -- slice_dynamic ------------------------------------------------------------------------------------

def _py_slice(x, starts, ends, axes, steps):
    """ONNX Slice written with Python slices (which clamp the same way)."""
    idx = [slice(None)] * x.ndim
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    for s, e, a, st in zip(starts, ends, axes, steps):
        s, e = int(s), int(e)
        if st < 0 and e < -x.shape[a]:
            e = None  # walking backwards past the first element: through index 0
        idx[a] = slice(s, e, int(st))
    return x[tuple(idx)]


SLICES = [
    ([0, 1], [3, 4], [0, 1], [1, 2]),  # plain, a step
    ([-1], [-BIG], [1], [-1]),  # reversed whole axis
    ([20, -30], [1000, 1000], [0, -1], [1, 1]),  # out of bounds both ways: clamped
    ([4, 0], [0, -1], [-2, 2], [-2, 3]),  # negative step and axes
    ([1], [3], None, None),  # default axes (the first) and steps
]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice_dynamic_matches_python_slicing(starts, ends, axes, steps):
    x = RNG.standard_normal((5, 6, 4))
    ins = [x, np.array(starts, I64), np.array(ends, I64)]
    ins += [None if axes is None else np.array(axes, I64)] if axes is not None or steps is not None else []
    ins += [np.array(steps, I64)] if steps is not None else []
    check_op("slice_dynamic", ins, lambda x, *_: _py_slice(x, starts, ends, axes, steps), grad_inputs=[0])
    check_onnx_node("Slice", [x.astype(np.float32)] + ins[1:])


def test_slice_dynamic_bad_values_name_the_op():
    b = irf.GraphBuilder("g")
    x, s = b.input("x", irf.ir.as_dtype("float32"), (3,)), b.input("s", irf.ir.as_dtype("int64"), (1,))
    b.output(b.add_node("slice_dynamic", [x, s, s, None, s], {}))
    with pytest.raises(IrflowError, match="slice_dynamic.*steps"):
        Interpreter(b.build()).run({"x": np.zeros(3, np.float32), "s": np.array([0], I64)})


# -- pad_dynamic --------------------------------------------------------------------------------------

def _np_pad(x, pads, value, axes, mode):
    r = x.ndim
    axes = list(range(r)) if axes is None else [a % r for a in axes]
    k = len(axes)
    width = [(0, 0)] * r
    for i, a in enumerate(axes):
        width[a] = (pads[i], pads[i + k])
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=0 if value is None else value)
    return np.pad(x, width, mode=mode)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("axes", [None, [-1, 0]])
def test_pad_dynamic_modes(mode, axes):
    x = RNG.standard_normal((3, 4))
    pads = [1, 2, 2, 1] if axes is None else [2, 1, 1, 0]
    value = np.asarray(1.5)
    ins = [x, np.array(pads, I64), value if mode == "constant" else None] + ([np.array(axes, I64)] if axes else [])
    check_op("pad_dynamic", ins, lambda x, *_: _np_pad(x, pads, 1.5 if mode == "constant" else None, axes, mode),
             {"mode": mode}, grad_inputs=[0, 2])
    ins32 = [x.astype(np.float32)] + [None if a is None else (a.astype(np.float32) if a.dtype.kind == "f" else a) for a in ins[1:]]
    check_onnx_node("Pad", ins32, mode=mode)


def test_pad_dynamic_negative_pads_crop():
    x = RNG.standard_normal((4, 5))
    check_op("pad_dynamic", [x, np.array([-1, 2, 1, -2], I64)],
             lambda x, p: np.pad(x[1:, :-2], [(0, 1), (2, 0)]), {"mode": "constant"})


# -- split / tile / topk / one_hot --------------------------------------------------------------------

@pytest.mark.parametrize("sizes,axis", [([2, 0, 3], 1), ([1, 3], 0)])
def test_split_dynamic(sizes, axis):
    x = RNG.standard_normal((4, 5))
    cuts = np.cumsum(sizes)[:-1]
    check_op("split_dynamic", [x, np.array(sizes, I64)], lambda x, s: tuple(np.split(x, cuts, axis=axis)),
             {"axis": axis, "num": len(sizes)}, grad_inputs=[0])
    check_onnx_node("Split", [x.astype(np.float32), np.array(sizes, I64)], n_out=len(sizes), axis=axis)


def test_tile_dynamic():
    x = RNG.standard_normal((2, 3))
    check_op("tile_dynamic", [x, np.array([3, 2], I64)], lambda x, r: np.tile(x, (3, 2)), grad_inputs=[0])
    check_op("tile_dynamic", [x, np.array([0, 1], I64)], lambda x, r: np.zeros((0, 3)), grad_inputs=[0])
    check_onnx_node("Tile", [x.astype(np.float32), np.array([2, 2], I64)])


@pytest.mark.parametrize("largest", [True, False])
def test_topk_dynamic(largest):
    x = RNG.permutation(20).reshape(4, 5).astype(np.float64)

    def ref(a, k):
        order = np.argsort(-a if largest else a, axis=0, kind="stable")[:2]
        return np.take_along_axis(a, order, axis=0), order.astype(I64)

    check_op("topk_dynamic", [x, np.array([2], I64)], ref, {"axis": 0, "largest": largest}, grad_inputs=[0])
    check_onnx_node("TopK", [x.astype(np.float32), np.array([3], I64)], n_out=2, axis=-1, largest=int(largest))


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot_dynamic(axis):
    idx = np.array([[0, -1, 4], [2, 7, -3]], I64)  # -1, -3 count from the end; 7 is out of range

    def ref(i, d):
        n = int(d)
        j = np.where(i < 0, i + n, i)
        hot = (j[..., None] == np.arange(n)).astype(np.float32)
        return np.moveaxis(hot, -1, axis)

    check_op("one_hot_dynamic", [idx, np.array(5.0, np.float32)], ref, {"axis": axis, "dtype": irf.ir.as_dtype("float32")})
    check_onnx_node("OneHot", [idx, np.array(5, I64), np.array([-2.0, 3.0], np.float32)], axis=axis)


def test_range_with_run_time_float16_bounds():
    bounds = [np.array(v, np.float16) for v in (1.0, 4.0, 0.75)]
    check_onnx_node("Range", bounds, opset=27)  # float16 bounds: Range since opset 27


def test_one_element_range_bounds_are_scalars():
    check_onnx_node("Range", [np.array([2], I64), np.array([9], I64), np.array([3], I64)])


def test_static_pad_wrap_mode():
    x = RNG.standard_normal((2, 3))
    check_op("pad", [x], lambda x: np.pad(x, [(1, 2), (4, 0)], mode="wrap"), {"pads": (1, 4, 2, 0), "mode": "wrap"})
    with pytest.raises(IrflowError, match="wrap"):
        irf.pad(irf.tensor(np.zeros((0, 2))), [(1, 0), (0, 0)], mode="wrap")


@pytest.mark.parametrize("size", [[2, 1, 3, 4], [2, 1, 1, 3], [2, 1, 2, 3, 4]])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_affine_grid_with_a_run_time_size(size, align_corners):
    nd = len(size) - 2
    theta = RNG.standard_normal((2, nd, nd + 1)).astype(np.float32)
    with np.errstate(divide="ignore"):  # the reference divides by zero for a size-1 axis
        check_onnx_node("AffineGrid", [theta, np.array(size, I64)], opset=20, align_corners=align_corners)


def test_affine_grid_gradient_wrt_theta():
    from irflow.autodiff import vjp

    theta = RNG.standard_normal((2, 2, 3))
    size = np.array([2, 1, 3, 4], I64)
    node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"])
    g_in = [helper.make_tensor_value_info("theta", onnx.TensorProto.DOUBLE, [2, 2, 3]),
            helper.make_tensor_value_info("size", onnx.TensorProto.INT64, [4])]
    g_out = [helper.make_tensor_value_info("grid", onnx.TensorProto.DOUBLE, [2, None, None, 2])]
    model = helper.make_model(helper.make_graph([node], "g", g_in, g_out), opset_imports=[helper.make_opsetid("", 20)],
                              ir_version=10)
    graph = irf.onnx.load(model)
    ct = RNG.standard_normal((2, 3, 4, 2))
    grads = Interpreter(vjp(graph, wrt=["theta"])).run({"theta": theta, "size": size, "ct_grid": ct})
    v = RNG.standard_normal(theta.shape)
    f = lambda t: float(np.sum(ct * Interpreter(graph).run({"theta": theta + t * v, "size": size})["grid"]))  # noqa: E731
    fd = (f(1e-6) - f(-1e-6)) / 2e-6
    np.testing.assert_allclose(np.sum(grads["grad_theta"] * v), fd, rtol=1e-6)


def test_unsqueeze_with_a_scalar_axis():
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    check_onnx_node("Unsqueeze", [x, np.array(-1, I64)], known=(1,))  # ONNX says 1-D; onnx's reference takes it


@pytest.mark.parametrize("op_type,inputs,static_op,dynamic_op", [
    ("Tile", [np.ones((2, 3), np.float32), np.array([2, 1], I64)], "tile", "tile_dynamic"),
    ("TopK", [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([2], I64)], "topk", "topk_dynamic"),
    ("Split", [np.ones((5, 2), np.float32), np.array([2, 3], I64)], "split", "split_dynamic"),
    ("Pad", [np.ones((2, 3), np.float32), np.array([1, 0, 0, 2], I64)], "pad", "pad_dynamic"),
    ("Slice", [np.ones((4, 3), np.float32), np.array([1], I64), np.array([3], I64), np.array([1], I64)], "slice",
     "slice_dynamic"),
])
def test_known_arguments_keep_the_static_op(op_type, inputs, static_op, dynamic_op):
    """An argument known at import (an initializer here) gives the static op with static dims;
    the same argument as a graph input gives the run-time op."""
    n_out = 2
    for known, want in ((tuple(range(1, len(inputs))), static_op), ((), dynamic_op)):
        names = [f"i{k}" for k in range(len(inputs))]
        outs = [f"o{k}" for k in range(n_out if op_type in ("TopK", "Split") else 1)]
        g_in = [helper.make_tensor_value_info(nm, _elem(a), a.shape) for k, (nm, a) in enumerate(zip(names, inputs)) if k not in known]
        inits = [onnx.numpy_helper.from_array(a, nm) for k, (nm, a) in enumerate(zip(names, inputs)) if k in known]
        g_out = [helper.make_tensor_value_info(o, onnx.TensorProto.INT64 if (op_type, i) == ("TopK", 1) else onnx.TensorProto.FLOAT,
                                               [None, None]) for i, o in enumerate(outs)]
        model = helper.make_model(helper.make_graph([helper.make_node(op_type, names, outs)], "g", g_in, g_out, initializer=inits),
                                  opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
        graph = irf.onnx.load(model)
        ops = {node.op for node in graph.nodes}
        assert want in ops, f"{op_type} with known={known}: ops {ops}"
        if want == static_op:
            assert all(isinstance(d, int) for v in graph.outputs for d in v.type.shape)
