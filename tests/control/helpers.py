"""Shared helpers of the control-flow tests: onnxruntime runs and float64 finite differences."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from irflow.executors.numpy import Interpreter
from irflow.executors.onnx.export import to_model


def ort_session(graph):
    """An onnxruntime session of ``graph``'s export (checked by the full ONNX checker first)."""
    model = to_model(graph)
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def ort_run(sess, graph, args):
    return sess.run(None, {n: np.asarray(a) for n, a in zip(graph.input_names, args)})


def np_run(graph, args):
    out = Interpreter(graph).run(dict(zip(graph.input_names, args)))
    return [out[n] for n in graph.output_names]


def finite_diff(f, args, k, eps=1e-6):
    """d f(*args) / d args[k] by float64 central differences (f returns a scalar)."""
    args = [np.array(a, dtype=np.float64) for a in args]
    grad = np.zeros_like(args[k])
    for idx in np.ndindex(args[k].shape):
        p = [a.copy() for a in args]
        m = [a.copy() for a in args]
        p[k][idx] += eps
        m[k][idx] -= eps
        grad[idx] = (float(f(*p)) - float(f(*m))) / (2 * eps)
    return grad
