"""Run-time axes (irflow/ops/dynamic_axes.py, issue 17): reduce_dynamic, squeeze_dynamic,
unsqueeze_dynamic, cumsum_dynamic, cumprod_dynamic, and the ONNX import of Reduce*, Squeeze,
Unsqueeze, CumSum and CumProd whose axes are graph inputs.

References: NumPy written here (loops for the running products), onnx's ReferenceEvaluator on
the original ONNX node, onnxruntime on irflow's export, finite differences in float64 for the
VJPs. Batching against a Python loop is in tests/autodiff/test_vmap_registry.py (CASES)."""
from __future__ import annotations

import doctest

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import irflow as irf
from irflow.errors import DTypeError, ExecutorError, ShapeError
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner, shape_inference_mismatches, to_model
from tests.ops.harness import build_graph, check_grad

rng = np.random.default_rng(0)


# -- hand-written references -----------------------------------------------------------------

def ref_reduce(x, axes, kind, keepdims=True, noop=False):
    axes = [int(a) % x.ndim for a in axes]
    if not axes:
        if noop:
            return x
        axes = list(range(x.ndim))
    ax = tuple(axes)
    if kind in ("max", "min") and any(x.shape[a] == 0 for a in ax):
        shape = np.sum(np.zeros(x.shape), axis=ax, keepdims=keepdims).shape
        if x.dtype == np.bool_:
            fill = kind == "min"
        elif x.dtype.kind in "iu":
            fill = np.iinfo(x.dtype).max if kind == "min" else np.iinfo(x.dtype).min
        else:
            fill = np.inf if kind == "min" else -np.inf
        return np.full(shape, fill, x.dtype)
    fn = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod}[kind]
    with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        return np.asarray(fn(x, axis=ax, keepdims=keepdims)).astype(x.dtype)


def ref_cum(x, axis, product, exclusive=False, reverse=False):
    """Running sum/product by an explicit loop over the axis."""
    a = int(axis) % x.ndim
    xm = np.moveaxis(x, a, 0)
    out = np.empty_like(xm)
    n = xm.shape[0]
    order = range(n - 1, -1, -1) if reverse else range(n)
    acc = (np.ones if product else np.zeros)(xm.shape[1:], x.dtype)
    for i in order:
        if exclusive:
            out[i] = acc
            acc = acc * xm[i] if product else acc + xm[i]
        else:
            acc = acc * xm[i] if product else acc + xm[i]
            out[i] = acc
    return np.moveaxis(out, 0, a)


def run_graph(op, inputs, attrs):
    """(eager, interpreter, onnxruntime) results of one node, and its graph."""
    eager = irf.bind(op, *[irf.tensor(a) for a in inputs], **attrs).numpy()
    g = build_graph(op, inputs, attrs)
    onnx.checker.check_model(to_model(g), full_check=True)  # the export carries irflow's types as value_info
    assert not shape_inference_mismatches(g), shape_inference_mismatches(g)
    feeds = {f"in{i}": a for i, a in enumerate(inputs)}
    out = g.output_names[0]
    return eager, Interpreter(g).run(feeds)[out], OrtRunner(g).run(feeds)[out], g


def assert_same(got, want, what, rtol=1e-5):
    assert got.shape == want.shape and got.dtype == want.dtype, f"{what}: {got.dtype}{got.shape} != {want.dtype}{want.shape}"
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-6, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def assert_type_fits(g, got):
    t = g.outputs[0].type
    assert t.rank == got.ndim and all(d is None or d == s for d, s in zip(t.shape, got.shape)), (t, got.shape)


# -- reduce_dynamic --------------------------------------------------------------------------

# (axes, keepdims, noop_with_empty_axes): noop matters only for an empty axes tensor
AXES = [([1], True, False), ([-1, 0], False, False), ([0, 1, 2], True, False), ([0, 1, 2], False, False),
        ([], True, False), ([], False, False), ([], True, True), ([], False, True), ([1], False, True)]


