"""irf.data.Dataset against references written by hand (Python lists, itertools, NumPy)."""
import itertools
from collections import namedtuple

import numpy as np
import pytest

import irflow as irf
from irflow.data import Dataset

D = Dataset


def np_list(ds):
    return list(ds.as_numpy_iterator())


def test_from_tensor_slices_array_tuple_dict_yield_rows_as_tensors():
    x = np.arange(12, dtype="float32").reshape(4, 3)
    y = np.array([3, 1, 4, 1])
    assert [r.numpy().tolist() for r in D.from_tensor_slices(x)] == x.tolist()
    pairs = [(a, b) for a, b in D.from_tensor_slices((x, y))]
    assert all(isinstance(a, irf.Tensor) and isinstance(b, irf.Tensor) for a, b in pairs)
    assert [(a.numpy().tolist(), int(b)) for a, b in pairs] == [(x[i].tolist(), int(y[i])) for i in range(4)]
    dicts = list(D.from_tensor_slices({"x": x, "y": y}))
    assert [sorted(e) for e in dicts] == [["x", "y"]] * 4
    np.testing.assert_array_equal(np.stack([e["x"].numpy() for e in dicts]), x)
    assert len(D.from_tensor_slices(x)) == 4


def test_python_lists_follow_irflow_dtype_rules_and_arrays_keep_theirs():
    assert np_list(D.from_tensor_slices([1.5, 2.5]))[0].dtype == np.float32
    assert np_list(D.from_tensor_slices([1, 2]))[0].dtype == np.int64
    assert np_list(D.from_tensor_slices(np.zeros(2)))[0].dtype == np.float64


def test_from_tensor_slices_errors_name_the_problem():
    with pytest.raises(irf.ShapeError, match="differ in length"):
        D.from_tensor_slices((np.zeros(3), np.zeros(4)))
    with pytest.raises(irf.ShapeError, match="scalar"):
        D.from_tensor_slices(np.float32(1.0))


def test_range_matches_python_range():
    for args in [(5,), (2, 9), (10, 1, -3), (0, 10, 4)]:
        assert [int(v) for v in D.range(*args)] == list(range(*args))
        assert D.range(*args).cardinality() == len(range(*args))


def test_map_plain_function_unpacks_tuples_and_converts_results():
    ds = D.from_tensor_slices((np.arange(4.0, dtype="float32"), np.arange(4)))
    out = np_list(ds.map(lambda x, y: (x * 2.0, y + 1)))
    assert [(float(a), int(b)) for a, b in out] == [(2.0 * i, i + 1) for i in range(4)]
    assert out[0][0].dtype == np.float32
    # a dict element is passed as one argument; NumPy functions work on the Tensors too
    d = D.from_tensor_slices({"a": np.arange(3.0)}).map(lambda e: {"b": np.sqrt(e["a"])})
    np.testing.assert_allclose([e["b"] for e in np_list(d)], np.sqrt(np.arange(3.0)))
    with pytest.raises(irf.IrflowError, match="returned None"):
        np_list(D.range(2).map(lambda x: None))


def test_map_with_irf_function_traces_once_and_runs_the_graph():
    @irf.function
    def scale(x, y):
        return irf.relu(x) * 3.0, y

    x = np.random.default_rng(0).standard_normal((10, 4)).astype("float32")
    out = np_list(D.from_tensor_slices((x, np.arange(10))).map(scale))
    np.testing.assert_allclose(np.stack([a for a, _ in out]), np.maximum(x, 0) * 3.0, rtol=1e-6)
    assert scale.trace_count == 1


def test_filter_keeps_what_the_predicate_keeps():
    assert [int(v) for v in D.range(20).filter(lambda v: v % 3 == 1)] == [v for v in range(20) if v % 3 == 1]
    assert D.range(20).filter(lambda v: v > 3).cardinality() == irf.data.UNKNOWN_CARDINALITY
    with pytest.raises(irf.IrflowError, match="scalar bool"):
        np_list(D.from_tensor_slices(np.zeros((2, 3))).filter(lambda v: v > 0))


def test_batch_drop_remainder_and_cardinality():
    x = np.arange(10)
    got = [b.tolist() for b in np_list(D.from_tensor_slices(x).batch(4))]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.tolist() for b in np_list(D.from_tensor_slices(x).batch(4, drop_remainder=True))] == got[:2]
    assert len(D.range(10).batch(4)) == 3 and len(D.range(10).batch(4, drop_remainder=True)) == 2
    with pytest.raises(irf.ShapeError, match="padded_batch or ragged_batch"):
        np_list(D.from_generator(lambda: iter([np.zeros(2), np.zeros(3)])).batch(2))


