"""Running the ONNX backend node test cases through irflow (shared by the tests and the script).

Each case (``onnx.backend.test.case.node.collect_testcases()``) holds a model, inputs and the
expected outputs. Paths checked:
- ``numpy``: irflow's ONNX import -> the NumPy interpreter;
- ``ort``: irflow's ONNX import -> export (``to_model``) -> onnxruntime;
- ``ort_original``: onnxruntime on the original model, to tell "irflow broke it" from
  "onnxruntime itself cannot run this model".
Outputs are compared as onnx's own backend runner does: same dtype and shape, values within
the case's rtol/atol (1e-3 / 1e-7 for nearly all cases).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import os
import pkgutil
import sys
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import onnx
from onnx import numpy_helper

IR_ELEM_TYPES = {onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                 onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
                 onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32, onnx.TensorProto.UINT64,
                 onnx.TensorProto.BOOL, onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.FLOAT8E4M3FNUZ,
                 onnx.TensorProto.FLOAT8E5M2, onnx.TensorProto.FLOAT8E5M2FNUZ, onnx.TensorProto.FLOAT8E8M0,
                 onnx.TensorProto.FLOAT4E2M1, onnx.TensorProto.INT4, onnx.TensorProto.UINT4, onnx.TensorProto.INT2,
                 onnx.TensorProto.UINT2}
RANDOM_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial"}
STRING_OPS = {"StringNormalizer", "StringSplit", "StringConcat", "RegexFullMatch", "TfIdfVectorizer", "LabelEncoder"}
SEQUENCE_OPS_PREFIX = ("Sequence", "SplitToSequence", "ConcatFromSequence", "Optional")
IMAGE_OPS = {"ImageDecoder"}


# case name -> the module of onnx.backend.test.case.node that defines it
CASE_MODULES: dict[str, str] = {}


def _import_case_modules(modules) -> None:
    """Import case modules one by one (onnx computes a module's cases when it is imported)."""
    import onnx.backend.test.case.node as node_pkg

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for module in modules:
            full = f"{node_pkg.__name__}.{module}"
            if full in sys.modules:
                continue
            before = len(node_pkg._NodeTestCases)
            importlib.import_module(full)
            for c in node_pkg._NodeTestCases[before:]:
                CASE_MODULES[c.name] = module


@lru_cache(maxsize=1)
def all_cases() -> dict:
    """name -> TestCase for every node test case onnx ships (takes ~15 s: onnx computes them)."""
    import onnx.backend.test.case.node as node_pkg
    from onnx.backend.test.case.node import collect_testcases

    _import_case_modules(sorted(m.name for m in pkgutil.iter_modules(node_pkg.__path__)))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return {c.name: c for c in cases}


def some_cases(modules) -> dict:
    """name -> TestCase for the cases of the given case modules only (fast: a fraction of the suite)."""
    import onnx.backend.test.case.node as node_pkg

    _import_case_modules(sorted(set(modules)))
    return {c.name: c for c in node_pkg._NodeTestCases}


def main_op(case) -> str:
    """The op a case tests: its name's op (test_<op>_...) as the model's first matching node."""
    types = [n.op_type for n in case.model.graph.node]
    name = case.name[len("test_"):].replace("_", "").lower()
    for t in sorted(set(types), key=len, reverse=True):
        if name.startswith(t.lower()):
            return t
    return types[0] if types else "?"


def _elem_types(model: onnx.ModelProto):
    g = model.graph
    for vi in list(g.input) + list(g.output):
        t = vi.type
        if t.HasField("tensor_type"):
            yield t.tensor_type.elem_type
        else:
            yield None  # sequence / optional / map
    for init in g.initializer:
        yield init.data_type
    for node in g.node:
        for a in node.attribute:
            if a.name == "to":
                yield a.i


def out_of_scope(case) -> str | None:
    """Why a case is outside what irflow means to support, or None."""
    model = case.model
    domains = {n.domain for n in model.graph.node}
    if "ai.onnx.preview.training" in domains:
        return "training-domain op"
    if "ai.onnx.ml" in domains:
        return "ai.onnx.ml domain"
    if "ai.onnx.preview" in domains:
        return "ai.onnx.preview domain (not standard yet)"
    ops = {n.op_type for n in model.graph.node}
    if ops & RANDOM_OPS:
        return "random op"
    if any(n.op_type == "Dropout" and len(n.input) > 2 and n.input[2] for n in model.graph.node):
        return "random op"  # Dropout with a training_mode input: a random mask
    if ops & STRING_OPS:
        return "string op"
    if ops & IMAGE_OPS:
        return "image decoding"
    if any(op.startswith(SEQUENCE_OPS_PREFIX) for op in ops):
        return "sequences / optionals"
    for t in _elem_types(model):
        if t is None:
            return "sequences / optionals"
        if t not in IR_ELEM_TYPES:
            name = onnx.TensorProto.DataType.Name(t)
            if name.startswith("FLOAT6"):
                return "float6 dtypes"
            if name == "STRING":
                return "string dtype"
            if name.startswith("COMPLEX"):
                return "complex dtype"
            return f"{name.lower()} dtype (not an irflow dtype)"
    return None


def _arrays(values) -> list:
    out = []
    for v in values:
        if isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, np.generic):  # a NumPy scalar: a 0-d tensor (onnxruntime wants arrays)
            v = np.asarray(v)
        out.append(v)
    return out


