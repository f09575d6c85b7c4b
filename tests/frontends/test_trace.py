"""irf.function: tracing cache, retracing, state, nesting and errors."""
import warnings

import numpy as np
import pytest

import irflow as irf
from irflow.frontends.trace import RetracingWarning

rng = np.random.default_rng(1)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_same_shapes_do_not_retrace_and_values_match_numpy():
    calls = []

    @irf.function
    def f(x, y):
        calls.append(1)  # Python side effects run only while tracing
        return irf.relu(x @ y) * 2.0

    x, y = f32(3, 4), f32(4, 5)
    for _ in range(3):
        out = f(x, y)
    assert f.trace_count == 1 and len(calls) == 1
    np.testing.assert_allclose(out.numpy(), np.maximum(x @ y, 0) * 2, rtol=1e-6)
    f(irf.tensor(f32(3, 4)), y)  # a Tensor of the same shape: same trace
    assert f.trace_count == 1


def test_new_batch_size_retraces_without_spec():
    f = irf.function(lambda x: irf.reduce_sum(x, axis=1))
    f(f32(2, 4))
    f(f32(3, 4))
    assert f.trace_count == 2
    f(f32(3, 4).astype(np.float64))  # a new dtype retraces too
    assert f.trace_count == 3


@pytest.mark.parametrize("dim", [None, "batch"])
def test_none_or_symbolic_dim_in_input_signature_does_not_retrace(dim):
    f = irf.function(input_signature=[irf.TensorSpec((dim, 4), "float32")])(lambda x: irf.reduce_sum(x * x, axis=1))
    for n in (1, 2, 7):
        x = f32(n, 4)
        np.testing.assert_allclose(f(x).numpy(), (x * x).sum(1), rtol=1e-5)
    assert f.trace_count == 1
    assert f.get_graph().inputs[0].type.shape == (dim, 4)


def test_get_concrete_function_with_a_none_dim_serves_later_calls():
    f = irf.function(lambda x: x + 1.0)
    g = f.get_graph(irf.TensorSpec((None, 3), "float32"))
    assert g.inputs[0].type.shape == (None, 3) and f.trace_count == 1
    f(f32(5, 3))
    f(f32(9, 3))
    assert f.trace_count == 1
    f(f32(5, 4))  # the spec's 3 is fixed
    assert f.trace_count == 2


def test_python_arguments_are_part_of_the_key():
    f = irf.function(lambda x, k: x * k)
    x = f32(2)
    np.testing.assert_allclose(f(x, 2.0).numpy(), x * 2)
    np.testing.assert_allclose(f(x, 3.0).numpy(), x * 3)
    f(x, 3.0)
    assert f.trace_count == 2


def test_retracing_warns_after_many_traces():
    f = irf.function(lambda x: x * 2.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 6):
            f(f32(n))
        assert not [w for w in caught if issubclass(w.category, RetracingWarning)]
        f(f32(6))
    msgs = [str(w.message) for w in caught if issubclass(w.category, RetracingWarning)]
    assert len(msgs) == 1 and "traced 6 times" in msgs[0] and "'<lambda>'" in msgs[0]


def test_variable_updates_persist_across_calls():
    w = irf.Variable(np.zeros(3, np.float32), name="w")
    count = irf.Variable(np.int64(0), name="count")

    @irf.function
    def step(x):
        w.assign_add(x)
        count.assign_add(1)
        return w * 2.0  # a read after the assignment sees the new value

    x = np.array([1.0, 2.0, 3.0], np.float32)
    outs = [step(x).numpy() for _ in range(3)]
    assert step.trace_count == 1
    np.testing.assert_array_equal(w.numpy(), 3 * x)
    assert int(count.numpy()) == 3
    np.testing.assert_array_equal(outs[0], 2 * x)
    np.testing.assert_array_equal(outs[2], 6 * x)
    # The eager update between calls is seen by the next call: variables are fed, not baked in.
    w.assign(np.zeros(3, np.float32))
    np.testing.assert_array_equal(step(x).numpy(), 2 * x)


