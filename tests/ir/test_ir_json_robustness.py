"""Hand-edited or corrupted ``.irflow.json`` files: every problem is an ``IrflowError`` naming the
field, and nothing a file declares is allocated before it is checked against the bytes present.

The fuzz test mutates valid IR JSON (the bundled models and graphs built here, with every attr
kind and nested graphs) with hypothesis, seeded; the only exception allowed out of
``irflow.ir.load`` + ``verify`` is ``IrflowError``, and tracemalloc's peak stays bounded.
"""
from __future__ import annotations

import json
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import irflow as irf
from irflow.ir.graph import load

ROOT = Path(__file__).resolve().parents[2]
MEMORY_BOUND = 16 * 2**20  # bytes; the files here are a few KB, a declared size must not matter


def _attr_graph() -> irf.Graph:
    """Every attr kind: ints, int tuples, floats, bools, dtypes, strings, arrays, nested graphs."""
    b = irf.GraphBuilder("attrs")
    x = b.input("x", "float32", ("batch", 4))
    i = b.input("i", "int64", (3,))
    with b:
        s = irf.softmax(x, axis=-1)
        r = irf.reduce_sum(s, axis=(1,), keepdims=True)
        c = irf.cast(r, "float64")
        t = irf.transpose(x, (1, 0))
        k = irf.cond(irf.reduce_sum(x) > 0, lambda: x * 2.0, lambda: x - 1.0)
        m = irf.mod(i, b.constant(np.array([2, 3, 4], np.int64), name="divisor"))
    for v, name in ((c, "c"), (t, "t"), (k, "k"), (m, "m")):
        b.output(v, names=[name])
    return b.build(verify=True)


def _scan_graph() -> irf.Graph:
    b = irf.GraphBuilder("loop")
    x = b.input("x", "float32", (5, 3))
    with b:
        total, ys = irf.scan(lambda carry, row: (carry + row, carry * row), irf.zeros((3,), "float32"), x)
    b.output(total, names=["total"])
    b.output(ys, names=["ys"])
    return b.build(verify=True)


def base_documents() -> list[dict]:
    docs = [json.loads(p.read_text()) for p in sorted((ROOT / "irflow" / "models").glob("*.irflow.json"))]
    docs += [json.loads(g.model_dump_json()) for g in (_attr_graph(), _scan_graph())]
    return docs


BASES = base_documents()


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


INTERESTING = [
    0, -1, 1, 2**31, 2**63, 10**30, 1.5, -0.0, 1e308, "", "x", "float32", "bfloat16", "int", None, True, False,
    [], {}, [1], ["a"], [[1]], [None], {"a": 1}, ["f", 1], ["i", "x"], ["l", 3], ["g", 5], ["t", "float99"],
    ["a", {"dtype": "float32", "shape": [10**12], "data": ""}], ["a", {"dtype": "float32", "shape": [4], "data": 5}],
    {"dtype": "float32", "shape": [50000, 50000], "data": "AAAA"}, {"dtype": "int64", "shape": 3, "data": ""},
    ["zz", 1, 2], [["n", "t", "x"]], [["axis", "i"]], [["axis", "i", 1, 2]], "\udcff", "\x00",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, width=64)
    | st.text(max_size=6) | st.sampled_from(INTERESTING),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)


@st.composite
def mutated_documents(draw):
    doc = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))[1:]
        if not paths:
            break
        path = paths[draw(st.integers(0, len(paths) - 1))]
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "duplicate", "swap_type"]))
        key = path[-1]
        if kind == "delete":
            del parent[key]
        elif kind == "duplicate" and isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[key])))
        elif kind == "swap_type":
            value = parent[key]
            parent[key] = [value] if not isinstance(value, list) else (value[0] if value else {})
        else:
            parent[key] = json.loads(json.dumps(draw(json_values)))  # a copy: INTERESTING stays as it is
    return doc


def _load_text(text: str, directory: Path) -> None:
    path = directory / "m.irflow.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    g = load(path)
    g.verify()
    str(g)  # printing a loaded graph must not fail either
    g.value_types()


@settings(derandomize=True, max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=mutated_documents())
def test_mutated_ir_json_raises_only_irflow_errors_in_bounded_memory(doc):
    text = json.dumps(doc)
    with tempfile.TemporaryDirectory() as d:
        tracemalloc.start()
        try:
            try:
                _load_text(text, Path(d))
            except irf.IrflowError as e:
                assert str(e), "an error must say what is wrong"
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"loading a {len(text)}-byte file peaked at {peak} bytes"


# -- the cases found by the fuzzing, one by one -----------------------------------------

def _mutate_and_load(tmp_path, mutate, doc=None):
    doc = json.loads(json.dumps(doc or BASES[0]))
    mutate(doc)
    path = tmp_path / "m.irflow.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(irf.IrflowError) as info:
        load(path).verify()
    return str(info.value)


