"""Per-example gradients of a small CNN: what the conv / pool / shape batching rules buy, in ONE process.

Model (float32, batch B = 32 by default): x (1, 28, 28) -> conv 8x3x3 -> relu -> max_pool 2 ->
conv 16x3x3 -> relu -> max_pool 2 -> flatten -> dense 10 -> sparse softmax cross entropy.

Rows: ``irf.function(irf.vmap(irf.grad(loss)))`` with the batching rules on the NumPy
interpreter and on onnxruntime; the same graph built with every op forced to the loop fallback
(one ``scan`` per op, which is what vmap does for an op without a rule) on NumPy; B separate
eager ``irf.grad`` calls; ``torch.func.vmap(torch.func.grad(loss))`` if torch imports.

Prints milliseconds per call and the ratio to the rules-on-NumPy row as markdown rows. The
machine is shared: absolute times are noisy, ratios in one run are what to compare. One thread
for every runtime (see benchmarks/vmap.py for why).

Run: python benchmarks/vmap_cnn.py [--batch B]
"""
from __future__ import annotations

import argparse
import os
import sys
import timeit

_pre = argparse.ArgumentParser()
_pre.add_argument("--batch", type=int, default=32)
ARGS = _pre.parse_args()
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

import irflow as irf  # noqa: E402
from irflow.executors.onnx import OrtOptions, OrtRunner  # noqa: E402
from irflow.ops.registry import LOOP, REGISTRY  # noqa: E402

B = ARGS.batch
RNG = np.random.default_rng(0)
P = {"w1": RNG.standard_normal((8, 1, 3, 3)) * 0.3, "b1": np.zeros(8), "w2": RNG.standard_normal((16, 8, 3, 3)) * 0.1,
     "b2": np.zeros(16), "w3": RNG.standard_normal((16 * 5 * 5, 10)) * 0.05, "b3": np.zeros(10)}
P = {k: v.astype(np.float32) for k, v in P.items()}
XS = RNG.standard_normal((B, 1, 28, 28)).astype(np.float32)
LABELS = RNG.integers(0, 10, B)


def loss(p, x, label):
    h = irf.max_pool2d(irf.relu(irf.conv2d(irf.expand_dims(x, 0), p["w1"], p["b1"])), 2)
    h = irf.max_pool2d(irf.relu(irf.conv2d(h, p["w2"], p["b2"])), 2)
    logits = irf.reshape(h, (1, -1)) @ p["w3"] + p["b3"]
    return irf.reduce_sum(irf.sparse_softmax_cross_entropy(logits, irf.reshape(label, (1,))))


def per_example(p, xs, labels):
    return irf.vmap(irf.grad(loss), in_axes=(None, 0, 0))(p, xs, labels)


def ms(fn, number: int = 1, repeat: int = 3) -> float:
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e3


def main() -> None:
    feeds_list = [P["w1"], P["b1"], P["w2"], P["b2"], P["w3"], P["b3"], XS, LABELS]
    g = irf.function(per_example).get_graph(P, XS, LABELS)
    feeds = dict(zip(g.input_names, feeds_list))
    assert "scan" not in [n.op for n in g.nodes]
    saved = {op: d.batch for op, d in REGISTRY.items()}
    try:  # every op as if it had no rule
        for d in REGISTRY.values():
            d.batch = LOOP
        g_loop = irf.function(per_example).get_graph(P, XS, LABELS)
    finally:
        for op, rule in saved.items():
            REGISTRY[op].batch = rule
    loop_feeds = dict(zip(g_loop.input_names, feeds_list))
    ort = OrtRunner(g, options=OrtOptions(intra_op_num_threads=1, inter_op_num_threads=1))
    ref = irf.run(g, feeds)
    got_loop = irf.run(g_loop, loop_feeds)
    for v, w in zip(g.outputs, g_loop.outputs):
        np.testing.assert_allclose(got_loop[w.name], ref[v.name], rtol=1e-4, atol=1e-5)

    rows = [("irflow vmap(grad), rules, NumPy interpreter", ms(lambda: irf.run(g, feeds))),
            ("irflow vmap(grad), rules, onnxruntime", ms(lambda: ort.run(feeds))),
            ("irflow vmap(grad), every op in the loop fallback (scan), NumPy", ms(lambda: irf.run(g_loop, loop_feeds))),
            (f"{B} separate eager irf.grad calls",
             ms(lambda: [irf.grad(loss)(P, XS[i], LABELS[i]) for i in range(B)]))]
    try:
        import torch
        from torch.func import grad, vmap

        torch.set_num_threads(1)
        F = torch.nn.functional
        tp = {k: torch.from_numpy(v) for k, v in P.items()}

        def tloss(p, x, label):
            h = F.max_pool2d(torch.relu(F.conv2d(x[None], p["w1"], p["b1"])), 2)
            h = F.max_pool2d(torch.relu(F.conv2d(h, p["w2"], p["b2"])), 2)
            return F.cross_entropy(h.reshape(1, -1) @ p["w3"] + p["b3"], label[None], reduction="sum")

        tx, tl = torch.from_numpy(XS), torch.from_numpy(LABELS)
        tfn = vmap(grad(tloss), in_dims=(None, 0, 0))
        want = tfn(tp, tx, tl)
        for v, k in zip(g.outputs, P):
            np.testing.assert_allclose(ref[v.name], want[k].numpy(), rtol=1e-3, atol=1e-4)
        rows.append(("torch.func.vmap(torch.func.grad(loss))", ms(lambda: tfn(tp, tx, tl))))
    except ImportError:
        pass
    base = rows[0][1]
    print(f"| per-example gradients, CNN, batch {B} (float32, 1 thread) | ms | vs rules on NumPy |")
    print("|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t:.1f} | {t / base:.2f}x |")


if __name__ == "__main__":
    main()
