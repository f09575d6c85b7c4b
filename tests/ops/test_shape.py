"""The shape op family through the shared harness (NumPy reference written here, type rule,
interpreter, onnxruntime, VJP vs finite differences), plus symbolic-dim gradients, second-order
gradients and the errors users can cause."""
import numpy as np
import onnx
import pytest
from hypothesis import given, settings, strategies as st

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner, to_model
from tests.ops.harness import build_graph, check_op

rng = np.random.default_rng(0)
END, BEGIN = 2**63 - 1, -(2**63)
FAST = settings(max_examples=25, deadline=None)


def randn(*shape, dtype="float32"):
    return rng.standard_normal(shape).astype(dtype)


def onnx_positions(d, start, end, step):
    """The indices ONNX Slice visits on an axis of size d (its spec, written out)."""
    start = start + d if start < 0 else start
    end = end + d if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), d), min(max(end, 0), d)
    else:
        start, end = min(max(start, 0), d - 1), min(max(end, -1), d - 1)
    out, i = [], start
    while (i < end) if step > 0 else (i > end):
        out.append(i)
        i += step
    return out


# -- reshape ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,target", [
    ((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, -1, 2)), ((6,), (1, 6, 1)),
    ((0, 3), (3, 0)), ((0, 3), (-1, 3)), ((), (1, 1)), ((1, 1), ()),
])
def test_reshape(shape, target):
    check_op("reshape", [randn(*shape)], lambda x: x.reshape(target), {"shape": target})


def test_reshape_symbolic_type():
    b = irf.GraphBuilder()
    x = b.input("x", "float32", ("batch", 28, 28))
    assert b.op("reshape", x, shape=(-1, 784)).shape == ("batch", 784)
    assert b.op("reshape", x, shape=(-1, 392)).shape == (None, 392)  # 2 * batch: unknown
    y = b.input("y", "float32", ("n", 0))
    assert b.op("reshape", y, shape=(-1, 5)).shape == (0, 5)


def test_reshape_like():
    check_op("reshape_like", [randn(2, 6), randn(3, 4)], lambda x, like: x.reshape(3, 4))


# -- transpose / expand_dims / squeeze -----------------------------------------------------------------

@FAST
@given(st.lists(st.integers(0, 3), min_size=0, max_size=4), st.randoms(use_true_random=False))
def test_transpose(shape, r):
    perm = list(range(len(shape)))
    r.shuffle(perm)
    check_op("transpose", [randn(*shape)], lambda x: np.transpose(x, perm), {"perm": tuple(perm)})


def test_transpose_default_reverses():
    check_op("transpose", [randn(2, 3, 4)], lambda x: x.transpose(2, 1, 0), {"perm": None})


@pytest.mark.parametrize("shape,axes", [((3,), (0,)), ((3,), (-1,)), ((2, 3), (0, 3)), ((), (0,))])
def test_expand_dims(shape, axes):
    check_op("expand_dims", [randn(*shape)], lambda x: np.expand_dims(x, axes), {"axes": axes})


@pytest.mark.parametrize("shape,axes", [((1, 3, 1), (0,)), ((1, 3, 1), (-1, 0)), ((1, 3, 1), None), ((1,), None)])
def test_squeeze(shape, axes):
    check_op("squeeze", [randn(*shape)], lambda x: np.squeeze(x, axes), {"axes": axes})


# -- broadcasting ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,target", [((3,), (2, 3)), ((2, 1), (2, 4)), ((), (2, 2)), ((1, 3), (0, 3)), ((4,), (4,))])
def test_broadcast_to(shape, target):
    check_op("broadcast_to", [randn(*shape)], lambda x: np.broadcast_to(x, target), {"shape": target})


def test_broadcast_like():
    check_op("broadcast_like", [randn(3, 1), randn(2, 3, 4)], lambda x, like: np.broadcast_to(x, (2, 3, 4)))


# -- concat / split / stack --------------------------------------------------------------------------------

@FAST
@given(st.lists(st.integers(0, 3), min_size=1, max_size=3), st.lists(st.integers(0, 3), min_size=1, max_size=3),
       st.data())
