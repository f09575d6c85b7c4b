"""irf.onnx: to_model, save, export (inference and training), run, load; and a traced
training step exported as one ONNX graph, run on onnxruntime, matching the NumPy executor."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import irflow as irf
from irflow.executors.onnx import StatefulOrtRunner, check_export

LR = 0.1


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w0": (rng.standard_normal((6, 8)) * 0.4).astype("float32"),
        "b0": (rng.standard_normal(8) * 0.1).astype("float32"),
        "w1": (rng.standard_normal((8, 3)) * 0.4).astype("float32"),
        "b1": np.zeros(3, "float32"),
    }


class TinyMLP:
    """A stand-in for an nn.Module (issue 7): Variables as attributes, forward in __call__."""

    def __init__(self, params):
        self.vars = {k: irf.Variable(v.copy(), name=k) for k, v in params.items()}

    def __call__(self, x):
        v = self.vars
        return irf.relu(x @ v["w0"] + v["b0"]) @ v["w1"] + v["b1"]


def make_train_step(model: TinyMLP, executor: str = "numpy"):
    @irf.function(executor=executor)
    def train_step(x, y):
        with irf.GradientTape() as tape:
            d = model(x) - y
            loss = irf.reduce_sum(d * d) * 0.5
        names = list(model.vars)
        grads = tape.gradient(loss, [model.vars[k] for k in names])
        for k, g in zip(names, grads):
            model.vars[k].assign_sub(LR * g)
        return loss

    return train_step


def numpy_train(params, batches, steps):
    """Hand-written float64 NumPy SGD on the same loss: losses and final parameters."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    losses = []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        z = x @ p["w0"] + p["b0"]
        h = np.maximum(z, 0)
        d = h @ p["w1"] + p["b1"] - y
        losses.append(0.5 * np.sum(d * d))
        gw1, gb1 = h.T @ d, d.sum(0)
        gh = d @ p["w1"].T * (z > 0)
        grads = {"w0": x.T @ gh, "b0": gh.sum(0), "w1": gw1, "b1": gb1}
        p = {k: p[k] - LR * grads[k] for k in p}
    return losses, p


def batches(n=5, batch=4, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, 6)).astype("float32"), rng.standard_normal((batch, 3)).astype("float32")) for _ in range(n)]


SPECS = (irf.TensorSpec(("batch", 6), "float32"), irf.TensorSpec(("batch", 3), "float32"))


def test_traced_training_step_exports_as_one_onnx_graph_and_matches_numpy_for_5_steps(tmp_path):
    params, data = make_params(), batches()
    # the NumPy executor: irf.function called eagerly, writing its Variables back
    ref_model = TinyMLP(params)
    ref_step = make_train_step(ref_model)
    ref_losses = [float(ref_step(x, y).numpy()) for x, y in data]
    # the export: one ONNX model with forward, backward and update
    ort_model = TinyMLP(params)
    path = tmp_path / "train_step.onnx"
    model = irf.onnx.export(make_train_step(ort_model), path, *SPECS, training=True)
    onnx.checker.check_model(str(path), full_check=True)
    wiring = json.loads({p.key: p.value for p in model.metadata_props}["irflow.variables"])
    assert sorted(w["variable"] for w in wiring) == sorted(params)
    assert len(model.functions) == 0 and not any(a.type == onnx.AttributeProto.GRAPH for n in model.graph.node for a in n.attribute)
    ops = {n.op_type for n in model.graph.node}
    assert {"MatMul", "Relu", "Sub"} <= ops  # forward and update in the same graph
    in_names = [i.name for i in model.graph.input]
    out_names = [o.name for o in model.graph.output]
    assert len(in_names) == 2 + 4 and len(out_names) == 1 + 4
    # run it on onnxruntime directly, feeding each step's new weights to the next
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state = {w["input"]: params[w["variable"]] for w in wiring}
    ort_losses = []
    for x, y in data:
        outs = dict(zip(out_names, sess.run(out_names, {in_names[0]: x, in_names[1]: y, **state})))
        ort_losses.append(float(outs[out_names[0]]))
        state = {w["input"]: outs[w["output"]] for w in wiring}
    np.testing.assert_allclose(ort_losses, ref_losses, rtol=1e-5)
    for w in wiring:
        np.testing.assert_allclose(state[w["input"]], ref_model.vars[w["variable"]].numpy(), rtol=1e-5, atol=1e-6)
    # and both match hand-written NumPy
    want_losses, want = numpy_train(params, data, 5)
    np.testing.assert_allclose(ort_losses, want_losses, rtol=1e-4)
    for k in params:
        np.testing.assert_allclose(ref_model.vars[k].numpy(), want[k], rtol=1e-4, atol=1e-5)
    assert ort_losses[-1] < ort_losses[0]


