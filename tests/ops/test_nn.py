"""The nn ops: softmax, log_softmax, conv2d, conv_transpose2d, pools, layer_norm, batch_norm,
dropout, and the internal gradient ops (conv2d_weight_grad, max_pool2d_grad/pick,
avg_pool2d_grad).

Each op goes through ``check_op`` (hand-written loop references from ``nn_reference``, the
type rule, the interpreter, onnxruntime, finite differences). On top: PyTorch cross-checks of
forward and gradients in float64, second-order gradients against finite differences of the
gradient graph, gradient graphs exported to onnxruntime, symbolic shapes, and errors.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner
from tests.ops import nn_reference as ref
from tests.ops.harness import check_op

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


CONV_ORT = dict(ort_rtol=1e-4, ort_atol=1e-4, rtol=1e-5, atol=1e-5)

# (x shape, weight shape, attrs): groups, strides, dilations, asymmetric pads, "same", 1x1.
CONV_CASES = [
    ((2, 3, 6, 5), (4, 3, 3, 3), dict(strides=(1, 1), padding=(1, 1, 1, 1), dilations=(1, 1), groups=1)),
    ((2, 4, 7, 6), (6, 2, 3, 2), dict(strides=(2, 1), padding=(1, 0, 2, 1), dilations=(1, 2), groups=2)),
    ((1, 4, 7, 8), (4, 1, 3, 3), dict(strides=(2, 3), padding="same", dilations=(1, 1), groups=4)),
    ((2, 2, 6, 6), (3, 2, 3, 3), dict(strides=(1, 1), padding="same", dilations=(2, 1), groups=1)),
    ((2, 3, 4, 5), (5, 3, 1, 1), dict(strides=(1, 1), padding=(0, 0, 0, 0), dilations=(1, 1), groups=1)),
]


def conv_ids(cases):
    return [f"{x}x{w}-{a['strides']}-{a['padding']}-g{a['groups']}" for x, w, a in cases]


# -- conv2d -----------------------------------------------------------------------------------

@pytest.mark.parametrize("xs,ws,attrs", CONV_CASES, ids=conv_ids(CONV_CASES))
def test_conv2d_matches_loop_reference(xs, ws, attrs):
    x, w, b = randn(*xs), randn(*ws), randn(ws[0])
    check_op("conv2d", [x, w, b], lambda x, w, b: ref.conv2d(x, w, b, **attrs), attrs, **CONV_ORT)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_conv2d_and_transpose_random_geometry(data):
    """Random strides, dilations, asymmetric pads, groups and sizes (down to a 1x1 output)."""
    d = data.draw
    groups = d(st.sampled_from([1, 2]))
    cg, og = d(st.integers(1, 2)), d(st.integers(1, 2))
    k = (d(st.integers(1, 3)), d(st.integers(1, 3)))
    strides, dilations = (d(st.integers(1, 3)), d(st.integers(1, 3))), (d(st.integers(1, 2)), d(st.integers(1, 2)))
    pads = tuple(d(st.integers(0, 2)) for _ in range(4))
    reach = [dl * (kk - 1) + 1 for kk, dl in zip(k, dilations)]
    hw = [d(st.integers(max(1, r - pads[i] - pads[i + 2]), r + 4)) for i, r in enumerate(reach)]
    x, w = randn(2, cg * groups, *hw), randn(og * groups, cg, *k)
    attrs = dict(strides=strides, padding=pads, dilations=dilations, groups=groups)
    (y,) = check_op("conv2d", [x, w], lambda x, w: ref.conv2d(x, w, **attrs), attrs, **CONV_ORT)
    # conv_transpose2d maps y's shape back to x's with the right output_padding
    out_pad = tuple((hw[i] + pads[i] + pads[i + 2] - reach[i]) % strides[i] for i in range(2))
    t_attrs = dict(attrs, output_padding=out_pad)
    (back,) = check_op("conv_transpose2d", [y, w], lambda y, w: ref.conv_transpose2d(y, w, **t_attrs), t_attrs,
                       **CONV_ORT)
    assert back.shape == x.shape


def test_conv2d_without_bias_and_public_function_normalizes_attrs():
    x, w = randn(2, 3, 5, 5), randn(4, 3, 3, 3)
    check_op("conv2d", [x, w], lambda x, w: ref.conv2d(x, w, padding=(1, 2, 1, 2)),
             dict(strides=(1, 1), padding=(1, 2, 1, 2), dilations=(1, 1), groups=1), **CONV_ORT)
    got = irf.conv2d(irf.tensor(x), irf.tensor(w), padding=(1, 2)).numpy()  # (h, w) pair
    np.testing.assert_allclose(got, ref.conv2d(x, w, padding=(1, 2, 1, 2)), rtol=1e-5, atol=1e-5)
    valid = irf.conv2d(x, w, strides=2, padding="valid").numpy()
    np.testing.assert_allclose(valid, ref.conv2d(x, w, strides=(2, 2)), rtol=1e-5, atol=1e-5)


def test_conv2d_float16_keeps_dtype():
    x, w = randn(1, 2, 5, 5, dtype=np.float16), randn(3, 2, 3, 3, dtype=np.float16)
    attrs = dict(strides=(1, 1), padding=(1, 1, 1, 1), dilations=(1, 1), groups=1)
    want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), padding=(1, 1, 1, 1)).astype(np.float16)
    check_op("conv2d", [x, w], lambda x, w: want, attrs, rtol=1e-2, atol=1e-2, ort_rtol=1e-2, ort_atol=1e-2)


# -- conv_transpose2d -------------------------------------------------------------------------

CONVT_CASES = [
    ((2, 4, 5, 6), (4, 3, 3, 2), dict(strides=(1, 1), padding=(0, 0, 0, 0), output_padding=(0, 0),
                                      dilations=(1, 1), groups=1)),
    ((2, 4, 3, 4), (4, 3, 3, 2), dict(strides=(2, 3), padding=(1, 0, 2, 1), output_padding=(1, 2),
                                      dilations=(2, 1), groups=2)),
    ((1, 3, 4, 4), (3, 2, 2, 2), dict(strides=(2, 2), padding=(0, 0, 0, 0), output_padding=(0, 0),
                                      dilations=(1, 1), groups=1)),
    # stride 1, grouped and dilated: the row-padded, tap-major path
    ((2, 6, 5, 7), (6, 2, 3, 2), dict(strides=(1, 1), padding=(0, 1, 2, 0), output_padding=(0, 0),
                                      dilations=(2, 1), groups=3)),
]


@pytest.mark.parametrize("xs,ws,attrs", CONVT_CASES, ids=conv_ids(CONVT_CASES))
def test_conv_transpose2d_matches_scatter_reference(xs, ws, attrs):
    x, w, b = randn(*xs), randn(*ws), randn(ws[1] * attrs["groups"])
    check_op("conv_transpose2d", [x, w, b], lambda x, w, b: ref.conv_transpose2d(x, w, b, **attrs), attrs, **CONV_ORT)


@pytest.mark.parametrize("xs,ws,attrs", CONV_CASES[:4], ids=conv_ids(CONV_CASES[:4]))
def test_conv2d_weight_grad_op(xs, ws, attrs):
    """The internal weight-gradient op on its own: loop reference, ORT lowering, its VJP."""
    x = randn(*xs)
    y = irf.conv2d(x, randn(*ws), strides=attrs["strides"], padding=attrs["padding"], dilations=attrs["dilations"],
                   groups=attrs["groups"]).numpy()
    g = randn(*y.shape)
    full = dict(attrs, kernel_size=ws[2:])
    check_op("conv2d_weight_grad", [x, g], lambda x, g: ref.conv2d_weight_grad(x, g, **full), full, **CONV_ORT)


@pytest.mark.parametrize("attrs", [
    dict(strides=(1, 1), padding=(1, 1, 1, 1), dilations=(1, 1), groups=1),
    dict(strides=(1, 1), padding=(0, 2, 1, 0), dilations=(2, 1), groups=1),
    dict(strides=(1, 1), padding=(0, 0, 0, 0), dilations=(1, 1), groups=1),
], ids=["same", "asym_pads_dilated", "valid"])
def test_conv2d_weight_grad_by_taps_matches_the_loop_reference(attrs):
    """From 8 input channels, stride 1: the per-tap GEMM path on views of the padded input."""
    x, w = randn(2, 9, 7, 6), randn(5, 9, 3, 2)
    y = irf.conv2d(x, w, **attrs).numpy()
    g = randn(*y.shape)
    full = dict(attrs, kernel_size=(3, 2))
    check_op("conv2d_weight_grad", [x, g], lambda x, g: ref.conv2d_weight_grad(x, g, **full), full, **CONV_ORT)


# -- pooling --------------------------------------------------------------------------------

POOL_CASES = [
    dict(kernel_size=(2, 2), strides=(2, 2), padding=(0, 0, 0, 0)),
    dict(kernel_size=(3, 3), strides=(2, 1), padding=(1, 1, 1, 1)),
    dict(kernel_size=(3, 2), strides=(2, 2), padding="same"),
    dict(kernel_size=(2, 3), strides=(1, 2), padding=(1, 0, 0, 2)),
]


@pytest.mark.parametrize("attrs", POOL_CASES, ids=str)
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pools_match_loop_reference(op, attrs):
    x = randn(2, 3, 7, 8)
    check_op(op, [x], lambda x: getattr(ref, op)(x, **attrs), attrs)


@pytest.mark.parametrize("attrs", POOL_CASES[:3], ids=str)
def test_pool_gradient_ops(attrs):
    x = randn(2, 3, 7, 8)
    g = randn(*ref.max_pool2d(x, **attrs).shape)
    check_op("max_pool2d_grad", [x, g], lambda x, g: ref.max_pool2d_grad(x, g, **attrs), attrs)
    check_op("max_pool2d_pick", [x, randn(*x.shape)], lambda x, y: ref.max_pool2d_pick(x, y, **attrs), attrs)
    check_op("avg_pool2d_grad", [g, x], lambda g, x: ref.avg_pool2d_grad(g, x, **attrs), attrs)


def test_max_pool2d_grad_exact_tiling_with_ties():
    """2x2/2 windows tiling x (the kernel's fast path), after a ReLU: many all-zero windows."""
    x = np.maximum(randn(2, 3, 8, 6), 0)
    attrs = dict(kernel_size=(2, 2), strides=(2, 2), padding=(0, 0, 0, 0))
    g = randn(2, 3, 4, 3)
    # finite differences in x are meaningless at ties (the routing jumps): check the g side only
    check_op("max_pool2d_grad", [x, g], lambda x, g: ref.max_pool2d_grad(x, g, **attrs), attrs, grad_inputs=[1])


def test_pool_public_functions_default_strides_to_kernel():
    # float64: the rtol=1e-6 comparison below must not depend on float32 rounding of values
    # near zero (the module-level rng hands each test different data depending on test order)
    x = randn(1, 2, 6, 6, dtype=np.float64)
    np.testing.assert_array_equal(irf.max_pool2d(x, 3).numpy(), ref.max_pool2d(x, (3, 3), (3, 3)))
    np.testing.assert_allclose(irf.avg_pool2d(x, 2, padding=1).numpy(),
                               ref.avg_pool2d(x, (2, 2), (2, 2), (1, 1, 1, 1)), rtol=1e-6)


def test_max_pool2d_gradient_goes_to_first_maximum_on_ties():
    x = np.zeros((1, 1, 2, 2), np.float32)  # all tied: the top-left element wins, as PyTorch
    b = irf.GraphBuilder("g")
    xin = b.input("x", "float32", x.shape)
    with b:
        b.output(irf.max_pool2d(xin, 2))
    grad = Interpreter(vjp(b.build(), wrt=["x"], seed="ones")).run({"x": x})["grad_x"]
    np.testing.assert_array_equal(grad, [[[[1, 0], [0, 0]]]])


# -- softmax, log_softmax ---------------------------------------------------------------------

def softmax_ref(x, axis):
    z = x.astype(np.float64) - x.max(axis=axis, keepdims=True)
    return (np.exp(z) / np.exp(z).sum(axis=axis, keepdims=True)).astype(x.dtype)


def log_softmax_ref(x, axis):
    z = x.astype(np.float64) - x.max(axis=axis, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=axis, keepdims=True))).astype(x.dtype)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), data=st.data())
