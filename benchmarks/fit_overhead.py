"""What ``model.fit`` adds to a hand-written loop over the same traced train step.

    python benchmarks/fit_overhead.py [--repeat 7] [--epochs 3]

One MLP (64-128-64-10, Adam, batch 64, 22 batches per epoch, the digits' size) trained by:
a hand-written loop calling an ``irf.function`` step; ``fit(verbose=0)``; ``fit`` with a summary
writer (``batch/loss`` recorded from inside the graph at every update); ``fit`` with a
CheckpointManager (a checkpoint per epoch). The variants alternate within each repeat so
machine load hits them alike; the table gives the median time per epoch and its ratio to
the hand-written loop. Absolute times move with the load of a shared machine: read the ratios.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import irflow as irf  # noqa: E402
from irflow import nn  # noqa: E402


def make_model() -> tuple[nn.Module, irf.optim.Optimizer]:
    nn.init.seed(0)
    model = nn.MLP([64, 128, 64, 10])
    opt = irf.optim.Adam(1e-3)
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, opt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1408, 64)).astype("float32")
    y = rng.integers(0, 10, 1408).astype("int64")
    batches = [(x[i:i + 64], y[i:i + 64]) for i in range(0, len(x), 64)]
    tmp = Path(tempfile.mkdtemp(prefix="fit_overhead_"))

    model, opt = make_model()
    loss_metric, acc = nn.metrics.Mean("loss"), nn.metrics.SparseCategoricalAccuracy()

    @irf.function
    def step(xb, yb):
        with irf.GradientTape() as tape:
            logits = model(xb, training=True)
            loss = nn.losses.softmax_cross_entropy(logits, yb)
        vs = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
        loss_metric.update_state(loss)
        acc.update_state(yb, logits)
        return loss

    def hand_loop() -> None:
        for _ in range(args.epochs):
            loss_metric.reset_state()
            acc.reset_state()
            for xb, yb in batches:
                step(xb, yb)
            float(loss_metric.result()), float(acc.result())

    fit_model, _ = make_model()
    sum_model, _ = make_model()
    writer = irf.summary.create_file_writer(tmp / "logs")
    ck_model, ck_opt = make_model()
    manager = irf.train.CheckpointManager(irf.train.Checkpoint(model=ck_model, optimizer=ck_opt), tmp / "ckpt",
                                          max_to_keep=1)
    variants = {
        "hand-written loop": hand_loop,
        "fit(verbose=0)": lambda: fit_model.fit(batches, epochs=args.epochs, verbose=0),
        "fit + summary writer": lambda: sum_model.fit(batches, epochs=args.epochs, writer=writer, verbose=0),
        "fit + checkpoint per epoch": lambda: ck_model.fit(batches, epochs=args.epochs, checkpoint_manager=manager,
                                                           verbose=0),
    }
    for fn in variants.values():  # trace once outside the timing
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeat):
        for name, fn in variants.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) / args.epochs)
    base = statistics.median(times["hand-written loop"])
    print(f"{'variant':28s} {'ms/epoch':>9s} {'ratio':>6s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:28s} {med * 1e3:9.1f} {med / base:6.2f}")
    writer.close()


if __name__ == "__main__":
    main()