def test_training_export_runs_with_state_kept_in_the_stateful_runner():
    params, data = make_params(), batches()
    step = make_train_step(TinyMLP(params))
    graph, wiring = irf.onnx.graph_of(step, *SPECS, training=True)
    check_export(graph)
    r = StatefulOrtRunner(graph, {w["input"]: w["output"] for w in wiring}, device="cpu")
    r.load_state({w["input"]: params[w["variable"]] for w in wiring})
    arg_names = [n for n in graph.input_names if n not in r.state]
    losses = [float(r.run(dict(zip(arg_names, xy)))[r.fetch[0]]) for xy in data]
    want_losses, want = numpy_train(params, data, 5)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4)
    final = r.state_numpy()
    for w in wiring:
        np.testing.assert_allclose(final[w["input"]], want[w["variable"]], rtol=1e-4, atol=1e-5)


def test_inference_export_bakes_variables_into_initializers(tmp_path):
    params = make_params()
    model = TinyMLP(params)
    path = tmp_path / "mlp.onnx"
    exported = irf.onnx.export(model, path, irf.TensorSpec(("batch", 6), "float32"))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in exported.graph.initializer}
    assert [i.name for i in exported.graph.input] == ["x"]
    assert len(exported.graph.output) == 1
    for k, v in params.items():
        np.testing.assert_array_equal(inits[k], v)
    # later training does not change what was exported
    model.vars["w0"].assign(np.zeros((6, 8), "float32"))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 37):
        x = np.random.default_rng(batch).standard_normal((batch, 6)).astype("float32")
        (y,) = sess.run(None, {"x": x})
        want = np.maximum(x @ params["w0"] + params["b0"], 0) @ params["w1"] + params["b1"]
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_inference_export_of_a_train_step_drops_the_updates():
    params = make_params()
    graph, wiring = irf.onnx.graph_of(make_train_step(TinyMLP(params)), *SPECS, training=False)
    assert wiring == [] and graph.input_names == ("x", "y") and len(graph.outputs) == 1
    assert set(params) <= set(graph.initializers)
    used = {i for n in graph.nodes for i in n.inputs} | set(graph.output_names)
    assert all(any(v.name in used for v in n.outputs) for n in graph.nodes)  # no dead nodes left


def test_export_of_a_plain_function_and_of_a_graph(tmp_path):
    def f(x):
        return irf.exp(-x * x) * 2.0

    irf.onnx.export(f, tmp_path / "f.onnx", irf.TensorSpec((None, 3), "float32"))
    x = np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3)
    got = irf.onnx.run(tmp_path / "f.onnx", {"x": x}, device="cpu")
    np.testing.assert_allclose(list(got.values())[0], np.exp(-x * x) * 2, rtol=1e-6)
    g = irf.function(f).get_graph(irf.TensorSpec((None, 3), "float32"))
    irf.onnx.export(g, tmp_path / "g.onnx")
    np.testing.assert_allclose(list(irf.onnx.run(str(tmp_path / "g.onnx"), {"x": x}).values())[0], np.exp(-x * x) * 2, rtol=1e-6)
    with pytest.raises(irf.IrflowError, match="a Graph already has its input types"):
        irf.onnx.export(g, tmp_path / "h.onnx", irf.TensorSpec((None, 3), "float32"))
    with pytest.raises(irf.IrflowError, match="takes a Graph, an irf.function or a callable"):
        irf.onnx.export(42, tmp_path / "i.onnx")


def test_function_export_onnx_method_writes_what_irf_onnx_export_writes(tmp_path):
    f = irf.function(lambda x: irf.relu(x) + 1.0)
    spec = irf.TensorSpec(("n",), "float32")
    f.export_onnx(str(tmp_path / "m.onnx"), spec)
    out = irf.onnx.run(onnx.load(str(tmp_path / "m.onnx")), {"x": np.array([-1, 2], "float32")})
    np.testing.assert_array_equal(list(out.values())[0], [1, 3])
    irf.onnx.export(f, tmp_path / "e.onnx", spec)  # the method is frontends/onnx_export.py, as this is
    assert (tmp_path / "m.onnx").read_bytes() == (tmp_path / "e.onnx").read_bytes()


