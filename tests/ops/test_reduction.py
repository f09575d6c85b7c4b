"""Reductions, argmax/argmin and cumsum through the shared harness (tests/ops/harness.py):
eager vs a NumPy reference written here (in float64, then rounded), type rule vs produced
type, interpreter, onnxruntime + onnx.checker, and the VJP vs float64 finite differences."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner, to_model
from tests.ops.harness import build_graph, check_op

SETTINGS = settings(max_examples=20, deadline=None)
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


# -- strategies ------------------------------------------------------------------------------

@st.composite
def reduce_cases(draw, nonempty: bool = False, dtypes=(np.float32, np.float64)):
    """(x, axes attr, keepdims): rank 0..4, dims 0..4, axes None / one int / a tuple, negatives too.

    ``nonempty``: reduced axes get size >= 1 (other axes may still be 0)."""
    rank = draw(st.integers(0, 4))
    shape = draw(st.lists(st.integers(0, 4), min_size=rank, max_size=rank))
    if rank and draw(st.booleans()):
        chosen = draw(st.lists(st.integers(0, rank - 1), unique=True, max_size=rank))
        axes = tuple(a - rank if draw(st.booleans()) else a for a in chosen)
    else:
        axes = None
    reduced = range(rank) if axes is None else [a % rank for a in axes]
    if nonempty:
        for a in reduced:
            shape[a] = shape[a] or draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if np.dtype(dtype).kind == "f":
        x = rng.standard_normal(shape).astype(dtype)
    else:
        x = rng.integers(-5, 6, size=shape).astype(dtype)
    return x, axes, draw(st.booleans())


def _f64(x):
    return x.astype(np.float64)


def _tol(x):
    return TOL.get(x.dtype.type, dict(rtol=0, atol=0))


# -- the five axis reductions ------------------------------------------------------------------

@SETTINGS
@given(reduce_cases(dtypes=(np.float32, np.float64, np.int32, np.int64)))
def test_reduce_sum(case):
    x, axes, keepdims = case
    check_op("reduce_sum", [x], lambda a: np.sum(_f64(a), axis=axes, keepdims=keepdims).astype(a.dtype),
             {"axes": axes, "keepdims": keepdims}, **_tol(x))


@SETTINGS
@given(reduce_cases())
def test_reduce_mean(case):
    x, axes, keepdims = case
    count = int(np.prod([x.shape[i] for i in (range(x.ndim) if axes is None else axes)]))

    def ref(a):
        with np.errstate(invalid="ignore"):  # 0/0 = NaN over a size-0 axis
            return (np.sum(_f64(a), axis=axes, keepdims=keepdims) / count).astype(a.dtype)

    # Over a size-0 axis the output is NaN (finite differences of NaN say nothing) and x is empty.
    check_op("reduce_mean", [x], ref, {"axes": axes, "keepdims": keepdims}, grad=count > 0, **_tol(x))


@SETTINGS
@given(reduce_cases(nonempty=True, dtypes=(np.float32, np.float64, np.int32, np.int8)))
def test_reduce_max(case):
    x, axes, keepdims = case
    check_op("reduce_max", [x], lambda a: np.maximum.reduce(a, axis=axes, keepdims=keepdims),
             {"axes": axes, "keepdims": keepdims}, rtol=0, atol=0)


@SETTINGS
@given(reduce_cases(nonempty=True, dtypes=(np.float32, np.float64, np.int64, np.int16)))
def test_reduce_min(case):
    x, axes, keepdims = case
    check_op("reduce_min", [x], lambda a: np.minimum.reduce(a, axis=axes, keepdims=keepdims),
             {"axes": axes, "keepdims": keepdims}, rtol=0, atol=0)


@SETTINGS
@given(reduce_cases(dtypes=(np.float32, np.float64, np.int64)))
def test_reduce_prod(case):
    x, axes, keepdims = case
    if x.dtype.kind == "f":  # magnitudes near 1 keep products of up to 256 factors in range
        x = np.asarray(np.sign(x) * (0.75 + 0.5 * np.abs(np.tanh(x))), dtype=x.dtype)
    check_op("reduce_prod", [x], lambda a: np.multiply.reduce(_f64(a), axis=axes, keepdims=keepdims).astype(a.dtype),
             {"axes": axes, "keepdims": keepdims}, **_tol(x))


def _logsumexp_ref(a, axes, keepdims):
    a64 = _f64(a)
    m = np.max(a64, axis=axes, keepdims=True)
    out = np.log(np.sum(np.exp(a64 - m), axis=axes, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=tuple(range(a.ndim)) if axes is None else axes)
    return out.astype(a.dtype)


@SETTINGS
@given(reduce_cases(nonempty=True))
def test_logsumexp(case):
    x, axes, keepdims = case
    check_op("logsumexp", [x], lambda a: _logsumexp_ref(a, axes, keepdims), {"axes": axes, "keepdims": keepdims}, **_tol(x))


def test_public_functions_take_axis_like_numpy():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = irf.tensor(x)
    np.testing.assert_array_equal(irf.reduce_sum(t, axis=1).numpy(), x.sum(1))
    np.testing.assert_array_equal(irf.reduce_sum(t, axis=(0, -1), keepdims=True).numpy(), x.sum((0, 2), keepdims=True))
    np.testing.assert_array_equal(irf.reduce_mean(t).numpy(), np.float32(11.5))
    np.testing.assert_array_equal(irf.reduce_max(t, axis=-1).numpy(), x[..., -1])
    np.testing.assert_array_equal(irf.reduce_min(t, axis=[0]).numpy(), x[0])
    np.testing.assert_array_equal(irf.reduce_prod(t, axis=()).numpy(), x)  # no axis: nothing reduced
    np.testing.assert_array_equal(irf.argmax(t, axis=1, keepdims=True).numpy(), np.full((2, 1, 4), 2))
    np.testing.assert_array_equal(irf.cumsum(t, axis=2).numpy(), np.cumsum(x, 2))


# -- dtypes ----------------------------------------------------------------------------------

def test_int8_sum_and_prod_wrap_as_numpy_everywhere():
    # onnxruntime has no int8 ReduceSum: the lowering sums in int32 and casts back, which
    # must wrap exactly as int8 arithmetic does. The reference wraps by hand.
    x = np.array([[100, 100, 100], [-128, -1, 7]], dtype=np.int8)
    wrap = lambda v: ((v + 128) % 256 - 128).astype(np.int8)  # noqa: E731
    check_op("reduce_sum", [x], lambda a: wrap(a.astype(np.int64).sum(1)), {"axes": (1,)})
    check_op("reduce_prod", [x], lambda a: wrap(a.astype(np.int64).prod(1)), {"axes": (1,)})
    check_op("cumsum", [x], lambda a: wrap(np.cumsum(a.astype(np.int64), 1)), {"axis": 1})


def test_float16_accumulates_in_float32():
    # 4096 ones plus a small value: a float16 running sum would stop growing at 2048.
    x = np.ones(4097, dtype=np.float16)
    out = check_op("reduce_sum", [x], lambda a: np.float16(4097.0), {"axes": None}, rtol=1e-3, ort_rtol=1e-3)[0]
    assert out.dtype == np.float16
    rng = np.random.default_rng(1)
    y = rng.standard_normal((3, 50)).astype(np.float16)
    check_op("reduce_mean", [y], lambda a: _f64(a).mean(1).astype(np.float16), {"axes": (1,)},
             rtol=1e-3, atol=1e-3, ort_rtol=1e-3, ort_atol=1e-3, grad=False)
    check_op("logsumexp", [y], lambda a: _logsumexp_ref(a, (1,), False), {"axes": (1,)},
             rtol=1e-3, atol=1e-3, ort_rtol=1e-3, ort_atol=1e-3, grad=False)


@pytest.mark.parametrize("op,attrs,reference", [
    ("reduce_sum", {"axes": (1,)}, lambda a: a.sum(1)),
    ("reduce_mean", {"axes": (0,)}, lambda a: a.mean(0)),
    ("reduce_max", {"axes": (1,)}, lambda a: a.max(1)),
    ("reduce_prod", {"axes": (1,)}, lambda a: a.prod(1)),
    ("logsumexp", {"axes": (1,)}, lambda a: _logsumexp_ref(a, (1,), False)),
    ("cumsum", {"axis": 1}, lambda a: np.cumsum(a, 1)),
    ("argmin", {"axis": 1}, lambda a: np.argmin(a, 1)),
])
def test_bfloat16_on_numpy_and_onnxruntime(op, attrs, reference):
    # onnxruntime has no bfloat16 reductions (the lowering computes in float32) and its Python
    # API cannot feed bfloat16, so the graph takes float32 and casts to bfloat16 and back.
    x32 = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)  # exact in bfloat16
    b = irf.GraphBuilder("bf16")
    x = b.op("cast", b.input("x", "float32", (3, 4)), dtype=irf.DType.bfloat16)
    y = b.op(op, x, **attrs)
    b.output(y if op == "argmin" else b.op("cast", y, dtype=irf.DType.float32))
    g = b.build(verify=True)
    want = reference(x32.astype(np.float64))
    for run in (Interpreter(g).run, OrtRunner(g).run):
        got = run({"x": x32})[g.output_names[0]]
        np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2)


# -- ties, zeros, stability: gradients written out by hand -------------------------------------

def _grad(op, x, attrs, ct=None):
    g = build_graph(op, [x], attrs)
    gg = vjp(g, wrt=["in0"]).verify()
    out = Interpreter(g).run({"in0": x})[g.output_names[0]]
    feeds = {"in0": x, f"ct_{g.output_names[0]}": np.ones_like(out) if ct is None else ct}
    got = Interpreter(gg).run(feeds)["grad_in0"]
    ort = OrtRunner(gg).run(feeds)["grad_in0"]  # the gradient graph exports to plain ONNX
    np.testing.assert_allclose(ort, got, rtol=1e-6, atol=1e-12)
    return got


def test_reduce_max_and_min_split_the_gradient_among_ties():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [5.0, 4.0, 0.0]])
    np.testing.assert_allclose(_grad("reduce_max", x, {"axes": (1,)}),
                               [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3], [1, 0, 0]])
    np.testing.assert_allclose(_grad("reduce_min", x, {"axes": (1,), "keepdims": True}),
                               [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 1]])
    np.testing.assert_allclose(_grad("reduce_max", x, {"axes": None}), [[0, 0, 0], [0, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(_grad("reduce_min", x, {"axes": (0,)}), [[1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_reduce_prod_gradient_with_zeros():
    # d prod / d x_i = product of the others: one zero leaves only its own entry non-zero,
    # two zeros zero everything.
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0], [-1.0, 0.5, 8.0]])
    np.testing.assert_allclose(_grad("reduce_prod", x, {"axes": (1,)}),
                               [[6, 0, 0], [0, 0, 0], [6, 3, 2], [4, -8, -0.5]])


def test_logsumexp_is_stable_and_its_gradient_is_softmax():
    big = np.array([1000.0, 1000.0], dtype=np.float32)
    check_op("logsumexp", [big], lambda a: np.float32(1000 + np.log(2)), {"axes": None}, grad=False)
    inf = np.array([[-np.inf, -np.inf], [np.inf, 1.0], [-np.inf, 0.0]], dtype=np.float32)
    check_op("logsumexp", [inf], lambda a: np.array([-np.inf, np.inf, 0.0], np.float32), {"axes": (1,)}, grad=False)
    x = np.array([[1.0, 2.0, 3.0], [-500.0, 0.0, 700.0]])
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(_grad("logsumexp", x, {"axes": (-1,)}), e / e.sum(1, keepdims=True), rtol=1e-12)


# -- argmax / argmin -------------------------------------------------------------------------

@st.composite
def arg_cases(draw):
    rank = draw(st.integers(1, 4))
    shape = draw(st.lists(st.integers(0, 4), min_size=rank, max_size=rank))
    axis = draw(st.integers(-rank, rank - 1))
    shape[axis] = shape[axis] or 1
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, np.int16, np.uint8]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(0, 3, size=shape).astype(dtype)  # few values: many ties
    return x, axis, draw(st.booleans())


def _first_index(a, axis, keepdims, better):
    """Hand-written argmax/argmin: walk the axis, keep the first best (strictly better wins)."""
    moved = np.moveaxis(a, axis, -1)
    best = np.zeros(moved.shape[:-1], dtype=np.int64)
    for idx in np.ndindex(*moved.shape[:-1]):
        row = moved[idx]
        for j in range(1, len(row)):
            if better(row[j], row[best[idx]]):
                best[idx] = j
    return np.expand_dims(best, axis) if keepdims else best


@SETTINGS
@given(arg_cases())
def test_argmax(case):
    x, axis, keepdims = case
    check_op("argmax", [x], lambda a: _first_index(a, axis, keepdims, np.greater), {"axis": axis, "keepdims": keepdims})


@SETTINGS
@given(arg_cases())
def test_argmin(case):
    x, axis, keepdims = case
    check_op("argmin", [x], lambda a: _first_index(a, axis, keepdims, np.less), {"axis": axis, "keepdims": keepdims})


def test_argmax_bool():
    x = np.array([[False, True, True], [False, False, False]])
    check_op("argmax", [x], lambda a: np.array([1, 0]), {"axis": 1})


def test_nan_propagates_in_max_min_and_argmax_argmin_everywhere():
    # NumPy: the max of a slice holding a NaN is NaN and its argmax the first NaN; the ONNX
    # lowering makes onnxruntime (which skips a NaN or not depending on where it is) agree.
    nan = np.nan
    x = np.array([[1.0, nan, 3.0], [nan, 0.0, nan], [1.0, 2.0, 3.0]], dtype=np.float32)
    check_op("reduce_max", [x], lambda a: np.array([nan, nan, 3.0], np.float32), {"axes": (1,)}, grad=False)
    check_op("reduce_min", [x], lambda a: np.array([[nan], [nan], [1.0]], np.float32), {"axes": (1,), "keepdims": True}, grad=False)
    check_op("reduce_min", [x], lambda a: np.float32(nan), {"axes": None}, grad=False)
    check_op("argmax", [x], lambda a: np.array([1, 0, 2]), {"axis": 1}, grad=False)
    check_op("argmin", [x], lambda a: np.array([[1, 0, 1]]), {"axis": 0, "keepdims": True}, grad=False)


# -- cumsum ----------------------------------------------------------------------------------

def _cumsum_ref(a, axis, exclusive, reverse):
    moved = np.moveaxis(_f64(a), axis, -1)
    out = np.zeros_like(moved)
    n = moved.shape[-1]
    for i in range(n):
        js = range(i + 1, n) if reverse else range(0, i)
        if not exclusive:
            js = list(js) + [i]
        for j in js:
            out[..., i] += moved[..., j]
    return np.moveaxis(out, -1, axis).astype(a.dtype)


@SETTINGS
@given(reduce_cases(dtypes=(np.float32, np.float64, np.int32)).filter(lambda c: c[0].ndim > 0),
       st.integers(), st.booleans(), st.booleans())
def test_cumsum(case, axis_seed, exclusive, reverse):
    x = case[0]
    axis = axis_seed % (2 * x.ndim) - x.ndim  # any axis, negative ones too
    check_op("cumsum", [x], lambda a: _cumsum_ref(a, axis, exclusive, reverse),
             {"axis": axis, "exclusive": exclusive, "reverse": reverse}, **_tol(x))


# -- symbolic dims ---------------------------------------------------------------------------

def test_type_rules_keep_symbolic_dims():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", ("batch", 4))
    assert b.op("reduce_mean", x, axes=(1,)).shape == ("batch",)
    assert b.op("reduce_mean", x, axes=(0,), keepdims=True).shape == (1, 4)
    assert b.op("reduce_sum", x, axes=None).shape == ()
    assert b.op("logsumexp", x, axes=(-1,), keepdims=True).shape == ("batch", 1)
    assert b.op("reduce_max", x, axes=(0,)).shape == (4,)  # a symbolic dim may be 0 only at run time
    a = b.op("argmax", x, axis=0)
    assert (a.shape, a.dtype) == ((4,), irf.DType.int64)
    assert b.op("cumsum", x, axis=0).shape == ("batch", 4)


@pytest.mark.parametrize("op", ["reduce_mean", "reduce_max", "logsumexp", "reduce_prod"])
def test_vjp_with_a_symbolic_batch_dim(op):
    # reduce_mean's count is not known when the graph is built: it is computed in the graph.
    b = irf.GraphBuilder("g")
    x = b.input("x", "float64", ("batch", 3))
    b.output(b.op(op, x, axes=(0,)))
    gg = vjp(b.build(verify=True), wrt=["x"]).verify()
    ort = OrtRunner(gg)
    for n in (1, 5):
        xv = np.random.default_rng(n).uniform(0.5, 2.0, size=(n, 3))
        ct = np.random.default_rng(n + 1).standard_normal(3)
        feeds = {"x": xv, next(v.name for v in gg.inputs if v.name.startswith("ct_")): ct}
        want = {
            "reduce_mean": np.broadcast_to(ct / n, (n, 3)),
            "reduce_max": (xv == xv.max(0)) * ct,
            "logsumexp": np.exp(xv - np.log(np.exp(xv).sum(0))) * ct,
            "reduce_prod": xv.prod(0) / xv * ct,
        }[op]
        np.testing.assert_allclose(Interpreter(gg).run(feeds)["grad_x"], want, rtol=1e-12)
        np.testing.assert_allclose(ort.run(feeds)["grad_x"], want, rtol=1e-12)


def test_reduce_mean_vjp_symbolic_count_beyond_float16_range():
    # 70000 rows: the count overflows float16 (max 65504), its reciprocal does not.
    b = irf.GraphBuilder("g")
    x = b.input("x", "float16", ("n", 2))
    b.output(b.op("reduce_mean", x, axes=(0,)))
    gg = vjp(b.build(verify=True), wrt=["x"]).verify()
    feeds = {"x": np.zeros((70000, 2), np.float16), next(v.name for v in gg.inputs if v.name.startswith("ct_")): np.ones(2, np.float16)}
    for run in (Interpreter(gg).run, OrtRunner(gg).run):
        got = run(feeds)["grad_x"]
        assert got.dtype == np.float16
        np.testing.assert_allclose(got.astype(np.float64), 1 / 70000, rtol=2e-3)


# -- errors ----------------------------------------------------------------------------------

def test_axis_out_of_range_names_op_and_rank():
    x = np.zeros((2, 3), np.float32)
    for op, attrs in [("reduce_sum", {"axes": (2,)}), ("reduce_max", {"axes": (-3,)}), ("argmax", {"axis": 5}),
                      ("cumsum", {"axis": 2}), ("logsumexp", {"axes": (0, 7)})]:
        with pytest.raises(irf.ShapeError, match=rf"{op}.*out of range for rank 2"):
            irf.bind(op, irf.tensor(x), **attrs)  # eager
        with pytest.raises(irf.ShapeError, match=rf"{op}.*out of range for rank 2"):
            build_graph(op, [x], attrs)  # graph
    with pytest.raises(irf.ShapeError, match="reduce_sum.*axis 0 is out of range for rank 0"):
        irf.reduce_sum(irf.tensor(np.float32(1)), axis=0)
    with pytest.raises(irf.ShapeError, match="repeated axis"):
        irf.reduce_sum(irf.tensor(x), axis=(1, -1))


def test_reductions_without_identity_reject_known_empty_axes():
    x = np.zeros((2, 0), np.float32)
    for op in ("reduce_max", "reduce_min", "logsumexp"):
        with pytest.raises(irf.ShapeError, match=rf"{op}: cannot reduce over axis 1 of size 0"):
            irf.bind(op, irf.tensor(x), axes=(1,))
        with pytest.raises(irf.ShapeError, match=rf"{op}: cannot reduce over axis 1 of size 0"):
            build_graph(op, [x], {"axes": None})
    with pytest.raises(irf.ShapeError, match="argmin: cannot reduce over axis 1 of size 0"):
        irf.argmin(irf.tensor(x), axis=-1)
    # Reducing the non-empty axis is fine and gives an empty result.
    check_op("reduce_max", [x], lambda a: np.zeros((0,), np.float32), {"axes": (0,)})
    # Sum and product over nothing are 0 and 1.
    check_op("reduce_sum", [x], lambda a: np.zeros(2, np.float32), {"axes": (1,)})
    check_op("reduce_prod", [x], lambda a: np.ones(2, np.float32), {"axes": (1,)})


def test_dtype_errors():
    with pytest.raises(irf.DTypeError, match="reduce_mean takes float tensors, got int32"):
        irf.reduce_mean(irf.tensor(np.arange(3, dtype=np.int32)))
    with pytest.raises(irf.DTypeError, match="logsumexp takes float tensors, got int64"):
        build_graph("logsumexp", [np.arange(3)], {"axes": None})
    for op in ("reduce_sum", "reduce_prod"):
        with pytest.raises(irf.DTypeError, match=f"{op} takes int or float tensors, got bool"):
            irf.bind(op, irf.tensor(np.ones(3, bool)))
    with pytest.raises(irf.DTypeError, match="cumsum takes int or float tensors, got bool"):
        build_graph("cumsum", [np.ones(3, bool)], {"axis": 0})


def test_docstring_examples_run():
    import doctest

    import irflow.ops.reduction as module

    result = doctest.testmod(module, extraglobs={"irf": irf, "np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 5 and result.failed == 0


def hessian_vector_check(op, xs, attrs, wrt2="in0", seed=0):
    """Second order: differentiate <w, grad_in0> with respect to ``wrt2`` through the VJP rules
    and compare with central differences of the first-order gradient (NumPy and onnxruntime)."""
    rng = np.random.default_rng(seed)
    g = build_graph(op, xs, attrs)
    gg = vjp(g, wrt=["in0"]).verify()
    ggg = vjp(gg, wrt=[wrt2], outputs=["grad_in0"]).verify()
    feeds = {f"in{i}": x for i, x in enumerate(xs)}
    out = Interpreter(g).run(feeds)[g.output_names[0]]
    feeds[next(v.name for v in gg.inputs if v.name.startswith("ct_"))] = rng.standard_normal(out.shape)
    w = rng.standard_normal(xs[0].shape)
    k = int(wrt2[2:])
    direction = rng.standard_normal(xs[k].shape)

    def first_order(t):
        f = dict(feeds)
        f[wrt2] = xs[k] + t * direction
        return float(np.sum(w * Interpreter(gg).run(f)["grad_in0"]))

    fd = (first_order(1e-5) - first_order(-1e-5)) / 2e-5
    for run in (Interpreter(ggg).run, OrtRunner(ggg).run):
        hv = run({**feeds, "ct_grad_in0": w})[ggg.outputs[-1].name]
        np.testing.assert_allclose(float(np.sum(hv * direction)), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("op,attrs", [("logsumexp", {"axes": (1,)}), ("reduce_prod", {"axes": (0,)}),
                                      ("reduce_max", {"axes": None}), ("reduce_mean", {"axes": (-1,), "keepdims": True})])
def test_second_order_gradients(op, attrs):
    x = np.random.default_rng(1).uniform(0.5, 1.5, size=(3, 4))
    hessian_vector_check(op, [x], attrs)
