"""``Dataset.prefetch``: a background thread runs the pipeline ahead of the consumer.

Why a thread and not a process: the pipeline's heavy work (NumPy gathers, stacking, copies)
releases the GIL, the elements are handed over without pickling, and a thread needs no
start-up and no fork-safety care. Python-heavy map functions do not run in parallel with the
training step (the GIL); they still overlap its NumPy / onnxruntime kernels.

Hand-over: a deque and one condition variable, no timed waits. What a hand-over costs is not
the queue operation but waking the other thread: every wake-up is a context switch plus a GIL
hand-off that interrupts the consumer's interpreter loop (measured: ~200 us of CPU per wake on
the train-step benchmark, for a batch gather that takes ~27 us). So the consumer takes elements
without the lock while the buffer is not empty, and the producer, once the buffer is full,
sleeps until it has drained to half (``depth // 2``) and then refills it in one go: one wake-up
per ``depth - depth // 2`` elements instead of one per element. The consumer is woken only
when it found the buffer empty.

Shutdown: the thread owns no reference to the consumer's iterator, so leaving a ``for`` loop
early (or dropping the iterator) sets a stop flag and wakes the thread, which exits after the
element it is computing, closing the upstream generators. An exception in the pipeline is
handed over in order and raised in the consumer when it reaches that element.
"""
from __future__ import annotations

import collections
import threading
from typing import Any, Iterator

from irflow.data.dataset import Dataset, builds, _check_count

_END = object()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


class _Channel:
    """The buffer shared by the producer thread and the consumer (see the module docstring)."""

    __slots__ = ("buffer", "cond", "depth", "low", "stop", "consumer_waiting", "producer_waiting",
                 "wakeups")

    def __init__(self, depth: int):
        self.buffer: collections.deque = collections.deque()
        self.cond = threading.Condition(threading.Lock())
        self.depth = depth
        self.low = depth // 2  # the producer sleeps until the buffer is down to this many
        self.stop = False
        self.consumer_waiting = False
        self.producer_waiting = False
        self.wakeups = 0  # times the producer was woken to refill (tests check the batching)

    def put(self, item: Any) -> bool:
        """Append ``item``; if the buffer is full, sleep until it drained to ``low``. False: stop."""
        with self.cond:
            if self.stop:
                return False
            self.buffer.append(item)
            if self.consumer_waiting:
                self.cond.notify()
            if len(self.buffer) >= self.depth:
                self.producer_waiting = True
                while len(self.buffer) > self.low and not self.stop:
                    self.cond.wait()
                self.producer_waiting = False
                self.wakeups += 1
            return not self.stop

    def put_last(self, item: Any) -> None:
        with self.cond:
            if not self.stop:
                self.buffer.append(item)
                self.cond.notify()

    def get(self) -> Any:
        buffer = self.buffer
        try:
            item = buffer.popleft()  # deque.popleft is atomic: no lock while elements are ready
        except IndexError:
            with self.cond:
                self.consumer_waiting = True
                while not buffer:
                    self.cond.wait()
                self.consumer_waiting = False
                item = buffer.popleft()
        # Read without the lock: if the producer sets the flag after this read, it re-checks the
        # length under the lock and does not sleep (no lost wake-up).
        if self.producer_waiting and len(buffer) <= self.low:
            with self.cond:
                self.cond.notify()
        return item

    def close(self) -> None:
        with self.cond:
            self.stop = True
            self.buffer.clear()
            self.cond.notify_all()


def _produce(upstream: Iterator[Any], channel: _Channel) -> None:
    try:
        for item in upstream:
            if not channel.put(item):
                return
        channel.put_last(_END)
    except BaseException as e:  # noqa: BLE001  (handed to the consumer, raised there)
        channel.put_last(_Failure(e))
    finally:
        close = getattr(upstream, "close", None)
        if close is not None:
            close()


class PrefetchIterator:
    """Elements of ``upstream`` produced ahead by a daemon thread, at most ``depth`` waiting."""

    def __init__(self, upstream: Iterator[Any], depth: int):
        self._channel = _Channel(depth)
        self._done = False
        self._thread = threading.Thread(target=_produce, args=(upstream, self._channel),
                                        name="irflow-data-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self) -> "PrefetchIterator":
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        item = self._channel.get()
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
        self._channel.close()
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

    @property
    def refills(self) -> int:
        """How many times the producer was woken to refill the buffer (one per ``depth - depth // 2`` elements)."""
        return self._channel.wakeups


@builds
class Prefetch(Dataset):
    def __init__(self, input: Dataset, depth: int):
        self._input = input
        self._depth = _check_count(depth, "prefetch: buffer_size")

    def cardinality(self) -> int:
        return self._input.cardinality()

    def _iterator(self) -> Iterator[Any]:
        return PrefetchIterator(self._input._iterator(), self._depth)