def test_concat(shape, sizes, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    xs = []
    for n in sizes:
        s = list(shape)
        s[axis] = n
        xs.append(randn(*s))
    check_op("concat", xs, lambda *a: np.concatenate(a, axis=axis), {"axis": axis})


def test_concat_int_and_one_input():
    a, b = np.arange(6, dtype=np.int32).reshape(2, 3), np.ones((2, 1), np.int32)
    check_op("concat", [a, b], lambda x, y: np.concatenate([x, y], 1), {"axis": 1})
    check_op("concat", [randn(2, 3)], lambda x: x, {"axis": 0})


@pytest.mark.parametrize("shape,attrs", [
    ((5, 2), {"sizes": (2, 3), "num": None, "axis": 0}),
    ((2, 6), {"sizes": None, "num": 3, "axis": -1}),
    ((2, 6), {"sizes": (0, 6, 0), "num": None, "axis": 1}),
    ((4, 2), {"sizes": None, "num": 1, "axis": 0}),
])
def test_split(shape, attrs):
    x = randn(*shape)

    def ref(a):
        a_ = attrs["axis"]
        if attrs["sizes"] is None:
            n = a.shape[a_] // attrs["num"]
            bounds = [(i * n, (i + 1) * n) for i in range(attrs["num"])]
        else:
            c = np.concatenate([[0], np.cumsum(attrs["sizes"])])
            bounds = list(zip(c[:-1], c[1:]))
        parts = tuple(np.take(a, np.arange(lo, hi, dtype=np.int64), axis=a_) for lo, hi in bounds)
        return parts if len(parts) > 1 else parts[0]

    check_op("split", [x], ref, attrs)


def test_split_public_always_returns_tuple():
    parts = irf.split(irf.tensor(np.arange(4.0)), 1)
    assert isinstance(parts, tuple) and len(parts) == 1
    assert [p.shape for p in irf.split(irf.tensor(np.arange(6.0)), [1, 5])] == [(1,), (5,)]


def test_split_like():
    x = randn(2, 7)
    check_op("split_like", [x, randn(1, 3), randn(1, 4)], lambda x, a, b: (x[:, :3], x[:, 3:]), {"axis": 1})


@FAST
@given(st.lists(st.integers(0, 3), min_size=0, max_size=3), st.integers(1, 3), st.data())
def test_stack(shape, n, data):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    xs = [randn(*shape) for _ in range(n)]
    check_op("stack", xs, lambda *a: np.stack(a, axis=axis), {"axis": axis})


# -- tile / flip --------------------------------------------------------------------------------------------

@FAST
@given(st.lists(st.integers(0, 3), min_size=1, max_size=3), st.data())
def test_tile(shape, data):
    reps = tuple(data.draw(st.lists(st.integers(0, 3), min_size=len(shape), max_size=len(shape))))
    check_op("tile", [randn(*shape)], lambda x: np.tile(x, reps), {"reps": reps})


def test_tile_public_reps_of_other_length():
    x = irf.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(irf.tile(x, 2).numpy(), np.tile(np.arange(6.0).reshape(2, 3), 2))
    np.testing.assert_array_equal(irf.tile(x, (2, 1, 2)).numpy(), np.tile(np.arange(6.0).reshape(2, 3), (2, 1, 2)))


@pytest.mark.parametrize("shape,axes", [((3, 4), (0,)), ((3, 4), (-1, 0)), ((2, 3, 4), None), ((0, 2), (0,)), ((), None)])
def test_flip(shape, axes):
    check_op("flip", [randn(*shape)], lambda x: np.flip(x, axes), {"axes": axes})


# -- pad -----------------------------------------------------------------------------------------------------

@FAST
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.sampled_from(["constant", "reflect", "edge"]), st.data())
def test_pad(shape, mode, data):
    limit = (lambda d: d - 1) if mode == "reflect" else (lambda d: 3)
    width = [(data.draw(st.integers(0, limit(d))), data.draw(st.integers(0, limit(d)))) for d in shape]
    pads = tuple(b for b, _ in width) + tuple(a for _, a in width)
    attrs = {"pads": pads, "mode": mode, "value": 1.5}
    if mode == "constant":
        check_op("pad", [randn(*shape)], lambda x: np.pad(x, width, constant_values=1.5), attrs)
    else:
        check_op("pad", [randn(*shape)], lambda x: np.pad(x, width, mode=mode), attrs)


@pytest.mark.parametrize("dtype", ["int16", "int32", "bool", "float16"])
def test_pad_other_dtypes(dtype):
    x = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    for mode in ["constant", "edge", "reflect"]:
        attrs = {"pads": (1, 0, 1, 2), "mode": mode, "value": 1}
        if mode == "constant":
            ref = lambda a: np.pad(a, [(1, 1), (0, 2)], constant_values=np.asarray(1).astype(dtype))  # noqa: E731
        else:
            ref = lambda a, m=mode: np.pad(a, [(1, 1), (0, 2)], mode=m)  # noqa: E731
        check_op("pad", [x], ref, attrs)


