"""The elementwise ops through the shared harness, plus their documented edge semantics.

References are written here by hand, mostly as Python's ``math`` functions applied element by
element in float64 (independent of the NumPy ufuncs the kernels use), then rounded to the
input dtype. Hypothesis picks shapes: ranks 0 to 3, size-0 dims and broadcasting pairs.
Input domains keep away from kinks and poles so that finite differences are meaningful.
"""
from __future__ import annotations

import doctest
import math
import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.executors.numpy.kernels.elementwise import erf_cody
from irflow.ir.dtypes import DType
from tests.ops.harness import build_graph, check_op

BF16 = DType.bfloat16.numpy
SETTINGS = settings(max_examples=15, deadline=None)


# -- shapes and values -------------------------------------------------------------------------
DIMS = st.sampled_from([0, 1, 2, 3, 4, 2, 3])  # size-0 dims now and then, mostly small non-empty


@st.composite
def shapes(draw, max_rank: int = 3) -> tuple:
    rank = draw(st.integers(0, max_rank))
    return tuple(draw(DIMS) for _ in range(rank))


@st.composite
def broadcast_shapes(draw, n: int = 2) -> tuple:
    """``n`` shapes that broadcast together: suffixes of one shape with some dims set to 1."""
    full = draw(shapes())
    out = []
    for _ in range(n):
        drop = draw(st.integers(0, len(full)))
        out.append(tuple(1 if draw(st.booleans()) else d for d in full[drop:]))
    return tuple(out)


SEEDS = st.integers(0, 2**32 - 1)
FLOATS = st.sampled_from(["float32", "float64"])


def uniform(lo, hi):
    return lambda rng, shape: np.asarray(rng.uniform(lo, hi, shape))


def away_from_zero(lo, hi):
    """|x| in [lo, hi] with a random sign: no kink at 0 within finite-difference reach."""
    return lambda rng, shape: np.asarray(rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape))


def away_from_integers(rng, shape):
    """k + f with f in [0.1, 0.4] or [0.6, 0.9]: no floor/ceil/round jump nearby."""
    return np.asarray(rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.4, shape) + 0.5 * rng.integers(0, 2, shape))


def elementwise(fn, otype=np.float64):
    """``fn`` applied to each element (several arrays broadcast together), in float64."""
    vec = np.vectorize(fn, otypes=[otype])

    def ref(*arrays):
        wide = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
        return vec(*wide)

    return ref


def rounded_to_input(fn):
    """A float64 reference rounded to the (promoted) dtype of its float inputs."""
    def ref(*arrays):
        dtype = np.result_type(*[a for a in arrays if a.dtype != np.bool_])
        return np.asarray(elementwise(fn)(*arrays)).astype(dtype)

    return ref


def _gelu_exact(v):
    return 0.5 * v * (1 + math.erf(v / math.sqrt(2)))


def _gelu_tanh(v):
    return 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))


def _round_half_even(v):
    return float(round(v))  # Python's round() rounds halves to even


# op: (reference per element, input domain, attrs)
UNARY_FLOAT = {
    "neg": (lambda v: -v, uniform(-3, 3), {}),
    "abs": (lambda v: -v if v < 0 else v, away_from_zero(0.1, 3), {}),
    "sign": (lambda v: (v > 0) - (v < 0), away_from_zero(0.1, 3), {}),
    "exp": (math.exp, uniform(-3, 3), {}),
    "log": (math.log, uniform(0.2, 4), {}),
    "log1p": (math.log1p, uniform(-0.5, 3), {}),
    "expm1": (math.expm1, uniform(-3, 3), {}),
    "sqrt": (math.sqrt, uniform(0.2, 4), {}),
    "rsqrt": (lambda v: 1 / math.sqrt(v), uniform(0.2, 4), {}),
    "reciprocal": (lambda v: 1 / v, away_from_zero(0.3, 3), {}),
    "sin": (math.sin, uniform(-4, 4), {}),
    "cos": (math.cos, uniform(-4, 4), {}),
    "tan": (math.tan, uniform(-1.2, 1.2), {}),
    "tanh": (math.tanh, uniform(-4, 4), {}),
    "sigmoid": (lambda v: 1 / (1 + math.exp(-v)), uniform(-8, 8), {}),
    "relu": (lambda v: v if v > 0 else 0.0, away_from_zero(0.1, 3), {}),
    "leaky_relu": (lambda v: v if v >= 0 else 0.2 * v, away_from_zero(0.1, 3), {"alpha": 0.2}),
    "elu": (lambda v: v if v > 0 else 1.5 * math.expm1(v), away_from_zero(0.1, 3), {"alpha": 1.5}),
    "gelu": (_gelu_exact, uniform(-4, 4), {"approximate": "none"}),
    "gelu_tanh": (_gelu_tanh, uniform(-4, 4), {"approximate": "tanh"}),
    "erf": (math.erf, uniform(-3, 3), {}),
    "softplus": (lambda v: math.log1p(math.exp(v)), uniform(-8, 8), {}),
    "floor": (math.floor, away_from_integers, {}),
    "ceil": (math.ceil, away_from_integers, {}),
    "round": (_round_half_even, away_from_integers, {}),
}


