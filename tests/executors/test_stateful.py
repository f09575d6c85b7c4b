"""StatefulOrtRunner: state kept in ORT buffers between calls (IO binding), checked on CPU.

The train step graph is built by hand (GraphBuilder + autodiff.vjp): forward of a 2-layer
MLP, squared-error loss, gradients, SGD update. The reference is the same SGD loop written
in NumPy by hand, in float64.
"""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import vjp
from irflow.autodiff.vjp import replay
from irflow.executors.onnx import StatefulOrtRunner, check_export

LR = 0.05
PARAMS = ("w0", "b0", "w1", "b1")


def sgd_step_graph(sizes=(5, 7, 3)) -> irf.Graph:
    """Inputs x, y and the parameters; outputs loss and the updated parameters ``<p>_new``."""
    fb = irf.GraphBuilder("mlp_loss")
    x = fb.input("x", "float32", ("batch", sizes[0]))
    t = fb.input("y", "float32", ("batch", sizes[2]))
    w0 = fb.input("w0", "float32", (sizes[0], sizes[1]))
    b0 = fb.input("b0", "float32", (sizes[1],))
    w1 = fb.input("w1", "float32", (sizes[1], sizes[2]))
    b1 = fb.input("b1", "float32", (sizes[2],))
    with fb:
        h = irf.relu(x @ w0 + b0)
        d = h @ w1 + b1 - t
        loss = irf.reduce_sum(d * d) * 0.5
    fb.output(loss, names=["loss"])
    grad = vjp(fb.build(verify=True), wrt=list(PARAMS), seed="ones")
    b = irf.GraphBuilder("sgd_step")
    env = {v.name: b.input(v.name, v.type.dtype, v.type.shape) for v in grad.inputs}
    for name, arr in grad.initializers.items():
        env[name] = b.constant(arr, name=name)
    with b:
        replay(grad, b, env)
        news = [env[p] - LR * env[f"grad_{p}"] for p in PARAMS]
    b.output(env["loss"], *news, names=["loss"] + [f"{p}_new" for p in PARAMS])
    return b.build(verify=True)


