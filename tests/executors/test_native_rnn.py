"""A scan that is exactly an LSTM / GRU / RNN layer exports as ONNX's native op
(executors/onnx/lowering/rnn.py); anything else stays an ONNX Scan. Every export is run on
onnxruntime and compared with onnxruntime on the source file, with torch, or with irflow's
NumPy interpreter (itself checked against onnxruntime and torch in
tests/frontends/test_onnx_import_rnn.py and tests/nn/test_recurrent.py)."""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import irflow as irf
from irflow.autodiff.vjp import vjp
from irflow.executors.numpy import Interpreter
from irflow.ir.graph import Graph, Node
from tests.frontends.test_onnx_import_rnn import assert_close, make_model, ort_run

torch = pytest.importorskip("torch", reason="the native export is checked against PyTorch")

NATIVE = {"LSTM", "GRU", "RNN"}


def ops_of(model) -> list[str]:
    return [n.op_type for n in model.graph.node]


def directions(model, op: str) -> list[str]:
    """The direction of each native ``op`` node (the two directions of a layer are one node)."""
    return [next((a.s.decode() for a in n.attribute if a.name == "direction"), "forward")
            for n in model.graph.node if n.op_type == op]


def exported(graph):
    """irflow's export of ``graph`` and its outputs on onnxruntime for ``feeds``."""
    model = irf.onnx.to_model(graph)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return model, lambda feeds: sess.run(None, {k: v for k, v in feeds.items() if k in graph.input_names})


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("seq,init", [(False, True), (True, True), (True, False)])
def test_onnx_layers_export_native_and_match_onnxruntime(op, direction, seq, init):
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    model, feeds = make_model(op, direction=direction, seq=seq, init=init, **attrs)
    g = irf.onnx.load(model)
    out, run = exported(g)
    assert directions(out, op) == [direction] and "Scan" not in ops_of(out)
    assert_close(run(feeds), ort_run(model, feeds), tol=1e-5)


@pytest.mark.parametrize("op,attrs", [
    ("GRU", {"linear_before_reset": 0}),
    ("GRU", {"linear_before_reset": 0, "direction": "bidirectional", "clip": 0.5}),
    ("LSTM", {"clip": 0.7, "direction": "reverse"}),
    ("RNN", {"activations": ["Relu"]}),
])
def test_options_the_native_op_has_export_native(op, attrs):
    model, feeds = make_model(op, seq=True, **attrs)
    out, run = exported(irf.onnx.load(model))
    assert op in ops_of(out) and "Scan" not in ops_of(out)
    assert_close(run(feeds), ort_run(model, feeds), tol=1e-5)


@pytest.mark.parametrize("op,attrs", [
    ("LSTM", {"activations": ["HardSigmoid", "Tanh", "Tanh"]}),  # another activation
    ("GRU", {"activations": ["Sigmoid", "Relu"], "linear_before_reset": 1}),
    ("RNN", {"activations": ["Softsign"]}),
    ("LSTM", {"input_forget": 1}),
])
def test_other_cells_stay_scan(op, attrs):
    model, feeds = make_model(op, seq=True, **attrs)
    out, run = exported(irf.onnx.load(model))
    assert "Scan" in ops_of(out) and not NATIVE & set(ops_of(out))
    assert_close(run(feeds), ort_run(model, feeds), tol=1e-5)


def test_peepholes_and_float64_stay_scan():
    model, feeds = make_model("LSTM", peephole=True)
    out, run = exported(irf.onnx.load(model))
    assert "Scan" in ops_of(out) and "LSTM" not in ops_of(out)
    assert_close(run(feeds), ort_run(model, feeds), tol=1e-5)
    model, feeds = make_model("GRU", dtype=np.float64, linear_before_reset=1)  # onnxruntime's GRU is float32 only
    g = irf.onnx.load(model)
    out, run = exported(g)
    assert "Scan" in ops_of(out) and "GRU" not in ops_of(out)
    want = Interpreter(g).run(feeds)
    assert_close(run(feeds), [want[o] for o in g.output_names], tol=1e-12)