def _op_name(key: str) -> str:
    return "gelu" if key == "gelu_tanh" else key


@pytest.mark.parametrize("key", sorted(UNARY_FLOAT))
@SETTINGS
@given(shape=shapes(), dtype=FLOATS, seed=SEEDS)
def test_unary_float(key, shape, dtype, seed):
    fn, domain, attrs = UNARY_FLOAT[key]
    rng = np.random.default_rng(seed)
    x = domain(rng, shape).astype(dtype)
    check_op(_op_name(key), [x], rounded_to_input(fn), attrs, rtol=2e-6, atol=1e-6, rng=rng)


@pytest.mark.parametrize("key", sorted(UNARY_FLOAT))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_unary_low_precision_keeps_dtype(key, dtype):
    """float16/bfloat16 in, the same dtype out, close to the float64 value; ORT agrees on float16
    (onnxruntime's Python API cannot return bfloat16 arrays)."""
    fn, domain, attrs = UNARY_FLOAT[key]
    rng = np.random.default_rng(7)
    x = domain(rng, (3, 5)).astype(np.float32).astype(DType(dtype).numpy)
    tol = 4e-3 if dtype == "float16" else 2e-2
    (got,) = check_op(_op_name(key), [x], rounded_to_input(fn), attrs, rtol=tol, atol=tol,
                      ort=dtype == "float16", ort_rtol=tol, ort_atol=tol, grad=False)
    assert got.dtype == x.dtype


@pytest.mark.parametrize("op", ["neg", "abs", "sign", "relu"])
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64"])
@settings(max_examples=8, deadline=None)
@given(shape=shapes(), seed=SEEDS)
def test_unary_int(op, dtype, shape, seed):
    fn = UNARY_FLOAT[op][0]
    x = np.asarray(np.random.default_rng(seed).integers(-50, 50, shape)).astype(dtype)
    ref = lambda a: elementwise(fn, np.int64)(a).astype(a.dtype)  # noqa: E731
    check_op(op, [x], ref)


@SETTINGS
@given(shape=shapes(), dtype=FLOATS, seed=SEEDS)
def test_isnan_isinf(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.choice(np.array([0.0, 1.5, -2.0, np.nan, np.inf, -np.inf]), shape)).astype(dtype)
    check_op("isnan", [x], elementwise(math.isnan, bool))
    check_op("isinf", [x], elementwise(math.isinf, bool))


@SETTINGS
@given(shape=shapes(), seed=SEEDS)
def test_logical_not(shape, seed):
    x = np.asarray(np.random.default_rng(seed).integers(0, 2, shape)).astype(bool)
    check_op("logical_not", [x], elementwise(lambda v: not v, bool))


# -- binary ------------------------------------------------------------------------------------
def grid(step, offset):
    """Values on k * step + offset: two grids with different offsets never tie."""
    return lambda rng, shape: np.asarray(rng.integers(-4, 5, shape) * step + offset)


# op: (reference per element, domain of x, domain of y)
BINARY_FLOAT = {
    "add": (operator.add, uniform(-3, 3), uniform(-3, 3)),
    "sub": (operator.sub, uniform(-3, 3), uniform(-3, 3)),
    "mul": (operator.mul, uniform(-3, 3), uniform(-3, 3)),
    "div": (operator.truediv, uniform(-3, 3), away_from_zero(0.3, 3)),
    "pow": (math.pow, uniform(0.5, 2), uniform(-2, 2)),
    "maximum": (max, grid(1.0, 0.0), grid(1.0, 0.5)),
    "minimum": (min, grid(1.0, 0.0), grid(1.0, 0.5)),
}


@pytest.mark.parametrize("op", sorted(BINARY_FLOAT))
@settings(max_examples=20, deadline=None)
@given(pair=broadcast_shapes(), dtype=FLOATS, seed=SEEDS)
def test_binary_float(op, pair, dtype, seed):
    fn, dom_x, dom_y = BINARY_FLOAT[op]
    rng = np.random.default_rng(seed)
    x, y = dom_x(rng, pair[0]).astype(dtype), dom_y(rng, pair[1]).astype(dtype)
    check_op(op, [x, y], rounded_to_input(fn), rtol=2e-6, rng=rng)


@settings(max_examples=20, deadline=None)
@given(pair=broadcast_shapes(), dtype=FLOATS, seed=SEEDS)
def test_mod_float_follows_python(pair, dtype, seed):
    rng = np.random.default_rng(seed)
    y = away_from_zero(0.5, 2)(rng, pair[1]).astype(dtype)
    # x = y * (k + f): x / y stays off integers, so mod is smooth for the gradient check
    full = np.broadcast_shapes(pair[0], pair[1])
    x = np.asarray(np.broadcast_to(y, full) * away_from_integers(rng, full)).astype(dtype)
    # Python's % on floats: the sign of the divisor, exactly as documented
    check_op("mod", [x, y], rounded_to_input(operator.mod), rng=rng)