@pytest.mark.parametrize("kind", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("axes,keepdims,noop", AXES, ids=str)
def test_reduce_dynamic_on_every_executor(kind, axes, keepdims, noop):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    attrs = dict(kind=kind, keepdims=keepdims, noop_with_empty_axes=noop)
    want = ref_reduce(x, axes, kind, keepdims, noop)
    eager, interp, ort, g = run_graph("reduce_dynamic", [x, np.array(axes, np.int64)], attrs)
    for got, what in ((eager, "eager"), (interp, "interpreter"), (ort, "onnxruntime")):
        assert_same(got, want, f"{kind} {axes} {what}")
    assert_type_fits(g, want)


# the dtypes each kind takes (bool sums and int means are DTypeErrors: test_reduce_dynamic_types)
EMPTY = [(k, d) for k in ("sum", "mean", "max", "min", "prod") for d in (np.float32, np.int32, np.int8, np.bool_, np.float16)
         if not (k == "mean" and np.dtype(d).kind != "f") and not (k in ("sum", "prod") and d is np.bool_)]


@pytest.mark.parametrize("kind,dtype", EMPTY)
def test_reduce_dynamic_over_an_empty_set(kind, dtype):
    # ONNX: sum 0, prod 1, max the lowest value, min the highest; mean 0/0 = NaN as NumPy
    x = np.zeros((2, 0, 3), dtype)
    for keepdims in (True, False):
        want = ref_reduce(x, [1], kind, keepdims)
        eager, interp, ort, _ = run_graph("reduce_dynamic", [x, np.array([1])], dict(kind=kind, keepdims=keepdims))
        for got, what in ((eager, "eager"), (interp, "interpreter"), (ort, "onnxruntime")):
            assert_same(got, want, f"{kind} {dtype} {what}")


def test_reduce_dynamic_keeps_nan_and_reads_symbolic_dims():
    x = rng.standard_normal((3, 4))
    x[1, 2] = np.nan
    b = irf.GraphBuilder("g")
    xs, axes = b.input("x", "float64", ("n", 4)), b.input("axes", "int64", (1,))
    with b:
        b.output(irf.reduce_dynamic(xs, axes, "max", keepdims=False), irf.reduce_dynamic(xs, axes, "mean", keepdims=False))
    g = b.build(verify=True)
    for ax, n in (([1], 3), ([0], 3), ([0], 0)):
        feeds = {"x": x[:n], "axes": np.array(ax)}
        for runner in (Interpreter(g), OrtRunner(g)):
            out = runner.run(feeds)
            assert_same(out[g.output_names[0]], ref_reduce(x[:n], ax, "max", False), f"max {ax} n={n}")
            assert_same(out[g.output_names[1]], ref_reduce(x[:n], ax, "mean", False), f"mean {ax} n={n}")


def test_reduce_dynamic_types():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", ("n", 1, 4))
    two, some = b.input("two", "int64", (2,)), b.input("some", "int64", (None,))
    with b:
        assert irf.reduce_dynamic(x, two, "sum").type.shape == (None, 1, None)
        assert irf.reduce_dynamic(x, two, "sum", keepdims=False).type.shape == (None,)
        assert irf.reduce_dynamic(x, some, "max").type.shape == (None, 1, None)
        with pytest.raises(ShapeError, match="reduce_dynamic: with keepdims=False the length of axes"):
            irf.reduce_dynamic(x, some, "sum", keepdims=False)
        with pytest.raises(DTypeError, match="reduce_dynamic: axes must be a 1-D int64"):
            irf.reduce_dynamic(x, irf.cast(two, "int32"), "sum")
        with pytest.raises(DTypeError, match="mean"):
            irf.reduce_dynamic(irf.cast(x, "int32"), two, "mean")


@pytest.mark.parametrize("axes,match", [([3], "axis 3 .* out of range for rank 3"), ([0, -3], "repeat an axis")])
def test_reduce_dynamic_bad_run_time_axes_name_the_op(axes, match):
    g = build_graph("reduce_dynamic", [np.zeros((2, 3, 4)), np.array(axes)], dict(kind="sum"))
    with pytest.raises(ExecutorError, match="reduce_dynamic: .*" + match):
        Interpreter(g).run({"in0": np.zeros((2, 3, 4)), "in1": np.array(axes)})


@pytest.mark.parametrize("kind", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("axes,keepdims,noop", [([1], True, False), ([-1, 0], False, False), ([], False, False),
                                                 ([], True, True), ([0, 1, 2], False, False)], ids=str)
def test_reduce_dynamic_vjp(kind, axes, keepdims, noop):
    x = rng.standard_normal((2, 3, 4))
    if kind == "prod":  # zeros: one in a slice, two in another
        x[0, 1, 1] = 0.0
        x[1, 0, 2] = x[1, 2, 2] = 0.0
    check_grad("reduce_dynamic", [x, np.array(axes, np.int64)], dict(kind=kind, keepdims=keepdims, noop_with_empty_axes=noop),
               grad_inputs=[0])


# -- squeeze_dynamic / unsqueeze_dynamic -----------------------------------------------------

@pytest.mark.parametrize("axes", [[1], [-1, 1], [3, 1]], ids=str)
def test_squeeze_dynamic(axes):
    x = rng.standard_normal((2, 1, 3, 1)).astype(np.float32)
    want = np.squeeze(x, axis=tuple(axes))
    eager, interp, ort, g = run_graph("squeeze_dynamic", [x, np.array(axes)], {})
    for got in (eager, interp, ort):
        assert_same(got, want, f"squeeze {axes}")
    assert_type_fits(g, want)
    check_grad("squeeze_dynamic", [x.astype(np.float64), np.array(axes)], {}, grad_inputs=[0])


def test_squeeze_dynamic_knows_the_shape_when_only_one_choice_exists():
    b = irf.GraphBuilder("g")
    x, axes = b.input("x", "float32", (2, 1, 3)), b.input("axes", "int64", (1,))
    with b:
        assert irf.squeeze_dynamic(x, axes).type.shape == (2, 3)
        with pytest.raises(ShapeError, match="squeeze_dynamic: 2 axes to squeeze but only 1"):
            irf.squeeze_dynamic(x, b.input("two", "int64", (2,)))
    g = build_graph("squeeze_dynamic", [np.zeros((2, 1, 3)), np.array([0])], {})
    with pytest.raises(ExecutorError, match=r"squeeze_dynamic: axes \[0\] of shape \(2, 1, 3\) are not of size 1"):
        Interpreter(g).run({"in0": np.zeros((2, 1, 3)), "in1": np.array([0])})


@pytest.mark.parametrize("axes", [[0], [-1, 0], [3, 1], [1, 2]], ids=str)
def test_unsqueeze_dynamic(axes):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    want = np.expand_dims(x, tuple(a % (x.ndim + len(axes)) for a in axes))
    eager, interp, ort, g = run_graph("unsqueeze_dynamic", [x, np.array(axes)], {})
    for got in (eager, interp, ort):
        assert_same(got, want, f"unsqueeze {axes}")
    assert_type_fits(g, want)
    check_grad("unsqueeze_dynamic", [x.astype(np.float64), np.array(axes)], {}, grad_inputs=[0])


# -- cumsum_dynamic / cumprod_dynamic --------------------------------------------------------

CUM = [(a, e, r) for a in (0, 1, -1) for e in (False, True) for r in (False, True)]


# every flag combination in float32 with an int64 axis; int32 / int8 data (int8 is widened for
# onnxruntime) and an int32 axis on a few
CUM_CASES = [(np.float32, np.int64, *c) for c in CUM] + [(d, np.int32, a, e, r) for d in (np.int32, np.int8)
                                                         for a, e, r in ((1, False, False), (-1, True, True), (0, True, False))]


@pytest.mark.parametrize("op", ["cumsum_dynamic", "cumprod_dynamic"])
@pytest.mark.parametrize("dtype,axis_dtype,axis,exclusive,reverse", CUM_CASES)
def test_cum_dynamic(op, dtype, axis_dtype, axis, exclusive, reverse):
    x = rng.integers(-3, 4, (3, 5)).astype(dtype)
    want = ref_cum(x, axis, op == "cumprod_dynamic", exclusive, reverse)
    eager, interp, ort, _ = run_graph(op, [x, np.array(axis, axis_dtype)], dict(exclusive=exclusive, reverse=reverse))
    for got, what in ((eager, "eager"), (interp, "interpreter"), (ort, "onnxruntime")):
        assert_same(got, want, f"{op} {what}")


@pytest.mark.parametrize("shape,axis", [((0, 3), 0), ((1, 4), 0), ((2, 9), 1), ((17,), 0)])
def test_cumprod_dynamic_sizes(shape, axis):
    # 0, 1, 9 and 17 elements along the axis: no doubling step, one, and ones past a power of 2
    x = rng.uniform(0.5, 1.5, shape).astype(np.float64)
    for exclusive in (False, True):
        for reverse in (False, True):
            want = ref_cum(x, axis, True, exclusive, reverse)
            eager, interp, ort, _ = run_graph("cumprod_dynamic", [x, np.array(axis)], dict(exclusive=exclusive, reverse=reverse))
            for got in (eager, interp, ort):
                assert_same(got, want, f"cumprod {shape}")


@pytest.mark.parametrize("op", ["cumsum_dynamic", "cumprod_dynamic"])
@pytest.mark.parametrize("axis,exclusive,reverse", CUM)
def test_cum_dynamic_vjp(op, axis, exclusive, reverse):
    x = rng.standard_normal((3, 5))
    if op == "cumprod_dynamic":  # no zero in row 0, one in row 1, two in row 2 (and the same by column)
        x[1, 2] = 0.0
        x[2, 1] = x[2, 3] = 0.0
    check_grad(op, [x, np.array(axis)], dict(exclusive=exclusive, reverse=reverse), grad_inputs=[0])


def test_cum_dynamic_errors_name_the_op():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", (2, 3))
    with b:
        with pytest.raises(DTypeError, match="cumprod_dynamic: axis must be a 0-D"):
            irf.cumprod_dynamic(x, b.input("a", "int64", (2,)))
    g = build_graph("cumsum_dynamic", [np.zeros((2, 3)), np.array(2)], {})
    with pytest.raises(ExecutorError, match="cumsum_dynamic: axis 2 .* out of range for rank 2"):
        Interpreter(g).run({"in0": np.zeros((2, 3)), "in1": np.array(2)})


# -- ONNX import: axes as graph inputs --------------------------------------------------------

def _model(op_type, x, extra, attrs, opset, out_shape=None):
    """A one-node model whose every input (data and axes) is a graph input."""
    names = ["x"] + [f"a{i}" for i in range(len(extra))]
    arrays = [x, *extra]
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
              for n, a in zip(names, arrays)]
    node = helper.make_node(op_type, names, ["y"], **attrs)
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", inputs[0].type.tensor_type.elem_type, out_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), dict(zip(names, arrays))


def check_import(op_type, x, extra, attrs, opset, ir_op, rtol=1e-5, want=None):
    """ONNX node with run-time axes: imported to ``ir_op``; the NumPy interpreter and onnxruntime
    on irflow's export agree with onnx's ReferenceEvaluator (or ``want``, where it is wrong)."""
    model, feeds = _model(op_type, x, extra, attrs, opset)
    if want is None:
        want = np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])
    model, _ = _model(op_type, x, extra, attrs, opset, list(want.shape))  # the checker wants the output's shape
    g = irf.onnx.load(model)
    assert ir_op in {n.op for n in g.nodes}, f"{op_type} imported as {[n.op for n in g.nodes]}"
    got = Interpreter(g).run(feeds)[g.output_names[0]]
    assert_same(got, np.asarray(want), f"{op_type} NumPy", rtol)
    ort = OrtRunner(g).run(feeds)[g.output_names[0]]
    assert_same(ort, np.asarray(want), f"{op_type} ORT", rtol)


REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"]


@pytest.mark.parametrize("op_type", REDUCE_OPS)
@pytest.mark.parametrize("axes,keepdims,noop", [([1], 1, 0), ([-1, 0], 0, 0), ([], 1, 0), ([], 0, 1), ([2], 0, 1)],
                         ids=str)
def test_import_reduce_with_run_time_axes(op_type, axes, keepdims, noop):
    x = rng.uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32)
    check_import(op_type, x, [np.array(axes, np.int64)], dict(keepdims=keepdims, noop_with_empty_axes=noop), 18,
                 "reduce_dynamic")


def test_import_reduce_log_sum_exp_is_stable_and_takes_infinities():
    # onnx's ReferenceEvaluator gives NaN for the all -inf row (-inf - -inf); log(0 + 0 + 0) is -inf
    x = np.array([[1000.0, 1000.0, -np.inf], [-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 1.0]], np.float32)
    want = np.array([1000.0 + np.log(2.0), -np.inf, np.inf], np.float32)
    for keepdims in (0, 1):
        with np.errstate(divide="ignore"):  # log(0) for the all -inf row, on purpose
            check_import("ReduceLogSumExp", x, [np.array([1])], dict(keepdims=keepdims), 18, "reduce_dynamic",
                         want=want.reshape(3, 1) if keepdims else want)


