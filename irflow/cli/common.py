"""What every `irflow` command shares: loading models, parsing `-i`/`--dim`, comparing arrays,
and turning user errors into one line and exit status 2.

A user error is any ``IrflowError`` (the library names what was wrong and where) or a
``CliError`` raised here (a bad option value, a missing file). Both print ``error: <message>``
on one line to stderr and exit with status 2; ``irflow --debug ...`` re-raises them with the
traceback instead. Anything else is a bug in irflow: one line too, exit status 1.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import typer
from rich.console import Console

from irflow.errors import IrflowError

if TYPE_CHECKING:  # the IR (pydantic) is imported by the commands that load a model, not by --help
    from irflow.ir.dtypes import DType
    from irflow.ir.graph import Graph

console = Console(highlight=False, soft_wrap=True, markup=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


class CliError(IrflowError):
    """A bad command line: a missing file, a malformed ``-i`` or ``--dim``, an unknown name."""


@dataclass
class CliState:
    debug: bool = False


STATE = CliState()


def one_line(message: str) -> str:
    """Error messages are printed on one line, whatever the library put in them."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def handle_errors(fn: Callable) -> Callable:
    """Decorate a command: user errors -> one line + exit 2; bugs -> "internal error, please report" + exit 1.

    A ``MemoryError`` that escapes a command is reported as a user error (exit 2): the command
    asked for more memory than the machine has (a huge ``--dim``, a model whose values do not
    fit). Places that know the size they ask for raise an ``IrflowError`` with it first.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            # NumPy's floating-point warnings would print source lines; the commands report
            # NaN/Inf themselves (a note on stderr, --check-numerics, --compare's status).
            with np.errstate(all="ignore"):
                return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except IrflowError as e:
            if STATE.debug:
                raise
            err_console.print(f"error: {one_line(e)}", markup=False)
            raise typer.Exit(2) from None
        except MemoryError as e:
            if STATE.debug:
                raise
            detail = f": {one_line(e)}" if str(e) else ""
            err_console.print(f"error: out of memory{detail}", markup=False)
            raise typer.Exit(2) from None
        except Exception as e:  # a bug, not the user's fault; still no traceback by default
            if STATE.debug:
                raise
            err_console.print(
                f"internal error, please report: {type(e).__name__}: {one_line(e)} "
                "(rerun with --debug for the traceback)", markup=False
            )
            raise typer.Exit(1) from None

    return wrapper


# -- models ------------------------------------------------------------------------------------

MODEL_SUFFIXES = (".onnx", ".irflow.json")


def model_kind(path: str | Path) -> str:
    """'onnx' or 'irflow' from the file name; CliError for anything else."""
    name = str(path).lower()
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith(".irflow.json") or name.endswith(".json"):
        return "irflow"
    raise CliError(f"{path}: unknown model format; expected a .onnx or .irflow.json file")


def load_model(path: str | Path, strict: bool = True) -> Graph:
    """Read a model file (.onnx or .irflow.json) into an IR Graph, checking it exists first.
    ``strict=False`` (``--no-strict``) skips ONNX import's type checks."""
    p = Path(path)
    kind = model_kind(p)
    if not p.exists():
        raise CliError(f"no such file: {p}")
    if p.is_dir():
        raise CliError(f"{p} is a directory, not a model file")
    if kind == "onnx":
        from irflow.frontends.onnx_import import load

        return load(p, strict=strict)
    from irflow.ir.graph import load as load_json

    graph = load_json(p)
    graph.verify()
    return graph


# The --strict/--no-strict option of commands that read ONNX models.
STRICT_HELP = ("Check an ONNX model's declared types and its ops' schema type constraints on import "
               "(--no-strict loads a model onnxruntime would refuse).")


def check_output(path: str | Path, what: str = "-o") -> Path:
    """Check that ``path`` can be written, before any work: CliError naming the option otherwise."""
    from irflow.atomic import check_output_path

    try:
        return check_output_path(path)
    except IrflowError as e:
        raise CliError(f"{what} {path}: {e}") from None


def save_model(graph: Graph, path: str | Path) -> None:
    """Write ``graph`` as .onnx (standard domain, checked) or .irflow.json, by the file name.

    Both go through ``irflow.atomic``: a failure leaves an existing file as it was.
    """
    p = Path(path)
    kind = model_kind(p)
    check_output(p, "output")
    if kind == "irflow":
        graph.save(p)
        return
    import onnx

    from irflow.executors.onnx import to_model
    from irflow.executors.onnx.export import save_model as save_onnx

    model = to_model(graph)
    onnx.checker.check_model(model)
    save_onnx(model, p)


