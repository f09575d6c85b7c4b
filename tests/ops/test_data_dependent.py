"""nonzero, unique, compress, non_max_suppression: ops whose output shape depends on the data.

Each op is held to a hand-written NumPy reference, to onnx's ReferenceEvaluator on the original
ONNX node, to the NumPy interpreter on a graph whose type has None for the data-dependent dims,
and to onnxruntime on the export; the public functions run eagerly, traced and exported.
"""
from __future__ import annotations

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

RNG = np.random.default_rng(7)
ONNX_TYPE = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
             np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32, np.dtype(np.bool_): TensorProto.BOOL}


def _compatible(type_shape, shape):
    return len(type_shape) == len(shape) and all(d is None or isinstance(d, str) or d == s for d, s in zip(type_shape, shape))


def _onnx_reference(onnx_op, inputs, n_out, **attrs):
    """The original ONNX node run by onnx's ReferenceEvaluator (omitted inputs as '')."""
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(inputs)]
    outs = [f"out{i}" for i in range(n_out)]
    node = helper.make_node(onnx_op, names, outs, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, ONNX_TYPE[a.dtype], a.shape)
                                            for n, a in zip(names, inputs) if a is not None],
                              [helper.ValueInfoProto(name=o) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ReferenceEvaluator(model).run(None, {n: a for n, a in zip(names, inputs) if a is not None})


def check(op, inputs, attrs, reference, onnx_op=None, onnx_attrs=None, ort=True):
    """eager == reference; the type rule fits (None where data-dependent); interpreter and
    onnxruntime == eager; onnx's ReferenceEvaluator on the ONNX node == eager."""
    eager = irf.bind(op, *[None if a is None else irf.tensor(a) for a in inputs], **attrs)
    eager = tuple(t.numpy() for t in (eager if isinstance(eager, tuple) else (eager,)))
    want = reference(*inputs)
    want = want if isinstance(want, tuple) else (want,)
    for got, exp in zip(eager, want, strict=True):
        assert got.dtype == np.asarray(exp).dtype and got.shape == np.asarray(exp).shape, (got, exp)
        np.testing.assert_array_equal(got, exp)
    g = build_graph(op, inputs, attrs)
    for v, got in zip(g.outputs, eager):
        assert v.type.dtype.numpy == got.dtype and _compatible(v.type.shape, got.shape), (v.type, got.shape)
    feeds = {f"in{i}": a for i, a in enumerate(inputs) if a is not None}
    outs = Interpreter(g).run(feeds)
    for name, got in zip(g.output_names, eager):
        np.testing.assert_array_equal(outs[name], got)
    if ort:
        onnx.checker.check_model(to_model(g), full_check=True)
        assert not shape_inference_mismatches(g), shape_inference_mismatches(g)
        ort_outs = OrtRunner(g).run(feeds)
        for name, got in zip(g.output_names, eager):
            assert ort_outs[name].dtype == got.dtype and ort_outs[name].shape == got.shape
            np.testing.assert_array_equal(ort_outs[name], got)
    if onnx_op is not None:
        ref = _onnx_reference(onnx_op, inputs, len(eager), **(onnx_attrs or {}))
        for r, got in zip(ref, eager):
            np.testing.assert_array_equal(np.asarray(r).reshape(got.shape), got)
            assert np.asarray(r).shape == got.shape
    return eager


# -- nonzero ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,dtype", [((7,), np.float32), ((3, 4), np.int32), ((2, 3, 4), np.bool_), ((3, 0), np.float32)])
def test_nonzero(shape, dtype):
    x = (RNG.integers(0, 3, size=shape) * (RNG.random(shape) > 0.4)).astype(dtype)

    def ref(x):  # row-major scan, by hand
        hits = [ix for ix in np.ndindex(*x.shape) if x[ix]]
        return np.array(hits, dtype=np.int64).reshape(-1, x.ndim).T.copy()

    check("nonzero", [x], {}, ref, "NonZero")


def test_nonzero_rejects_scalars():
    with pytest.raises(ShapeError, match="nonzero: x must have rank >= 1"):
        irf.bind("nonzero", irf.tensor(3.0))


# -- unique -------------------------------------------------------------------------------------------

def _unique_ref(x, axis, is_sorted):
    """Unique by hand: slices as tuples, first occurrences in a dict."""
    xs = x.reshape(-1, 1) if axis is None else np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    keys = [tuple(row.tolist()) for row in xs]
    first: dict = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    order = sorted(first) if is_sorted else list(first)
    pos = {k: j for j, k in enumerate(order)}
    index = np.array([first[k] for k in order], np.int64)
    inverse = np.array([pos[k] for k in keys], np.int64)
    counts = np.array([keys.count(k) for k in order], np.int64)
    y = x.reshape(-1)[index] if axis is None else np.take(x, index, axis=axis)
    return y, index, inverse, counts


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("is_sorted", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32])
def test_unique(axis, is_sorted, dtype):
    x = RNG.integers(0, 3, size=(4, 3)).astype(dtype)
    x[2] = x[0]  # repeated rows, so the axis-0 case has duplicates too
    attrs = {"axis": axis, "sorted": is_sorted}
    onnx_attrs = {"sorted": int(is_sorted), **({} if axis is None else {"axis": axis})}
    # onnxruntime has no int32 Unique: the export casts to int64 and back. onnx's reference
    # evaluator mishandles sorted=0 on inputs of rank > 1 (np.take along axis 0 of the unflattened
    # input; NumPy 2's shaped inverse as dict keys), so it checks the sorted cases and 1-D below.
    check("unique", [x], attrs, lambda x: _unique_ref(x, axis, is_sorted), "Unique" if is_sorted else None, onnx_attrs)
    if axis in (None, 0):
        v = x.reshape(-1)
        check("unique", [v], attrs, lambda v: _unique_ref(v, axis, is_sorted), "Unique", onnx_attrs)


