"""Train an MLP or a small CNN on scikit-learn's bundled digits (8x8 images, 10 classes; no
download) with the whole training workflow: an ``irf.data`` input pipeline, ``model.fit`` (a
traced train step on the NumPy executor or onnxruntime, a progress bar on a terminal),
TensorBoard summaries and checkpoints (``--resume`` continues the last run). Then export the
trained model to ONNX and check onnxruntime predicts the same classes as irflow.

    python examples/train_digits.py --model mlp --executor numpy --epochs 10
    python examples/train_digits.py --model cnn --executor ort --epochs 5 --logdir logs/cnn
    tensorboard --logdir logs                       # the loss and accuracy curves

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


def run(argv: list[str] | None = None) -> dict:
    """Train, log, checkpoint and export; returns the numbers the run ends with."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    p.add_argument("--executor", choices=["numpy", "ort"], default="numpy")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="where to write the ONNX model (default: a temp dir)")
    p.add_argument("--logdir", type=Path, default=None, help="TensorBoard log directory (default: a temp dir)")
    p.add_argument("--ckpt-dir", type=Path, default=None, help="checkpoint directory (default: a temp dir)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --ckpt-dir")
    args = p.parse_args(argv)
    console = Console()
    scratch = Path(tempfile.mkdtemp(prefix="train_digits_"))

    xtr, ytr, xte, yte = load_data(args.seed)
    model, example = build(args.model, args.seed)
    xtr, xte = xtr.reshape((-1, *example)), xte.reshape((-1, *example))
    # Full batches only (drop_remainder), so the train step is traced once; the order of each
    # epoch is fixed by (seed, epoch), so a resumed run sees the batches it would have seen.
    train_ds = irf.data.Dataset.from_tensor_slices((xtr, ytr)).shuffle(len(xtr), seed=args.seed) \
        .batch(args.batch_size, drop_remainder=True).prefetch(2)
    test_ds = irf.data.Dataset.from_tensor_slices((xte, yte)).batch(len(xte))

    opt = irf.optim.Adam(args.lr)
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"], executor=args.executor)
    epoch = irf.Variable(np.int64(0), name="epoch", trainable=False)
    manager = irf.train.CheckpointManager(irf.train.Checkpoint(model=model, optimizer=opt, epoch=epoch),
                                          args.ckpt_dir or scratch / "ckpt", max_to_keep=2)
    if args.resume and manager.restore_or_initialize():
        console.print(f"resumed from {manager.latest_checkpoint} after epoch {int(epoch)}")
    writer = irf.summary.create_file_writer(args.logdir or scratch / "logs")
    with writer.as_default():
        irf.summary.image("train_examples", xtr[:4].reshape(4, 8, 8, 1), step=0)
        irf.summary.text("config", " ".join(argv or sys.argv[1:]) or "defaults", step=0)

    console.print(f"[bold]{args.model}[/] on digits: {len(xtr)} train / {len(xte)} test, "
                  f"{sum(v.numpy().size for v in model.trainable_variables)} parameters, executor {args.executor}")
    start = time.perf_counter()
    history = model.fit(train_ds, epochs=args.epochs, validation_data=test_ds, writer=writer,
                        checkpoint_manager=manager, verbose=1 if sys.stdout.isatty() else 2)
    seconds = time.perf_counter() - start
    with writer.as_default():
        for path, var in model.named_variables():
            irf.summary.histogram(f"weights/{path}", var, step=int(epoch))
    writer.close()
    test = model.evaluate(test_ds)
    console.print(f"trained in {seconds:.1f} s ({model._module_trainer.train_step.trace_count} trace); "
                  f"test accuracy {test['accuracy']:.4f}; logs in {writer.logdir}, checkpoints in {manager.directory}")

    model.eval()
    out = args.out or scratch / f"digits_{args.model}.onnx"
    onnx_model = irf.onnx.export(model, out, irf.TensorSpec(("batch", *example), "float32"))
    got = irf.onnx.run(out, {onnx_model.graph.input[0].name: xte}, device="cpu")
    onnx_classes = next(iter(got.values())).argmax(1)
    irf_classes = np.asarray(model(xte)).argmax(1)
    same = int((onnx_classes == irf_classes).sum())
    console.print(f"exported {out}: onnxruntime agrees with irflow on {same}/{len(xte)} test predictions")
    return {"test_accuracy": test["accuracy"], "history": history.history, "onnx_agrees": same == len(xte),
            "logdir": writer.logdir, "checkpoints": manager.checkpoints}


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 when every ONNX prediction equals irflow's."""
    return 0 if run(argv)["onnx_agrees"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
