"""What a gradient costs: backward/forward node counts and time ratios, next to PyTorch.

For an MLP 784-256-256-10 at batch 64 (softmax cross-entropy) and, when the nn ops exist, a
small CNN (conv 3->16, relu, maxpool, conv 16->32, relu, global average pool, linear) at batch 8:
- node ratio: nodes the vjp pass adds (backward) / forward nodes;
- time ratio: time(forward + backward graph) / time(forward graph) on the NumPy interpreter;
- PyTorch eager's time(forward + backward) / time(forward) measured in the same run.
Also the eager tape overhead per op (10x10 add with and without a recording tape).

Run: python benchmarks/grad_cost.py   (medians of repeated runs; goals: both ratios <= 3)
NumPy's BLAS and PyTorch both run single-threaded here (OPENBLAS_NUM_THREADS=1 unless set,
torch.set_num_threads(1)): on a shared 2-core machine that keeps the ratios stable.
"""
from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import irflow as irf  # noqa: E402
from irflow.autodiff import vjp  # noqa: E402
from irflow.executors.numpy import Interpreter  # noqa: E402


def median_time(fn, repeat: int = 30, number: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return float(np.median(times))


def mlp_graph(batch=64, sizes=(784, 256, 256, 10)):
    b = irf.GraphBuilder("mlp")
    x = b.input("x", "float32", (batch, sizes[0]))
    y = b.input("y", "float32", (batch, sizes[-1]))  # one-hot labels
    params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        params.append(b.input(f"w{i}", "float32", (n_in, n_out)))
        params.append(b.input(f"b{i}", "float32", (n_out,)))
    with b:
        h = x
        for i in range(len(sizes) - 1):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < len(sizes) - 2:
                h = irf.relu(h)
        loss = irf.reduce_sum(-(y * irf.log_softmax(h, axis=-1))) * (1.0 / batch)
        b.output(loss)
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((batch, sizes[0])).astype("float32"),
             "y": np.eye(sizes[-1], dtype="float32")[rng.integers(0, sizes[-1], batch)]}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        feeds[f"w{i}"] = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype("float32")
        feeds[f"b{i}"] = np.zeros(n_out, "float32")
    wrt = [p.name for p in params]
    return b.build(verify=True), feeds, wrt


def cnn_graph(batch=8):
    b = irf.GraphBuilder("cnn")
    x = b.input("x", "float32", (batch, 3, 32, 32))
    y = b.input("y", "float32", (batch, 10))
    k1 = b.input("k1", "float32", (16, 3, 3, 3))
    k2 = b.input("k2", "float32", (32, 16, 3, 3))
    w = b.input("w", "float32", (32, 10))
    with b:
        h = irf.relu(irf.conv2d(x, k1, padding=1))
        h = irf.max_pool2d(h, 2)
        h = irf.relu(irf.conv2d(h, k2, padding=1))
        h = irf.reduce_mean(h, axis=(2, 3))
        logits = h @ w
        loss = irf.reduce_sum(-(y * irf.log_softmax(logits, axis=-1))) * (1.0 / batch)
        b.output(loss)
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((batch, 3, 32, 32)).astype("float32"),
             "y": np.eye(10, dtype="float32")[rng.integers(0, 10, batch)],
             "k1": (rng.standard_normal((16, 3, 3, 3)) * 0.2).astype("float32"),
             "k2": (rng.standard_normal((32, 16, 3, 3)) * 0.1).astype("float32"),
             "w": (rng.standard_normal((32, 10)) * 0.2).astype("float32")}
    return b.build(verify=True), feeds, ["k1", "k2", "w"]


def irflow_ratios(graph, feeds, wrt):
    gg = vjp(graph, wrt=wrt, seed="ones")
    n_fwd = len(graph.nodes)
    n_bwd = len(gg.nodes) - n_fwd
    fwd, both = Interpreter(graph), Interpreter(gg)
    t_f = median_time(lambda: fwd.run(feeds))
    t_fb = median_time(lambda: both.run(feeds))
    return n_fwd, n_bwd, t_f, t_fb


def torch_mlp(feeds):
    import torch

    t = {k: torch.tensor(v) for k, v in feeds.items()}
    ps = [t[k].clone().requires_grad_(True) for k in ("w0", "b0", "w1", "b1", "w2", "b2")]
    labels = t["y"].argmax(1)

    def fwd():
        h = torch.relu(t["x"] @ ps[0] + ps[1])
        h = torch.relu(h @ ps[2] + ps[3])
        return torch.nn.functional.cross_entropy(h @ ps[4] + ps[5], labels)

    def fwd_bwd():
        for p in ps:
            p.grad = None
        fwd().backward()

    return median_time(fwd), median_time(fwd_bwd)


def torch_cnn(feeds):
    import torch

    t = {k: torch.tensor(v) for k, v in feeds.items()}
    ps = [t[k].clone().requires_grad_(True) for k in ("k1", "k2", "w")]
    labels = t["y"].argmax(1)
    F = torch.nn.functional

    def fwd():
        h = F.max_pool2d(torch.relu(F.conv2d(t["x"], ps[0], padding=1)), 2)
        h = torch.relu(F.conv2d(h, ps[1], padding=1)).mean(dim=(2, 3))
        return F.cross_entropy(h @ ps[2], labels)

    def fwd_bwd():
        for p in ps:
            p.grad = None
        fwd().backward()

    return median_time(fwd, repeat=15), median_time(fwd_bwd, repeat=15)


