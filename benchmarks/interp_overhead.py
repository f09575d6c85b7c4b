"""Interpreter dispatch overhead, measured against NumPy by hand in the same process.

1. A 1,000-node chain of tiny ops (1-element float32): (interpreter time - hand NumPy time) / 1000
   is the per-node dispatch overhead in microseconds.
2. A 20-node chain of large ops (1M float32): interpreter time / hand NumPy time.

Goals (issue #2): at most 3 us per node, at most 1.05x on large ops.
Run: python benchmarks/interp_overhead.py
"""
from __future__ import annotations

import statistics
import time

import numpy as np

import irflow as irf
from irflow.executors.numpy import Interpreter

OPS = ("neg", "relu", "add1")


def chain_graph(n: int, shape) -> irf.Graph:
    b = irf.GraphBuilder("chain")
    y = b.input("x", "float32", shape)
    one = b.constant(np.float32(1.0), name="one")
    for i in range(n):
        op = OPS[i % 3]
        y = b.op("neg", y) if op == "neg" else (b.op("relu", y) if op == "relu" else b.op("add", y, one))
    b.output(y)
    return b.build()


def chain_numpy(x: np.ndarray, n: int) -> np.ndarray:
    one = np.float32(1.0)
    y = x
    for i in range(n):
        op = OPS[i % 3]
        y = np.negative(y) if op == "neg" else (np.maximum(y, 0) if op == "relu" else np.add(y, one))
    return y


def median_time(fn, repeat: int, number: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def main() -> None:
    n = 1000
    x = np.ones(1, np.float32)
    interp = Interpreter(chain_graph(n, (1,)))
    feeds = {"x": x}
    np.testing.assert_array_equal(next(iter(interp.run(feeds).values())), chain_numpy(x, n))
    t_interp = median_time(lambda: interp.run(feeds), repeat=15, number=20)
    t_numpy = median_time(lambda: chain_numpy(x, n), repeat=15, number=20)
    per_node = (t_interp - t_numpy) / n * 1e6
    print(f"tiny ops, {n}-node chain: interpreter {t_interp * 1e3:.3f} ms, NumPy by hand {t_numpy * 1e3:.3f} ms")
    print(f"  dispatch overhead per node: {per_node:.2f} us  (goal <= 3 us)")

    big = np.random.default_rng(0).standard_normal(1_000_000).astype(np.float32)
    interp_big = Interpreter(chain_graph(20, (big.size,)))
    feeds_big = {"x": big}
    t_interp_big = median_time(lambda: interp_big.run(feeds_big), repeat=15, number=3)
    t_numpy_big = median_time(lambda: chain_numpy(big, 20), repeat=15, number=3)
    print(f"large ops (1M float32), 20-node chain: interpreter {t_interp_big * 1e3:.2f} ms, "
          f"NumPy by hand {t_numpy_big * 1e3:.2f} ms, ratio {t_interp_big / t_numpy_big:.3f}x  (goal <= 1.05x)")


if __name__ == "__main__":
    main()
