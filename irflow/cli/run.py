"""`irflow run MODEL`: run a model on the NumPy interpreter or onnxruntime, compare them, bisect."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from irflow.cli.common import (STRICT_HELP, CliError, check_output, compare_arrays, console, err_console, handle_errors, load_model,
                               parse_dims, parse_inputs, preview)


class Executor(str, Enum):
    numpy = "numpy"
    ort = "ort"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


EPILOG = """Examples:

  irflow run model.onnx -i x=random --dim batch=8

  irflow run model.irflow.json -i x=x.npy --executor ort -o out.npz

  irflow run model.onnx -i inputs.npz --compare --bisect
"""


@handle_errors
def run(
    model: Annotated[Path, typer.Argument(help="A .onnx or .irflow.json model.", show_default=False)],
    inputs: Annotated[Optional[list[str]], typer.Option("-i", "--input", help="NAME=FILE.npy, NAME=FILE.npz, FILE.npz or NAME=random.")] = None,
    dims: Annotated[Optional[list[str]], typer.Option("--dim", help="Size of a symbolic dim for random inputs: NAME=SIZE.")] = None,
    executor: Annotated[Executor, typer.Option("--executor", "-e", help="Which executor runs the model.")] = Executor.numpy,
    device: Annotated[Device, typer.Option("--device", help="Device for the ort executor.")] = Device.auto,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the outputs to this .npz file.")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Run on both executors and print the differences.")] = False,
    bisect: Annotated[bool, typer.Option("--bisect", help="With --compare: name the first node whose outputs differ.")] = False,
    rtol: Annotated[float, typer.Option("--rtol", help="Relative tolerance for --compare.")] = 1e-4,
    atol: Annotated[float, typer.Option("--atol", help="Absolute tolerance for --compare.")] = 1e-5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random inputs.")] = 0,
    check_numerics: Annotated[bool, typer.Option("--check-numerics", help="Check every node's outputs on the NumPy interpreter; name the first that holds NaN or Inf (exit 1).")] = False,
    strict: Annotated[bool, typer.Option("--strict/--no-strict", help=STRICT_HELP)] = True,
) -> None:
    """Run MODEL on inputs and print each output's name, shape, dtype and first values."""
    for option, value in (("--rtol", rtol), ("--atol", atol)):
        if not value >= 0:  # also catches NaN
            raise CliError(f"{option} {value}: a tolerance must be a non-negative number")
    if bisect and not compare:
        raise CliError("--bisect needs --compare (it bisects the difference between the two executors)")
    if output is not None and not str(output).endswith(".npz"):
        raise CliError(f"-o {output}: outputs are written as a .npz file; name it OUT.npz")
    if output is not None:
        check_output(output)  # before the model runs, not after
    graph = load_model(model, strict=strict)
    notes: list[str] = []
    feeds = parse_inputs(inputs, graph, parse_dims(dims), seed=seed, notes=notes)
    for note in notes:
        err_console.print(f"note: {note}", markup=False)

    from irflow.executors import run as run_graph

    if check_numerics:
        _check_numerics(graph, feeds)
    first = Executor.numpy if compare else executor
    outs = run_graph(graph, feeds, executor=first.value, device=_device(device, first))
    for name, arr in outs.items():
        counted = count_nonfinite(arr)
        if counted:
            err_console.print(f"note: output '{name}' holds {counted}"
                              + ("" if check_numerics else "; --check-numerics names the node that made it"), markup=False)
    table = Table(title=f"outputs ({first.value})")
    for column in ("name", "shape", "dtype", "values"):
        table.add_column(column)
    for name, arr in outs.items():
        table.add_row(*map(Text, (name, str(tuple(arr.shape)), str(arr.dtype), preview(arr))))
    console.print(table)
    if output is not None:
        write_npz(output, outs)
        console.print(f"wrote {len(outs)} output(s) to {output}")
    if compare:
        _compare(graph, feeds, outs, device, rtol, atol, bisect)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed .npz (what ``np.savez`` writes), atomically, no pickle.

    Written member by member rather than with ``np.savez(f, **arrays)``, which breaks on an
    output named ``file`` and would accept object arrays.
    """
    import zipfile

    from irflow.atomic import atomic_write

    with atomic_write(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, arr in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def count_nonfinite(a: np.ndarray) -> str:
    """``"3 NaN and 1 Inf"`` for a float array holding them, else ``""``."""
    a = np.asarray(a)
    if not (a.dtype.kind == "f" or a.dtype.name == "bfloat16") or a.size == 0:
        return ""
    nan, inf = int(np.count_nonzero(np.isnan(a))), int(np.count_nonzero(np.isinf(a)))
    return " and ".join(p for p in (f"{nan} NaN" if nan else "", f"{inf} Inf" if inf else "") if p)


def _check_numerics(graph, feeds) -> None:
    """Run the NumPy interpreter with a check after every node; exit 1 naming the first bad one."""
    from irflow.errors import NumericsError
    from irflow.executors.numpy import Interpreter

    try:
        Interpreter(graph, check_numerics=True).run(feeds)
    except NumericsError as e:
        err_console.print(f"error: {e}", markup=False)
        raise typer.Exit(1) from None
    err_console.print("note: --check-numerics: every node's outputs are finite", markup=False)


def _device(device: "Device", executor: "Executor") -> str:
    # The NumPy interpreter runs on the CPU whatever --device says.
    return "cpu" if executor is Executor.numpy else device.value


def _status(d, numpy_value: np.ndarray, ort_value: np.ndarray) -> str:
    """ok / DIFFERS, and what is not finite: NaN/Inf in agreement is reported, never "ok"."""
    notes = [d.note] if d.note else []
    if d.nan_mismatch:
        notes.append(f"NaN at {d.nan_mismatch} position(s) in one executor only")
    if d.ok:
        bad = count_nonfinite(numpy_value)
        return f"NaN/Inf: {bad} (same in both)" if bad else "ok"
    for label, value in (("numpy", numpy_value), ("ort", ort_value)):
        bad = count_nonfinite(value)
        if bad:
            notes.append(f"{label}: {bad}")
    return "DIFFERS" + (f" ({'; '.join(notes)})" if notes else "")


def _compare(graph, feeds, ref, device, rtol, atol, bisect) -> None:
    from irflow.executors import run as run_graph

    other = run_graph(graph, feeds, executor="ort", device=device.value)
    table = Table(title=f"numpy vs ort (rtol={rtol:g}, atol={atol:g})")
    for column in ("output", "max abs diff", "max rel diff", "status"):
        table.add_column(column)
    all_ok = True
    for name, arr in ref.items():
        d = compare_arrays(other[name], arr, rtol, atol)
        all_ok &= d.ok
        table.add_row(*map(Text, (name, f"{d.max_abs:.3g}", f"{d.max_rel:.3g}", _status(d, arr, other[name]))))
    console.print(table)
    if bisect:
        from irflow.cli.bisect import bisect as find_divergence

        div = find_divergence(graph, feeds, rtol=rtol, atol=atol, device=device.value)
        if div is None:
            console.print("bisect: every node's outputs agree within tolerance")
        else:
            node = div.node
            console.print(f"bisect: first differing node: {node.name} (op {node.op}), node #{div.index} of {len(graph.nodes)}")
            console.print(f"  inputs: {', '.join(div.input_types) or 'none'}")
            extra = f" ({div.diff.note})" if div.diff.note else ""
            console.print(f"  output %{div.output}: max abs diff {div.diff.max_abs:.3g}, max rel diff {div.diff.max_rel:.3g}{extra}")
            console.print(f"  numpy: {preview(div.numpy_value)}")
            console.print(f"  ort:   {preview(div.ort_value)}")
            all_ok = False
    if not all_ok:
        raise typer.Exit(1)
