"""Signal ops (DFT, STFT, MelWeightMatrix) against hand-written NumPy (np.fft on complex
numbers, frames cut by hand), onnx's reference evaluator and onnxruntime; DFT's VJP against
finite differences in float64 (through check_op)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import irflow as irf
from irflow.autodiff.vjp import vjp
from irflow.errors import IrflowError, ShapeError
from tests.ops.harness import build_graph, check_op

RNG = np.random.default_rng(0)


def _c(x):
    return x[..., 0] + (1j * x[..., 1] if x.shape[-1] == 2 else 0)


def _pack(c):
    return np.stack([c.real, c.imag], -1)


DFT_CASES = [  # (input shape, attrs, reference on the complex view)
    ((2, 6, 1), dict(axis=1), lambda c, a: np.fft.fft(c, axis=1)),
    ((2, 5, 3, 2), dict(axis=1), lambda c, a: np.fft.fft(c, axis=1)),
    ((2, 3, 5, 2), dict(axis=2, inverse=True), lambda c, a: np.fft.ifft(c, axis=2)),
    ((2, 7, 1), dict(axis=1, onesided=True), lambda c, a: np.fft.rfft(c, axis=1)),
    ((1, 4, 3, 1), dict(axis=1, dft_length=7), lambda c, a: np.fft.fft(c, n=7, axis=1)),
    ((1, 8, 2), dict(axis=1, dft_length=5, inverse=True), lambda c, a: np.fft.ifft(c, n=5, axis=1)),
    ((2, 3, 6, 1), dict(axis=2, onesided=True, dft_length=8), lambda c, a: np.fft.rfft(c, n=8, axis=2)),
]


@pytest.mark.parametrize("shape,attrs,ref", DFT_CASES)
def test_dft(shape, attrs, ref):
    x = RNG.standard_normal(shape)
    full = dict(axis=1, inverse=False, onesided=False, dft_length=None) | attrs
    check_op("dft", [x], lambda x: _pack(ref(_c(x), full)), full, rtol=1e-10, atol=1e-10, ort_rtol=1e-6, ort_atol=1e-7)  # onnxruntime's double DFT: ~1e-8


@pytest.mark.parametrize("shape,n", [((2, 4, 3, 2), None), ((1, 5, 2), 8), ((1, 6, 2), 9), ((2, 3, 2), 3)])
def test_irfft(shape, n):
    """inverse + onesided: the real signal of length n (default 2 * (L - 1)) from L bins."""
    x = RNG.standard_normal(shape)
    attrs = dict(axis=1, inverse=True, onesided=True, dft_length=n)
    want = lambda x: np.fft.irfft(_c(x), n=n, axis=1)[..., None]
    # onnxruntime's irfft gives other values for an odd n (onnx's reference evaluator is
    # np.fft.irfft, as here): compared with onnxruntime for even n only
    check_op("dft", [x], want, attrs, rtol=1e-10, atol=1e-10, ort_rtol=1e-6, ort_atol=1e-7, ort=n is None or n % 2 == 0)


def test_dft_float32_and_vmap():
    x = RNG.standard_normal((3, 2, 8, 1)).astype(np.float32)
    f = irf.vmap(lambda v: irf.dft(v, axis=1, onesided=True))
    got = f(x).numpy()
    np.testing.assert_allclose(got, _pack(np.fft.rfft(x[..., 0].astype(np.float64), axis=2)), rtol=1e-5, atol=1e-5)


def test_dft_errors():
    with pytest.raises(ShapeError, match="last dim must be 1 .real. or 2"):
        irf.dft(np.ones((1, 4, 3), np.float32))
    with pytest.raises(ShapeError, match="axis 2 must be a signal dim"):
        irf.dft(np.ones((1, 4, 1), np.float32), axis=2)
    with pytest.raises(ShapeError, match="one-sided forward transform needs a real input"):
        irf.dft(np.ones((1, 4, 2), np.float32), onesided=True)


def _dft_model(x_shape, attrs, opset=20):
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape),
           helper.make_tensor_value_info("axis", TensorProto.INT64, [])]
    node = helper.make_node("DFT", ["x", "", "axis"], ["y"], **attrs)
    graph = helper.make_graph([node], "g", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


@pytest.mark.parametrize("attrs,axis", [({}, 1), ({}, 2), (dict(onesided=1), 2), (dict(inverse=1), -3)])
def test_dft_run_time_axis(attrs, axis):
    """Opset 20's axis input fed at run time: the op keeps it as an input, exports it as one."""
    model = _dft_model([2, 4, 6, 1] if not attrs.get("inverse") else [2, 4, 6, 2], attrs)
    x = RNG.standard_normal((2, 4, 6, 1 if not attrs.get("inverse") else 2)).astype(np.float32)
    feeds = {"x": x, "axis": np.array(axis, np.int64)}
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    c, a = _c(x.astype(np.float64)), axis % 4
    by_hand = (np.fft.ifft(c, axis=a) if attrs.get("inverse") else
               np.fft.rfft(c, axis=a) if attrs.get("onesided") else np.fft.fft(c, axis=a))
    np.testing.assert_allclose(want, _pack(by_hand), rtol=1e-4, atol=1e-5)
    g = irf.onnx.load(model)
    assert len(g.nodes) == 1 and len(g.nodes[0].inputs) == 2  # the axis stays a run-time input
    for executor in ("numpy", "ort"):
        np.testing.assert_allclose(irf.run(g, feeds, executor=executor)["y"], want, rtol=1e-4, atol=1e-5)
    with pytest.raises(IrflowError, match="needs a static axis"):
        vjp(g, wrt=["x"])


