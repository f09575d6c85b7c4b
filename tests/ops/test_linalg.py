"""matmul and einsum through the shared harness (tests/ops/harness.py), against references
written here by broadcasting and summing in float64 (no np.matmul / np.einsum in them)."""
import string

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner
from tests.ops.harness import build_graph, check_op

SETTINGS = settings(max_examples=20, deadline=None)
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def _tol(dtype):
    return TOL.get(np.dtype(dtype).type, dict(rtol=0, atol=0))


def _values(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-4, 5, size=shape).astype(dtype)


# -- matmul ----------------------------------------------------------------------------------

def matmul_reference(a, b):
    """NumPy's matmul rules spelled out: 1-D operands become a row / a column, batch dims
    broadcast, the product is a broadcast multiply summed over k, added dims are dropped."""
    dtype = np.result_type(a, b)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    prod = (a2.astype(np.float64)[..., :, :, None] * b2.astype(np.float64)[..., None, :, :]).sum(axis=-2)
    if a.ndim == 1:
        prod = prod[..., 0, :]
    if b.ndim == 1:
        prod = prod[..., 0]
    if dtype.kind in "iu":  # wrap as integer arithmetic does
        return np.asarray(prod).astype(np.int64).astype(dtype)
    return np.asarray(prod).astype(dtype)


@st.composite
def matmul_cases(draw):
    kind = draw(st.sampled_from(["1d@1d", "1d@nd", "nd@1d", "nd@nd"]))
    m, k, n = (draw(st.integers(0, 4)) for _ in range(3))
    batch = draw(st.lists(st.integers(0, 3), max_size=3))
    # Each operand keeps a suffix of the batch dims, some replaced by 1 (broadcast).
    def batch_of():
        keep = batch[len(batch) - draw(st.integers(0, len(batch))):]
        return [1 if draw(st.booleans()) else d for d in keep]
    sa = [k] if kind.startswith("1d") else batch_of() + [m, k]
    sb = [k] if kind.endswith("1d") else batch_of() + [k, n]
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, np.int64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _values(rng, sa, dtype), _values(rng, sb, dtype)


@SETTINGS
@given(matmul_cases())
def test_matmul(case):
    a, b = case
    check_op("matmul", [a, b], matmul_reference, **_tol(a.dtype))


@pytest.mark.parametrize("sa,sb", [
    ((4,), (4,)),  # dot product: a scalar
    ((4,), (4, 3)),  # row vector @ matrix
    ((3, 4), (4,)),  # matrix @ column vector
    ((4,), (2, 4, 3)),  # 1-D @ batched
    ((2, 3, 4), (4,)),  # batched @ 1-D
    ((3, 4), (4, 2)),
    ((2, 1, 3, 4), (5, 4, 2)),  # batch dims broadcast both ways
    ((1, 3, 4), (2, 4, 2)),
    ((3, 0), (0, 2)),  # empty contraction: zeros
])
def test_matmul_all_rank_combinations_with_gradients(sa, sb):
    rng = np.random.default_rng(len(sa) * 10 + len(sb))
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    check_op("matmul", [a, b], matmul_reference, rtol=1e-12, atol=1e-12)


