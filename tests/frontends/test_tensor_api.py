"""Eager Tensor and Variable API: operators, methods, NumPy interop, assignments, creator scopes."""
import numpy as np
import pytest

import irflow as irf

rng = np.random.default_rng(3)
A = rng.standard_normal((3, 4)).astype(np.float32)
B = (rng.standard_normal((3, 4)).astype(np.float32) + 3.0)
I = np.array([[7, -7, 5, -1], [0, 3, -4, 9]], np.int64)
J = np.array([[2, 3, -3, 4], [5, -2, 2, 1]], np.int64)


@pytest.mark.parametrize("name,fn", [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("truediv", lambda a, b: a / b), ("floordiv", lambda a, b: a // b), ("mod", lambda a, b: a % b),
    ("pow", lambda a, b: abs(a) ** b), ("neg", lambda a, b: -a), ("lt", lambda a, b: a < b),
    ("ge", lambda a, b: a >= b), ("eq", lambda a, b: a == b), ("ne", lambda a, b: a != b),
    ("radd", lambda a, b: 2.0 + a), ("rsub", lambda a, b: 1.0 - a), ("rdiv", lambda a, b: 1.0 / b),
])
def test_float_operators_match_numpy(name, fn):
    got = fn(irf.tensor(A), irf.tensor(B))
    want = fn(A, B)
    assert got.dtype.value == str(want.dtype)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn", [lambda a, b: a // b, lambda a, b: a % b, lambda a, b: a // 3, lambda a, b: -7 // b])
def test_integer_floordiv_and_mod_round_like_python(fn):
    got = fn(irf.tensor(I), irf.tensor(J))
    want = fn(I, J)
    assert got.dtype == irf.int64
    np.testing.assert_array_equal(got.numpy(), want)


def test_matmul_and_ndarray_on_the_left():
    w = rng.standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_allclose((irf.tensor(A) @ w).numpy(), A @ w, rtol=1e-5)
    out = A + irf.tensor(B)  # ndarray.__add__ defers to Tensor.__radd__
    assert isinstance(out, irf.Tensor)
    np.testing.assert_allclose(out.numpy(), A + B)


def test_methods_match_numpy():
    t = irf.tensor(A)
    np.testing.assert_array_equal(t.T.numpy(), A.T)
    np.testing.assert_array_equal(t.reshape(2, -1).numpy(), A.reshape(2, -1))
    np.testing.assert_array_equal(t.reshape((4, 3)).numpy(), A.reshape(4, 3))
    np.testing.assert_array_equal(t.transpose(1, 0).numpy(), A.transpose(1, 0))
    assert t.astype("float64").dtype == irf.float64 and t.astype(np.float32) is t
    np.testing.assert_allclose(t.sum().numpy(), A.sum(), rtol=1e-5)
    np.testing.assert_allclose(t.mean(axis=1).numpy(), A.mean(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(t.max(axis=0, keepdims=True).numpy(), A.max(axis=0, keepdims=True))
    np.testing.assert_array_equal(t.min().numpy(), A.min())
    assert t.ndim == 2 and t.shape == (3, 4) and len(t) == 3


def test_methods_work_on_symbolic_tensors_too():
    f = irf.function(lambda x: (x.T.reshape(-1).sum(), x.mean(axis=0), x.astype("float64").max()))
    s, m, mx = f(A)
    np.testing.assert_allclose(s.numpy(), A.sum(), rtol=1e-5)
    np.testing.assert_allclose(m.numpy(), A.mean(0), rtol=1e-5)
    assert mx.dtype == irf.float64 and mx.numpy() == A.max()


def test_nonzero_and_unique_methods_match_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[0.0, 3.0, 3.0], [1.0, 0.0, 3.0]], np.float32)
    ta = torch.tensor(a)
    for t in (irf.tensor(a), None):  # eager, then traced (the lengths read at run time)
        got = (t.nonzero(), t.unique(return_counts=True)) if t is not None else \
            irf.function(lambda x: (x.nonzero(), x.unique(return_counts=True)))(a)
        np.testing.assert_array_equal(got[0].numpy(), ta.nonzero().numpy())
        for g, w in zip(got[1], ta.unique(return_counts=True)):
            np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_numpy_interop_and_repr():
    t = irf.tensor(A)
    assert np.asarray(t) is A or np.shares_memory(np.asarray(t), A)
    np.testing.assert_array_equal(np.sin(np.asarray(t)), np.sin(A))
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    r = repr(irf.tensor(np.array([1.5, 2.0], np.float32)))
    assert r == "irf.Tensor([1.5, 2. ], dtype=float32, shape=(2,))"
    assert float(irf.tensor(2.5)) == 2.5
    assert irf.tensor([1.0, 2.0]).dtype == irf.float32


# -- Variables ---------------------------------------------------------------------------------------
def test_variable_reads_like_a_tensor():
    v = irf.Variable(A, name="v")
    assert v.name == "v" and v.trainable and v.shape == (3, 4) and v.dtype == irf.float32
    np.testing.assert_allclose((v * 2.0 + irf.tensor(B)).numpy(), A * 2 + B)
    np.testing.assert_allclose(irf.relu(v).numpy(), np.maximum(A, 0))
    np.testing.assert_array_equal(np.asarray(v), A)
    assert "name='v'" in repr(v) and "float32" in repr(v)
    assert irf.Variable(1.0).dtype == irf.float32 and irf.Variable(1.0, dtype="float64").dtype == irf.float64


def test_variable_assignments_and_their_checks():
    v = irf.Variable(np.zeros(3, np.float32), name="v")
    t_before = v.read_value()
    v.assign(np.array([1, 2, 3], np.float32))
    v.assign_add(1.0)
    v.assign_sub(irf.tensor(np.array([0.5, 0.5, 0.5], np.float32)))
    np.testing.assert_array_equal(v.numpy(), [1.5, 2.5, 3.5])
    np.testing.assert_array_equal(t_before.numpy(), [0, 0, 0])  # a read keeps its value
    with pytest.raises(irf.DTypeError, match=r"Variable 'v' \(float32\[3\]\): assign got a float64 value"):
        v.assign(np.zeros(3))
    with pytest.raises(irf.ShapeError, match=r"Variable 'v': assign_add of a value of shape \(2, 3\) to a variable of shape \(3,\)"):
        v.assign_add(np.ones((2, 3), np.float32))
    n = irf.Variable(np.int64(1), name="n")
    with pytest.raises(irf.DTypeError, match=r"Variable 'n' \(int64\): assign_add got a Python float"):
        n.assign_add(0.5)


def test_variable_creator_scope_intercepts_creation():
    seen = []

    def frozen(next_creator, **kwargs):
        seen.append(kwargs["name"])
        kwargs["trainable"] = False
        return next_creator(**kwargs)

    def renamed(next_creator, **kwargs):
        kwargs["name"] = "outer/" + (kwargs["name"] or "v")
        return next_creator(**kwargs)

    with irf.variable_creator_scope(renamed):
        with irf.variable_creator_scope(frozen):
            v = irf.Variable(1.0, name="w")
    assert seen == ["w"]  # the innermost creator runs first, then the outer one
    assert v.name == "outer/w" and not v.trainable and isinstance(v, irf.Variable)
    assert irf.Variable(1.0).trainable  # the scope is gone


def test_tensor_spec():
    s = irf.TensorSpec(("batch", None, 3), "float32")
    assert s.shape == ("batch", None, 3) and s.dtype == irf.float32
    assert s == irf.TensorSpec(("batch", None, 3)) and s != irf.TensorSpec(("batch", None, 3), "float64")
    with pytest.raises(irf.ShapeError, match=r"a dim must be an int >= 0, a symbol \(str\) or None, got -1"):
        irf.TensorSpec((-1, 3))
    with pytest.raises(irf.DTypeError, match=r"unknown dtype 'float8'"):
        irf.TensorSpec((3,), "float8")


def test_iteration_gives_rows():
    rows = list(irf.tensor(A))
    assert len(rows) == 3
    for r, want in zip(rows, A):
        np.testing.assert_array_equal(r.numpy(), want)
    assert [r.shape for r in irf.Variable(A)] == [(4,)] * 3
    with pytest.raises(irf.IrflowError, match="0-d"):
        list(irf.tensor(1.0))


def test_truth_value_of_a_multi_element_tensor_is_a_clear_error():
    assert bool(irf.tensor(1.0)) and float(irf.tensor([2.5])) == 2.5 and int(irf.Variable(np.int64(3))) == 3
    with pytest.raises(irf.IrflowError, match=r"bool\(\) of a tensor of shape \(3, 4\) \(12 elements\) is ambiguous"):
        bool(irf.tensor(A))
    with pytest.raises(irf.IrflowError, match=r"float\(\) of Variable 'v' of shape \(3, 4\)"):
        float(irf.Variable(A, name="v"))


def test_variable_takes_tensorflows_initial_value_keyword():
    v = irf.Variable(initial_value=np.ones(2, np.float32), name="a")
    np.testing.assert_array_equal(v.numpy(), [1.0, 1.0])
    with pytest.raises(irf.IrflowError, match="Variable needs an initial value"):
        irf.Variable()


def test_item_assignment_is_a_clear_error():
    t = irf.tensor(A)
    with pytest.raises(irf.IrflowError, match=r"Tensor does not support item assignment.*Variable"):
        t[0] = 1.0
    with pytest.raises(irf.IrflowError, match=r"Variable does not support item assignment"):
        irf.Variable(A)[0, 0] = 1.0
    with pytest.raises(irf.IrflowError, match="len\\(\\) of a 0-d tensor"):
        len(irf.tensor(1.0))
