"""reverse_sequence, max_unpool, det (irflow/ops/onnx_extra.py) through the shared harness
(hand-written NumPy references, type rule, interpreter, onnxruntime, finite differences) and
against onnx's ReferenceEvaluator; and the import-only mappings of issue 17: GatherND with
batch_dims, TensorScatter (opset 24), opset-8 Scan."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import irflow as irf
from irflow.errors import DTypeError, ExecutorError, ShapeError
from tests.ops.harness import check_op

rng = np.random.default_rng(11)
F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _model(nodes, inputs, outputs, opset, initializers=()):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs], initializer=list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _import_both_ways(model, feeds, want, **load_kwargs):
    """import -> NumPy and import -> export -> onnxruntime, both equal to ``want`` (a list)."""
    g = irf.onnx.load(model, **load_kwargs)
    for executor in ("numpy", "ort"):
        out = irf.run(g, feeds, executor=executor)
        for name, w in zip(g.output_names, want):
            np.testing.assert_allclose(out[name], w, rtol=1e-5, atol=1e-6, err_msg=f"{executor}: {name}")
            assert out[name].shape == w.shape and out[name].dtype == w.dtype


def _onnx_ref(model, feeds):
    return ReferenceEvaluator(model).run(None, feeds)


# -- reverse_sequence ---------------------------------------------------------------------------------

def _reverse_ref(x, lens, batch_axis, time_axis):
    out = x.copy()
    for b, n in enumerate(lens):
        for t in range(n):
            src = [slice(None)] * x.ndim
            dst = [slice(None)] * x.ndim
            src[batch_axis], src[time_axis] = b, n - 1 - t
            dst[batch_axis], dst[time_axis] = b, t
            out[tuple(dst)] = x[tuple(src)]
    return out


@pytest.mark.parametrize("batch_axis,time_axis", [(1, 0), (0, 1)])
def test_reverse_sequence(batch_axis, time_axis):
    shape = [0, 0, 3]
    shape[batch_axis], shape[time_axis] = 4, 5
    x = rng.standard_normal(shape).astype(np.float32)
    lens = np.array([5, 0, 1, 3], np.int64)
    attrs = dict(batch_axis=batch_axis, time_axis=time_axis)
    eager, = check_op("reverse_sequence", [x, lens], lambda x, n: _reverse_ref(x, n, batch_axis, time_axis), attrs)
    model = _model([helper.make_node("ReverseSequence", ["x", "lens"], ["y"], **attrs)],
                   [("x", F, shape), ("lens", I64, [4])], [("y", F, shape)], 13)
    np.testing.assert_array_equal(_onnx_ref(model, {"x": x, "lens": lens})[0], eager)
    _import_both_ways(model, {"x": x, "lens": lens}, [eager])


def test_reverse_sequence_errors():
    with pytest.raises(ShapeError, match="must be 0 and 1"):
        irf.reverse_sequence(irf.tensor(np.zeros((2, 3, 4))), np.array([1, 1, 1]), batch_axis=2, time_axis=0)
    with pytest.raises(ExecutorError, match=r"sequence_lens \[4, 1\] must be in 0..3"):
        irf.reverse_sequence(irf.tensor(np.zeros((2, 3))), np.array([4, 1]), batch_axis=0, time_axis=1)


# -- max_unpool ---------------------------------------------------------------------------------------

def _pool_indices(x_shape, out_spatial, kernel, strides):
    """Flat indices (over the whole unpooled tensor, as MaxPool's Indices) of one position per window."""
    n, c, h, w = x_shape
    oh, ow = out_spatial
    idx = np.zeros(x_shape, np.int64)
    for pos in np.ndindex(*x_shape):
        b, ch, i, j = pos
        di, dj = rng.integers(0, kernel[0]), rng.integers(0, kernel[1])
        idx[pos] = ((b * c + ch) * oh + i * strides[0] + di) * ow + j * strides[1] + dj
    return idx


def _unpool_ref(x, idx, inferred, out_shape=None):
    y = np.zeros(int(np.prod(inferred)), x.dtype)
    for v, i in zip(x.reshape(-1), idx.reshape(-1)):
        y[i] = v
    y = y.reshape(inferred)
    if out_shape is None:
        return y
    out = np.zeros(out_shape, x.dtype)
    out[tuple(slice(0, d) for d in inferred)] = y
    return out


@pytest.mark.parametrize("out_shape", [None, (2, 3, 5, 7)])
def test_max_unpool(out_shape):
    x = rng.standard_normal((2, 3, 2, 3)).astype(np.float32)
    inferred = (2, 3, 4, 6)
    idx = _pool_indices(x.shape, inferred[2:], (2, 2), (2, 2))
    attrs = dict(kernel_shape=(2, 2), pads=(0, 0, 0, 0), strides=(2, 2), out_shape=out_shape)
    eager, = check_op("max_unpool", [x, idx], lambda x, i: _unpool_ref(x, i, inferred, out_shape), attrs)
    # the ONNX node with output_shape as a run-time input (its dims unknown until run time)
    ins = [("x", F, list(x.shape)), ("i", I64, list(idx.shape))]
    names = ["x", "i"]
    feeds = {"x": x, "i": idx}
    if out_shape is not None:
        ins.append(("s", I64, [4]))
        names.append("s")
        feeds["s"] = np.array(out_shape, np.int64)
    model = _model([helper.make_node("MaxUnpool", names, ["y"], kernel_shape=[2, 2], strides=[2, 2])], ins,
                   [("y", F, [None] * 4)], 22)
    np.testing.assert_array_equal(_onnx_ref(model, feeds)[0], eager)
    _import_both_ways(model, feeds, [eager])


def test_max_unpool_bad_indices_are_an_error_naming_the_op():
    x = np.ones((1, 1, 1, 1), np.float32)
    with pytest.raises(ExecutorError, match="max_unpool: indices must be in 0..3"):
        irf.bind("max_unpool", irf.tensor(x), irf.tensor(np.array([[[[9]]]], np.int64)), kernel_shape=(2, 2),
                 pads=(0, 0, 0, 0), strides=(2, 2))


# -- det ----------------------------------------------------------------------------------------------

def _det_ref(x):
    """Laplace expansion along the first row, by hand."""
    def d(m):
        if m.shape[0] == 1:
            return m[0, 0]
        return sum((-1) ** j * m[0, j] * d(np.delete(m[1:], j, axis=1)) for j in range(m.shape[0]))
    flat = x.reshape((-1,) + x.shape[-2:]).astype(np.float64)
    return np.array([d(m) for m in flat]).reshape(x.shape[:-2]).astype(x.dtype)


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (1, 1), (2, 2)])
def test_det(shape):
    x = rng.standard_normal(shape).astype(np.float32)
    eager, = check_op("det", [x], _det_ref, rtol=1e-5, atol=1e-5, grad_rtol=1e-5, grad_atol=1e-6)
    model = _model([helper.make_node("Det", ["x"], ["y"])], [("x", F, list(shape))], [("y", F, list(shape[:-2]))], 22)
    np.testing.assert_allclose(_onnx_ref(model, {"x": x})[0], eager, rtol=1e-5, atol=1e-6)
    _import_both_ways(model, {"x": x}, [eager])