def feeds_and_expected(case):
    inputs, expected = case.data_sets[0]
    init_names = {i.name for i in case.model.graph.initializer}
    names = [vi.name for vi in case.model.graph.input if vi.name not in init_names]
    return dict(zip(names, _arrays(inputs))), _arrays(expected)


def compare(got, want, rtol, atol) -> str | None:
    """None when ``got`` matches ``want`` as onnx's runner requires, else what differs."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype:
        return f"dtype {got.dtype} != expected {want.dtype}"
    if got.shape != want.shape:
        return f"shape {got.shape} != expected {want.shape}"
    if want.dtype.kind == "V" or (want.dtype.kind == "f" and want.dtype.itemsize == 1):
        # ml_dtypes' bfloat16, float8, float4, int4, ...: compare as float32 (exact), NaNs equal
        got, want = got.astype(np.float32), want.astype(np.float32)
    try:
        if want.dtype.kind in "fc":
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(got, want)
    except AssertionError as e:
        lines = [l.strip() for l in str(e).splitlines() if "Max absolute" in l or "Mismatched" in l]
        return "values differ: " + "; ".join(lines)[:200]
    return None


@dataclass
class Result:
    name: str
    op: str
    scope: str | None = None          # out-of-scope reason
    numpy: str = "skip"              # pass / fail / error / skip
    ort: str = "skip"
    ort_original: str = "skip"
    detail: dict = field(default_factory=dict)


def _short(e: Exception) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"[:300]


def run_numpy(case):
    """(graph, status, detail) for import -> NumPy interpreter. Nothing is bound at import:
    a shape argument fed as a graph input stays an input, read when the graph runs."""
    import irflow as irf
    from irflow.frontends.onnx_import import load

    feeds, expected = feeds_and_expected(case)
    try:
        g = load(case.model)
    except Exception as e:
        return None, "error", "import: " + _short(e)
    try:
        outs = irf.run(g, feeds)
    except Exception as e:
        return g, "error", "numpy: " + _short(e)
    for name, want in zip(g.output_names, expected):
        bad = compare(outs[name], want, case.rtol, case.atol)
        if bad:
            return g, "fail", f"output {name}: {bad}"
    return g, "pass", ""


def run_ort(case, g):
    """(status, detail) for export -> onnxruntime of an imported graph."""
    import onnxruntime as ort

    from irflow.executors.onnx import to_model

    feeds, expected = feeds_and_expected(case)
    try:
        model = to_model(g)
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        outs = sess.run(list(g.output_names), {k: v for k, v in feeds.items() if k in set(g.input_names)})
    except Exception as e:
        return "error", _short(e)
    for name, got, want in zip(g.output_names, outs, expected):
        bad = compare(got, want, case.rtol, case.atol)
        if bad:
            return "fail", f"output {name}: {bad}"
    return "pass", ""


def run_ort_original(case):
    """onnxruntime on the case's own model: pass / fail / error."""
    import onnxruntime as ort

    feeds, expected = feeds_and_expected(case)
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        sess = ort.InferenceSession(case.model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        outs = sess.run(None, feeds)
    except Exception as e:
        return "error", _short(e)
    for got, want in zip(outs, expected):
        if compare(got, want, case.rtol, case.atol):
            return "fail", ""
    return "pass", ""


def run_case(case, *, ort_paths: bool = True) -> Result:
    r = Result(case.name, main_op(case))
    r.scope = out_of_scope(case)
    if r.scope:
        return r
    g, r.numpy, detail = run_numpy(case)
    if detail:
        r.detail["numpy"] = detail
    if ort_paths and r.numpy == "pass":
        r.ort, d = run_ort(case, g)
        if d:
            r.detail["ort"] = d
        if r.ort != "pass":
            r.ort_original, d = run_ort_original(case)
            if d:
                r.detail["ort_original"] = d
    return r


os.environ.setdefault("ORT_LOGGING_LEVEL", "4")