def test_matmul_vjp_1d_values_by_hand():
    # d(a.b)/da = g*b, d/db = g*a; (v @ M) grads: g @ M^T and outer(v, g); (M @ v): outer(g, v) and M^T @ g.
    v, w, M = np.array([1.0, 2.0]), np.array([3.0, -1.0]), np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    def grads(a, b, ct):
        g = build_graph("matmul", [a, b], {})
        gg = vjp(g, wrt=["in0", "in1"]).verify()
        feeds = {"in0": a, "in1": b, next(x.name for x in gg.inputs if x.name.startswith("ct_")): ct}
        out = Interpreter(gg).run(feeds)
        ort = OrtRunner(gg).run(feeds)
        for k in out:
            np.testing.assert_allclose(ort[k], out[k], rtol=1e-12)
        return out["grad_in0"], out["grad_in1"]
    ga, gb = grads(v, w, np.array(2.0))
    np.testing.assert_allclose(ga, 2 * w); np.testing.assert_allclose(gb, 2 * v)
    gct = np.array([1.0, 0.0, -1.0])
    ga, gb = grads(v, M, gct)
    np.testing.assert_allclose(ga, [1 - 3, 4 - 6]); np.testing.assert_allclose(gb, np.outer(v, gct))
    gct = np.array([1.0, -2.0])
    ga, gb = grads(M, np.array([1.0, 0.0, 2.0]), gct)
    np.testing.assert_allclose(ga, np.outer(gct, [1.0, 0.0, 2.0]))
    np.testing.assert_allclose(gb, [1 - 8, 2 - 10, 3 - 12])


def test_matmul_mixed_float_dtypes_promote():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 2))
    out = check_op("matmul", [a, b], matmul_reference, rtol=1e-12, atol=1e-12, grad=False)[0]
    assert out.dtype == np.float64


def test_mixed_precision_gradients_come_back_in_each_operands_dtype():
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 4))
    ct = rng.standard_normal((2, 4))
    for op, attrs in [("matmul", {}), ("einsum", {"equation": "ij,jk->ik"})]:
        gg = vjp(build_graph(op, [a, b], attrs), wrt=["in0", "in1"]).verify()
        feeds = {"in0": a, "in1": b, next(t.name for t in gg.inputs if t.name.startswith("ct_")): ct}
        for run in (Interpreter(gg).run, OrtRunner(gg).run):
            got = run(feeds)
            assert got["grad_in0"].dtype == np.float32 and got["grad_in1"].dtype == np.float64
            np.testing.assert_allclose(got["grad_in0"], (ct @ b.T).astype(np.float32), rtol=1e-6)
            np.testing.assert_allclose(got["grad_in1"], a.astype(np.float64).T @ ct, rtol=1e-12)


def test_matmul_int8_wraps_and_float16_runs_everywhere():
    a = np.array([[100, 100], [-128, 3]], dtype=np.int8)
    check_op("matmul", [a, a], matmul_reference)  # onnxruntime computes in int32 and casts back
    rng = np.random.default_rng(4)
    h1, h2 = rng.standard_normal((3, 16)).astype(np.float16), rng.standard_normal((16, 2)).astype(np.float16)
    check_op("matmul", [h1, h2], matmul_reference, rtol=2e-3, atol=2e-3, ort_rtol=2e-3, ort_atol=2e-3, grad=False)


@pytest.mark.parametrize("op,attrs", [("matmul", {}), ("einsum", {"equation": "ij,jk->ik"})])
def test_bfloat16_on_numpy_and_onnxruntime(op, attrs):
    # onnxruntime has no bfloat16 MatMul/Einsum (the lowering computes in float32) and its
    # Python API cannot feed bfloat16, so the graph takes float32 and casts to bfloat16 and back.
    a32 = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)  # exact in bfloat16
    b32 = np.linspace(1, 3, 8, dtype=np.float32).reshape(4, 2)
    b = irf.GraphBuilder("bf16")
    ins = [b.op("cast", b.input(n, "float32", x.shape), dtype=irf.DType.bfloat16) for n, x in (("a", a32), ("b", b32))]
    y = b.op(op, *ins, **attrs)
    assert y.dtype is irf.DType.bfloat16
    b.output(b.op("cast", y, dtype=irf.DType.float32))
    g = b.build(verify=True)
    want = matmul_reference(a32.astype(np.float64), b32.astype(np.float64))
    for run in (Interpreter(g).run, OrtRunner(g).run):
        np.testing.assert_allclose(run({"a": a32, "b": b32})[g.output_names[0]], want, rtol=1e-2, atol=1e-2)