def trunc_div(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


BINARY_INT = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": trunc_div, "mod": operator.mod,
    "maximum": max, "minimum": min,
}


@pytest.mark.parametrize("op", sorted(BINARY_INT))
@pytest.mark.parametrize("dtype", ["int32", "int64"])
@settings(max_examples=10, deadline=None)
@given(pair=broadcast_shapes(), seed=SEEDS)
def test_binary_int(op, dtype, pair, seed):
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.integers(-50, 50, pair[0])).astype(dtype)
    y = np.asarray(rng.integers(1, 9, pair[1]) * rng.choice([-1, 1], pair[1])).astype(dtype)  # no zero divisors
    ref = lambda a, b: elementwise(BINARY_INT[op], np.int64)(a, b).astype(dtype)  # noqa: E731
    check_op(op, [x, y], ref)


def test_int_div_and_mod_signs_by_hand():
    x = irf.tensor(np.array([-7, 7, -7, 7, 6], np.int64))
    y = irf.tensor(np.array([2, -2, -2, 2, 3], np.int64))
    np.testing.assert_array_equal(irf.div(x, y).numpy(), [-3, -3, 3, 3, 2])  # toward zero
    np.testing.assert_array_equal(irf.mod(x, y).numpy(), [1, -1, -1, 1, 0])  # divisor's sign
    np.testing.assert_array_equal(irf.mod(irf.tensor([-7.5, 7.5, -0.5]), 2.0).numpy(), [0.5, 1.5, 1.5])


PREDICATES = {
    "equal": operator.eq, "not_equal": operator.ne, "less": operator.lt, "less_equal": operator.le,
    "greater": operator.gt, "greater_equal": operator.ge,
}


@pytest.mark.parametrize("op", sorted(PREDICATES))
@SETTINGS
@given(pair=broadcast_shapes(), dtype=st.sampled_from(["float32", "float64", "int32", "int64"]), seed=SEEDS)
def test_comparison(op, pair, dtype, seed):
    rng = np.random.default_rng(seed)
    x, y = (np.asarray(rng.integers(-2, 3, s)).astype(dtype) for s in pair)  # a small grid: many ties
    check_op(op, [x, y], elementwise(PREDICATES[op], bool))


def test_comparison_of_mixed_dtypes_promotes():
    x = np.array([1.0, 2.5, 3.0], np.float32)
    y = np.array([1.0, 2.0, 4.0], np.float64)
    check_op("less_equal", [x, y], lambda a, b: np.array([True, False, True]))
    check_op("equal", [np.array([True, False]), np.array([1, 1], np.int32)], lambda a, b: np.array([True, False]))


@pytest.mark.parametrize("op,fn", [("logical_and", lambda a, b: a and b), ("logical_or", lambda a, b: a or b),
                                   ("logical_xor", operator.ne), ("equal", operator.eq)])
@SETTINGS
@given(pair=broadcast_shapes(), seed=SEEDS)
def test_logical_binary(op, fn, pair, seed):
    rng = np.random.default_rng(seed)
    x, y = (np.asarray(rng.integers(0, 2, s)).astype(bool) for s in pair)
    check_op(op, [x, y], elementwise(fn, bool))


@settings(max_examples=20, deadline=None)
@given(shapes3=broadcast_shapes(3), dtype=FLOATS, seed=SEEDS)
def test_where(shapes3, dtype, seed):
    rng = np.random.default_rng(seed)
    cond = np.asarray(rng.integers(0, 2, shapes3[0])).astype(bool)
    x, y = (np.asarray(rng.standard_normal(s)).astype(dtype) for s in shapes3[1:])
    check_op("where", [cond, x, y], rounded_to_input(lambda c, a, b: a if c else b), rng=rng)


def test_where_promotes_mixed_branches():
    cond = np.array([True, False, True])
    check_op("where", [cond, np.array([1, 2, 3], np.int32), np.array([7, 8, 9], np.int64)],
             lambda c, a, b: np.array([1, 8, 3], np.int64))
    check_op("where", [cond, np.float32([1.5, 2, 3]), np.float64([7, 8.5, 9])],
             lambda c, a, b: np.array([1.5, 8.5, 3.0]))
    # float16 with bfloat16 has no NumPy common type; irflow promotes to float32
    got = irf.where(irf.tensor(cond), irf.tensor(np.float16([1, 2, 3])), irf.tensor(np.ones(3, BF16)))
    assert got.dtype == DType.float32
    np.testing.assert_array_equal(got.numpy(), [1, 1, 3])