def test_concrete_function_interface():
    w = irf.Variable(f32(4, 2), name="w")
    b = irf.Variable(np.zeros(2, np.float32), name="b")

    @irf.function
    def f(x):
        y = x @ w + b
        b.assign_sub(irf.reduce_sum(y, axis=0))
        return {"y": y, "pair": (irf.relu(y), None)}

    cf = f.get_concrete_function(irf.TensorSpec(("n", 4), "float32"))
    g = cf.graph
    assert cf.arg_inputs == ["x"]
    assert [n for n, _ in cf.variable_inputs] == ["w", "b"]
    assert cf.variable_inputs[0][1] is w and cf.variable_inputs[1][1] is b
    assert list(g.input_names) == cf.arg_inputs + [n for n, _ in cf.variable_inputs]
    assert list(g.output_names) == cf.result_outputs + [n for n, _ in cf.variable_outputs]
    assert len(cf.result_outputs) == 2 and cf.variable_outputs[0][1] is b
    rebuilt = cf.unflatten_outputs(["Y", "R"])
    assert rebuilt == {"y": "Y", "pair": ("R", None)}
    x = f32(3, 4)
    w0 = w.numpy().copy()
    out = f(x)
    np.testing.assert_allclose(out["y"].numpy(), x @ w0, rtol=1e-5)
    assert out["pair"][1] is None
    np.testing.assert_allclose(b.numpy(), -(x @ w0).sum(0), rtol=1e-5)
    assert f.trace_count == 1  # the call used the concrete function made for ("n", 4)


def test_nested_functions_inline_into_one_graph():
    v = irf.Variable(np.ones(2, np.float32), name="v")

    @irf.function
    def inner(x):
        v.assign(v * 2.0)
        return x + v

    @irf.function
    def outer(x):
        return inner(x) * 3.0

    x = np.array([1.0, 2.0], np.float32)
    np.testing.assert_allclose(outer(x).numpy(), (x + 2.0) * 3.0)
    np.testing.assert_allclose(v.numpy(), [2.0, 2.0])
    g = outer.get_graph(x)
    assert "call" not in [n.op for n in g.nodes]
    assert [n for n in g.input_names] == ["x", "v"]
    np.testing.assert_allclose(outer(x).numpy(), (x + 4.0) * 3.0)


def test_ort_executor_gives_the_same_values():
    f_np = irf.function(lambda x: irf.relu(x) * 2.0 + 1.0)
    f_ort = irf.function(executor="ort")(lambda x: irf.relu(x) * 2.0 + 1.0)
    x = f32(4, 3)
    np.testing.assert_allclose(f_ort(x).numpy(), f_np(x).numpy(), rtol=1e-6)


def test_method_decorated_with_function():
    class Scale:
        def __init__(self, k):
            self.k = irf.Variable(np.float32(k), name="k")

        @irf.function
        def __call__(self, x):
            return x * self.k

    a, b = Scale(2.0), Scale(3.0)
    x = f32(3)
    np.testing.assert_allclose(a(x).numpy(), x * 2, rtol=1e-6)
    np.testing.assert_allclose(b(x).numpy(), x * 3, rtol=1e-6)


# -- errors ----------------------------------------------------------------------------------------
def test_python_if_on_a_traced_tensor_raises_and_points_to_cond():
    @irf.function
    def f(x):
        if irf.reduce_sum(x) > 0:
            return x
        return -x

    with pytest.raises(irf.IrflowError, match=r"while tracing irf.function 'f'.*truth value of symbolic tensor %greater.*irf.cond"):
        f(f32(3))


def test_python_while_on_a_traced_tensor_raises():
    @irf.function
    def g(x):
        while x > 0:
            x = x - 1.0
        return x

    with pytest.raises(irf.IrflowError, match=r"irf.while_loop"):
        g(np.float32(3.0))


def test_wrong_arity_names_the_function():
    @irf.function
    def add(x, y):
        return x + y

    with pytest.raises(irf.IrflowError, match=r"irf.function 'add'\(x, y\) called with wrong arguments: missing a required argument: 'y'"):
        add(f32(2))
    with pytest.raises(irf.IrflowError, match=r"'add'.*too many positional arguments"):
        add(f32(2), f32(2), f32(2))


def test_input_signature_mismatch_names_the_argument():
    f = irf.function(input_signature=[irf.TensorSpec((None, 4), "float32")])(lambda x: x)
    with pytest.raises(irf.ShapeError, match=r"tensor argument 0: shape \(2, 3\) does not match \(None, 4\)"):
        f(f32(2, 3))
    with pytest.raises(irf.DTypeError, match=r"tensor argument 0: dtype float64 does not match float32"):
        f(np.zeros((2, 4)))
    with pytest.raises(irf.IrflowError, match=r"input_signature has 1 tensor\(s\), the call passed 2"):
        f(f32(2, 4), f32(2, 4))


def test_shape_error_inside_trace_names_function_and_op():
    f = irf.function(lambda x, y: x @ y)
    with pytest.raises(irf.ShapeError, match=r"while tracing irf.function '<lambda>': matmul .*float32\[2, 3\], float32\[4, 5\]"):
        f(f32(2, 3), f32(4, 5))


def test_traced_value_cannot_escape():
    leaked = []

    @irf.function
    def f(x):
        leaked.append(x)
        return x

    f(f32(2))
    with pytest.raises(irf.IrflowError, match=r"symbolic tensor %x"):
        leaked[0] + 1.0