# -- inputs ------------------------------------------------------------------------------------

def parse_dims(specs: list[str] | None) -> dict[str, int]:
    """``["batch=8", "seq=16"]`` -> ``{"batch": 8, "seq": 16}``."""
    dims: dict[str, int] = {}
    for spec in specs or []:
        name, sep, value = spec.partition("=")
        if not sep or not name.strip():
            raise CliError(f"--dim {spec!r}: expected NAME=SIZE, for example --dim batch=8")
        try:
            size = int(value)
        except ValueError:
            raise CliError(f"--dim {spec!r}: size {value!r} is not an integer") from None
        if size < 0:
            raise CliError(f"--dim {spec!r}: size must not be negative")
        dims[name.strip()] = size
    return dims


def _describe_inputs(graph: Graph) -> str:
    return ", ".join(f"{v.name} ({v.type})" for v in graph.inputs) or "none"


def random_input(graph: Graph, name: str, dims: Mapping[str, int], rng: np.random.Generator,
                 notes: list[str]) -> np.ndarray:
    """A random array for input ``name``: shape from the model, symbols from ``dims`` (else 1)."""
    value = next(v for v in graph.inputs if v.name == name)
    shape = []
    for axis, d in enumerate(value.type.shape):
        if isinstance(d, int):
            shape.append(d)
        elif isinstance(d, str) and d in dims:
            shape.append(dims[d])
        else:
            label = repr(d) if d is not None else f"axis {axis} (unknown)"
            notes.append(f"input '{name}': dim {label} not set with --dim; using 1")
            shape.append(1)
    return random_array(tuple(shape), value.type.dtype, rng, what=f"input '{name}'")


_CHUNK = 1 << 20  # elements generated per step for dtypes NumPy cannot draw directly