def test_matmul_symbolic_batch_dim():
    s = irf.GraphBuilder("shapes")
    assert s.op("matmul", s.input("v", "float64", ("n",)), s.input("m", "float64", ("n", 2))).shape == (2,)
    assert s.op("matmul", s.input("p", "float64", (7, "k")), s.input("q", "float64", ("k",))).shape == (7,)
    assert s.op("matmul", s.input("r", "float64", ("b", 1, 3, 4)), s.input("t", "float64", (5, 4, "h"))).shape == ("b", 5, 3, "h")
    b = irf.GraphBuilder("g")
    x = b.input("x", "float64", ("batch", 3, 4))
    w = b.input("w", "float64", (4, 5))
    y = b.op("matmul", x, w)
    assert y.shape == ("batch", 3, 5)
    b.output(y)
    gg = vjp(b.build(verify=True), wrt=["x", "w"]).verify()
    rng = np.random.default_rng(5)
    for n in (1, 4):
        xv, wv, ct = rng.standard_normal((n, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal((n, 3, 5))
        feeds = {"x": xv, "w": wv, next(t.name for t in gg.inputs if t.name.startswith("ct_")): ct}
        got = Interpreter(gg).run(feeds)
        np.testing.assert_allclose(got["grad_x"], ct @ wv.T, rtol=1e-12)
        np.testing.assert_allclose(got["grad_w"], np.einsum("bij,bik->jk", xv, ct), rtol=1e-12)


def test_matmul_errors_name_the_shapes():
    a, b = np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32)
    for run in (lambda: irf.matmul(irf.tensor(a), irf.tensor(b)), lambda: build_graph("matmul", [a, b], {})):
        with pytest.raises(irf.ShapeError, match=r"matmul.*contracted dims differ: 3 .*\(2, 3\).* vs 4 .*\(4, 5\)"):
            run()
    with pytest.raises(irf.ShapeError, match=r"contracted dims differ.*\(2, 3\).*\(5,\)"):
        irf.matmul(irf.tensor(a), irf.tensor(np.zeros(5, np.float32)))
    with pytest.raises(irf.ShapeError, match=r"batch dims of \(2, 3, 4\) and \(5, 4, 1\) do not broadcast"):
        irf.matmul(irf.tensor(np.zeros((2, 3, 4), np.float32)), irf.tensor(np.zeros((5, 4, 1), np.float32)))
    with pytest.raises(irf.ShapeError, match="rank >= 1"):
        build_graph("matmul", [np.float32(2.0), b], {})
    with pytest.raises(irf.DTypeError, match="matmul takes int or float tensors, got bool"):
        irf.matmul(irf.tensor(np.ones((2, 2), bool)), irf.tensor(np.ones((2, 2), bool)))
    with pytest.raises(irf.DTypeError):
        irf.matmul(irf.tensor(np.ones((2, 2), np.int32)), irf.tensor(np.ones((2, 2), np.float32)))


# -- einsum ----------------------------------------------------------------------------------

def einsum_reference(ins, out, *operands):
    """Einstein summation by hand: lay every operand out over all letters (size 1 where it has
    none), multiply in float64, sum the letters not in the output, order as the output."""
    letters = sorted(set("".join(ins)))
    sizes = {c: x.shape[s.index(c)] for s, x in zip(ins, operands) for c in s}
    total = np.ones([1] * len(letters))
    for sub, x in zip(ins, operands):
        order = sorted(range(len(sub)), key=lambda k: letters.index(sub[k]))
        laid = np.transpose(x.astype(np.float64), order).reshape([sizes[c] if c in sub else 1 for c in letters])
        total = total * laid
    total = np.broadcast_to(total, [sizes[c] for c in letters])
    summed = total.sum(axis=tuple(i for i, c in enumerate(letters) if c not in out))
    kept = [c for c in letters if c in out]
    return np.transpose(summed, [kept.index(c) for c in out]).astype(np.result_type(*operands))


@st.composite
def einsum_cases(draw):
    """1-3 operands over up to 5 letters (no letter twice in one operand), explicit output."""
    pool = draw(st.permutations("abcdE"))[: draw(st.integers(1, 5))]
    sizes = {c: draw(st.integers(0 if draw(st.booleans()) else 1, 3)) for c in pool}
    n = draw(st.integers(1, 3))
    ins = ["".join(draw(st.permutations(pool))[: draw(st.integers(0, len(pool)))]) for _ in range(n)]
    used = sorted(set("".join(ins)))
    out = "".join(draw(st.permutations(used))[: draw(st.integers(0, len(used)))]) if used else ""
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    operands = [_values(rng, [sizes[c] for c in s], dtype) for s in ins]
    return ins, out, operands


@SETTINGS
@given(einsum_cases())
def test_einsum(case):
    ins, out, operands = case
    equation = ",".join(ins) + "->" + out
    want = check_op("einsum", operands, lambda *xs: einsum_reference(ins, out, *xs), {"equation": equation},
                    **_tol(operands[0].dtype))[0]
    # The same with every dim symbolic: the export then guards against empty operands at run
    # time (onnxruntime's Einsum can die on them) instead of deciding when it is built.
    b = irf.GraphBuilder("symbolic")
    syms = [b.input(f"x{i}", irf.ir.as_dtype(x.dtype), tuple(f"d_{c}" for c in sub)) for i, (sub, x) in enumerate(zip(ins, operands))]
    y = b.op("einsum", *syms, equation=equation)
    assert y.shape == tuple(f"d_{c}" for c in out)
    b.output(y)
    got = OrtRunner(b.build(verify=True)).run({f"x{i}": x for i, x in enumerate(operands)})[y.name]
    np.testing.assert_allclose(got, want, **_tol(want.dtype))


@pytest.mark.parametrize("equation,shapes", [
    ("ij,jk", [(2, 3), (3, 4)]),  # implicit: -> ik
    ("ba", [(2, 3)]),  # implicit: letters sorted -> ab, a transpose
    ("Ba,aC", [(2, 3), (3, 4)]),  # ASCII order: uppercase first -> BC
    ("i,i", [(3,), (3,)]),  # implicit dot product -> scalar
    ("bij, bjk -> bik", [(2, 3, 4), (2, 4, 5)]),  # spaces are allowed
    ("ij->", [(3, 4)]),
])
def test_einsum_implicit_and_explicit_forms(equation, shapes):
    rng = np.random.default_rng(6)
    operands = [rng.standard_normal(s) for s in shapes]
    want = np.einsum(equation, *operands)
    out = irf.einsum(equation, *(irf.tensor(x) for x in operands)).numpy()
    np.testing.assert_allclose(out, want, rtol=1e-12)
    # The node stores the explicit form; the harness runs it everywhere, gradients included.
    check_op("einsum", operands, lambda *xs: np.asarray(want), {"equation": equation}, rtol=1e-12, atol=1e-12)


def test_einsum_repeated_letter_takes_a_diagonal():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 3))
    check_op("einsum", [x], lambda a: np.array([a[i, i] for i in range(3)]), {"equation": "ii->i"}, rtol=1e-12)
    check_op("einsum", [x], lambda a: np.array(sum(a[i, i] for i in range(3))), {"equation": "ii"}, rtol=1e-12)
    v = rng.standard_normal(2)
    check_op("einsum", [x, v], lambda a, b: sum(a[i, i] for i in range(3)) * b, {"equation": "ii,j->j"}, rtol=1e-12)
    y = rng.standard_normal((2, 3, 2))
    check_op("einsum", [y, x], lambda a, b: np.array([[sum(a[i, j, i] * b[j, k] for j in range(3)) for k in range(3)] for i in range(2)]),
             {"equation": "iji,jk->ik"}, rtol=1e-12)
    # The diagonal's gradient needs an identity matrix of a known size.
    b = irf.GraphBuilder("g")
    b.output(b.op("einsum", b.input("m", "float64", ("n", "n")), equation="ii->i"))
    with pytest.raises(irf.UnsupportedOpError, match="repeated subscript 'i' has the symbolic size 'n'"):
        vjp(b.build(), wrt=["m"])