def test_layout_1_exports_native_and_matches_layout_0_on_onnxruntime():
    m1, f1 = make_model("LSTM", layout=1, seq=True, direction="bidirectional", seed=3)
    m0, _ = make_model("LSTM", layout=0, seq=True, direction="bidirectional", seed=3)
    out, run = exported(irf.onnx.load(m1))
    assert directions(out, "LSTM") == ["bidirectional"]
    f0 = {"X": f1["X"].transpose(1, 0, 2), "sl": f1["sl"], "h0": f1["h0"].transpose(1, 0, 2),
          "c0": f1["c0"].transpose(1, 0, 2)}
    y, yh, yc = ort_run(m0, f0)
    assert_close(run(f1), [y.transpose(2, 0, 1, 3), yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)], tol=1e-5)


def test_sequence_lengths_outside_0_to_t_are_clamped_as_the_mask_does():
    # onnxruntime's LSTM refuses lengths outside [0, T]; the IR keeps every step of a longer
    # sequence and none of a negative one, and so does the export
    model, feeds = make_model("LSTM", seq=True, direction="bidirectional", T=4)
    g = irf.onnx.load(model)
    out, run = exported(g)
    assert "LSTM" in ops_of(out)
    feeds = dict(feeds, sl=np.array([9, 0, -2], np.int32))
    want = Interpreter(g).run(feeds)
    assert_close(run(feeds), [want[o] for o in g.output_names], tol=1e-5)
    assert np.all(want[g.output_names[0]][:, :, 1:] == 0)


# -- a body that is not exactly the layer ----------------------------------------------------------
def _edit_body(graph: Graph, edit) -> Graph:
    nodes = []
    for n in graph.nodes:
        if n.op == "scan":
            n = Node(op=n.op, inputs=n.inputs, outputs=n.outputs, attrs={**n.attrs, "body": edit(n.attrs["body"])}, name=n.name)
        nodes.append(n)
    return Graph(name=graph.name, inputs=graph.inputs, outputs=graph.outputs, nodes=tuple(nodes),
                 initializers=graph.initializers)


def _swap_last(op: str, new_op: str):
    def edit(body: Graph) -> Graph:
        last = max(i for i, n in enumerate(body.nodes) if n.op == op)
        nodes = list(body.nodes)
        nodes[last] = Node(op=new_op, inputs=nodes[last].inputs, outputs=nodes[last].outputs, attrs={}, name=nodes[last].name)
        return Graph(name=body.name, inputs=body.inputs, outputs=body.outputs, nodes=tuple(nodes), initializers=body.initializers)
    return edit


def _extra_op(body: Graph) -> Graph:
    # y_t = -(-h): the same values, one op more than the cell
    from irflow.ir.graph import Value

    y = body.outputs[-1]
    n1 = Value(name="neg_a", type=y.type)
    n2 = Value(name="neg_b", type=y.type)
    nodes = body.nodes + (Node(op="neg", inputs=(y.name,), outputs=(n1,), attrs={}, name="neg_a"),
                          Node(op="neg", inputs=("neg_a",), outputs=(n2,), attrs={}, name="neg_b"))
    return Graph(name=body.name, inputs=body.inputs, outputs=body.outputs[:-1] + (n2,), nodes=nodes,
                 initializers=body.initializers)


@pytest.mark.parametrize("edit", [_swap_last("tanh", "sigmoid"), _swap_last("sigmoid", "tanh"), _extra_op],
                         ids=["tanh->sigmoid", "sigmoid->tanh", "extra op"])
def test_modified_body_falls_back_to_scan(edit):
    model, feeds = make_model("LSTM", seq=True)
    g = _edit_body(irf.onnx.load(model), edit)
    out, run = exported(g)
    assert "Scan" in ops_of(out) and "LSTM" not in ops_of(out)
    want = Interpreter(g).run(feeds)
    assert_close(run(feeds), [want[o] for o in g.output_names], tol=1e-5)


def test_gradient_scans_stay_scan_and_match_numpy():
    model, feeds = make_model("GRU", T=4, B=2, I=3, H=5, weights_as_inputs=True, linear_before_reset=1)
    g = irf.onnx.load(model)
    gg = vjp(g, ["X", "W", "R"])
    cts = {f"ct_{o}": np.random.default_rng(2).standard_normal(np.shape(v)).astype(np.float32)
           for o, v in Interpreter(g).run(feeds).items()}
    feeds = {**feeds, **cts}
    out, run = exported(gg)
    assert "Scan" in ops_of(out)  # the backward step is no cell
    want = Interpreter(gg).run(feeds)
    assert_close(run(feeds), [want[o] for o in gg.output_names], tol=1e-4)