def test_unique_gradient_of_y_goes_to_first_occurrences():
    x = RNG.standard_normal((5, 3))
    check_grad("unique", [x], {"axis": None, "sorted": True})
    check_grad("unique", [x], {"axis": 1, "sorted": False})
    xd = np.array([2.0, 1.0, 2.0, 3.0])  # a repeated value: only its first occurrence gets gradient
    g = irf.grad(lambda t: irf.reduce_sum(irf.unique(t) * irf.tensor([1.0, 10.0, 100.0])))(irf.tensor(xd))
    np.testing.assert_array_equal(g.numpy(), [10.0, 1.0, 0.0, 100.0])


# -- compress -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis,cond_len", [(None, 12), (None, 5), (0, 4), (1, 3), (-1, 2), (0, 6)])
def test_compress(axis, cond_len):
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    cond = RNG.random(cond_len) > 0.4

    def ref(x, c):  # by hand: keep slice i when i < len(c) and c[i]
        if axis is None:
            return np.array([v for i, v in enumerate(x.reshape(-1)) if i < len(c) and c[i]], x.dtype)
        a = axis % x.ndim
        keep = [i for i in range(x.shape[a]) if i < len(c) and c[i]]
        return np.take(x, np.array(keep, np.int64), axis=a)

    # onnx's reference evaluator (np.compress) rejects a condition longer than the axis; onnxruntime
    # and irflow ignore the extra entries
    longer = cond_len > (x.size if axis is None else x.shape[axis])
    check("compress", [x, cond], {"axis": axis}, ref, None if longer else "Compress",
          {} if axis is None else {"axis": axis})
    check_grad("compress", [x, cond], {"axis": axis})


def test_compress_type_errors():
    with pytest.raises(DTypeError, match="condition must be a 1-D bool"):
        irf.compress(irf.tensor([1, 0]), irf.tensor([1.0, 2.0]))
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        irf.compress(irf.tensor([True]), irf.tensor([[1.0]]), axis=2)


def test_compress_vmap_with_one_condition_batches_and_a_per_example_one_loops():
    x = RNG.standard_normal((5, 4, 3)).astype(np.float32)
    cond = np.array([True, False, True, True])
    got = irf.vmap(lambda t: irf.compress(irf.tensor(cond), t, axis=0))(irf.tensor(x)).numpy()
    np.testing.assert_array_equal(got, np.stack([np.compress(cond, e, axis=0) for e in x]))
    conds = np.array([[True, False, True, False]] * 2 + [[False, True, True, False]] * 3)  # 2 kept in each
    got = irf.vmap(lambda t, c: irf.compress(c, t, axis=0))(irf.tensor(x), irf.tensor(conds)).numpy()
    np.testing.assert_array_equal(got, np.stack([np.compress(c, e, axis=0) for c, e in zip(conds, x)]))