def test_import_reduce_sum_opset_13_takes_axes_as_an_input():
    x = rng.standard_normal((2, 3)).astype(np.float32)
    check_import("ReduceSum", x, [np.array([0])], dict(keepdims=0), 13, "reduce_dynamic")


@pytest.mark.parametrize("op_type,x,axes,ir_op", [
    ("Squeeze", np.zeros((1, 3, 1, 2), np.float32), [2, -4], "squeeze_dynamic"),
    ("Unsqueeze", np.zeros((3, 2), np.float32), [-1, 0, 2], "unsqueeze_dynamic"),
], ids=["squeeze", "unsqueeze"])
def test_import_squeeze_unsqueeze_with_run_time_axes(op_type, x, axes, ir_op):
    check_import(op_type, x + rng.standard_normal(x.shape).astype(np.float32), [np.array(axes, np.int64)], {}, 21, ir_op)


@pytest.mark.parametrize("op_type,opset", [("CumSum", 14), ("CumProd", 26)])
@pytest.mark.parametrize("axis,exclusive,reverse", [(0, 0, 0), (-1, 1, 0), (1, 1, 1), (1, 0, 1)])
def test_import_cum_with_run_time_axis(op_type, opset, axis, exclusive, reverse):
    x = rng.uniform(0.5, 1.5, (3, 4)).astype(np.float32)
    check_import(op_type, x, [np.array(axis, np.int32)], dict(exclusive=exclusive, reverse=reverse), opset,
                 "cumsum_dynamic" if op_type == "CumSum" else "cumprod_dynamic")


