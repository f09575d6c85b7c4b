"""``irf.summary``: TensorBoard summaries, with ``tf.summary``'s API, written by tensorboardX.

A writer (``create_file_writer(logdir)``) becomes the default inside ``with writer.as_default():``
(or after ``writer.set_as_default()``); ``scalar``, ``histogram``, ``text`` and ``image`` then
record to it and do nothing (returning False) when no writer is the default, as in TensorFlow.
The step is the ``step=`` argument, else the default step set by
``irf.summary.experimental.set_step(step)`` (or ``as_default(step=...)``); with neither, a
record is an ``IrflowError``.

Inside ``irf.function`` a summary records the value the graph computes on each call: the
value becomes an extra output of the traced graph and is written after every call
(``irflow.frontends.trace.host_callback``). The default writer is looked up when the call
runs, not when it was traced, so one traced step serves runs with and without a writer. A
default step that is an ``irf.Variable`` is read in the graph at the summary's place in the
step (so ``set_step(optimizer.iterations)`` logs each update's number); an int default step is
read when the call runs.

The event files are streams that tensorboardX appends to; they are the one kind of file irflow
writes that does not go through ``irflow.atomic`` (a reader sees every complete event).
tensorboardX is imported when the first writer is created, so ``import irflow`` stays fast.

>>> writer = irf.summary.create_file_writer("logs/run1")          # doctest: +SKIP
>>> with writer.as_default():                                      # doctest: +SKIP
...     irf.summary.scalar("loss", 0.25, step=1)
"""
from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np

from irflow.errors import IrflowError
from irflow.frontends.eager import Tensor
from irflow.frontends.trace import host_callback
from irflow.frontends.variables import Variable
from irflow.ops.builder import SymbolicTensor

__all__ = ["SummaryWriter", "create_file_writer", "create_noop_writer", "scalar", "histogram", "text", "image",
           "flush", "record_if", "should_record_summaries", "experimental"]

_WRITERS: list["SummaryWriter"] = []  # the default writer is the last one
_STEP: list[Any] = [None]  # the default step: None, an int, or an irf.Variable
_RECORD: list[Any] = [True]  # record_if: a bool or a callable returning one
_RUNTIME = object()  # "resolve the default step when the call runs"
_FILE_IDS = itertools.count()  # per-process counter in event file names