def test_vmap_of_differing_lengths_names_the_scan_output_and_steps():
    """vmap runs nonzero/unique in a loop; examples with a different number of results cannot be
    stacked: an ExecutorError naming the two steps' shapes (was a raw NumPy stack error)."""
    x = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, 0.0]], np.float32)  # 3 non-zeros, then 2
    with pytest.raises(ExecutorError, match=r"shape \(1, 3\) at step 0 but \(1, 2\) at step 1"):
        irf.vmap(irf.nonzero)(irf.tensor(x))
    same = np.array([[1.0, 0.0, 3.0], [0.0, 5.0, 6.0]], np.float32)  # 2 each: stacks
    np.testing.assert_array_equal(irf.vmap(irf.nonzero)(irf.tensor(same)).numpy(), [np.argwhere(e) for e in same])

# -- non_max_suppression ------------------------------------------------------------------------------

def _iou(a, b, center):
    if center:
        a = [a[1] - a[3] / 2, a[0] - a[2] / 2, a[1] + a[3] / 2, a[0] + a[2] / 2]
        b = [b[1] - b[3] / 2, b[0] - b[2] / 2, b[1] + b[3] / 2, b[0] + b[2] / 2]
    ay0, ay1 = sorted((a[0], a[2]))
    ax0, ax1 = sorted((a[1], a[3]))
    by0, by1 = sorted((b[0], b[2]))
    bx0, bx1 = sorted((b[1], b[3]))
    ih, iw = min(ay1, by1) - max(ay0, by0), min(ax1, bx1) - max(ax0, bx0)
    if ih <= 0 or iw <= 0:
        return 0.0
    inter = ih * iw
    return inter / ((ay1 - ay0) * (ax1 - ax0) + (by1 - by0) * (bx1 - bx0) - inter)


def _nms_ref(boxes, scores, max_out, iou_thr, score_thr, center):
    rows = []
    for b in range(boxes.shape[0]):
        for c in range(scores.shape[1]):
            order = sorted(range(boxes.shape[1]), key=lambda i: (-scores[b, c, i], i))
            kept = []
            for i in order:
                if score_thr is not None and not scores[b, c, i] > score_thr:
                    continue
                if len(kept) < max_out and all(_iou(boxes[b, i], boxes[b, k], center) <= iou_thr for k in kept):
                    kept.append(i)
                    rows.append((b, c, i))
    return np.array(rows, np.int64).reshape(-1, 3)


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("limits", [(3, 0.5, None), (10, 0.3, 0.2), (0, 0.5, None), (2, 0.0, 0.5)])
def test_non_max_suppression(center, limits):
    boxes = RNG.random((2, 8, 4)).astype(np.float32)
    if center:
        boxes[..., 2:] = boxes[..., 2:] * 0.6 + 0.05  # width, height
    scores = RNG.random((2, 3, 8)).astype(np.float32)
    max_out, iou_thr, score_thr = limits
    ins = [boxes, scores, np.array([max_out], np.int64), np.array([iou_thr], np.float32)]
    ins.append(None if score_thr is None else np.array([score_thr], np.float32))
    if score_thr is None:
        ins = ins[:4]
    # the limits are graph inputs: read at run time by every executor
    check("non_max_suppression", ins, {"center_point_box": center},
          lambda *a: _nms_ref(boxes, scores, max_out, iou_thr, score_thr, center),
          "NonMaxSuppression", {"center_point_box": center})


def test_non_max_suppression_type_errors():
    with pytest.raises(DTypeError, match="boxes and scores must be float32"):
        irf.bind("non_max_suppression", irf.tensor(np.zeros((1, 2, 4))), irf.tensor(np.zeros((1, 1, 2))))
    with pytest.raises(ShapeError, match="differ in the boxes dim"):
        irf.bind("non_max_suppression", irf.tensor(np.zeros((1, 2, 4), np.float32)), irf.tensor(np.zeros((1, 1, 3), np.float32)))


# -- the public functions: eager, traced (unknown dims), exported ----------------------------------------

