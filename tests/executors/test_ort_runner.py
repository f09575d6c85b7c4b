"""The ort executor: sessions, options, devices (the quiet CUDA probe), feeds, caching."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import irflow as irf
from irflow.executors import get_runner
from irflow.executors.onnx import OrtOptions, OrtRunner, cuda_available, device as device_mod

from .conftest import mlp_graph, mlp_reference

REPO = Path(__file__).resolve().parents[2]
ON_GPU = cuda_available()


def test_ort_matches_hand_written_numpy(mlp):
    x = np.random.default_rng(0).standard_normal((4, 6)).astype("float32")
    got = irf.run(mlp, {"x": x}, executor="ort", device="cpu")["y"]
    np.testing.assert_allclose(got, mlp_reference(mlp, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, irf.run(mlp, {"x": x}, executor="numpy")["y"], rtol=1e-5, atol=1e-5)


def test_runner_is_cached_per_graph_device_and_options(mlp):
    r1 = get_runner(mlp, "ort", "cpu")
    assert get_runner(mlp, "ort", "cpu") is r1
    r2 = get_runner(mlp, "ort", "cpu", intra_op_num_threads=1)
    assert r2 is not r1 and get_runner(mlp, "ort", "cpu", OrtOptions(intra_op_num_threads=1)) is r2
    other = mlp_graph()  # an equal graph, another object: its own session
    assert get_runner(other, "ort", "cpu") is not r1


def test_thread_options_reach_the_session(mlp):
    r = OrtRunner(mlp, device="cpu", options=OrtOptions(intra_op_num_threads=1, inter_op_num_threads=1, allow_spinning=False))
    so = r.session.get_session_options()
    assert so.intra_op_num_threads == 1 and so.inter_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert r.session.get_session_options().graph_optimization_level.name == "ORT_ENABLE_ALL"
    x = np.ones((2, 6), "float32")
    np.testing.assert_allclose(r.run({"x": x})["y"], mlp_reference(mlp, x), rtol=1e-5, atol=1e-5)


def test_bad_options_are_clear_errors(mlp):
    with pytest.raises(irf.ExecutorError, match="unknown onnxruntime option.*intra_threads"):
        irf.run(mlp, {"x": np.ones((1, 6), "float32")}, executor="ort", intra_threads=2)
    with pytest.raises(irf.ExecutorError, match="intra_op_num_threads must be an int >= 0"):
        OrtOptions(intra_op_num_threads=-1)
    with pytest.raises(irf.ExecutorError, match="graph_optimization_level"):
        OrtOptions(graph_optimization_level="max")
    with pytest.raises(irf.ExecutorError, match="executor='numpy'"):
        irf.run(mlp, {"x": np.ones((1, 6), "float32")}, executor="numpy", intra_op_num_threads=2)


def test_unknown_executor_and_device(mlp):
    with pytest.raises(irf.ExecutorError, match="unknown executor 'tvm'"):
        irf.run(mlp, {}, executor="tvm")
    with pytest.raises(irf.ExecutorError, match="unknown device 'tpu'"):
        irf.run(mlp, {"x": np.ones((1, 6), "float32")}, executor="ort", device="tpu")
    with pytest.raises(irf.ExecutorError, match="numpy executor runs on the CPU only"):
        irf.run(mlp, {"x": np.ones((1, 6), "float32")}, executor="numpy", device="cuda")


def test_feeds_are_checked_with_clear_errors(mlp):
    r = OrtRunner(mlp, device="cpu")
    with pytest.raises(irf.DTypeError, match="'x' must be float32, got float64"):
        r.run({"x": np.ones((2, 6))})
    with pytest.raises(irf.ShapeError, match="'x' must have shape"):
        r.run({"x": np.ones((2, 5), "float32")})
    with pytest.raises(irf.ExecutorError, match="missing input"):
        r.run({})
    with pytest.raises(irf.ExecutorError, match="no output.*nope"):
        r.run({"x": np.ones((2, 6), "float32")}, outputs=["nope"])


def test_outputs_subset_and_unchecked_fast_path(mlp):
    r = OrtRunner(mlp, device="cpu")
    x = np.ones((3, 6), "float32")
    assert list(r.run({"x": x}, outputs=["y"])) == ["y"]
    np.testing.assert_array_equal(r.run({"x": x}, check=False)["y"], r.run({"x": x})["y"])


def test_results_do_not_alias_between_calls(mlp):
    r = OrtRunner(mlp, device="cpu")
    a = r.run({"x": np.ones((2, 6), "float32")})["y"]
    keep = a.copy()
    r.run({"x": np.zeros((2, 6), "float32")})
    np.testing.assert_array_equal(a, keep)


def test_onnxruntime_failure_is_an_executor_error_naming_the_graph():
    b = irf.GraphBuilder("bcast")
    x = b.input("x", "float32", ("n",))
    y = b.input("y", "float32", ("m",))
    with b:
        z = x + y  # two symbols: unknown until run time
    b.output(z)
    g = b.build(verify=True)
    with pytest.raises(irf.ExecutorError, match="onnxruntime failed on graph 'bcast'"):
        irf.run(g, {"x": np.ones(3, "float32"), "y": np.ones(4, "float32")}, executor="ort", device="cpu")


# -- devices -------------------------------------------------------------------------------------
@pytest.mark.skipif(ON_GPU, reason="this machine has a usable GPU: 'auto' rightly picks CUDA")
def test_auto_runs_on_cpu_and_prints_nothing_about_cuda(capfd, mlp, monkeypatch):
    monkeypatch.setattr(device_mod, "_probe_result", None)  # probe again, inside capfd
    capfd.readouterr()
    x = np.ones((2, 6), "float32")
    r = get_runner(mlp_graph(), "ort", "auto")
    y = r.run({"x": x})["y"]
    out, err = capfd.readouterr()
    assert r.device == "cpu" and r.session.get_providers() == ["CPUExecutionProvider"]
    np.testing.assert_allclose(y, mlp_reference(mlp, x), rtol=1e-5, atol=1e-5)
    assert out == "" and err == "", f"device='auto' printed: {out!r} {err!r}"


@pytest.mark.skipif(ON_GPU, reason="this machine has a usable GPU")
def test_auto_is_quiet_in_a_fresh_process_at_the_c_level():
    """A new interpreter: the first onnxruntime use in the process, all file descriptors captured."""
    code = textwrap.dedent(
        """
        import numpy as np, irflow as irf
        b = irf.GraphBuilder("g"); x = b.input("x", "float32", (2,))
        with b: y = irf.relu(x)
        b.output(y)
        r = irf.executors.get_runner(b.build(), "ort", "auto")
        out = r.run({"x": np.array([-1, 2], "float32")})
        assert r.device == "cpu", r.device
        assert out["relu_0"].tolist() == [0.0, 2.0]
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == "", f"stdout={proc.stdout!r} stderr={proc.stderr!r}"