def test_pad_public_numpy_widths():
    x = irf.tensor(np.arange(6.0).reshape(2, 3))
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(irf.pad(x, 1).numpy(), np.pad(a, 1))
    np.testing.assert_array_equal(irf.pad(x, (1, 2)).numpy(), np.pad(a, (1, 2)))
    np.testing.assert_array_equal(irf.pad(x, ((0, 1), (2, 0)), mode="edge").numpy(), np.pad(a, ((0, 1), (2, 0)), mode="edge"))


# -- slice ---------------------------------------------------------------------------------------------------

bound = st.one_of(st.integers(-6, 6), st.sampled_from([END, BEGIN, 2**31 - 1]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=3), st.data())
def test_slice(shape, data):
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                              unique_by=lambda a: a % rank))
    starts = [data.draw(bound) for _ in axes]
    ends = [data.draw(bound) for _ in axes]
    steps = [data.draw(st.sampled_from([1, 2, 3, -1, -2])) for _ in axes]

    def ref(x):
        for a, s, e, k in zip(axes, starts, ends, steps):
            x = np.take(x, np.asarray(onnx_positions(x.shape[a], s, e, k), dtype=np.int64), axis=a)
        return x

    check_op("slice", [randn(*shape)], ref,
             {"starts": tuple(starts), "ends": tuple(ends), "axes": tuple(axes), "steps": tuple(steps)})


def test_slice_default_axes_and_steps():
    check_op("slice", [randn(4, 5)], lambda x: x[1:3, -2:], {"starts": (1, -2), "ends": (3, END), "axes": None, "steps": None})


@pytest.mark.parametrize("start,end,step", [(0, END, -1), (3, 2**31 - 1, -1), (10, END, -2), (-10, BEGIN, -1), (2, BEGIN, 1)])
def test_slice_huge_bounds_mean_what_the_onnx_spec_says(start, end, step):
    # onnxruntime reads a huge end with a negative step as "to the first element"; the spec
    # (and NumPy) clamp it to d - 1: an empty slice. The export must keep the spec's meaning.
    want = np.arange(5.0)[onnx_positions(5, start, end, step)].astype(np.float32)
    check_op("slice", [np.arange(5, dtype=np.float32)], lambda x: want,
             {"starts": (start,), "ends": (end,), "axes": None, "steps": (step,)})


def test_slice_public_open_bounds():
    a = np.arange(10.0)
    x = irf.tensor(a)
    np.testing.assert_array_equal(irf.slice(x, [None], [None], steps=[-1]).numpy(), a[::-1])
    np.testing.assert_array_equal(irf.slice(x, [-3], [None]).numpy(), a[-3:])
    np.testing.assert_array_equal(irf.slice(x, [8], [None], steps=[-3]).numpy(), a[8::-3])


# -- gather / gather_nd / scatter_add ---------------------------------------------------------------------

@FAST
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.lists(st.integers(0, 3), max_size=2),
       st.sampled_from(["int32", "int64"]), st.data())
def test_gather(shape, ind_shape, ind_dtype, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    d = shape[axis]
    idx = np.asarray(data.draw(st.lists(st.integers(-d, d - 1), min_size=int(np.prod(ind_shape)),
                                        max_size=int(np.prod(ind_shape))))).astype(ind_dtype).reshape(ind_shape)

    def ref(x, i):  # x[..., i, ...] with negatives wrapped, written with NumPy advanced indexing
        a = axis % x.ndim
        wrapped = np.where(i < 0, i + x.shape[a], i)
        return x[(slice(None),) * a + (wrapped,)]

    check_op("gather", [randn(*shape), idx], ref, {"axis": axis})


def test_gather_repeated_indices_gradient_adds_up():
    x = randn(3, 4)
    idx = np.array([[0, 2], [2, 2]], np.int64)
    check_op("gather", [x, idx], lambda a, i: a[:, i], {"axis": 1})


@pytest.mark.parametrize("data_shape,idx", [
    ((3, 4), [[0, 1], [2, 3], [0, 1]]),
    ((3, 4, 2), [[1], [-1]]),
    ((3, 4), [[[1, -1]], [[0, 0]]]),
])
def test_gather_nd(data_shape, idx):
    idx = np.asarray(idx, np.int64)

    def ref(d, i):
        flat = i.reshape(-1, i.shape[-1])
        rows = [d[tuple(t)] for t in flat]
        return np.asarray(rows, d.dtype).reshape(i.shape[:-1] + d.shape[i.shape[-1]:])

    check_op("gather_nd", [randn(*data_shape), idx], ref)
    check_op("gather_nd", [randn(*data_shape), idx.astype(np.int32)], ref)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "float16"])