def test_vmapped_layer_matches_eager(tmp_path):
    lstm = irf.nn.LSTM(3, 4)

    def f(x):
        return irf.vmap(lambda xi: lstm(xi)[0])(x)  # over an extra leading axis: (N, T, B, I)

    x = np.random.default_rng(0).standard_normal((2, 5, 3, 3)).astype(np.float32)
    model = irf.onnx.export(f, str(tmp_path / "v.onnx"), irf.TensorSpec(x.shape, "float32"))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    want = np.stack([np.asarray(lstm(x[i])[0]) for i in range(2)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# -- PyTorch's layers: torch's own file, irflow's re-export, irf.nn's export ------------------------
TORCH_CASES = [
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("GRU", dict(bidirectional=True)),
    ("RNN", dict(nonlinearity="relu", batch_first=True)),
]


@pytest.mark.parametrize("kind,kw", TORCH_CASES, ids=[k for k, _ in TORCH_CASES])
def test_torch_files_reexport_native_and_match_torch(kind, kw, tmp_path):
    torch.manual_seed(0)
    layer = getattr(torch.nn, kind)(3, 5, **kw).eval()
    n = layer.num_layers * (2 if layer.bidirectional else 1)
    x = torch.randn((2, 6, 3) if layer.batch_first else (6, 2, 3))
    h0 = torch.randn(n, 2, 5)
    state = (h0, torch.randn(n, 2, 5)) if kind == "LSTM" else h0
    path = str(tmp_path / "m.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(layer, (x, state), path, dynamo=False, opset_version=17)
    with torch.no_grad():
        y, hn = layer(x, state)
    want = [y.numpy()] + ([t.numpy() for t in hn] if kind == "LSTM" else [hn.numpy()])
    g = irf.onnx.load(path)
    out, run = exported(g)
    assert directions(out, kind) == ["bidirectional" if layer.bidirectional else "forward"] * layer.num_layers
    assert "Scan" not in ops_of(out)
    feeds = dict(zip(g.input_names, [x.numpy()] + [t.numpy() for t in (state if kind == "LSTM" else (state,))]))
    got = run(feeds)
    raw = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert_close(got, raw.run(None, {i.name: feeds[n_] for i, n_ in zip(raw.get_inputs(), g.input_names)}), tol=1e-5)
    assert_close(got, want, tol=1e-5)


@pytest.mark.parametrize("kind,kw", [
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("GRU", dict(bias=False)),
    ("SimpleRNN", dict(nonlinearity="relu", bidirectional=True)),
])
def test_irf_nn_layers_export_native_and_match_torch(kind, kw, tmp_path):
    torch_kind = {"SimpleRNN": "RNN"}.get(kind, kind)
    torch.manual_seed(1)
    tm = getattr(torch.nn, torch_kind)(3, 4, **kw)
    im = getattr(irf.nn, kind)(3, 4, **kw)
    im.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    model = irf.onnx.export(lambda x: im(x)[0], str(tmp_path / "m.onnx"), irf.TensorSpec(("a", "b", 3), "float32"))
    assert directions(model, torch_kind) == ["bidirectional" if tm.bidirectional else "forward"] * tm.num_layers
    assert "Scan" not in ops_of(model)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for shape in [(2, 7, 3), (1, 3, 3)]:
        x = np.random.default_rng(shape[1]).standard_normal(shape).astype(np.float32)
        (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
        with torch.no_grad():
            want = tm(torch.tensor(x))[0].numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_directions_that_read_each_other_are_not_joined():
    # the reverse layer starts from the forward layer's final state: two ops, in order
    from irflow.frontends.rnn import recurrent_direction

    rng = np.random.default_rng(4)
    w, r, b = (rng.standard_normal(s).astype(np.float32) * 0.5 for s in ((12, 3), (12, 4), (12,)))

    @irf.function
    def f(x, h0):
        y1, h1, _ = recurrent_direction("gru", x, w, r, b, b, h0, gate_order="zrh")
        y2, h2, _ = recurrent_direction("gru", x, w, r, b, b, h1, gate_order="zrh", reverse=True)
        return irf.concat([y1, y2], axis=-1), h2

    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    h0 = rng.standard_normal((2, 4)).astype(np.float32)
    g = f.get_concrete_function(irf.TensorSpec(x.shape, "float32"), irf.TensorSpec(h0.shape, "float32")).graph
    out, run = exported(g)
    assert directions(out, "GRU") == ["forward", "reverse"]
    feeds = dict(zip(g.input_names, (x, h0)))
    want = Interpreter(g).run(feeds)
    assert_close(run(feeds), [want[o] for o in g.output_names], tol=1e-5)


@pytest.mark.parametrize("name", ["lstm_lm", "gru_lm"])
def test_zoo_recurrent_models_optimize_to_torchs_graph(name, tmp_path):
    # what benchmarks/zoo.py times: after onnxruntime's graph optimizations, irflow's re-export
    # of torch's file runs the very nodes torch's file runs (no timing asserted)
    from tests.models.zoo_models import build, export

    model, inputs = build(name)
    path = str(tmp_path / "torch.onnx")
    export(model, inputs, path, "legacy")
    g = irf.onnx.load(path)
    mine = irf.onnx.to_model(g)
    optimized = []
    for src, tag in ((path, "torch"), (mine.SerializeToString(), "irflow")):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(tmp_path / f"{tag}_opt.onnx")
        sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
        optimized.append([n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node])
        (y,) = sess.run(None, {sess.get_inputs()[0].name: inputs[0].numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(y, model(*inputs).numpy(), rtol=1e-4, atol=1e-5)
    assert optimized[1] == optimized[0]


def _gru_weights(seed=5):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) * 0.5 for s in ((12, 3), (12, 4), (12,))]


def test_a_mask_or_input_not_built_by_the_layer_stays_scan():
    from irflow.frontends.rnn import recurrent_direction

    w, r, b = _gru_weights()

    @irf.function
    def f(x, m, xw):
        y1, _, _ = recurrent_direction("gru", x, w, r, b, b, irf.zeros((2, 4)), gate_order="zrh", mask=m)
        # the same body over an input that is no projection: nothing tells W apart from x
        y2, _ = irf.scan(lambda c, xt: ((irf.tanh(xt + c[0] @ r[:4].T),), irf.tanh(xt + c[0] @ r[:4].T)),
                         (irf.zeros((2, 4)),), xw)
        return y1, y2

    rng = np.random.default_rng(6)
    feeds = (rng.standard_normal((5, 2, 3)).astype(np.float32), rng.random((5, 2, 1)) > 0.3,
             rng.standard_normal((5, 2, 4)).astype(np.float32))
    g = f.get_concrete_function(*(irf.TensorSpec(a.shape, a.dtype.name) for a in feeds)).graph
    out, run = exported(g)
    assert ops_of(out).count("Scan") == 2 and not NATIVE & set(ops_of(out))
    feeds = dict(zip(g.input_names, feeds))
    want = Interpreter(g).run(feeds)
    assert_close(run(feeds), [want[o] for o in g.output_names], tol=1e-5)


def test_a_layer_inside_a_branch_exports_native_in_the_subgraph():
    lstm = irf.nn.LSTM(3, 4)

    @irf.function
    def f(x, p):
        return irf.cond(p, lambda: lstm(x)[0], lambda: lstm(x)[0] * 2.0)

    x = np.random.default_rng(7).standard_normal((5, 2, 3)).astype(np.float32)
    g = f.get_concrete_function(irf.TensorSpec(x.shape, "float32"), irf.TensorSpec((), "bool")).graph
    out, run = exported(g)
    (iff,) = [n for n in out.graph.node if n.op_type == "If"]
    branch_ops = [[n.op_type for n in a.g.node] for a in iff.attribute]
    assert all("LSTM" in ops and "Scan" not in ops and "MatMul" not in ops for ops in branch_ops)
    params = {n: np.asarray(getattr(lstm, n.split("/")[-1])) for n in g.input_names[2:]}  # the Variables
    for p in (True, False):
        feeds = {g.input_names[0]: x, g.input_names[1]: np.asarray(p), **params}
        want = Interpreter(g).run(feeds)
        assert_close(run(feeds), [want[o] for o in g.output_names], tol=1e-5)
        np.testing.assert_allclose(want[g.output_names[0]], np.asarray(lstm(x)[0]) * (1.0 if p else 2.0), rtol=1e-5, atol=1e-6)
