"""ONNX export: checker, shape inference agreement, dtypes, symbols, names, external data, opsets."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import irflow as irf
from irflow.executors.onnx import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, check_export, shape_inference_mismatches, to_model
from irflow.executors.onnx.check import inferred_types

from .conftest import mlp_graph, mlp_reference


def ort_session(model: onnx.ModelProto | str) -> ort.InferenceSession:
    src = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"])


def broadcast_graph() -> irf.Graph:
    """Symbols, broadcasting, reductions with and without keepdims, transpose, squeeze, where."""
    b = irf.GraphBuilder("mixed")
    x = b.input("x", "float32", ("batch", 3, 4))
    y = b.input("y", "float32", (4,))
    with b:
        s = irf.relu(x * y - 1.0)
        t = irf.transpose(s, (0, 2, 1))                      # [batch, 4, 3]
        r = irf.reduce_sum(t, axis=2, keepdims=True)         # [batch, 4, 1]
        q = irf.squeeze(r, 2)                                # [batch, 4]
        e = irf.expand_dims(q, 0)                            # [1, batch, 4]
        w = irf.where(q > 0.5, q, irf.zeros_like(q))
        total = irf.reduce_sum(w)
    b.output(e, w, total)
    return b.build(verify=True)


def unknown_dim_graph() -> irf.Graph:
    b = irf.GraphBuilder("unknown")
    x = b.input("x", "float32", (None, 3))
    with b:
        y = irf.exp(-x) + 1.0
    b.output(y)
    return b.build(verify=True)


GRAPHS = {"mlp": mlp_graph, "mixed": broadcast_graph, "unknown": unknown_dim_graph}


@pytest.mark.parametrize("make", GRAPHS.values(), ids=GRAPHS.keys())
def test_export_passes_full_checker_and_shape_inference_agrees(make):
    g = make()
    model = check_export(g)  # raises on checker failure or a disagreement
    onnx.checker.check_model(model, full_check=True)
    assert shape_inference_mismatches(g) == []
    # and the inferred types really cover the intermediates (the comparison is not vacuous)
    inferred = inferred_types(g)
    intermediates = [v for n in g.nodes for v in n.outputs]
    assert sum(v.name in inferred for v in intermediates) >= len(intermediates) // 2


def test_shape_inference_check_catches_a_wrong_ir_type():
    g = mlp_graph()
    node = g.nodes[0]  # matmul: [batch, 5]; claim [batch, 7]
    bad_out = node.outputs[0].model_copy(update={"type": irf.TensorType(dtype="float32", shape=("batch", 7))})
    bad = g.model_copy(update={"nodes": (node.model_copy(update={"outputs": (bad_out,)}),) + g.nodes[1:]})
    problems = shape_inference_mismatches(bad)
    assert problems and "matmul" in problems[0] and "7" in problems[0]


def test_intermediates_get_value_info_from_ir_types():
    g = broadcast_graph()
    model = to_model(g)
    infos = {vi.name: vi for vi in model.graph.value_info}
    boundary = set(g.input_names) | set(g.output_names)
    for node in g.nodes:
        for v in node.outputs:
            if v.name in boundary:
                continue
            vi = infos[v.name]
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]
            assert tuple(dims) == v.type.shape, v.name


def test_symbols_become_dim_param_and_none_becomes_unknown():
    m = to_model(unknown_dim_graph())
    (d0, d1) = m.graph.input[0].type.tensor_type.shape.dim
    assert not d0.HasField("dim_value") and not d0.HasField("dim_param")
    assert d1.dim_value == 3
    m = to_model(mlp_graph())
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert m.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("batch", [1, 37])
def test_symbolic_batch_export_runs_on_onnxruntime(tmp_path, batch):
    g = mlp_graph()
    path = tmp_path / "mlp.onnx"
    irf.onnx.save(g, path)
    sess = ort_session(str(path))
    x = np.random.default_rng(batch).standard_normal((batch, 6)).astype("float32")
    (y,) = sess.run(None, {"x": x})
    assert y.shape == (batch, 3)
    np.testing.assert_allclose(y, mlp_reference(g, x), rtol=1e-5, atol=1e-5)


DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtypes_are_kept_through_export(dtype):
    b = irf.GraphBuilder(f"ident_{dtype}")
    x = b.input("x", dtype, (2, 3))
    c = b.constant(np.arange(6).reshape(2, 3).astype(dtype), name="c")
    with b:
        y = irf.identity(x)
        z = irf.identity(c)
    b.output(y, z)
    g = b.build(verify=True)
    model = check_export(g)
    want = irf.executors.onnx.export.ONNX_DTYPE[irf.DType(dtype)]
    assert model.graph.input[0].type.tensor_type.elem_type == want
    assert all(o.type.tensor_type.elem_type == want for o in model.graph.output)
    assert onnx.numpy_helper.to_array(model.graph.initializer[0]).dtype == np.dtype(dtype)
    x = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    outs = ort_session(model).run(None, {"x": x})
    for got, exp in zip(outs, [x, g.initializers["c"]]):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, exp)


def test_bfloat16_maps_to_onnx_bfloat16():
    import ml_dtypes

    b = irf.GraphBuilder("bf16")
    x = b.input("x", "bfloat16", (2,))
    b.constant(np.ones(2, ml_dtypes.bfloat16), name="c")
    b.output(x)
    model = to_model(b.build())
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.BFLOAT16
    assert model.graph.initializer[0].data_type == onnx.TensorProto.BFLOAT16


def test_initializers_are_kept_bit_exactly_under_their_names():
    g = mlp_graph()
    model = to_model(g)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for name, arr in g.initializers.items():
        np.testing.assert_array_equal(inits[name], arr)
        assert inits[name].dtype == arr.dtype


def test_node_names_are_stable_readable_and_unique():
    g = broadcast_graph()
    a, b = to_model(g), to_model(g)
    names = [n.name for n in a.graph.node]
    assert names == [n.name for n in b.graph.node]
    assert len(set(names)) == len(names)
    ir_names = {n.name for n in g.nodes}
    for n in a.graph.node:  # each ONNX node is named after the IR node it came from
        assert n.name.split("/")[0] in ir_names, n.name
    one_to_one = [n for n in g.nodes if n.op == "transpose"][0]
    assert one_to_one.name in names
    assert a.SerializeToString() == b.SerializeToString()


def test_external_data_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    b = irf.GraphBuilder("big")
    x = b.input("x", "float32", ("batch", 256))
    w = b.constant(rng.standard_normal((256, 128)).astype("float32"), name="w")   # 128 KB: external
    s = b.constant(np.float32(2.0), name="s")                                        # 4 bytes: inline
    with b:
        y = (x @ w) * s
    b.output(y)
    g = b.build(verify=True)
    path = tmp_path / "big.onnx"
    irf.onnx.save(g, path, external_data=True)
    side = tmp_path / "big.onnx.data"
    assert side.is_file() and side.stat().st_size >= 256 * 128 * 4
    assert path.stat().st_size < 10_000  # the weights are not in the .onnx itself
    loaded = onnx.load(str(path))  # reads the side file back
    onnx.checker.check_model(str(path), full_check=True)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in loaded.graph.initializer}
    np.testing.assert_array_equal(inits["w"], g.initializers["w"])
    xv = rng.standard_normal((3, 256)).astype("float32")
    (got,) = ort_session(str(path)).run(None, {"x": xv})
    np.testing.assert_allclose(got, (xv @ g.initializers["w"]) * 2.0, rtol=1e-5, atol=1e-4)
    # saving again over the same files does not append to the old side file
    irf.onnx.save(g, path, external_data=True)
    assert side.stat().st_size < 2 * 256 * 128 * 4


@pytest.mark.parametrize("opset", range(MIN_OPSET, MAX_OPSET + 1))
def test_every_opset_in_the_documented_range_exports_and_runs(opset):
    g = broadcast_graph()
    model = check_export(g, opset=opset)
    assert model.opset_import[0].version == opset and model.opset_import[0].domain == ""
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype("float32")
    y = np.random.default_rng(1).standard_normal(4).astype("float32")
    got = dict(zip(g.output_names, ort_session(model).run(None, {"x": x, "y": y})))
    want = irf.run(g, {"x": x, "y": y})
    for name in g.output_names:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


def test_default_opset_is_documented_value():
    assert DEFAULT_OPSET == 21 and MIN_OPSET <= DEFAULT_OPSET <= MAX_OPSET
    assert to_model(mlp_graph()).opset_import[0].version == DEFAULT_OPSET


@pytest.mark.parametrize("opset", [MIN_OPSET - 1, MAX_OPSET + 1, "21"])
def test_opset_out_of_range_is_an_executor_error(opset):
    with pytest.raises(irf.ExecutorError, match=f"opsets {MIN_OPSET}..{MAX_OPSET}"):
        to_model(mlp_graph(), opset=opset)


def test_only_the_standard_domain_is_used():
    model = to_model(broadcast_graph())
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    assert [o.domain for o in model.opset_import] == [""]


def test_missing_lowering_is_an_unsupported_op_error(monkeypatch):
    from irflow.executors.onnx.lowering import LOWERINGS

    g = mlp_graph()
    monkeypatch.delitem(LOWERINGS, "relu")
    with pytest.raises(irf.UnsupportedOpError, match="relu"):
        to_model(g)


def test_save_to_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(irf.ExecutorError, match="does not exist"):
        irf.onnx.save(mlp_graph(), tmp_path / "nope" / "m.onnx")