def numpy_sgd(params, x, y, steps):
    """The same training by hand, in float64: returns the losses and the final parameters."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    losses = []
    for _ in range(steps):
        z = x @ p["w0"] + p["b0"]
        h = np.maximum(z, 0)
        d = h @ p["w1"] + p["b1"] - y
        losses.append(0.5 * np.sum(d * d))
        gw1, gb1 = h.T @ d, d.sum(0)
        gh = d @ p["w1"].T * (z > 0)
        gw0, gb0 = x.T @ gh, gh.sum(0)
        for k, g in zip(("w0", "b0", "w1", "b1"), (gw0, gb0, gw1, gb1)):
            p[k] = p[k] - LR * g
    return losses, p


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    params = {
        "w0": (rng.standard_normal((5, 7)) * 0.4).astype("float32"),
        "b0": (rng.standard_normal(7) * 0.1).astype("float32"),
        "w1": (rng.standard_normal((7, 3)) * 0.4).astype("float32"),
        "b1": np.zeros(3, "float32"),
    }
    x = rng.standard_normal((8, 5)).astype("float32")
    y = rng.standard_normal((8, 3)).astype("float32")
    return params, x, y


def test_step_graph_exports_cleanly():
    check_export(sgd_step_graph())


def test_state_stays_in_the_runner_and_matches_numpy_sgd(problem):
    params, x, y = problem
    g = sgd_step_graph()
    r = StatefulOrtRunner(g, {p: f"{p}_new" for p in PARAMS}, device="cpu")
    assert r.fetch == ["loss"]
    r.load_state(params)
    losses = [float(r.run({"x": x, "y": y})["loss"]) for _ in range(6)]
    want_losses, want = numpy_sgd(params, x, y, 6)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4)
    assert losses[-1] < losses[0]  # it trains
    state = r.state_numpy()
    for k in PARAMS:
        assert state[k].dtype == np.float32
        np.testing.assert_allclose(state[k], want[k], rtol=1e-4, atol=1e-5)


def test_stateful_runner_matches_the_numpy_executor_step_by_step(problem):
    params, x, y = problem
    g = sgd_step_graph()
    r = StatefulOrtRunner(g, {p: f"{p}_new" for p in PARAMS}, device="cpu")
    r.load_state(params)
    host = dict(params)
    for step in range(5):
        out = irf.run(g, {"x": x, "y": y, **host})
        host = {p: out[f"{p}_new"] for p in PARAMS}
        got = r.run({"x": x, "y": y})
        np.testing.assert_allclose(got["loss"], out["loss"], rtol=1e-5, err_msg=f"step {step}")
    for p in PARAMS:
        np.testing.assert_allclose(r.state_numpy()[p], host[p], rtol=1e-5, atol=1e-6)


def test_fetched_outputs_are_not_overwritten_by_the_next_step(problem):
    params, x, y = problem
    r = StatefulOrtRunner(sgd_step_graph(), {p: f"{p}_new" for p in PARAMS}, device="cpu")
    r.load_state(params)
    first = r.run({"x": x, "y": y})["loss"]
    kept = first.copy()
    r.run({"x": x, "y": y})
    np.testing.assert_array_equal(first, kept)


def test_load_state_mid_training_restarts_from_the_new_values(problem):
    params, x, y = problem
    r = StatefulOrtRunner(sgd_step_graph(), {p: f"{p}_new" for p in PARAMS}, device="cpu")
    r.load_state(params)
    a = float(r.run({"x": x, "y": y})["loss"])
    r.run({"x": x, "y": y})  # an odd number of steps later: the other ping-pong phase
    r.run({"x": x, "y": y})
    r.load_state(params)
    assert float(r.run({"x": x, "y": y})["loss"]) == pytest.approx(a, rel=1e-6)


def test_read_only_state(mlp):
    """A graph with weights as inputs and no updates: state kept, only x goes in."""
    b = irf.GraphBuilder("lin")
    x = b.input("x", "float32", ("n", 3))
    w = b.input("w", "float32", (3, 2))
    with b:
        y = x @ w
    b.output(y, names=["y"])
    r = StatefulOrtRunner(b.build(verify=True), {"w": None}, device="cpu")
    wv = np.arange(6, dtype="float32").reshape(3, 2)
    r.load_state({"w": wv})
    xv = np.ones((4, 3), "float32")
    for _ in range(3):
        np.testing.assert_allclose(r.run({"x": xv})["y"], xv @ wv)


def test_stateful_errors_are_clear(problem):
    params, x, y = problem
    g = sgd_step_graph()
    with pytest.raises(irf.ExecutorError, match="'nope' is not a graph input"):
        StatefulOrtRunner(g, {"nope": None}, device="cpu")
    with pytest.raises(irf.ExecutorError, match="update 'zzz'"):
        StatefulOrtRunner(g, {"w0": "zzz"}, device="cpu")
    with pytest.raises(irf.ShapeError, match="'w0' is float32\\[5, 7\\] but its update 'b0_new'"):
        StatefulOrtRunner(g, {"w0": "b0_new"}, device="cpu")
    with pytest.raises(irf.ShapeError, match="static shape"):
        StatefulOrtRunner(g, {"x": None}, device="cpu")
    with pytest.raises(irf.ExecutorError, match="state_numpy"):
        StatefulOrtRunner(g, {"w0": "w0_new"}, fetch=["w0_new"], device="cpu")
    r = StatefulOrtRunner(g, {p: f"{p}_new" for p in PARAMS}, device="cpu")
    with pytest.raises(irf.ExecutorError, match="load_state\\(\\) first"):
        r.run({"x": x, "y": y})
    with pytest.raises(irf.DTypeError, match="'w0' must be float32"):
        r.load_state({"w0": params["w0"].astype("float64")})
    r.load_state(params)
    with pytest.raises(irf.ShapeError, match="'x'"):
        r.run({"x": x[:, :4], "y": y})
    with pytest.raises(irf.ExecutorError, match="missing input"):
        r.run({"x": x})


def test_device_readback_path_on_cpu(problem):
    """The CUDA way of reading state back (copy_outputs_to_cpu of the last binding, host copies
    for values loaded since), forced on CPU where it can run, against the NumPy executor."""
    params, x, y = problem
    g = sgd_step_graph()
    r = StatefulOrtRunner(g, {p: f"{p}_new" for p in PARAMS}, device="cpu")
    r._host_readable = False
    r.load_state(params)
    for p in PARAMS:  # before any run: what was loaded
        np.testing.assert_array_equal(r.state_numpy()[p], params[p])
    host = dict(params)
    for _ in range(3):
        r.run({"x": x, "y": y})
        out = irf.run(g, {"x": x, "y": y, **host})
        host = {p: out[f"{p}_new"] for p in PARAMS}
        got = r.state_numpy()
        for p in PARAMS:
            np.testing.assert_allclose(got[p], host[p], rtol=1e-5, atol=1e-6)
    r.load_state({"w0": params["w0"]})  # loaded after a run: the host copy wins until the next run
    np.testing.assert_array_equal(r.state_numpy()["w0"], params["w0"])
    np.testing.assert_allclose(r.state_numpy()["b0"], host["b0"], rtol=1e-5, atol=1e-6)
