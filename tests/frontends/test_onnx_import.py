"""ONNX import: hand-built models checked against NumPy written here, symbols, external data,
local functions, shape computations, error messages; and (with torch) models exported by
torch.onnx.export checked against torch itself, on both executors, plus `irflow grad` against
torch.autograd."""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import irflow as irf
from irflow.errors import IRValidationError, UnsupportedOpError
from irflow.frontends.onnx_import import load

rng = np.random.default_rng(0)
F = TensorProto.FLOAT


def make_model(nodes, inputs, outputs, initializers=(), opset=17, functions=(), extra_opsets=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset), *extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def run_both(g, feeds):
    """Outputs on the NumPy interpreter, checked equal (to 1e-5) to import -> export -> ORT."""
    ref = irf.run(g, feeds)
    ort = irf.run(g, feeds, executor="ort")
    for k in ref:
        np.testing.assert_allclose(ort[k], ref[k], rtol=1e-5, atol=1e-6)
    return ref


def test_gemm_relu_softmax_matches_numpy():
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], alpha=0.5, transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Softmax", ["r"], ["y"], axis=-1)]
    model = make_model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 4])],
                       [helper.make_tensor_value_info("y", F, ["batch", 3])],
                       [numpy_helper.from_array(w.T.copy(), "w"), numpy_helper.from_array(b, "b")])
    g = load(model)
    assert g.inputs[0].type.shape == ("batch", 4)  # dim_param -> symbol
    assert g.output_names == ("y",) and "w" in g.initializers  # ONNX names kept
    x = rng.standard_normal((5, 4)).astype(np.float32)
    h = np.maximum(0.5 * x @ w + b, 0)
    e = np.exp(h - h.max(-1, keepdims=True))
    np.testing.assert_allclose(run_both(g, {"x": x})["y"], e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_layer_norm_and_reduce_with_axes_input():
    nodes = [helper.make_node("LayerNormalization", ["x", "s", "b"], ["ln"], axis=-1, epsilon=1e-5),
             helper.make_node("ReduceSum", ["ln", "axes"], ["y"], keepdims=0)]
    s = rng.standard_normal(6).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    model = make_model(nodes, [helper.make_tensor_value_info("x", F, [2, 3, 6])], [helper.make_tensor_value_info("y", F, [2])],
                       [numpy_helper.from_array(s, "s"), numpy_helper.from_array(b, "b"),
                        numpy_helper.from_array(np.array([1, 2], np.int64), "axes")], opset=18)
    x = rng.standard_normal((2, 3, 6)).astype(np.float32)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    want = ((x - mu) / np.sqrt(var + 1e-5) * s + b).sum(axis=(1, 2))
    np.testing.assert_allclose(run_both(load(model), {"x": x})["y"], want, rtol=1e-4, atol=1e-5)


def test_torch_style_shape_chain_with_symbolic_batch():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as torch.onnx.export writes x.view(b, -1)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Constant", [], ["ax"], value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Unsqueeze", ["b", "ax"], ["b1"]),
        helper.make_node("Constant", [], ["m1"], value=numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Concat", ["b1", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    model = make_model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 3, 4])],
                       [helper.make_tensor_value_info("y", F, ["batch", 12])])
    g = load(model)
    assert [n.op for n in g.nodes] == ["reshape"]  # the shape computation was resolved at import
    for batch in (1, 5):
        x = rng.standard_normal((batch, 3, 4)).astype(np.float32)
        np.testing.assert_array_equal(run_both(g, {"x": x})["y"], x.reshape(batch, 12))


