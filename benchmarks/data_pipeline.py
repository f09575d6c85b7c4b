"""Input-pipeline benchmark: what feeding a traced train step from a pipeline costs.

The MLP 784-256-10 (batch 64, softmax cross-entropy, SGD), traced with irf.function on the
NumPy executor, trains for one epoch over N random examples, fed by:

- ``arrays``: batches sliced beforehand (no pipeline at all: the step time alone);
- ``irf.data``: ``Dataset.from_tensor_slices((x, y)).shuffle(N, seed).batch(64).prefetch()``
  (AUTOTUNE: a depth of 8, refilled 4 at a time), and the same with ``.prefetch(2)`` (the
  thread woken for every batch);
- ``irf.data, no prefetch``: the same chain without ``prefetch``;
- ``irf DataLoader``: ``irf.data.DataLoader(TensorDataset(x, y), 64, shuffle=True, seed=0)``;
- ``torch DataLoader``: ``torch.utils.data.DataLoader(TensorDataset(...), 64, shuffle=True)``
  on the same arrays (shared memory, ``torch.from_numpy``), batches handed to the same step.

Printed: examples/s per configuration and the pipeline's overhead over ``arrays``, the CPU
time per epoch of all threads (the work added, steady under load), plus the
pipelines alone (iteration without a step) as a share of the step time: the most a pipeline
adds when nothing overlaps it, and the steadier number on a loaded machine (a difference of
two epoch times moves with every other job on the cores). Timing: one epoch per call, configurations take
turns, minimum over rounds (benchmarks/executors.py ``measure_group``); BLAS and torch are
pinned to ``--threads`` (default 1), so the prefetch thread has the other core.

    python benchmarks/data_pipeline.py [--n 8192] [--threads 1] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--threads", type=int, default=1)
_threads = _pre.parse_known_args()[0].threads
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(_threads))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import irflow as irf  # noqa: E402
from irflow import nn  # noqa: E402

from executors import measure_group  # noqa: E402

SIZES, BATCH, LR = [784, 256, 10], 64, 0.01


def make_step():
    model = nn.MLP(SIZES, rng=0)
    opt = irf.optim.SGD(LR)

    @irf.function
    def step(x, y):
        with irf.GradientTape() as tape:
            loss = nn.losses.softmax_cross_entropy(model(x), y)
        vs = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
        return loss

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n", type=int, default=8192, help="examples per epoch")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.n, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], args.n)
    step = make_step()
    presliced = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, args.n, BATCH)]
    ds = irf.data.Dataset.from_tensor_slices((x, y)).shuffle(args.n, seed=0).batch(BATCH)
    ds_prefetch = ds.prefetch()
    ds_prefetch2 = ds.prefetch(2)
    loader = irf.data.DataLoader(irf.data.TensorDataset(x, y), batch_size=BATCH, shuffle=True, seed=0)

    def epoch(batches):
        def run():
            for xb, yb in batches():
                step(xb, yb)
        return run

    def drain(batches):
        def run():
            for _ in batches():
                pass
        return run

    feeds = {
        "arrays (no pipeline)": lambda: presliced,
        "irf.data shuffle.batch.prefetch()": lambda: ds_prefetch,
        "irf.data shuffle.batch.prefetch(2)": lambda: ds_prefetch2,
        "irf.data shuffle.batch": lambda: ds,
        "irf DataLoader": lambda: loader,
    }
    alone = {
        "irf.data shuffle.batch": drain(lambda: ds),
        "irf DataLoader": drain(lambda: loader),
    }
    try:
        import torch

        torch.set_num_threads(args.threads)
        tds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
        tloader = torch.utils.data.DataLoader(tds, batch_size=BATCH, shuffle=True,
                                              generator=torch.Generator().manual_seed(0))
        feeds["torch DataLoader"] = lambda: ((a.numpy(), b.numpy()) for a, b in tloader)
        alone["torch DataLoader"] = drain(lambda: tloader)
    except ImportError:
        print("(torch not installed: no torch.utils.data.DataLoader row)")

    configs = {name: epoch(batches) for name, batches in feeds.items()}
    times = measure_group(configs, min_time=0.0, rounds=args.rounds, pause=0.05)
    base = times["arrays (no pipeline)"]
    print(f"(load average when the run started: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, {args.n} examples per epoch, threads={args.threads}, "
          f"traced step on the NumPy executor; minimum over {args.rounds} epochs")
    print(f"{'feeding the train step':36s} {'examples/s':>12s} {'ms/epoch':>10s} {'vs arrays':>10s}")
    for name, t in times.items():
        print(f"{name:36s} {args.n / t:12.0f} {t * 1e3:10.1f} {100 * (t / base - 1):+9.1f}%")
    t_alone = measure_group(alone, min_time=0.0, rounds=args.rounds, pause=0.05)
    # The pipeline's own work as a share of the step time: what it adds at most when nothing
    # overlaps (no prefetch), and a number the machine's load disturbs far less than a difference
    # of two epoch times does.
    print(f"\n{'the pipeline alone (no step)':36s} {'examples/s':>12s} {'ms/epoch':>10s} {'of step time':>13s}")
    for name, t in t_alone.items():
        print(f"{name:36s} {args.n / t:12.0f} {t * 1e3:10.1f} {100 * t / base:12.1f}%")
    # CPU time of the whole process per epoch (every thread: the step, the pipeline, the
    # prefetch thread): the work a pipeline adds, which waiting in the run queue of a loaded
    # machine does not inflate (wall-clock differences above do move with the load).
    print(f"\n{'CPU time per epoch (all threads)':36s} {'cpu ms':>10s} {'vs arrays':>10s}")
    cpu = {}
    for name in feeds:
        samples = []
        for _ in range(args.rounds):
            t0 = time.process_time()
            configs[name]()
            samples.append(time.process_time() - t0)
        cpu[name] = sorted(samples)[len(samples) // 2]
    for name, c in cpu.items():
        print(f"{name:36s} {c * 1e3:10.1f} {100 * (c / cpu['arrays (no pipeline)'] - 1):+9.1f}%")
    print(f"\ntrace count of the step: {step.trace_count} (one per batch shape)")


if __name__ == "__main__":
    main()