def test_softmax_and_log_softmax_any_axis(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = randn(*shape) * 3
    check_op("softmax", [x], lambda x: softmax_ref(x, axis), {"axis": axis})
    check_op("log_softmax", [x], lambda x: log_softmax_ref(x, axis), {"axis": axis})


def test_softmax_is_stable_for_large_inputs():
    x = np.array([[1000.0, 1001.0, -1000.0]], np.float32)
    np.testing.assert_allclose(irf.softmax(x).numpy(), softmax_ref(x, -1), rtol=1e-6)
    np.testing.assert_allclose(irf.log_softmax(x, axis=1).numpy(), [[-1.3132616, -0.3132617, -2001.3132]], rtol=1e-6)
    assert np.isfinite(irf.log_softmax(x).numpy()).all()


# -- layer_norm, batch_norm -------------------------------------------------------------------

def layer_norm_ref(x, scale=None, bias=None, axis=-1, epsilon=1e-5):
    axes = tuple(range(axis % x.ndim, x.ndim))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x64 - mean) / np.sqrt(var + epsilon)
    y = y * scale if scale is not None else y
    y = y + bias if bias is not None else y
    return y.astype(x.dtype)


@pytest.mark.parametrize("axis,params", [(-1, "both"), (1, "both"), (0, "scale"), (-1, "none"), (2, "bias")])
def test_layer_norm(axis, params):
    x = randn(3, 4, 5) * 2 + 1
    norm = x.shape[axis % 3:]
    scale = randn(*norm) if params in ("both", "scale") else None
    bias = randn(*norm) if params in ("both", "bias") else None
    inputs = [x, scale, bias] if bias is not None else ([x, scale] if scale is not None else [x])
    attrs = {"axis": axis, "epsilon": 1e-5}
    check_op("layer_norm", inputs, lambda *a: layer_norm_ref(*a, axis=axis), attrs, rtol=1e-5, atol=1e-5,
             ort_atol=1e-4, ort_rtol=1e-4)