def test_reshape_with_two_symbolic_dims_reads_the_shape_at_run_time():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Constant", [], ["idx"], value=numpy_helper.from_array(np.array([0, 1], np.int64))),
             helper.make_node("Gather", ["s", "idx"], ["bs"], axis=0),
             helper.make_node("Constant", [], ["tail"], value=numpy_helper.from_array(np.array([2, 3], np.int64))),
             helper.make_node("Concat", ["bs", "tail"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    model = make_model(nodes, [helper.make_tensor_value_info("x", F, ["b", "t", 6])],
                       [helper.make_tensor_value_info("y", F, ["b", "t", 2, 3])])
    g = load(model)
    assert g.outputs[0].type.shape == ("b", "t", 2, 3)
    x = rng.standard_normal((2, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(run_both(g, {"x": x})["y"], x.reshape(2, 5, 2, 3))


def test_local_function_is_inlined():
    fn = helper.make_function("my.domain", "AddMul", ["a", "b"], ["c"],
                              [helper.make_node("Add", ["a", "b"], ["t"]), helper.make_node("Mul", ["t", "b"], ["c"])],
                              opset_imports=[helper.make_opsetid("", 17)])
    node = helper.make_node("AddMul", ["x", "y"], ["z"], domain="my.domain")
    vi = [helper.make_tensor_value_info(n, F, [3]) for n in ("x", "y")]
    model = make_model([node], vi, [helper.make_tensor_value_info("z", F, [3])], functions=[fn],
                       extra_opsets=[helper.make_opsetid("my.domain", 1)])
    x, y = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    np.testing.assert_allclose(run_both(load(model), {"x": x, "y": y})["z"], (x + y) * y, rtol=1e-6)


def test_schema_function_expansion_celu():
    """Celu has no importer of its own: the ONNX schema's function body is imported."""
    node = helper.make_node("Celu", ["x"], ["y"], alpha=2.0)
    model = make_model([node], [helper.make_tensor_value_info("x", F, [7])], [helper.make_tensor_value_info("y", F, [7])], opset=13)
    x = np.linspace(-3, 3, 7).astype(np.float32)
    want = np.maximum(0, x) + np.minimum(0, 2.0 * (np.exp(x / 2.0) - 1))
    np.testing.assert_allclose(run_both(load(model), {"x": x})["y"], want, rtol=1e-5, atol=1e-6)


def test_external_data_is_read_from_the_model_directory(tmp_path):
    w = rng.standard_normal((64, 64)).astype(np.float32)
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [helper.make_tensor_value_info("x", F, [2, 64])],
                       [helper.make_tensor_value_info("y", F, [2, 64])], [numpy_helper.from_array(w, "w")])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").exists()
    g = load(path)
    np.testing.assert_array_equal(g.initializers["w"], w)
    x = rng.standard_normal((2, 64)).astype(np.float32)
    np.testing.assert_allclose(irf.run(g, {"x": x})["y"], x @ w, rtol=1e-5, atol=1e-5)


def test_unsupported_ops_are_all_listed_at_once():
    nodes = [helper.make_node("SequenceEmpty", [], ["nz"], name="find_nonzero"),
             helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("SplitToSequence", ["r"], ["u"], name="uniq"),
             helper.make_node("Frobnicate", ["x"], ["f"], domain="com.example", name="custom1")]
    outs = [helper.make_tensor_value_info(n, t, [None]) for n, t in (("nz", TensorProto.INT64), ("u", F), ("f", F))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [4])], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    with pytest.raises(UnsupportedOpError) as info:
        load(model)
    msg = str(info.value)
    for needle in ("3 unsupported", "SequenceEmpty", "find_nonzero", "SplitToSequence", "uniq", "Frobnicate", "com.example", "opset 17"):
        assert needle in msg, (needle, msg)


def test_bad_files(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage")
    with pytest.raises(IRValidationError, match="junk.onnx"):
        load(junk)
    with pytest.raises(irf.IrflowError, match="no such file"):
        load(tmp_path / "missing.onnx")


def test_static_inputs_specialize_shape_arguments():
    node = helper.make_node("ReduceMax", ["x", "axes"], ["y"], keepdims=1)
    model = make_model([node], [helper.make_tensor_value_info("x", F, [2, 3]), helper.make_tensor_value_info("axes", TensorProto.INT64, [1])],
                       [helper.make_tensor_value_info("y", F, [2, 1])], opset=18)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    dynamic = load(model)  # axes computed at run time: read when the graph runs
    assert [n.op for n in dynamic.nodes] == ["reduce_dynamic"]
    np.testing.assert_array_equal(irf.run(dynamic, {"x": x, "axes": np.array([-1])})["y"], x.max(1, keepdims=True))
    g = load(model, static_inputs={"axes": np.array([1], np.int64)})  # bound: the static op
    assert g.input_names == ("x",) and [n.op for n in g.nodes] == ["reduce_max"]
    np.testing.assert_array_equal(irf.run(g, {"x": x})["y"], x.max(1, keepdims=True))


# -- models exported by PyTorch -------------------------------------------------------------------

def _export(torch, module, x, **kw):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # dynamo=False: the TorchScript exporter, which works offline without onnxscript.
        torch.onnx.export(module, (x,), buf, dynamo=False, input_names=["x"], output_names=["y"], opset_version=17, **kw)
    return onnx.load_from_string(buf.getvalue())


def _check_torch(torch, module, x, **kw):
    module.eval()
    g = load(_export(torch, module, x, **kw))
    with torch.no_grad():
        want = module(x).numpy()
    for executor in ("numpy", "ort"):
        got = irf.run(g, {"x": x.numpy()}, executor=executor)["y"]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=executor)
    return g


def test_torch_mlp():
    torch = pytest.importorskip("torch", reason="the torch cross-check needs PyTorch")
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))
    g = _check_torch(torch, mlp, torch.randn(5, 8), dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    x = torch.randn(11, 8)
    np.testing.assert_allclose(irf.run(g, {"x": x.numpy()})["y"], mlp(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_torch_cnn():
    torch = pytest.importorskip("torch", reason="the torch cross-check needs PyTorch")
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Linear(16, 10))
    with torch.no_grad():  # non-trivial running statistics
        cnn[1].running_mean.uniform_(-0.5, 0.5)
        cnn[1].running_var.uniform_(0.5, 2.0)
    _check_torch(torch, cnn, torch.randn(2, 3, 16, 16))


class _EncoderLayerForExport:
    """TransformerEncoderLayer.forward written with the layer's own submodules: the
    TorchScript exporter of torch 2.13 fails on the layer's fast-path `is_causal` argument; the
    test checks this is the same function (torch's own forward is the reference)."""

    @staticmethod
    def wrap(torch, layer):
        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.layer = layer

            def forward(self, x):
                l = self.layer
                x = l.norm1(x + l.dropout1(l.self_attn(x, x, x, need_weights=False)[0]))
                return l.norm2(x + l._ff_block(x))

        return Wrapped()


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_transformer_encoder_layer(dynamic):
    torch = pytest.importorskip("torch", reason="the torch cross-check needs PyTorch")
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, dropout=0.0, batch_first=True).eval()
    wrapped = _EncoderLayerForExport.wrap(torch, layer).eval()
    x = torch.randn(2, 7, 16)
    # A dynamic batch only: torch's tracer bakes the sequence length into one Reshape of the
    # attention (onnxruntime fails on the original export for another length too).
    kw = {"dynamic_axes": {"x": {0: "batch"}, "y": {0: "batch"}}} if dynamic else {}
    g = load(_export(torch, wrapped, x, **kw))
    if dynamic:
        assert g.inputs[0].type.shape == ("batch", 7, 16)
        assert g.outputs[0].type.shape == ("batch", 7, 16)  # from the ONNX declaration where the IR lost the symbol
        g.verify()
    xs = [x, torch.randn(3, 7, 16)] if dynamic else [x]
    for xi in xs:
        with torch.no_grad():
            want = layer(xi).numpy()  # the real layer, not the wrapper
        for executor in ("numpy", "ort"):
            got = irf.run(g, {"x": xi.numpy()}, executor=executor)["y"]
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=executor)