@pytest.mark.parametrize("dims", [(0, 3, 2), (4, 3, 2), (4, 0, 2), (1, 3, 0)])
def test_einsum_empty_operands_give_zeros_with_static_and_symbolic_dims(dims):
    # onnxruntime's Einsum kills the process (SIGFPE) on some empty operands, e.g. this
    # equation with a = 0; the lowering answers zeros instead, guarded at run time for symbolic dims.
    a, c, d = dims
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((a, d)), rng.standard_normal((a, c, d))
    want = np.array([[sum(x[i, k] * y[i, j, k] for j in range(c)) for k in range(d)] for i in range(a)], dtype=np.float64).reshape(a, d)
    check_op("einsum", [x, y], lambda p, q: want, {"equation": "ad,acd->ad"}, rtol=1e-12, atol=1e-12)
    b = irf.GraphBuilder("g")
    out = b.op("einsum", b.input("x", "float64", ("a", "d")), b.input("y", "float64", ("a", "c", "d")), equation="ad,acd->ad")
    b.output(out)
    g = b.build(verify=True)
    got = OrtRunner(g).run({"x": x, "y": y})[out.name]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Interpreter(g).run({"x": x, "y": y})[out.name], want, rtol=1e-12, atol=1e-12)


def test_einsum_symbolic_dims():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", ("batch", 3, 4))
    w = b.input("w", "float32", (4, "h"))
    assert b.op("einsum", x, w, equation="bij,jk->bki").shape == ("batch", "h", 3)
    assert b.op("einsum", x, equation="bij->b").shape == ("batch",)


