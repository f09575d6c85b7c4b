"""irf.host_callback: eager calls now; inside irf.function, after each call with the graph's values."""
import numpy as np
import pytest

import irflow as irf


def test_eager_and_traced_and_nested_and_under_a_tape():
    seen = []
    record = lambda *vals: seen.append(tuple(np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for v in vals))
    irf.host_callback(record, irf.tensor([1.0, 2.0]), "tag")
    assert seen == [([1.0, 2.0], "tag")]

    v = irf.Variable(np.float32(1.0))

    @irf.function
    def inner(x):
        y = x * 2.0
        irf.host_callback(record, y, v, "inner")
        return y

    @irf.function
    def outer(x):
        v.assign_add(1.0)
        return inner(x) + 1.0

    seen.clear()
    outer(np.array([1.0], "float32"))
    outer(np.array([3.0], "float32"))
    assert seen == [([2.0], 2.0, "inner"), ([6.0], 3.0, "inner")]  # v read after the assign_add

    seen.clear()
    x = irf.Variable(np.array([5.0], "float32"))
    with irf.GradientTape() as tape:  # the traced graph runs as one recorded op
        y = irf.reduce_sum(inner(x))
    assert tape.gradient(y, x).numpy().tolist() == [2.0]
    assert seen == [([10.0], 3.0, "inner")]


def test_static_program_refuses():
    prog = irf.static.Program()
    with prog:
        xs = irf.static.placeholder("x", (2,), "float32")
        with pytest.raises(irf.IrflowError, match="host_callback"):
            irf.host_callback(print, xs)