class SummaryWriter:
    """Writes summaries to one log directory (a tensorboardX ``SummaryWriter`` underneath).

    >>> writer = irf.summary.create_file_writer("logs")   # doctest: +SKIP
    >>> writer.as_default()                                # doctest: +SKIP
    """

    def __init__(self, logdir: str | os.PathLike | None, max_queue: int = 10, flush_millis: int = 120_000,
                 filename_suffix: str | None = None):
        self.logdir = None if logdir is None else Path(logdir)
        self._closed = False
        self._writer: Any = None
        if self.logdir is not None:
            if self.logdir.exists() and not self.logdir.is_dir():
                raise IrflowError(f"summary.create_file_writer: {self.logdir} exists and is not a directory")
            try:
                from tensorboardX import SummaryWriter as _TBXWriter
            except ImportError as e:
                raise IrflowError("irf.summary needs the 'tensorboardX' package: pip install tensorboardX") from e
            # tensorboardX names the file events.out.tfevents.<seconds>.<host><suffix> and opens it
            # with "wb": a second writer on the same directory in the same second (a resumed run,
            # a test) would truncate the first one's events. TF adds the pid and a counter; so do we,
            # zero-padded: TensorBoard reads a directory's files in name order, and ".10" sorts
            # before ".9", which put a resumed run's steps before the first run's.
            unique = f".{os.getpid()}.{next(_FILE_IDS):06d}{filename_suffix or ''}"
            self._writer = _TBXWriter(logdir=str(self.logdir), max_queue=max_queue,
                                      flush_secs=max(1, int(flush_millis / 1000)), filename_suffix=unique)

    # -- default writer --------------------------------------------------------------------------
    @contextlib.contextmanager
    def as_default(self, step: Any = None) -> Iterator["SummaryWriter"]:
        """Make this the default writer inside the ``with`` block (and ``step`` the default
        step there, if given); the writer is flushed on leaving.

        >>> with writer.as_default(step=0):   # doctest: +SKIP
        ...     irf.summary.scalar("x", 1.0)
        """
        _WRITERS.append(self)
        old_step = _STEP[0]
        if step is not None:
            _STEP[0] = step
        try:
            yield self
        finally:
            _STEP[0] = old_step
            _WRITERS.remove(self)
            self.flush()

    def set_as_default(self, step: Any = None) -> None:
        """Make this the default writer from now on (until another is set or this is closed)."""
        if self in _WRITERS:
            _WRITERS.remove(self)
        _WRITERS.append(self)
        if step is not None:
            _STEP[0] = step

    def flush(self) -> None:
        """Write buffered events to disk."""
        if self._writer is not None and not self._closed:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file; the writer is no longer a default."""
        if self._writer is not None and not self._closed:
            self._writer.close()
        self._closed = True
        while self in _WRITERS:
            _WRITERS.remove(self)

    # -- writing one record (host side: NumPy values) ---------------------------------------------
    def _write(self, kind: str, name: str, data: Any, step: int, extra: dict[str, Any]) -> None:
        w = self._writer
        if w is None:
            return
        if self._closed:
            raise IrflowError(f"summary.{kind}({name!r}): the writer for {self.logdir} is closed")
        if kind == "scalar":
            arr = np.asarray(data)
            if arr.size != 1:
                raise IrflowError(f"summary.scalar({name!r}): the value has shape {arr.shape}, a scalar needs one element")
            w.add_scalar(name, float(arr.reshape(())), global_step=step)
        elif kind == "histogram":
            arr = np.asarray(data, dtype=np.float64).reshape(-1)
            bins = extra.get("buckets") or "tensorflow"
            w.add_histogram(name, arr, global_step=step, bins=bins)
        elif kind == "text":
            w.add_text(name, str(data), global_step=step)
        elif kind == "image":
            images = np.asarray(data)
            if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
                raise IrflowError(f"summary.image({name!r}): expected (k, height, width, channels) with 1, 3 or 4 "
                                  f"channels, got shape {images.shape}")
            images = images[: extra.get("max_outputs", 3)]
            if images.dtype != np.uint8:
                images = np.clip(images.astype(np.float32), 0.0, 1.0)  # floats in [0, 1], as tf.summary.image
            if images.shape[-1] == 1:
                images = np.repeat(images, 3, axis=-1)
            for i, img in enumerate(images):
                w.add_image(name if len(images) == 1 else f"{name}/image/{i}", img, global_step=step,
                            dataformats="HWC")

    def __repr__(self) -> str:
        return f"<irf.summary.SummaryWriter {str(self.logdir)!r}>"


def create_file_writer(logdir: str | os.PathLike, max_queue: int = 10, flush_millis: int = 120_000,
                       filename_suffix: str | None = None) -> SummaryWriter:
    """A writer of TensorBoard event files in ``logdir`` (created if missing).

    >>> writer = irf.summary.create_file_writer("logs/train")   # doctest: +SKIP
    """
    return SummaryWriter(logdir, max_queue=max_queue, flush_millis=flush_millis, filename_suffix=filename_suffix)


def create_noop_writer() -> SummaryWriter:
    """A writer that records nothing (to switch logging off without changing the code)."""
    return SummaryWriter(None)


# -- the default step and recording condition ------------------------------------------------------
def _set_step(step: Any) -> None:
    """Set the default step: an int, an ``irf.Variable`` (read when each summary is recorded,
    in the graph inside ``irf.function``), or None.

    >>> irf.summary.experimental.set_step(optimizer.iterations)   # doctest: +SKIP
    """
    if step is not None and not isinstance(step, (int, np.integer, Variable, Tensor)):
        raise IrflowError(f"summary.experimental.set_step: expected an int or an irf.Variable, got {type(step).__name__}")
    _STEP[0] = step


def _get_step() -> Any:
    """The default step (None if unset)."""
    return _STEP[0]


experimental = SimpleNamespace(set_step=_set_step, get_step=_get_step)


@contextlib.contextmanager
def record_if(condition: Any) -> Iterator[None]:
    """Record summaries inside the block only when ``condition`` (a bool, or a callable
    returning one, evaluated when each summary would be written) holds.

    >>> with irf.summary.record_if(lambda: step % 10 == 0):   # doctest: +SKIP
    ...     ...
    """
    old = _RECORD[0]
    _RECORD[0] = condition
    try:
        yield
    finally:
        _RECORD[0] = old


def should_record_summaries() -> bool:
    """True when a default writer exists and ``record_if`` allows recording now."""
    cond = _RECORD[0]
    return bool(_WRITERS) and bool(cond() if callable(cond) else cond)


def flush(writer: SummaryWriter | None = None) -> None:
    """Flush ``writer`` (default: the default writer)."""
    w = writer or (_WRITERS[-1] if _WRITERS else None)
    if w is not None:
        w.flush()


# -- recording --------------------------------------------------------------------------------------
def _step_value(step: Any, kind: str, name: str) -> int:
    if step is _RUNTIME:
        step = _STEP[0]
    if isinstance(step, Variable):
        step = step.numpy()
    elif type(step) is Tensor:
        step = step.numpy()
    if step is None:
        raise IrflowError(f"summary.{kind}({name!r}): no step: pass step= or set a default with "
                          "irf.summary.experimental.set_step(...)")
    arr = np.asarray(step)
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise IrflowError(f"summary.{kind}({name!r}): step must be an integer scalar, got {arr.dtype}{list(arr.shape)}")
    return int(arr.reshape(()))


def _emit(kind: str, name: str, data: Any, step: Any, writer: SummaryWriter | None, **extra: Any) -> None:
    """Host side of one summary: the NumPy data and step, written to ``writer`` or the default."""
    if not should_record_summaries() and writer is None:
        return
    target = writer or _WRITERS[-1]
    target._write(kind, name, data, _step_value(step, kind, name), extra)


def _record(kind: str, name: str, data: Any, step: Any, **extra: Any) -> bool:
    if not isinstance(name, str) or not name:
        raise IrflowError(f"summary.{kind}: the name must be a non-empty string, got {name!r}")
    tracing = isinstance(data, SymbolicTensor) or isinstance(step, SymbolicTensor) or _tracing()
    if tracing:
        if step is None:
            # A Variable default step is read in the graph here; an int one when the call runs.
            step = _STEP[0] if isinstance(_STEP[0], Variable) else _RUNTIME
        host_callback(lambda d, s: _emit(kind, name, d, s, None, **extra), data, step)
        return True
    if not should_record_summaries():
        return False
    if step is None:
        step = _RUNTIME
    if isinstance(data, (Tensor, Variable)):
        data = data.numpy()
    _emit(kind, name, data, step, None, **extra)
    return True


def _tracing() -> bool:
    from irflow.ops.dispatch import BUILDER_STACK

    return bool(BUILDER_STACK)


def scalar(name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
    """Record the scalar ``data`` under ``name`` at ``step``; True if recorded (or, traced, scheduled).

    >>> with writer.as_default():                       # doctest: +SKIP
    ...     irf.summary.scalar("loss", loss, step=3)
    """
    return _record("scalar", name, data, step)


def histogram(name: str, data: Any, step: Any = None, buckets: int | None = None,
              description: str | None = None) -> bool:
    """Record the distribution of ``data``'s values (any shape) under ``name``.

    >>> irf.summary.histogram("weights", model.layers[0].weight, step=0)   # doctest: +SKIP
    """
    return _record("histogram", name, data, step, buckets=buckets)


def text(name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
    """Record the string ``data`` (markdown in TensorBoard's text tab) under ``name``.

    >>> irf.summary.text("config", "lr=0.01", step=0)   # doctest: +SKIP
    """
    return _record("text", name, data, step)


def image(name: str, data: Any, step: Any = None, max_outputs: int = 3, description: str | None = None) -> bool:
    """Record images: ``data`` is (k, height, width, channels), channels 1, 3 or 4, floats in
    [0, 1] or uint8 (as ``tf.summary.image``); the first ``max_outputs`` are written
    (one image: tag ``name``; several: ``name/image/<i>``).

    >>> irf.summary.image("digits", x[:4].reshape(4, 8, 8, 1), step=0)   # doctest: +SKIP
    """
    return _record("image", name, data, step, max_outputs=max_outputs)
