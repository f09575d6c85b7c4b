"""Vectorization cost: jacobians and per-example gradients, vectorized vs loops, in ONE process.

(a) The seed's jacobian of ``exp(x @ x)`` for an n x n float32 ``x`` (n = 10, 32, 64): the
    loop of gradients (one ``tape.gradient`` per element of y, on one persistent tape) against
    the vectorized forms: ``tape.jacobian`` (one vmapped gradient graph on the NumPy
    interpreter), the seed's nested ``irf.vectorized_map`` with ``tape.gradient`` inside
    (eager), and ``irf.function(irf.jacobian(f))`` on the NumPy interpreter and onnxruntime.
(b) Per-example gradients of an MLP 784-256-10 loss (cross entropy, batch 64): irflow
    ``irf.function(irf.vmap(irf.grad(loss)))`` on onnxruntime and NumPy, 64 separate eager
    ``irf.grad`` calls, and ``torch.func.vmap(torch.func.grad(loss))`` (if torch imports).

Prints milliseconds per call and ratios to the loop (a) / to torch.func (b) as markdown rows.
The machine is shared: absolute times are noisy, ratios in one run are what to compare.
Every runtime uses ``--threads`` threads (default 1: OpenBLAS through OPENBLAS_NUM_THREADS set
before NumPy loads, onnxruntime's intra-op pool, torch.set_num_threads): on a loaded 2-core
machine a 2-thread OpenBLAS GEMM was measured 30-60x slower than a 1-thread one.

Run: python benchmarks/vmap.py [--quick] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import sys
import timeit

_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--threads", type=int, default=1)
_pre.add_argument("--quick", action="store_true")
ARGS = _pre.parse_known_args()[0]
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(ARGS.threads))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

import irflow as irf  # noqa: E402
from irflow.executors.onnx import OrtOptions  # noqa: E402

ORT = OrtOptions(intra_op_num_threads=ARGS.threads, inter_op_num_threads=1)


def ms(fn, number: int = 1, repeat: int = 3) -> float:
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e3


def jacobian_rows(n: int, quick: bool) -> list[tuple]:
    rng = np.random.default_rng(0)
    x_np = (0.3 * rng.standard_normal((n, n)) / np.sqrt(n)).astype("float32")
    x = irf.tensor(x_np)
    with irf.GradientTape(persistent=True) as t:
        t.watch(x)
        y = irf.exp(x @ x)
    eye = np.eye(n * n, dtype="float32").reshape(n * n, n, n)

    def loop():
        return np.stack([t.gradient(y, x, output_gradients=eye[k]).numpy() for k in range(n * n)])

    def tape_jac():
        return t.jacobian(y, x).numpy()

    def nested():
        return irf.vectorized_map(lambda yi: irf.vectorized_map(lambda yij: t.gradient(yij, x), yi), y).numpy()

    f = lambda a: irf.exp(a @ a)  # noqa: E731
    jac_np = irf.function(irf.jacobian(f))
    jac_ort = irf.function(irf.jacobian(f), executor="ort", ort_options=ORT)
    ref = loop().reshape(n, n, n, n)
    for name, fn in (("tape.jacobian", tape_jac), ("nested vectorized_map", nested),
                     ("irf.function(jacobian) numpy", lambda: jac_np(x_np).numpy()),
                     ("irf.function(jacobian) ort", lambda: jac_ort(x_np).numpy())):
        np.testing.assert_allclose(fn(), ref, rtol=2e-4, atol=2e-5, err_msg=name)
    rep = 1 if (quick or n >= 64) else 3
    t_loop = ms(loop, repeat=rep)
    rows = [(f"n={n}", "loop of tape.gradient", t_loop, 1.0)]
    for name, fn in (("tape.jacobian (vmapped gradient graph)", tape_jac), ("nested vectorized_map (seed form, eager)", nested),
                     ("irf.function(irf.jacobian) numpy", lambda: jac_np(x_np)),
                     ("irf.function(irf.jacobian) ort", lambda: jac_ort(x_np))):
        tm = ms(fn, repeat=3)
        rows.append((f"n={n}", name, tm, t_loop / tm))
    return rows


def per_example_rows(quick: bool) -> list[tuple]:
    rng = np.random.default_rng(1)
    params = {"w1": (rng.standard_normal((784, 256)) * 0.05).astype("float32"), "b1": np.zeros(256, "float32"),
              "w2": (rng.standard_normal((256, 10)) * 0.05).astype("float32"), "b2": np.zeros(10, "float32")}
    xs = rng.standard_normal((64, 784)).astype("float32")
    labels = rng.integers(0, 10, 64)
    ys = np.eye(10, dtype="float32")[labels]

    def loss(p, x, y):  # one example: cross entropy = logsumexp(logits) - logits[label]
        logits = irf.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
        return irf.logsumexp(logits, axis=-1) - irf.reduce_sum(y * logits)

    per_ex = lambda p, x, y: irf.vmap(irf.grad(loss), in_axes=(None, 0, 0))(p, x, y)  # noqa: E731
    f_ort = irf.function(per_ex, executor="ort", ort_options=ORT)
    f_np = irf.function(per_ex)
    grad_fn = irf.grad(loss)

    def loop():
        return [grad_fn(params, xs[i], ys[i]) for i in range(64)]

    ref = loop()
    got = f_ort(params, xs, ys)
    for k in params:
        np.testing.assert_allclose(got[k].numpy(), np.stack([r[k].numpy() for r in ref]), rtol=1e-4, atol=1e-6)
    timings = {
        "irflow vmap(grad), irf.function on ort": ms(lambda: f_ort(params, xs, ys), number=3),
        "irflow vmap(grad), irf.function on numpy": ms(lambda: f_np(params, xs, ys), number=3),
        "irflow loop of 64 eager irf.grad calls": ms(loop, repeat=1 if quick else 3),
    }
    try:
        import torch
        from torch.func import grad, vmap

        torch.set_num_threads(ARGS.threads)

        tp = {k: torch.from_numpy(v) for k, v in params.items()}
        tx, tl = torch.from_numpy(xs), torch.from_numpy(labels)

        def tloss(p, x, label):
            logits = torch.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
            return torch.nn.functional.cross_entropy(logits[None], label[None])

        tf = vmap(grad(tloss), in_dims=(None, 0, 0))
        tg = tf(tp, tx, tl)
        np.testing.assert_allclose(tg["w1"].numpy(), got["w1"].numpy(), rtol=1e-4, atol=1e-6)
        timings["torch.func.vmap(grad)"] = ms(lambda: tf(tp, tx, tl), number=3)
        base = timings["torch.func.vmap(grad)"]
        base_name = "torch.func"
    except ImportError:
        base = timings["irflow loop of 64 eager irf.grad calls"]
        base_name = "loop"
    return [("MLP 784-256-10, B=64", name, tm, base / tm, base_name) for name, tm in timings.items()]


def main() -> None:
    quick = ARGS.quick
    print(f"threads per runtime: {ARGS.threads}")
    print("| problem | method | ms / call | speed-up vs loop |")
    print("|---|---|---:|---:|")
    for n in (10, 32) if quick else (10, 32, 64):
        for prob, name, tm, ratio in jacobian_rows(n, quick):
            print(f"| jacobian of exp(x @ x), {prob} | {name} | {tm:.1f} | {ratio:.1f}x |", flush=True)
    print()
    rows = per_example_rows(quick)
    print(f"| problem | method | ms / call | speed vs {rows[0][4]} (>1: faster) |")
    print("|---|---|---:|---:|")
    for prob, name, tm, ratio, _ in rows:
        print(f"| {prob} | {name} | {tm:.2f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