def test_public_functions_eager_against_numpy_and_torch():
    torch = pytest.importorskip("torch")
    x = RNG.integers(-2, 3, size=(4, 5)).astype(np.float32)
    np.testing.assert_array_equal(irf.nonzero(irf.tensor(x)).numpy(), torch.nonzero(torch.tensor(x)).numpy())
    for got, want in zip(irf.nonzero(irf.tensor(x), as_tuple=True), np.nonzero(x)):
        np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(irf.argwhere(irf.tensor(x)).numpy(), np.argwhere(x))
    y, inv, counts = irf.unique(irf.tensor(x), return_inverse=True, return_counts=True)
    ty, tinv, tcounts = torch.unique(torch.tensor(x), return_inverse=True, return_counts=True)
    for a, b in ((y, ty), (inv, tinv), (counts, tcounts)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    y, inv = irf.unique(irf.tensor(x), axis=1, return_inverse=True)
    ty, tinv = torch.unique(torch.tensor(x), dim=1, return_inverse=True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(inv.numpy(), tinv.numpy())
    mask = x > 0
    np.testing.assert_array_equal(irf.boolean_mask(irf.tensor(x), irf.tensor(mask)).numpy(), x[mask])
    np.testing.assert_array_equal(irf.boolean_mask(irf.tensor(x), irf.tensor(mask[1]), axis=1).numpy(), x[:, mask[1]])
    np.testing.assert_array_equal(irf.compress(irf.tensor(mask[0]), irf.tensor(x), axis=1).numpy(), np.compress(mask[0], x, axis=1))



def test_where_with_one_argument_names_argwhere_and_nonzero():
    """tf.where(c) gives (N, rank) rows, torch.where(c) / np.where(c) a tuple: irf.where(c) alone
    is an IrflowError naming the function for each (it was a bare TypeError)."""
    c = irf.tensor(np.array([[True, False], [False, True]]))
    with pytest.raises(irf.IrflowError, match=r"irf.argwhere\(cond\).*irf.nonzero\(cond, as_tuple=True\)"):
        irf.where(c)
    with pytest.raises(irf.IrflowError, match="give both x and y"):
        irf.where(c, irf.tensor(np.ones((2, 2), np.float32)))
    np.testing.assert_array_equal(irf.argwhere(c).numpy(), np.argwhere(c.numpy()))

def test_non_max_suppression_public_form():
    boxes = RNG.random((10, 4)).astype(np.float32)
    scores = RNG.random(10).astype(np.float32)
    got = irf.non_max_suppression(irf.tensor(boxes), irf.tensor(scores), iou_threshold=0.3).numpy()
    want = _nms_ref(boxes[None], scores[None, None], 10, 0.3, None, 0)[:, 2]
    np.testing.assert_array_equal(got, want)
    got = irf.non_max_suppression(irf.tensor(boxes), irf.tensor(scores), 2, 0.3, score_threshold=0.5).numpy()
    np.testing.assert_array_equal(got, _nms_ref(boxes[None], scores[None, None], 2, 0.3, 0.5, 0)[:, 2])


def test_traced_and_exported_shapes_are_read_at_run_time(tmp_path):
    @irf.function
    def f(x):
        kept = irf.boolean_mask(x, x > 0.0)
        values, counts = irf.unique(irf.cast(x > 0.0, "int64"), return_counts=True)
        return irf.reduce_sum(kept), kept, counts, irf.nonzero(x > 0.0)

    spec = irf.TensorSpec(("batch", 3), "float32")
    g = f.get_concrete_function(spec).graph
    assert [v.type.shape for v in g.outputs[1:]] == [(None,), (None,), (None, 2)]
    path = tmp_path / "datadep.onnx"
    irf.onnx.export(f, path, spec)
    for x in (RNG.standard_normal((4, 3)).astype(np.float32), RNG.standard_normal((2, 3)).astype(np.float32)):
        eager = [t.numpy() for t in f(x)]
        np.testing.assert_allclose(eager[0], x[x > 0].sum(), rtol=1e-6)
        np.testing.assert_array_equal(eager[1], x[x > 0])
        np.testing.assert_array_equal(eager[2], np.unique(x > 0, return_counts=True)[1])
        np.testing.assert_array_equal(eager[3], np.argwhere(x > 0))
        ort = list(irf.onnx.run(path, {g.input_names[0]: x}).values())
        for a, b in zip(ort, eager):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_onnx_import_of_a_run_time_condition():
    """Greater -> Compress and NonZero: the condition is computed in the model, so the output
    length is known only at run time; import -> NumPy and import -> export -> onnxruntime."""
    nodes = [helper.make_node("Greater", ["x", "zero"], ["c"]),
             helper.make_node("Compress", ["x", "c"], ["kept"], axis=0),
             helper.make_node("NonZero", ["c"], ["idx"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("kept", TensorProto.FLOAT, [None]),
                               helper.make_tensor_value_info("idx", TensorProto.INT64, [1, None])],
                              initializer=[helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    g = irf.onnx.load(model)
    assert g.outputs[0].type.shape == (None,) and g.outputs[1].type.shape == (1, None)
    x = np.array([1.0, -2.0, 3.0, 0.0, 5.0], np.float32)
    for out in (irf.run(g, {"x": x}), irf.run(g, {"x": x}, executor="ort")):
        np.testing.assert_array_equal(out["kept"], [1.0, 3.0, 5.0])
        np.testing.assert_array_equal(out["idx"], [[0, 2, 4]])