def batch_norm_ref(x, scale, bias, mean, var, epsilon=1e-5):
    shape = (-1,) + (1,) * (x.ndim - 2)
    r = lambda p: p.astype(np.float64).reshape(shape)  # noqa: E731
    return ((x - r(mean)) / np.sqrt(r(var) + epsilon) * r(scale) + r(bias)).astype(x.dtype)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5)])
def test_batch_norm(shape):
    c = shape[1]
    inputs = [randn(*shape), randn(c), randn(c), randn(c), np.abs(randn(c)) + 0.5]
    check_op("batch_norm", inputs, lambda *a: batch_norm_ref(*a, epsilon=1e-3), {"epsilon": 1e-3}, rtol=1e-5, atol=1e-5, ort_atol=1e-4)


# -- dropout --------------------------------------------------------------------------------

def test_dropout_not_training_is_identity():
    x = randn(4, 5)
    check_op("dropout", [x], lambda x: x, {"rate": 0.5, "seed": 1, "training": False})
    np.testing.assert_array_equal(irf.dropout(x, 0.9, seed=3, training=False).numpy(), x)


def test_dropout_mask_is_a_function_of_seed_and_shape():
    x = randn(6, 7)
    attrs = {"rate": 0.3, "seed": 11, "training": True}

    def want(x):  # the documented mask: PCG64 uniforms from the seed, kept where >= rate
        keep = np.random.default_rng(11).random(x.shape) >= 0.3
        return np.where(keep, x * np.float32(1 / 0.7), 0).astype(np.float32)

    check_op("dropout", [x], want, attrs, ort=False)  # the gradient check runs too (same mask)
    a, b = irf.dropout(x, 0.3, seed=11).numpy(), irf.dropout(x, 0.3, seed=12).numpy()
    np.testing.assert_array_equal(a, irf.dropout(x, 0.3, seed=11).numpy())
    assert not np.array_equal(a == 0, b == 0)