def _stft_by_hand(signal, step, window, n, onesided):
    c = _c(signal.astype(np.float64))
    frames = 1 + (c.shape[1] - n) // step
    out = np.stack([np.fft.fft(c[:, f * step:f * step + n] * (1 if window is None else window), axis=-1)
                    for f in range(frames)], axis=1)
    return _pack(out[..., : n // 2 + 1] if onesided else out)


@pytest.mark.parametrize("last,window,frame_length,onesided", [
    (1, True, None, True), (1, False, 6, True), (2, True, None, False), (1, True, 8, False),
])
def test_stft(last, window, frame_length, onesided):
    signal = RNG.standard_normal((2, 30, last))
    step = np.array(4, np.int64)
    win = np.hanning(8) if window else None
    n = frame_length or (8 if window else 30)
    fl = None if frame_length is None else np.array(frame_length, np.int64)
    want = _stft_by_hand(signal, 4, win, n, onesided)
    got = irf.stft(signal, step, win, fl, onesided=onesided).numpy()  # eager
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    # frames (and bins, without a window) come from run-time scalars: the type says None there
    inputs = [signal, step, win, fl]
    g = build_graph("stft", inputs, dict(onesided=onesided))
    t = g.outputs[0].type
    assert t.shape[0] == 2 and t.shape[1] is None and t.shape[2] in (None, want.shape[2])
    feeds = {f"in{i}": a for i, a in enumerate(inputs) if a is not None}
    np.testing.assert_array_equal(irf.run(g, feeds)[g.output_names[0]], got)
    np.testing.assert_allclose(irf.run(g, feeds, executor="ort")[g.output_names[0]], want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bins,n,rate,lo,hi", [(8, 16, 8192, 0.0, 4096.0), (5, 64, 16000, 100.0, 6000.0),
                                              (10, 32, 22050, 20.0, 11025.0)])
def test_mel_weight_matrix(bins, n, rate, lo, hi):
    ins = [("num_mel_bins", np.array(bins, np.int64)), ("dft_length", np.array(n, np.int64)),
           ("sample_rate", np.array(rate, np.int64)), ("lower_edge_hertz", np.array(lo, np.float32)),
           ("upper_edge_hertz", np.array(hi, np.float32))]
    vis = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), []) for k, v in ins]
    node = helper.make_node("MelWeightMatrix", [k for k, _ in ins], ["y"])
    graph = helper.make_graph([node], "g", vis, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    feeds = dict(ins)
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    assert want.shape == (n // 2 + 1, bins)
    # each filter is a triangle: rises to exactly 1 at its center, nowhere negative or above 1
    assert np.all(want >= 0) and np.all(want <= 1) and np.all(want.max(axis=0) == 1)
    ort_want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(ort_want, want, rtol=1e-5, atol=1e-6)
    g = irf.onnx.load(model)
    for executor in ("numpy", "ort"):
        np.testing.assert_allclose(irf.run(g, feeds, executor=executor)["y"], want, rtol=1e-5, atol=1e-6)