@pytest.mark.parametrize("equation,shapes", [
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),  # batched matmul
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),  # ... dims broadcast: size 1 and missing dims
    ("...ij,...jk", [(3, 4), (3, 4, 5)]),  # implicit: ... first
    ("...i->...", [(2, 3, 4)]),
    ("i...->...i", [(3, 2, 2)]),
    ("...,...->...", [(2, 3), (3,)]),  # a broadcasting product
    ("a...b,b...->...a", [(2, 3, 1, 4), (4, 3, 5)]),  # ... in the middle and at the end
    ("...ii->...i", [(2, 3, 3)]),  # a batched diagonal
])
def test_einsum_ellipsis_as_numpy(equation, shapes):
    # irf.einsum rewrites '...' into letters (and squeezes size-1 dims that broadcast), so the
    # node is a plain einsum; NumPy's own einsum is the reference for what '...' means.
    rng = np.random.default_rng(10)
    xs = [rng.standard_normal(s) for s in shapes]
    want = np.einsum(equation, *xs)
    np.testing.assert_allclose(irf.einsum(equation, *(irf.tensor(x) for x in xs)).numpy(), want, rtol=1e-12)
    b = irf.GraphBuilder("g")
    with b:
        out = irf.einsum(equation, *(b.input(f"x{i}", "float64", x.shape) for i, x in enumerate(xs)))
    b.output(out)
    g = b.build(verify=True)
    assert out.shape == want.shape
    feeds = {f"x{i}": x for i, x in enumerate(xs)}
    for run in (Interpreter(g).run, OrtRunner(g).run):
        np.testing.assert_allclose(run(feeds)[out.name], want, rtol=1e-12, atol=1e-12)
    # Gradients through the rewrite (einsum and squeeze VJPs) vs finite differences.
    gg = vjp(g, wrt=list(feeds)).verify()
    ct = rng.standard_normal(want.shape)
    grads = Interpreter(gg).run({**feeds, f"ct_{out.name}": ct})
    for i, x in enumerate(xs):
        v = rng.standard_normal(x.shape)
        f = lambda t: float(np.sum(ct * np.einsum(equation, *[x + t * v if j == i else xj for j, xj in enumerate(xs)])))  # noqa: E731
        np.testing.assert_allclose(np.sum(grads[f"grad_x{i}"] * v), (f(1e-6) - f(-1e-6)) / 2e-6, rtol=1e-6, atol=1e-8)


