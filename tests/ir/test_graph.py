"""The IR: JSON round trips bit-exactly, the verifier rejects broken graphs naming the node."""
import math

import ml_dtypes
import numpy as np
import pytest

import irflow as irf
from irflow.ir import DType, Graph, Node, TensorType, Value, load

F32 = TensorType(dtype="float32", shape=(2, 3))


def _graph(nodes, inputs=(Value(name="x", type=F32),), outputs=None, initializers=None):
    outputs = outputs if outputs is not None else (nodes[-1].outputs[0],)
    return Graph(name="g", inputs=tuple(inputs), outputs=tuple(outputs), nodes=tuple(nodes), initializers=initializers or {})


def _relu(inp, out, name=None, t=F32):
    return Node(op="relu", inputs=(inp,), outputs=(Value(name=out, type=t),), name=name or f"n_{out}")


# -- JSON round trip ------------------------------------------------------------------------

def _special_values(dtype: DType) -> np.ndarray:
    np_dtype = dtype.numpy
    if dtype is DType.bool:
        return np.array([[True, False, True]])
    if dtype.is_int:
        info = np.iinfo(np_dtype)
        return np.array([[info.min, 0, info.max]], dtype=np_dtype)
    if dtype.is_storage:  # every code of the type (2, 4 or 8 bits; NaNs, -0.0 and infs included)
        return np.arange(2 ** dtype.bits, dtype=np.uint8).reshape(1, -1).view(np_dtype)
    if dtype is DType.bfloat16:
        bits = np.array([[0x7FC1, 0x8000, 0x7F80, 0x3F80]], dtype=np.uint16)  # NaN payload, -0.0, inf, 1.0
        return bits.view(ml_dtypes.bfloat16)
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[np_dtype.itemsize]
    nan_payload = {2: 0x7E01, 4: 0x7FC00123, 8: 0x7FF8000000000ABC}[np_dtype.itemsize]
    a = np.array([[0.0, -0.0, np.inf, -np.inf, 1e-3]], dtype=np_dtype)
    payload = np.array([nan_payload], dtype=uint).view(np_dtype)
    return np.concatenate([a, payload.reshape(1, 1)], axis=1)


@pytest.mark.parametrize("dtype", list(DType))
def test_json_round_trip_is_bit_exact_for_every_dtype(dtype, tmp_path):
    arr = _special_values(dtype)
    t = TensorType(dtype=dtype, shape=("batch", arr.shape[1]))
    node = Node(op="identity", inputs=("x",), outputs=(Value(name="y", type=t),), name="id")
    g = Graph(name="g", inputs=(Value(name="x", type=t),), outputs=(node.outputs[0],), nodes=(node,),
              initializers={"w": arr})
    path = tmp_path / "g.irflow.json"
    g.save(path)
    back = load(path)
    assert back == g
    w = back.initializers["w"]
    assert w.dtype == arr.dtype and w.shape == arr.shape
    assert w.tobytes() == arr.tobytes()  # NaN payloads and -0.0 survive, bit for bit
    assert back.inputs[0].type.shape == ("batch", arr.shape[1])


def test_attrs_round_trip_with_their_kinds():
    attrs = {"i": 3, "f": -0.0, "nan": math.nan, "b": True, "s": "same", "t": DType.int64,
             "ints": (1, -2), "floats": (0.5, math.inf), "none": None}
    g = _graph([Node(op="relu", inputs=("x",), outputs=(Value(name="y", type=F32),), attrs=attrs)])
    back = Graph.model_validate_json(g.model_dump_json())
    a = back.nodes[0].attrs
    assert type(a["i"]) is int and type(a["b"]) is bool and a["t"] is DType.int64
    assert math.copysign(1.0, a["f"]) == -1.0 and math.isnan(a["nan"])
    assert a["ints"] == (1, -2) and a["floats"] == (0.5, math.inf) and a["none"] is None


def test_nested_graph_attr_round_trips():
    inner = _graph([_relu("x", "y")])
    outer = _graph([Node(op="relu", inputs=("x",), outputs=(Value(name="y", type=F32),), attrs={"body": inner})])
    back = Graph.model_validate_json(outer.model_dump_json())
    assert back.nodes[0].attrs["body"] == inner


