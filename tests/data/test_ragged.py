"""irf.ragged against Python loops over the rows; traced ragged functions on the interpreter
and on onnxruntime; a ragged batch from the pipeline."""
import numpy as np
import pytest

import irflow as irf
from irflow.data import Dataset

ROWS = [[1.0, 2.0, 3.0], [], [4.0], [5.0, -6.0]]


def test_constant_builds_values_and_row_splits():
    rt = irf.ragged.constant(ROWS)
    assert rt.row_splits.numpy().tolist() == [0, 3, 3, 4, 6]
    assert rt.values.numpy().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, -6.0]
    assert rt.dtype == irf.float32 and rt.shape == (4, None) and len(rt) == 4
    assert rt.to_list() == ROWS and rt.row_lengths().numpy().tolist() == [3, 0, 1, 2]
    assert rt.value_rowids().numpy().tolist() == [0, 0, 0, 2, 3, 3]
    assert irf.ragged.constant([[1, 2], [3]]).dtype == irf.int64
    inner = irf.ragged.constant([[[1, 2], [3, 4]], [], [[5, 6]]])
    assert inner.shape == (3, None, 2) and inner.values.shape == (3, 2)
    words = irf.ragged.constant([["a", "bb"], ["c"]])
    assert words.values.tolist() == ["a", "bb", "c"] and words[1].tolist() == ["c"]
    assert [r.numpy().tolist() for r in rt] == ROWS


def test_constant_and_factories_reject_bad_input():
    with pytest.raises(irf.ShapeError, match="one ragged dimension"):
        irf.ragged.constant([[[1], [2, 3]], [[4]]])
    with pytest.raises(irf.ShapeError, match="scalar"):
        irf.ragged.constant([1, 2])
    with pytest.raises(irf.ShapeError, match="must start at 0"):
        irf.ragged.from_row_splits(np.arange(4.0), [0, 2, 3])
    with pytest.raises(irf.ShapeError, match=">= 0"):
        irf.ragged.from_row_lengths(np.arange(4.0), [5, -1])


def test_from_row_splits_and_lengths_cut_rows_in_order():
    v = np.arange(7.0)
    a = irf.ragged.from_row_splits(v, [0, 2, 2, 7])
    b = irf.ragged.from_row_lengths(v, [2, 0, 5])
    want = [v[0:2].tolist(), [], v[2:7].tolist()]
    assert a.to_list() == want and b.to_list() == want


def loop_reduce(rows, fn, empty):
    return np.array([fn(np.asarray(r)) if len(r) else empty for r in rows], dtype=np.float32)


def test_reductions_over_the_ragged_axis_match_a_loop():
    rt = irf.ragged.constant(ROWS)
    lowest = np.finfo(np.float32).min
    np.testing.assert_allclose(irf.reduce_sum(rt, axis=1).numpy(), loop_reduce(ROWS, np.sum, 0.0))
    np.testing.assert_allclose(irf.reduce_mean(rt, axis=1).numpy(), loop_reduce(ROWS, np.mean, np.nan))
    np.testing.assert_allclose(irf.reduce_max(rt, axis=1).numpy(), loop_reduce(ROWS, np.max, lowest))
    np.testing.assert_allclose(irf.ragged.reduce_min(rt, axis=-1).numpy(), loop_reduce(ROWS, np.min, np.finfo(np.float32).max))
    assert float(irf.reduce_sum(rt)) == sum(sum(r) for r in ROWS)
    with pytest.raises(irf.IrflowError, match="axis=0"):
        irf.reduce_sum(rt, axis=0)


def test_reductions_with_inner_dims():
    rows = [np.random.default_rng(i).standard_normal((n, 3)).astype("float32") for i, n in enumerate([2, 0, 4])]
    rt = irf.ragged.from_row_lengths(np.concatenate(rows), [2, 0, 4])
    mean = irf.reduce_mean(rt, axis=1).numpy()
    for i, r in enumerate(rows):
        want = r.mean(axis=0) if len(r) else np.full(3, np.nan)
        np.testing.assert_allclose(mean[i], want, rtol=1e-6)
    inner = irf.reduce_sum(rt, axis=2)  # over the dense axis: still ragged
    assert inner.row_splits.numpy().tolist() == [0, 2, 2, 6]
    for got, r in zip(inner.to_list(), rows):
        np.testing.assert_allclose(got, r.sum(axis=1), rtol=1e-6)


def test_to_tensor_pads_like_a_loop():
    rt = irf.ragged.constant(ROWS)
    want = np.full((4, 3), 9.0, "float32")
    for i, r in enumerate(ROWS):
        want[i, :len(r)] = r
    np.testing.assert_array_equal(rt.to_tensor(9.0).numpy(), want)
    assert irf.ragged.constant([["a"], ["b", "c"]]).to_tensor("").tolist() == [["a", ""], ["b", "c"]]


def test_map_flat_values_arithmetic_and_row_checks():
    rt = irf.ragged.constant(ROWS)
    assert irf.ragged.map_flat_values(irf.abs, rt).to_list() == [[abs(x) for x in r] for r in ROWS]
    assert (rt * 2.0 + rt).to_list() == [[3 * x for x in r] for r in ROWS]
    other = irf.ragged.constant([[1.0], [2.0, 3.0], [], [4.0, 5.0]])
    with pytest.raises(irf.ShapeError, match="different rows"):
        rt + other
    with pytest.raises(irf.ShapeError, match="describe 6 values"):
        irf.ragged.map_flat_values(lambda v: v[:2], rt)


SENTENCES = [["who", "is", "dan", "smith"], ["pause"], ["will", "it", "rain", "later", "today"], []]


