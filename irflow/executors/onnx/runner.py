"""Running graphs on onnxruntime: one InferenceSession per graph, on CPU or CUDA.

``OrtRunner`` lowers a graph once, creates its session once, and keeps the per-call path to
what onnxruntime itself needs: the feeds check (skippable) and ``session.run`` with output
names resolved in advance. ``StatefulOrtRunner`` (in ``stateful.py``) adds IO binding for
values that persist between calls (a train step's weights), kept on the device.

Thread settings go through ``OrtOptions``. On a 2-core machine several thread pools in one
process (OpenBLAS, onnxruntime, torch) fight; pin ``intra_op_num_threads`` and consider
``allow_spinning=False`` when onnxruntime shares the process with other compute.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping, Sequence

import numpy as np

from irflow.errors import ExecutorError
from irflow.executors.feeds import check_feeds
from irflow.executors.onnx.device import PROVIDERS, resolve_device
from irflow.ir.dtypes import DType
from irflow.ir.graph import Graph

_OPT_LEVELS = ("disable", "basic", "extended", "all")


@dataclasses.dataclass(frozen=True)
class OrtOptions:
    """Session settings for the ``ort`` executor (hashable: part of the runner cache key).

    - ``intra_op_num_threads``: threads inside one op; 0 = onnxruntime's default (one per
      physical core).
    - ``inter_op_num_threads``: threads across independent ops (used in parallel execution
      mode only); 0 = default.
    - ``allow_spinning``: whether idle intra-op threads spin waiting for work (lower latency,
      but they burn a core that NumPy or torch in the same process may want); None = default (on).
    - ``graph_optimization_level``: "disable", "basic", "extended" or "all" (default).
    - ``opset``: the ONNX opset to export to (None = ``export.DEFAULT_OPSET``, or the least opset the graph needs when that is newer).
    - ``log_severity_level``: onnxruntime's session log level (3 = errors only).

    >>> OrtOptions(intra_op_num_threads=1, allow_spinning=False)   # doctest: +SKIP
    """

    intra_op_num_threads: int = 0
    inter_op_num_threads: int = 0
    allow_spinning: bool | None = None
    graph_optimization_level: str = "all"
    opset: int | None = None
    log_severity_level: int = 3

    def __post_init__(self) -> None:
        for field in ("intra_op_num_threads", "inter_op_num_threads"):
            v = getattr(self, field)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ExecutorError(f"OrtOptions.{field} must be an int >= 0 (0 = onnxruntime's default), got {v!r}")
        if self.graph_optimization_level not in _OPT_LEVELS:
            raise ExecutorError(
                f"OrtOptions.graph_optimization_level must be one of {', '.join(_OPT_LEVELS)}, got {self.graph_optimization_level!r}"
            )

    def session_options(self):
        """The ``onnxruntime.SessionOptions`` these settings describe."""
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = self.log_severity_level
        so.intra_op_num_threads = self.intra_op_num_threads
        so.inter_op_num_threads = self.inter_op_num_threads
        if self.allow_spinning is not None:
            so.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.allow_spinning else "0")
            so.add_session_config_entry("session.inter_op.allow_spinning", "1" if self.allow_spinning else "0")
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.graph_optimization_level]
        return so


def ort_options(options: OrtOptions | None = None, **overrides: Any) -> OrtOptions:
    """``options`` (or the defaults) with keyword ``overrides``; unknown keywords raise ExecutorError.

    >>> ort_options(intra_op_num_threads=2).intra_op_num_threads
    2
    """
    base = options or OrtOptions()
    if not overrides:
        return base
    known = {f.name for f in dataclasses.fields(OrtOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ExecutorError(f"unknown onnxruntime option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return dataclasses.replace(base, **overrides)


def _explain_missing_kernel(graph: Graph, message: str) -> str:
    """For onnxruntime's "Could not find an implementation for Op(ver) node with name 'n'": the
    irflow node and op behind it and its input dtypes, as a prefix to onnxruntime's own text."""
    import re

    found = re.search(r"implementation for (\w+)\((\d+)\) node with name '([^']*)'", message)
    if found is None:
        return ""
    onnx_op, version, onnx_node = found.groups()
    ir_name = onnx_node.split("/")[0]
    node = next((n for n in graph.nodes if n.name == ir_name), None)
    if node is None:
        return f"onnxruntime has no kernel for ONNX {onnx_op}-{version}; "
    types = graph.value_types()
    dtypes = ", ".join(str(types[i].dtype) for i in node.inputs if i in types)
    hint = ""
    if "bfloat16" in dtypes:  # onnxruntime's CPU provider has bfloat16 Cast, and few other kernels
        hint = "onnxruntime's CPU provider has almost no bfloat16 kernels: "
    return (f"onnxruntime has no kernel for ONNX {onnx_op}-{version} on these dtypes ({dtypes}), needed by node "
            f"{node.name} (op {node.op!r}); {hint}run it with executor='numpy' (bfloat16 computed in float32, "
            "rounded once per op) or cast that op's inputs to float32. ")


