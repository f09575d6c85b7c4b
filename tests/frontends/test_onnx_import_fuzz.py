"""The importer against hostile input: schema-generated single-op models for every op irflow
imports and mutated valid files. The only exception allowed out of ``load`` is an
``IrflowError``, never the catch-all's "import failed" (that would be an unchecked case), and
import-time memory stays small. The long run of the same generators is
scripts/fuzz_onnx_import.py (numbers in docs/reliability.md)."""
from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import irflow as irf
from irflow.frontends.onnx_import import load
from tests.frontends.onnx_fuzz import fuzz_ops, mutate, seed_models, single_op_model

OPS = fuzz_ops()
SEEDS = [m.SerializeToString() for m in seed_models()]
OPSETS = (13, 17, 18, 21)
MEMORY_BOUND = 64 << 20  # bytes traced during one import; these models are a few hundred bytes


def _load_hostile(source, strict: bool = True) -> None:
    """Load; an IrflowError is fine unless it is the catch-all's wrapper; memory stays bounded."""
    tracemalloc.start()
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load(source, strict=strict)
    except irf.IrflowError as e:
        assert "import failed:" not in str(e), f"an unchecked case reached the catch-all: {e}"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"import traced {peak / 2**20:.0f} MiB"


def test_the_generator_covers_every_imported_op():
    from irflow.frontends.onnx_import import IMPORTERS

    assert set(IMPORTERS) - {"If", "Loop", "Scan"} <= set(OPS)
    made = [op for op in OPS if any(single_op_model(op, opset, np.random.default_rng(0)) is not None for opset in OPSETS)]
    assert len(made) >= 0.9 * len(OPS)


@pytest.mark.parametrize("opset", [13, 21])
def test_every_op_once_per_opset(opset):
    """One schema-generated model of every op (a fixed seed per op): only IrflowErrors."""
    for i, op in enumerate(OPS):
        m = single_op_model(op, opset, np.random.default_rng([opset, i]))
        if m is not None:
            _load_hostile(m, strict=bool(i % 2))


@settings(derandomize=True, max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(op=st.sampled_from(OPS), opset=st.sampled_from(OPSETS), seed=st.integers(0, 2**32 - 1), strict=st.booleans())
def test_schema_generated_single_op_models(op, opset, seed, strict):
    m = single_op_model(op, opset, np.random.default_rng(seed))
    if m is not None:
        _load_hostile(m, strict=strict)


@settings(derandomize=True, max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(which=st.integers(0, len(SEEDS) - 1), seed=st.integers(0, 2**32 - 1))
def test_mutated_models(tmp_path_factory, which, seed):
    data = mutate(SEEDS[which], np.random.default_rng(seed))
    try:
        source = onnx.load_from_string(data)
    except Exception:  # undecodable: through a file, as the CLI reads it
        source = tmp_path_factory.mktemp("m") / "bad.onnx"
        source.write_bytes(data)
    _load_hostile(source)


def _one(op, inputs, x_shape=(), consts=(), **attrs):
    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(v), name + "_v")) for name, v in consts]
    nodes.append(helper.make_node(op, inputs, ["y"], name="the_node", **attrs))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.graph.output[0].type.tensor_type.shape.SetInParent()
    return m


@pytest.mark.parametrize("model, field", [
    (_one("LayerNormalization", ["x", "s"], consts=[("s", np.float32(1))], axis=-1), "axis"),
    (_one("Hardmax", ["x"], axis=0), "axis"),
    (_one("ReduceSum", ["x", "ax"], consts=[("ax", np.array([0], np.int64))]), "axes"),
    (_one("ReduceMean", ["x", "ax"], x_shape=(2,), consts=[("ax", np.int64(0))]), "axes"),
    (_one("Slice", ["x", "s", "e", "ax"], x_shape=(3,),
          consts=[("s", np.array([0], np.int64)), ("e", np.array([1], np.int64)), ("ax", np.array([4], np.int64))]), "axes"),
    (_one("CumSum", ["x", "ax"], x_shape=(3,), consts=[("ax", np.array([0, 1], np.int64))]), "axis"),
    (_one("EyeLike", ["x"], x_shape=(3,)), "rank"),
    (_one("Trilu", ["x"], x_shape=(3,)), "rank"),
    (_one("DepthToSpace", ["x"], x_shape=(1, 4), blocksize=2), "4-D"),
    (_one("Pad", ["x", "p"], x_shape=(3,), consts=[("p", np.array([1, 1, 1], np.int64))]), "pads"),
    (_one("Conv", ["x", "w"], x_shape=(1, 1, 4, 4), consts=[("w", np.ones((1, 1, 3, 3), np.float32))], strides=[1]), "strides"),
])
def test_known_leaks_are_errors_naming_node_and_field(model, field):
    """The cases issue 15 listed (ZeroDivisionError on rank-0 axes, IndexError on short
    attribute lists, ValueError on non-scalar constants) are now errors naming both."""
    with pytest.raises(irf.IrflowError) as info:
        load(model)
    assert "the_node" in str(info.value) and field in str(info.value) and "import failed" not in str(info.value)


def test_invalid_utf8_names_are_an_error_naming_the_graph():
    m = _one("Relu", ["x"], x_shape=(2,))
    data = m.SerializeToString().replace(b"the_node", b"\xff\xfe_node!")
    with pytest.raises(irf.IRValidationError, match="not valid UTF-8"):
        load(onnx.load_from_string(data))