def test_einsum_errors():
    x, y = irf.tensor(np.zeros((2, 3), np.float32)), irf.tensor(np.zeros((4, 5), np.float32))
    with pytest.raises(irf.ShapeError, match=r"'\.\.\.' dims of '\.\.\.i,\.\.\.i' do not broadcast \(shapes \(2, 3\), \(4, 3\)\)"):
        irf.einsum("...i,...i", x, irf.tensor(np.zeros((4, 3), np.float32)))
    with pytest.raises(irf.ShapeError, match="its output has no '...'"):
        irf.einsum("...j->j", x)
    with pytest.raises(irf.ShapeError, match="one '...' per operand"):
        irf.einsum("....j->j", x)
    with pytest.raises(irf.UnsupportedOpError, match=r"an einsum node's equation cannot hold an ellipsis"):
        irf.bind("einsum", x, equation="...->...")  # eager, bypassing the public function
    with pytest.raises(irf.UnsupportedOpError, match=r"an einsum node's equation cannot hold an ellipsis"):
        build_graph("einsum", [np.zeros((2, 3))], {"equation": "i...->i"})
    with pytest.raises(irf.ShapeError, match=r"letter 'j' of 'ij,jk->ik' is 3 in one place and 4 in another"):
        irf.einsum("ij,jk->ik", x, y)
    with pytest.raises(irf.ShapeError, match=r"letter 'j'.*\(2, 3\), \(4, 5\)"):
        build_graph("einsum", [np.zeros((2, 3)), np.zeros((4, 5))], {"equation": "ij,jk->ik"})
    with pytest.raises(irf.ShapeError, match=r"letter 'j' of 'ij,jk->ik' is 1 in one place and 4"):
        irf.einsum("ij,jk->ik", irf.tensor(np.ones((2, 1))), irf.tensor(np.ones((4, 3))))  # NumPy would broadcast
    with pytest.raises(irf.ShapeError, match="operand 0 has rank 2 but 'i'"):
        irf.einsum("i,jk->k", x, y)
    with pytest.raises(irf.ShapeError, match="names 2 operands, got 1"):
        irf.einsum("ij,jk->ik", x)
    with pytest.raises(irf.ShapeError, match="output letter 'z'"):
        irf.einsum("ij->z", x)
    with pytest.raises(irf.ShapeError, match="repeat a letter"):
        irf.einsum("ij->ii", x)
    with pytest.raises(irf.ShapeError, match="'1' where a subscript letter belongs"):
        irf.einsum("i1->i", x)
    with pytest.raises(irf.DTypeError, match="einsum takes int or float tensors, got bool"):
        irf.einsum("ij->j", irf.tensor(np.ones((2, 2), bool)))


def test_docstring_examples_run():
    import doctest

    import irflow.ops.linalg as module

    result = doctest.testmod(module, extraglobs={"irf": irf, "np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize("op,attrs,shapes", [("matmul", {}, [(3,), (2, 3, 4)]), ("einsum", {"equation": "ij,jk->ki"}, [(2, 3), (3, 4)])])
def test_second_order_cross_term(op, attrs, shapes):
    # d/db <w, dL/da>: zero Hessian in a alone, but the cross term with b is not.
    from tests.ops.test_reduction import hessian_vector_check

    xs = [np.random.default_rng(2).standard_normal(s) for s in shapes]
    hessian_vector_check(op, xs, attrs, wrt2="in1")