def test_dropout_drops_the_expected_fraction():
    y = irf.dropout(np.ones((200, 500), np.float32), rate=0.25, seed=5).numpy()
    assert abs((y == 0).mean() - 0.25) < 0.01
    np.testing.assert_allclose(y[y != 0], np.float32(1 / 0.75))


def test_dropout_on_onnxruntime_same_distribution_and_gradient_mask():
    """ORT draws its own mask (other bits): check the statistics, and that the gradient graph
    reuses the forward mask within one run."""
    b = irf.GraphBuilder("drop")
    x = b.input("x", "float32", (400, 250))
    with b:
        b.output(irf.dropout(x, rate=0.4, seed=3))
    gg = vjp(b.build(), wrt=["x"])
    ones = np.ones((400, 250), np.float32)
    runner = OrtRunner(gg)
    outs = runner.run({"x": ones, gg.inputs[1].name: ones})
    y, grad = outs[gg.outputs[0].name], outs["grad_x"]
    assert abs((y == 0).mean() - 0.4) < 0.01
    np.testing.assert_allclose(y[y != 0], np.float32(1 / 0.6), rtol=1e-6)
    np.testing.assert_array_equal(grad, y)  # d(dropout)/dx * 1 = the same mask and scale


# -- PyTorch cross-checks (float64, forward and gradients) ------------------------------------