@pytest.mark.parametrize("x,y,dtype", [(1.0, 2.0, np.float32), (1, 2, np.int64), (1, 2.5, np.float32), (True, False, np.bool_)])
def test_where_with_two_python_scalars_takes_the_default_dtypes(x, y, dtype):
    """torch.where(c, 1.0, 2.0): the bool condition is no value operand, so the two numbers are
    scalars alone (float32 / int64), eagerly and traced (was a DTypeError: 1.0 cannot be bool)."""
    cond = np.array([True, False, True])
    want = np.where(cond, x, y).astype(dtype)
    for got in (irf.where(irf.tensor(cond), x, y), irf.function(lambda c: irf.where(c, x, y))(cond)):
        assert got.numpy().dtype == want.dtype
        np.testing.assert_array_equal(got.numpy(), want)

# -- relu_grad ----------------------------------------------------------------------------------
def _relu_grad_reference(g, x):
    return rounded_to_input(lambda gv, xv: gv if xv > 0 else 0.0)(g, x)


@SETTINGS
@given(shape=shapes(), dtype=FLOATS, seed=SEEDS)
def test_relu_grad(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    g = np.asarray(rng.standard_normal(shape)).astype(dtype)
    x = away_from_zero(0.1, 3)(rng, shape).astype(dtype)  # no kink within finite-difference reach
    check_op("relu_grad", [g, x], _relu_grad_reference, rng=rng)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_relu_grad_low_precision_keeps_dtype(dtype):
    rng = np.random.default_rng(3)
    g, x = (rng.standard_normal((4, 5)).astype(np.float32).astype(DType(dtype).numpy) for _ in range(2))
    (got,) = check_op("relu_grad", [g, x], _relu_grad_reference, rtol=0, atol=0, ort=dtype == "float16", grad=False)
    assert got.dtype == g.dtype


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_grad_nan_inf_in_g_give_zero_where_x_is_not_positive(dtype):
    """As where(x > 0, g, 0), PyTorch's threshold_backward and TF's ReluGrad; g * (x > 0) would give NaN."""
    g = np.array([np.nan, np.inf, -np.inf, np.nan, 1.5, 2.5, np.inf, 3.5], dtype)
    x = np.array([-1.0, 0.0, -0.0, np.nan, np.nan, -np.inf, 2.0, np.inf], dtype)
    want = np.array([0, 0, 0, 0, 0, 0, np.inf, 3.5], dtype)
    (got,) = check_op("relu_grad", [g, x], lambda a, b: want, rtol=0, atol=0, grad=False)
    assert not np.signbit(got).any()  # +0.0, never -0.0


def test_relu_grad_type_errors_name_the_op():
    f32, f64 = np.ones((2, 3), np.float32), np.ones((2, 3), np.float64)
    with pytest.raises(irf.ShapeError, match="relu_grad.*same shape"):  # no broadcasting, even where NumPy would
        irf.relu_grad(irf.tensor(f32), irf.tensor(np.ones(3, np.float32)))
    with pytest.raises(irf.DTypeError, match="relu_grad.*float64 and float32"):
        irf.relu_grad(irf.tensor(f64), irf.tensor(f32))
    with pytest.raises(irf.DTypeError, match="relu_grad takes float"):
        irf.relu_grad(irf.tensor(np.ones(3, np.int32)), irf.tensor(np.ones(3, np.int32)))
    b = irf.GraphBuilder("g")
    g, x = b.input("g", "float32", ("n", 3)), b.input("x", "float32", ("n", 4))
    with b, pytest.raises(irf.ShapeError, match=r"relu_grad \(node"):
        irf.relu_grad(g, x)
    b = irf.GraphBuilder("g")
    g, x = b.input("g", "float32", ("n", 3)), b.input("x", "float32", ("m", 3))
    with b:  # symbols may be equal at run time: the kernel checks then
        assert irf.relu_grad(g, x).type.shape == ("m", 3)


def test_relu_vjp_is_one_relu_grad_node():
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    gg = vjp(build_graph("relu", [x], {}), wrt=["in0"])
    ops = [n.op for n in gg.nodes]
    assert ops.count("relu_grad") == 1 and not {"greater", "zeros_like", "where"} & set(ops), ops
    ct = np.array([np.nan, 5.0, 7.0], np.float32)
    np.testing.assert_array_equal(Interpreter(gg).run({"in0": x, gg.inputs[1].name: ct})["grad_in0"], [0, 0, 7])


def test_relu_vjp_with_an_output_gradient_of_another_dtype_still_promotes():
    # relu_grad wants one dtype; the VJP falls back to where(), as relu's gradient always did
    x = irf.tensor(np.array([-1.0, 2.0], np.float32))
    with irf.GradientTape() as tape:
        tape.watch(x)
        y = irf.relu(x)
    (gx,) = tape.gradient(y, [x], output_gradients=[irf.tensor(np.array([3.0, 4.0]))])
    np.testing.assert_array_equal(gx.numpy(), [0.0, 4.0])


def test_second_derivatives_through_relu_match_finite_differences():
    # d2/dv2 relu(v)^3 = 6 max(v, 0): the first derivative's relu_grad is differentiated w.r.t. g
    d2 = irf.grad(irf.grad(lambda v: irf.relu(v) ** 3))
    for v in (-1.5, -0.25, 0.5, 2.0):
        np.testing.assert_allclose(float(d2(np.float64(v))), 6 * max(v, 0.0), rtol=1e-12)
    # the same as graphs: vjp of vjp, against central differences of the first derivative
    x = np.linspace(-2, 2, 8)  # no point at the kink 0
    b = irf.GraphBuilder("f")
    xin = b.input("in0", "float64", (8,))
    with b:
        b.output(irf.relu(xin) * irf.sin(xin))
    first = vjp(b.build(), wrt=["in0"], seed="ones")
    assert "relu_grad" in [n.op for n in first.nodes]
    second = vjp(first, wrt=["in0"], outputs=["grad_in0"], seed="ones")
    got = Interpreter(second).run({"in0": x})[second.outputs[-1].name]
    eps = 1e-6
    d1 = lambda t: Interpreter(first).run({"in0": t})["grad_in0"]  # noqa: E731
    np.testing.assert_allclose(got, (d1(x + eps) - d1(x - eps)) / (2 * eps), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(got, np.where(x > 0, 2 * np.cos(x) - x * np.sin(x), 0), rtol=1e-12, atol=1e-15)


# -- cast, clip, *_like --------------------------------------------------------------------------
CASTS = [
    ("float32", "int32", lambda v: math.trunc(v)),
    ("float64", "int64", lambda v: math.trunc(v)),
    ("float32", "float64", lambda v: v),
    ("float64", "float32", lambda v: v),
    ("float32", "float16", lambda v: v),
    ("int64", "float32", lambda v: v),
    ("int32", "int8", lambda v: v),
    ("float32", "bool", lambda v: v != 0),
    ("bool", "float32", lambda v: float(v)),
    ("float32", "bfloat16", lambda v: v),
]


@pytest.mark.parametrize("src,dst,fn", CASTS, ids=[f"{a}->{b}" for a, b, _ in CASTS])
@settings(max_examples=8, deadline=None)
@given(shape=shapes(), seed=SEEDS)
def test_cast(src, dst, fn, shape, seed):
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.integers(0, 2, shape) if src == "bool" else rng.uniform(-100, 100, shape)).astype(src)
    if src == "float32" and dst == "bool":
        x[rng.random(shape) < 0.3] = 0.0
    out_dtype = DType(dst).numpy
    ref = lambda a: np.asarray(np.vectorize(fn, otypes=[object])(a), dtype=np.float64 if out_dtype.kind == "V" else None).astype(out_dtype)  # noqa: E731
    # bfloat16 outputs cannot come back through onnxruntime's Python API; float64 -> float32
    # is checked for gradients below, finite differences in float32 being too coarse.
    check_op("cast", [x], ref, {"dtype": DType(dst)}, rtol=0, atol=0, ort=dst != "bfloat16",
             grad=dst == "float64", rng=rng)


def test_cast_vjp_returns_to_input_dtype():
    x = np.array([1.5, -2.0], np.float32)
    g = vjp(build_graph("cast", [x], {"dtype": DType.float64}), wrt=["in0"])
    grad_type = next(v for v in g.outputs if v.name == "grad_in0").type
    assert grad_type.dtype is DType.float32
    ct = np.array([0.25, 4.0])
    out = Interpreter(g).run({"in0": x, g.inputs[1].name: ct})
    np.testing.assert_array_equal(out["grad_in0"], ct.astype(np.float32))
    # int -> float: no gradient flows to an int input (vjp refuses to differentiate it at all)
    with pytest.raises(irf.IrflowError, match="int32"):
        vjp(build_graph("cast", [np.array([1], np.int32)], {"dtype": DType.float32}), wrt=["in0"])


@pytest.mark.parametrize("bounds", [(-1.0, 1.5), (-1.0, None), (None, 0.5)])
@SETTINGS
@given(shape=shapes(), dtype=FLOATS, seed=SEEDS)
def test_clip_float(bounds, shape, dtype, seed):
    lo, hi = bounds
    rng = np.random.default_rng(seed)
    x = away_from_zero(0.05, 3)(rng, shape)
    x = np.where(np.isclose(x, lo if lo is not None else 99, atol=0.05), x + 0.2, x)  # off the bounds
    x = np.where(np.isclose(x, hi if hi is not None else 99, atol=0.05), x + 0.2, x).astype(dtype)

    def one(v):
        if lo is not None and v < lo:
            return lo
        return hi if hi is not None and v > hi else v

    check_op("clip", [x], rounded_to_input(one), {"min": lo, "max": hi}, rng=rng)


def test_clip_int_and_errors():
    x = np.array([-5, 0, 3, 9], np.int32)
    check_op("clip", [x], lambda a: np.array([-2, 0, 3, 4], np.int32), {"min": -2, "max": 4})
    with pytest.raises(irf.DTypeError, match="clip"):
        irf.clip(irf.tensor(x), 0.5, 3)
    # min > max gives max everywhere, as NumPy
    np.testing.assert_array_equal(irf.clip(irf.tensor(x), 5, 1).numpy(), [1, 1, 1, 1])


@pytest.mark.parametrize("op,fill", [("zeros_like", 0), ("ones_like", 1)])
@SETTINGS
@given(shape=shapes(), dtype=st.sampled_from(["float32", "int64", "bool", "float16"]))
def test_fill_like(op, fill, shape, dtype):
    x = np.full(shape, 7, dtype=dtype)
    check_op(op, [x], lambda a: np.full(a.shape, fill, dtype=a.dtype))


# -- gradients at the documented special points ------------------------------------------------
def _grads(op, inputs, attrs=None, ct=None):
    g = build_graph(op, inputs, attrs or {})
    gg = vjp(g, wrt=[f"in{i}" for i, a in enumerate(inputs) if a.dtype.kind == "f"], seed="ones")
    feeds = {f"in{i}": a for i, a in enumerate(inputs)}
    out = Interpreter(gg).run(feeds)
    return [out.get(f"grad_in{i}") for i in range(len(inputs))]


def test_gradient_at_kinks():
    zeros = np.zeros(3)
    assert np.array_equal(_grads("relu", [zeros])[0], [0, 0, 0])
    assert np.array_equal(_grads("abs", [zeros])[0], [0, 0, 0])
    x = np.array([1.0, 2.0, 3.0])
    for op in ("maximum", "minimum"):
        gx, gy = _grads(op, [x, np.array([1.0, 5.0, 0.0])])
        # a tie splits evenly; otherwise the winner takes it all
        want_x = [0.5, 0.0, 1.0] if op == "maximum" else [0.5, 1.0, 0.0]
        np.testing.assert_array_equal(gx, want_x)
        np.testing.assert_array_equal(gy, 1 - np.array(want_x))
    # clip passes the gradient at the bounds themselves (min <= x <= max)
    (gc,) = _grads("clip", [np.array([-1.0, 0.0, 1.0, 1.5, -2.0])], {"min": -1.0, "max": 1.0})
    np.testing.assert_array_equal(gc, [1, 1, 1, 0, 0])
    for op in ("floor", "ceil", "round", "sign"):
        np.testing.assert_array_equal(_grads(op, [np.array([0.5, 1.0, -2.5])])[0], [0, 0, 0])


@pytest.mark.parametrize("op,attrs,lo,hi", [
    ("tanh", {}, -2, 2), ("sigmoid", {}, -4, 4), ("softplus", {}, -4, 4), ("erf", {}, -2, 2), ("log1p", {}, 0, 3),
    ("gelu", {"approximate": "none"}, -3, 3), ("gelu", {"approximate": "tanh"}, -3, 3), ("elu", {"alpha": 1.0}, 0.1, 2),
    ("sqrt", {}, 0.5, 3), ("rsqrt", {}, 0.5, 3), ("tan", {}, -1, 1), ("reciprocal", {}, 0.5, 3),
])
def test_second_derivative_by_differentiating_the_vjp(op, attrs, lo, hi):
    """VJP rules are IR made of differentiable ops: d/dx of the first derivative vs finite differences."""
    x = np.linspace(lo, hi, 7)
    first = vjp(build_graph(op, [x], attrs), wrt=["in0"], seed="ones")
    second = vjp(first, wrt=["in0"], outputs=["grad_in0"], seed="ones")
    got = Interpreter(second).run({"in0": x})[second.outputs[-1].name]  # the last output: d(grad_in0)/d(in0)
    eps = 1e-5
    d1 = lambda t: Interpreter(first).run({"in0": t})["grad_in0"]  # noqa: E731
    np.testing.assert_allclose(got, (d1(x + eps) - d1(x - eps)) / (2 * eps), rtol=1e-6, atol=1e-7)


def test_pow_gradient_guards_like_jax():
    x, y = np.array([0.0, 0.0, 2.0]), np.array([0.0, 2.0, 3.0])
    gx, gy = _grads("pow", [x, y])
    # d/dx x^y = y x^(y-1): 0 at y == 0 (not 0 * inf), 0 at x == 0 for y == 2, 12 at (2, 3)
    np.testing.assert_array_equal(gx, [0.0, 0.0, 12.0])
    # d/dy x^y = x^y log x, taken as 0 where x == 0
    np.testing.assert_allclose(gy, [0.0, 0.0, 8 * math.log(2)], rtol=1e-15)


def test_mixed_precision_gradients_keep_each_input_dtype():
    x, y = np.ones((2, 3), np.float32), np.full((3,), 2.0)
    g = vjp(build_graph("mul", [x, y], {}), wrt=["in0", "in1"], seed="ones")
    types = {v.name: v.type for v in g.outputs}
    assert types["grad_in0"].dtype is DType.float32 and types["grad_in0"].shape == (2, 3)
    assert types["grad_in1"].dtype is DType.float64 and types["grad_in1"].shape == (3,)
    out = Interpreter(g).run({"in0": x, "in1": y})
    np.testing.assert_array_equal(out["grad_in0"], np.full((2, 3), 2, np.float32))
    np.testing.assert_array_equal(out["grad_in1"], [2.0, 2.0, 2.0])


# -- erf accuracy --------------------------------------------------------------------------------
def test_erf_float64_accuracy():
    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-300, 3, 400), -np.geomspace(1e-300, 3, 400)])
    want = np.array([math.erf(v) for v in x])
    rel = np.abs(erf_cody(x) - want) / np.maximum(np.abs(want), 1e-300)  # erf(0) == 0 exactly
    assert rel.max() < 2e-15
    wantc = np.array([math.erfc(v) for v in x])
    relc = np.abs(erf_cody(x, complement=True) - wantc) / wantc
    assert relc.max() < 4e-15
    special = erf_cody(np.array([np.inf, -np.inf, np.nan, 0.0, 30.0, 1e300]))
    np.testing.assert_array_equal(special, [1, -1, np.nan, 0, 1, 1])


