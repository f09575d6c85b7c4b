"""Type checks at ONNX import: declared graph output and value_info types against irflow's,
each node's dtypes against its ONNX schema's type constraints; onnxruntime refuses the same
models; ``strict=False`` loads them anyway."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import irflow as irf
from irflow.frontends.onnx_import import load

F, D, I64, U8 = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.UINT8


def _model(nodes, inputs, outputs, value_info=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, value_info=list(value_info))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 10
    onnx.checker.check_model(m)
    return m


def _ort_refuses(m):
    with pytest.raises(Exception):
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


def test_declared_output_dtype_must_match():
    m = _model([helper.make_node("Size", ["x"], ["y"], name="size_node")],
               [helper.make_tensor_value_info("x", F, [2, 3])], [helper.make_tensor_value_info("y", F, [])])
    _ort_refuses(m)
    with pytest.raises(irf.DTypeError, match=r"graph output 'y' \(output of node 'size_node', Size\): declared float32, but the model computes int64"):
        load(m)
    g = load(m, strict=False)
    out = irf.run(g, {"x": np.zeros((2, 3), np.float32)})["y"]
    assert out.dtype == np.int64 and out == 6


def test_declared_output_shape_must_match():
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")],
               [helper.make_tensor_value_info("x", F, [2, 3])], [helper.make_tensor_value_info("y", F, [2, 4])])
    with pytest.raises(irf.ShapeError, match=r"graph output 'y'.*declared shape \(2, 4\).*\(2, 3\)"):
        load(m)
    m2 = _model([helper.make_node("Relu", ["x"], ["y"])],
                [helper.make_tensor_value_info("x", F, [2, 3])], [helper.make_tensor_value_info("y", F, [2])])
    with pytest.raises(irf.ShapeError, match="declared rank 1"):
        load(m2)
    # symbols and unknown dims agree with anything
    ok = _model([helper.make_node("Relu", ["x"], ["y"])],
                [helper.make_tensor_value_info("x", F, ["n", 3])], [helper.make_tensor_value_info("y", F, ["batch", None])])
    assert load(ok).outputs[0].type.shape == ("n", 3)
    assert load(m, strict=False).outputs[0].type.shape == (2, 3)


def test_value_info_is_checked():
    m = _model([helper.make_node("Relu", ["x"], ["h"], name="first"), helper.make_node("Neg", ["h"], ["y"])],
               [helper.make_tensor_value_info("x", F, [3])], [helper.make_tensor_value_info("y", F, [3])],
               value_info=[helper.make_tensor_value_info("h", D, [3])])
    with pytest.raises(irf.DTypeError, match=r"value_info 'h' \(output of node 'first', Relu\): declared float64"):
        load(m)
    assert load(m, strict=False).output_names == ("y",)


def test_a_dtype_the_schema_forbids():
    # Neg's T does not include uint8
    m = _model([helper.make_node("Neg", ["x"], ["y"], name="neg_node")],
               [helper.make_tensor_value_info("x", U8, [3])], [helper.make_tensor_value_info("y", U8, [3])])
    _ort_refuses(m)
    with pytest.raises(irf.DTypeError, match=r"node 'neg_node' \(Neg, opset 17\): input 'x' \(X\) is uint8, which the "
                                               r"ONNX schema does not allow for T \(allowed: .*int8.*\)"):
        load(m)
    g = load(m, strict=False)
    x = np.array([1, 2, 3], np.uint8)
    np.testing.assert_array_equal(irf.run(g, {"x": x})["y"], -x)  # wraps around, as NumPy


def test_one_type_parameter_bound_to_two_dtypes():
    m = _model([helper.make_node("Add", ["a", "b"], ["y"], name="add_node")],
               [helper.make_tensor_value_info("a", F, [2]), helper.make_tensor_value_info("b", D, [2])],
               [helper.make_tensor_value_info("y", D, [2])])
    _ort_refuses(m)
    with pytest.raises(irf.DTypeError, match=r"node 'add_node' \(Add, opset 17\): type parameter T is float for input 'a' "
                                               r"\(A\) but float64 for input 'b' \(B\)"):
        load(m)
    g = load(m, strict=False)  # irflow's own rule: float32 with float64 promotes
    out = irf.run(g, {"a": np.ones(2, np.float32), "b": np.ones(2, np.float64)})["y"]
    assert out.dtype == np.float64


def test_a_concrete_input_type_is_checked():
    # Reshape's shape must be int64
    m = _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
               [helper.make_tensor_value_info("x", F, [6]), helper.make_tensor_value_info("s", TensorProto.INT32, [2])],
               [helper.make_tensor_value_info("y", F, [2, 3])])
    with pytest.raises(irf.DTypeError, match=r"node 'rs'.*input 's' \(shape\) is int32; the ONNX schema requires int64"):
        load(m)


def test_public_load_takes_strict():
    m = _model([helper.make_node("Size", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", F, [2])], [helper.make_tensor_value_info("y", F, [])])
    with pytest.raises(irf.DTypeError):
        irf.onnx.load(m)
    assert irf.onnx.load(m, strict=False).outputs[0].type.dtype.value == "int64"


def test_cli_no_strict(tmp_path):
    from typer.testing import CliRunner

    from irflow.cli.app import app

    m = _model([helper.make_node("Size", ["x"], ["y"], name="size_node")],
               [helper.make_tensor_value_info("x", F, [2, 3])], [helper.make_tensor_value_info("y", F, [])])
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    runner = CliRunner()
    for cmd in (["inspect", str(path)], ["run", str(path), "-i", "x=random"], ["convert", str(path), str(tmp_path / "m.irflow.json")]):
        strict = runner.invoke(app, cmd)
        assert strict.exit_code == 2 and "declared float32" in strict.output, (cmd, strict.output)
        loose = runner.invoke(app, cmd + ["--no-strict"])
        assert loose.exit_code == 0, (cmd, loose.output)
    assert irf.ir.load(tmp_path / "m.irflow.json").outputs[0].type.dtype.value == "int64"
