"""Names a user chose survive tracing and export: argument names, dict keys, Variable paths."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

import irflow as irf
from irflow import nn


def _names(values) -> list[str]:
    return [v.name for v in values]


def test_dict_keys_name_the_outputs_in_ir_and_onnx():
    @irf.function
    def f(x, y):
        return {"total": irf.reduce_sum(x * y), "prod": x * y}

    spec = irf.TensorSpec((3,), "float32")
    g = f.get_graph(spec, spec)
    assert _names(g.inputs) == ["x", "y"]
    assert _names(g.outputs) == ["total", "prod"]
    assert "identity" not in [n.op for n in g.nodes]  # renamed where defined, no extra node
    model = irf.onnx.to_model(g)
    assert [o.name for o in model.graph.output] == ["total", "prod"]
    assert [i.name for i in model.graph.input] == ["x", "y"]
    a, b = np.arange(3, dtype="float32"), np.full(3, 2.0, "float32")
    out = irf.run(g, {"x": a, "y": b}, executor="ort")
    np.testing.assert_allclose(out["total"], np.sum(a * b))
    np.testing.assert_allclose(out["prod"], a * b)
    # the Python call still rebuilds the user's structure
    res = f(a, b)
    assert set(res) == {"total", "prod"}
    np.testing.assert_allclose(res["prod"].numpy(), a * b)


def test_namedtuple_nested_and_positional_outputs():
    Pair = namedtuple("Pair", ["lo", "hi"])

    @irf.function
    def f(x):
        return Pair(irf.reduce_min(x), irf.reduce_max(x)), [x + 1.0, x * 2.0]

    g = f.get_graph(irf.TensorSpec((4,), "float32"))
    assert _names(g.outputs) == ["output_0/lo", "output_0/hi", "output_1_0", "output_1_1"]
    x = np.array([3.0, -1.0, 2.0, 5.0], "float32")
    out = irf.run(g, {"x": x})
    np.testing.assert_allclose(out["output_0/hi"], 5.0)
    np.testing.assert_allclose(out["output_1_1"], x * 2.0)


def test_returning_an_input_twice_gets_identity_nodes_with_the_wanted_names():
    @irf.function
    def f(x):
        y = irf.relu(x)
        return {"same": x, "a": y, "b": y}

    g = f.get_graph(irf.TensorSpec((2,), "float32"))
    g.verify()
    assert _names(g.outputs) == ["same", "a", "b"]
    x = np.array([-1.0, 2.0], "float32")
    out = irf.run(g, {"x": x}, executor="ort")
    np.testing.assert_array_equal(out["same"], x)
    np.testing.assert_array_equal(out["a"], np.maximum(x, 0))
    np.testing.assert_array_equal(out["b"], np.maximum(x, 0))


def test_a_key_that_clashes_with_an_input_name_gets_a_suffix():
    @irf.function
    def f(x):
        return {"x": x * 2.0}

    g = f.get_graph(irf.TensorSpec((2,), "float32"))
    assert _names(g.inputs) == ["x"] and _names(g.outputs) == ["x_1"]
    assert f(np.ones(2, "float32"))["x"].numpy().tolist() == [2.0, 2.0]


def test_module_export_names_its_input_after_forward_and_weights_by_module_path():
    nn.init.seed(0)
    model = nn.MLP([4, 3, 2])
    graph, _ = irf.onnx.graph_of(model, irf.TensorSpec(("batch", 4), "float32"))
    onnx_model = irf.onnx.to_model(graph)
    assert [i.name for i in onnx_model.graph.input] == ["x"]
    assert [o.name for o in onnx_model.graph.output] == ["output_0"]
    inits = {t.name for t in onnx_model.graph.initializer}
    assert {v.name for v in model.variables} <= inits


def test_stateful_runner_loop_of_the_docs_fetches_the_loss_by_name():
    from irflow.executors.onnx import StatefulOrtRunner

    nn.init.seed(1)
    model = nn.MLP([5, 4, 3])
    opt = irf.optim.SGD(0.1)

    @irf.function
    def train_step(x, y):
        with irf.GradientTape() as tape:
            loss = nn.losses.softmax_cross_entropy(model(x), y)
        vs = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
        return {"loss": loss}

    specs = irf.TensorSpec(("batch", 5), "float32"), irf.TensorSpec(("batch",), "int64")
    graph, wiring = irf.onnx.graph_of(train_step, *specs, training=True)
    start = {v.name: v.numpy().copy() for v in model.variables + opt.variables}
    r = StatefulOrtRunner(graph, {w["input"]: w["output"] for w in wiring}, device="cpu")
    r.load_state({w["input"]: start[w["variable"]] for w in wiring})
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((6, 5)).astype("float32"), rng.integers(0, 3, 6)) for _ in range(3)]
    ort_losses = [float(r.run({"x": xb, "y": yb})["loss"]) for xb, yb in batches]

    # The reference: the same steps by hand in NumPy from the same starting weights.
    w0, b0, w1, b1 = (start[v.name] for v in model.trainable_variables)
    assert w0.shape == (5, 4) and b1.shape == (3,)
    ref = []
    for xb, yb in batches:
        h = np.maximum(xb @ w0 + b0, 0)
        z = h @ w1 + b1
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        ref.append(float(-np.mean(np.log(p[np.arange(len(yb)), yb]))))
        dz = p.copy()
        dz[np.arange(len(yb)), yb] -= 1
        dz /= len(yb)
        dh = (dz @ w1.T) * (h > 0)
        w1, b1 = w1 - 0.1 * h.T @ dz, b1 - 0.1 * dz.sum(0)
        w0, b0 = w0 - 0.1 * xb.T @ dh, b0 - 0.1 * dh.sum(0)
    np.testing.assert_allclose(ort_losses, ref, rtol=1e-5)


def test_bound_graph_runs_with_only_the_users_inputs_and_keeps_variable_names():
    w = irf.Variable(np.array([[1.0, -2.0], [0.5, 3.0]], "float32"), name="dense/kernel")

    @irf.function
    def f(x):
        w.assign_add(irf.ones_like(w))  # an update: dropped from the bound graph
        return {"y": irf.relu(x @ w)}

    spec = irf.TensorSpec((None, 2), "float32")
    free = f.get_graph(spec)
    assert _names(free.inputs) == ["x", "dense/kernel"]
    assert _names(free.outputs) == ["y", "dense/kernel_new"]
    bound = f.get_graph(spec, bind_variables=True)
    assert _names(bound.inputs) == ["x"] and _names(bound.outputs) == ["y"]
    w_now = w.numpy().copy()
    np.testing.assert_array_equal(bound.initializers["dense/kernel"], w_now)
    x = np.array([[1.0, 2.0], [-1.0, 1.0]], "float32")
    expected = np.maximum(x @ (w_now + 1.0), 0)  # the read after the assignment sees the new value
    for executor in ("numpy", "ort"):
        np.testing.assert_allclose(irf.run(bound, {"x": x}, executor=executor)["y"], expected, rtol=1e-6)
    model = irf.onnx.to_model(bound)
    assert "dense/kernel" in {t.name for t in model.graph.initializer}


def test_reprs_of_functions_and_concrete_functions_are_readable():
    @irf.function
    def scale(x, factor):
        return {"out": x * factor}

    assert repr(scale).startswith("<irf.function scale(x, factor), executor='numpy', traced 0x")
    cf = scale.get_concrete_function(irf.TensorSpec((3,), "float32"), irf.TensorSpec((), "float32"))
    r = repr(cf)
    assert "scale(x: " in r and "-> (out)" in r and "1 nodes" in r
    assert "graph scale" in str(cf) and "mul(%x, %factor)" in str(cf)


def test_cli_grad_takes_the_variable_name_of_an_exported_module(tmp_path):
    from typer.testing import CliRunner

    from irflow.cli.app import app

    model = nn.MLP([4, 3, 2])
    w_name = model.trainable_variables[0].name

    @irf.function
    def total(x):
        return {"loss": irf.reduce_sum(model(x))}

    irf.onnx.export(total, tmp_path / "m.onnx", irf.TensorSpec(("batch", 4), "float32"))
    result = CliRunner().invoke(app, ["grad", str(tmp_path / "m.onnx"), "--loss", "loss", "--wrt", w_name,
                                      "-o", str(tmp_path / "g.onnx")])
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    out = irf.onnx.run(str(tmp_path / "g.onnx"), {"x": x})
    w0, b0, w1, _ = (v.numpy() for v in model.trainable_variables)
    # d sum(relu(x w0 + b0) w1) / d w0 = x^T ((1 w1^T) * mask), by hand
    mask = (x @ w0 + b0) > 0
    expected = x.T @ (np.ones((5, 2), "float32") @ w1.T * mask)
    np.testing.assert_allclose(out[f"grad_{w_name}"], expected, rtol=1e-5, atol=1e-6)
