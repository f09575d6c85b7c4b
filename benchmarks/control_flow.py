"""Control flow cost: an Elman RNN (batch 16, input 32, hidden 64) over T = 50 steps.

Measures, in ONE process, milliseconds per call of:
- forward: hand-written NumPy loop (baseline), irflow eager irf.scan (a Python loop of eager
  ops), irf.function on the NumPy interpreter (one scan node), the exported ONNX model on
  onnxruntime (one Scan node), PyTorch eager loop (if importable);
- forward + gradient wrt the weights: irflow gradient graph (reverse scan) on NumPy and on
  onnxruntime, PyTorch autograd over its loop (if importable).
Prints ratios to the NumPy baseline (forward) and to PyTorch (gradient).

Run: python benchmarks/control_flow.py
"""
from __future__ import annotations

import os
import sys
import timeit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

import irflow as irf  # noqa: E402
from irflow.autodiff import vjp  # noqa: E402
from irflow.executors.numpy import Interpreter  # noqa: E402
from irflow.executors.onnx.export import to_model  # noqa: E402

T, B, I, H = 50, 16, 32, 64


def ms(fn, number: int = 5, repeat: int = 5) -> float:
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e3


def rnn(xs, h0, wx, wh, b):
    h, hs = irf.scan(lambda h, x: (irf.tanh(x @ wx + h @ wh + b),) * 2, h0, xs)
    return irf.reduce_sum(hs * hs)


def main() -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    args = [rng.standard_normal((T, B, I)).astype("float32"), np.zeros((B, H), "float32"),
            (0.1 * rng.standard_normal((I, H))).astype("float32"), (0.1 * rng.standard_normal((H, H))).astype("float32"),
            np.zeros(H, "float32")]

    def numpy_loop():
        xs, h, wx, wh, b = args
        tot = 0.0
        for t in range(T):
            h = np.tanh(xs[t] @ wx + h @ wh + b)
            tot += float(np.sum(h * h))
        return tot

    specs = [irf.TensorSpec(("T", B, I), "float32"), irf.TensorSpec((B, H), "float32"), irf.TensorSpec((I, H), "float32"),
             irf.TensorSpec((H, H), "float32"), irf.TensorSpec((H,), "float32")]
    g = irf.function(rnn).get_graph(*specs)
    feeds = dict(zip(g.input_names, args))
    interp = Interpreter(g)
    sess = ort.InferenceSession(to_model(g).SerializeToString(), providers=["CPUExecutionProvider"])
    eager_args = [irf.tensor(a) for a in args]
    rows = {
        "numpy loop (baseline)": ms(numpy_loop),
        "irflow eager irf.scan": ms(lambda: rnn(*eager_args)),
        "irflow graph on NumPy": ms(lambda: interp.run(feeds)),
        "irflow export on ORT (Scan)": ms(lambda: sess.run(None, feeds)),
    }
    gg = vjp(g, wrt=["wx", "wh", "b"], seed="ones")
    ginterp = Interpreter(gg)
    gsess = ort.InferenceSession(to_model(gg).SerializeToString(), providers=["CPUExecutionProvider"])
    grad_rows = {
        "irflow grad graph on NumPy": ms(lambda: ginterp.run(feeds)),
        "irflow grad graph on ORT": ms(lambda: gsess.run(None, feeds)),
    }
    try:
        import torch

        targs = [torch.from_numpy(a) for a in args]
        tw = [t.clone().requires_grad_(True) for t in targs[2:]]

        def torch_fwd(params):
            xs, h = targs[0], targs[1]
            wx, wh, b = params
            tot = 0.0
            for t in range(T):
                h = torch.tanh(xs[t] @ wx + h @ wh + b)
                tot = tot + (h * h).sum()
            return tot

        with torch.no_grad():
            rows["torch eager loop"] = ms(lambda: torch_fwd(targs[2:]))

        def torch_grad():
            return torch.autograd.grad(torch_fwd(tw), tw)

        grad_rows["torch autograd loop"] = ms(torch_grad)
    except ImportError:
        pass
    base = rows["numpy loop (baseline)"]
    print(f"Elman RNN T={T} B={B} I={I} H={H}, float32, ms per call (min of 5x5)")
    for k, v in rows.items():
        print(f"  {k:<32} {v:8.3f} ms   x{v / base:5.2f} vs NumPy loop")
    ref = grad_rows.get("torch autograd loop")
    for k, v in grad_rows.items():
        print(f"  {k:<32} {v:8.3f} ms" + (f"   x{v / ref:5.2f} vs torch autograd" if ref else ""))


if __name__ == "__main__":
    main()
