"""Model zoo forward benchmark: each tiny PyTorch model of tests/models/zoo_models.py, exported
by torch.onnx.export, run four ways in one process:

- irflow NumPy: ``irf.onnx.load`` then the NumPy interpreter;
- irflow ORT: the same imported graph on irflow's ``ort`` executor (``OrtRunner.run``, which
  re-exports irflow's IR: the ratio to the next column is what import + export costs);
- raw ORT: onnxruntime on torch's own file, same session options;
- torch: eager PyTorch (``torch.no_grad``).

    python benchmarks/zoo.py [--exporter legacy|dynamo] [--threads 2] [--models a,b]

Goal: irflow's ORT executor within 1.10x of raw ORT on every model. Thread pools pinned to
``--threads`` for every runtime; timings are the minimum over rounds of blocks that take turns
(``benchmarks/executors.py``'s ``measure_group``), since the machine is shared.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--threads", type=int, default=2)
_threads = _pre.parse_known_args()[0].threads
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(_threads))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

import irflow as irf  # noqa: E402
from benchmarks.executors import measure_group  # noqa: E402
from irflow.executors.numpy import Interpreter  # noqa: E402
from irflow.executors.onnx import OrtOptions, OrtRunner  # noqa: E402
from tests.models.zoo_models import BUILDERS, DYNAMIC_BATCH, build, export  # noqa: E402


def bench(name: str, exporter: str, options: OrtOptions, workdir: str, rounds: int = 9) -> dict:
    model, inputs = build(name)
    path = os.path.join(workdir, f"{name}_{exporter}.onnx")
    export(model, inputs, path, exporter, dynamic_batch=name in DYNAMIC_BATCH)
    g = irf.onnx.load(path)
    feeds = {n: x.numpy() for n, x in zip(g.input_names, inputs)}
    interp = Interpreter(g)
    runner = OrtRunner(g, device="cpu", options=options)
    sess = ort.InferenceSession(path, options.session_options(), providers=["CPUExecutionProvider"])
    raw_feeds = {i.name: feeds[n] for i, n in zip(sess.get_inputs(), g.input_names)}
    with torch.no_grad():
        want = model(*inputs).numpy()
    out = g.output_names[0]
    for got in (interp.run(feeds)[out], runner.run(feeds)[out], sess.run(None, raw_feeds)[0]):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)

    def torch_forward():
        with torch.no_grad():
            model(*inputs)

    t = measure_group({"numpy": lambda: interp.run(feeds), "irflow ort": lambda: runner.run(feeds),
                       "raw ort": lambda: sess.run(None, raw_feeds), "torch": torch_forward}, rounds=rounds)
    return {"model": name, **t, "nodes": len(g.nodes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--exporter", choices=["legacy", "dynamo"], default="legacy")
    ap.add_argument("--models", default=",".join(BUILDERS))
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    options = OrtOptions(intra_op_num_threads=args.threads)
    print(f"exporter {args.exporter}; threads {args.threads}; load average {os.getloadavg()[0]:.1f}; "
          f"times in microseconds (minimum over rounds)")
    print("| model | IR nodes | irflow NumPy | irflow ORT | raw ORT (torch's file) | torch | irflow ORT / raw ORT (goal <= 1.10) | NumPy / torch |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models.split(","):
            r = bench(name, args.exporter, options, workdir, args.rounds)
            us = {k: r[k] * 1e6 for k in ("numpy", "irflow ort", "raw ort", "torch")}
            print(f"| {name} | {r['nodes']} | {us['numpy']:.0f} | {us['irflow ort']:.0f} | {us['raw ort']:.0f} | "
                  f"{us['torch']:.0f} | {us['irflow ort'] / us['raw ort']:.2f} | {us['numpy'] / us['torch']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
