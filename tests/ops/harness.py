"""One check for every op, used by every op-family test file.

``check_op`` runs an op on concrete inputs and holds it to independent references:
1. eager result == ``reference`` (a NumPy expression written by hand in the test);
2. the type rule's output dtype and shape == the dtype and shape actually produced;
3. the NumPy interpreter on a graph of the op == the eager result;
4. onnxruntime on the exported graph == the eager result (tolerance ``ort_rtol/ort_atol``),
   and the export passes ``onnx.checker`` (full check);
5. for differentiable ops with float inputs: the VJP against central finite differences in
   float64 along a random direction, as ``jax.test_util.check_grads`` does.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import onnx

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.executors.onnx import OrtRunner, shape_inference_mismatches, to_model
from irflow.ops.registry import get_op


def build_graph(op: str, inputs: Sequence[np.ndarray | None], attrs: dict, symbolic_batch: bool = False) -> irf.Graph:
    """A graph with one node of ``op``; every array input becomes a graph input ``in<i>``."""
    b = irf.GraphBuilder(f"{op}_graph")
    syms = []
    for i, a in enumerate(inputs):
        if a is None:
            syms.append(None)
        else:
            syms.append(b.input(f"in{i}", irf.ir.as_dtype(a.dtype), a.shape))
    outs = b.add_node(op, syms, dict(attrs))
    outs = outs if isinstance(outs, tuple) else (outs,)
    b.output(*outs)
    return b.build(verify=True)


def _feeds(inputs):
    return {f"in{i}": a for i, a in enumerate(inputs) if a is not None}


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def check_op(
    op: str,
    inputs: Sequence[np.ndarray | None],
    reference: Callable[..., Any] | None,
    attrs: dict | None = None,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    ort: bool = True,
    ort_rtol: float = 1e-5,
    ort_atol: float = 1e-5,
    grad: bool = True,
    grad_rtol: float = 1e-5,
    grad_atol: float = 1e-6,
    grad_inputs: Sequence[int] | None = None,
    fd_eps: float = 1e-6,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, ...]:
    """Check one op on ``inputs`` against ``reference(*inputs)``; return the eager outputs."""
    attrs = dict(attrs or {})
    rng = rng or np.random.default_rng(0)
    # 1. eager vs the hand-written reference
    eager = _as_tuple(irf.bind(op, *[None if a is None else irf.tensor(a) for a in inputs], **attrs))
    eager = tuple(t.numpy() for t in eager)
    if reference is not None:
        want = _as_tuple(reference(*inputs))
        assert len(want) == len(eager), f"{op}: {len(eager)} outputs, reference gives {len(want)}"
        for got, exp in zip(eager, want):
            exp = np.asarray(exp)
            assert got.shape == exp.shape, f"{op}: eager shape {got.shape} != reference {exp.shape}"
            assert got.dtype == exp.dtype, f"{op}: eager dtype {got.dtype} != reference {exp.dtype}"
            np.testing.assert_allclose(got.astype(np.float64) if got.dtype.kind != "b" else got,
                                       exp.astype(np.float64) if exp.dtype.kind != "b" else exp,
                                       rtol=rtol, atol=atol, err_msg=f"{op}: eager vs reference")
    # 2. the type rule agrees with what the kernel produced
    g = build_graph(op, inputs, attrs)
    for v, got in zip(g.outputs, eager):
        assert v.type.dtype.numpy == got.dtype, f"{op}: type rule says {v.type.dtype}, kernel gave {got.dtype}"
        # None: a dim the type rule cannot know (it depends on a shape argument read at run time)
        assert len(v.type.shape) == got.ndim and all(t is None or t == d for t, d in zip(v.type.shape, got.shape)), (
            f"{op}: type rule says {v.type.shape}, kernel gave {got.shape}")
    # 3. the interpreter agrees with eager
    outs = Interpreter(g).run(_feeds(inputs))
    for name, got in zip(g.output_names, eager):
        np.testing.assert_array_equal(outs[name], got, err_msg=f"{op}: interpreter vs eager")
    # 4. onnxruntime agrees
    if ort:
        # The export carries irflow's types as value_info, so the full check (strict ONNX shape
        # inference) already fails on a contradiction; the explicit comparison, made on an
        # export without them, names the value, the node and both types.
        onnx.checker.check_model(to_model(g), full_check=True)
        mismatches = shape_inference_mismatches(g)
        assert not mismatches, f"{op}: ONNX shape inference disagrees with the type rule: " + "; ".join(mismatches)
        ort_outs = OrtRunner(g).run(_feeds(inputs))
        for name, got in zip(g.output_names, eager):
            o = ort_outs[name]
            assert o.dtype == got.dtype and o.shape == got.shape, f"{op}: ORT gives {o.dtype}{o.shape}, NumPy {got.dtype}{got.shape}"
            if got.dtype.kind in "fc":
                np.testing.assert_allclose(o, got, rtol=ort_rtol, atol=ort_atol, err_msg=f"{op}: ORT vs NumPy")
            else:
                np.testing.assert_array_equal(o, got, err_msg=f"{op}: ORT vs NumPy")
    # 5. gradients vs finite differences in float64
    opdef = get_op(op)
    if grad and opdef.differentiable:
        check_grad(op, inputs, attrs, grad_inputs=grad_inputs, rtol=grad_rtol, atol=grad_atol, eps=fd_eps, rng=rng)
    return eager


def check_grad(op, inputs, attrs, *, grad_inputs=None, rtol=1e-5, atol=1e-6, eps=1e-6, rng=None):
    """VJP of ``op`` vs central differences of <ct, f(x + eps v)> in float64, random v and ct."""
    rng = rng or np.random.default_rng(0)
    x64 = [None if a is None else (a.astype(np.float64) if a.dtype.kind == "f" else a) for a in inputs]
    which = [i for i, a in enumerate(x64) if a is not None and a.dtype == np.float64]
    if grad_inputs is not None:
        which = [i for i in which if i in grad_inputs]
    if not which:
        return
    g = build_graph(op, x64, attrs)
    float_outs = [v.name for v in g.outputs if v.type.dtype.is_float]
    gg = vjp(g, wrt=[f"in{i}" for i in which], outputs=float_outs).verify()
    base = Interpreter(g).run(_feeds(x64))
    cts = {o: rng.standard_normal(base[o].shape) for o in float_outs}
    feeds = _feeds(x64)
    feeds.update({f"ct_{o}": cts[o] for o in float_outs})
    grads = Interpreter(gg).run(feeds)
    interp = Interpreter(g)
    for i in which:
        v = rng.standard_normal(x64[i].shape)
        def f(t):
            xs = list(x64); xs[i] = x64[i] + t * v
            outs = interp.run(_feeds(xs))
            return sum(float(np.sum(cts[o] * outs[o])) for o in float_outs)
        fd = (f(eps) - f(-eps)) / (2 * eps)
        analytic = float(np.sum(grads[f"grad_in{i}"] * v))
        assert abs(fd - analytic) <= atol + rtol * max(abs(fd), abs(analytic)), (
            f"{op}: gradient wrt input {i}: VJP gives {analytic}, finite differences {fd}"
        )