def random_array(shape: tuple[int, ...], dtype: Any, rng: np.random.Generator, what: str = "random input") -> np.ndarray:
    """Standard normal floats, integers in 0..9 (0..1 for int4 and int2) or random bools of
    ``shape``, made in ``dtype`` (float8 and float4: normal floats rounded to them).

    Nothing is drawn in float64 first, so the peak is the result itself (float16 and bfloat16
    are drawn in float32 chunks of a million elements). A size the machine cannot hold is an
    ``IrflowError`` saying how many bytes were asked for, before anything is allocated.

    >>> random_array((2,), DType.float32, np.random.default_rng(0)).dtype
    dtype('float32')
    """
    from irflow.ir.dtypes import as_dtype

    dt = as_dtype(dtype)
    np_dtype = np.dtype(dt.numpy)
    count = 1
    for d in shape:
        count *= int(d)
    nbytes = count * np_dtype.itemsize
    available = available_memory()
    if available is not None and nbytes > available:
        raise IrflowError(
            f"{what}: shape {tuple(shape)} of {dt.value} needs {human_bytes(nbytes)}, more than the "
            f"{human_bytes(available)} of memory available; choose smaller --dim sizes"
        )
    try:
        if dt.is_float or (dt.is_storage and dt.value.startswith("float")):  # float8 / float4: rounded
            if np_dtype in (np.float32, np.float64):
                return rng.standard_normal(shape, dtype=np_dtype)
            out = np.empty(shape, np_dtype)
            flat = out.reshape(-1)
            for start in range(0, count, _CHUNK):
                stop = min(count, start + _CHUNK)
                draw = rng.standard_normal(stop - start, dtype=np.float32)
                flat[start:stop] = np.abs(draw) if dt.value == "float8_e8m0fnu" else draw  # powers of 2: no sign
            return out
        if dt.value == "bool":
            return rng.integers(0, 2, size=shape, dtype=np.bool_)
        if dt.is_storage:  # int4 / uint4 / int2 / uint2: 0 and 1 fit every one of them
            return rng.integers(0, 2, size=shape, dtype=np.int8).view(np_dtype)  # same bytes: no copy
        return rng.integers(0, 10, size=shape, dtype=np_dtype)
    except (MemoryError, ValueError):  # ValueError: NumPy's "array is too big"
        raise IrflowError(f"{what}: cannot allocate allocating shape {tuple(shape)} of {dt.value} ({human_bytes(nbytes)})") from None


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _load_array_file(path: Path, name: str | None) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CliError(f"input file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:
        raise CliError(f"cannot read {path} as a NumPy .npy/.npz file: {one_line(e)}") from None
    if isinstance(data, np.ndarray):
        if name is None:
            raise CliError(f"-i {path}: a .npy file needs a name: -i NAME={path}")
        return {name: data}
    with data:  # read every array now; the archive may be replaced by -o later
        arrays = {k: data[k] for k in data.files}
    if name is None:
        return arrays
    if name in arrays:
        return {name: arrays[name]}
    if len(arrays) == 1:
        return {name: next(iter(arrays.values()))}
    raise CliError(f"-i {name}={path}: the archive holds {', '.join(arrays)} but no array named {name!r}")


def parse_inputs(specs: list[str] | None, graph: Graph, dims: Mapping[str, int], seed: int = 0,
                 notes: list[str] | None = None) -> dict[str, np.ndarray]:
    """Turn ``-i`` options into feeds: ``NAME=FILE.npy``, ``NAME=FILE.npz``, ``FILE.npz``, ``NAME=random``."""
    notes = notes if notes is not None else []
    if seed < 0:
        raise CliError(f"--seed {seed}: a seed must be a non-negative integer")
    rng = np.random.default_rng(seed)
    known = {v.name for v in graph.inputs}
    feeds: dict[str, np.ndarray] = {}
    for spec in specs or []:
        name, sep, source = spec.partition("=")
        if not sep:
            feeds.update(_load_array_file(Path(spec), None))
            continue
        name = name.strip()
        if name not in known:
            raise CliError(f"-i {spec}: the model has no input {name!r}; its inputs are {_describe_inputs(graph)}")
        if source == "random":
            feeds[name] = random_input(graph, name, dims, rng, notes)
        else:
            feeds.update(_load_array_file(Path(source), name))
    unknown = [k for k in feeds if k not in known]
    if unknown:
        raise CliError(f"the model has no input(s) {', '.join(map(repr, unknown))}; its inputs are {_describe_inputs(graph)}")
    missing = [v.name for v in graph.inputs if v.name not in feeds]
    if missing:
        raise CliError(
            f"missing input(s) {', '.join(map(repr, missing))}; give -i NAME=FILE.npy or -i NAME=random "
            f"(the model's inputs: {_describe_inputs(graph)})"
        )
    for v in graph.inputs:  # symbols fixed by --dim must match what the files hold
        arr = feeds[v.name]
        for d, got in zip(v.type.shape, np.shape(arr)):
            if isinstance(d, str) and d in dims and dims[d] != got:
                raise CliError(f"input '{v.name}': --dim {d}={dims[d]} but the array has {got} on that axis")
    return feeds


# -- comparing ---------------------------------------------------------------------------------

@dataclass
class Diff:
    """How far two arrays are apart, and whether that is within tolerance."""

    max_abs: float
    max_rel: float
    ok: bool
    note: str = ""
    nan_mismatch: int = 0  # positions where exactly one of the two arrays holds NaN


def compare_arrays(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> Diff:
    """Max abs/rel differences of ``a`` and ``b``; NaNs in the same places count as equal."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return Diff(float("inf"), float("inf"), False, f"shapes differ: {a.shape} vs {b.shape}")
    if a.dtype != b.dtype:
        return Diff(float("inf"), float("inf"), False, f"dtypes differ: {a.dtype} vs {b.dtype}")
    if a.size == 0:
        return Diff(0.0, 0.0, True)
    if a.dtype.kind in "biu":
        bad = a != b
        return Diff(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))), 0.0, not bad.any())
    x, y = a.astype(np.float64), b.astype(np.float64)
    nan_x, nan_y = np.isnan(x), np.isnan(y)
    nan_mismatch = int(np.count_nonzero(nan_x != nan_y))
    both_nan = nan_x & nan_y
    same_inf = np.isinf(x) & (x == y)
    diff = np.where(both_nan | same_inf, 0.0, np.abs(x - y))
    diff = np.where(np.isnan(diff), np.inf, diff)
    rel = diff / np.maximum(np.abs(y), np.finfo(np.float64).tiny)
    ok = bool(np.all(diff <= atol + rtol * np.abs(np.where(np.isfinite(y), y, 0.0)))) and not nan_mismatch
    return Diff(float(diff.max()), float(np.where(diff == 0, 0.0, rel).max()), ok, nan_mismatch=nan_mismatch)


def preview(a: np.ndarray, count: int = 6) -> str:
    """A few values of ``a``, flattened, for printing."""
    flat = np.asarray(a).reshape(-1)
    head = np.array2string(flat[:count], precision=5, separator=", ", threshold=count + 1, max_line_width=10_000)
    return head[:-1] + ", ...]" if flat.size > count else head
