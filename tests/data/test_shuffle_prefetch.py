"""Shuffle semantics (permutation, reproducibility, the buffer bound), prefetch's thread,
and iterating a Dataset into an irf.function without retracing per batch."""
import threading

import numpy as np
import pytest

import irflow as irf
from irflow.data import Dataset as D


def order(ds):
    return [int(v) for v in ds.as_numpy_iterator()]


def test_shuffle_is_a_permutation_reproducible_from_the_seed():
    a = order(D.range(50).shuffle(50, seed=7))
    assert sorted(a) == list(range(50)) and a != list(range(50))
    assert order(D.range(50).shuffle(50, seed=7)) == a  # a new dataset with the same seed
    assert order(D.range(50).shuffle(50, seed=8)) != a


def test_each_pass_reshuffles_deterministically_and_set_epoch_replays_a_pass():
    ds = D.range(30).shuffle(30, seed=1)
    passes = [order(ds) for _ in range(3)]
    assert len({tuple(p) for p in passes}) == 3 and all(sorted(p) == list(range(30)) for p in passes)
    fresh = D.range(30).shuffle(30, seed=1)
    assert [order(fresh) for _ in range(3)] == passes  # the same sequence of orders
    fresh.batch(4).set_epoch(2)  # set_epoch reaches the shuffle below the batch
    assert order(fresh) == passes[2]
    fixed = D.range(30).shuffle(30, seed=1, reshuffle_each_iteration=False)
    assert order(fixed) == order(fixed)
    # repeat re-iterates the shuffle: each repetition is its own pass
    rep = order(D.range(30).shuffle(30, seed=1).repeat(2))
    assert rep == passes[0] + passes[1]


def test_shuffle_buffer_bound_output_k_comes_from_the_first_k_plus_buffer_inputs():
    n, buf = 200, 10
    seen_far = 0
    for seed in range(20):
        out = order(D.range(n).shuffle(buf, seed=seed))
        assert sorted(out) == list(range(n))
        assert all(v < k + buf for k, v in enumerate(out))
        seen_far = max(seen_far, max(v - k for k, v in enumerate(out)))
    assert seen_far == buf - 1  # the bound is reached: the buffer really holds buf elements
    assert order(D.range(20).shuffle(1, seed=0)) == list(range(20))  # a buffer of one keeps the order


def test_full_buffer_shuffle_is_roughly_uniform():
    # where element 0 lands over many seeds: a chi-square-ish check with a generous bound
    counts = np.zeros(5)
    for seed in range(2000):
        counts[order(D.range(5).shuffle(5, seed=seed)).index(0)] += 1
    assert np.all(np.abs(counts - 400) < 80), counts


def test_prefetch_yields_the_same_elements_and_runs_ahead_in_a_thread():
    produced = []
    third = threading.Event()

    def gen():
        for i in range(6):
            produced.append(i)
            if i == 2:
                third.set()
            yield np.int64(i)

    it = iter(D.from_generator(gen).prefetch(3))
    assert int(next(it)) == 0
    assert third.wait(10), "the prefetch thread did not run ahead of the consumer"
    assert [int(v) for v in it] == [1, 2, 3, 4, 5]


def test_prefetch_propagates_exceptions_in_order():
    def gen():
        yield np.int64(1)
        yield np.int64(2)
        raise ValueError("bad record 3")

    got = []
    with pytest.raises(ValueError, match="bad record 3"):
        for v in D.from_generator(gen).prefetch(4):
            got.append(int(v))
    assert got == [1, 2]


def test_prefetch_stops_its_thread_when_the_consumer_leaves_early():
    closed = threading.Event()

    def gen():
        try:
            i = 0
            while True:
                yield np.int64(i)
                i += 1
        finally:
            closed.set()

    from irflow.data.prefetch import PrefetchIterator

    it = D.from_generator(gen).prefetch(2)._iterator()
    assert isinstance(it, PrefetchIterator)
    assert int(next(it)) == 0
    it.close(timeout=10)
    assert not it.thread.is_alive()
    assert closed.is_set()  # the upstream generator was closed
    # a for loop left by break drops its iterator, which stops the thread the same way
    before = {t for t in threading.enumerate() if t.name == "irflow-data-prefetch"}
    for v in D.range(10**9).prefetch(2):
        if int(v) == 3:
            break
    import gc, time
    gc.collect()
    for _ in range(100):
        alive = {t for t in threading.enumerate() if t.name == "irflow-data-prefetch"} - before
        if not alive:
            break
        time.sleep(0.05)
    assert not alive


def _train_step():
    w = irf.Variable(np.zeros((3, 2), "float32"), name="w")

    @irf.function
    def step(x, y):
        with irf.GradientTape() as tape:
            loss = irf.reduce_mean((x @ w - y) ** 2)
        (g,) = tape.gradient(loss, [w])
        w.assign_sub(0.1 * g)
        return loss

    return step, w