def test_det_gradient_of_a_singular_matrix_is_the_cofactor_matrix():
    x = np.array([[1.0, 2.0], [2.0, 4.0]])  # det 0: no inverse, the gradient is still [[d, -c], [-b, a]]
    g = irf.grad(lambda t: irf.det(t))(irf.tensor(x))
    np.testing.assert_array_equal(g.numpy(), [[4.0, -2.0], [-2.0, 1.0]])
    with pytest.raises(ShapeError, match="square matrices"):
        irf.det(irf.tensor(np.zeros((2, 3))))
    with pytest.raises(DTypeError, match="float"):
        irf.det(irf.tensor(np.zeros((2, 2), np.int64)))


# -- import-only mappings -----------------------------------------------------------------------------

def test_gather_nd_with_batch_dims():
    data = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    indices = rng.integers(-3, 3, (2, 3, 6, 1)).astype(np.int64)
    want = np.empty((2, 3, 6, 5), np.float32)  # by hand: each (b0, b1) entry indexes its own data[b0, b1]
    for b0, b1, k in np.ndindex(2, 3, 6):
        want[b0, b1, k] = data[b0, b1, indices[b0, b1, k, 0]]
    model = _model([helper.make_node("GatherND", ["d", "i"], ["y"], batch_dims=2)],
                   [("d", F, [2, 3, 4, 5]), ("i", I64, [2, 3, 6, 1])], [("y", F, [2, 3, 6, 5])], 13)
    np.testing.assert_array_equal(_onnx_ref(model, {"d": data, "i": indices})[0], want)
    _import_both_ways(model, {"d": data, "i": indices}, [want])


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter(mode):
    past = rng.standard_normal((2, 3, 6, 4)).astype(np.float32)
    update = rng.standard_normal((2, 3, 2, 4)).astype(np.float32)
    write = np.array([4, 1] if mode == "linear" else [5, 2], np.int64)
    want = past.copy()  # by hand: update step s of batch b lands at write[b] + s (mod 6 when circular)
    for b in range(2):
        for s in range(2):
            pos = write[b] + s
            want[b, :, pos % 6 if mode == "circular" else pos] = update[b, :, s]
    model = _model([helper.make_node("TensorScatter", ["p", "u", "w"], ["y"], mode=mode)],
                   [("p", F, [2, 3, 6, 4]), ("u", F, [2, 3, 2, 4]), ("w", I64, [2])], [("y", F, [2, 3, 6, 4])], 24)
    np.testing.assert_array_equal(_onnx_ref(model, {"p": past, "u": update, "w": write})[0], want)
    _import_both_ways(model, {"p": past, "u": update, "w": write}, [want])
    # no import-time arrays allowed: the step numbers come from a run-time range
    _import_both_ways(model, {"p": past, "u": update, "w": write}, [want], fold_limit_bytes=0)


@pytest.mark.parametrize("batch_dim", [3, "B"])
def test_opset8_scan_runs_per_batch_entry(batch_dim):
    body = helper.make_graph([helper.make_node("Add", ["s", "x"], ["s2"]), helper.make_node("Mul", ["s2", "x"], ["y"])],
                             "body", [helper.make_tensor_value_info("s", F, [2]), helper.make_tensor_value_info("x", F, [2])],
                             [helper.make_tensor_value_info("s2", F, [2]), helper.make_tensor_value_info("y", F, [2])])
    node = helper.make_node("Scan", ["", "init", "xs"], ["final", "ys"], num_scan_inputs=1, body=body, directions=[1])
    model = _model([node], [("init", F, [batch_dim, 2]), ("xs", F, [batch_dim, 4, 2])],
                   [("final", F, [batch_dim, 2]), ("ys", F, [batch_dim, 4, 2])], 8)
    init = rng.standard_normal((3, 2)).astype(np.float32)
    xs = rng.standard_normal((3, 4, 2)).astype(np.float32)
    final, ys = init.copy(), np.zeros_like(xs)
    for b in range(3):  # by hand: batch entries independent, the sequence read backwards (directions=[1])
        for k, t in enumerate(range(3, -1, -1)):
            final[b] = final[b] + xs[b, t]
            ys[b, k] = final[b] * xs[b, t]
    _import_both_ways(model, {"init": init, "xs": xs}, [final, ys])