def test_run_accepts_graph_model_and_path(tmp_path):
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", (2,))
    with b:
        y = irf.relu(x)
    b.output(y, names=["y"])
    g = b.build(verify=True)
    irf.onnx.save(g, tmp_path / "g.onnx")
    xv = np.array([-1, 3], "float32")
    for model in (g, irf.onnx.to_model(g), tmp_path / "g.onnx", str(tmp_path / "g.onnx")):
        np.testing.assert_array_equal(irf.onnx.run(model, {"x": xv}, device="cpu")["y"], [0, 3])
    with pytest.raises(irf.IrflowError, match="no such file"):
        irf.onnx.run(tmp_path / "missing.onnx", {"x": xv})
    with pytest.raises(irf.ExecutorError, match="onnxruntime failed"):
        irf.onnx.run(tmp_path / "g.onnx", {"x": np.ones(3, "float64")})
    with pytest.raises(irf.IrflowError, match="takes an irflow Graph"):
        irf.onnx.to_model("g.onnx")


def test_load_round_trip_when_the_importer_is_there(tmp_path):
    pytest.importorskip("irflow.frontends.onnx_import", reason="the ONNX importer (another issue) is not in this checkout")
    from .conftest import mlp_graph

    g = mlp_graph()
    irf.onnx.save(g, tmp_path / "mlp.onnx")
    back = irf.onnx.load(tmp_path / "mlp.onnx")
    x = np.random.default_rng(0).standard_normal((5, 6)).astype("float32")
    want = irf.run(g, {"x": x})["y"]
    got = list(irf.run(back, {"x": x}).values())[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_onnx_name_in_irflow_does_not_shadow_the_onnx_package():
    import sys

    import irflow.executors.onnx.export as export_mod

    assert irf.onnx.__name__ == "irflow.onnx"
    assert sys.modules["onnx"] is onnx and export_mod.onnx is onnx
    assert hasattr(onnx, "ModelProto") and not hasattr(irf.onnx, "ModelProto")


def test_irf_function_with_executor_ort_trains_like_numpy(monkeypatch):
    """irf.function(..., executor="ort") runs the traced step through the cached ORT runner."""
    from irflow.executors.onnx.runner import OrtRunner

    calls = []
    real_run = OrtRunner.run
    monkeypatch.setattr(OrtRunner, "run", lambda self, *a, **k: calls.append(1) or real_run(self, *a, **k))
    params, data = make_params(), batches()
    ref = TinyMLP(params)
    ref_step = make_train_step(ref)
    model = TinyMLP(params)
    step = make_train_step(model, executor="ort")
    for x, y in data:
        a = float(ref_step(x, y).numpy())
        b = float(step(x, y).numpy())
        assert b == pytest.approx(a, rel=1e-5)
    for k in params:
        np.testing.assert_allclose(model.vars[k].numpy(), ref.vars[k].numpy(), rtol=1e-5, atol=1e-6)
    assert len(calls) == len(data)  # every step ran on onnxruntime, none on NumPy


def test_export_of_an_nn_module_when_nn_is_there(tmp_path):
    nn = pytest.importorskip("irflow.nn", reason="irf.nn (issue 7) is not in this checkout yet")
    if not all(hasattr(nn, n) for n in ("Sequential", "Linear", "ReLU")):
        pytest.skip("irf.nn has no Sequential/Linear/ReLU yet (issue 7 in progress)")
    model = nn.Sequential([nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)])
    x = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    want = np.asarray(model(x))
    exported = irf.onnx.export(model, tmp_path / "seq.onnx", irf.TensorSpec(("batch", 4), "float32"))
    assert len(exported.graph.input) == 1 and len(exported.graph.initializer) >= 4  # weights baked in
    got = irf.onnx.run(tmp_path / "seq.onnx", {exported.graph.input[0].name: x}, device="cpu")
    np.testing.assert_allclose(list(got.values())[0], want, rtol=1e-5, atol=1e-6)


def test_stateful_runner_for_a_traced_function_keeps_variables_in_ort_buffers():
    """The traced step's Variables live in the runner between steps; pushed back at the end,
    they equal what the NumPy executor's irf.function wrote into its own Variables."""
    params, data = make_params(), batches()
    ref = TinyMLP(params)
    ref_step = make_train_step(ref)
    ref_losses = [float(ref_step(x, y).numpy()) for x, y in data]
    model = TinyMLP(params)
    cf = make_train_step(model).get_concrete_function(*SPECS)
    r = StatefulOrtRunner.for_concrete_function(cf, device="cpu")
    losses = [float(r.run(dict(zip(cf.arg_inputs, xy)))[cf.result_outputs[0]]) for xy in data]
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    for k in params:  # the Variables themselves were not touched by the steps...
        np.testing.assert_array_equal(model.vars[k].numpy(), params[k])
    r.push_variables()  # ...until the state is pushed back
    for k in params:
        np.testing.assert_allclose(model.vars[k].numpy(), ref.vars[k].numpy(), rtol=1e-5, atol=1e-6)
