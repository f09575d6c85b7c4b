"""Keeping state on the device between calls: IO binding with ping-pong buffers.

A traced train step is a pure graph: it takes the weights as inputs and returns their new
values as outputs. Fed naively, every step copies every weight to the device and back. Here
each state input gets two device buffers (OrtValues), A and B, and two pre-made IO bindings:

    binding 0: state inputs read A, state-update outputs write B
    binding 1: state inputs read B, state-update outputs write A

Steps alternate between them, so per step only the batch goes in (``bind_cpu_input``) and only
the outputs asked for come back (bound to CPU); the weights never leave the device and no
buffer is allocated per step. The same logic runs on CPU (IO binding works there too), which
is how the tests hold it to the NumPy executor.

>>> r = StatefulOrtRunner(step, state={"w": "w_new"}, fetch=["loss"], device="auto")  # doctest: +SKIP
>>> r.load_state({"w": w0}); loss = r.run({"x": xb, "y": yb})["loss"]                  # doctest: +SKIP
>>> r.state_numpy()["w"]                                                               # doctest: +SKIP
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Mapping, Sequence

import numpy as np

from irflow.errors import DTypeError, ExecutorError, ShapeError
from irflow.executors.feeds import check_feeds
from irflow.executors.onnx.runner import OrtOptions, OrtRunner
from irflow.ir.graph import Graph


class StatefulOrtRunner:
    """Runs ``graph`` repeatedly with some inputs kept on the device between calls.

    - ``state``: state input name -> name of the output holding its next value, or None for
      state that is only read (weights of an inference graph fed as inputs).
    - ``fetch``: outputs returned by ``run`` (default: every output that is not a state update).
    - ``device``, ``options``: as for ``OrtRunner``.

    Call ``load_state`` before the first ``run`` (and whenever the host copy changed);
    ``state_numpy`` copies the current state back to the host.
    """

    def __init__(
        self,
        graph: Graph,
        state: Mapping[str, str | None],
        *,
        fetch: Sequence[str] | None = None,
        device: str = "auto",
        options: OrtOptions | None = None,
        runner: OrtRunner | None = None,
    ):
        import onnxruntime as ort

        self.runner = runner or OrtRunner(graph, device=device, options=options)
        self.graph = graph = self.runner.graph
        self.device = self.runner.device
        types = {v.name: v.type for v in graph.inputs}
        out_types = {v.name: v.type for v in graph.outputs}
        self.state = dict(state)
        for name, update in self.state.items():
            if name not in types:
                raise ExecutorError(f"graph {graph.name!r}: state {name!r} is not a graph input; inputs are {', '.join(types)}")
            t = types[name]
            if not t.is_static:
                raise ShapeError(f"graph {graph.name!r}: state input {name!r} must have a static shape to stay on the device, has {t}")
            if update is None:
                continue
            if update not in out_types:
                raise ExecutorError(f"graph {graph.name!r}: state update {update!r} of {name!r} is not a graph output; outputs are {', '.join(out_types)}")
            if out_types[update] != t:
                raise ShapeError(f"graph {graph.name!r}: state {name!r} is {t} but its update {update!r} is {out_types[update]}")
        updates = [u for u in self.state.values() if u is not None]
        if len(set(updates)) != len(updates):
            raise ExecutorError(f"graph {graph.name!r}: two state inputs name the same update output in {self.state}")
        self.fetch = list(fetch) if fetch is not None else [n for n in graph.output_names if n not in updates]
        bad = [n for n in self.fetch if n not in out_types or n in updates]
        if bad:
            raise ExecutorError(f"graph {graph.name!r}: cannot fetch {', '.join(bad)} (state updates are read with state_numpy()); outputs are {', '.join(out_types)}")
        # The batch inputs, checked per call like any feeds (a view of the graph without state).
        self._batch_view = SimpleNamespace(name=graph.name, inputs=tuple(v for v in graph.inputs if v.name not in self.state))
        self._batch_names = [v.name for v in self._batch_view.inputs]

        device_type = "cuda" if self.device == "cuda" else "cpu"
        session = self.runner.session

        def buffer(name):
            t = types[name]
            return ort.OrtValue.ortvalue_from_shape_and_type(list(t.shape), t.dtype.numpy, device_type, 0)

        # Two buffers per updated state (ping-pong), one per read-only state.
        self._buffers: dict[str, list] = {n: [buffer(n), buffer(n)] if u is not None else [buffer(n)] for n, u in self.state.items()}
        self._bindings = []
        for phase in (0, 1):
            b = session.io_binding()
            for name, update in self.state.items():
                bufs = self._buffers[name]
                b.bind_ortvalue_input(name, bufs[phase % len(bufs)])
                if update is not None:
                    b.bind_ortvalue_output(update, bufs[1 - phase])
            for name in self.fetch:
                b.bind_output(name, "cpu")
            self._bindings.append(b)
        # get_outputs() lists outputs in binding order: the updates first, then the fetches.
        self._fetch_slots = [len(updates) + i for i in range(len(self.fetch))]
        self._phase = 0
        self._loaded: set[str] = set()
        # Reading state back: CPU buffers are host memory (``OrtValue.numpy()``); device
        # buffers are copied out through the last binding (``copy_outputs_to_cpu``), except
        # values loaded since then, whose host copy is kept.
        self._host_readable = self.device == "cpu"
        self._host_copy: dict[str, np.ndarray] = {}
        self._last_binding = None
        self.variables: dict[str, Any] = {}  # input name -> Variable, set by for_concrete_function

    @classmethod
    def for_concrete_function(cls, cf: Any, *, device: str = "auto", options: OrtOptions | None = None) -> "StatefulOrtRunner":
        """A runner for a traced ``irf.function`` (a ConcreteFunction): the Variables it reads are
        the state (updated by the values it assigns), its results are fetched. The Variables'
        current values are loaded at once; ``push_variables()`` writes the state back to them.

        >>> r = StatefulOrtRunner.for_concrete_function(step.get_concrete_function(*specs), device="auto")  # doctest: +SKIP
        >>> for xb, yb in data: loss = r.run({"x": xb, "y": yb})                                          # doctest: +SKIP
        >>> r.push_variables()                                                                             # doctest: +SKIP
        """
        reads = {id(var): name for name, var in cf.variable_inputs}
        writes = {id(var): name for name, var in cf.variable_outputs}
        write_only = [getattr(var, "name", name) for name, var in cf.variable_outputs if id(var) not in reads]
        if write_only:
            raise ExecutorError(
                f"function {cf.name!r}: Variable(s) {', '.join(map(repr, write_only))} are assigned but never read; "
                "the stateful runner keeps read-and-updated state only (run the function itself instead)"
            )
        state = {name: writes.get(id(var)) for name, var in cf.variable_inputs}
        runner = cls(cf.graph, state, fetch=list(cf.result_outputs), device=device, options=options)
        runner.variables = {name: var for name, var in cf.variable_inputs}
        runner.pull_variables()
        return runner

    def pull_variables(self) -> None:
        """Load the current values of the Variables (``for_concrete_function``) into the state."""
        self.load_state({name: var.numpy() for name, var in self.variables.items()})

    def push_variables(self) -> None:
        """Assign the current state to the Variables (one copy to the host per Variable)."""
        for name, value in self.state_numpy().items():
            self.variables[name].assign(value)

    def load_state(self, values: Mapping[str, Any]) -> None:
        """Copy host arrays into the current device buffers of the named state inputs."""
        types = {v.name: v.type for v in self.graph.inputs}
        for name, value in values.items():
            if name not in self.state:
                raise ExecutorError(f"graph {self.graph.name!r}: {name!r} is not a state input; state is {', '.join(self.state)}")
            arr = np.asarray(value)
            t = types[name]
            if arr.dtype != t.dtype.numpy:
                raise DTypeError(f"graph {self.graph.name!r}: state {name!r} must be {t.dtype.value}, got {arr.dtype}")
            if arr.shape != t.shape:
                raise ShapeError(f"graph {self.graph.name!r}: state {name!r} must have shape {t.shape}, got {arr.shape}")
            bufs = self._buffers[name]
            bufs[self._phase % len(bufs)].update_inplace(np.ascontiguousarray(arr))
            self._loaded.add(name)
            self._host_copy[name] = np.array(arr)

    def state_numpy(self) -> dict[str, np.ndarray]:
        """The current state, copied to host arrays."""
        if self._host_readable:
            return {name: np.array(bufs[self._phase % len(bufs)].numpy()) for name, bufs in self._buffers.items()}
        out = {name: arr.copy() for name, arr in self._host_copy.items()}
        if self._last_binding is not None:
            updated = [name for name, u in self.state.items() if u is not None]
            for name, arr in zip(updated, self._last_binding.copy_outputs_to_cpu()):
                if name not in self._host_copy:
                    out[name] = arr
        return out

    def run(self, feeds: Mapping[str, Any], *, check: bool = True) -> dict[str, np.ndarray]:
        """One call: bind the batch ``feeds``, run, advance the state; return the fetched outputs."""
        if len(self._loaded) != len(self.state):
            missing = sorted(set(self.state) - self._loaded)
            raise ExecutorError(f"graph {self.graph.name!r}: load_state() first; no value yet for state {', '.join(missing)}")
        arrays = check_feeds(self._batch_view, feeds) if check else feeds
        binding = self._bindings[self._phase]
        for name in self._batch_names:
            binding.bind_cpu_input(name, arrays[name])
        try:
            self.runner.session.run_with_iobinding(binding, self.runner.run_options)
        except Exception as e:  # noqa: BLE001
            from irflow.executors.onnx.runner import ort_failure

            raise ort_failure(self.graph, e) from None
        self._phase = 1 - self._phase
        self._last_binding = binding
        # host copies of updated state are stale now; read-only state keeps its host copy
        for name, update in self.state.items():
            if update is not None:
                self._host_copy.pop(name, None)
        if not self.fetch:
            return {}
        outs = binding.get_outputs()
        # A CPU output's .numpy() aliases onnxruntime's buffer, which the next run reuses: copy.
        return {name: np.array(outs[slot].numpy()) for name, slot in zip(self.fetch, self._fetch_slots)}

    __call__ = run