def _irflow_value_and_grads(fn, arrays, ct):
    b = irf.GraphBuilder("f")
    ins = [b.input(f"in{i}", "float64", a.shape) for i, a in enumerate(arrays)]
    with b:
        b.output(fn(*ins))
    g = b.build(verify=True)
    gg = vjp(g, wrt=[f"in{i}" for i in range(len(arrays))]).verify()
    feeds = {f"in{i}": a for i, a in enumerate(arrays)}
    feeds[gg.inputs[len(arrays)].name] = ct
    outs = Interpreter(gg).run(feeds)
    return outs[g.outputs[0].name], [outs[f"grad_in{i}"] for i in range(len(arrays))]


TORCH_CASES = [
    ("conv2d", [(2, 4, 7, 6), (6, 2, 3, 2), (6,)],
     lambda x, w, b: irf.conv2d(x, w, b, strides=(2, 1), padding=(1, 0, 2, 1), dilations=(1, 2), groups=2),
     lambda F, x, w, b: F.conv2d(F.pad(x, (0, 1, 1, 2)), w, b, stride=(2, 1), dilation=(1, 2), groups=2)),
    ("conv2d_same", [(2, 3, 6, 7), (4, 3, 3, 4)],
     lambda x, w: irf.conv2d(x, w, padding="same", dilations=(1, 2)),
     lambda F, x, w: F.conv2d(x, w, padding="same", dilation=(1, 2))),
    ("conv_transpose2d", [(2, 4, 3, 4), (4, 3, 3, 2), (6,)],
     lambda x, w, b: irf.conv_transpose2d(x, w, b, strides=(2, 3), padding=(1, 2), output_padding=(1, 2), groups=2),
     lambda F, x, w, b: F.conv_transpose2d(x, w, b, stride=(2, 3), padding=(1, 2), output_padding=(1, 2), groups=2)),
    ("max_pool2d", [(2, 3, 7, 8)], lambda x: irf.max_pool2d(x, 3, strides=(2, 1), padding=1),
     lambda F, x: F.max_pool2d(x, 3, stride=(2, 1), padding=1)),
    ("avg_pool2d", [(2, 3, 7, 8)], lambda x: irf.avg_pool2d(x, (3, 2), strides=2, padding=1),
     lambda F, x: F.avg_pool2d(x, (3, 2), stride=2, padding=1, count_include_pad=False)),
    ("layer_norm", [(3, 4, 5), (4, 5), (4, 5)], lambda x, s, b: irf.layer_norm(x, s, b, axis=1),
     lambda F, x, s, b: F.layer_norm(x, (4, 5), s, b, eps=1e-5)),
    ("batch_norm", [(2, 3, 4, 5), (3,), (3,), (3,), (3,)], lambda x, s, b, m, v: irf.batch_norm(x, s, b, m, v),
     # F.batch_norm does not differentiate the running statistics: write it out in torch ops
     # (test_batch_norm_matches_torch_functional checks F.batch_norm itself).
     lambda F, x, s, b, m, v: (x - m[:, None, None]) / (v[:, None, None] + 1e-5).sqrt() * s[:, None, None]
     + b[:, None, None]),
    ("softmax", [(3, 5)], lambda x: irf.softmax(x, axis=0), lambda F, x: F.softmax(x, dim=0)),
    ("log_softmax", [(3, 5)], lambda x: irf.log_softmax(x), lambda F, x: F.log_softmax(x, dim=-1)),
]


