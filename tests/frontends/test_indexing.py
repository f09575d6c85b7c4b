"""x[...] on eager Tensors, Variables and traced tensors against NumPy on the same index."""
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

import irflow as irf


@st.composite
def index_case(draw, allow_masks=True):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    arr = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    items = []
    axis = 0
    used_ellipsis = False
    n_items = draw(st.integers(1, len(shape) + 1))
    for _ in range(n_items):
        kinds = ["int", "slice", "none", "array"]
        if not used_ellipsis:
            kinds.append("ellipsis")
        if allow_masks:
            kinds.append("mask")
        kind = draw(st.sampled_from(kinds))
        if kind in ("none", "ellipsis"):
            if kind == "ellipsis":
                used_ellipsis = True
                items.append(Ellipsis)
            else:
                items.append(None)
            continue
        if axis >= len(shape):
            continue
        d = shape[axis]
        if kind == "int":
            items.append(draw(st.integers(-d, d - 1)))
        elif kind == "slice":
            bound = st.one_of(st.none(), st.integers(-d - 2, d + 2))
            step = draw(st.one_of(st.none(), st.sampled_from([1, 2, 3, -1, -2])))
            items.append(slice(draw(bound), draw(bound), step))
        elif kind == "array":
            items.append(np.array(draw(st.lists(st.integers(-d, d - 1), min_size=1, max_size=4)), np.int64))
        else:
            items.append(np.array(draw(st.lists(st.booleans(), min_size=d, max_size=d)), bool))
        axis += 1
    if used_ellipsis and sum(1 for i in items if i is not None and i is not Ellipsis) > len(shape):
        items = [i for i in items if i is not Ellipsis]
    return arr, tuple(items)


def _numpy_or_none(arr, key):
    try:
        return arr[key]
    except IndexError:  # e.g. advanced indices that do not broadcast
        return None


# Found by hypothesis: an ellipsis standing for no axis still separates advanced indices.
ELLIPSIS_SEPARATES = (np.arange(2, dtype=np.float32).reshape(2, 1, 1), (slice(None), 0, Ellipsis, np.array([0])))
BACKWARD_FROM_BEFORE = (np.arange(1, dtype=np.float32), (slice(-2, None, -1),))


@settings(max_examples=40, deadline=None)
@given(index_case())
@example(ELLIPSIS_SEPARATES)
@example(BACKWARD_FROM_BEFORE)
def test_eager_indexing_matches_numpy(case):
    arr, key = case
    ref = _numpy_or_none(arr, key)
    if ref is None:
        with pytest.raises(irf.IrflowError):
            irf.tensor(arr)[key]
        return
    got = irf.tensor(arr)[key].numpy()
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


@settings(max_examples=30, deadline=None)
@given(index_case(allow_masks=False))
@example(ELLIPSIS_SEPARATES)
@example(BACKWARD_FROM_BEFORE)
def test_traced_indexing_matches_numpy(case):
    arr, key = case
    ref = _numpy_or_none(arr, key)
    if ref is None:
        return
    f = irf.function(lambda x: x[key])
    got = f(arr).numpy()
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)
    g = f.get_graph(arr)
    assert g.outputs[0].type.shape == ref.shape  # the type rule agrees with what ran


def test_variable_and_tensor_index_values():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    v = irf.Variable(a, name="v")
    np.testing.assert_array_equal(v[1:, irf.tensor(np.array([3, 0]))].numpy(), a[1:, [3, 0]])
    np.testing.assert_array_equal(v[irf.tensor(a > 4)].numpy(), a[a > 4])


def test_symbolic_index_tensor_gathers():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    f = irf.function(lambda x, i: x[:, i])
    idx = np.array([[2, 0], [1, 3]], np.int64)
    np.testing.assert_array_equal(f(a, idx).numpy(), a[:, idx])


def test_boolean_mask_while_tracing_is_boolean_mask():
    """x[mask] (full slices around one mask) traces to compress, whose length is read at run
    time; NumPy gives the reference, also for a mask computed in the trace and its gradient."""
    a = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.0
    m = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
    f = irf.function(lambda x, k: (x[k], x[:, k[0]], x[..., k[1]], x[x > 2.0]))
    for got, want in zip(f(a, m), (a[m], a[:, m[0]], a[..., m[1]], a[a > 2.0])):
        np.testing.assert_array_equal(got.numpy(), want)
    assert f.get_concrete_function(a, m).graph.outputs[0].type.shape == (None,)

    def loss(x):
        with irf.GradientTape() as tape:
            tape.watch(x)
            y = irf.reduce_sum(x[x > 0.0] ** 2)
        return tape.gradient(y, x)

    np.testing.assert_allclose(irf.function(loss)(a).numpy(), np.where(a > 0, 2 * a, 0))


def test_boolean_mask_with_other_indices_while_tracing_is_a_clear_error():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.raises(irf.IrflowError, match=r"boolean mask indexing of symbolic tensor %x .*irf.boolean_mask"):
        irf.function(lambda x: x[np.array([True, False]), 0])(a)
    with pytest.raises(irf.IrflowError, match=r"boolean mask indexing with symbolic tensor %greater"):
        irf.function(lambda x: x[0, x[0] > 2.0])(a)


@pytest.mark.parametrize("key,text", [
    ((0, 0, 0), r"too many indices for a tensor of shape \(2, 3\)"),
    ((5,), r"index 5 is out of bounds for axis 0 with size 2"),
    ((slice(None), [0, 3]), r"index 3 is out of bounds for axis 1 with size 3"),
    ((Ellipsis, Ellipsis), r"single ellipsis"),
    ((1.5,), r"indices must be integers"),
])
def test_bad_indices(key, text):
    t = irf.tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(irf.IrflowError, match=text):
        t[key]


def test_indexing_is_differentiable_through_the_ops():
    tape_cls = getattr(irf, "GradientTape", None)
    if tape_cls is None:
        pytest.skip("irf.GradientTape (autodiff issue) not available")
    x = irf.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    with tape_cls() as tape:
        tape.watch(x)
        y = irf.reduce_sum(x[:, [2, 2, 0]] * x[1])
    (gx,) = tape.gradient(y, [x])
    a = x.numpy()
    # by hand: y = sum_i sum_j a[i, c_j] * a[1, j] with c = [2, 2, 0]
    want = np.zeros_like(a)
    c = [2, 2, 0]
    for i in range(2):
        for j in range(3):
            want[i, c[j]] += a[1, j]
            want[1, j] += a[i, c[j]]
    np.testing.assert_allclose(gx.numpy(), want, rtol=1e-6)


TRICKY_SLICES = [slice(-5, None, -1), slice(5, -10, -2), slice(None, None, -1), slice(10, None), slice(-1, -4, -1),
                 slice(2, 1), slice(-10, 2), slice(None, -10, -1), slice(0, None, -3)]


@pytest.mark.parametrize("s", TRICKY_SLICES, ids=str)
def test_slices_out_of_range_and_backward_match_python(s):
    a = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(irf.tensor(a)[s].numpy(), a[s])
    np.testing.assert_array_equal(irf.function(lambda x: x[s])(a).numpy(), a[s])


@pytest.mark.parametrize("s", [slice(1, None), slice(None, -1), slice(None, None, -1), slice(-2, None), slice(None, None, 2)], ids=str)
def test_slices_of_a_symbolic_dim(s):
    f = irf.function(input_signature=[irf.TensorSpec((None, 2), "float32")])(lambda x: x[s, 1])
    for n in (3, 6):
        a = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
        np.testing.assert_array_equal(f(a).numpy(), a[s, 1])
    assert f.trace_count == 1
