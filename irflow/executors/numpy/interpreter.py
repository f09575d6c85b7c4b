"""The reference executor: runs a Graph node by node with the NumPy kernels.

Like ``jax.core.eval_jaxpr`` and ``torch.fx.Interpreter``: an environment dict, one method per
step that subclasses may override (``run_node``), and each value dropped after its last use so
a long chain holds a few buffers, not one per node. Large results reuse dead buffers (a pool
kept across runs, and donation of dying inputs to elementwise nodes): see ``buffers.py``.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from irflow.errors import ExecutorError, IrflowError, NumericsError, UnsupportedOpError, integer_division_by_zero
from irflow.executors.feeds import check_feeds
from irflow.executors.numpy import buffers
from irflow.executors.numpy.kernels import KERNELS
from irflow.executors.numpy.kernels import special as special_kernels
from irflow.ir.graph import Graph, Node

# Set by irflow.debugging.enable_check_numerics(): every Interpreter (nested ones included)
# then checks each node's outputs as if built with check_numerics=True.
CHECK_NUMERICS = False


class Interpreter:
    """Runs one graph. Build once, call ``run`` many times.

    >>> outs = Interpreter(graph).run({"x": x})          # doctest: +SKIP
    >>> Interpreter(graph, profile=True).run(feeds); interp.timings   # doctest: +SKIP
    """

    def __init__(self, graph: Graph, *, profile: bool = False, check_numerics: bool = False):
        self.graph = graph
        self.profile = profile
        self.check_numerics = check_numerics
        self.timings: list[tuple[str, str, float]] = []  # (node name, op, seconds), when profiling
        missing = sorted({n.op for n in graph.nodes if n.op not in KERNELS})
        if missing:
            raise UnsupportedOpError(f"graph {graph.name!r}: no NumPy kernel for op(s) {', '.join(missing)}")
        # The plan: per node, its kernel, argument names and the values to drop after it runs.
        keep = set(graph.output_names)
        last_use: dict[str, int] = {}
        for i, node in enumerate(graph.nodes):
            for name in node.inputs:
                last_use[name] = i
        frees: list[list[str]] = [[] for _ in graph.nodes]
        for name, i in last_use.items():
            if name not in keep and name not in graph.initializers:
                frees[i].append(name)
        for i, node in enumerate(graph.nodes):  # outputs nobody reads are dropped at once
            frees[i].extend(v.name for v in node.outputs if v.name not in last_use and v.name not in keep)
        types = graph.value_types()
        keys = [buffers.request_key(types, node) for node in graph.nodes]
        # Buffer reuse (buffers.py): a pool of dead large buffers per (shape, dtype), each
        # holding, with the live values of its key, at most as many as the graph ever holds.
        self._pool: dict[tuple, list[np.ndarray]] = {k: [] for k in keys if k is not None}
        value_keys = {name: k for name in types if (k := buffers.pool_key(types, name)) in self._pool}
        self._pool_caps = buffers.max_alive(graph, frees, value_keys)
        self._input_keys = [value_keys[n] for n in graph.input_names if n in value_keys]
        self._plan = [
            (node, KERNELS[node.op], node.inputs, tuple(v.name for v in node.outputs), node.attrs,
             tuple((name, value_keys.get(name)) for name in f), buffers.donor_index(graph, types, node, f), key,
             tuple(value_keys[v.name] for v in node.outputs if v.name in value_keys))
            for node, f, key in zip(graph.nodes, frees, keys)
        ]

    def run(self, feeds: Mapping[str, Any], *, check: bool = True) -> dict[str, np.ndarray]:
        """Run the graph on ``feeds`` (name -> array); return outputs by name."""
        env: dict[str, Any] = dict(self.graph.initializers)
        env.update(check_feeds(self.graph, feeds) if check else feeds)
        env[""] = None  # an omitted optional input
        profile, check_numerics = self.profile, self.check_numerics or CHECK_NUMERICS
        if check_numerics:
            self._check_sources(env)
        if profile:
            self.timings = []
        # Without hooks, kernels are called right here: a run_node frame per node costs ~0.4 us.
        direct = not profile and type(self).run_node is Interpreter.run_node
        run_node, unshared, dead = self.run_node, buffers.unshared, buffers.dead
        pool, caps = self._pool, self._pool_caps
        alive = dict.fromkeys(pool, 0)  # live values per pool key
        for k in self._input_keys:
            alive[k] += 1
        for node, fn, ins, outs, attrs, frees, donor, key, out_keys in self._plan:
            args = [env[name] for name in ins]
            out = None
            if key is not None and pool[key]:  # first the pool, so that it drains
                try:
                    out = pool[key].pop()
                except IndexError:  # another thread running this interpreter took the last one
                    pass
            if out is None and donor >= 0 and unshared(args[donor]):
                out = args[donor]
            if out is not None:
                attrs = {**attrs, "out": out}
            if direct:
                try:
                    results = fn(*args, **attrs)
                except IrflowError:
                    raise
                except Exception as e:
                    raise _node_failure(node, args, e) from e
            elif profile:
                t0 = time.perf_counter()
                results = run_node(node, fn, args, attrs)
                self.timings.append((node.name, node.op, time.perf_counter() - t0))
            else:
                results = run_node(node, fn, args, attrs)
            if len(outs) == 1:
                env[outs[0]] = results
            else:
                env.update(zip(outs, results))
            # Drop our own references, so that env alone holds what may be reused.
            results = args = out = None
            if check_numerics:
                self._check_finite(node, outs, env)
            for k in out_keys:
                alive[k] += 1
            for name, k in frees:
                if k is None:
                    del env[name]
                    continue
                value = env.pop(name)
                alive[k] -= 1
                if len(pool[k]) + alive[k] < caps[k] and dead(value, k):
                    pool[k].append(value)
                value = None
        return {name: env[name] for name in self.graph.output_names}

    def run_node(self, node: Node, fn: Any, args: list, attrs: dict) -> Any:
        """Run one node. Subclasses override this to observe or replace kernels."""
        try:
            return fn(*args, **attrs)
        except IrflowError:
            raise
        except Exception as e:
            raise _node_failure(node, args, e) from e

    def _check_sources(self, env: dict) -> None:
        """NaN/Inf already in a feed or an initializer is reported as such, not blamed on a node."""
        for name in (*self.graph.input_names, *self.graph.initializers):
            a = env.get(name)
            if isinstance(a, np.ndarray) and _is_float(a) and not np.isfinite(a).all():
                kind = "graph input" if name in self.graph.input_names else "initializer"
                raise NumericsError(f"check_numerics: {kind} %{name} {_type_of(a)} holds {_count_nonfinite(a)}")

    def _check_finite(self, node: Node, outs: tuple, env: dict) -> None:
        for name in outs:
            a = env[name]
            if isinstance(a, np.ndarray) and _is_float(a) and not np.isfinite(a).all():
                ins = ", ".join(f"%{n}: {_type_of(env[n])}" for n in node.inputs if n and isinstance(env.get(n), np.ndarray))
                kinds = " and ".join(k for k, f in (("NaN", np.isnan), ("Inf", np.isinf)) if f(a).any())
                raise NumericsError(
                    f"check_numerics: node {node.name} ({node.op}) produced {kinds} in output %{name} "
                    f"{_type_of(a)} ({_count_nonfinite(a)}); its inputs ({ins or 'none'}) were finite"
                )

    def profile_table(self) -> str:
        """The per-node timings of the last profiled run, slowest first, as text."""
        rows = sorted(self.timings, key=lambda r: -r[2])
        total = sum(r[2] for r in rows) or 1.0
        lines = [f"{'node':<32} {'op':<18} {'us':>10} {'%':>6}"]
        lines += [f"{n:<32} {op:<18} {t * 1e6:>10.1f} {100 * t / total:>6.1f}" for n, op, t in rows]
        return "\n".join(lines)


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" or a.dtype.name == "bfloat16"  # by name: no ml_dtypes import needed


def _type_of(a: np.ndarray) -> str:
    return f"{a.dtype}{list(a.shape)}"


def _count_nonfinite(a: np.ndarray) -> str:
    nan = int(np.count_nonzero(np.isnan(a)))
    inf = int(np.count_nonzero(np.isinf(a)))
    parts = [f"{nan} NaN" if nan else "", f"{inf} Inf" if inf else ""]
    return " and ".join(p for p in parts if p) + f" of {a.size} values"


def _node_failure(node: Node, args: list, e: Exception) -> ExecutorError:
    if type(e) is ZeroDivisionError and node.op in ("div", "mod"):  # the kernels check their divisor
        return integer_division_by_zero(node.name, node.op)
    shapes = ", ".join(f"{a.dtype}{list(a.shape)}" if isinstance(a, np.ndarray) else repr(a) for a in args)
    return ExecutorError(f"node {node.name} ({node.op}) failed on inputs ({shapes}): {type(e).__name__}: {e}")


# The nested-graph kernels (call, cond, scan, while_loop) run their bodies with this class.
special_kernels.set_interpreter_class(Interpreter)
