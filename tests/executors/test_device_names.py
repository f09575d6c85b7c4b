"""Device strings in TensorFlow and PyTorch spellings."""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf
from irflow.executors.device_names import canonical_device
from irflow.executors.onnx.device import cuda_available


@pytest.mark.parametrize("spelling, expected", [
    ("cpu", "cpu"), ("CPU", "cpu"), ("cpu:0", "cpu"), ("/CPU:0", "cpu"), ("/device:CPU:0", "cpu"),
    ("/job:localhost/replica:0/task:0/device:CPU:0", "cpu"),
    ("cuda", "cuda"), ("cuda:0", "cuda"), ("CUDA", "cuda"), ("gpu", "cuda"), ("GPU", "cuda"), ("/GPU:0", "cuda"),
    ("/device:GPU:0", "cuda"), ("auto", "auto"), ("AUTO", "auto"),
])
def test_spellings_map_to_irflow_devices(spelling, expected):
    assert canonical_device(spelling) == expected


@pytest.mark.parametrize("bad, message", [
    ("tpu", "unknown device 'tpu'"), ("cuda:1", "only device 0"), ("cpu:x", "unknown device"), ("", "unknown device"),
    ("auto:0", "takes no index"), (0, "must be a string"),
])
def test_bad_device_strings_are_executor_errors(bad, message):
    with pytest.raises(irf.ExecutorError, match=message):
        canonical_device(bad)


def test_run_and_function_accept_tf_and_torch_spellings():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", (2,))
    with b:
        b.output(irf.relu(x), names=["y"])
    g = b.build()
    a = np.array([-1.0, 2.0], "float32")
    for executor, device in [("numpy", "CPU"), ("numpy", "cpu:0"), ("ort", "/CPU:0"), ("ort", "/device:CPU:0")]:
        np.testing.assert_array_equal(irf.run(g, {"x": a}, executor=executor, device=device)["y"], [0.0, 2.0])
    f = irf.function(lambda x: x * 2.0, executor="ort", device="CPU:0")
    np.testing.assert_array_equal(f(a).numpy(), [-2.0, 4.0])
    with pytest.raises(irf.ExecutorError, match="CPU only"):
        irf.run(g, {"x": a}, executor="numpy", device="/GPU:0")
    if not cuda_available():
        with pytest.raises(irf.ExecutorError, match="cannot use CUDA"):
            irf.run(g, {"x": a}, executor="ort", device="/GPU:0")


def test_bfloat16_on_ort_cpu_is_an_irflow_error_naming_the_op_and_the_way_out():
    import ml_dtypes

    b = irf.GraphBuilder("bf")
    x = b.input("x", "float32", (2,))
    with b:
        b.output(irf.relu(x.astype("bfloat16")), names=["y"])
    g = b.build()
    relu = next(n.name for n in g.nodes if n.op == "relu")
    feeds = {"x": np.array([-1.0, 2.0], "float32")}
    with pytest.raises(irf.ExecutorError, match=rf"Relu-\d+ .*\(bfloat16\), needed by node {relu} \(op 'relu'\).*executor='numpy'"):
        irf.run(g, feeds, executor="ort", device="cpu")
    # the NumPy executor runs it, as the message says
    out = irf.run(g, feeds, executor="numpy")["y"]
    assert out.dtype == ml_dtypes.bfloat16 and out.astype("float32").tolist() == [0.0, 2.0]
    # bfloat16 and float8 feeds and results: onnxruntime's Python API takes neither, irflow's
    # runner passes their bytes (OrtValues); the values are the NumPy executor's
    b = irf.GraphBuilder("bf_in")
    x = b.input("x", "bfloat16", (3,))
    y = b.input("y", "float8_e5m2", (3,))
    with b:
        b.output(x.astype("float32"), y.astype("float32").astype("float8_e4m3fn"), names=["a", "b"])
    g = b.build()
    feeds = {"x": np.array([1.5, -2.0, 3e38], ml_dtypes.bfloat16), "y": np.array([0.25, -57344, np.nan], ml_dtypes.float8_e5m2)}
    got, want = irf.run(g, feeds, executor="ort", device="cpu"), irf.run(g, feeds, executor="numpy")
    for name in ("a", "b"):
        assert got[name].dtype == want[name].dtype
        assert got[name].tobytes() == want[name].tobytes()  # -448 for -57344 (saturated), NaN kept
    # int4 (packed two to a byte by onnxruntime) is refused, naming the value
    b = irf.GraphBuilder("i4")
    x = b.input("x", "float32", (2,))
    with b:
        b.output(x.astype("int4"), names=["y"])
    with pytest.raises(irf.ExecutorError, match=r"cannot take or return packed 4-bit and 2-bit arrays \('y' \(int4\)\)"):
        irf.run(b.build(), {"x": np.ones(2, np.float32)}, executor="ort", device="cpu")


def test_missing_onnxruntime_kernel_is_explained_with_the_irflow_node():
    from irflow.executors.onnx.runner import _explain_missing_kernel

    b = irf.GraphBuilder("g")
    x = b.input("x", "float16", (2,))
    with b:
        b.output(irf.relu(x), names=["y"])
    g = b.build()
    node = g.nodes[0].name
    text = _explain_missing_kernel(g, f"NOT_IMPLEMENTED : Could not find an implementation for Relu(14) node with name '{node}'")
    assert f"node {node} (op 'relu')" in text and "Relu-14" in text and "float16" in text
    assert _explain_missing_kernel(g, "some other failure") == ""
