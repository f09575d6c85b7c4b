"""Bounded import: tiny hostile ONNX models (a huge ConstantOfShape, Range, EyeLike, Trilu, a
Loop with a huge trip count) import without allocating their outputs, the large values stay
run-time ops (not initializers), and where the model is small enough to run, irflow's result
matches onnxruntime on the original file."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import irflow as irf
from irflow.frontends import onnx_import_base
from irflow.frontends.onnx_import import load

MiB = 1 << 20


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    g = helper.make_graph(nodes, "m", inputs, outputs, initializer=list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    onnx.checker.check_model(m)
    return m


def _const(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name + "_v"))


def _constant_of_shape(shape, value=np.float32(1.5)):
    return _model([_const("s", np.asarray(shape, np.int64)),
                   helper.make_node("ConstantOfShape", ["s"], ["y"], value=numpy_helper.from_array(np.asarray([value]), "v"))],
                  [], [helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(np.asarray(value).dtype), list(shape))])


def _range(start, limit, delta, dtype=np.int64):
    t = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return _model([_const("a", dtype(start)), _const("b", dtype(limit)), _const("d", dtype(delta)),
                   helper.make_node("Range", ["a", "b", "d"], ["y"])], [], [helper.make_tensor_value_info("y", t, [None])])


def _peak_load(model, **kw):
    """(graph, peak bytes traced while loading)."""
    tracemalloc.start()
    try:
        g = load(model, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return g, peak


def _ort(model, feeds=None):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds or {})))


def _json_size(g) -> int:
    return len(g.model_dump_json())


@pytest.mark.parametrize("model, op", [
    (_constant_of_shape([50000, 50000]), "full_dynamic"),                  # 10 GB of float32
    (_range(0, 2_000_000_000, 1), "range"),                                # 16 GB of int64
    (_range(0.0, 2e9, 0.5, np.float64), "range"),
    (_model([_const("v", np.float32(1)), _const("s", np.array([50000, 50000], np.int64)), helper.make_node("Expand", ["v", "s"], ["y"])],
            [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [50000, 50000])]), "broadcast_to"),
    (_model([_const("v", np.ones((1, 1), np.float32)), _const("s", np.array([50000, 50000], np.int64)), helper.make_node("Tile", ["v", "s"], ["y"])],
            [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [50000, 50000])]), "tile"),
    (_model([_const("v", np.ones(1, np.float32)), _const("p", np.array([0, 10**9], np.int64)), helper.make_node("Pad", ["v", "p"], ["y"])],
            [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [10**9 + 1])]), "pad"),
])
def test_huge_constant_outputs_stay_ops_and_import_in_bounded_memory(model, op):
    assert len(model.SerializeToString()) < 400
    g, peak = _peak_load(model)
    assert peak < 16 * MiB, f"import traced {peak / MiB:.0f} MiB"
    assert op in [n.op for n in g.nodes]
    assert all(a.nbytes <= onnx_import_base.DEFAULT_FOLD_LIMIT_BYTES for a in g.initializers.values())
    assert _json_size(g) < 20_000  # the IR file stays as small as the ONNX file's intent


def test_eye_like_and_trilu_of_a_huge_static_input_build_no_mask_at_import():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [50000, 50000])
    for node in (helper.make_node("EyeLike", ["x"], ["y"], k=1), helper.make_node("Trilu", ["x"], ["y"], upper=0)):
        m = _model([node], [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [50000, 50000])])
        g, peak = _peak_load(m)
        assert peak < 16 * MiB, f"{node.op_type}: import traced {peak / MiB:.0f} MiB"
        assert _json_size(g) < 50_000


@pytest.mark.parametrize("limit", [0, 64, None])
def test_lazy_and_folded_forms_match_onnxruntime(limit):
    """Below and above the fold limit, the same models give onnxruntime's values."""
    cases = [_constant_of_shape([3, 4], np.int32(7)), _constant_of_shape([300, 1000]),  # 1.2 MB: above the default
             _range(2, 40, 3), _range(1.0, -2.0, -0.25, np.float32)]
    for m in cases:
        g = load(m, fold_limit_bytes=limit)
        got = irf.run(g, {})["y"]
        want = _ort(m)["y"]
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    for node in (helper.make_node("EyeLike", ["x"], ["y"], k=-2), helper.make_node("Trilu", ["x"], ["y"], upper=1),
                 helper.make_node("Trilu", ["x"], ["y"], upper=0)):
        m = _model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 7])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 7])])
        np.testing.assert_array_equal(irf.run(load(m, fold_limit_bytes=limit), {"x": x})["y"], _ort(m, {"x": x})["y"])


