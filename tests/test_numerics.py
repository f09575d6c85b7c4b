"""Numerics checks (irf.debugging) and integer division by zero, the same on every executor.

References are NumPy written here; the NaN/Inf positions are planted by hand.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

import irflow as irf
from irflow.cli.app import app
from irflow.debugging import NumericsError

EXECUTORS = ["numpy", "ort"]


@pytest.fixture
def checks_on():
    irf.debugging.enable_check_numerics()
    try:
        yield
    finally:
        irf.debugging.disable_check_numerics()


def _log_graph(with_check: bool) -> irf.Graph:
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", (3,))
    with b:
        y = irf.log(x)
        if with_check:
            y = irf.debugging.check_numerics(y, "log of x")
        z = y * 2.0
    b.output(z, names=["z"])
    return b.build(verify=True)


# -- check_numerics, the op ---------------------------------------------------------------------

def test_check_numerics_eager_passes_finite_values_through_unchanged():
    x = np.array([1.5, -0.0, 3.0], np.float32)
    got = irf.debugging.check_numerics(irf.tensor(x), "fine").numpy()
    assert got.tobytes() == x.tobytes()  # -0.0 kept bit for bit


@pytest.mark.parametrize("value, kind", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
def test_check_numerics_eager_raises_with_the_message(value, kind):
    with pytest.raises(NumericsError, match=f"check_numerics: my tensor: the tensor had {kind} values"):
        irf.debugging.check_numerics(irf.tensor(np.array([1.0, value], np.float32)), "my tensor")


def test_check_numerics_rejects_ints_and_non_str_messages():
    with pytest.raises(irf.DTypeError, match="float"):
        irf.debugging.check_numerics(irf.tensor(np.array([1, 2])), "ints")
    with pytest.raises(irf.IrflowError, match="message must be a str"):
        irf.debugging.check_numerics(irf.tensor(np.ones(2, np.float32)), 3)


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_check_numerics_in_a_graph_is_the_same_on_every_executor(executor, dtype):
    b = irf.GraphBuilder("g")
    x = b.input("x", dtype, (3,))
    with b:
        z = irf.debugging.check_numerics(irf.log(x), "log of x") * 2.0
    b.output(z, names=["z"])
    g = b.build(verify=True)
    good = np.array([1, 2, 3], dtype)
    np.testing.assert_allclose(irf.run(g, {"x": good}, executor=executor)["z"], 2 * np.log(good), rtol=1e-3)
    for bad, kind in (([1, -1, 3], "NaN"), ([1, 0, 3], "Inf"), ([-1, 0, 3], "NaN")):
        with pytest.raises(NumericsError) as info:
            irf.run(g, {"x": np.array(bad, dtype)}, executor=executor)
        assert str(info.value) == f"check_numerics: log of x: the tensor had {kind} values"


def test_check_numerics_survives_export_and_stock_onnxruntime_refuses_nan(tmp_path):
    import onnxruntime as ort

    g = _log_graph(with_check=True)
    irf.onnx.save(g, tmp_path / "m.onnx")
    onnx.checker.check_model(str(tmp_path / "m.onnx"), full_check=True)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (z,) = session.run(None, {"x": np.array([1, 2, 4], np.float32)})
    np.testing.assert_allclose(z, 2 * np.log([1, 2, 4]), rtol=1e-6)
    ro = ort.RunOptions()
    ro.log_severity_level = 4
    with pytest.raises(Exception, match="assert_no_nan"):
        session.run(None, {"x": np.array([1, -2, 4], np.float32)}, ro)


def test_check_numerics_gradient_is_checked_too():
    x = irf.Variable(np.array([1.0, 2.0], np.float32))
    with irf.GradientTape() as tape:
        y = irf.reduce_sum(irf.debugging.check_numerics(x * x, "square"))
    (gx,) = tape.gradient(y, [x])
    np.testing.assert_allclose(gx.numpy(), [2.0, 4.0])  # the identity's gradient: d sum(x^2) = 2x
    with irf.GradientTape() as tape:
        y = irf.reduce_sum(irf.sqrt(irf.debugging.check_numerics(x - 1.0, "shifted")))  # sqrt'(0) = inf
    with pytest.raises(NumericsError, match="NaN or Inf in the gradient of: shifted"):
        tape.gradient(y, [x])


# -- enable_check_numerics: the first node ------------------------------------------------------

def test_enable_check_numerics_names_the_first_node_on_the_interpreter(checks_on):
    b = irf.GraphBuilder("chain")
    x = b.input("x", "float32", (3,))
    with b:
        a = irf.exp(x)          # finite
        s = irf.sqrt(a - 2.0)   # NaN where exp(x) < 2: the first bad node
        y = irf.log(s)          # NaN too, but later
    b.output(y, names=["y"])
    g = b.build(verify=True)
    sqrt_node = next(n for n in g.nodes if n.op == "sqrt")
    with pytest.raises(NumericsError) as info:
        irf.run(g, {"x": np.array([0.0, 1.0, 2.0], np.float32)})
    msg = str(info.value)
    assert f"node {sqrt_node.name} (sqrt) produced NaN in output %{sqrt_node.outputs[0].name} float32[3] (1 NaN of 3 values)" in msg
    assert "were finite" in msg
    irf.debugging.disable_check_numerics()
    out = irf.run(g, {"x": np.array([0.0, 1.0, 2.0], np.float32)})["y"]  # unchecked: NaN comes out
    assert np.isnan(out[0]) and np.isfinite(out[1:]).all()


def test_enable_check_numerics_reports_a_nan_feed_as_the_input(checks_on):
    g = _log_graph(with_check=False)
    with pytest.raises(NumericsError, match=r"graph input %x float32\[3\] holds 1 NaN of 3 values"):
        irf.run(g, {"x": np.array([1.0, np.nan, 2.0], np.float32)})


def test_enable_check_numerics_checks_eager_ops_and_nested_bodies(checks_on):
    with pytest.raises(NumericsError, match="eager op log produced NaN"):
        irf.log(irf.tensor(np.array([-1.0], np.float32)))

    @irf.function
    def f(x):
        return irf.cond(irf.reduce_sum(x) > 0, lambda: irf.sqrt(x - 10.0), lambda: x)

    with pytest.raises(NumericsError, match=r"\(sqrt\) produced"):
        f(np.array([1.0, 2.0], np.float32))


def test_check_numerics_off_by_default():
    assert not irf.debugging.is_check_numerics_enabled()
    with np.errstate(all="ignore"):
        assert np.isnan(irf.log(irf.tensor(np.array([-1.0], np.float32))).numpy()[0])


# -- integer division and modulo by zero ---------------------------------------------------------

def _int_graph(dtype: str) -> irf.Graph:
    # div and mod read different divisors: when two independent nodes both divide by zero,
    # onnxruntime may run (and report) either first (docs/reliability.md says so).
    b = irf.GraphBuilder("ints")
    x = b.input("x", dtype, (4,))
    y = b.input("y", dtype, (4,))
    with b:
        q = irf.div(x, y)
        r = irf.mod(x, b.constant(np.array([2, 3, 4, 5], dtype), name="divisor"))
    b.output(q, names=["q"])
    b.output(r, names=["r"])
    return b.build(verify=True)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
@pytest.mark.parametrize("executor", EXECUTORS)
def test_integer_division_by_zero_is_the_same_error_everywhere(dtype, executor):
    g = _int_graph(dtype)
    signed = dtype != "uint8"
    xs = [7, -7, 9, 0] if signed else [7, 200, 9, 0]
    x = np.array(xs, dtype)
    y = np.array([2, 3, 4, 5], dtype)
    out = irf.run(g, {"x": x, "y": y}, executor=executor)
    trunc = [int(a / b) for a, b in zip(xs, [2, 3, 4, 5])]  # toward zero, by hand
    floor_mod = [a % b for a, b in zip(xs, [2, 3, 4, 5])]    # Python's %: the divisor's sign
    np.testing.assert_array_equal(out["q"], np.array(trunc, dtype))
    np.testing.assert_array_equal(out["r"], np.array(floor_mod, dtype))
    div_node = next(n for n in g.nodes if n.op == "div")
    with pytest.raises(irf.ExecutorError) as info:
        irf.run(g, {"x": x, "y": np.array([2, 0, 4, 5], dtype)}, executor=executor)
    assert str(info.value) == f"node {div_node.name} (div): integer division by zero"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_integer_modulo_by_zero_is_the_same_error_everywhere(executor):
    b = irf.GraphBuilder("m")
    x = b.input("x", "int64", (2,))
    y = b.input("y", "int64", (2,))
    with b:
        r = irf.mod(x, y)
    b.output(r, names=["r"])
    g = b.build(verify=True)
    with pytest.raises(irf.ExecutorError) as info:
        irf.run(g, {"x": np.array([1, 2]), "y": np.array([0, 1])}, executor=executor)
    assert str(info.value) == f"node {g.nodes[0].name} (mod): integer modulo by zero"


def test_integer_division_by_zero_eagerly():
    with pytest.raises(irf.ExecutorError, match="integer division by zero"):
        irf.div(irf.tensor(np.array([1, 2])), irf.tensor(np.array([1, 0])))
    with pytest.raises(irf.ExecutorError, match="integer modulo by zero"):
        irf.tensor(np.array([1, 2])) % irf.tensor(np.array([0, 1]))
    # floats divide by zero as IEEE says, on every path
    with np.errstate(all="ignore"):
        assert np.isinf(irf.div(irf.tensor(np.array([1.0])), irf.tensor(np.array([0.0]))).numpy()[0])


# -- the CLI ------------------------------------------------------------------------------------

@pytest.fixture
def nan_model(tmp_path):
    b = irf.GraphBuilder("m")
    x = b.input("x", "float32", (1, 3))
    with b:
        y = irf.log(x) * 2.0
    b.output(y, names=["y"])
    g = b.build(verify=True)
    g.save(tmp_path / "m.irflow.json")
    np.save(tmp_path / "neg.npy", np.array([[1.0, -1.0, 0.0]], np.float32))
    np.save(tmp_path / "pos.npy", np.array([[1.0, 2.0, 3.0]], np.float32))
    return g, tmp_path


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def test_cli_check_numerics_names_the_first_node(nan_model):
    g, d = nan_model
    log_node = next(n for n in g.nodes if n.op == "log")
    code, out = _cli("run", d / "m.irflow.json", "-i", f"x={d / 'neg.npy'}", "--check-numerics")
    assert code == 1, out
    assert f"error: check_numerics: node {log_node.name} (log) produced NaN and Inf in output" in out
    assert "(1 NaN and 1 Inf of 3 values)" in out
    assert "RuntimeWarning" not in out
    code, out = _cli("run", d / "m.irflow.json", "-i", f"x={d / 'pos.npy'}", "--check-numerics", "--executor", "ort")
    assert code == 0 and "every node's outputs are finite" in out, out


def test_cli_run_notes_nan_outputs_and_compare_does_not_say_ok(nan_model):
    _, d = nan_model
    code, out = _cli("run", d / "m.irflow.json", "-i", f"x={d / 'neg.npy'}")
    assert code == 0 and "note: output 'y' holds 1 NaN and 1 Inf" in out, out
    code, out = _cli("run", d / "m.irflow.json", "-i", f"x={d / 'neg.npy'}", "--compare")
    assert code == 0, out
    table = out[out.index("numpy vs ort"):]
    assert "NaN/Inf: 1 NaN and 1 Inf" in table and "│ ok" not in table, out


def test_compare_counts_nan_positions_that_differ():
    from irflow.cli.common import compare_arrays

    a = np.array([np.nan, 1.0, np.nan, 2.0, np.inf], np.float32)
    b = np.array([np.nan, np.nan, 3.0, 2.0, np.inf], np.float32)
    d = compare_arrays(a, b, 1e-4, 1e-5)
    assert not d.ok and d.nan_mismatch == 2 and d.max_abs == float("inf")
    same = compare_arrays(a, a.copy(), 1e-4, 1e-5)
    assert same.ok and same.nan_mismatch == 0
