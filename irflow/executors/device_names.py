"""Device strings as TensorFlow and PyTorch users write them, mapped to irflow's three names.

irflow's devices are ``"auto"``, ``"cpu"`` and ``"cuda"``. Accepted spellings, in any case:

- PyTorch: ``"cpu"``, ``"cuda"``, ``"cuda:0"``;
- TensorFlow: ``"CPU"``, ``"GPU"``, ``"/CPU:0"``, ``"/GPU:0"``, ``"/device:GPU:0"``, and a full
  name such as ``"/job:localhost/replica:0/task:0/device:GPU:0"`` (its device part is used);
- ``"gpu"`` means ``"cuda"`` (the only GPU onnxruntime is asked for).

Only device index 0 exists for now (one GPU per process): ``"cuda:1"`` is an ExecutorError
naming the string, not a silent run on GPU 0. This module imports nothing heavy, so every
layer that takes a ``device=`` can normalize it early.
"""
from __future__ import annotations

from irflow.errors import ExecutorError

DEVICES = ("auto", "cpu", "cuda")
_ALIASES = {"auto": "auto", "cpu": "cpu", "cuda": "cuda", "gpu": "cuda"}
_SPELLINGS = "'auto', 'cpu', 'cuda', 'gpu', 'cpu:0', 'cuda:0', '/GPU:0', '/device:GPU:0'"


def canonical_device(device: str) -> str:
    """``"auto"``, ``"cpu"`` or ``"cuda"`` for a TensorFlow or PyTorch device string.

    >>> [canonical_device(d) for d in ("CPU", "cpu:0", "/GPU:0", "/device:GPU:0", "cuda:0", "gpu")]
    ['cpu', 'cpu', 'cuda', 'cuda', 'cuda', 'cuda']
    """
    if device in DEVICES:  # the common case, first and cheap
        return device
    if not isinstance(device, str):
        raise ExecutorError(f"device must be a string such as {_SPELLINGS}; got {device!r}")
    text = device.strip().lower()
    if "device:" in text:  # TensorFlow's full names: /job:.../device:GPU:0
        text = text.rsplit("device:", 1)[1]
    text = text.lstrip("/")
    name, _, index = text.partition(":")
    canonical = _ALIASES.get(name)
    if canonical is None or (index and not index.isdigit()):
        raise ExecutorError(f"unknown device {device!r}; use one of {_SPELLINGS}")
    if index and int(index) != 0:
        raise ExecutorError(f"device {device!r}: only device 0 is supported (one GPU per process); "
                            f"use {name}:0 or set CUDA_VISIBLE_DEVICES to pick the GPU")
    if canonical == "auto" and index:
        raise ExecutorError(f"unknown device {device!r}: 'auto' takes no index")
    return canonical
