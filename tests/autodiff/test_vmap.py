"""irf.vmap: JAX semantics (in_axes/out_axes pytrees, None, nesting, axis_size), eagerly, under
a tape, inside irf.function (one graph, ONNX export), and the errors for bad input. References
are NumPy loops written here."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import irflow as irf
from irflow.errors import IrflowError
from irflow.executors.onnx import OrtRunner, to_model

rng = np.random.default_rng(7)


def test_in_axes_none_and_int_per_argument():
    xs, w = rng.standard_normal((5, 3)), rng.standard_normal(3)
    out = irf.vmap(lambda x, w: irf.reduce_sum(x * w), in_axes=(0, None))(xs, w).numpy()
    np.testing.assert_allclose(out, xs @ w, rtol=1e-12)


def test_non_leading_in_axis_and_out_axis():
    x = rng.standard_normal((3, 6, 4))
    out = irf.vmap(lambda t: irf.exp(t) * 2.0, in_axes=1, out_axes=2)(x).numpy()
    want = np.stack([np.exp(x[:, i]) * 2 for i in range(6)], axis=2)
    np.testing.assert_allclose(out, want, rtol=1e-12)
    neg = irf.vmap(lambda t: irf.reduce_sum(t, axis=0), in_axes=-1, out_axes=-1)(x).numpy()
    np.testing.assert_allclose(neg, np.stack([x[..., i].sum(0) for i in range(4)], axis=-1), rtol=1e-12)


def test_pytree_in_axes_and_outputs():
    p = {"w": rng.standard_normal((4, 2)), "b": rng.standard_normal(2)}
    xs = rng.standard_normal((7, 4))

    def f(params, x):
        y = x @ params["w"] + params["b"]
        return {"y": y, "norm": irf.reduce_sum(y * y)}, params["b"]

    out, b = irf.vmap(f, in_axes=({"w": None, "b": None}, 0), out_axes=({"y": 0, "norm": 0}, None))(p, xs)
    np.testing.assert_allclose(out["y"].numpy(), xs @ p["w"] + p["b"], rtol=1e-12)
    np.testing.assert_allclose(out["norm"].numpy(), ((xs @ p["w"] + p["b"]) ** 2).sum(1), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(b), p["b"])


def test_unbatched_output_is_broadcast_and_axis_size():
    out = irf.vmap(lambda x: x * 0.0 + 3.0, in_axes=None, axis_size=4)(np.ones(2)).numpy()
    np.testing.assert_allclose(out, np.full((4, 2), 3.0))
    c = irf.vmap(lambda x, y: y, in_axes=(0, None))(np.ones((3, 2)), np.arange(2.0)).numpy()
    np.testing.assert_allclose(c, np.tile(np.arange(2.0), (3, 1)))


def test_nested_vmap_is_an_outer_product():
    a, b = rng.standard_normal(4), rng.standard_normal(5)
    out = irf.vmap(lambda x: irf.vmap(lambda y: x * y)(b))(a).numpy()
    np.testing.assert_allclose(out, np.outer(a, b), rtol=1e-12)
    # the inner vmap over a non-leading axis of a captured tensor
    m = rng.standard_normal((3, 5))
    out2 = irf.vmap(lambda x: irf.vmap(lambda col: irf.reduce_sum(col) * x, in_axes=1)(m))(a).numpy()
    np.testing.assert_allclose(out2, np.outer(a, m.sum(0)), rtol=1e-12)


def test_an_op_without_a_rule_loops_in_the_ir():
    """A family without rules yet (or LOOP) still vmaps: a scan over the batch, same numbers."""
    from irflow.ops.registry import LOOP, get_op

    opdef = get_op("tanh")
    saved = opdef.batch
    opdef.batch = LOOP
    try:
        x = rng.standard_normal((4, 3))

        @irf.function
        def f(x):
            return irf.vmap(irf.tanh)(x)

        np.testing.assert_allclose(f(x).numpy(), np.tanh(x), rtol=1e-12)
        assert "scan" in [n.op for n in f.get_graph(x).nodes]
    finally:
        opdef.batch = saved


def test_grad_of_vmap_under_a_tape_sees_closed_over_tensors():
    w = irf.tensor(rng.standard_normal((3, 2)))
    xs = rng.standard_normal((5, 3))
    with irf.GradientTape() as tape:
        tape.watch(w)
        y = irf.reduce_sum(irf.vmap(lambda x: irf.tanh(x @ w))(xs))
    g = tape.gradient(y, w).numpy()
    t = np.tanh(xs @ w.numpy())
    np.testing.assert_allclose(g, xs.T @ (1 - t ** 2), rtol=1e-10)


def test_per_example_gradients_vmap_of_grad():
    w = rng.standard_normal((3, 2))
    xs = rng.standard_normal((6, 3))

    def loss(w, x):
        return irf.reduce_sum(irf.tanh(x @ w) ** 2)

    got = irf.vmap(irf.grad(loss), in_axes=(None, 0))(w, xs).numpy()
    for i in range(6):
        t = np.tanh(xs[i] @ w)
        np.testing.assert_allclose(got[i], np.outer(xs[i], 2 * t * (1 - t ** 2)), rtol=1e-10)


def test_vmap_inside_irf_function_is_one_graph_that_exports_to_onnx(tmp_path):
    w = rng.standard_normal((3, 2))
    xs = rng.standard_normal((6, 3))

    @irf.function
    def f(w, xs):
        return irf.vmap(lambda x: irf.reduce_max(irf.exp(x @ w)), in_axes=0)(xs)

    want = np.exp(xs @ w).max(1)
    np.testing.assert_allclose(f(w, xs).numpy(), want, rtol=1e-12)
    g = f.get_graph(w, xs)
    assert "scan" not in [n.op for n in g.nodes]
    model = to_model(g)
    onnx.checker.check_model(model, full_check=True)
    out = OrtRunner(g).run({g.inputs[0].name: w, g.inputs[1].name: xs})
    np.testing.assert_allclose(np.asarray(list(out.values())[0]), want, rtol=1e-12)


def test_mismatched_batch_sizes_name_the_arguments():
    with pytest.raises(IrflowError, match=r"argument 0 has size 3.*argument 1 has size 4"):
        irf.vmap(lambda a, b: a + b)(np.ones((3, 2)), np.ones((4, 2)))


def test_in_axes_that_do_not_fit_the_arguments():
    with pytest.raises(IrflowError, match="in_axes has 3 entries .* 2 positional"):
        irf.vmap(lambda a, b: a + b, in_axes=(0, 0, 0))(np.ones(3), np.ones(3))
    with pytest.raises(IrflowError, match=r"argument 0\['w'\]|argument 0"):
        irf.vmap(lambda p: p["w"], in_axes=({"v": 0},))({"w": np.ones(3)})


def test_out_of_range_axis_names_the_argument_and_rank():
    with pytest.raises(IrflowError, match=r"in_axes 2 is out of range for argument 1 of rank 2 \(shape \(3, 4\)\)"):
        irf.vmap(lambda a, b: a + b, in_axes=(0, 2))(np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(IrflowError, match="out_axes 3 is out of range"):
        irf.vmap(lambda a: a, out_axes=3)(np.ones((3, 4)))


def test_no_mapped_argument_needs_axis_size():
    with pytest.raises(IrflowError, match="axis_size"):
        irf.vmap(lambda a: a, in_axes=None)(np.ones(3))
    with pytest.raises(IrflowError, match="axis_size has size 5.*argument 0 has size 3"):
        irf.vmap(lambda a: a, axis_size=5)(np.ones(3))


def test_module_variables_under_vmap_get_gradients_eager_and_traced():
    """A Module's Variables read inside vmap are captured as themselves: a tape (eager, or
    inside irf.function) differentiates through the vmapped call as through the batched one."""
    lin = irf.nn.Linear(3, 2)
    xs = rng.standard_normal((5, 3)).astype("float32")
    with irf.GradientTape() as tape:
        want_loss = irf.reduce_sum(irf.tanh(lin(xs)))
    want = tape.gradient(want_loss, lin.trainable_variables)
    with irf.GradientTape() as tape:
        loss = irf.reduce_sum(irf.vmap(lambda x: irf.tanh(lin(x)))(xs))
    got = tape.gradient(loss, lin.trainable_variables)

    @irf.function
    def traced(a):
        with irf.GradientTape() as t:
            l2 = irf.reduce_sum(irf.vmap(lambda x: irf.tanh(lin(x)))(a))
        return t.gradient(l2, lin.trainable_variables)

    for g, gt, w in zip(got, traced(xs), want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gt.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)


def test_vmap_of_grad_computes_no_dead_gradients():
    # grad traced inside vmap also emits the exponent's gradient of x ** 2 (log(x), NaN for
    # x < 0); the batched graph must not run it: no warning, and the answer is 2x.
    import warnings

    xs = np.array([[-1.0, 2.0], [3.0, -4.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = irf.vmap(irf.grad(lambda x: irf.reduce_sum(x ** 2)))(xs)
    np.testing.assert_allclose(out.numpy(), 2 * xs)
