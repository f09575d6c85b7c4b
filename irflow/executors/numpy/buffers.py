"""Buffer reuse for the NumPy interpreter, as XLA's donation and onnxruntime's arena do.

Fresh megabyte-sized NumPy results can cost more than the arithmetic: glibc hands such blocks
back to the OS and page-faults them in again on the next allocation (``w - lr * g`` on a
784x256 weight: 61 us into a fresh array, 19 us in place; a small CNN's training step took
~800 faults, about 1 us each). So for kernels that take ``out=`` (every ufunc, and kernels
registered with ``@kernel(name, out=True)``) the interpreter offers a buffer:

- from a pool: large values (>= 64 KiB) that die go to a per-interpreter pool keyed by shape
  and dtype, kept across runs; a node whose static output type has a key takes one;
- else by donation: an elementwise ufunc node writes into an input that dies at that node and
  has exactly the output's static type.

A buffer is reused only if nobody else can see it. A reference count check rules out feeds,
initializers, values held under two names, arrays that live views look into, and views of
shared memory. Per key, the pool plus the live values never exceed the most values of that
key the graph holds alive at once, so peak memory does not grow; between runs the pool keeps
the graph's large intermediates, as an arena would.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from irflow.executors.numpy.kernels import KERNELS
from irflow.ir.graph import Graph, Node

POOL_MIN_BYTES = 64 * 1024  # smaller blocks come from malloc's bins without page faults

PoolKey = tuple  # (shape tuple, numpy dtype)


def accepts_out(fn: Any) -> bool:
    """Whether a kernel takes ``out=``: a NumPy ufunc, or registered with ``@kernel(name, out=True)``.

    >>> accepts_out(KERNELS["add"]), accepts_out(KERNELS["reshape"])
    (True, False)
    """
    return isinstance(fn, np.ufunc) or getattr(fn, "accepts_out", False)


def pool_key(types: dict, name: str) -> PoolKey | None:
    """The pool key of a value with a static type of at least POOL_MIN_BYTES, else None."""
    t = types.get(name)  # None for "", an omitted optional input
    if t is None or not t.is_static:
        return None
    dtype = t.dtype.numpy
    if dtype.kind not in "fiub" or int(np.prod(t.shape, dtype=np.int64)) * dtype.itemsize < POOL_MIN_BYTES:
        return None
    return tuple(t.shape), dtype


def request_key(types: dict, node: Node) -> PoolKey | None:
    """The pool key a node may take its output buffer from, or None."""
    fn = KERNELS[node.op]
    if len(node.outputs) != 1 or not accepts_out(fn) or "out" in node.attrs:
        return None
    out = node.outputs[0].type
    if isinstance(fn, np.ufunc) and any(types[name].dtype != out.dtype for name in node.inputs if name):
        return None  # comparisons and mixed dtypes: out= must never cast
    return pool_key(types, node.outputs[0].name)


def donor_index(graph: Graph, types: dict, node: Node, dying: list[str]) -> int:
    """The input position whose buffer this node may write its output into, or -1.

    Only for ufunc kernels (their ``out=`` gives bit-identical results for an output of the
    input's own dtype), attr-free nodes, and an input that dies here with exactly the output's
    static type. Whether the buffer is really unshared is checked at run time (``unshared``).
    """
    if not isinstance(KERNELS.get(node.op), np.ufunc) or node.attrs or len(node.outputs) != 1:
        return -1
    out = node.outputs[0].type
    if not out.is_static:
        return -1
    for i, name in enumerate(node.inputs):
        if name in dying and name not in graph.input_names and types.get(name) == out \
                and node.inputs.count(name) == 1:
            return i
    return -1


def max_alive(graph: Graph, frees: list[list[str]], value_keys: dict[str, PoolKey]) -> dict[PoolKey, int]:
    """Per pool key, the most values of that key alive at once during a run (``value_keys``:
    the pool key of each value that has one)."""
    alive = dict.fromkeys(value_keys.values(), 0)
    most = dict(alive)
    for name in graph.input_names:
        if name in value_keys:
            alive[value_keys[name]] += 1
    for node, dying in zip(graph.nodes, frees):
        for v in node.outputs:
            k = value_keys.get(v.name)
            if k is not None:
                alive[k] += 1
                most[k] = max(most[k], alive[k])
        for name in dying:
            if name in value_keys:
                alive[value_keys[name]] -= 1
    return most


def unshared(a: Any) -> bool:
    """True when only the interpreter (env and the args list) holds ``a`` and ``a`` owns its
    memory, or alone views an array nobody else holds (``x.view(dtype)`` results)."""
    if type(a) is not np.ndarray or not a.flags.writeable or sys.getrefcount(a) != _REFS_OF_ARG:
        return False
    base = a.base
    return base is None or (type(base) is np.ndarray and base.base is None
                            and sys.getrefcount(base) == _REFS_OF_SOLE_BASE)


def dead(a: Any, key: PoolKey) -> bool:
    """True for a value just popped from env that nothing else holds, owning C-contiguous memory
    of the key's shape and dtype."""
    return (type(a) is np.ndarray and a.base is None and a.shape == key[0] and a.dtype == key[1]
            and a.flags.c_contiguous and a.flags.writeable and sys.getrefcount(a) == _REFS_OF_POPPED)


def _calibrate() -> tuple[int, int, int]:
    """The reference counts that mean "unshared", measured in the situations of
    Interpreter.run (an env dict and an args list hold the value; a popped value in a local)
    rather than assumed, so a Python that counts differently makes reuse rarer, never wrong."""
    counts = []

    def probe(a: Any) -> None:
        counts.append(sys.getrefcount(a))
        base = a.base
        counts.append(sys.getrefcount(base))

    def probe_popped(a: Any) -> None:
        counts.append(sys.getrefcount(a))

    env = {"v": np.empty(4, np.uint8).view(np.float32), "w": np.empty(1)}
    args = [env["v"]]
    probe(args[0])
    value = env.pop("w")
    probe_popped(value)
    return counts[0], counts[1], counts[2]


_REFS_OF_ARG, _REFS_OF_SOLE_BASE, _REFS_OF_POPPED = _calibrate()
