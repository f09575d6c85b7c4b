"""``Dataset.prefetch``: a background thread runs the pipeline ahead of the consumer.

Why a thread and not a process: the pipeline's heavy work (NumPy gathers, stacking, copies)
releases the GIL, the elements are handed over without pickling, and a thread needs no
start-up and no fork-safety care. Python-heavy map functions do not run in parallel with the
training step (the GIL); they still overlap its NumPy / onnxruntime kernels.

Shutdown: the thread owns no reference to the consumer's iterator, so leaving a ``for`` loop
early (or dropping the iterator) sets a stop flag; the thread sees it within one queue
timeout and exits, closing the upstream generators. An exception in the pipeline is handed
over in order and raised in the consumer when it reaches that element.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Iterator

from irflow.data.dataset import Dataset, builds, _check_count

_END = object()
_POLL = 0.05  # seconds a blocked put waits before looking at the stop flag again


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False


def _produce(upstream: Iterator[Any], q: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in upstream:
            if not _put(q, item, stop):
                return
        _put(q, _END, stop)
    except BaseException as e:  # noqa: BLE001  (handed to the consumer, raised there)
        _put(q, _Failure(e), stop)
    finally:
        close = getattr(upstream, "close", None)
        if close is not None:
            close()


class PrefetchIterator:
    """Elements of ``upstream`` produced ahead by a daemon thread, at most ``depth`` waiting."""

    def __init__(self, upstream: Iterator[Any], depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=_produce, args=(upstream, self._queue, self._stop),
                                        name="irflow-data-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self) -> "PrefetchIterator":
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if type(item) is _Failure:
            self._done = True
            raise item.error
        return item

    def close(self, timeout: float = 1.0) -> None:
        """Stop the thread (waits up to ``timeout`` seconds for it to finish its current element)."""
        self._done = True
        self._stop.set()
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        if timeout and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __del__(self) -> None:
        try:
            self.close(timeout=0)
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass

    @property
    def thread(self) -> threading.Thread:
        return self._thread


@builds
class Prefetch(Dataset):
    def __init__(self, input: Dataset, depth: int):
        self._input = input
        self._depth = _check_count(depth, "prefetch: buffer_size")

    def cardinality(self) -> int:
        return self._input.cardinality()

    def _iterator(self) -> Iterator[Any]:
        return PrefetchIterator(self._input._iterator(), self._depth)
