"""Every file irflow writes survives a failed write: fault injection for each writer.

Each writer first writes an "old" file (a small model), then is made to write a "new" one
(a larger model) while failing midway, in two ways:

- in process: the temporary file's ``write`` raises ``OSError(ENOSPC)`` after 100 bytes
  (``irflow.atomic._open_temp`` is the one place temporaries are opened);
- for real, in a subprocess with ``RLIMIT_FSIZE`` set to 16 KiB (the kernel refuses the write
  with EFBIG once a file would grow past it; SIGXFSZ is ignored so the call fails instead of
  killing the process).

After the failure the old files must be byte-identical and no temporary file may remain.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from typer.testing import CliRunner

import irflow as irf
import irflow.atomic
from irflow.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 16 * 1024


def small_graph() -> irf.Graph:
    b = irf.GraphBuilder("small")
    x = b.input("x", "float32", (2, 4))
    with b:
        y = irf.relu(x + b.constant(np.ones(4, np.float32), name="c"))
    b.output(y, names=["y"])
    return b.build(verify=True)


def big_graph() -> irf.Graph:
    """A 64 KiB weight, a (64, 256) output and 201 nodes: every file it makes is over LIMIT."""
    rng = np.random.default_rng(0)
    b = irf.GraphBuilder("big")
    x = b.input("x", "float32", (64, 256))
    with b:
        h = x * b.constant(rng.standard_normal((64, 256)).astype(np.float32), name="w")
        for _ in range(200):
            h = irf.relu(h)
    b.output(h, names=["y"])
    return b.build(verify=True)


def _cli(*args) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def _cli_writer(command: str) -> Callable[[Path, irf.Graph], None]:
    def write(d: Path, g: irf.Graph) -> None:
        src = d / f"src_{g.name}.irflow.json"
        if not src.exists():
            g.save(src)
        if not (d / f"x_{g.name}.npy").exists():
            np.save(d / f"x_{g.name}.npy", np.ones(g.inputs[0].type.shape, np.float32))
        args = {
            "convert_onnx": ("convert", src, d / "out.onnx"),
            "convert_json": ("convert", src, d / "out.irflow.json"),
            "viz_dot": ("viz", src, "-o", d / "out.dot"),
            "run_npz": ("run", src, "-i", f"x={d / f'x_{g.name}.npy'}", "-o", d / "out.npz"),
            "grad_onnx": ("grad", src, "--loss", "y", "--wrt", "x", "-o", d / "grad.onnx"),
        }[command]
        code, out = _cli(*args)
        if code != 0:
            raise irf.IrflowError(f"exit {code}: {out}")
    return write


# name -> (writer(directory, graph), the files it writes)
WRITERS: dict[str, tuple[Callable[[Path, irf.Graph], None], tuple[str, ...]]] = {
    "graph.save": (lambda d, g: g.save(d / "m.irflow.json"), ("m.irflow.json",)),
    "onnx.save": (lambda d, g: irf.onnx.save(g, d / "m.onnx"), ("m.onnx",)),
    "onnx.save_external": (lambda d, g: irf.onnx.save(g, d / "e.onnx", external_data=True), ("e.onnx", "e.onnx.data")),
    "cli.convert_onnx": (_cli_writer("convert_onnx"), ("out.onnx",)),
    "cli.convert_json": (_cli_writer("convert_json"), ("out.irflow.json",)),
    "cli.viz_dot": (_cli_writer("viz_dot"), ("out.dot",)),
    "cli.run_npz": (_cli_writer("run_npz"), ("out.npz",)),
    "cli.grad_onnx": (_cli_writer("grad_onnx"), ("grad.onnx",)),
}


def _external_small_graph() -> irf.Graph:
    # The small graph's 16-byte constant stays inline; give the external-data case a data file.
    b = irf.GraphBuilder("small")
    x = b.input("x", "float32", (64, 256))
    with b:
        y = irf.relu(x * b.constant(np.full((64, 256), 2.0, np.float32), name="w"))
    b.output(y, names=["y"])
    return b.build(verify=True)


def _old_graph(name: str) -> irf.Graph:
    return _external_small_graph() if name == "onnx.save_external" else small_graph()


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def assert_unchanged(d: Path, before: dict[str, bytes], files: tuple[str, ...]) -> None:
    after = snapshot(d)
    leftovers = sorted(set(after) - set(before))
    assert not leftovers, f"temporary files left behind: {leftovers}"
    for f in files:
        assert after[f] == before[f], f"{f} changed"


class FailingFile:
    """A file whose writes stop with ENOSPC once ``budget`` bytes went through (writing part)."""

    def __init__(self, f, budget: int) -> None:
        self._f, self._budget, self._written = f, budget, 0

    def write(self, data):
        room = self._budget - self._written
        if len(data) > room:
            self._f.write(data[:max(room, 0)])
            self._written = self._budget
            raise OSError(errno.ENOSPC, "No space left on device")
        self._written += len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_write_failing_midway_leaves_the_old_files(tmp_path, monkeypatch, name):
    write, files = WRITERS[name]
    write(tmp_path, _old_graph(name))
    before = snapshot(tmp_path)
    assert all(f in before for f in files)
    real_open = irflow.atomic._open_temp
    opened = []

    def failing_open(fd, mode, encoding):
        opened.append(fd)
        return FailingFile(real_open(fd, mode, encoding), budget=100)

    monkeypatch.setattr(irflow.atomic, "_open_temp", failing_open)
    with pytest.raises(irf.IrflowError, match="No space left|exit 2"):
        write(tmp_path, big_graph())
    assert opened, "the writer did not go through irflow.atomic"
    assert_unchanged(tmp_path, before, files)
    monkeypatch.undo()
    write(tmp_path, big_graph())  # and without the fault the new files are written
    assert all(snapshot(tmp_path)[f] != before[f] for f in files)


@pytest.mark.parametrize("fail_at", [0, 1])
def test_external_data_pair_fails_in_either_file_and_stays_consistent(tmp_path, monkeypatch, fail_at):
    import onnxruntime as ort

    g_old = _external_small_graph()
    irf.onnx.save(g_old, tmp_path / "e.onnx", external_data=True)
    before = snapshot(tmp_path)
    real_open = irflow.atomic._open_temp
    count = [0]

    def open_one_failing(fd, mode, encoding):
        f = real_open(fd, mode, encoding)
        count[0] += 1
        return FailingFile(f, 10) if count[0] - 1 == fail_at else f

    monkeypatch.setattr(irflow.atomic, "_open_temp", open_one_failing)
    with pytest.raises(irf.IrflowError):
        irf.onnx.save(big_graph(), tmp_path / "e.onnx", external_data=True)
    assert_unchanged(tmp_path, before, ("e.onnx", "e.onnx.data"))
    x = np.ones((64, 256), np.float32)
    (y,) = ort.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_array_equal(y, np.full((64, 256), 2.0, np.float32))  # the old pair, still whole


def test_external_data_pair_rolls_back_when_the_model_rename_fails(tmp_path, monkeypatch):
    irf.onnx.save(_external_small_graph(), tmp_path / "e.onnx", external_data=True)
    before = snapshot(tmp_path)
    real_replace = os.replace
    renamed = []

    def replace(src, dst):
        if Path(dst).name == "e.onnx":  # data file went first; now the model's rename fails
            raise OSError(errno.EIO, "Input/output error")
        renamed.append(Path(dst).name)
        return real_replace(src, dst)

    monkeypatch.setattr(irflow.atomic.os, "replace", replace)
    with pytest.raises(irf.IrflowError, match="Input/output error"):
        irf.onnx.save(big_graph(), tmp_path / "e.onnx", external_data=True)
    monkeypatch.undo()
    assert renamed[0] == "e.onnx.data"  # the data file was replaced, then restored
    assert_unchanged(tmp_path, before, ("e.onnx", "e.onnx.data"))


def test_save_leaves_the_callers_model_proto_intact(tmp_path):
    model = irf.onnx.to_model(big_graph())
    copy = model.SerializeToString()
    irflow.executors.onnx.save_model(model, tmp_path / "m.onnx", external_data=True)
    assert model.SerializeToString() == copy


_SUBPROCESS = """
import json, resource, signal, sys, traceback
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.test_atomic_writes import WRITERS, big_graph
import irflow as irf
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG from write() instead of death
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
results = {{}}
for name in {names!r}:
    write, files = WRITERS[name]
    try:
        write(Path({dirs!r}[name]), big_graph())
        results[name] = "no error"
    except irf.IrflowError as e:
        results[name] = "IrflowError: " + str(e)
    except BaseException as e:
        results[name] = "LEAKED " + type(e).__name__ + ": " + str(e) + traceback.format_exc()
