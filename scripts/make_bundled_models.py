"""Build the models bundled in irflow/models/ (run from the repository root).

    python scripts/make_bundled_models.py

mlp.irflow.json: x (batch, 16) -> Linear 32 -> ReLU -> Linear 32 -> ReLU -> Linear 4, weights
drawn from a seeded generator (He init), so the file is reproducible byte for byte.
mlp.onnx: the same graph exported to standard ONNX.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import numpy as np
import onnx

import irflow as irf
from irflow.executors.onnx import to_model

MODELS = Path(__file__).resolve().parent.parent / "irflow" / "models"


def make_mlp(sizes=(16, 32, 32, 4), seed: int = 0) -> irf.Graph:
    """An MLP graph built by hand with GraphBuilder."""
    rng = np.random.default_rng(seed)
    b = irf.GraphBuilder("mlp")
    h = b.input("x", "float32", ("batch", sizes[0]))
    with b:
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = b.constant((rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32), name=f"fc{i}.weight")
            bias = b.constant((0.1 * rng.standard_normal(n_out)).astype(np.float32), name=f"fc{i}.bias")
            h = irf.matmul(h, w) + bias
            if i < len(sizes) - 2:
                h = irf.relu(h)
    b.output(h, names=["logits"])
    return b.build(verify=True)


def main() -> None:
    MODELS.mkdir(exist_ok=True)
    g = make_mlp()
    g.save(MODELS / "mlp.irflow.json")
    model = to_model(g)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(MODELS / "mlp.onnx"))
    for p in sorted(MODELS.glob("mlp.*")):
        print(f"wrote {p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
