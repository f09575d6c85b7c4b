"""The NumPy interpreter: results, feeds checking, freeing, profiling and numerics checks."""
import tracemalloc

import numpy as np
import pytest

import irflow as irf
from irflow.executors.numpy import KERNELS, Interpreter


def _chain(n_ops: int, shape) -> irf.Graph:
    """x -> neg -> exp-free chain of cheap elementwise ops (alternating neg / relu / add x)."""
    b = irf.GraphBuilder("chain")
    x = b.input("x", "float32", shape)
    y = x
    with b:
        for i in range(n_ops):
            y = (-y) if i % 3 == 0 else (irf.relu(y) if i % 3 == 1 else y + 1.0)
    b.output(y)
    return b.build(verify=True)


def _chain_reference(x, n_ops):
    y = x
    for i in range(n_ops):
        y = (-y) if i % 3 == 0 else (np.maximum(y, 0) if i % 3 == 1 else y + np.float32(1.0))
    return y


def test_chain_matches_numpy_by_hand():
    x = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    out = irf.run(_chain(20, ("batch", 5)), {"x": x})
    (y,) = out.values()
    np.testing.assert_array_equal(y, _chain_reference(x, 20))


def test_long_chain_holds_a_few_buffers_not_one_per_node():
    n = 8 * 1024 * 1024  # 8M float32 = 32 MiB per buffer
    g = _chain(20, (n,))
    interp = Interpreter(g)
    x = np.ones(n, dtype=np.float32)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        out = interp.run({"x": x})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    buffers = (peak - base) / (4 * n)
    assert buffers <= 4, f"peak extra memory was {buffers:.1f} buffers for a 20-op chain"
    assert next(iter(out.values())).shape == (n,)


def test_feeds_are_checked_by_name_dtype_shape_and_symbol():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", ("batch", 4))
    y = b.input("y", "float32", ("batch", 4))
    b.output(b.op("add", x, y))
    g = b.build()
    ok = np.zeros((2, 4), np.float32)
    with pytest.raises(irf.ExecutorError, match="unknown input.*'z'"):
        irf.run(g, {"x": ok, "y": ok, "z": ok})
    with pytest.raises(irf.ExecutorError, match="missing input.*'y'"):
        irf.run(g, {"x": ok})
    with pytest.raises(irf.DTypeError, match="input 'x' must be float32, got float64"):
        irf.run(g, {"x": ok.astype(np.float64), "y": ok})
    with pytest.raises(irf.ShapeError, match=r"input 'y' must have shape \('batch', 4\)"):
        irf.run(g, {"x": ok, "y": np.zeros((2, 5), np.float32)})
    with pytest.raises(irf.ShapeError, match="dim 'batch' is 2 in input 'x' but 3 in input 'y'"):
        irf.run(g, {"x": ok, "y": np.zeros((3, 4), np.float32)})


def test_kernel_failure_names_node_op_and_shapes(monkeypatch):
    g = _chain(3, (2, 2))
    def broken(x):
        raise RuntimeError("boom")
    monkeypatch.setitem(KERNELS, "relu", broken)
    with pytest.raises(irf.ExecutorError, match=r"node relu_\d+ \(relu\) failed on inputs \(float32\[2, 2\]\).*boom"):
        Interpreter(g).run({"x": np.ones((2, 2), np.float32)})


def test_check_numerics_names_the_first_bad_node():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", (3,))
    with b:
        y = irf.div(x, x)  # 0/0 = NaN for the zero entry
        z = irf.exp(y)
    b.output(z)
    g = b.build()
    feeds = {"x": np.array([0.0, 1.0, 2.0], np.float32)}
    with np.errstate(invalid="ignore"):
        Interpreter(g).run(feeds)  # no check: runs
        with pytest.raises(irf.ExecutorError, match=r"node div_\d+ \(div\) produced NaN"):
            Interpreter(g, check_numerics=True).run(feeds)


def test_profile_records_every_node():
    g = _chain(6, (4,))
    interp = Interpreter(g, profile=True)
    interp.run({"x": np.ones(4, np.float32)})
    assert [name for name, _, _ in interp.timings] == [n.name for n in g.nodes]
    table = interp.profile_table()
    assert "relu" in table and "us" in table


def test_missing_kernel_is_reported_before_running():
    from irflow.ops.registry import defop, REGISTRY
    if "test_only_op" not in REGISTRY:
        defop("test_only_op", lambda x: x, differentiable=False)
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", (2,))
    b.output(b.op("test_only_op", x))
    try:
        with pytest.raises(irf.UnsupportedOpError, match="no NumPy kernel for op.*test_only_op"):
            Interpreter(b.build())
    finally:
        REGISTRY.pop("test_only_op")