@pytest.mark.parametrize("name,shapes,fn,torch_fn", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_against_pytorch_forward_and_gradients(name, shapes, fn, torch_fn):
    torch = pytest.importorskip("torch", reason="PyTorch cross-checks need torch")
    F = torch.nn.functional
    arrays = [randn(*s, dtype=np.float64) for s in shapes]
    if name == "batch_norm":
        arrays[4] = np.abs(arrays[4]) + 0.5  # a variance
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    want = torch_fn(F, *ts)
    ct = randn(*want.shape, dtype=np.float64)
    want.backward(torch.tensor(ct))
    got, grads = _irflow_value_and_grads(fn, arrays, ct)
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-10)
    for i, (g, t) in enumerate(zip(grads, ts)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-9, atol=1e-9, err_msg=f"{name}: gradient of input {i}")


def test_batch_norm_matches_torch_functional():
    torch = pytest.importorskip("torch", reason="PyTorch cross-checks need torch")
    x, s, b, m = (randn(*shape, dtype=np.float64) for shape in [(2, 3, 4, 5), (3,), (3,), (3,)])
    v = np.abs(randn(3, dtype=np.float64)) + 0.5
    tx, ts, tb = (torch.tensor(a, requires_grad=True) for a in (x, s, b))
    want = torch.nn.functional.batch_norm(tx, torch.tensor(m), torch.tensor(v), ts, tb, training=False, eps=1e-5)
    ct = randn(*want.shape, dtype=np.float64)
    want.backward(torch.tensor(ct))
    got, grads = _irflow_value_and_grads(irf.batch_norm, [x, s, b, m, v], ct)
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-10)
    for g, t in zip(grads, (tx, ts, tb)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-9, atol=1e-9)


# -- second order and gradient export ---------------------------------------------------------

def _grad_graph(fn, arrays, dtype):
    """Graph of fn and its first-order gradient graph (cotangent input ``ct``)."""
    b = irf.GraphBuilder("f")
    ins = [b.input(f"in{i}", dtype, a.shape) for i, a in enumerate(arrays)]
    with b:
        b.output(fn(*ins), names=["y"])
    return vjp(b.build(), wrt=[f"in{i}" for i in range(len(arrays))]).verify()


SECOND_ORDER_CASES = {
    "conv2d": ([(2, 4, 5, 6), (4, 2, 3, 2), (4,)],
               lambda x, w, b: irf.conv2d(x, w, b, strides=(2, 1), padding=(1, 0, 1, 1), groups=2)),
    "conv2d_same_stride2": ([(1, 2, 5, 5), (3, 2, 3, 3)], lambda x, w: irf.conv2d(x, w, strides=2, padding="same")),
    "conv_transpose2d": ([(1, 2, 3, 3), (2, 3, 2, 2)], lambda x, w: irf.conv_transpose2d(x, w, strides=2, padding=1)),
    "max_pool2d": ([(1, 2, 5, 6)], lambda x: irf.max_pool2d(x, 3, strides=2, padding=1) * irf.max_pool2d(x, 3, strides=2, padding=1)),
    "avg_pool2d": ([(1, 2, 5, 6)], lambda x: irf.avg_pool2d(x, 2, strides=1) * irf.avg_pool2d(x, 2, strides=1)),
}


@pytest.mark.parametrize("name", list(SECOND_ORDER_CASES))
def test_second_order_against_finite_differences(name):
    """Differentiate the gradient graph again (wrt the inputs and the cotangent) and compare
    a directional derivative of <u, gradients> with central differences."""
    shapes, fn = SECOND_ORDER_CASES[name]
    arrays = [randn(*s, dtype=np.float64) for s in shapes]
    gg = _grad_graph(fn, arrays, "float64")
    wrt = [v.name for v in gg.inputs]  # in0.., ct_y
    grad_names = [v.name for v in gg.outputs[1:]]
    ggg = vjp(gg, wrt=wrt, outputs=grad_names).verify()
    feeds = {f"in{i}": a for i, a in enumerate(arrays)}
    feeds["ct_y"] = randn(*gg.outputs[0].type.shape, dtype=np.float64)
    us = {n: randn(*v.type.shape, dtype=np.float64) for n, v in zip(grad_names, gg.outputs[1:])}
    second = Interpreter(ggg).run({**feeds, **{f"ct_{n}": u for n, u in us.items()}})
    direction = {n: randn(*feeds[n].shape, dtype=np.float64) for n in wrt}
    first = Interpreter(gg)

    def inner(t):
        outs = first.run({n: feeds[n] + t * direction[n] for n in wrt})
        return sum(float(np.sum(us[n] * outs[n])) for n in grad_names)

    eps = 1e-6
    fd = (inner(eps) - inner(-eps)) / (2 * eps)
    # ggg's outputs: gg's outputs, then one gradient per wrt name (renamed where names clash)
    second_names = [v.name for v in ggg.outputs[len(gg.outputs):]]
    analytic = sum(float(np.sum(second[s] * direction[n])) for s, n in zip(second_names, wrt))
    assert abs(fd - analytic) <= 1e-6 + 1e-5 * abs(fd), f"{name}: second order {analytic} vs finite differences {fd}"