def test_an_int_shape_names_the_field(tmp_path):
    msg = _mutate_and_load(tmp_path, lambda d: d["inputs"][0]["type"].__setitem__("shape", 16))
    assert "field inputs.0.type.shape" in msg and "must be a list of dims" in msg


@pytest.mark.parametrize("attrs, needle", [
    (5, "attrs must be a list"),
    ([[1, 2]], "attr entry #0 must be [name, tag, value]"),
    ([["axis", "i"]], "attr entry #0"),
    ([["axis", "i", "one"]], "tag 'i' needs an integer"),
    ([["axis", "q", 1]], "unknown attr tag 'q'"),
    ([["axis", "f", 1]], "needs a float.hex string"),
    ([["axis", "f", "zz"]], "not a float.hex string"),
    ([["axis", "l", 3]], "needs a list of tagged values"),
    ([["axis", "l", [1]]], "attr 'axis'[0]: expected [tag, value]"),
    ([["dtype", "t", "float99"]], "unknown dtype 'float99'"),
    ([["body", "g", 5]], "needs a graph object"),
    ([["body", "g", {"name": 1}]], "attrs"),
    ([["w", "a", {"dtype": "float32", "shape": [2], "data": 7}]], "data must be a base64 string"),
    ([["axis", "i", 1], ["axis", "i", 2]], "given twice"),
])
def test_malformed_attr_entries_name_the_field(tmp_path, attrs, needle):
    msg = _mutate_and_load(tmp_path, lambda d: d["nodes"][0].__setitem__("attrs", attrs))
    assert "nodes.0.attrs" in msg and needle in msg, msg


def test_a_required_input_set_to_empty_names_the_node(tmp_path):
    msg = _mutate_and_load(tmp_path, lambda d: d["nodes"][0]["inputs"].__setitem__(0, ""))
    assert "matmul_0" in msg and "input #0 is required" in msg


def test_a_type_rule_meeting_wrong_attr_types_names_the_node(tmp_path):
    doc = json.loads(_attr_graph().model_dump_json())
    node = next(i for i, n in enumerate(doc["nodes"]) if n["op"] == "transpose")

    def mutate(d):
        d["nodes"][node]["attrs"] = [["perm", "l", [["s", "a"], ["s", "b"]]]]

    msg = _mutate_and_load(tmp_path, mutate, doc)
    assert "transpose" in msg and "perm" in msg, msg


@pytest.mark.parametrize("shape", [[50000, 50000], [2**62], [10**30], [2**40, 2**40]])
def test_a_huge_declared_initializer_with_short_data_allocates_nothing(tmp_path, shape):
    name = next(iter(BASES[0]["initializers"]))

    def mutate(d):
        d["initializers"][name]["shape"] = shape

    tracemalloc.start()
    try:
        msg = _mutate_and_load(tmp_path, mutate)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"initializers.{name}" in msg and "needs" in msg and "bytes" in msg, msg
    assert peak < MEMORY_BOUND


@pytest.mark.parametrize("bad, needle", [
    ({"dtype": "float32", "shape": [3], "data": "AAAA"}, "needs 12 bytes"),
    ({"dtype": "float33", "shape": [1], "data": "AAAA"}, "unknown dtype"),
    ({"dtype": "float32", "shape": [-1], "data": "AAAA"}, "non-negative ints"),
    ({"dtype": "float32", "shape": [1.5], "data": "AAAA"}, "non-negative ints"),
    ({"dtype": "float32", "shape": [1], "data": "AA!A"}, "not valid base64"),
    ({"dtype": "float32", "shape": [1]}, "lacks data"),
    ([1, 2, 3], "must be an object"),
])
def test_bad_initializer_encodings_name_the_initializer(tmp_path, bad, needle):
    name = next(iter(BASES[0]["initializers"]))
    msg = _mutate_and_load(tmp_path, lambda d: d["initializers"].__setitem__(name, bad))
    assert f"initializers.{name}" in msg and needle in msg, msg


def test_not_json_and_not_utf8(tmp_path):
    for raw in (b"{not json", b"\xff\xfe\x00", b"", b"[]", b"null", b"{" * 5000 + b"}" * 5000):
        path = tmp_path / "m.irflow.json"
        path.write_bytes(raw)
        with pytest.raises(irf.IrflowError, match="not a valid irflow graph"):
            load(path)


def test_valid_documents_still_round_trip_bit_exactly(tmp_path):
    for doc in BASES:
        text = json.dumps(doc)
        path = tmp_path / "m.irflow.json"
        path.write_text(text)
        g = load(path).verify()
        g.save(tmp_path / "again.irflow.json")
        assert json.loads((tmp_path / "again.irflow.json").read_text()) == doc
