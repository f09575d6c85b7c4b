"""The CLI's error contract: user errors are one line and exit 2; bugs say "internal error,
please report" and exit 1; memory asked for by the command line is checked and named."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from typer.testing import CliRunner

import irflow as irf
from irflow.cli.app import app
from irflow.cli.common import random_array

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def model(tmp_path):
    b = irf.GraphBuilder("m")
    x = b.input("x", "float32", ("batch", 3))
    with b:
        y = irf.relu(x)
    b.output(y, names=["y"])
    path = tmp_path / "m.irflow.json"
    b.build(verify=True).save(path)
    return path


def test_a_bug_is_an_internal_error_with_exit_1(model, monkeypatch):
    import irflow.cli.common as common

    def broken(*a, **k):
        raise KeyError("planted bug")

    monkeypatch.setattr(common, "parse_inputs", broken)
    monkeypatch.setattr("irflow.cli.run.parse_inputs", broken)
    r = invoke("run", model, "-i", "x=random")
    assert r.exit_code == 1, r.output
    assert "internal error, please report: KeyError: 'planted bug'" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["--debug", "run", str(model), "-i", "x=random"])
    assert isinstance(r.exception, KeyError)  # --debug lets the traceback through


def test_a_user_error_is_one_line_with_exit_2(model):
    r = invoke("run", model, "-i", "nope=random")
    assert r.exit_code == 2
    assert [l for l in r.output.splitlines() if l.strip()] == [l for l in r.output.splitlines() if l.startswith("error:")]


def test_a_huge_dim_says_how_much_memory_was_asked(model):
    r = invoke("run", model, "-i", "x=random", "--dim", "batch=100000000000000")
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith("error: input 'x': shape (100000000000000, 3) of float32 needs 1.1 PiB"), line


def test_memory_error_anywhere_is_exit_2_not_internal(model, monkeypatch):
    def oom(*a, **k):
        raise MemoryError("Unable to allocate 8.00 GiB for an array with shape (1073741824,) and data type float64")

    monkeypatch.setattr("irflow.executors.run", oom)
    r = invoke("run", model, "-i", "x=random")
    assert r.exit_code == 2, r.output
    assert "error: out of memory: Unable to allocate 8.00 GiB" in r.output


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "int8", "int32", "int64", "uint8", "bool",
                                   "uint16", "uint64", "float8_e4m3fn", "int4"])
def test_random_inputs_are_made_in_their_dtype_without_a_float64_copy(dtype):
    shape = (512, 1024)
    tracemalloc.start()
    try:
        a = random_array(shape, dtype, np.random.default_rng(0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert a.shape == shape and a.dtype == irf.DType(dtype).numpy
    # The result itself plus at most one float32 chunk of a million elements (4 MiB) on the way.
    assert peak <= a.nbytes + 4 * 2**20 + 64 * 1024, (peak, a.nbytes)
    values = a.astype(np.float64)
    if dtype.startswith(("float", "bfloat")):
        assert abs(values.mean()) < 0.01 and abs(values.std() - 1) < 0.01  # standard normal
    elif dtype == "bool":
        assert 0.45 < values.mean() < 0.55
    elif dtype == "int4":
        assert set(np.unique(values)) == {0, 1}
    else:
        assert set(np.unique(values)) == set(range(10))