@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "layer_norm",
                                  "batch_norm", "softmax", "log_softmax"])
def test_gradient_graphs_export_to_onnxruntime(name):
    """Gradients are IR made of lowerable ops: the float32 gradient graph (and for the conv and
    pool ops, the second-order graph) runs on onnxruntime with the interpreter's results."""
    case = next(c for c in TORCH_CASES if c[0] == name)
    arrays = [randn(*s) for s in case[1]]
    if name == "batch_norm":
        arrays[4] = np.abs(arrays[4]) + 0.5
    graphs = [_grad_graph(case[2], arrays, "float32")]
    if name in ("conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d"):
        graphs.append(vjp(graphs[0], wrt=["in0", "ct_y"], outputs=["grad_in0"]).verify())
    for gg in graphs:
        feeds = {v.name: randn(*v.type.shape) for v in gg.inputs}
        feeds.update({f"in{i}": a for i, a in enumerate(arrays)})
        want = Interpreter(gg).run(feeds)
        got = OrtRunner(gg).run(feeds)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-4, err_msg=f"{name}: {k}")


# -- symbolic shapes --------------------------------------------------------------------------

def test_conv_type_rule_keeps_symbols_and_runs_any_batch():
    b = irf.GraphBuilder("cnn")
    x = b.input("x", "float32", ("batch", 3, "h", "w"))
    with b:
        same = irf.conv2d(x, randn(4, 3, 3, 3), padding="same")
        explicit = irf.conv2d(x, randn(4, 3, 3, 3), padding=1)
        strided = irf.conv2d(x, randn(4, 3, 3, 3), strides=2, padding="same")
        pooled = irf.max_pool2d(same, 2)
    assert same.shape == ("batch", 4, "h", "w") and explicit.shape == ("batch", 4, "h", "w")
    assert strided.shape == ("batch", 4, None, None) and pooled.shape == ("batch", 4, None, None)

    b = irf.GraphBuilder("cnn_grad")
    x = b.input("x", "float32", ("batch", 3, 8, 8))
    w = b.input("w", "float32", (4, 3, 3, 3))
    with b:
        b.output(irf.avg_pool2d(irf.max_pool2d(irf.conv2d(x, w, strides=2, padding="same"), 2, strides=1), 2), names=["y"])
    gg = vjp(b.build(), wrt=["x", "w"]).verify()
    runner = OrtRunner(gg)
    for batch in (1, 3):
        feeds = {"x": randn(batch, 3, 8, 8), "w": randn(4, 3, 3, 3), "ct_y": randn(batch, 4, 1, 1)}
        want = Interpreter(gg).run(feeds)
        got = runner.run(feeds)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5)


def test_symbolic_spatial_sizes_on_onnxruntime():
    """"same" with stride 2 on unknown H, W exports as auto_pad=SAME_UPPER; layer_norm without
    a scale over a symbolic axis builds its ones at run time."""
    b = irf.GraphBuilder("sym")
    x = b.input("x", "float32", ("n", 2, "h", "w"))
    t = b.input("t", "float32", (3, "d"))
    with b:
        b.output(irf.conv2d(x, randn(3, 2, 3, 3), strides=2, padding="same", dilations=2), names=["y"])
        b.output(irf.max_pool2d(x, 3, strides=2, padding="same"), names=["p"])
        b.output(irf.layer_norm(t), names=["ln"])
    g = b.build(verify=True)
    runner = OrtRunner(g)
    for shape, d in [((1, 2, 7, 9), 5), ((2, 2, 8, 5), 2)]:
        feeds = {"x": randn(*shape), "t": randn(3, d)}
        want, got = Interpreter(g).run(feeds), runner.run(feeds)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(want["y"], ref.conv2d(feeds["x"], g.initializers[g.nodes[0].inputs[1]],
                                                     strides=(2, 2), padding="same", dilations=(2, 2)),
                               rtol=1e-5, atol=1e-5)