def tape_overhead(ops_per_tape: int = 100):
    """Per-op time of a 10x10 float32 add, plain and under a recording tape (a tape per 100 ops,
    as a forward pass would be), and PyTorch's with and without requires_grad."""
    a = irf.tensor(np.ones((10, 10), "float32"))
    b = irf.tensor(np.ones((10, 10), "float32"))

    def plain():
        for _ in range(ops_per_tape):
            a + b

    def recorded():
        with irf.GradientTape() as tape:
            tape.watch(a)
            for _ in range(ops_per_tape):
                a + b

    out = [median_time(plain, repeat=50, number=3) / ops_per_tape,
           median_time(recorded, repeat=50, number=3) / ops_per_tape]
    try:
        import torch

        ta = torch.ones(10, 10)
        tb = torch.ones(10, 10)
        tg = torch.ones(10, 10, requires_grad=True)

        def t_plain():
            for _ in range(ops_per_tape):
                ta + tb

        def t_grad():
            for _ in range(ops_per_tape):
                tg + tb

        out += [median_time(t_plain, repeat=50, number=3) / ops_per_tape,
                median_time(t_grad, repeat=50, number=3) / ops_per_tape]
    except ImportError:
        out += [float("nan"), float("nan")]
    return out


def eager_train_step():
    """An eager MLP step with a tape (16-32-32-4, batch 8): forward alone vs forward + gradient,
    for irflow and PyTorch: the per-op overheads dominate at this size."""
    rng = np.random.default_rng(0)
    x = irf.tensor(rng.standard_normal((8, 16)).astype("float32"))
    shapes = [(16, 32), (32, 32), (32, 4)]
    ws = [irf.Variable((rng.standard_normal(s) / np.sqrt(s[0])).astype("float32")) for s in shapes]
    bs = [irf.Variable(np.zeros(s[1], "float32")) for s in shapes]

    def fwd():
        h = x
        for i, (w, b) in enumerate(zip(ws, bs)):
            h = h @ w + b
            if i < 2:
                h = irf.relu(h)
        return irf.reduce_mean(h * h)

    def step():
        with irf.GradientTape() as tape:
            loss = fwd()
        return tape.gradient(loss, ws + bs)

    res = [median_time(fwd), median_time(step)]
    try:
        import torch

        tx = torch.tensor(x.numpy())
        tws = [torch.tensor(w.numpy(), requires_grad=True) for w in ws]
        tbs = [torch.tensor(b.numpy(), requires_grad=True) for b in bs]

        def tfwd():
            h = tx
            for i, (w, b) in enumerate(zip(tws, tbs)):
                h = h @ w + b
                if i < 2:
                    h = torch.relu(h)
            return (h * h).mean()

        def tstep():
            return torch.autograd.grad(tfwd(), tws + tbs)

        res += [median_time(tfwd), median_time(tstep)]
    except ImportError:
        res += [float("nan"), float("nan")]
    return res


def main() -> None:
    print(f"numpy {np.__version__}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; load average {os.getloadavg()[0]:.1f}")
    rows = []
    g, feeds, wrt = mlp_graph()
    rows.append(("MLP 784-256-256-10, batch 64", *irflow_ratios(g, feeds, wrt), feeds, torch_mlp))
    if all(hasattr(irf, op) for op in ("conv2d", "max_pool2d")):
        g, feeds, wrt = cnn_graph()
        rows.append(("small CNN, batch 8, 3x32x32", *irflow_ratios(g, feeds, wrt), feeds, torch_cnn))
    else:
        print("(conv2d / max_pool2d not available: CNN skipped)")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    print(f"{'model':<30} {'fwd nodes':>9} {'bwd nodes':>9} {'node ratio':>10} {'fwd us':>9} "
          f"{'fwd+bwd us':>10} {'time ratio':>10} {'torch ratio':>11}")
    for name, n_f, n_b, t_f, t_fb, feeds, torch_fn in rows:
        tr = ""
        if torch is not None:
            tf, tfb = torch_fn(feeds)
            tr = f"{tfb / tf:.2f}"
        print(f"{name:<30} {n_f:>9} {n_b:>9} {n_b / n_f:>10.2f} {t_f * 1e6:>9.0f} {t_fb * 1e6:>10.0f} "
              f"{t_fb / t_f:>10.2f} {tr:>11}")
    t_plain, t_rec, t_torch, t_torch_grad = tape_overhead()
    print(f"eager 10x10 add: {t_plain * 1e6:.2f} us plain, {t_rec * 1e6:.2f} us with a recording tape "
          f"(+{(t_rec - t_plain) * 1e6:.2f} us per op); PyTorch {t_torch * 1e6:.2f} us, "
          f"{t_torch_grad * 1e6:.2f} us with requires_grad")
    f, fs, tf, tfs = eager_train_step()
    print(f"eager tape step, MLP 16-32-32-4 batch 8: irflow fwd {f * 1e6:.0f} us, fwd+gradient {fs * 1e6:.0f} us "
          f"(x{fs / f:.1f}); PyTorch fwd {tf * 1e6:.0f} us, fwd+grad {tfs * 1e6:.0f} us (x{tfs / tf:.1f})")


if __name__ == "__main__":
    main()
