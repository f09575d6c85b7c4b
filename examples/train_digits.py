"""Train an MLP or a small CNN on scikit-learn's bundled digits (8x8 images, 10 classes; no
download), with a traced train step on the NumPy executor or onnxruntime, then export the
trained model to ONNX and check onnxruntime predicts the same classes as irflow.

    python examples/train_digits.py --model mlp --executor numpy --epochs 10
    python examples/train_digits.py --model cnn --executor ort --epochs 5

Needs scikit-learn (the ``examples`` extra).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
import irflow as irf  # noqa: E402
from irflow import nn  # noqa: E402


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits as float32 in [0, 1], shuffled with ``seed``, split 80/20."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = (d.data / 16.0).astype("float32"), d.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(x))
    n = int(0.8 * len(x))
    return x[order[:n]], y[order[:n]], x[order[n:]], y[order[n:]]


def build(kind: str, seed: int) -> tuple[nn.Module, tuple]:
    """The model and the shape of one example it takes."""
    nn.init.seed(seed)
    if kind == "mlp":
        return nn.MLP([64, 128, 64, 10]), (64,)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm(16), nn.ReLU(), nn.MaxPool2d(2),  # 16 x 4 x 4
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),                   # 32 x 2 x 2
        nn.Flatten(), nn.Dropout(0.2, seed=seed), nn.Linear(128, 10),
    )
    return model, (1, 8, 8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    p.add_argument("--executor", choices=["numpy", "ort"], default="numpy")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="where to write the ONNX model (default: a temp dir)")
    args = p.parse_args(argv)
    console = Console()

    xtr, ytr, xte, yte = load_data(args.seed)
    model, example = build(args.model, args.seed)
    xtr, xte = xtr.reshape((-1, *example)), xte.reshape((-1, *example))
    opt = irf.optim.Adam(args.lr)
    train_loss, train_acc = nn.metrics.Mean("loss"), nn.metrics.Accuracy()

    @irf.function(executor=args.executor)
    def train_step(x, y):
        with irf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = nn.losses.softmax_cross_entropy(logits, y)
        vs = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
        train_loss.update_state(loss)      # metrics are Variables: updated inside the graph too
        train_acc.update_state(y, logits)
        return loss

    @irf.function(executor=args.executor)
    def predict(x):
        return model(x, training=False)

    rng = np.random.default_rng(args.seed)
    steps = len(xtr) // args.batch_size  # full batches only, so the step is traced once
    console.print(f"[bold]{args.model}[/] on digits: {len(xtr)} train / {len(xte)} test, "
                  f"{sum(v.numpy().size for v in model.trainable_variables)} parameters, executor {args.executor}")
    start = time.perf_counter()
    with Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), console=console) as progress:
        for epoch in range(1, args.epochs + 1):
            train_loss.reset_state()
            train_acc.reset_state()
            task = progress.add_task("train", total=steps, epoch=epoch, loss=float("nan"))
            order = rng.permutation(len(xtr))
            for i in range(steps):
                idx = order[i * args.batch_size:(i + 1) * args.batch_size]
                train_step(xtr[idx], ytr[idx])
                progress.update(task, advance=1, loss=float(train_loss.result()))
            test_acc = nn.metrics.Accuracy()
            test_acc.update_state(yte, predict(xte))
            progress.console.print(f"epoch {epoch:3d}  loss {float(train_loss.result()):.4f}  "
                                   f"train acc {float(train_acc.result()):.4f}  test acc {float(test_acc.result()):.4f}")
    console.print(f"trained in {time.perf_counter() - start:.1f} s ({train_step.trace_count} trace)")

    model.eval()
    out = args.out or Path(tempfile.mkdtemp()) / f"digits_{args.model}.onnx"
    onnx_model = irf.onnx.export(model, out, irf.TensorSpec(("batch", *example), "float32"))
    got = irf.onnx.run(out, {onnx_model.graph.input[0].name: xte}, device="cpu")
    onnx_classes = next(iter(got.values())).argmax(1)
    irf_classes = np.asarray(model(xte)).argmax(1)
    same = int((onnx_classes == irf_classes).sum())
    console.print(f"exported {out}: onnxruntime agrees with irflow on {same}/{len(xte)} test predictions")
    return 0 if same == len(xte) else 1


if __name__ == "__main__":
    raise SystemExit(main())
