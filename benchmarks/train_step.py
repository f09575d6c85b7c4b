"""Training-step benchmark: the MLP 784-256-256-10 (batch 64, softmax cross-entropy, SGD)
written with irf.nn / irf.optim and traced with irf.function, on the NumPy executor and on
onnxruntime (CPU), against PyTorch eager + torch.optim.SGD, in one process, with ratios.

    python benchmarks/train_step.py [--threads 1] [--profile]

All three start from the same weights and take the same batches; the script first checks
that their losses agree for 5 steps. Runtimes are pinned to ``--threads`` and timed in
blocks that take turns, the minimum over rounds (as benchmarks/executors.py).
Also printed: minor page faults per step (``getrusage``), which machine load does not disturb.
``--profile`` prints the NumPy interpreter's slowest nodes of the traced step.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

_args_pre = argparse.ArgumentParser(add_help=False)
_args_pre.add_argument("--threads", type=int, default=1)
_threads = _args_pre.parse_known_args()[0].threads
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(_threads))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import irflow as irf  # noqa: E402
from irflow import nn  # noqa: E402

SIZES, BATCH, LR = [784, 256, 256, 10], 64, 0.01

from executors import measure_group  # noqa: E402  (one timing rule for the benchmarks: benchmarks/executors.py)


def irflow_step(executor: str, state: dict, ort_options=None):
    model = nn.MLP(SIZES, rng=0)
    model.load_state_dict(state)
    opt = irf.optim.SGD(LR)

    @irf.function(executor=executor, ort_options=ort_options)
    def step(x, y):
        with irf.GradientTape() as tape:
            loss = nn.losses.softmax_cross_entropy(model(x), y)
        vs = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
        return loss

    return step


def torch_step(torch, state: dict):
    layers = []
    for i, (a, b) in enumerate(zip(SIZES, SIZES[1:])):
        lin = torch.nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(state[f"layers.{i}.weight"].T))
            lin.bias.copy_(torch.tensor(state[f"layers.{i}.bias"]))
        layers += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype("float32")
    y = rng.integers(0, SIZES[-1], BATCH)
    state = nn.MLP(SIZES, rng=0).state_dict()

    # The pinned row uses --threads, as benchmarks/executors.py pins every runtime (two thread
    # pools fight on a shared 2-core machine).
    from irflow.executors.onnx import OrtOptions

    pinned = OrtOptions(intra_op_num_threads=args.threads)
    steps = {"numpy executor": irflow_step("numpy", state), "ort executor (CPU, default threads)": irflow_step("ort", state),
             f"ort executor (CPU, {args.threads} thread)": irflow_step("ort", state, pinned)}
    fns = {name: (lambda s=s: s(x, y)) for name, s in steps.items()}
    try:
        import torch

        torch.set_num_threads(args.threads)
        tstep = torch_step(torch, state)
        xt, yt = torch.tensor(x), torch.tensor(y)
        fns["pytorch eager + optim.SGD"] = lambda: tstep(xt, yt)
    except ImportError:
        torch = None

    # the same 5 steps on every runtime first: the losses must agree
    losses = {name: [float(np.asarray(fn().detach() if torch and name.startswith("pytorch") else fn())) for _ in range(5)]
              for name, fn in fns.items()}
    ref = losses["numpy executor"]
    for name, ls in losses.items():
        np.testing.assert_allclose(ls, ref, rtol=1e-4, err_msg=name)
    print(f"losses agree over 5 steps: {', '.join(f'{v:.4f}' for v in ref)}")

    times = measure_group(fns)
    base = times.get("pytorch eager + optim.SGD")
    print(f"MLP {'-'.join(map(str, SIZES))} train step, batch {BATCH}, SGD, {args.threads} thread(s)")
    print(f"{'runtime':32s} {'us/step':>9s} {'steps/s':>9s} {'x PyTorch':>10s}")
    for name, t in times.items():
        ratio = f"{t / base:10.2f}" if base else f"{'-':>10s}"
        print(f"{name:32s} {t * 1e6:9.0f} {1 / t:9.0f} {ratio}")

    # Minor page faults per step: unlike times, not disturbed by other jobs on the machine.
    # Fresh large temporaries that glibc hands back to the OS fault in again every step (PERF-NOTES).
    import resource

    print(f"{'runtime':32s} {'minor page faults/step':>24s}")
    for name, fn in fns.items():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(50):
            fn()
        print(f"{name:32s} {(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50:24.0f}")

    if args.profile:
        from irflow.executors.numpy import Interpreter

        cf = steps["numpy executor"].get_concrete_function(x, y)
        feeds = dict(zip(cf.arg_inputs, [x, y]))
        feeds.update({name: var.numpy() for name, var in cf.variable_inputs})
        interp = Interpreter(cf.graph, profile=True)
        for _ in range(20):
            interp.run(feeds)
        print(interp.profile_table())


if __name__ == "__main__":
    main()