@pytest.mark.parametrize("op_type", REDUCE_OPS)
def test_import_reduce_over_no_axis_with_constant_axes(op_type):
    # noop_with_empty_axes and an empty constant axes: no reduction, but ReduceL2 is still
    # sqrt(x * x) and ReduceLogSum log(x), as onnx's reference and onnxruntime compute them
    x = rng.uniform(0.5, 2.0, (2, 3)).astype(np.float32) * np.array([1, -1, 1], np.float32)
    node = helper.make_node(op_type, ["x", "axes"], ["y"], noop_with_empty_axes=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
                              initializer=[helper.make_tensor("axes", TensorProto.INT64, [0], [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with np.errstate(invalid="ignore"):
        want = ReferenceEvaluator(model).run(None, {"x": x})[0]
        g = irf.onnx.load(model)
        assert "reduce_dynamic" not in {n.op for n in g.nodes}
        assert_same(Interpreter(g).run({"x": x})[g.output_names[0]], want, op_type)
    assert_same(OrtRunner(g).run({"x": x})[g.output_names[0]], want, op_type)


def test_axes_known_at_import_keep_the_static_ops():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Constant", [], ["ax"], value=helper.make_tensor("v", TensorProto.INT64, [1], [1])),
             helper.make_node("ReduceMean", ["x", "ax"], ["m"], keepdims=0),
             helper.make_node("Unsqueeze", ["m", "ax"], ["u"]),
             helper.make_node("CumSum", ["u", "ax"], ["y"])]
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1])])
    g = irf.onnx.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    assert [n.op for n in g.nodes] == ["reduce_mean", "expand_dims", "cumsum"]


def test_docstring_examples():
    import irflow.ops.dynamic_axes as module

    result = doctest.testmod(module, extraglobs={"irf": irf, "np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0
