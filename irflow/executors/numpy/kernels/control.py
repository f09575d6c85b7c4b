"""NumPy kernels of the control-flow ops: nested graphs run on the reference Interpreter.

Each nested graph gets one cached Interpreter (``special.interpreter_for``); a loop step is one
``run`` of it on the step's arrays, without feed checks (the node's type rule checked them).
"""
from __future__ import annotations

import numpy as np

from irflow.errors import ExecutorError
from irflow.executors.numpy.kernels import kernel
from irflow.executors.numpy.kernels.special import interpreter_for


def _run(graph, arrays) -> list:
    outs = interpreter_for(graph).run(dict(zip(graph.input_names, arrays)), check=False)
    return [outs[n] for n in graph.output_names]


def _one_or_tuple(xs: list):
    return xs[0] if len(xs) == 1 else tuple(xs)


def _truth(p, what: str) -> bool:
    p = np.asarray(p)
    if p.size != 1:
        raise ExecutorError(f"{what}: the predicate must have one element, got shape {p.shape}")
    return bool(p.reshape(()))


@kernel("cond")
def cond(pred, *operands, then_branch, else_branch):
    g = then_branch if _truth(pred, "cond") else else_branch
    return _one_or_tuple(_run(g, operands))


@kernel("scan")
def scan(*inputs, body, num_consts, num_carry, length, reverse, dynamic_length=False):
    if dynamic_length:  # the step count is the last input (a run-time scalar); nothing is scanned
        length = max(int(np.asarray(inputs[-1]).reshape(())), 0)
        inputs = inputs[:-1]
    consts = list(inputs[:num_consts])
    carry = list(inputs[num_consts:num_consts + num_carry])
    xs = [np.asarray(x) for x in inputs[num_consts + num_carry:]]
    n = length if length is not None else xs[0].shape[0]
    for x in xs:
        if x.shape[0] != n:
            raise ExecutorError(f"scan: scanned inputs have lengths {[a.shape[0] for a in xs]}, expected {n}")
    interp = interpreter_for(body)
    names, out_names = body.input_names, body.output_names
    ys: list[list] = [[] for _ in out_names[num_carry:]]
    steps = range(n - 1, -1, -1) if reverse else range(n)
    for t in steps:
        outs = interp.run(dict(zip(names, consts + carry + [x[t] for x in xs])), check=False)
        vals = [outs[nm] for nm in out_names]
        carry = vals[:num_carry]
        for acc, y in zip(ys, vals[num_carry:]):
            acc.append(y)
    stacked = []
    for j, acc in enumerate(ys):
        if reverse:
            acc.reverse()  # ys[t] is the output of step t
        if acc:
            _check_same_shapes(acc, j, body)
            stacked.append(np.stack(acc))
        else:
            t = body.outputs[num_carry + j].type
            if not t.is_static:
                raise ExecutorError(f"scan of length 0: output {j} of body {body.name!r} has a non-static shape {t.shape}")
            stacked.append(np.zeros((0,) + tuple(t.shape), dtype=t.dtype.numpy))
    return _one_or_tuple(carry + stacked)


def _check_same_shapes(acc: list, j: int, body) -> None:
    """The per-step outputs are stacked into one tensor, so every step must give the same shape.
    A vmap (run as a scan) of an op whose output shape depends on the values (nonzero, unique,
    compress, non_max_suppression) is where they differ: name the output and the two steps."""
    first = np.shape(acc[0])
    for t, y in enumerate(acc):
        if np.shape(y) != first:
            raise ExecutorError(
                f"scan: output {j} of body {body.name!r} has shape {first} at step 0 but {np.shape(y)} "
                f"at step {t}; the steps' outputs are stacked, so their shapes must agree (under vmap: "
                f"an op whose output shape depends on the values, e.g. nonzero or unique, gives a different "
                f"shape per example; loop in Python or pad the results)")


@kernel("while_loop")
def while_loop(*inputs, cond_graph, body_graph, num_consts, max_iterations):
    consts = list(inputs[:num_consts])
    carry = list(inputs[num_consts:])
    i = 0
    while (max_iterations is None or i < max_iterations) and _truth(_run(cond_graph, consts + carry)[0], "while_loop"):
        carry = _run(body_graph, consts + carry)
        i += 1
    return _one_or_tuple(carry)