# -- differentiable calls (with the autodiff helper's GradientTape) --------------------------------
def test_function_called_under_a_tape_is_one_call_op_and_differentiable():
    tape_cls = getattr(irf, "GradientTape", None)
    if tape_cls is None:
        pytest.skip("irf.GradientTape (autodiff issue) not available")
    w = irf.Variable(f32(3, 2), name="w")
    f = irf.function(lambda x: irf.reduce_sum(irf.relu(x @ w) * 2.0))
    x = f32(4, 3)
    with tape_cls() as tape:
        loss = f(x)
    (gw,) = tape.gradient(loss, [w])
    mask = (x @ w.numpy()) > 0
    np.testing.assert_allclose(gw.numpy(), x.T @ (2.0 * mask), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss.numpy(), (np.maximum(x @ w.numpy(), 0) * 2).sum(), rtol=1e-5)


def test_traced_train_step_with_a_tape_matches_the_eager_step_and_is_one_graph():
    tape_cls = getattr(irf, "GradientTape", None)
    if tape_cls is None:
        pytest.skip("irf.GradientTape (autodiff issue) not available")
    X, Y = f32(8, 4), f32(8, 2)
    w0 = f32(4, 2)

    def step(w, x, y):
        with tape_cls() as tape:
            d = x @ w - y
            loss = irf.reduce_sum(d * d)
        (g,) = tape.gradient(loss, [w])
        w.assign_sub(0.01 * g)
        return loss

    w_np = w0.copy()
    w_traced = irf.Variable(w0, name="w")
    f = irf.function(lambda x, y: step(w_traced, x, y))
    for _ in range(3):
        d = X @ w_np - Y  # the step by hand: d(sum d^2)/dw = 2 x^T d
        loss_ref = (d * d).sum()
        w_np = w_np - 0.01 * (2 * X.T @ d)
        np.testing.assert_allclose(f(X, Y).numpy(), loss_ref, rtol=1e-5)
        np.testing.assert_allclose(w_traced.numpy(), w_np, rtol=1e-5, atol=1e-6)
    assert f.trace_count == 1
    cf = f.get_concrete_function(X, Y)
    assert [n for n, _ in cf.variable_outputs] == ["w_new"] and cf.variable_outputs[0][1] is w_traced


def test_under_a_recorder_a_call_is_one_call_op_else_no_op_is_recorded():
    from irflow.frontends.recording import GraphRecorder

    v = irf.Variable(np.float32(2.0), name="v")
    f = irf.function(lambda x: irf.relu(x) * v)
    x = f32(3)
    f(x)  # traced outside any recorder
    with GraphRecorder() as rec:
        y = f(x)
    assert [r[0] for r in rec.records] == ["call"]
    assert rec.records[0][3]["graph"] is f.get_concrete_function(x).graph
    assert rec.records[0][1][-1] is v  # inputs in graph-input order: arguments, then variables
    np.testing.assert_allclose(y.numpy(), np.maximum(x, 0) * 2.0)


def test_function_called_inside_a_static_program_inlines_and_assigns_there():
    counter = irf.Variable(np.float32(0.0), name="counter")

    @irf.function
    def bump(x):
        counter.assign_add(1.0)
        return x * 2.0

    prog = irf.static.Program()
    with prog:
        p = irf.static.placeholder("p", (2,), "float32")
        y = bump(p)
    sess = irf.static.Session(prog)
    np.testing.assert_allclose(sess.run(y, {p: np.ones(2, np.float32)}), [2.0, 2.0])
    assign = [n for n in prog.builder.assign_values]
    assert len(assign) == 1
    sess.run(prog.builder.assignments[0][1])
    assert sess.value(counter) == 1.0 and float(counter) == 0.0


def test_ort_options_reach_the_onnxruntime_session():
    from irflow.executors.onnx import OrtOptions

    opts = OrtOptions(intra_op_num_threads=1, allow_spinning=False, graph_optimization_level="basic")
    f = irf.function(executor="ort", ort_options=opts)(lambda x: irf.relu(x) * 2.0 + 1.0)
    x = np.array([-1.0, 0.5, 2.0], dtype=np.float32)
    np.testing.assert_array_equal(f(x).numpy(), np.maximum(x, 0) * 2 + 1)
    so = f.get_concrete_function(x)._runner.session.get_session_options()
    assert so.intra_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_ort_options_without_the_ort_executor_are_an_error():
    from irflow.executors.onnx import OrtOptions

    with pytest.raises(irf.IrflowError, match="ort_options were given but executor='numpy'"):
        irf.function(ort_options=OrtOptions(intra_op_num_threads=1))(lambda x: x)
