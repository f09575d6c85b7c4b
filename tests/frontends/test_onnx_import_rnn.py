"""ONNX LSTM / GRU / RNN import: forward against onnxruntime (and onnx's reference evaluator
for layout=1, which onnxruntime does not run), export round trip, gradients against float64
finite differences of the (independently checked) forward."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import irflow as irf
from irflow.autodiff.vjp import vjp
from irflow.executors.numpy import Interpreter
from tests.control.helpers import finite_diff

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_FT = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE}


def make_model(op, *, T=5, B=3, I=4, H=6, direction="forward", seq=False, init=True, layout=0, peephole=False,
               weights_as_inputs=False, dtype=np.float32, seed=0, **attrs):
    """A one-node model and its feeds; weights are initializers unless ``weights_as_inputs``."""
    rng = np.random.default_rng(seed)
    g, nd, ft = GATES[op], 2 if direction == "bidirectional" else 1, _FT[dtype]
    arrays = {"W": rng.standard_normal((nd, g * H, I)) * 0.5, "R": rng.standard_normal((nd, g * H, H)) * 0.5,
              "B": rng.standard_normal((nd, 2 * g * H)) * 0.5}
    feeds = {"X": rng.standard_normal((T, B, I) if not layout else (B, T, I))}
    names = ["X", "W", "R", "B"]
    if seq:
        names.append("sl")
        feeds["sl"] = np.array([T, 2, T - 1][:B], np.int32)
    else:
        names.append("")
    state_shape = (nd, B, H) if not layout else (B, nd, H)
    for s in (["h0", "c0"] if op == "LSTM" else ["h0"]):
        if init:
            feeds[s] = rng.standard_normal(state_shape)
        names.append(s if init else "")
    if peephole:
        arrays["P"] = rng.standard_normal((nd, 3 * H)) * 0.5
        names.append("P")
    while names[-1] == "":
        names.pop()
    feeds = {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in feeds.items()}
    arrays = {k: v.astype(dtype) for k, v in arrays.items()}
    if weights_as_inputs:
        feeds.update(arrays)
        inits = []
    else:
        inits = [helper.make_tensor(k, ft, a.shape, a.ravel()) for k, a in arrays.items()]
    ins = [helper.make_tensor_value_info(k, ft if v.dtype.kind == "f" else TensorProto.INT32, v.shape)
           for k, v in feeds.items()]
    outs = ["Y", "Yh"] + (["Yc"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outs, hidden_size=H, direction=direction, layout=layout, **attrs)
    out_vi = [helper.make_tensor_value_info(o, ft, [None] * (4 if o == "Y" else 3)) for o in outs]
    graph = helper.make_graph([node], "rnn", ins, out_vi, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8), feeds


def ort_run(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def irf_run(model, feeds, executor="numpy"):
    g = irf.onnx.load(model)
    out = irf.run(g, feeds, executor=executor)
    return [out[o] for o in g.output_names]


def assert_close(got, want, tol=2e-6):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), b, rtol=tol, atol=tol)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("seq,init", [(False, True), (True, True), (False, False)])
def test_forward_matches_onnxruntime(op, direction, seq, init):
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    model, feeds = make_model(op, direction=direction, seq=seq, init=init, **attrs)
    want = ort_run(model, feeds)
    assert_close(irf_run(model, feeds), want)
    assert_close(irf_run(model, feeds, "ort"), want)


@pytest.mark.parametrize("op,attrs", [
    ("GRU", {"linear_before_reset": 0}),
    ("LSTM", {"clip": 0.7}),
    ("GRU", {"clip": 0.5, "linear_before_reset": 0}),
    ("LSTM", {"input_forget": 1}),
    ("LSTM", {"activations": ["HardSigmoid", "LeakyRelu", "Softsign"], "activation_alpha": [0.3, 0.05],
              "activation_beta": [0.4]}),
    ("GRU", {"activations": ["Sigmoid", "Relu", "Sigmoid", "Tanh"], "direction": "bidirectional"}),
    ("RNN", {"activations": ["Relu", "Tanh"], "direction": "bidirectional"}),
    ("RNN", {"activations": ["Elu"], "activation_alpha": [0.5]}),
    ("RNN", {"activations": ["Softplus"]}),
])
def test_options_match_onnxruntime(op, attrs):
    model, feeds = make_model(op, seq=True, **attrs)
    want = ort_run(model, feeds)
    assert_close(irf_run(model, feeds), want, tol=1e-5)


def test_lstm_peepholes_match_onnxruntime():
    model, feeds = make_model("LSTM", peephole=True, direction="bidirectional")
    assert_close(irf_run(model, feeds), ort_run(model, feeds))


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_layout_1_matches_reference_evaluator(op):
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    model, feeds = make_model(op, layout=1, direction="bidirectional", **attrs)
    want = ReferenceEvaluator(model).run(None, feeds)
    assert_close(irf_run(model, feeds), want, tol=1e-5)


def test_layout_1_with_sequence_lens_is_layout_0_transposed():
    # onnxruntime runs only layout 0 and the reference evaluator ignores sequence_lens:
    # run the same weights batch-major through irflow and time-major through onnxruntime.
    m1, f1 = make_model("LSTM", layout=1, seq=True, direction="bidirectional", seed=3)
    m0, f0 = make_model("LSTM", layout=0, seq=True, direction="bidirectional", seed=3)
    f0 = {"X": f1["X"].transpose(1, 0, 2), "sl": f1["sl"], "h0": f1["h0"].transpose(1, 0, 2),
          "c0": f1["c0"].transpose(1, 0, 2)}
    y, yh, yc = ort_run(m0, f0)
    assert_close(irf_run(m1, f1), [y.transpose(2, 0, 1, 3), yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)])


def test_symbolic_sequence_length_and_export_round_trip():
    model, feeds = make_model("GRU", direction="bidirectional", linear_before_reset=1)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "T"
    g = irf.onnx.load(model)
    assert "scan" in {n.op for n in g.nodes}
    exported = irf.onnx.to_model(g)
    ops = [n.op_type for n in exported.graph.node]
    assert ops.count("GRU") == 1 and "Scan" not in ops  # the two scans export as one bidirectional GRU
    for t in (2, 7):
        f = dict(feeds, X=np.random.default_rng(t).standard_normal((t, 3, 4)).astype(np.float32))
        want = ort_run(model, f)
        assert_close(ort_run(exported, f), want)
        assert_close(irf_run(exported, f), want)


@pytest.mark.parametrize("op,attrs", [
    ("LSTM", {"direction": "bidirectional"}),
    ("GRU", {"linear_before_reset": 1, "direction": "reverse"}),
    ("GRU", {"linear_before_reset": 0}),
    ("RNN", {}),
])
def test_gradients_match_finite_differences(op, attrs):
    model, feeds = make_model(op, T=3, B=2, I=3, H=2, seq=False, weights_as_inputs=True, dtype=np.float64,
                              peephole=False, **attrs)
    g = irf.onnx.load(model)
    names = [n for n in g.input_names]
    wrt = [n for n in names if n != "sl"]
    cts = {o: np.random.default_rng(1).standard_normal(np.asarray(v).shape)
           for o, v in zip(g.output_names, irf_run(model, feeds))}
    gg = vjp(g, wrt)
    out = Interpreter(gg).run({**feeds, **{f"ct_{o}": c for o, c in cts.items()}})
    interp = Interpreter(g)

    def loss(*args):
        res = interp.run(dict(zip(names, args)))
        return sum(float(np.sum(res[o] * c)) for o, c in cts.items())

    args = [feeds[n] for n in names]
    for name in wrt:
        fd = finite_diff(loss, args, names.index(name))
        np.testing.assert_allclose(out[f"grad_{name}"], fd, rtol=1e-5, atol=1e-7, err_msg=name)
    # the gradient graph (scans of the body's VJP) also runs on onnxruntime
    got = irf.run(gg, {**feeds, **{f"ct_{o}": c for o, c in cts.items()}}, executor="ort")
    for name in wrt:
        np.testing.assert_allclose(got[f"grad_{name}"], out[f"grad_{name}"], rtol=1e-9, atol=1e-12)


def test_bad_activation_count_is_unsupported():
    model, feeds = make_model("LSTM", activations=["Sigmoid", "Tanh"])
    with pytest.raises(irf.UnsupportedOpError, match="activations"):
        irf.onnx.load(model)
    onnx.checker.check_model(model)
