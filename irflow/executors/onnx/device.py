"""Choosing where onnxruntime runs: ``device="auto"|"cpu"|"cuda"``, and the quiet CUDA probe.

onnxruntime-gpu lists ``CUDAExecutionProvider`` as *available* whenever the provider library
is installed, even on a machine with no GPU or no CUDA libraries. Asking for it there makes
onnxruntime log a red "Failed to load library ... libcublasLt.so" error from C++ (straight to
file descriptor 2) and fall back to CPU. So availability is decided by a probe that really
loads the provider, with every channel that could print silenced:

1. ``CUDAExecutionProvider`` must be listed by ``get_available_providers()``;
2. the provider's shared library must load with ``ctypes`` (a missing ``libcublasLt`` or
   ``libcudnn`` fails here, quietly, with the reason);
3. a one-node session created with ``providers=["CUDAExecutionProvider"]`` must really keep
   that provider (``session.get_providers()``), with onnxruntime's logger at FATAL only and
   the process's stdout/stderr file descriptors pointed at /dev/null meanwhile.

The answer (and the reason when it is "no") is computed once per process and cached.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from typing import Iterator

from irflow.errors import ExecutorError

from irflow.executors.device_names import DEVICES, canonical_device  # noqa: F401  (DEVICES re-exported)
PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}

_ORT_FATAL = 4  # onnxruntime severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal
_ORT_DEFAULT = 2  # onnxruntime's own default severity for its process-wide logger
_probe_result: tuple[bool, str] | None = None


@contextlib.contextmanager
def silenced_output() -> Iterator[None]:
    """Send everything written to stdout/stderr, from Python or from C/C++, to /dev/null.

    Used only around the one-time CUDA probe. Python's ``sys.stdout``/``sys.stderr`` are
    redirected too (they may be buffered objects that are not the file descriptors).
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved: list[tuple[int, int]] = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
            except OSError:  # no such descriptor (embedded interpreters): nothing to silence
                pass
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _probe_model_bytes() -> bytes:
    import onnx
    from onnx import helper

    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "cuda_probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model.SerializeToString()


def _probe_cuda() -> tuple[bool, str]:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False, (
            "this onnxruntime build has no CUDAExecutionProvider "
            f"(installed: onnxruntime {ort.__version__}, providers {ort.get_available_providers()}); "
            "install the GPU build with `pip install irflow[cuda]`"
        )
    with silenced_output():
        # CUDA/cuDNN libraries installed as pip wheels (onnxruntime-gpu[cuda,cudnn]) are found
        # only after preload_dlls(); it may print, hence inside the silenced block.
        with contextlib.suppress(Exception):
            ort.preload_dlls()
        lib = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
        if lib.exists():
            import ctypes

            try:
                ctypes.CDLL(str(lib))
            except OSError as e:
                return False, f"onnxruntime's CUDA provider cannot load: {e}"
        ort.set_default_logger_severity(_ORT_FATAL)
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = _ORT_FATAL
            session = ort.InferenceSession(_probe_model_bytes(), opts, providers=["CUDAExecutionProvider"])
            providers = session.get_providers()
        except Exception as e:  # noqa: BLE001 - any failure means "no CUDA"; the reason is kept
            return False, f"creating a CUDA session failed: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}"
        finally:
            ort.set_default_logger_severity(_ORT_DEFAULT)
    if "CUDAExecutionProvider" not in providers:
        return False, "onnxruntime fell back to CPU when asked for CUDA (no usable GPU, driver or CUDA libraries)"
    return True, "CUDA is usable"


def cuda_status() -> tuple[bool, str]:
    """``(usable, reason)``: whether onnxruntime can really run on CUDA here, probed once, quietly.

    >>> ok, why = cuda_status()   # doctest: +SKIP
    """
    global _probe_result
    if _probe_result is None:
        _probe_result = _probe_cuda()
    return _probe_result


def cuda_available() -> bool:
    """True when onnxruntime can really run on CUDA in this process (see ``cuda_status``)."""
    return cuda_status()[0]


def resolve_device(device: str) -> str:
    """Turn ``"auto"|"cpu"|"cuda"`` into the device to use: ``"cpu"`` or ``"cuda"``.

    "auto" takes CUDA only when the probe says it works, else CPU, silently. "cuda" when CUDA
    cannot be used raises ExecutorError with the reason.

    >>> resolve_device("cpu")
    'cpu'
    """
    device = canonical_device(device)  # "CPU", "/GPU:0", "cuda:0", ... as TF and PyTorch spell them
    if device == "cpu":
        return "cpu"
    ok, reason = cuda_status()
    if device == "auto":
        return "cuda" if ok else "cpu"
    if not ok:
        raise ExecutorError(
            f"device='cuda' was asked for but onnxruntime cannot use CUDA on this machine: {reason}. "
            "Use device='auto' to fall back to CPU, or see docs/onnx-export.md (GPU setup)."
        )
    return "cuda"