@pytest.mark.skipif(ON_GPU, reason="this machine has a usable GPU")
def test_cuda_when_unavailable_raises_a_clear_executor_error(mlp, capfd):
    with pytest.raises(irf.ExecutorError) as info:
        irf.run(mlp, {"x": np.ones((2, 6), "float32")}, executor="ort", device="cuda")
    msg = str(info.value)
    assert "device='cuda'" in msg and "cannot use CUDA" in msg and "device='auto'" in msg
    ok, reason = irf.executors.onnx.cuda_status()
    assert not ok and reason in msg
    assert isinstance(info.value, irf.IrflowError)
    out, err = capfd.readouterr()
    assert "cuda" not in (out + err).lower()


def test_the_probe_runs_once_per_process(monkeypatch):
    calls = []
    monkeypatch.setattr(device_mod, "_probe_result", None)
    monkeypatch.setattr(device_mod, "_probe_cuda", lambda: calls.append(1) or (False, "test: no CUDA"))
    for _ in range(3):
        assert device_mod.resolve_device("auto") == "cpu"
    assert calls == [1]
    with pytest.raises(irf.ExecutorError, match="test: no CUDA"):
        device_mod.resolve_device("cuda")


def test_auto_takes_cuda_when_the_probe_says_yes(monkeypatch):
    monkeypatch.setattr(device_mod, "_probe_result", (True, "CUDA is usable"))
    assert device_mod.resolve_device("auto") == "cuda"
    assert device_mod.resolve_device("cuda") == "cuda"
    assert device_mod.resolve_device("cpu") == "cpu"


def test_silenced_output_catches_c_level_writes(capfd):
    import os

    with device_mod.silenced_output():
        os.write(2, b"from C: libcublasLt.so missing\n")
        os.write(1, b"stdout noise\n")
        print("python noise")
    print("after")
    out, err = capfd.readouterr()
    assert out == "after\n" and err == ""


def test_fast_feeds_check_falls_back_to_the_full_check():
    """The per-call fast path accepts only exact arrays; everything else gets check_feeds' answer."""
    b = irf.GraphBuilder("two")
    x = b.input("x", "float32", ("n", 2))
    y = b.input("y", "float32", ("n", 2))
    with b:
        z = x + y
    b.output(z, names=["z"])
    r = OrtRunner(b.build(verify=True), device="cpu")
    ones = np.ones((3, 2), "float32")
    assert r._feeds_ok({"x": ones, "y": ones})
    assert not r._feeds_ok({"x": ones, "y": np.ones((4, 2), "float32")})
    with pytest.raises(irf.ShapeError, match="dim 'n' is 3 in input 'x' but 4 in input 'y'"):
        r.run({"x": ones, "y": np.ones((4, 2), "float32")})
    out = r.run({"x": [[1.0, 2.0]], "y": np.ones((1, 2), "float32")})  # a list is converted
    np.testing.assert_array_equal(out["z"], [[2.0, 3.0]])
    with pytest.raises(irf.ExecutorError, match="unknown input"):
        r.run({"x": ones, "y": ones, "w": ones})


@pytest.mark.skipif(ON_GPU, reason="this machine has a usable GPU")
def test_auto_and_cpu_share_one_session_here():
    g = mlp_graph()
    assert get_runner(g, "ort", "auto") is get_runner(g, "ort", "cpu")
    assert get_runner(g, "ort", "auto").device == "cpu"
