"""Hostile command lines: random mixes of bad models, inputs, dims and output paths.

The contract (docs/cli.md): a user error is one line ``error: ...`` and exit 2; exit 1 only for
a failed check (``--compare``, ``--bisect``, ``--check-numerics``); never a traceback, never
"internal error". Seeded hypothesis, a few dozen calls.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import irflow as irf
from irflow.cli.app import app

MODELS = ["m.irflow.json", "m.onnx", "junk.onnx", "empty.irflow.json", "nope.onnx", "adir.npz", "m.txt", "",
          "/proc/self/status", "/dev/null"]
OUTPUTS = ["o.npz", "adir.npz", "afile/o.npz", "/proc/o.npz", "nope/o.npz", "", "m.onnx", "o.onnx",
           "o.irflow.json", "o.dot", "o.svg", "/", ".", "o"]
INPUTS = ["x=random", "k=random", "x=x.npy", "x=x64.npy", "k=k.npy", "in.npz", "x=in.npz", "x=nope.npy", "=random",
          "x", "x=", "zz=random", "x=k.npy", "k=x.npy", "x=adir.npz", "x=/dev/null"]
DIMS = ["batch=2", "batch=-1", "batch=x", "batch=99999999999999", "=3", "batch", "zz=1", "batch=0"]
RUN_FLAGS = ["--compare", "--bisect", "--check-numerics", "--executor=ort", "--rtol=-1", "--atol=nan", "--seed=-5",
             "--device=cuda", "--executor=tpu"]
CHECKS = {"--compare", "--bisect", "--check-numerics"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_fuzz")
    b = irf.GraphBuilder("m")
    x = b.input("x", "float32", ("batch", 3))
    k = b.input("k", "int64", (2,))
    with b:
        y = irf.relu(x) * 2.0
        z = k // b.constant(np.array([1, 2]), name="two")
    b.output(y, names=["y"])
    b.output(z, names=["z"])
    g = b.build(verify=True)
    g.save(d / "m.irflow.json")
    irf.onnx.save(g, d / "m.onnx")
    np.save(d / "x.npy", np.ones((2, 3), np.float32))
    np.save(d / "x64.npy", np.ones((2, 3)))
    np.save(d / "k.npy", np.array([3, 4]))
    np.savez(d / "in.npz", x=np.ones((2, 3), np.float32), k=np.array([1, 2]))
    (d / "junk.onnx").write_bytes(b"\x08\x01garbage")
    (d / "empty.irflow.json").write_text("{}")
    (d / "adir.npz").mkdir()
    (d / "afile").write_text("")
    return d


@st.composite
def command_lines(draw):
    cmd = draw(st.sampled_from(["run", "convert", "inspect", "grad", "viz"]))
    args = [cmd, draw(st.sampled_from(MODELS))]
    if cmd == "run":
        for spec in draw(st.lists(st.sampled_from(INPUTS), max_size=3)):
            args += ["-i", spec]
        for spec in draw(st.lists(st.sampled_from(DIMS), max_size=1)):
            args += ["--dim", spec]
        if draw(st.booleans()):
            args += ["-o", draw(st.sampled_from(OUTPUTS))]
        args += draw(st.lists(st.sampled_from(RUN_FLAGS), max_size=2, unique=True))
    elif cmd == "convert":
        args.append(draw(st.sampled_from(OUTPUTS)))
    elif cmd == "grad":
        args += ["--loss", draw(st.sampled_from(["y", "z", "x", "nope"])), "--wrt", draw(st.sampled_from(["x", "k", "two", "nope"])),
                 "-o", draw(st.sampled_from(OUTPUTS))]
        args += draw(st.sampled_from([[], ["--mode", "jvp"], ["--mode", "hvp"], ["--mode", "bad"]]))
    elif cmd == "viz":
        args += ["-o", draw(st.sampled_from(OUTPUTS))]
    return args


@settings(derandomize=True, max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(args=command_lines())
def test_hostile_command_lines_end_in_one_line_and_exit_0_1_or_2(workdir, args):
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        r = CliRunner().invoke(app, args)
    finally:
        os.chdir(cwd)
    out = r.output
    assert "Traceback" not in out and "internal error" not in out, (args, out)
    assert r.exception is None or isinstance(r.exception, SystemExit), (args, repr(r.exception))
    if r.exit_code == 1:
        assert CHECKS & set(args), (args, out)  # exit 1 is a failed check, nothing else
    else:
        assert r.exit_code in (0, 2), (args, r.exit_code, out)
    if r.exit_code == 2 and not out.startswith("Usage:"):  # typer's own usage errors have their box
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, (args, out)