def test_erf_float32_within_two_ulps():
    x = np.concatenate([np.linspace(-6, 6, 200001), np.geomspace(1e-38, 4, 2000)]).astype(np.float32)
    x = np.concatenate([x, -x])
    want = np.array([math.erf(v) for v in x.astype(np.float64)])
    got = irf.erf(irf.tensor(x)).numpy()
    assert got.dtype == np.float32
    ulps = np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32))
    assert ulps.max() <= 2.0
    special = irf.erf(irf.tensor(np.float32([np.inf, -np.inf, np.nan, 0.0]))).numpy()
    np.testing.assert_array_equal(special, [1, -1, np.nan, 0])


def test_erf_and_gelu_float64_on_onnxruntime_use_the_decomposition():
    # onnxruntime has no float64 Erf kernel; the lowering evaluates Cody's rationals instead
    x = np.linspace(-6, 6, 241)
    check_op("erf", [x], elementwise(math.erf), rtol=1e-15, atol=1e-16, ort_rtol=1e-14, ort_atol=1e-15, grad=False)
    check_op("gelu", [x], elementwise(_gelu_exact), {"approximate": "none"}, rtol=1e-14, atol=1e-15,
             ort_rtol=1e-13, ort_atol=1e-14, grad=False)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_below_opset_20_is_decomposed(approximate, dtype):
    import onnx
    import onnxruntime as ort

    from irflow.executors.onnx import to_model

    x = np.linspace(-5, 5, 101).astype(dtype)
    g = build_graph("gelu", [x], {"approximate": approximate})
    model = to_model(g, opset=18)
    onnx.checker.check_model(model, full_check=True)
    assert "Gelu" not in {n.op_type for n in model.graph.node}
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"in0": x})
    fn = _gelu_exact if approximate == "none" else _gelu_tanh
    np.testing.assert_allclose(got, elementwise(fn)(x), rtol=1e-5 if dtype == "float32" else 1e-13, atol=1e-6 if dtype == "float32" else 1e-14)