class OrtRunner:
    """Lowers a graph once and runs it on onnxruntime.

    ``device`` is "auto" (CUDA when onnxruntime can really use it, else CPU, quietly), "cpu"
    or "cuda" (ExecutorError when unusable). Graph initializers live inside the session, so
    on CUDA they are copied to the device once, when the session is made.

    >>> OrtRunner(g, device="cpu", options=OrtOptions(intra_op_num_threads=1)).run({"x": x})   # doctest: +SKIP
    """

    def __init__(self, graph: Graph, *, device: str = "auto", options: OrtOptions | None = None):
        import onnxruntime as ort

        from irflow.executors.onnx.export import to_model

        self.graph = graph
        self.options = options or OrtOptions()
        self.device = resolve_device(device)
        self.model = to_model(graph, opset=self.options.opset)
        try:
            self.session = ort.InferenceSession(
                self.model.SerializeToString(), self.options.session_options(), providers=PROVIDERS[self.device]
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises several unrelated types
            raise ExecutorError(f"onnxruntime rejected graph {graph.name!r}: {_explain_missing_kernel(graph, str(e))}{e}") from None
        if self.device == "cuda" and "CUDAExecutionProvider" not in self.session.get_providers():
            raise ExecutorError(f"onnxruntime did not place graph {graph.name!r} on CUDA (providers: {self.session.get_providers()})")
        # A run-time failure comes back as an exception (ort_failure); onnxruntime's own log line
        # of the same error would only repeat it on stderr.
        self.run_options = ort.RunOptions()
        self.run_options.log_severity_level = 4
        self.output_names: list[str] = list(graph.output_names)
        self.input_names: list[str] = list(graph.input_names)
        # For the fast feeds check: per input, its name, NumPy dtype, rank and dims.
        self._expect = [(v.name, v.type.dtype.numpy, v.type.rank, v.type.shape) for v in graph.inputs]
        self._has_symbols = any(isinstance(d, str) for v in graph.inputs for d in v.type.shape)
        # Inputs and outputs onnxruntime's Python API cannot pass as NumPy arrays but can as raw
        # bytes (OrtValues): bfloat16 and the byte-wide float8 dtypes. int4/int2/float4 are
        # packed by onnxruntime, two or four to a byte: those stay an ExecutorError.
        self._bytewise = {v.name: v.type.dtype for v in (*graph.inputs, *graph.outputs) if v.type.dtype in _BYTEWISE}

    def _feeds_ok(self, feeds: Mapping[str, Any]) -> bool:
        """True when ``feeds`` are exactly the inputs as arrays of the right dtype and shape.

        The common case, checked in a few attribute reads per input; anything else (a list, a
        scalar, a wrong dtype, ...) goes through ``check_feeds``, which converts or explains.
        """
        if len(feeds) != len(self._expect):
            return False
        symbols: dict[str, int] | None = {} if self._has_symbols else None
        for name, dtype, rank, dims in self._expect:
            a = feeds.get(name)
            if type(a) is not np.ndarray or a.dtype != dtype or a.ndim != rank:
                return False
            for want, got in zip(dims, a.shape):
                if want is None:
                    continue
                if type(want) is int:
                    if want != got:
                        return False
                elif symbols.setdefault(want, got) != got:
                    return False
        return True

    def run(self, feeds: Mapping[str, Any], *, check: bool = True, outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run on ``feeds`` (input name -> array); return outputs by name (all, or ``outputs``).

        ``check=False`` skips the feeds check (names, dtypes, shapes) for callers that already
        made it; onnxruntime then reports bad feeds itself (still as an ExecutorError).
        """
        arrays = feeds if not check or self._feeds_ok(feeds) else check_feeds(self.graph, feeds)
        names = self.output_names if outputs is None else list(outputs)
        try:
            if self._bytewise:
                values = self._run_bytewise(names, arrays)
            else:
                values = self.session.run(names, arrays, self.run_options)
        except Exception as e:  # noqa: BLE001
            if outputs is not None and set(names) - set(self.output_names):
                bad = sorted(set(names) - set(self.output_names))
                raise ExecutorError(f"graph {self.graph.name!r} has no output(s) {', '.join(bad)}; outputs are {', '.join(self.output_names)}") from None
            raise ort_failure(self.graph, e) from None
        return dict(zip(names, values))

    __call__ = run

    def _run_bytewise(self, names: list[str], arrays: Mapping[str, Any]) -> list[np.ndarray]:
        """session.run through OrtValues: ml_dtypes feeds go in as their bytes with the ONNX
        type named, such outputs come back as a copy of onnxruntime's buffer."""
        import ctypes

        import onnxruntime as ort

        from irflow.executors.onnx.context import ONNX_DTYPE

        feeds = {}
        for k, a in arrays.items():
            d = self._bytewise.get(k)
            a = np.ascontiguousarray(a)
            if d is None:
                feeds[k] = ort.OrtValue.ortvalue_from_numpy(a)
            else:
                raw = a.view(np.uint16 if a.dtype.itemsize == 2 else np.uint8)
                feeds[k] = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(raw, ONNX_DTYPE[d])
        values = []
        for name, v in zip(names, self.session.run_with_ort_values(names, feeds, self.run_options)):
            d = self._bytewise.get(name)
            if d is None:
                values.append(v.numpy())
                continue
            nbytes = v.tensor_size_in_bytes()
            raw = np.frombuffer((ctypes.c_uint8 * nbytes).from_address(v.data_ptr()), np.uint8) if nbytes else np.empty(0, np.uint8)
            values.append(raw.copy().view(d.numpy).reshape(v.shape()))
        return values


_BYTEWISE = frozenset({DType.bfloat16, DType.float8_e4m3fn, DType.float8_e4m3fnuz, DType.float8_e5m2,
                       DType.float8_e5m2fnuz, DType.float8_e8m0fnu})

_ORT_NODE = re.compile(r"running (\w+) node\. Name:'([^']*)'")


def ort_failure(graph: Graph, e: Exception) -> ExecutorError:
    """onnxruntime's run-time error as irflow's: the same error the NumPy interpreter raises for
    an integer division or modulo by zero and for a failed ``check_numerics``; otherwise an
    ExecutorError quoting onnxruntime."""
    from irflow.errors import NumericsError, integer_division_by_zero

    text = str(e)
    found = _ORT_NODE.search(text)
    if found:
        onnx_op, onnx_name = found.groups()
        ir_name = onnx_name.split("/")[0]
        node = _find_node(graph, ir_name)
        if "Integer division by zero" in text or "Integer modulo by zero" in text:
            op = node.op if node is not None else ("mod" if onnx_op == "Mod" else "div")
            return integer_division_by_zero(ir_name, op)
        if node is not None and node.op == "check_numerics" and onnx_name.endswith(("/assert_no_nan", "/assert_no_inf")):
            from irflow.executors.numpy.kernels.special import numerics_message

            kind = "NaN" if onnx_name.endswith("nan") else "Inf"
            return NumericsError(numerics_message(node.attrs["message"], kind))
    # int4 / int2 / float4 arrays: onnxruntime packs them, and its Python API takes none
    packed = [v for v in (*graph.inputs, *graph.outputs) if v.type.dtype.is_storage and v.type.dtype not in _BYTEWISE]
    if ("Numpy_type" in text or "No corresponding Numpy type" in text) and packed:
        names = ", ".join(f"{v.name!r} ({v.type.dtype.value})" for v in packed)
        return ExecutorError(
            f"graph {graph.name!r}: onnxruntime's Python API cannot take or return packed 4-bit and 2-bit arrays "
            f"({names}); feed and fetch float32 or int8 (cast inside the graph), or run with executor='numpy'")
    return ExecutorError(f"onnxruntime failed on graph {graph.name!r}: {text}")


def _find_node(graph: Graph, name: str):
    """The node called ``name`` in ``graph`` or any graph nested in its nodes' attrs."""
    for node in graph.nodes:
        if node.name == name:
            return node
        for value in node.attrs.values():
            if isinstance(value, Graph):
                hit = _find_node(value, name)
                if hit is not None:
                    return hit
    return None
