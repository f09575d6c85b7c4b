"""N-D convolution, transposed convolution and pooling (1-D, 2-D, 3-D; dilations; padding)
against loop references written here, the interpreter, onnxruntime and finite differences
(tests/ops/harness.check_op; float32 data for onnxruntime, whose CPU provider has no float64
Conv, and float64 finite differences on NumPy)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import irflow as irf
from tests.ops.harness import check_op

RNG = np.random.default_rng(0)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def ref_conv(x, w, b=None, *, strides, pads, dilations, groups):
    """Direct loops: y[n, o, p] = sum_{c in group, k} w[o, c, k] * xpad[n, c, p*s + k*d]."""
    r = x.ndim - 2
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(pads[i], pads[r + i]) for i in range(r)])
    n, c = x.shape[:2]
    o, cg = w.shape[:2]
    k = w.shape[2:]
    out = [(xp.shape[2 + i] - dilations[i] * (k[i] - 1) - 1) // strides[i] + 1 for i in range(r)]
    y = np.zeros((n, o, *out))
    og = o // groups
    for oc in range(o):
        gi = oc // og
        for p in itertools.product(*map(range, out)):
            for kk in itertools.product(*map(range, k)):
                idx = tuple(p[i] * strides[i] + kk[i] * dilations[i] for i in range(r))
                y[(slice(None), oc) + p] += np.einsum("nc,c->n", xp[(slice(None), slice(gi * cg, (gi + 1) * cg)) + idx],
                                                      w[(oc, slice(None)) + kk])
    if b is not None:
        y += b.reshape((-1,) + (1,) * r)
    return y.astype(x.dtype)


def ref_conv_transpose(x, w, b=None, *, strides, pads, output_padding, dilations, groups):
    """Scatter: each input element adds w * x at p*s + k*d of the full output, then crop."""
    r = x.ndim - 2
    n, c = x.shape[:2]
    og, k = w.shape[1], w.shape[2:]
    cg = c // groups
    full = [(x.shape[2 + i] - 1) * strides[i] + dilations[i] * (k[i] - 1) + 1 + output_padding[i] for i in range(r)]
    y = np.zeros((n, og * groups, *full))
    for ci in range(c):
        gi = ci // cg
        for p in itertools.product(*(range(s) for s in x.shape[2:])):
            for kk in itertools.product(*map(range, k)):
                idx = tuple(p[i] * strides[i] + kk[i] * dilations[i] for i in range(r))
                y[(slice(None), slice(gi * og, (gi + 1) * og)) + idx] += x[(slice(None), ci) + p][:, None] * w[(ci, slice(None)) + kk][None]
    y = y[(slice(None), slice(None)) + tuple(slice(pads[i], full[i] - pads[r + i]) for i in range(r))]
    if b is not None:
        y = y + b.reshape((-1,) + (1,) * r)
    return y.astype(x.dtype)


def ref_pool(x, *, kernel_size, strides, pads, dilations, kind):
    """Loops over windows; padding is ignored (-inf for max, not counted for the average)."""
    r = x.ndim - 2
    sizes = x.shape[2:]
    out = [(sizes[i] + pads[i] + pads[r + i] - dilations[i] * (kernel_size[i] - 1) - 1) // strides[i] + 1 for i in range(r)]
    y = np.zeros(x.shape[:2] + tuple(out))
    for p in itertools.product(*map(range, out)):
        vals = []
        for kk in itertools.product(*map(range, kernel_size)):
            idx = tuple(p[i] * strides[i] - pads[i] + kk[i] * dilations[i] for i in range(r))
            if all(0 <= idx[i] < sizes[i] for i in range(r)):
                vals.append(x[(slice(None), slice(None)) + idx].astype(np.float64))
        v = np.stack(vals)
        y[(slice(None), slice(None)) + p] = v.max(axis=0) if kind == "max" else v.mean(axis=0)
    return y.astype(x.dtype)


CONV_CASES = [
    # (x shape, w shape, attrs)
    ((2, 3, 7), (4, 3, 3), dict(strides=(2,), pads=(1, 0), dilations=(1,), groups=1)),
    ((1, 4, 6, 5), (4, 2, 3, 2), dict(strides=(1, 2), pads=(1, 0, 2, 1), dilations=(2, 1), groups=2)),
    ((2, 2, 5, 4, 6), (3, 2, 3, 2, 3), dict(strides=(1, 1, 2), pads=(1, 0, 1, 1, 1, 0), dilations=(1, 2, 1), groups=1)),
    ((1, 4, 4, 5, 3), (4, 1, 2, 3, 1), dict(strides=(2, 1, 1), pads=(0, 1, 0, 0, 1, 0), dilations=(1, 1, 1), groups=4)),
]


@pytest.mark.parametrize("xs,ws,attrs", CONV_CASES)
def test_conv_and_its_gradients(xs, ws, attrs):
    x, w, b = f32(*xs), f32(*ws) * 0.5, f32(ws[0])
    check_op("conv", [x, w, b], lambda x, w, b: ref_conv(x, w, b, **attrs), attrs, rtol=1e-5, atol=1e-5)
    check_op("conv", [x, w], lambda x, w: ref_conv(x, w, **attrs), attrs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("xs,ws,attrs", [
    ((2, 3, 4), (3, 2, 3), dict(strides=(2,), pads=(1, 0), output_padding=(1,), dilations=(1,), groups=1)),
    ((1, 4, 3, 4), (4, 1, 2, 3), dict(strides=(2, 1), pads=(0, 1, 1, 0), output_padding=(1, 0), dilations=(1, 2), groups=2)),
    ((1, 2, 3, 2, 3), (2, 3, 2, 3, 2), dict(strides=(2, 2, 1), pads=(1, 0, 0, 0, 1, 1), output_padding=(1, 0, 0),
                                            dilations=(1, 1, 2), groups=1)),
])
def test_conv_transpose_and_its_gradients(xs, ws, attrs):
    x, w, b = f32(*xs), f32(*ws) * 0.5, f32(ws[1] * attrs["groups"])
    check_op("conv_transpose", [x, w, b], lambda x, w, b: ref_conv_transpose(x, w, b, **attrs), attrs,
             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("xs,ws,attrs", CONV_CASES)
def test_conv_weight_grad_op(xs, ws, attrs):
    x, w = f32(*xs), f32(*ws)
    g = f32(*ref_conv(x, w, **attrs).shape)
    kernel = ws[2:]

    def ref(x, g):  # <dW, v> = <g, conv(x, v)> for every v: dW[o, c, k] = sum g * x-window
        dw = np.zeros(ws)
        for idx in np.ndindex(*ws):
            e = np.zeros(ws)
            e[idx] = 1.0
            dw[idx] = np.sum(g.astype(np.float64) * ref_conv(x.astype(np.float64), e, **attrs))
        return dw.astype(np.float32)

    check_op("conv_weight_grad", [x, g], ref, dict(attrs, kernel_size=tuple(kernel)), rtol=1e-4, atol=1e-4)


POOL_CASES = [
    ((2, 3, 9), dict(kernel_size=(3,), strides=(2,), pads=(1, 1), dilations=(2,))),
    ((1, 2, 6, 7), dict(kernel_size=(2, 3), strides=(2, 1), pads=(1, 0, 0, 1), dilations=(2, 2))),
    ((2, 2, 4, 5, 6), dict(kernel_size=(2, 2, 3), strides=(2, 2, 2), pads=(0, 1, 1, 0, 0, 1), dilations=(1, 1, 1))),
    ((1, 1, 5, 5, 5), dict(kernel_size=(3, 3, 3), strides=(1, 2, 2), pads=(1, 1, 1, 1, 1, 1), dilations=(1, 1, 2))),
]


@pytest.mark.parametrize("xs,attrs", POOL_CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pools_and_their_gradients(xs, attrs, kind):
    x = f32(*xs)
    check_op(f"{kind}_pool", [x], lambda x: ref_pool(x, kind=kind, **attrs), attrs)


@pytest.mark.parametrize("xs,attrs", POOL_CASES[1:3])
def test_pool_gradient_ops(xs, attrs):
    x = f32(*xs)
    y_shape = ref_pool(x, kind="max", **attrs).shape
    g = f32(*y_shape)
    check_op("max_pool_grad", [x, g], None, attrs, grad_inputs=[1])
    check_op("max_pool_pick", [x, f32(*xs)], None, attrs, grad_inputs=[1])
    check_op("avg_pool_grad", [g, x], None, attrs, grad_inputs=[0])


def test_max_pool_gradient_goes_to_first_maximum_on_ties():
    x = np.zeros((1, 1, 2, 2, 2), np.float32)
    with irf.GradientTape() as tape:
        t = irf.tensor(x)
        tape.watch(t)
        loss = irf.reduce_sum(irf.max_pool(t, 2))
    (gx,) = tape.gradient(loss, [t])
    want = np.zeros_like(x)
    want[0, 0, 0, 0, 0] = 1.0
    np.testing.assert_array_equal(gx.numpy(), want)


def test_public_functions_and_errors():
    x = np.ones((1, 2, 4, 4, 4), np.float32)
    assert irf.convolution(x, np.ones((3, 2, 3, 3, 3), np.float32), pads=1).shape == (1, 3, 4, 4, 4)
    assert irf.conv_transpose(x, np.ones((2, 1, 2, 2, 2), np.float32), strides=2).shape == (1, 1, 8, 8, 8)
    assert irf.avg_pool(x, 2, strides=1, dilations=2).shape == (1, 2, 2, 2, 2)
    with pytest.raises(irf.ShapeError, match="channels"):
        irf.convolution(x, np.ones((3, 3, 3, 3, 3), np.float32))
    with pytest.raises(irf.IRValidationError, match="strides"):
        irf.convolution(x, np.ones((3, 2, 3, 3, 3), np.float32), strides=(1, 1))
    with pytest.raises(irf.ShapeError, match="pad"):
        irf.max_pool(x, 2, pads=2)


@pytest.mark.parametrize("xs,attrs", POOL_CASES)
def test_max_pool_indices(xs, attrs):
    x = f32(*xs)
    r = x.ndim - 2
    k, s, p, d = attrs["kernel_size"], attrs["strides"], attrs["pads"], attrs["dilations"]

    def ref(x):  # flat row-major position of each window's first maximum, by loops
        out = ref_pool(x, kind="max", **attrs).shape[2:]
        res = np.zeros(x.shape[:2] + out, np.int64)
        for n, c in np.ndindex(*x.shape[:2]):
            for q in itertools.product(*map(range, out)):
                best, where = -np.inf, None
                for kk in itertools.product(*map(range, k)):
                    pos = tuple(q[i] * s[i] - p[i] + kk[i] * d[i] for i in range(r))
                    if all(0 <= pos[i] < x.shape[2 + i] for i in range(r)) and x[(n, c) + pos] > best:
                        best, where = x[(n, c) + pos], pos
                res[(n, c) + q] = np.ravel_multi_index((n, c) + where, x.shape)
        return res

    check_op("max_pool_indices", [x], ref, attrs)
