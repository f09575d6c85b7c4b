"""Constant folding: what folds (constants, shape-only reads), what never does (random ops,
graph outputs, big or symbolic results), and that folded graphs compute the same values."""
import numpy as np

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.passes.fold_constants import fold_constants
from irflow.passes.prune import prune

RNG = np.random.default_rng(0)


def _ops(graph):
    return [n.op for n in graph.nodes]


def _seed_chain_graph(shape=(64, 10)):
    """loss = mean(sum(x * w, -1)); out = x * broadcast(0.5 * ones_like(loss)): the shape of a
    gradient seed scaled and broadcast over the batch."""
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", shape)
    with b:
        loss = irf.reduce_mean(irf.reduce_sum(x * 2.0, axis=-1))
        seed = irf.ones_like(loss) * 0.5
        col = irf.broadcast_like(irf.expand_dims(irf.expand_dims(seed, 0), 0), irf.reduce_sum(x, axis=-1, keepdims=True))
        b.output(x * col)
    return b.build(verify=True)


def test_a_seed_chain_folds_into_one_initializer_and_computes_the_same():
    g = _seed_chain_graph()
    folded = prune(fold_constants(g))
    assert "ones_like" not in _ops(folded) and "broadcast_like" not in _ops(folded)
    assert len(folded.nodes) < len(g.nodes)
    # The forward that only the seed's shape read is dead now, and pruned.
    assert "reduce_mean" not in _ops(folded)
    x = RNG.standard_normal((64, 10)).astype("float32")
    (expected,) = Interpreter(g).run({"x": x}).values()
    (got,) = Interpreter(folded).run({"x": x}).values()
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, x * np.float32(0.5))


def test_random_ops_graph_outputs_big_and_symbolic_results_do_not_fold():
    b = irf.GraphBuilder("g")
    x = b.input("x", "float32", ("batch", 3))
    big = b.input("big", "float32", (100, 100))
    with b:
        noise = irf.random_normal((2, 2), seed=1)
        b.output(noise * 2.0)                 # random: stays, and so does what reads it
        b.output(irf.ones_like(x) + x)        # symbolic shape: stays
        b.output(irf.ones_like(big) * big)    # 10,000 elements > 4096: stays
        b.output(irf.zeros_like(big[0:1, 0:2]))  # small, but a graph output: stays a node
    g = b.build(verify=True)
    folded = fold_constants(g)
    assert _ops(folded).count("random_normal") == 1
    assert _ops(folded).count("ones_like") == 2
    assert "zeros_like" in _ops(folded)


def test_vjp_graphs_are_folded_and_still_match_finite_differences():
    b = irf.GraphBuilder("mlp")
    x = b.input("x", "float64", (8, 5))
    w = b.input("w", "float64", (5, 3))
    with b:
        b.output(irf.reduce_mean(irf.reduce_sum(irf.tanh(x @ w) ** 2, axis=-1)))
    g = b.build(verify=True)
    gg = vjp(g, wrt=["w"], seed="ones")
    assert "ones_like" not in _ops(gg)  # the seed is an initializer
    xv, wv = RNG.standard_normal((8, 5)), RNG.standard_normal((5, 3))
    grad = Interpreter(gg).run({"x": xv, "w": wv})["grad_w"]

    def f(wm):
        return np.mean(np.sum(np.tanh(xv @ wm) ** 2, axis=-1))

    eps, fd = 1e-6, np.zeros_like(wv)
    for idx in np.ndindex(wv.shape):
        d = np.zeros_like(wv)
        d[idx] = eps
        fd[idx] = (f(wv + d) - f(wv - d)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-10)  # central differences in float64
