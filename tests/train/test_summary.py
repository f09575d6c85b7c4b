"""irf.summary writes real TensorBoard event files: read back here with TensorBoard's own
EventAccumulator, every scalar at its step, eager and from inside irf.function."""
import subprocess
import sys

import numpy as np
import pytest

import irflow as irf

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="TensorBoard's reader (the dev extra) checks the event files")


def read(logdir):
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0,
                                                                         "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_eager_scalar_histogram_text_image_are_in_the_event_file(tmp_path):
    writer = irf.summary.create_file_writer(tmp_path / "run")
    assert irf.summary.scalar("loss", 1.0, step=0) is False  # no default writer: nothing recorded
    with writer.as_default():
        for step in range(5):
            assert irf.summary.scalar("loss", 1.0 / (step + 1), step=step)
        irf.summary.scalar("tensor_value", irf.tensor(np.float32(2.5)), step=7)
        values = np.random.default_rng(0).normal(size=1000)
        irf.summary.histogram("weights", values, step=3)
        irf.summary.text("note", "hello *world*", step=1)
        irf.summary.image("digit", np.linspace(0, 1, 64, dtype="float32").reshape(1, 8, 8, 1), step=2)
        irf.summary.image("pair", np.zeros((2, 4, 4, 3), "uint8"), step=2)
    writer.close()
    acc = read(tmp_path / "run")
    got = scalars(acc, "loss")
    assert [s for s, _ in got] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([v for _, v in got], [1.0 / (s + 1) for s in range(5)], rtol=1e-6)
    assert scalars(acc, "tensor_value") == [(7, 2.5)]
    hist = acc.Histograms("weights")
    assert hist[0].step == 3 and hist[0].histogram_value.num == 1000
    assert hist[0].histogram_value.min == pytest.approx(values.min())
    tags = acc.Tags()
    assert "digit" in tags["images"] and "pair/image/0" in tags["images"] and "pair/image/1" in tags["images"]
    img = acc.Images("digit")[0]
    assert img.step == 2 and (img.width, img.height) == (8, 8)
    pil = pytest.importorskip("PIL.Image", reason="decodes the PNG to check its pixels")
    import io
    pixels = np.asarray(pil.open(io.BytesIO(img.encoded_image_string)))[..., 0].astype(int)
    expected = np.linspace(0, 1, 64).reshape(8, 8) * 255  # floats in [0, 1] scale to 0..255
    assert np.abs(pixels - expected).max() <= 1
    assert any("note" in t for t in tags["tensors"])
    text_event = [acc.Tensors(t) for t in tags["tensors"] if "note" in t][0][0]
    assert text_event.step == 1 and b"hello *world*" in text_event.tensor_proto.string_val[0]


def test_traced_step_records_the_graph_value_on_every_call(tmp_path):
    w = irf.Variable(np.float32(3.0), name="w")
    opt = irf.optim.SGD(0.1)

    @irf.function
    def step(x):
        with irf.GradientTape() as tape:
            loss = irf.reduce_mean((x * w) ** 2)
        irf.summary.scalar("loss", loss, step=opt.iterations)  # read before the update
        irf.summary.histogram("x", x, step=opt.iterations)
        opt.apply_gradients([(tape.gradient(loss, w), w)])
        return loss

    x = np.array([1.0, 2.0], "float32")
    step(x)  # traced (and run) with no default writer: records nothing, yet the trace serves the writer later
    writer = irf.summary.create_file_writer(tmp_path / "traced")
    expected = []
    with writer.as_default():
        for _ in range(4):
            wv = float(w.numpy())
            expected.append(np.mean((x * wv) ** 2))  # the NumPy loss at this call's weight
            step(x)
    assert step.trace_count == 1
    step(x)  # no default writer now: runs, records nothing
    writer.close()
    got = scalars(read(tmp_path / "traced"), "loss")
    assert [s for s, _ in got] == [1, 2, 3, 4]
    np.testing.assert_allclose([v for _, v in got], expected, rtol=1e-6)
    assert [h.step for h in read(tmp_path / "traced").Histograms("x")] == [1, 2, 3, 4]


def test_default_step_int_and_variable(tmp_path):
    counter = irf.Variable(np.int64(10), name="counter", trainable=False)

    @irf.function
    def f(x):
        counter.assign_add(1)
        irf.summary.scalar("y", irf.reduce_sum(x))  # default step: the Variable, read after the add
        return x

    writer = irf.summary.create_file_writer(tmp_path / "steps")
    try:
        with writer.as_default():
            irf.summary.experimental.set_step(counter)
            f(np.ones(2, "float32"))
            f(np.ones(2, "float32") * 2)
            irf.summary.experimental.set_step(100)
            irf.summary.scalar("eager", 5.0)
            irf.summary.experimental.set_step(None)
            with pytest.raises(irf.IrflowError, match="no step"):
                irf.summary.scalar("eager", 5.0)
        with writer.as_default(step=7):
            irf.summary.scalar("scoped", 1.0)
    finally:
        irf.summary.experimental.set_step(None)
        writer.close()
    acc = read(tmp_path / "steps")
    assert scalars(acc, "y") == [(11, 2.0), (12, 4.0)]
    assert scalars(acc, "eager") == [(100, 5.0)]
    assert scalars(acc, "scoped") == [(7, 1.0)]


def test_record_if_and_errors(tmp_path):
    writer = irf.summary.create_file_writer(tmp_path / "cond")
    with writer.as_default():
        for i in range(6):
            with irf.summary.record_if(i % 2 == 0):
                irf.summary.scalar("even", float(i), step=i)
        with pytest.raises(irf.IrflowError, match="a scalar needs one element"):
            irf.summary.scalar("bad", np.zeros(3), step=0)
        with pytest.raises(irf.IrflowError, match="channels"):
            irf.summary.image("bad", np.zeros((8, 8)), step=0)
        with pytest.raises(irf.IrflowError, match="integer"):
            irf.summary.scalar("bad", 1.0, step=1.5)
    writer.close()
    assert [s for s, _ in scalars(read(tmp_path / "cond"), "even")] == [0, 2, 4]
    (tmp_path / "file").write_text("x")
    with pytest.raises(irf.IrflowError, match="not a directory"):
        irf.summary.create_file_writer(tmp_path / "file")


def test_importing_irflow_does_not_import_tensorboardx():
    code = "import sys, irflow; print('tensorboardX' in sys.modules, 'safetensors' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("first_id", [0, 9, 99])
def test_two_writers_in_one_second_keep_both_runs(tmp_path, monkeypatch, first_id):
    # tensorboardX alone names event files by the second and opens them with "wb": a second
    # writer on the same logdir within that second (a resumed run) truncated the first's events.
    # first_id: the per-process file counter going from 9 to 10 must not reorder the runs.
    import itertools

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setattr(irf.summary, "_FILE_IDS", itertools.count(first_id))

    for run, steps in enumerate([(0, 1, 2), (3, 4)]):
        w = irf.summary.create_file_writer(tmp_path)
        with w.as_default():
            for s in steps:
                irf.summary.scalar("loss", float(run * 10 + s), step=s)
        w.close()
    assert len(list(tmp_path.iterdir())) == 2
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss")] == [0, 1, 2, 3, 4]