def test_log1p_expm1_stay_accurate_for_tiny_inputs_on_onnxruntime():
    x = np.array([1e-12, -3e-9, 2e-5, 0.3, -0.45, 5.0])
    check_op("log1p", [x], elementwise(math.log1p), rtol=1e-15, ort_rtol=1e-14, ort_atol=0, grad=False)
    check_op("expm1", [x], elementwise(math.expm1), rtol=1e-15, ort_rtol=1e-14, ort_atol=0, grad=False)


def test_sigmoid_softplus_extremes():
    x = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    s = irf.sigmoid(irf.tensor(x)).numpy()
    np.testing.assert_allclose(s, [0.0, math.exp(-40) / (1 + math.exp(-40)), 0.5, 1.0, 1.0], rtol=1e-15)
    sp = irf.softplus(irf.tensor(x)).numpy()
    np.testing.assert_allclose(sp, [0.0, math.log1p(math.exp(-40)), math.log(2), 40.0, 800.0], rtol=1e-15)
    assert irf.sigmoid(irf.tensor(x.astype(np.float32))).dtype == DType.float32


SPECIAL_VALUE_OPS = [("clip", {"min": -1.0, "max": 1.0}), ("relu", {}), ("sign", {}), ("round", {}), ("sigmoid", {}),
                     ("softplus", {}), ("erf", {}), ("gelu", {}), ("elu", {}), ("leaky_relu", {}), ("log1p", {}),
                     ("expm1", {}), ("tanh", {}), ("abs", {}), ("floor", {}), ("isnan", {}), ("isinf", {})]


