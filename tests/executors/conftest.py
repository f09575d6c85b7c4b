"""Shared helpers for the executor tests: small graphs built with GraphBuilder."""
from __future__ import annotations

import numpy as np
import pytest

import irflow as irf


def mlp_graph(batch="batch", sizes=(6, 5, 3), seed=0, name="mlp") -> irf.Graph:
    """x[batch, 6] -> linear -> relu -> linear: weights as initializers."""
    rng = np.random.default_rng(seed)
    b = irf.GraphBuilder(name)
    x = b.input("x", "float32", (batch, sizes[0]))
    h = x
    with b:
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = b.constant((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype("float32"), name=f"w{i}")
            bias = b.constant(rng.standard_normal(n_out).astype("float32") * 0.1, name=f"b{i}")
            h = h @ w + bias
            if i < len(sizes) - 2:
                h = irf.relu(h)
    b.output(h, names=["y"])
    return b.build(verify=True)


def mlp_reference(g: irf.Graph, x: np.ndarray) -> np.ndarray:
    """The same MLP in NumPy by hand, reading the weights from the graph's initializers."""
    h = x
    n = len([k for k in g.initializers if k.startswith("w")])
    for i in range(n):
        h = h @ g.initializers[f"w{i}"] + g.initializers[f"b{i}"]
        if i < n - 1:
            h = np.maximum(h, 0)
    return h


@pytest.fixture
def mlp():
    return mlp_graph()