def test_scatter_add(dtype):
    data = (randn(4, 3) * 4).astype(dtype)
    idx = np.array([[3], [0], [0], [-1]], np.int64)  # 0 and 3 (= -1) repeated: contributions add up
    upd = (randn(4, 3) * 4).astype(dtype)

    def ref(d, i, u):
        out = d.astype(np.float64)
        for row, target in zip(u, i[:, 0]):
            out[target] += row
        return out.astype(dtype)

    tol = 1e-2 if dtype == "float16" else 1e-6
    check_op("scatter_add", [data, idx, upd], ref, rtol=tol, atol=tol, ort_rtol=tol, ort_atol=tol)


def test_scatter_add_nd_indices():
    data, idx, upd = randn(3, 4), np.array([[0, 1], [2, 3], [0, 1]], np.int32), randn(3)

    def ref(d, i, u):
        out = d.copy()
        for (r, c), v in zip(i, u):
            out[r, c] += v
        return out

    check_op("scatter_add", [data, idx, upd], ref)


# -- one_hot -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis,dtype", [(-1, "float32"), (0, "int64"), (1, "bool")])
def test_one_hot(axis, dtype):
    idx = np.array([[0, 3, -1], [5, -4, 2]], np.int64)  # 5 is out of range (zeros); -1 -> 3, -4 -> 0

    def ref(i):
        out = np.zeros(i.shape + (4,), dtype)
        for pos, v in np.ndenumerate(i):
            v = v + 4 if v < 0 else v
            if 0 <= v < 4:
                out[pos + (v,)] = 1
        return np.moveaxis(out, -1, axis)

    check_op("one_hot", [idx], ref, {"depth": 4, "axis": axis, "dtype": irf.DType(dtype)})
    check_op("one_hot", [idx.astype(np.int32)], ref, {"depth": 4, "axis": axis, "dtype": irf.DType(dtype)})


# -- creation ops --------------------------------------------------------------------------------------------

def test_shape_of():
    check_op("shape_of", [randn(2, 0, 3)], lambda x: np.array([2, 0, 3], np.int64))
    check_op("shape_of", [randn()], lambda x: np.zeros(0, np.int64))


