"""Hypothesis-generated random graphs of 5 to 30 ops: NumPy executor vs onnxruntime.

Each graph is built with GraphBuilder from elementwise, matmul, reduction and shape ops (those
the registry, the NumPy kernels and the ONNX lowerings all have, so the pool grows with the
op set). Every graph must also pass ``onnx.checker`` (full) and ONNX shape inference must
agree with irflow's types.

Tolerance: float32 results agree to rtol=1e-4 and atol=1e-4 * (1 + max|reference|) (the two
runtimes may sum in different orders); bool results exactly.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import irflow as irf
from irflow.errors import IrflowError
from irflow.executors.numpy import Interpreter
from irflow.executors.numpy.kernels import KERNELS
from irflow.executors.onnx import OrtRunner, check_export
from irflow.executors.onnx.lowering import LOWERINGS
from irflow.ops.registry import REGISTRY


def have(*ops: str) -> bool:
    return all(op in REGISTRY and op in KERNELS and op in LOWERINGS for op in ops)


UNARY = [op for op in ["neg", "relu", "abs", "tanh", "sigmoid", "sin", "cos"] if have(op)]
BINARY = [op for op in ["add", "sub", "mul", "maximum", "minimum"] if have(op)]
REDUCE = [op for op in ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min"] if have(op)]


def _gauss(b, x):  # exp(-x*x): exp on a bounded input, so chains cannot overflow
    return b.op("exp", b.op("neg", b.op("mul", x, x)))


def _safe_div(b, x, y):  # x / (1 + y*y): never divides by zero
    return b.op("div", x, b.op("add", b.op("mul", y, y), 1.0))


def _select(b, x, y):  # where(x > y, x, y), the comparison and where ops together
    return b.op("where", b.op("greater", x, y), x, y)


def _broadcasts(*shapes) -> bool:
    """True when the shapes broadcast for EVERY value of the batch symbol (a symbol may only
    meet itself or a 1, never a fixed size: that would tie the graph to one batch size)."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    for dims in zip(*padded):
        rest = {d for d in dims if d != 1}
        if len(rest) > 1:
            return False
    return True


def _matmul_fits(x, y) -> bool:
    sx, sy = x.type.shape, y.type.shape
    if not sx or not sy:
        return False
    kx = sx[-1]
    ky = sy[0] if len(sy) == 1 else sy[-2]
    batch_x = sx[:-2] if len(sx) >= 2 else ()
    batch_y = sy[:-2] if len(sy) >= 2 else ()
    return kx == ky and _broadcasts(batch_x, batch_y)


def build_random_graph(data, n_ops: int, batch_symbolic: bool) -> irf.Graph:
    batch = "batch" if batch_symbolic else 3
    b = irf.GraphBuilder("random")
    pool = [b.input("a", "float32", (batch, 4)), b.input("w", "float32", (4, 4)), b.input("v", "float32", (4,))]
    kinds = ["unary", "binary"] * 2 + ["matmul", "reduce", "transpose", "expand_squeeze"]
    if have("exp", "neg", "mul"):
        kinds.append("gauss")
    if have("div", "add", "mul"):
        kinds.append("div")
    if have("where", "greater"):
        kinds.append("select")
    if have("softmax"):
        kinds.append("softmax")
    start = len(b.nodes)
    attempts = 0
    while len(b.nodes) - start < n_ops and attempts < 10 * n_ops:
        attempts += 1
        kind = data.draw(st.sampled_from(kinds), label="kind")
        x = data.draw(st.sampled_from(pool), label="x")
        y = data.draw(st.sampled_from(pool), label="y")
        try:
            if kind == "unary":
                out = b.op(data.draw(st.sampled_from(UNARY)), x)
            elif kind in ("binary", "div", "select") and not _broadcasts(x.type.shape, y.type.shape):
                continue
            elif kind == "binary":
                out = b.op(data.draw(st.sampled_from(BINARY)), x, y)
            elif kind == "matmul":
                if not _matmul_fits(x, y):
                    continue
                out = b.op("matmul", x, y)
            elif kind == "reduce":
                if x.type.rank == 0:
                    continue
                axis = data.draw(st.one_of(st.none(), st.integers(-x.type.rank, x.type.rank - 1)))
                out = b.op(data.draw(st.sampled_from(REDUCE)), x, axes=None if axis is None else (axis,),
                           keepdims=data.draw(st.booleans()))
            elif kind == "transpose":
                if x.type.rank < 2:
                    continue
                out = b.op("transpose", x, perm=tuple(data.draw(st.permutations(range(x.type.rank)))))
            elif kind == "expand_squeeze":
                if x.type.rank >= 4:
                    continue
                axis = data.draw(st.integers(0, x.type.rank))
                out = b.op("expand_dims", x, axes=(axis,))
                if data.draw(st.booleans()):
                    out = b.op("squeeze", out, axes=(axis,))
            elif kind == "gauss":
                out = _gauss(b, x)
            elif kind == "div":
                out = _safe_div(b, x, y)
            elif kind == "select":
                out = _select(b, x, y)
            else:  # softmax
                if x.type.rank == 0:
                    continue
                with b:
                    out = irf.softmax(x, axis=-1)
        except IrflowError:  # shapes that do not fit: the type rule said no, try another op
            continue
        pool.append(out)
    made = pool[3:]
    outs = [made[-1]] if made else [b.op("relu", pool[0])]
    extra = data.draw(st.lists(st.sampled_from(made), max_size=2, unique_by=lambda t: t.name)) if made else []
    outs += [t for t in extra if t.name != outs[0].name]
    b.output(*outs)
    return b.build(verify=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), n_ops=st.integers(5, 30), batch_symbolic=st.booleans(), batch=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_random_graphs_numpy_and_onnxruntime_agree(data, n_ops, batch_symbolic, batch, seed):
    g = build_random_graph(data, n_ops, batch_symbolic)
    assert len(g.nodes) >= n_ops
    check_export(g)  # full checker + shape inference agrees with irflow's types
    rng = np.random.default_rng(seed)
    n = batch if batch_symbolic else 3
    feeds = {
        "a": rng.standard_normal((n, 4)).astype("float32"),
        "w": (rng.standard_normal((4, 4)) / 2).astype("float32"),
        "v": rng.standard_normal(4).astype("float32"),
    }
    want = Interpreter(g).run(feeds)
    got = OrtRunner(g, device="cpu").run(feeds)
    for v in g.outputs:
        ref, out = want[v.name], got[v.name]
        assert out.dtype == ref.dtype and out.shape == ref.shape, (v.name, out.dtype, out.shape, ref.dtype, ref.shape)
        if ref.dtype.kind == "f":
            scale = 1.0 + float(np.max(np.abs(ref))) if ref.size else 1.0
            np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{v.name}\n{g}")
        else:
            np.testing.assert_array_equal(out, ref, err_msg=f"{v.name}\n{g}")


def test_the_generator_makes_graphs_of_the_asked_size():
    """The property test is only as good as its graphs: check they are 5-30 ops of several kinds."""
    sizes, ops = [], set()

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data(), n_ops=st.integers(5, 30))
    def collect(data, n_ops):
        g = build_random_graph(data, n_ops, True)
        sizes.append((n_ops, len(g.nodes)))
        ops.update(n.op for n in g.nodes)

    collect()
    assert all(made >= asked for asked, made in sizes)
    assert {"matmul", "transpose", "expand_dims"} & ops and len(ops) >= 6