# -- errors ---------------------------------------------------------------------------------

def test_conv_channel_mismatch():
    x, w = randn(1, 3, 5, 5), randn(4, 2, 3, 3)
    with pytest.raises(irf.ShapeError, match=r"conv2d.*3 channels.*expects 2"):
        irf.conv2d(x, w)
    b = irf.GraphBuilder("g")
    xs = b.input("x", "float32", (1, 3, 5, 5))
    with b, pytest.raises(irf.ShapeError, match=r"conv2d \(node conv2d_\d+\).*3 channels"):
        irf.conv2d(xs, w)


def test_conv_groups_must_divide_channels():
    with pytest.raises(irf.ShapeError, match=r"conv2d.*groups=4 does not divide the 6 input channels"):
        irf.conv2d(randn(1, 6, 5, 5), randn(4, 3, 3, 3), groups=4)
    with pytest.raises(irf.ShapeError, match=r"conv_transpose2d.*groups=2 does not divide the 3 input channels"):
        irf.conv_transpose2d(randn(1, 3, 5, 5), randn(3, 2, 3, 3), groups=2)


def test_bad_padding_string():
    with pytest.raises(irf.IRValidationError, match=r"conv2d: padding must be 'same', 'valid'.*got 'full'"):
        irf.conv2d(randn(1, 2, 5, 5), randn(2, 2, 3, 3), padding="full")
    with pytest.raises(irf.IRValidationError, match=r"max_pool2d: padding"):
        irf.max_pool2d(randn(1, 2, 5, 5), 2, padding="SAME-ish")
    with pytest.raises(irf.IRValidationError, match=r"conv2d: padding must be 'same' or four ints"):
        irf.bind("conv2d", randn(1, 2, 5, 5), randn(2, 2, 3, 3), padding="full")
    with pytest.raises(irf.IRValidationError, match=r"conv_transpose2d: padding 'same' is not supported"):
        irf.conv_transpose2d(randn(1, 2, 5, 5), randn(2, 2, 3, 3), padding="same")


def test_other_attribute_and_shape_errors():
    x = randn(1, 2, 5, 5)
    with pytest.raises(irf.IRValidationError, match=r"conv2d: strides must be"):
        irf.conv2d(x, randn(2, 2, 3, 3), strides=0)
    with pytest.raises(irf.ShapeError, match=r"conv2d.*output would be empty"):
        irf.conv2d(x, randn(2, 2, 7, 7))
    with pytest.raises(irf.DTypeError, match=r"conv2d: inputs must share one float dtype"):
        irf.conv2d(x, randn(2, 2, 3, 3, dtype=np.float64))
    with pytest.raises(irf.IRValidationError, match=r"conv_transpose2d: output_padding .* smaller than strides"):
        irf.conv_transpose2d(x, randn(2, 2, 3, 3), strides=2, output_padding=2)
    with pytest.raises(irf.ShapeError, match=r"max_pool2d: each pad must be smaller than the kernel"):
        irf.max_pool2d(x, 2, padding=2)
    with pytest.raises(irf.ShapeError, match=r"layer_norm.*scale must have the normalized shape"):
        irf.layer_norm(randn(2, 3, 4), randn(3, 4))
    with pytest.raises(irf.ShapeError, match=r"batch_norm.*var must have shape \(2,\)"):
        irf.batch_norm(x, randn(2), randn(2), randn(2), randn(3))
    with pytest.raises(irf.IRValidationError, match=r"dropout: rate must be a float in \[0, 1\)"):
        irf.dropout(x, rate=1.0)
    with pytest.raises(irf.DTypeError, match=r"softmax takes float tensors"):
        irf.softmax(np.arange(3))
    with pytest.raises(irf.ShapeError, match=r"softmax: axis 2 is out of range"):
        irf.softmax(randn(2, 3), axis=2)