def test_load_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(irf.IrflowError, match="no such file"):
        load(tmp_path / "nope.irflow.json")
    bad = tmp_path / "bad.irflow.json"
    bad.write_text('{"name": "g", "inputs": [')
    with pytest.raises(irf.IRValidationError, match="bad.irflow.json"):
        load(bad)


# -- verifier ---------------------------------------------------------------------------------

def test_valid_graph_verifies():
    _graph([_relu("x", "a"), _relu("a", "b")]).verify()


def test_verify_rejects_a_cycle():
    g = _graph([_relu("b", "a", "first"), _relu("a", "b", "second")])
    with pytest.raises(irf.IRValidationError, match=r"node first \(relu\): cycle"):
        g.verify()


def test_verify_rejects_use_before_definition():
    g = _graph([_relu("a", "b", "early"), _relu("x", "a", "late")])
    with pytest.raises(irf.IRValidationError, match=r"node early \(relu\): use before definition"):
        g.verify()


def test_verify_rejects_a_value_defined_twice():
    g = _graph([_relu("x", "a", "one"), _relu("x", "a", "two")])
    with pytest.raises(irf.IRValidationError, match=r"%a is defined twice .*node two"):
        g.verify()


def test_verify_rejects_wrong_arity():
    node = Node(op="add", inputs=("x",), outputs=(Value(name="y", type=F32),), name="lonely_add")
    with pytest.raises(irf.IRValidationError, match=r"node lonely_add \(add\): takes 2..2 inputs, got 1"):
        _graph([node]).verify()


def test_verify_rejects_an_unknown_op():
    node = Node(op="frobnicate", inputs=("x",), outputs=(Value(name="y", type=F32),), name="weird")
    with pytest.raises(irf.IRValidationError, match=r"node weird \(frobnicate\): unknown op 'frobnicate'"):
        _graph([node]).verify()


def test_verify_rejects_a_bad_attr():
    node = Node(op="reduce_sum", inputs=("x",), outputs=(Value(name="y", type=TensorType(dtype="float32", shape=())),),
                attrs={"axes": None, "keepdims": "yes"}, name="summer")
    with pytest.raises(irf.IRValidationError, match=r"node summer \(reduce_sum\): attribute 'keepdims' must be bool"):
        _graph([node]).verify()
    node = Node(op="relu", inputs=("x",), outputs=(Value(name="y", type=F32),), attrs={"alpha": 1.0}, name="r")
    with pytest.raises(irf.IRValidationError, match=r"node r \(relu\): unknown attribute 'alpha'"):
        _graph([node]).verify()


def test_verify_rejects_a_shape_mismatch():
    wrong = TensorType(dtype="float32", shape=(3, 2))
    with pytest.raises(irf.IRValidationError, match=r"node bad \(relu\): output %y is declared float32\[3, 2\] but the op gives float32\[2, 3\]"):
        _graph([_relu("x", "y", "bad", t=wrong)]).verify()
    m = Node(op="matmul", inputs=("x", "x"), outputs=(Value(name="y", type=F32),), name="mm")
    with pytest.raises(irf.IRValidationError, match=r"node mm \(matmul\).*contracted dims differ: 3 .*vs 2"):
        _graph([m]).verify()


def test_verify_rejects_an_undefined_output():
    g = _graph([_relu("x", "a")], outputs=(Value(name="zzz", type=F32),))
    with pytest.raises(irf.IRValidationError, match="output %zzz is not defined"):
        g.verify()


def test_builder_reports_shape_errors_at_the_call():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", ("batch", 4))
    w = b.input("w", "float32", (5, 3))
    with pytest.raises(irf.ShapeError, match=r"matmul \(node matmul_\d+\) with inputs \(float32\['batch', 4\], float32\[5, 3\]\)"):
        b.op("matmul", x, w)


def test_builder_graph_prints_readably():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", ("batch", 4))
    b.output(b.op("relu", x))
    text = str(b.build(verify=True))
    assert "graph g(%x: float32['batch', 4])" in text
    assert "= relu(%x)" in text