@pytest.mark.parametrize("op,attrs", SPECIAL_VALUE_OPS, ids=[op for op, _ in SPECIAL_VALUE_OPS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_inf_and_signed_zero_agree_with_onnxruntime(op, attrs, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30], dtype)
    check_op(op, [x], None, attrs, grad=False)  # eager == interpreter == onnxruntime, NaN for NaN


def test_maximum_minimum_propagate_nan():
    x, y = np.array([np.nan, 1.0, -3.0], np.float32), np.array([0.0, np.nan, 2.0], np.float32)
    check_op("maximum", [x, y], lambda a, b: np.float32([np.nan, np.nan, 2.0]), grad=False)
    check_op("minimum", [x, y], lambda a, b: np.float32([np.nan, np.nan, -3.0]), grad=False)


# -- errors ---------------------------------------------------------------------------------------
def test_int_float_mixing_names_the_op():
    i, f = irf.tensor(np.arange(3, dtype=np.int32)), irf.tensor(np.ones(3, np.float32))
    for fn, name in [(irf.add, "add"), (irf.maximum, "maximum"), (irf.less, "less")]:
        with pytest.raises(irf.DTypeError, match=name) as e:
            fn(i, f)
        assert "int32" in str(e.value) and "float32" in str(e.value)
    b = irf.GraphBuilder("g")
    x, y = b.input("x", "int64", (2,)), b.input("y", "float32", (2,))
    with b, pytest.raises(irf.DTypeError, match=r"mul \(node"):
        irf.mul(x, y)


def test_python_float_with_int_tensor_is_a_dtype_error():
    with pytest.raises(irf.DTypeError, match="2.5"):
        irf.mul(irf.tensor(np.arange(3)), 2.5)
    b = irf.GraphBuilder("g")
    x = b.input("x", "int32", ("n",))
    with b, pytest.raises(irf.DTypeError, match="2.5"):
        irf.add(x, 2.5)
    assert irf.mul(irf.tensor(np.arange(3, dtype=np.int16)), 2).dtype == DType.int16  # ints stay weak


def test_incompatible_broadcast_names_both_shapes():
    with pytest.raises(irf.ShapeError) as e:
        irf.add(irf.tensor(np.ones((3, 4), np.float32)), irf.tensor(np.ones((5,), np.float32)))
    assert "add" in str(e.value) and "(3, 4)" in str(e.value) and "(5,)" in str(e.value)
    b = irf.GraphBuilder("g")
    x, y = b.input("x", "float32", ("n", 4)), b.input("y", "float32", (3,))
    with b, pytest.raises(irf.ShapeError, match=r"\('n', 4\) and \(3,\)"):
        irf.where(x > 0, x, y)


def test_kind_errors_in_graphs():
    b = irf.GraphBuilder("g")
    i, f, m = b.input("i", "int64", (2,)), b.input("f", "float32", (2,)), b.input("m", "bool", (2,))
    with b:
        for fn in (irf.exp, irf.sigmoid, irf.floor, irf.isnan, irf.erf):
            with pytest.raises(irf.DTypeError, match=fn.__name__):
                fn(i)
        with pytest.raises(irf.DTypeError, match="pow"):
            irf.pow(i, i)
        with pytest.raises(irf.DTypeError, match="logical_and"):
            irf.logical_and(m, f)
        with pytest.raises(irf.DTypeError, match="where"):
            irf.where(f, f, f)
        with pytest.raises(irf.DTypeError, match="add"):
            irf.add(m, m)
        with pytest.raises(irf.IRValidationError, match="approximate"):
            irf.gelu(f, approximate="fast")


def test_symbolic_dims_broadcast():
    b = irf.GraphBuilder("g")
    x, y = b.input("x", "float32", ("batch", 1)), b.input("y", "float64", (4,))
    with b:
        z = irf.maximum(x, y)
    assert z.type.shape == ("batch", 4) and z.dtype is DType.float64


def test_docstring_examples():
    import irflow.ops.elementwise as mod

    missing = [n for n in mod.__all__ if ">>> irf." not in (getattr(mod, n).__doc__ or "")]
    assert not missing, f"no example in the docstring of {missing}"
    result = doctest.testmod(mod, extraglobs={"irf": irf, "np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= len(mod.__all__)


@pytest.mark.parametrize("p", [2.0, 3.0, 4.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow_small_integral_exponent_is_repeated_multiplication(p, dtype):
    # the kernel's fast path (np.power is ~200x slower for these): bitwise the products written
    # here, on the interpreter and eagerly, and within rounding of np.power
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(dtype)
    want = {2.0: x * x, 3.0: x * x * x, 4.0: (x * x) * (x * x)}[p]
    eager = (irf.tensor(x) ** p).numpy()
    np.testing.assert_array_equal(eager, want)
    b = irf.GraphBuilder("g")
    xs = b.input("x", dtype, (5, 7))
    with b:
        b.output(irf.relu(xs) ** p + xs)  # the pow's input dies there: its buffer is not the output
    got = irf.run(b.build(), {"x": x})
    r = np.maximum(x, 0)
    np.testing.assert_array_equal(list(got.values())[0], {2.0: r * r, 3.0: r * r * r, 4.0: (r * r) * (r * r)}[p] + x)
    np.testing.assert_allclose(eager, np.power(x, dtype(p)), rtol=1e-6)
