"""vmap over segment reductions in real programs: a ragged computation (values + row_splits) per
example, vmapped with shared and with per-example row_splits, traced with a None batch dim,
exported to ONNX and checked on onnxruntime against NumPy loops written here; and per-example
gradients through segment_max under vmap against finite differences (float64)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import irflow as irf
from irflow.executors.onnx import OrtRunner, to_model

RNG = np.random.default_rng(11)
NVALS, NROWS, D = 7, 4, 3


def row_stats(values, row_splits):
    """One example: values (NVALS, D) split into NROWS rows; per row sum + max of the values."""
    rt = irf.ragged.from_row_splits(values, row_splits, validate=False)
    return irf.ragged.reduce_sum(rt, axis=1) + irf.ragged.reduce_max(rt, axis=1)


def row_stats_numpy(values, splits):
    out = np.zeros((NROWS, D), values.dtype)
    low = np.finfo(values.dtype).min
    for r in range(NROWS):
        rows = values[splits[r]:splits[r + 1]]
        out[r] = rows.sum(0) + (rows.max(0) if len(rows) else low)
    return out


def random_splits(rng) -> np.ndarray:
    """Sorted splits from 0 to NVALS with an empty row now and then (repeated splits)."""
    inner = np.sort(rng.integers(0, NVALS + 1, NROWS - 1))
    return np.concatenate([[0], inner, [NVALS]]).astype(np.int64)


@pytest.mark.parametrize("shared_splits", [True, False], ids=["shared-row-splits", "per-example-row-splits"])
def test_vmapped_ragged_reduction_exports_to_onnx_and_matches_onnxruntime(shared_splits):
    in_axes = (0, None) if shared_splits else (0, 0)
    splits_spec = irf.TensorSpec((NROWS + 1,) if shared_splits else (None, NROWS + 1), "int64")
    f = irf.function(lambda v, s: irf.vmap(row_stats, in_axes=in_axes)(v, s),
                     input_signature=[irf.TensorSpec((None, NVALS, D), "float32"), splits_spec])
    g = f.get_graph()
    ops = [n.op for n in g.nodes]
    assert "scan" not in ops and "segment_sum" in ops and "segment_max" in ops
    onnx.checker.check_model(to_model(g), full_check=True)
    for b in (1, 4):
        vs = RNG.standard_normal((b, NVALS, D)).astype(np.float32)
        ss = random_splits(RNG) if shared_splits else np.stack([random_splits(RNG) for _ in range(b)])
        ss[..., 1] = ss[..., 2]  # at least one empty row: its max is the lowest float
        want = np.stack([row_stats_numpy(vs[i], ss if shared_splits else ss[i]) for i in range(b)])
        feeds = dict(zip(g.input_names, (vs, ss)))
        np.testing.assert_allclose(irf.run(g, feeds)[g.output_names[0]], want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(OrtRunner(g).run(feeds)[g.output_names[0]], want, rtol=1e-5, atol=1e-5)


def test_per_example_gradients_through_segment_max_match_finite_differences():
    ids = np.array([[0, 2, 2, 1, 0], [1, 1, 0, 0, 3]])  # example 1 leaves segment 2 empty
    w = RNG.standard_normal((5, 2))
    xs = RNG.standard_normal((2, 5, 2))

    def loss(w, x, seg):
        return irf.reduce_sum(irf.tanh(irf.segment_max(x * w, seg, 4)) * irf.segment_sum(x, seg, 4))

    got = irf.vmap(irf.grad(loss), in_axes=(None, 0, 0))(w, xs, ids).numpy()
    assert got.shape == (2, 5, 2)
    eps = 1e-6
    for b in range(2):
        for k in np.ndindex(w.shape):
            wp, wm = w.copy(), w.copy()
            wp[k] += eps
            wm[k] -= eps
            fd = (loss(wp, xs[b], ids[b]).numpy() - loss(wm, xs[b], ids[b]).numpy()) / (2 * eps)
            np.testing.assert_allclose(got[(b,) + k], fd, rtol=1e-6, atol=1e-8)