def test_irflow_grad_on_torch_mlp_loss_matches_autograd(tmp_path):
    torch = pytest.importorskip("torch", reason="the torch cross-check needs PyTorch")
    from typer.testing import CliRunner

    from irflow.cli.app import app

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))

    class Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = mlp

        def forward(self, x):
            return (self.mlp(x) ** 2).mean()

    x = torch.randn(4, 6)
    model = _export(torch, Loss().eval(), x)
    src = tmp_path / "loss.onnx"
    onnx.save(model, str(src))
    weight = next(i.name for i in model.graph.initializer if i.name.endswith("0.weight"))
    out = tmp_path / "grad.onnx"
    r = CliRunner().invoke(app, ["grad", str(src), "--loss", "y", "--wrt", "x", "--wrt", weight, "-o", str(out)])
    assert r.exit_code == 0, r.output
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    loss, gx, gw = sess.run(["y", "grad_x", f"grad_{weight}"], {"x": x.numpy()})
    xt = x.clone().requires_grad_(True)
    lt = Loss()(xt)
    tgx, tgw = torch.autograd.grad(lt, [xt, mlp[0].weight])
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-5)
    np.testing.assert_allclose(gx, tgx.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gw, tgw.numpy(), rtol=1e-4, atol=1e-6)


def test_expand_and_constant_of_shape_with_symbolic_dims():
    """Shape-driven Expand and ConstantOfShape with a symbolic batch read their shape at run time."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["ones"], value=numpy_helper.from_array(np.ones(1, np.float32))),
             helper.make_node("Expand", ["b", "s"], ["bb"]),
             helper.make_node("Add", ["ones", "bb"], ["y"])]
    b = np.arange(4, dtype=np.float32)
    model = make_model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 4])], [helper.make_tensor_value_info("y", F, ["batch", 4])],
                       [numpy_helper.from_array(b, "b")])
    g = load(model)
    assert g.outputs[0].type.shape == ("batch", 4)
    for batch in (1, 3):
        x = np.zeros((batch, 4), np.float32)
        np.testing.assert_array_equal(run_both(g, {"x": x})["y"], np.ones((batch, 4), np.float32) + b)


def test_torch_small_gpt_block_with_dynamic_batch():
    """Embedding (Gather), positional slice, causal mask (Trilu + Where), attention written out,
    GELU (Erf), LayerNorm, log_softmax: exported with a dynamic batch, checked against torch."""
    torch = pytest.importorskip("torch", reason="the torch cross-check needs PyTorch")
    torch.manual_seed(0)

    class Block(torch.nn.Module):
        def __init__(self, vocab=50, d=16, heads=4):
            super().__init__()
            self.emb, self.pos, self.heads = torch.nn.Embedding(vocab, d), torch.nn.Parameter(torch.randn(32, d) * 0.1), heads
            self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
            self.qkv, self.proj, self.head = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d), torch.nn.Linear(d, vocab)
            self.ff = torch.nn.Sequential(torch.nn.Linear(d, 4 * d), torch.nn.GELU(), torch.nn.Linear(4 * d, d))

        def forward(self, ids):
            b, t = ids.shape
            x = self.emb(ids) + self.pos[:t]
            q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in self.qkv(self.ln1(x)).split(x.shape[-1], dim=-1))
            att = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
            att = att.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf")).softmax(-1)
            x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, -1))
            x = x + self.ff(self.ln2(x))
            return torch.log_softmax(self.head(x), -1)

    model = Block().eval()
    ids = torch.randint(0, 50, (2, 9))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids,), buf, dynamo=False, input_names=["ids"], output_names=["y"], opset_version=18,
                          dynamic_axes={"ids": {0: "batch"}, "y": {0: "batch"}})
    g = load(onnx.load_from_string(buf.getvalue()))
    for x in (ids, torch.randint(0, 50, (3, 9))):
        with torch.no_grad():
            want = model(x).numpy()
        for executor in ("numpy", "ort"):
            np.testing.assert_allclose(irf.run(g, {"ids": x.numpy()}, executor=executor)["y"], want, rtol=1e-4, atol=1e-4)


def test_slice_by_a_symbolic_length_runs_and_differentiates():
    """pos[:seq] + x with seq symbolic (as a dynamic-length torch export writes it): the slice
    bounds are read at run time (gather of a range), and gradients flow to the sliced weight."""
    from irflow.autodiff import vjp

    nodes = [helper.make_node("Shape", ["x"], ["s"], start=1, end=2),
             helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array([0], np.int64))),
             helper.make_node("Slice", ["pos", "zero", "s"], ["p"]),
             helper.make_node("Add", ["x", "p"], ["y"])]
    pos = rng.standard_normal((8, 4)).astype(np.float32)
    model = make_model(nodes, [helper.make_tensor_value_info("x", F, ["batch", "seq", 4])],
                       [helper.make_tensor_value_info("y", F, ["batch", "seq", 4])], [numpy_helper.from_array(pos, "pos")])
    g = load(model)
    for batch, seq in ((2, 3), (1, 5)):
        x = rng.standard_normal((batch, seq, 4)).astype(np.float32)
        np.testing.assert_allclose(run_both(g, {"x": x})["y"], x + pos[:seq], rtol=1e-6)
    gg = vjp(g, ["pos"], seed="ones")
    grad = irf.run(gg, {"x": np.zeros((2, 3, 4), np.float32)})["grad_pos"]
    want = np.zeros_like(pos)
    want[:3] = 2.0  # d sum(y) / d pos[i] = batch for the 3 rows used, 0 for the rest
    np.testing.assert_array_equal(grad, want)


def test_if_with_a_condition_known_at_import_is_its_taken_branch():
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", F, [3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", F, [3])])
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Size", ["s"], ["rank"]),
             helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(np.array(1, np.int64))),
             helper.make_node("Equal", ["rank", "one"], ["is_vector"]),  # known at import: x is 1-D
             helper.make_node("If", ["is_vector"], ["y"], then_branch=then_g, else_branch=else_g)]
    model = make_model(nodes, [helper.make_tensor_value_info("x", F, [3])], [helper.make_tensor_value_info("y", F, [3])])
    g = load(model)
    assert [n.op for n in g.nodes] == ["relu"]
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    np.testing.assert_array_equal(run_both(g, {"x": x})["y"], np.maximum(x, 0))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_imports_as_one_op_and_exports_as_onnx_gelu(approximate):
    # one fused Gelu for onnxruntime, not the five elementwise ops of its formula (the dynamo
    # exporter writes Gelu; its formula cost the dynamic-batch zoo model 1.23x raw onnxruntime)
    from math import erf, pi, sqrt, tanh

    from irflow.executors.onnx import to_model

    model = make_model([helper.make_node("Gelu", ["x"], ["y"], approximate=approximate)],
                       [helper.make_tensor_value_info("x", F, [3, 5])], [helper.make_tensor_value_info("y", F, [3, 5])],
                       opset=20)
    g = load(model)
    assert [nd.op for nd in g.nodes] == ["gelu"]
    assert [nd.op_type for nd in to_model(g).graph.node] == ["Gelu"]
    x = rng.standard_normal((3, 5)).astype(np.float32) * 3
    if approximate == "tanh":
        ref = [0.5 * v * (1 + tanh(sqrt(2 / pi) * (v + 0.044715 * v ** 3))) for v in x.ravel().tolist()]
    else:
        ref = [0.5 * v * (1 + erf(v / sqrt(2))) for v in x.ravel().tolist()]
    np.testing.assert_allclose(run_both(load(model), {"x": x})["y"], np.reshape(ref, (3, 5)), rtol=1e-5, atol=1e-6)


def test_squeeze_without_axes_keeps_a_run_time_dim_and_checks_it_is_not_one():
    # ONNX drops every size-1 dim; for "n" (known only at run time) that decides the rank, which
    # irflow's IR fixes at import: n is kept, and a run-time n of 1 is a clear error
    model = make_model([helper.make_node("Squeeze", ["x"], ["y"])],
                       [helper.make_tensor_value_info("x", F, ["n", 1, 3, 1])],
                       [helper.make_tensor_value_info("y", F, ["n", 3])], opset=13)
    g = load(model)
    assert g.outputs[0].type.shape == ("n", 3)
    x = rng.standard_normal((4, 1, 3, 1)).astype(np.float32)
    np.testing.assert_array_equal(run_both(g, {"x": x})["y"], np.squeeze(x))
    with pytest.raises(irf.IrflowError, match=r"reshape_dynamic.*\[3\].*rank 2"):
        irf.run(g, {"x": x[:1]})