def test_batch_fast_path_gives_the_same_batches_as_element_by_element():
    # .map(identity) hides the random-access source, so the second chain stacks element by element
    x = np.random.default_rng(1).standard_normal((103, 5)).astype("float32")
    y = np.arange(103)
    base = D.from_tensor_slices((x, y))
    fast = base.shuffle(17, seed=3).repeat(2).skip(5).take(150).batch(32)
    slow = base.map(lambda a, b: (a, b)).shuffle(17, seed=3).repeat(2).skip(5).take(150).batch(32)
    for (fx, fy), (sx, sy) in itertools.zip_longest(np_list(fast), np_list(slow)):
        np.testing.assert_array_equal(fx, sx)
        np.testing.assert_array_equal(fy, sy)


def test_shuffle_order_of_a_whole_pass_equals_the_streaming_buffer():
    # more than one chunk of draws (1024), a buffer smaller and one larger than the data
    from irflow.data.dataset import shuffle_buffer, shuffle_order

    for n, buf in [(3000, 100), (2500, 5000), (0, 3), (1, 1)]:
        a = shuffle_order(list(range(n)), buf, np.random.default_rng(4))
        b = list(shuffle_buffer(iter(range(n)), buf, np.random.default_rng(4)))
        assert a == b and sorted(a) == list(range(n))
    fast = np_list(D.range(3000).shuffle(700, seed=2).batch(64))
    slow = np_list(D.range(3000).map(lambda v: v).shuffle(700, seed=2).batch(64))
    assert all(np.array_equal(f, s) for f, s in zip(fast, slow)) and len(fast) == len(slow)


def test_padded_batch_matches_numpy_padding():
    rows = [np.array([1, 2, 3]), np.array([4]), np.array([5, 6])]
    ds = D.from_generator(lambda: iter([(r, np.int64(len(r))) for r in rows]))
    (a, n1), (b, n2) = np_list(ds.padded_batch(2))
    np.testing.assert_array_equal(a, [[1, 2, 3], [4, 0, 0]])
    np.testing.assert_array_equal(n1, [3, 1])
    np.testing.assert_array_equal(b, [[5, 6]])
    fixed = np_list(ds.padded_batch(3, padded_shapes=((5,), ()), padding_values=(-1, 0)))[0][0]
    want = np.full((3, 5), -1)
    for i, r in enumerate(rows):
        want[i, :len(r)] = r
    np.testing.assert_array_equal(fixed, want)
    with pytest.raises(irf.ShapeError, match="larger than the padded shape"):
        np_list(ds.padded_batch(3, padded_shapes=((2,), ())))


def test_repeat_take_skip_match_itertools():
    ref = list(range(7))
    assert [int(v) for v in D.range(7).repeat(3)] == ref * 3
    assert [int(v) for v in D.range(7).repeat().take(17)] == list(itertools.islice(itertools.cycle(ref), 17))
    assert [int(v) for v in D.range(7).skip(2).take(3)] == ref[2:5]
    assert [int(v) for v in D.range(7).take(-1)] == ref and [int(v) for v in D.range(7).skip(-1)] == []
    assert D.range(7).repeat().cardinality() == irf.data.INFINITE_CARDINALITY
    assert D.range(7).repeat(3).take(10).cardinality() == 10 and D.range(7).skip(9).cardinality() == 0
    assert list(D.range(0).repeat()) == []  # an empty dataset repeated forever is empty, not a hang
    with pytest.raises(irf.data.DatasetLengthError, match="infinite"):
        len(D.range(3).repeat())
    with pytest.raises(TypeError):  # also a TypeError, as len() of a tf.data dataset
        len(D.range(3).filter(lambda v: v > 1))


def test_zip_enumerate_unbatch():
    z = np_list(D.zip((D.range(3), D.range(10, 20))))
    assert [(int(a), int(b)) for a, b in z] == [(0, 10), (1, 11), (2, 12)]
    assert [(int(i), int(v)) for i, v in D.range(5, 8).enumerate()] == [(0, 5), (1, 6), (2, 7)]
    assert [int(v) for v in D.range(5).batch(2).unbatch()] == list(range(5))


def test_from_generator_checks_and_converts_against_output_signature():
    sig = (irf.TensorSpec((None,), "int32"), irf.TensorSpec((), "float32"))
    ds = D.from_generator(lambda: iter([([1, 2], 0.5), ([3], 1.5)]), output_signature=sig)
    (a, b), (c, d) = np_list(ds)
    assert a.dtype == np.int32 and b.dtype == np.float32 and a.tolist() == [1, 2] and c.tolist() == [3]
    bad = D.from_generator(lambda: iter([(np.zeros(2, "float64"), 1.0)]), output_signature=sig)
    with pytest.raises(irf.DTypeError, match="element 0"):
        np_list(bad)
    with pytest.raises(irf.IrflowError, match="callable"):
        D.from_generator(iter([1, 2]))
    calls = []
    again = D.from_generator(lambda: calls.append(1) or iter([1, 2]))
    assert [int(v) for v in again] == [1, 2] and [int(v) for v in again] == [1, 2] and len(calls) == 2


def test_namedtuple_elements_keep_their_type():
    P = namedtuple("P", "x y")
    out = list(D.from_tensor_slices(P(np.arange(3.0), np.arange(3))).batch(2))
    assert isinstance(out[0], P) and out[0].x.shape == (2,)