def test_fold_limit_is_settable_per_call_and_as_the_module_default(monkeypatch):
    m = _constant_of_shape([16, 16])  # 1 KiB
    assert not any(n.op == "full_dynamic" for n in load(m).nodes)  # folded: a constant
    assert any(n.op == "full_dynamic" for n in load(m, fold_limit_bytes=512).nodes)
    monkeypatch.setattr(onnx_import_base, "DEFAULT_FOLD_LIMIT_BYTES", 512)
    assert any(n.op == "full_dynamic" for n in load(m).nodes)
    with pytest.raises(irf.IrflowError, match="fold_limit_bytes"):
        load(m, fold_limit_bytes=-1)


def _loop_model(m_value, with_scan_output: bool, exit_above=None):
    """x = x * 2 for M steps (or until x > exit_above); optionally stacks x each step."""
    F, I, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
    nodes = [helper.make_node("Mul", ["x_in", "two"], ["x_out"])]
    if exit_above is None:
        nodes.append(helper.make_node("Identity", ["c_in"], ["c_out"]))
    else:
        nodes += [helper.make_node("ReduceMax", ["x_out"], ["x_max"], keepdims=0),
                  helper.make_node("LessOrEqual", ["x_max", "lim"], ["c_out"])]
    outs = [helper.make_tensor_value_info("c_out", B, []), helper.make_tensor_value_info("x_out", F, [2])]
    if with_scan_output:
        nodes.append(helper.make_node("Identity", ["x_out"], ["y_t"]))
        outs.append(helper.make_tensor_value_info("y_t", F, [2]))
    body = helper.make_graph(nodes, "body", [helper.make_tensor_value_info("i", I, []), helper.make_tensor_value_info("c_in", B, []),
                                            helper.make_tensor_value_info("x_in", F, [2])], outs,
                             initializer=[numpy_helper.from_array(np.float32(2.0), "two"),
                                          numpy_helper.from_array(np.float32(exit_above or 0), "lim")])
    loop_outs = ["x_final"] + (["ys"] if with_scan_output else [])
    graph_outs = [helper.make_tensor_value_info("x_final", F, [2])] + \
        ([helper.make_tensor_value_info("ys", F, [None, 2])] if with_scan_output else [])
    return _model([_const("M", np.int64(m_value)), _const("c0", np.bool_(True)),
                   helper.make_node("Loop", ["M", "c0", "x"], loop_outs, body=body)],
                  [helper.make_tensor_value_info("x", F, [2])], graph_outs)


def test_loop_with_a_huge_trip_count_is_a_while_loop_not_a_range():
    m = _loop_model(10**9, with_scan_output=False, exit_above=100.0)
    g, peak = _peak_load(m)
    assert peak < 16 * MiB
    ops = [n.op for n in g.nodes]
    assert "while_loop" in ops and "range" not in ops
    (loop,) = [n for n in g.nodes if n.op == "while_loop"]
    assert loop.attrs["max_iterations"] == 10**9
    x = np.array([1.0, 3.0], np.float32)
    got = irf.run(g, {"x": x})["x_final"]  # exits on the condition after a few steps
    np.testing.assert_array_equal(got, _ort(m, {"x": x})["x_final"])
    np.testing.assert_array_equal(irf.run(g, {"x": x}, executor="ort")["x_final"], got)


@pytest.mark.parametrize("with_scan_output", [False, True])
def test_loop_with_a_known_trip_count_uses_a_counter(with_scan_output):
    m = _loop_model(5, with_scan_output)
    g = load(m)
    ops = [n.op for n in g.nodes]
    assert "range" not in ops and ("scan" in ops if with_scan_output else "while_loop" in ops)
    x = np.array([1.0, -0.5], np.float32)
    got, want = irf.run(g, {"x": x}), _ort(m, {"x": x})
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    np.testing.assert_array_equal(got["x_final"], x * 32)


def test_a_huge_scan_output_loop_imports_in_bounded_memory():
    g, peak = _peak_load(_loop_model(10**9, with_scan_output=True))
    assert peak < 16 * MiB and "range" not in [n.op for n in g.nodes]


def test_hostile_models_under_an_address_space_limit(tmp_path):
    """In a subprocess capped at ~1 GiB above its size after imports, `irflow inspect`'s load
    and the JSON conversion of each hostile model finish (before the fix: MemoryError)."""
    pytest.importorskip("resource", reason="POSIX resource limits")
    paths = []
    for i, m in enumerate([_constant_of_shape([50000, 50000]), _range(0, 2_000_000_000, 1),
                           _loop_model(10**9, with_scan_output=True)]):
        p = tmp_path / f"m{i}.onnx"
        p.write_bytes(m.SerializeToString())
        paths.append(str(p))
    code = textwrap.dedent(f"""
        import resource
        import irflow as irf
        from irflow.frontends.onnx_import import load
        vm = int([l for l in open('/proc/self/status') if l.startswith('VmSize')][0].split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.RLIM_INFINITY))
        for p in {paths!r}:
            g = load(p)
            assert len(g.model_dump_json()) < 100_000, p
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]
