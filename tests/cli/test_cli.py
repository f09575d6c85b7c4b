"""The `irflow` command through typer's CliRunner (and once through a real subprocess).

Expected values come from NumPy written here (the MLP forward by hand) or from onnxruntime.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

import irflow as irf
from irflow.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
MLP_JSON = ROOT / "irflow" / "models" / "mlp.irflow.json"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def mlp_by_hand(graph: irf.Graph, x: np.ndarray) -> np.ndarray:
    w = graph.initializers
    h = np.maximum(x @ w["fc0.weight"] + w["fc0.bias"], 0)
    h = np.maximum(h @ w["fc1.weight"] + w["fc1.bias"], 0)
    return h @ w["fc2.weight"] + w["fc2.bias"]


@pytest.fixture
def small_graph(tmp_path):
    """y = relu(x @ w + b) with named weights, saved as .irflow.json."""
    rng = np.random.default_rng(1)
    b = irf.GraphBuilder("small")
    x = b.input("x", "float32", ("batch", 3))
    with b:
        w = b.constant(rng.standard_normal((3, 2)).astype(np.float32), name="w")
        bias = b.constant(rng.standard_normal(2).astype(np.float32), name="b")
        y = irf.relu(irf.matmul(x, w) + bias)
    b.output(y, names=["y"])
    g = b.build(verify=True)
    path = tmp_path / "small.irflow.json"
    g.save(path)
    return g, path


def test_version_and_help():
    r = invoke("--version")
    assert r.exit_code == 0 and r.output.strip() == f"irflow {irf.__version__}"
    r = invoke("--help")
    assert r.exit_code == 0
    for cmd in ("run", "convert", "inspect", "grad", "viz"):
        assert cmd in r.output
    assert "Examples" in r.output


def test_run_bundled_model_with_npy_input_matches_numpy_by_hand(tmp_path):
    g = irf.ir.load(MLP_JSON)
    x = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    r = invoke("run", MLP_JSON, "-i", f"x={tmp_path / 'x.npy'}", "-o", out)
    assert r.exit_code == 0, r.output
    assert "logits" in r.output and "(5, 4)" in r.output and "float32" in r.output
    got = np.load(out)["logits"]
    np.testing.assert_allclose(got, mlp_by_hand(g, x), rtol=1e-5, atol=1e-6)


def test_run_random_input_with_dim_and_ort_executor(tmp_path):
    out = tmp_path / "o.npz"
    r = invoke("run", MLP_JSON, "-i", "x=random", "--dim", "batch=7", "--executor", "ort", "--device", "auto", "-o", out)
    assert r.exit_code == 0, r.output
    assert np.load(out)["logits"].shape == (7, 4)


def test_run_npz_archive_input(tmp_path, small_graph):
    g, path = small_graph
    x = np.ones((2, 3), np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    r = invoke("run", path, "-i", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    assert r.exit_code == 0, r.output
    w, b = g.initializers["w"], g.initializers["b"]
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["y"], np.maximum(x @ w + b, 0), rtol=1e-6)


def test_compare_prints_differences_and_passes():
    r = invoke("run", MLP_JSON, "-i", "x=random", "--dim", "batch=4", "--compare")
    assert r.exit_code == 0, r.output
    assert "max abs diff" in r.output and "ok" in r.output


def test_bisect_names_the_node_of_a_planted_wrong_kernel(monkeypatch):
    from irflow.executors.numpy.kernels import KERNELS

    monkeypatch.setitem(KERNELS, "relu", lambda x: np.maximum(x, 0) + np.float32(0.5))  # planted bug
    g = irf.ir.load(MLP_JSON)
    first_relu = next(n for n in g.nodes if n.op == "relu")
    r = invoke("run", MLP_JSON, "-i", "x=random", "--dim", "batch=3", "--compare", "--bisect")
    assert r.exit_code == 1, r.output  # executors disagree: exit status 1
    assert "DIFFERS" in r.output
    assert f"first differing node: {first_relu.name} (op relu)" in r.output
    assert "max abs diff 0.5" in r.output


def test_bisect_finds_nothing_when_executors_agree():
    r = invoke("run", MLP_JSON, "-i", "x=random", "--compare", "--bisect")
    assert r.exit_code == 0, r.output
    assert "every node's outputs agree" in r.output


def test_convert_json_to_onnx_and_back(tmp_path, small_graph):
    g, path = small_graph
    onnx_path = tmp_path / "small.onnx"
    r = invoke("convert", path, onnx_path)
    assert r.exit_code == 0, r.output
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    import onnxruntime as ort

    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    (y,) = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(["y"], {"x": x})
    np.testing.assert_allclose(y, np.maximum(x @ g.initializers["w"] + g.initializers["b"], 0), rtol=1e-5, atol=1e-6)
    back = tmp_path / "back.irflow.json"
    r = invoke("convert", onnx_path, back)
    assert r.exit_code == 0, r.output
    g2 = irf.ir.load(back)
    np.testing.assert_allclose(irf.run(g2, {"x": x})["y"], y, rtol=1e-6, atol=1e-6)


def test_inspect_shows_io_ops_params():
    r = invoke("inspect", MLP_JSON)
    assert r.exit_code == 0, r.output
    assert "[batch, 16]" in r.output and "matmul" in r.output
    assert "1,732" in r.output  # 16*32+32 + 32*32+32 + 32*4+4 parameters
    r = invoke("inspect", ROOT / "irflow" / "models" / "mlp.onnx")
    assert r.exit_code == 0, r.output
    assert "MatMul" in r.output and "ai.onnx" in r.output and "[batch, 16]" in r.output


def test_viz_writes_dot(tmp_path):
    out = tmp_path / "g.dot"
    r = invoke("viz", MLP_JSON, "-o", out)
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert text.startswith('digraph "mlp"') and text.count("shape=box") == len(irf.ir.load(MLP_JSON).nodes)


def test_viz_svg_without_graphviz_is_a_clear_error(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    r = invoke("viz", MLP_JSON, "-o", tmp_path / "g.svg")
    assert r.exit_code == 2 and "graphviz" in r.output and "Traceback" not in r.output


def test_grad_model_runs_on_onnxruntime_and_matches_hand_backprop(tmp_path, small_graph):
    """loss = sum(relu(x @ w + b)^2) would need pow; use loss = sum(y) via reduce_sum."""
    rng = np.random.default_rng(3)
    b = irf.GraphBuilder("lossy")
    x = b.input("x", "float32", ("batch", 3))
    with b:
        w = b.constant(rng.standard_normal((3, 2)).astype(np.float32), name="w")
        y = irf.relu(irf.matmul(x, w))
        loss = irf.reduce_sum(y * y)
    b.output(loss, names=["loss"])
    path = tmp_path / "lossy.irflow.json"
    g = b.build(verify=True)
    g.save(path)
    out = tmp_path / "grad.onnx"
    r = invoke("grad", path, "--loss", "loss", "--wrt", "x", "--wrt", "w", "-o", out)
    assert r.exit_code == 0, r.output
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    import onnxruntime as ort

    xv = rng.standard_normal((4, 3)).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    loss_v, gx, gw = sess.run(["loss", "grad_x", "grad_w"], {"x": xv})
    wv = g.initializers["w"]
    z = xv @ wv
    dy = 2 * np.maximum(z, 0) * (z > 0)  # d loss / d z
    np.testing.assert_allclose(loss_v, np.sum(np.maximum(z, 0) ** 2), rtol=1e-5)
    np.testing.assert_allclose(gx, dy @ wv.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gw, xv.T @ dy, rtol=1e-5, atol=1e-6)


# -- bad input: one line, exit status 2, no traceback --------------------------------------------

def _assert_user_error(r, *needles):
    assert r.exit_code == 2, (r.exit_code, r.output)
    assert "Traceback" not in r.output
    err_lines = [l for l in r.output.splitlines() if l.startswith("error:")]
    assert len(err_lines) == 1, r.output
    for needle in needles:
        assert needle in err_lines[0], (needle, r.output)


def test_errors_missing_file(tmp_path):
    for cmd in (["run"], ["inspect"], ["convert"], ["viz"], ["grad"]):
        extra = {"run": [], "inspect": [], "convert": [tmp_path / "o.irflow.json"], "viz": ["-o", tmp_path / "o.dot"],
                 "grad": ["--loss", "y", "--wrt", "x", "-o", tmp_path / "g.onnx"]}[cmd[0]]
        r = invoke(*cmd, tmp_path / "nope.onnx", *extra)
        _assert_user_error(r, "no such file", "nope.onnx")


def test_errors_not_an_onnx_file_and_truncated_protobuf(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \xff\xfe")
    _assert_user_error(invoke("inspect", junk), "junk.onnx")
    good = (ROOT / "irflow" / "models" / "mlp.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good[: len(good) // 2])
    _assert_user_error(invoke("run", cut, "-i", "x=random"), "cut.onnx")


def test_errors_model_failing_the_checker(tmp_path):
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    bad = helper.make_model(helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]),
                            opset_imports=[helper.make_opsetid("", 17)])
    bad.graph.node[0].input[0] = "undefined_value"
    p = tmp_path / "bad.onnx"
    onnx.save(bad, str(p))
    _assert_user_error(invoke("inspect", p), "undefined_value")


def test_errors_unknown_format_and_bad_options(tmp_path, small_graph):
    _, path = small_graph
    _assert_user_error(invoke("inspect", tmp_path / "m.txt"), "unknown model format")
    _assert_user_error(invoke("run", path, "-i", "nope=random"), "no input 'nope'", "x (float32")
    _assert_user_error(invoke("run", path), "missing input", "'x'")
    _assert_user_error(invoke("run", path, "-i", "x=random", "--dim", "batch=lots"), "--dim")
    _assert_user_error(invoke("run", path, "-i", f"x={tmp_path / 'missing.npy'}"), "not found")
    r = invoke("run", path, "-i", "x=random", "--executor", "tpu")
    assert r.exit_code == 2 and "Traceback" not in r.output  # typer's own choice check
    _assert_user_error(invoke("run", path, "-i", "x=random", "--bisect"), "--compare")


def test_errors_wrong_shape_and_dtype(tmp_path, small_graph):
    _, path = small_graph
    np.save(tmp_path / "x64.npy", np.ones((2, 3), np.float64))
    _assert_user_error(invoke("run", path, "-i", f"x={tmp_path / 'x64.npy'}"), "float32", "float64")
    np.save(tmp_path / "x5.npy", np.ones((2, 5), np.float32))
    _assert_user_error(invoke("run", path, "-i", f"x={tmp_path / 'x5.npy'}"), "shape")


def test_errors_grad_bad_names(tmp_path, small_graph):
    _, path = small_graph
    _assert_user_error(invoke("grad", path, "--loss", "nope", "--wrt", "x", "-o", tmp_path / "g.onnx"), "--loss 'nope'")
    _assert_user_error(invoke("grad", path, "--loss", "y", "--wrt", "zz", "-o", tmp_path / "g.onnx"), "--wrt 'zz'")


def test_debug_shows_the_traceback(tmp_path):
    r = runner.invoke(app, ["--debug", "inspect", str(tmp_path / "nope.onnx")])
    assert r.exit_code != 0 and r.exception is not None and not isinstance(r.exception, SystemExit)


def test_installed_entry_point_in_a_subprocess(tmp_path):
    """`python -m irflow` (what the console script calls) runs the README's main-job command."""
    r = subprocess.run([sys.executable, "-m", "irflow", "run", str(MLP_JSON), "-i", "x=random"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "logits" in r.stdout and "(1, 4)" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "irflow", "inspect", str(tmp_path / "nope.onnx")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def _loss_graph_f64(tmp_path):
    """loss = sum(tanh(x @ w)^2) in float64, w an initializer."""
    rng = np.random.default_rng(5)
    b = irf.GraphBuilder("loss64")
    x = b.input("x", "float64", (4, 3))
    with b:
        w = b.constant(rng.standard_normal((3, 2)), name="w")
        h = irf.tanh(irf.matmul(x, w))
        loss = irf.reduce_sum(h * h)
    b.output(loss, names=["loss"])
    g = b.build(verify=True)
    path = tmp_path / "loss64.irflow.json"
    g.save(path)
    return g, path, rng


def _fd_grad(g, x, w, eps=1e-6):
    """Central finite differences of the loss w.r.t. w, one entry at a time (float64)."""
    out = np.zeros_like(w)
    for i in np.ndindex(*w.shape):
        d = np.zeros_like(w)
        d[i] = eps
        up = irf.run(g.model_copy(update={"initializers": {"w": w + d}}), {"x": x})["loss"]
        dn = irf.run(g.model_copy(update={"initializers": {"w": w - d}}), {"x": x})["loss"]
        out[i] = (up - dn) / (2 * eps)
    return out


def test_grad_mode_jvp_and_hvp_against_finite_differences(tmp_path):
    g, path, rng = _loss_graph_f64(tmp_path)
    x = rng.standard_normal((4, 3))
    w = g.initializers["w"]
    t = rng.standard_normal(w.shape)
    eps = 1e-6
    r = invoke("grad", path, "--loss", "loss", "--wrt", "w", "--mode", "jvp", "-o", tmp_path / "jvp.irflow.json")
    assert r.exit_code == 0, r.output
    gj = irf.ir.load(tmp_path / "jvp.irflow.json")
    out = irf.run(gj, {"x": x, "tangent_w": t})
    up = irf.run(g.model_copy(update={"initializers": {"w": w + eps * t}}), {"x": x})["loss"]
    dn = irf.run(g.model_copy(update={"initializers": {"w": w - eps * t}}), {"x": x})["loss"]
    np.testing.assert_allclose(out["jvp_loss"], (up - dn) / (2 * eps), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(out["loss"], irf.run(g, {"x": x})["loss"], rtol=1e-12)

    r = invoke("grad", path, "--loss", "loss", "--wrt", "w", "--mode", "hvp", "-o", tmp_path / "hvp.onnx")
    assert r.exit_code == 0, r.output
    import onnxruntime as ort

    (hv,) = ort.InferenceSession(str(tmp_path / "hvp.onnx"), providers=["CPUExecutionProvider"]).run(
        ["hvp_w"], {"x": x, "vector_w": t})
    fd = (_fd_grad(g, x, w + 1e-4 * t, 1e-6) - _fd_grad(g, x, w - 1e-4 * t, 1e-6)) / 2e-4  # H.t by differences of gradients
    np.testing.assert_allclose(hv, fd, rtol=1e-4, atol=1e-6)


def test_errors_unsupported_ops_listed_in_one_line(tmp_path):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("SequenceEmpty", [], ["nz"], name="nz_node"), helper.make_node("SplitToSequence", ["x"], ["u"], name="u_node")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("nz", TensorProto.INT64, [1, None]),
                               helper.make_tensor_value_info("u", TensorProto.FLOAT, [None])])
    p = tmp_path / "unsupported.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(p))
    _assert_user_error(invoke("run", p, "-i", "x=random"), "SequenceEmpty", "nz_node", "SplitToSequence", "u_node", "opset 17")


def test_convert_onnx_with_scalar_constants_round_trips(tmp_path):
    """0-d constants (a Gather index, a scale) survive .onnx -> .irflow.json -> run."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gather", ["x", "i"], ["row"], axis=0), helper.make_node("Mul", ["row", "s"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
                              initializer=[numpy_helper.from_array(np.array(2, np.int64), "i"),
                                           numpy_helper.from_array(np.array(0.5, np.float32), "s")])
    src = tmp_path / "scalars.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    dst = tmp_path / "scalars.irflow.json"
    assert invoke("convert", src, dst).exit_code == 0
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "x.npy", x)
    r = invoke("run", dst, "-i", f"x={tmp_path / 'x.npy'}", "-o", tmp_path / "o.npz")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["y"], x[2] * 0.5)