def test_iterating_a_dataset_into_a_traced_step_traces_once_plus_the_last_short_batch():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((100, 3)).astype("float32"), rng.standard_normal((100, 2)).astype("float32")
    step, w = _train_step()
    ds = D.from_tensor_slices((x, y)).shuffle(100, seed=0).batch(32).prefetch(2)
    for epoch in range(3):
        for xb, yb in ds:
            step(xb, yb)
    assert step.trace_count == 2  # batches of 32, and the last batch of 4
    step2, _ = _train_step()
    for epoch in range(3):
        for xb, yb in D.from_tensor_slices((x, y)).shuffle(100, seed=0).batch(32, drop_remainder=True):
            step2(xb, yb)
    assert step2.trace_count == 1
    step3, _ = _train_step()
    loader = irf.data.DataLoader(irf.data.TensorDataset(x, y), batch_size=32, shuffle=True, seed=0)
    for epoch in range(3):
        for xb, yb in loader:
            step3(xb, yb)
    assert step3.trace_count == 2


def test_the_traced_step_on_batches_matches_numpy_sgd_by_hand():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 3)).astype("float32"), rng.standard_normal((40, 2)).astype("float32")
    step, w = _train_step()
    ds = D.from_tensor_slices((x, y)).shuffle(40, seed=5).batch(16)
    w_ref = np.zeros((3, 2), "float32")
    for xb, yb in ds.as_numpy_iterator():  # the same order: the epoch counter is separate per pass
        pass
    ds.set_epoch(0)
    batches = list(ds.as_numpy_iterator())
    ds.set_epoch(0)
    for xb, yb in ds:
        step(xb, yb)
    for xb, yb in batches:
        grad = 2.0 * xb.T @ (xb @ w_ref - yb) / yb.size
        w_ref = w_ref - 0.1 * grad
    np.testing.assert_allclose(w.numpy(), w_ref, rtol=1e-5, atol=1e-6)


def test_prefetch_keeps_at_most_depth_elements_ahead_of_a_slow_consumer():
    produced = []
    filled = threading.Event()
    depth = 4

    def gen():
        for i in range(50):
            produced.append(i)
            if len(produced) == depth:
                filled.set()
            yield np.int64(i)

    it = iter(D.from_generator(gen).prefetch(depth))
    assert int(next(it)) == 0  # (the thread starts with the first next)
    assert filled.wait(10), "the prefetch thread did not run ahead to fill its buffer"
    import time
    time.sleep(0.2)  # give a producer that ignored the bound the chance to run past it
    # a full buffer, plus at most the one the consumer took (the thread refills only when the
    # buffer has drained to depth // 2, so it may also still be sleeping at `depth`)
    assert depth <= len(produced) <= depth + 1, produced
    assert [int(v) for v in it] == list(range(1, 50))


def test_prefetch_wakes_its_thread_once_per_half_buffer_not_per_element():
    # The consumer is slower than the producer, so the buffer is full whenever it takes an element.
    # Woken per element, the producer would fill the buffer ~n times; with the low-water mark
    # (depth // 2) it is woken once per depth - depth // 2 = 4 elements.
    import time
    from irflow.data.prefetch import PrefetchIterator

    n, depth = 60, 8
    it = D.range(n).prefetch(depth)._iterator()
    assert isinstance(it, PrefetchIterator)
    got = []
    while True:
        # take an element only once the thread is asleep above its low-water mark (or
        # done): a slow consumer, made deterministic instead of sleeping a guessed time
        channel = it._channel
        deadline = time.monotonic() + 10
        while not ((channel.producer_waiting and len(channel.buffer) > channel.low)
                   or not it.thread.is_alive()):
            assert time.monotonic() < deadline, "the prefetch thread neither filled its buffer nor ended"
            time.sleep(0.0005)
        try:
            got.append(int(next(it)))
        except StopIteration:
            break
    assert got == list(range(n))
    assert 5 <= it.refills <= n // (depth - depth // 2) + 2, it.refills


def test_prefetch_overlaps_an_expensive_map_with_the_consumer():
    # The map blocks (like a decoder releasing the GIL); while the consumer holds element 0 and
    # has not asked for more, the thread must already be mapping the following elements.
    mapped = []
    ahead = threading.Event()

    def expensive(v):
        mapped.append(int(v))
        if len(mapped) == 3:
            ahead.set()
        return v * 2

    it = iter(D.range(10).map(expensive).prefetch(4))
    assert int(next(it)) == 0
    assert ahead.wait(10), "the map did not run ahead of the consumer"
    assert [int(v) for v in it] == [2 * i for i in range(1, 10)]


def test_prefetch_propagates_a_map_error_after_the_elements_before_it():
    def check(v):
        if int(v) == 5:
            raise ValueError("record 5 is corrupt")
        return v

    got = []
    with pytest.raises(ValueError, match="record 5 is corrupt"):
        for v in D.range(20).map(check).prefetch(8):
            got.append(int(v))
    assert got == [0, 1, 2, 3, 4]


def test_prefetch_autotune_and_depth_one_yield_every_element():
    assert [int(v) for v in D.range(37).prefetch()] == list(range(37))
    assert [int(v) for v in D.range(37).prefetch(1)] == list(range(37))
    assert [int(v) for v in D.range(0).prefetch(3)] == []
