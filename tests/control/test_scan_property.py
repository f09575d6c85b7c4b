"""Property test: scan of an affine recurrence against a NumPy loop, forward and reverse,
on NumPy and onnxruntime, for random lengths and widths (one exported model per width)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import irflow as irf
from tests.control.helpers import np_run, ort_run, ort_session

_SESSIONS: dict = {}


def _graph(width: int, reverse: bool):
    key = (width, reverse)
    if key not in _SESSIONS:
        def f(xs, a, c0):
            return irf.scan(lambda c, x: (c * a + x, c - x), c0, xs, reverse=reverse)

        g = irf.function(f).get_graph(irf.TensorSpec(("T", width), "float64"), irf.TensorSpec((width,), "float64"),
                                      irf.TensorSpec((width,), "float64"))
        _SESSIONS[key] = (g, ort_session(g))
    return _SESSIONS[key]


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 12), width=st.integers(1, 3), reverse=st.booleans(), seed=st.integers(0, 2**16))
def test_affine_scan_matches_numpy(T, width, reverse, seed):
    rng = np.random.default_rng(seed)
    xs, a, c0 = rng.standard_normal((T, width)), rng.uniform(-1, 1, width), rng.standard_normal(width)
    c, ys = c0.copy(), np.zeros((T, width))
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        ys[t] = c - xs[t]
        c = c * a + xs[t]
    g, sess = _graph(width, reverse)
    for got_c, got_ys in (np_run(g, [xs, a, c0]), ort_run(sess, g, [xs, a, c0])):
        np.testing.assert_allclose(got_c, c, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got_ys, ys, rtol=1e-12, atol=1e-12)
