"""ONNX import of If, Loop and Scan: the onnx node test cases on the NumPy executor, hand-made
models against NumPy references, and export -> import round trips."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import irflow as irf
from irflow.frontends.onnx_import import load
from tests.control.helpers import np_run, ort_run, ort_session
from tests.conformance.cases import some_cases

# test_scan_sum is opset-8 Scan (a batch axis the body does not see): imported with the body
# vectorized over the batch (onnx's version converter would drop the axis).
PASSING = ["test_if", "test_loop11", "test_scan9_sum", "test_scan9_multi_state", "test_scan9_scalar", "test_scan_sum"]
# Not irflow types: sequences and optionals.
OUT_OF_SCOPE = ["test_if_seq", "test_if_opt", "test_loop13_seq", "test_loop16_seq_none"]


@pytest.fixture(scope="module")
def cases():
    return _cases()


def _cases():
    import contextlib, io, warnings  # noqa: E401

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return some_cases(["if_", "loop", "scan"])


@pytest.mark.parametrize("name", PASSING)
def test_onnx_node_cases_pass_on_numpy(cases, name):
    case = cases[name]
    g = load(case.model)
    for ins, outs in case.data_sets:
        got = np_run(g, ins)
        assert len(got) == len(outs)
        for a, b in zip(got, outs):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_listed_cases_are_all_the_cases(cases):
    # The If/Loop/Scan node cases themselves (other ops' cases that hold a Loop are below).
    names = {n for n, c in cases.items() if n.startswith(("test_if", "test_loop", "test_scan"))
             and {x.op_type for x in c.model.graph.node} & {"If", "Loop", "Scan"}}
    assert names == set(PASSING) | set(OUT_OF_SCOPE)


# Cases of other ops whose models (or function bodies) hold a Loop or Scan.
USING_CONTROL_FLOW = ["test_range_float_type_positive_delta_expanded", "test_range_int32_type_negative_delta_expanded",
                      "test_linear_attention_decode_step", "test_linear_attention_gated_delta_gqa_expanded"]


@pytest.fixture(scope="module")
def other_cases():
    import contextlib, io, warnings  # noqa: E401

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return some_cases(["rangeop", "linear_attention"])


@pytest.mark.parametrize("name", USING_CONTROL_FLOW)
def test_cases_with_loop_or_scan_inside_pass_on_numpy_and_ort(other_cases, name):
    case = other_cases[name]
    g = load(case.model)
    assert {n.op for n in g.nodes} & {"scan", "while_loop"}
    sess = ort_session(g)  # the imported graph, exported again
    names = [vi.name for vi in case.model.graph.input]
    for ins, outs in case.data_sets:
        feeds = dict(zip(names, ins))
        args = [feeds[n] for n in g.input_names]
        for got in (np_run(g, args), ort_run(sess, g, args)):
            for a, b in zip(got, outs):
                np.testing.assert_allclose(a, b, rtol=2e-3 if b.dtype == np.float16 else 1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["test_if_seq", "test_loop13_seq"])
def test_sequence_cases_raise_unsupported(cases, name):
    with pytest.raises(irf.UnsupportedOpError):
        load(cases[name].model)


def _model(nodes, inputs, outputs, opset=17):
    g = helper.make_graph(nodes, "m", inputs, outputs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(m)
    return m


def test_loop_with_run_time_exit_becomes_while_loop():
    # while x < limit (checked in the body) and i < M: x = x * 2
    body = helper.make_graph(
        [helper.make_node("Mul", ["x_in", "two"], ["x_out"]),
         helper.make_node("Less", ["x_out", "limit"], ["c_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [])],
        initializer=[onnx.numpy_helper.from_array(np.float32(2.0), "two")],
    )
    m = _model([helper.make_node("Loop", ["M", "c0", "x"], ["y"], body=body)],
               [helper.make_tensor_value_info(n, t, []) for n, t in
                [("M", TensorProto.INT64), ("c0", TensorProto.BOOL), ("x", TensorProto.FLOAT), ("limit", TensorProto.FLOAT)]],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])])
    g = load(m)
    assert any(n.op == "while_loop" for n in g.nodes)

    def ref(M, c, x, limit):
        i = 0
        while c and i < M:
            x *= 2.0
            c = x < limit
            i += 1
        return x

    sess = ort_session(g)
    for args in ([10, True, 1.0, 100.0], [3, True, 1.0, 100.0], [10, False, 1.0, 100.0], [0, True, 1.0, 5.0]):
        feeds = [np.int64(args[0]), np.bool_(args[1]), np.float32(args[2]), np.float32(args[3])]
        by_name = dict(zip(["M", "c0", "x", "limit"], feeds))
        ordered = [by_name[n] for n in g.input_names]
        assert float(np_run(g, ordered)[0]) == ref(*args)
        assert float(ort_run(sess, g, ordered)[0]) == ref(*args)


def test_scan_reverse_direction_and_axis_1():
    # running sum over axis 1 of x, scanned backwards, output stacked on axis 1 backwards
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "xt"], ["s_out"]), helper.make_node("Identity", ["s_out"], ["y"])],
        "body",
        [helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("xt", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    m = _model([helper.make_node("Scan", ["s0", "x"], ["s", "ys"], body=body, num_scan_inputs=1,
                                 scan_input_directions=[1], scan_input_axes=[1], scan_output_directions=[1], scan_output_axes=[1])],
               [helper.make_tensor_value_info("s0", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
               [helper.make_tensor_value_info("s", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("ys", TensorProto.FLOAT, [2, 4])])
    g = load(m)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    s0 = np.float32([1, -1])
    # reference: steps t = 3, 2, 1, 0; output k (in order produced) stored at position 3 - k
    sums, s = [], s0.copy()
    for t in (3, 2, 1, 0):
        s = s + x[:, t]
        sums.append(s.copy())
    want_ys = np.stack(sums[::-1], axis=1)
    got_s, got_ys = np_run(g, [s0, x])
    np.testing.assert_allclose(got_s, s)
    np.testing.assert_allclose(got_ys, want_ys)


def test_rnn_export_import_round_trip_with_two_lengths():
    def rnn(xs, h0, wx, wh):
        return irf.scan(lambda h, x: (irf.tanh(x @ wx + h @ wh),) * 2, h0, xs)

    specs = [irf.TensorSpec(("T", 2, 3), "float32"), irf.TensorSpec((2, 4), "float32"),
             irf.TensorSpec((3, 4), "float32"), irf.TensorSpec((4, 4), "float32")]
    g = irf.function(rnn).get_graph(*specs)
    g2 = load(irf.onnx.to_model(g))
    assert [n.op for n in g2.nodes] == ["scan"]
    rng = np.random.default_rng(0)
    for T in (3, 50):
        args = [rng.standard_normal(s).astype(np.float32) for s in [(T, 2, 3), (2, 4), (3, 4), (4, 4)]]
        for a, b in zip(np_run(g, args), np_run(g2, args)):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_cond_export_import_round_trip():
    w = irf.Variable(np.float32(3.0), name="w")

    def f(x, z):
        return irf.cond(z > 0, lambda x: x * w, lambda x: irf.exp(x), x)

    g = irf.function(f).get_graph(irf.TensorSpec((3,), "float32"), irf.TensorSpec((), "float32"))
    g2 = load(irf.onnx.to_model(g))
    x = np.float32([0.5, 1.0, -2.0])
    for z in (1.0, -1.0):
        want = x * 3.0 if z > 0 else np.exp(x)
        feeds = dict(x=x, z=np.float32(z), w=np.float32(3.0))
        np.testing.assert_allclose(np_run(g2, [feeds[n] for n in g2.input_names])[0], want, rtol=1e-6)


def _loop_run_time_m_with_scan_outputs():
    # x = x + a * iter each step; scan outputs: 2 * x and the iteration counter
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["a", "fi"], ["step"]),
         helper.make_node("Add", ["x_in", "step"], ["x_out"]),
         helper.make_node("Mul", ["x_out", "two"], ["y"]),
         helper.make_node("Identity", ["i"], ["i_out"]),
         helper.make_node("Identity", ["c_in"], ["c_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("i_out", TensorProto.INT64, [])],
        initializer=[onnx.numpy_helper.from_array(np.float32(2.0), "two")],
    )
    return _model([helper.make_node("Loop", ["M", "c0", "x"], ["xf", "ys", "its"], body=body)],
                  [helper.make_tensor_value_info(n, t, s) for n, t, s in
                   [("M", TensorProto.INT64, []), ("c0", TensorProto.BOOL, []), ("x", TensorProto.FLOAT, [2]),
                    ("a", TensorProto.FLOAT, [2])]],
                  [helper.make_tensor_value_info("xf", TensorProto.FLOAT, [2]),
                   helper.make_tensor_value_info("ys", TensorProto.FLOAT, [None, 2]),
                   helper.make_tensor_value_info("its", TensorProto.INT64, [None])])


def test_loop_run_time_trip_count_with_scan_outputs_is_a_counted_scan():
    import onnxruntime as ort

    m = _loop_run_time_m_with_scan_outputs()
    g = load(m)
    ops = {n.op for n in g.nodes}
    assert "range" not in ops and "scan" in ops
    scan = next(n for n in g.nodes if n.op == "scan")
    assert scan.attrs["dynamic_length"] and not any(n.op == "range" for n in scan.attrs["body"].nodes)
    direct_model = onnx.ModelProto()
    direct_model.CopyFrom(m)
    direct_model.ir_version = 8  # what this onnxruntime reads (onnx.helper writes the newest)
    direct = ort.InferenceSession(direct_model.SerializeToString(), providers=["CPUExecutionProvider"])
    sess = ort_session(g)
    x, a = np.float32([1.0, -2.0]), np.float32([0.5, 3.0])
    for M, c0 in ((0, True), (1, True), (5, True), (5, False), (-3, True)):
        feeds = dict(M=np.asarray(M, np.int64), c0=np.asarray(c0), x=x, a=a)
        want = direct.run(None, feeds)
        # hand-written reference, independent of both runtimes
        n_steps = max(M, 0) if c0 else 0
        xs, ys = x.copy(), []
        for i in range(n_steps):
            xs = xs + a * np.float32(i)
            ys.append(xs * 2)
        np.testing.assert_allclose(want[0], xs)
        assert want[1].shape == (n_steps, 2) and want[2].tolist() == list(range(n_steps))
        args = [feeds[nm] for nm in g.input_names]
        for got in (np_run(g, args), ort_run(sess, g, args)):
            assert [np.asarray(v).shape for v in got] == [w.shape for w in want]
            for v, w in zip(got, want):
                np.testing.assert_allclose(v, w, rtol=1e-6)


def test_loop_run_time_trip_count_with_scan_outputs_gradient():
    # gradient of sum(xf) + sum(ys) w.r.t. x and a, written out by hand:
    # xf = x + a * S(n), ys[t] = 2 * (x + a * S(t + 1)), S(k) = 0 + 1 + ... + (k - 1)
    from irflow.autodiff import vjp

    g = load(_loop_run_time_m_with_scan_outputs())
    gg = vjp(g, wrt=["x", "a"], seed="ones")
    sess = ort_session(gg)
    x, a = np.float32([1.0, -2.0]), np.float32([0.5, 3.0])
    for M in (0, 1, 5):
        def S(k):
            return k * (k - 1) / 2

        want_dx = np.full(2, 1.0 + 2 * M, np.float32)
        want_da = np.full(2, S(M) + 2 * sum(S(t + 1) for t in range(M)), np.float32)
        feeds = dict(M=np.asarray(M, np.int64), c0=np.asarray(True), x=x, a=a)
        args = [feeds[nm] for nm in gg.input_names]
        # onnxruntime's reverse Scan rejects 0-row scanned inputs ("Invalid dim0_offset of 0"),
        # which the backward scan of 0 steps has: M = 0 is checked on the NumPy executor only
        for got in [np_run(gg, args)] + ([ort_run(sess, gg, args)] if M else []):
            np.testing.assert_allclose(got[-2], want_dx, rtol=1e-6)
            np.testing.assert_allclose(got[-1], want_da, rtol=1e-6)


def test_loop_run_time_trip_count_with_scan_outputs_under_vmap():
    # vmap over x (the step count unbatched): hand-written reference per batch row; an
    # unbatched output of run-time length (the counter rows) is broadcast over the batch
    from irflow.ops.special import call

    g = load(_loop_run_time_m_with_scan_outputs())
    a = np.float32([0.5, 3.0])
    xb = np.float32([[1.0, -2.0], [0.0, 4.0], [3.0, 3.0]])
    for M in (0, 1, 4):
        xf, ys, its = irf.vmap(lambda x: call(np.asarray(M, np.int64), np.asarray(True), x, a, graph=g))(irf.tensor(xb))
        s = np.cumsum(np.arange(M, dtype=np.float32))  # s[t] = 0 + 1 + ... + t
        np.testing.assert_allclose(xf.numpy(), xb + a * (s[-1] if M else 0), rtol=1e-6)
        want_ys = 2 * (xb[:, None, :] + a * s[None, :, None])
        assert ys.numpy().shape == (3, M, 2)
        np.testing.assert_allclose(ys.numpy(), want_ys, rtol=1e-6)
        np.testing.assert_array_equal(its.numpy(), np.tile(np.arange(M), (3, 1)))
    with pytest.raises(irf.IrflowError, match="run-time length"):
        irf.vmap(lambda m: call(m, np.asarray(True), xb[0], a, graph=g))(irf.tensor(np.int64([1, 2])))