@pytest.mark.parametrize("start,limit,delta,dtype", [
    (0, 5, 1, "int64"), (2, -7, -3, "int32"), (0.5, 2.0, 0.25, "float32"), (0, 1, 0.1, "float64"),
    (3, 3, 1, "int64"), (1, 5, 2, "float16"), (1, 9, 2, "uint8"),
])
def test_range_attrs(start, limit, delta, dtype):
    n = max(int(np.ceil((limit - start) / delta)), 0)
    want = np.array([start + i * delta for i in range(n)], dtype=dtype)
    check_op("range", [], lambda: want, {"start": start, "limit": limit, "delta": delta, "dtype": irf.DType(dtype)},
             rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bounds,dtype", [((0.5, 3.7, 0.3), "float32"), ((10, 1, -4), "int64"), ((0, 5, 1), "int32")])
def test_range_tensor_bounds(bounds, dtype):
    arrays = [np.asarray(v, dtype) for v in bounds]
    want = np.arange(*bounds).astype(dtype)
    got = irf.range(*(irf.tensor(a) for a in arrays)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    g = build_graph("range", arrays, {})
    assert g.outputs[0].type.shape == (None,) and g.outputs[0].type.dtype == irf.DType(dtype)  # length known at run time
    feeds = {f"in{i}": a for i, a in enumerate(arrays)}
    np.testing.assert_array_equal(Interpreter(g).run(feeds)[g.outputs[0].name], got)
    np.testing.assert_allclose(OrtRunner(g).run(feeds)[g.outputs[0].name], got, rtol=1e-5)


def test_range_public_defaults():
    assert irf.range(4).dtype == irf.int64 and irf.range(4).shape == (4,)
    assert irf.range(0.0, 1.0, 0.5).dtype == irf.float32


@pytest.mark.parametrize("dtype,value", [("float32", 2.5), ("int32", -3), ("bool", 1), ("float16", np.inf), ("uint8", 7)])
def test_full(dtype, value):
    check_op("full", [], lambda: np.full((2, 3), value, dtype), {"shape": (2, 3), "value": value, "dtype": irf.DType(dtype)})


def test_full_bfloat16_interpreter_only():  # onnxruntime's Python API cannot return bfloat16 arrays
    import ml_dtypes
    check_op("full", [], lambda: np.full((2,), 1.5, ml_dtypes.bfloat16), {"shape": (2,), "value": 1.5, "dtype": irf.bfloat16},
             ort=False)


@pytest.mark.parametrize("op,fill", [("zeros", 0), ("ones", 1)])
@pytest.mark.parametrize("dtype,shape", [("float32", (2, 3)), ("int64", (0, 2)), ("bool", ())])
def test_zeros_ones(op, fill, dtype, shape):
    check_op(op, [], lambda: np.full(shape, fill, dtype), {"shape": shape, "dtype": irf.DType(dtype)})


def test_full_like():
    x = randn(2, 3)
    check_op("full_like", [x], lambda a: np.full((2, 3), 4.0, np.float32), {"value": 4.0, "dtype": None})
    check_op("full_like", [x], lambda a: np.full((2, 3), 4, np.int32), {"value": 4, "dtype": irf.int32})


@pytest.mark.parametrize("value", [np.arange(6, dtype=np.int64).reshape(2, 3), np.array(-0.0, np.float32),
                                   np.array([np.nan, 1.0]), np.array([True, False])])
def test_constant(value):
    check_op("constant", [], lambda: value.copy(), {"value": value})


def test_constant_output_cannot_change_the_node():
    out = irf.constant(np.arange(3.0)).numpy()
    with pytest.raises(ValueError):
        out[0] = 5.0


def test_public_creation_functions():
    assert irf.full((2,), 7).dtype == irf.int64
    assert irf.full((2,), True).numpy().tolist() == [True, True]
    assert irf.zeros((2, 3)).dtype == irf.float32
    assert irf.ones((2,), "int32").numpy().tolist() == [1, 1]
    assert irf.constant([1.5]).dtype == irf.float32
    np.testing.assert_array_equal(irf.shape_of(irf.zeros((4, 1))).numpy(), [4, 1])


def test_identity():
    check_op("identity", [randn(2, 3)], lambda x: x)


# -- gradients under symbolic dims ---------------------------------------------------------------------------

def check_symbolic(op, inputs, attrs, shapes, want_shape, *, eps=1e-6):
    """Build ``op`` on inputs typed with symbolic ``shapes``; check the inferred shape of its
    first output, then the forward and the gradient graph on the concrete float64 ``inputs``
    against eager and central finite differences (interpreter), and onnxruntime on the
    exported gradient graph against the interpreter."""
    b = irf.GraphBuilder(f"{op}_sym")
    syms = [b.input(f"in{i}", irf.ir.as_dtype(a.dtype), s) for i, (a, s) in enumerate(zip(inputs, shapes))]
    outs = b.add_node(op, syms, dict(attrs))
    outs = outs if isinstance(outs, tuple) else (outs,)
    assert outs[0].shape == want_shape, f"{op}: inferred {outs[0].shape}, want {want_shape}"
    b.output(*outs)
    g = b.build(verify=True)
    feeds = {f"in{i}": a for i, a in enumerate(inputs)}
    want = irf.bind(op, *[irf.tensor(a) for a in inputs], **attrs)
    want = [t.numpy() for t in (want if isinstance(want, tuple) else (want,))]
    got = Interpreter(g).run(feeds)
    for o, w in zip(outs, want):
        np.testing.assert_array_equal(got[o.name], w)
    wrt = [f"in{i}" for i, a in enumerate(inputs) if a.dtype.kind == "f"]
    gg = vjp(g, wrt=wrt).verify()
    cts = {f"ct_{o.name}": rng.standard_normal(w.shape) for o, w in zip(outs, want)}
    grads = Interpreter(gg).run(dict(feeds, **cts))
    onnx.checker.check_model(to_model(gg), full_check=True)
    ort_grads = OrtRunner(gg).run(dict(feeds, **cts))
    fwd = Interpreter(g)
    for name in wrt:
        np.testing.assert_allclose(ort_grads[f"grad_{name}"], grads[f"grad_{name}"], rtol=1e-7, atol=1e-9)
        v = rng.standard_normal(feeds[name].shape)

        def f(t):
            res = fwd.run(dict(feeds, **{name: feeds[name] + t * v}))
            return sum(float(np.sum(cts[f"ct_{o.name}"] * res[o.name])) for o in outs)

        fd = (f(eps) - f(-eps)) / (2 * eps)
        analytic = float(np.sum(grads[f"grad_{name}"] * v))
        assert abs(fd - analytic) <= 1e-6 + 1e-5 * abs(fd), f"{op}: gradient wrt {name}: VJP {analytic}, finite differences {fd}"


def x64(*shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("starts,ends,steps,want", [
    ((1,), (3,), (1,), (None, 4)), ((-3,), (END,), (1,), (None, 4)), ((0,), (-1,), (1,), (None, 4)),
    ((2,), (END,), (1,), (None, 4)), ((-1,), (BEGIN,), (-1,), ("n", 4)), ((0,), (END,), (1,), ("n", 4)),
    ((4,), (1,), (1,), (None, 4)),
])
def test_slice_gradient_symbolic_axis(starts, ends, steps, want):
    for n in (5, 2):
        check_symbolic("slice", [x64(n, 4)], {"starts": starts, "ends": ends, "axes": (0,), "steps": steps},
                       [("n", 4)], want)


def test_slice_gradient_symbolic_two_axes_and_static_steps():
    attrs = {"starts": (1, -1, 3), "ends": (END, -4, 0), "axes": (0, 1, 2), "steps": (1, 1, -2)}
    check_symbolic("slice", [x64(4, 6, 5)], attrs, [("a", "b", 5)], (None, None, 2))


def test_slice_gradient_unsupported_symbolic_case_says_so():
    b = irf.GraphBuilder()
    x = b.input("x", "float64", ("n",))
    b.output(b.op("slice", x, starts=(-2,), ends=(3,), axes=None, steps=None))
    with pytest.raises(irf.UnsupportedOpError, match="slice"):
        vjp(b.build(), wrt=["x"])


def test_concat_and_split_gradients_symbolic():
    check_symbolic("concat", [x64(2, 3), x64(4, 3)], {"axis": 0}, [("a", 3), ("b", 3)], (None, 3))
    check_symbolic("concat", [x64(2, 3), x64(2, 1)], {"axis": 1}, [("n", 3), ("n", 1)], ("n", 4))
    check_symbolic("split_like", [x64(5, 2), x64(2, 2), x64(3, 2)], {"axis": 0}, [("t", 2), ("a", 2), ("b", 2)], ("a", 2))


@pytest.mark.parametrize("reps", [(2, 1), (1, 3), (2, 2)])
def test_tile_gradient_symbolic(reps):
    want = tuple(None if r > 1 else "n" for r in reps[:1]) + (3 * reps[1],)
    check_symbolic("tile", [x64(4, 3)], {"reps": reps}, [("n", 3)], want)


def test_reshape_gradient_symbolic():
    check_symbolic("reshape", [x64(3, 4, 2)], {"shape": (-1, 8)}, [("batch", 4, 2)], ("batch", 8))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_gradient_symbolic(mode):
    check_symbolic("pad", [x64(4, 3)], {"pads": (2, 1, 1, 2), "mode": mode, "value": 0.0}, [("n", 3)], (None, 6))


def test_gather_gradient_symbolic():
    idx = np.array([[0, 2], [2, -1]], np.int64)
    check_symbolic("gather", [x64(3, 5), idx], {"axis": 1}, [("n", 5), ("b", 2)], ("n", "b", 2, ))


def test_squeeze_of_symbolic_axis_gradient():
    check_symbolic("squeeze", [x64(1, 3)], {"axes": (0,)}, [("n", 3)], (3,))


@pytest.mark.parametrize("op,shapes,attrs,want", [
    ("concat", [("n", 3), ("n", 4)], {"axis": 1}, ("n", 7)),
    ("concat", [("n", 3), (2, "k")], {"axis": 0}, (None, 3)),
    ("stack", [("n", 3), (2, "k")], {"axis": -1}, (2, 3, 2)),
    ("split", [("n", 6)], {"sizes": None, "num": 2, "axis": 1}, ("n", 3)),
    ("split", [("n", 6)], {"sizes": None, "num": 2, "axis": 0}, (None, 6)),
    ("tile", [("n", 3)], {"reps": (1, 2)}, ("n", 6)),
    ("pad", [("n", 3)], {"pads": (0, 1, 0, 1), "mode": "constant", "value": 0.0}, ("n", 5)),
    ("broadcast_to", [("n", 1)], {"shape": (4, 5)}, (4, 5)),
    ("one_hot", [("n", None)], {"depth": 5, "axis": 1, "dtype": irf.float32}, ("n", 5, None)),
    ("slice", [("n", 8)], {"starts": (0, 2), "ends": (END, 2**31 - 1), "axes": None, "steps": None}, ("n", 6)),
    ("slice", [("n", 8)], {"starts": (-1,), "ends": (BEGIN,), "axes": None, "steps": (-1,)}, ("n", 8)),
    ("slice", [("n", 8)], {"starts": (0,), "ends": (5,), "axes": None, "steps": None}, (None, 8)),
    ("shape_of", [("n", None)], {}, (2,)),
    ("full_like", [("n", 2)], {"value": 1.0, "dtype": None}, ("n", 2)),
    ("reshape", [("n", 2, 3)], {"shape": (2, -1)}, (2, None)),
    ("squeeze", [("n", 1)], {"axes": (1,)}, ("n",)),
])
def test_symbolic_type_rules(op, shapes, attrs, want):
    b = irf.GraphBuilder()
    dtype = "int64" if op == "one_hot" else "float32"
    ins = [b.input(f"x{i}", dtype, s) for i, s in enumerate(shapes)]
    out = b.op(op, *ins, **attrs)
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape == want


def test_gather_type_with_symbolic_indices():
    b = irf.GraphBuilder()
    table, ids = b.input("t", "float32", (1000, 64)), b.input("ids", "int32", ("batch", "seq"))
    assert b.op("gather", table, ids, axis=0).shape == ("batch", "seq", 64)
    assert b.op("gather_nd", table, b.op("expand_dims", ids, axes=(2,))).shape == ("batch", "seq", 64)


# -- second order: the gradient graphs are IR that can be differentiated again ---------------------------------

@pytest.mark.parametrize("op,inputs,attrs", [
    ("slice", [x64(5, 4)], {"starts": (4, 1), "ends": (0, 4), "axes": None, "steps": (-2, 2)}),
    ("pad", [x64(4, 3)], {"pads": (1, 2, 2, 1), "mode": "reflect", "value": 0.0}),
    ("pad", [x64(4, 3)], {"pads": (1, 2, 2, 1), "mode": "edge", "value": 0.0}),
    ("gather", [x64(4, 3), np.array([1, 1, -1])], {"axis": 0}),
    ("gather_nd", [x64(4, 3), np.array([[1, 2], [1, 2]])], {}),
    ("scatter_add", [x64(4, 3), np.array([[1], [1]]), x64(2, 3)], {}),
    ("tile", [x64(2, 3)], {"reps": (2, 3)}),
    ("concat", [x64(2, 3), x64(1, 3)], {"axis": 0}),
    ("stack", [x64(2, 3), x64(2, 3)], {"axis": 1}),
    ("broadcast_to", [x64(3, 1)], {"shape": (2, 3, 4)}),
])
def test_second_order(op, inputs, attrs):
    """d/d(ct) <w, VJP(ct)> = J w: the VJP of the VJP is the forward derivative, checked against
    central differences of the op along w, on the interpreter and on onnxruntime."""
    g = build_graph(op, inputs, attrs)
    out = g.outputs[0].name
    gg = vjp(g, wrt=["in0"], outputs=[out])
    ct_name = next(v.name for v in gg.inputs if v.name.startswith("ct_"))
    ggg = vjp(gg, wrt=[ct_name], outputs=["grad_in0"]).verify()
    w_name = next(v.name for v in ggg.inputs if v.name not in gg.input_names)
    w = rng.standard_normal(inputs[0].shape)
    primal = {f"in{i}": a for i, a in enumerate(inputs)}
    feeds = dict(primal, **{ct_name: rng.standard_normal(g.outputs[0].type.shape), w_name: w})
    jw = Interpreter(ggg).run(feeds)[f"grad_{ct_name}"]
    fwd = Interpreter(g)
    eps = 1e-6
    fd = (fwd.run(dict(primal, in0=inputs[0] + eps * w))[out] - fwd.run(dict(primal, in0=inputs[0] - eps * w))[out]) / (2 * eps)
    np.testing.assert_allclose(jw, fd, rtol=1e-5, atol=1e-6)
    onnx.checker.check_model(to_model(ggg), full_check=True)
    np.testing.assert_allclose(OrtRunner(ggg).run(feeds)[f"grad_{ct_name}"], jw, rtol=1e-6, atol=1e-9)


def test_json_round_trip_keeps_attrs():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", ("n", 4))
    with b:
        y = irf.slice(x, [None], [None], axes=[1], steps=[-1])
        y = irf.concat([y, irf.broadcast_like(irf.constant(np.float32([[1, 2, 3, 4]])), y)], axis=0)
        r = irf.range(0.0, 2.0, 0.5)
        b.output(y, r)
    g = b.build(verify=True)
    g2 = irf.Graph.model_validate_json(g.model_dump_json())
    feeds = {"x": randn(3, 4)}
    for a, c in zip(Interpreter(g).run(feeds).values(), Interpreter(g2).run(feeds).values()):
        np.testing.assert_array_equal(a, c)


# -- errors users can cause ---------------------------------------------------------------------------------------

def test_reshape_to_incompatible_size():
    with pytest.raises(irf.ShapeError, match="reshape") as e:
        irf.reshape(irf.tensor(np.zeros((2, 3), "float32")), (4, 2))
    assert "(2, 3)" in str(e.value)
    b = irf.GraphBuilder()
    x = b.input("x", "float32", (2, 3))
    with pytest.raises(irf.ShapeError, match=r"reshape.*\(2, 3\)"):
        b.op("reshape", x, shape=(-1, 4))
    with pytest.raises(irf.ShapeError, match="reshape"):
        b.op("reshape", x, shape=(-1, -1))


def test_concat_rank_and_dim_mismatch():
    a, c = irf.tensor(np.zeros((2, 3), "float32")), irf.tensor(np.zeros((2, 4), "float32"))
    with pytest.raises(irf.ShapeError, match="concat.*rank"):
        irf.concat([a, irf.tensor(np.zeros(3, "float32"))])
    with pytest.raises(irf.ShapeError, match=r"concat.*3 and 4"):
        irf.concat([a, c], axis=0)
    with pytest.raises(irf.DTypeError, match="concat"):
        irf.concat([a, irf.tensor(np.zeros((2, 3), "float64"))])
    b = irf.GraphBuilder()
    x, y = b.input("x", "float32", ("n", 3)), b.input("y", "float32", ("n", 4))
    with pytest.raises(irf.ShapeError, match="concat"):
        b.op("concat", x, y, axis=0)


def test_gather_axis_out_of_range():
    with pytest.raises(irf.ShapeError, match="gather: axis 2 is out of range"):
        irf.gather(irf.tensor(np.zeros((2, 3), "float32")), np.array([0]), axis=2)
    with pytest.raises(irf.DTypeError, match="gather: indices must be int32 or int64"):
        irf.gather(irf.tensor(np.zeros((2, 3), "float32")), np.array([0.0]), axis=0)


def test_bad_pad_mode():
    with pytest.raises(irf.IRValidationError, match="pad: mode 'symmetric'"):
        irf.pad(irf.tensor(np.zeros(3, "float32")), 1, mode="symmetric")
    b = irf.GraphBuilder()
    x = b.input("x", "float32", (3,))
    with pytest.raises(irf.IRValidationError, match="pad"):
        b.op("pad", x, pads=(1, 1), mode="symmetric", value=0.0)
    with pytest.raises(irf.ShapeError, match="pad: reflect"):
        irf.pad(irf.tensor(np.zeros(3, "float32")), 3, mode="reflect")


def test_other_errors_name_the_op():
    t = irf.tensor(np.zeros((2, 3), "float32"))
    with pytest.raises(irf.ShapeError, match="split"):
        irf.split(t, 4, axis=1)
    with pytest.raises(irf.ShapeError, match="slice"):
        irf.slice(t, [0], [1], steps=[0])
    with pytest.raises(irf.ShapeError, match="broadcast_to"):
        irf.broadcast_to(t, (3, 3))
    with pytest.raises(irf.ShapeError, match="gather_nd"):
        irf.gather_nd(t, np.zeros((1, 3), np.int64))
    with pytest.raises(irf.DTypeError, match="full"):
        irf.full((2,), 1.5, "int32")
    with pytest.raises(irf.ShapeError, match="squeeze"):
        b = irf.GraphBuilder()
        b.op("squeeze", b.input("x", "float32", ("n", 1)))
    with pytest.raises(irf.ShapeError, match="stack"):
        irf.stack([t, irf.tensor(np.zeros((3, 2), "float32"))])


@pytest.mark.parametrize("module", ["irflow.ops.shape", "irflow.ops.shape_join", "irflow.ops.shape_index", "irflow.ops.shape_create"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), extraglobs={"irf": irf, "np": np})
    assert result.attempted > 0 and result.failed == 0