def _vocab():
    words = sorted({w for s in SENTENCES for w in s} - {"later"})  # "later" is out of vocabulary
    return {w: i + 1 for i, w in enumerate(words)}  # id 0: out of vocabulary


def test_seed_example_tokens_ids_embeddings_mean_per_sentence():
    vocab = _vocab()
    table = irf.Variable(np.random.default_rng(0).standard_normal((len(vocab) + 1, 4)).astype("float32"), name="emb")
    queries = irf.ragged.constant(SENTENCES)
    ids = irf.ragged.map_flat_values(lambda toks: np.array([vocab.get(t, 0) for t in toks], dtype=np.int64), queries)
    embeddings = irf.gather(table, ids)
    assert embeddings.shape == (4, None, 4)
    mean = irf.reduce_mean(embeddings, axis=1).numpy()
    for i, sentence in enumerate(SENTENCES):  # the reference: a loop over the sentences
        rows = [table.numpy()[vocab.get(w, 0)] for w in sentence]
        want = np.mean(rows, axis=0) if rows else np.full(4, np.nan)
        np.testing.assert_allclose(mean[i], want, rtol=1e-6)


def test_gradient_of_a_ragged_mean_reaches_the_embedding_table():
    vocab = _vocab()
    table = irf.Variable(np.random.default_rng(1).standard_normal((len(vocab) + 1, 3)).astype("float32"), name="emb")
    sentences = SENTENCES[:3]
    ids = irf.ragged.constant([[vocab.get(w, 0) for w in s] for s in sentences])
    weights = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0], [2.0, 2.0, -2.0]], "float32")
    with irf.GradientTape() as tape:
        loss = irf.reduce_sum(irf.reduce_mean(irf.gather(table, ids), axis=1) * weights)
    (g,) = tape.gradient(loss, [table])
    want = np.zeros_like(table.numpy())
    for i, s in enumerate(sentences):  # d loss / d table[w] = sum over occurrences of weights[i] / len
        for w in s:
            want[vocab.get(w, 0)] += weights[i] / len(s)
    np.testing.assert_allclose(g.numpy(), want, rtol=1e-6)


def _traced_sentence_mean(table, executor):
    @irf.function(input_signature=[irf.ragged.RaggedTensorSpec((None, None), "int64")], executor=executor)
    def sentence_mean(ids):
        emb = irf.gather(table, ids)
        return irf.reduce_mean(emb, axis=1), irf.reduce_max(emb, axis=1), ids.to_tensor(-1)

    return sentence_mean


@pytest.mark.parametrize("executor", ["numpy", "ort"])
def test_traced_function_over_ragged_input_one_trace_for_every_size(executor):
    table = irf.tensor(np.random.default_rng(2).standard_normal((10, 4)).astype("float32"))
    fn = _traced_sentence_mean(table, executor)
    rng = np.random.default_rng(3)
    for lengths in ([3, 1, 4], [2, 0, 5, 1, 1], [6]):
        rows = [rng.integers(0, 10, n).tolist() for n in lengths]
        mean, mx, dense = fn(irf.ragged.constant(rows))
        for i, r in enumerate(rows):
            emb = table.numpy()[r]
            np.testing.assert_allclose(mean.numpy()[i], emb.mean(axis=0) if r else np.full(4, np.nan), rtol=1e-5)
            np.testing.assert_allclose(mx.numpy()[i], emb.max(axis=0) if r else np.full(4, np.finfo(np.float32).min))
            assert dense.numpy()[i].tolist() == r + [-1] * (max(lengths) - len(r))
    assert fn.trace_count == 1


def test_ragged_function_exports_to_onnx_and_runs_on_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the exported model runs on onnxruntime")
    table = irf.tensor(np.random.default_rng(4).standard_normal((10, 4)).astype("float32"))
    fn = _traced_sentence_mean(table, "numpy")
    path = tmp_path / "ragged.onnx"
    fn.export_onnx(str(path), irf.ragged.RaggedTensorSpec((None, None), "int64"))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = [[1, 2, 3], [], [9], [4, 4]]
    rt = irf.ragged.constant(rows)
    names = [i.name for i in sess.get_inputs()]
    assert names == ["ids_values", "ids_row_splits"]
    got = sess.run(None, {names[0]: rt.values.numpy(), names[1]: rt.row_splits.numpy()})
    want = fn(rt)
    for w, o in zip(want, got):
        np.testing.assert_allclose(o, w.numpy(), rtol=1e-6)


def test_ragged_batch_in_the_pipeline_feeds_a_traced_step():
    rng = np.random.default_rng(5)
    docs = [rng.integers(0, 10, rng.integers(1, 6)) for _ in range(10)]
    labels = np.arange(10) % 2
    ds = Dataset.from_generator(lambda: iter(zip(docs, labels))).ragged_batch(4)
    table = irf.tensor(rng.standard_normal((10, 3)).astype("float32"))

    @irf.function(input_signature=[irf.ragged.RaggedTensorSpec((None, None), "int64"), irf.TensorSpec((None,), "int64")])
    def embed(ids, y):
        return irf.reduce_mean(irf.gather(table, ids), axis=1), y

    seen = 0
    for ids, y in ds:
        assert isinstance(ids, irf.ragged.RaggedTensor)
        mean, yy = embed(ids, y)
        for i in range(len(ids)):
            np.testing.assert_allclose(mean.numpy()[i], table.numpy()[docs[seen + i]].mean(axis=0), rtol=1e-6)
            assert int(yy.numpy()[i]) == labels[seen + i]
        seen += len(ids)
    assert seen == 10 and embed.trace_count == 1