print(json.dumps(results))
"""


def test_a_real_file_size_limit_leaves_the_old_files(tmp_path):
    dirs, before = {}, {}
    for name, (write, files) in WRITERS.items():
        d = tmp_path / name
        d.mkdir()
        write(d, _old_graph(name))
        if name.startswith("cli."):  # the CLI's source model must already exist (it is read, not written)
            big_graph().save(d / "src_big.irflow.json")
            np.save(d / "x_big.npy", np.ones((64, 256), np.float32))
        dirs[name], before[name] = str(d), snapshot(d)
    script = _SUBPROCESS.format(root=str(ROOT), limit=LIMIT, names=list(WRITERS), dirs=dirs)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (_, files) in WRITERS.items():
        assert results[name].startswith("IrflowError"), (name, results[name])
        assert "File too large" in results[name], (name, results[name])
        assert_unchanged(Path(dirs[name]), before[name], files)


# -- output paths are checked before any work -----------------------------------------------

def _assert_exit_2(code: int, out: str, *needles: str) -> None:
    assert code == 2, out
    lines = [l for l in out.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in out, out
    for n in needles:
        assert n in lines[0], (n, out)


def bad_paths(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a_dir.npz").mkdir()
    (tmp_path / "a_file").write_text("x")
    return {
        "directory": tmp_path / "a_dir.npz",
        "missing parent": tmp_path / "nope" / "o.npz",
        "parent is a file": tmp_path / "a_file" / "o.npz",
        "proc": Path("/proc/irflow_out.npz"),
    }


@pytest.mark.parametrize("case", ["directory", "missing parent", "parent is a file", "proc"])
@pytest.mark.parametrize("command", ["run", "convert", "viz", "grad"])
def test_bad_output_paths_exit_2_before_any_work(tmp_path, monkeypatch, case, command):
    src = tmp_path / "m.irflow.json"
    small_graph().save(src)
    out = bad_paths(tmp_path)[case]
    suffix = {"run": ".npz", "convert": ".onnx", "viz": ".dot", "grad": ".onnx"}[command]
    out = out.with_name(out.name.replace(".npz", suffix))
    if case == "directory":
        out.mkdir(exist_ok=True)
    import irflow.cli.common as common

    def no_loading(path):
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr(common, "load_model", no_loading)
    for module in ("run", "convert", "viz", "grad"):
        monkeypatch.setattr(f"irflow.cli.{module}.load_model", no_loading)
    args = {
        "run": ("run", src, "-i", "x=random", "-o", out),
        "convert": ("convert", src, out),
        "viz": ("viz", src, "-o", out),
        "grad": ("grad", src, "--loss", "y", "--wrt", "x", "-o", out),
    }[command]
    _assert_exit_2(*_cli(*args), "cannot write", str(out.name))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory anyway")
def test_unwritable_directory_exits_2(tmp_path):
    src = tmp_path / "m.irflow.json"
    small_graph().save(src)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _assert_exit_2(*_cli("convert", src, ro / "m.onnx"), "cannot write")
    finally:
        ro.chmod(0o700)


def test_library_writers_refuse_bad_paths(tmp_path):
    g = small_graph()
    for path in bad_paths(tmp_path).values():
        with pytest.raises(irf.IrflowError, match="cannot write"):
            g.save(path)
        with pytest.raises(irf.IrflowError, match="cannot write"):
            irf.onnx.save(g, path)


def test_run_cannot_overwrite_its_own_model(tmp_path):
    model = tmp_path / "m.onnx"
    irf.onnx.save(small_graph(), model)
    before = model.read_bytes()
    _assert_exit_2(*_cli("run", model, "-i", "x=random", "-o", model), ".npz")
    assert model.read_bytes() == before
    irf.onnx.load(model)


def test_convert_onto_its_own_input_fails_safely_and_succeeds_whole(tmp_path, monkeypatch):
    model = tmp_path / "m.onnx"
    irf.onnx.save(big_graph(), model)
    before = snapshot(tmp_path)
    real_open = irflow.atomic._open_temp
    monkeypatch.setattr(irflow.atomic, "_open_temp", lambda *a: FailingFile(real_open(*a), 100))
    code, out = _cli("convert", model, model)
    _assert_exit_2(code, out, "No space left")
    assert_unchanged(tmp_path, before, ("m.onnx",))
    monkeypatch.undo()
    assert _cli("convert", model, model)[0] == 0
    x = np.ones((64, 256), np.float32)
    np.testing.assert_array_equal(irf.run(irf.onnx.load(model), {"x": x})["y"],
                                  np.maximum(x * big_graph().initializers["w"], 0))


def test_run_reads_its_npz_input_before_writing_over_it(tmp_path):
    src = tmp_path / "m.irflow.json"
    g = small_graph()
    g.save(src)
    x = np.arange(8, dtype=np.float32).reshape(2, 4) - 4
    np.savez(tmp_path / "io.npz", x=x)
    code, out = _cli("run", src, "-i", tmp_path / "io.npz", "-o", tmp_path / "io.npz")
    assert code == 0, out
    with np.load(tmp_path / "io.npz") as z:
        np.testing.assert_array_equal(z["y"], np.maximum(x + 1, 0))


def test_npz_output_named_file_and_pickle_free(tmp_path):
    from irflow.cli.run import write_npz

    arrays = {"file": np.arange(3), "y": np.ones((2, 2), np.float16)}
    write_npz(tmp_path / "o.npz", arrays)
    with np.load(tmp_path / "o.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["file", "y"]
        np.testing.assert_array_equal(z["file"], arrays["file"])
        assert z["y"].dtype == np.float16


def test_onnx_export_checks_the_path_before_tracing(tmp_path):
    traced = []

    def f(x):
        traced.append(1)
        return irf.relu(x)

    with pytest.raises(irf.ExecutorError, match="cannot write"):
        irf.onnx.export(f, tmp_path / "nope" / "f.onnx", irf.TensorSpec((2,), "float32"))
    assert not traced
    irf.onnx.export(f, tmp_path / "f.onnx", irf.TensorSpec((2,), "float32"))
    assert traced and (tmp_path / "f.onnx").is_file()
