"""segment_sum / segment_max / segment_min through the harness (eager vs a Python loop written
here, type rule, interpreter, onnxruntime, VJP vs finite differences), and the form with
num_segments as a run-time input."""
import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner
from tests.ops.harness import check_op


def loop_reference(kind, data, ids, n):
    """Row by row, the way the definition reads."""
    data = np.asarray(data)
    if kind == "sum":
        out = np.zeros((n,) + data.shape[1:], data.dtype)
    else:
        info = np.finfo(data.dtype) if data.dtype.kind == "f" else np.iinfo(data.dtype)
        out = np.full((n,) + data.shape[1:], info.min if kind == "max" else info.max, data.dtype)
    for i, s in enumerate(ids):
        if kind == "sum":
            out[s] = out[s] + data[i]
        elif kind == "max":
            out[s] = np.maximum(out[s], data[i])
        else:
            out[s] = np.minimum(out[s], data[i])
    return out


CASES = [
    # (data shape, ids, num_segments): unsorted ids, empty segments, a 2-D row, no rows at all
    ((6,), [2, 0, 2, 1, 0, 2], 4),
    ((5, 3), [0, 0, 1, 3, 3], 4),
    ((4, 2, 2), [1, 1, 1, 1], 3),
    ((0, 3), [], 2),
    ((5, 3), [1, 0, 1, 2, 0], 3),
]


@pytest.mark.parametrize("kind", ["sum", "max", "min"])
@pytest.mark.parametrize("shape,ids,n", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_segment_ops_against_a_loop(kind, shape, ids, n, dtype):
    rng = np.random.default_rng(len(ids) + n)
    # distinct values: max/min are differentiable there (no ties) for the finite differences
    data = rng.permutation(np.arange(int(np.prod(shape)), dtype=dtype)).reshape(shape) / 7.0 - 1.0
    data = data.astype(dtype)
    ids_arr = np.asarray(ids, dtype=np.int64)
    # An empty segment's max is the dtype's lowest value (-1.8e308 in float64): finite differences
    # of a sum holding it lose every digit, so max/min gradients are checked where no segment is empty.
    grad = kind == "sum" or set(ids) == set(range(n))
    check_op(f"segment_{kind}", [data, ids_arr], lambda d, i: loop_reference(kind, d, i, n), {"num_segments": n},
             grad=grad, grad_rtol=1e-5, grad_atol=1e-6)


@pytest.mark.parametrize("kind", ["sum", "max"])
def test_int_data_and_int32_ids(kind):
    data = np.array([[3, -1], [5, 2], [4, 4]], dtype=np.int64)
    ids = np.array([1, 1, 0], dtype=np.int32)
    check_op(f"segment_{kind}", [data, ids], lambda d, i: loop_reference(kind, d, i, 3), {"num_segments": 3})


def test_max_gradient_is_shared_among_ties():
    x = irf.tensor(np.array([2.0, 2.0, 1.0, 5.0], "float32"))
    with irf.GradientTape() as tape:
        tape.watch(x)
        y = irf.reduce_sum(irf.segment_max(x, np.array([0, 0, 0, 1]), 2) * irf.tensor([1.0, 3.0]))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [0.5, 0.5, 0.0, 3.0])


@pytest.mark.parametrize("kind", ["sum", "max"])
def test_num_segments_as_a_run_time_input_on_both_executors(kind):
    b = irf.GraphBuilder("seg")
    d = b.input("data", irf.float32, ("n", 2))
    i = b.input("ids", irf.int64, ("n",))
    k = b.input("k", irf.int64, ())
    out = b.add_node(f"segment_{kind}", [d, i, k], {})
    assert out.shape == (None, 2)
    b.output(out)
    g = b.build(verify=True)
    data = np.random.default_rng(0).standard_normal((7, 2)).astype("float32")
    ids = np.array([4, 0, 0, 2, 4, 4, 1])
    feeds = {"data": data, "ids": ids, "k": np.array(6)}
    want = loop_reference(kind, data, ids, 6)
    np.testing.assert_array_equal(Interpreter(g).run(feeds)[g.output_names[0]], want)
    np.testing.assert_allclose(OrtRunner(g).run(feeds)[g.output_names[0]], want, rtol=1e-6)
    if kind == "sum":  # the gradient graph with a run-time num_segments also runs on onnxruntime
        gg = vjp(g, wrt=["data"]).verify()
        ct = np.random.default_rng(1).standard_normal((6, 2)).astype("float32")
        grads = OrtRunner(gg).run({**feeds, f"ct_{g.output_names[0]}": ct})
        np.testing.assert_allclose(grads["grad_data"], ct[ids], rtol=1e-6)


def test_errors_name_the_op_and_the_problem():
    with pytest.raises(irf.IrflowError, match=r"segment_sum: segment ids must lie in \[0, 2\)"):
        irf.segment_sum(irf.tensor([1.0, 2.0]), np.array([0, 2]), 2)
    with pytest.raises(irf.DTypeError, match="segment_ids must be int32 or int64"):
        irf.segment_sum(irf.tensor([1.0, 2.0]), np.array([0.0, 1.0]), 2)
    with pytest.raises(irf.ShapeError, match="segment_sum"):
        irf.segment_sum(irf.tensor([1.0, 2.0]), np.array([0, 1, 1]), 2)
