"""GradientTape behaviour: persistence, nesting, containers, unconnected sources, stop_recording,
watching, against hand-computed derivatives."""
import numpy as np
import pytest

import irflow as irf

RNG = np.random.default_rng(1)


def t64(*shape):
    return irf.tensor(RNG.standard_normal(shape))


def test_non_persistent_tape_allows_one_gradient_call():
    x = t64(3)
    with irf.GradientTape() as tape:
        tape.watch(x)
        y = irf.reduce_sum(irf.exp(x))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), np.exp(x.numpy()), rtol=1e-12)
    with pytest.raises(irf.IrflowError, match="persistent"):
        tape.gradient(y, x)


def test_persistent_tape_allows_many_gradient_calls():
    x = t64(3)
    with irf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
        z = irf.reduce_sum(y * x)
    np.testing.assert_allclose(tape.gradient(z, x).numpy(), 3 * x.numpy() ** 2, rtol=1e-12)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 2 * x.numpy(), rtol=1e-12)  # non-scalar: summed
    np.testing.assert_allclose(tape.gradient(z, y).numpy(), x.numpy(), rtol=1e-12)     # w.r.t. an intermediate


def test_nested_tapes_give_second_derivatives():
    x = irf.tensor(np.array([0.3, -1.2, 2.0]))
    with irf.GradientTape() as outer:
        outer.watch(x)
        with irf.GradientTape() as inner:
            inner.watch(x)
            y = irf.reduce_sum(irf.exp(x) * x)
        g = inner.gradient(y, x)          # (1 + x) e^x, recorded by the outer tape
    h = outer.gradient(g, x)              # d/dx sum((1 + x) e^x) = (2 + x) e^x
    xv = x.numpy()
    np.testing.assert_allclose(g.numpy(), (1 + xv) * np.exp(xv), rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), (2 + xv) * np.exp(xv), rtol=1e-12)


def test_dict_list_tuple_sources_mirror_their_structure():
    a, b, c = t64(2), t64(2), t64(2)
    with irf.GradientTape(persistent=True) as tape:
        tape.watch([a, b, c])
        y = irf.reduce_sum(a * b * c)
    gd = tape.gradient(y, {"a": a, "rest": [b, (c,)]})
    assert set(gd) == {"a", "rest"} and isinstance(gd["rest"], list) and isinstance(gd["rest"][1], tuple)
    av, bv, cv = a.numpy(), b.numpy(), c.numpy()
    np.testing.assert_allclose(gd["a"].numpy(), bv * cv, rtol=1e-12)
    np.testing.assert_allclose(gd["rest"][0].numpy(), av * cv, rtol=1e-12)
    np.testing.assert_allclose(gd["rest"][1][0].numpy(), av * bv, rtol=1e-12)
    gt = tape.gradient(y, (a, b))
    assert isinstance(gt, tuple) and len(gt) == 2


def test_unconnected_sources_zero_or_none():
    x, u = t64(3), t64(2, 2)
    with irf.GradientTape(persistent=True) as tape:
        tape.watch([x, u])
        y = irf.reduce_sum(x * 2.0)
    gx, gu = tape.gradient(y, [x, u])
    np.testing.assert_array_equal(gx.numpy(), np.full(3, 2.0))
    np.testing.assert_array_equal(gu.numpy(), np.zeros((2, 2)))
    assert gu.dtype == irf.float64
    gx, gu = tape.gradient(y, [x, u], unconnected_gradients="none")
    assert gu is None and gx is not None
    with pytest.raises(irf.IrflowError, match="unconnected_gradients"):
        tape.gradient(y, x, unconnected_gradients="zeros")


def test_unwatched_tensor_gets_no_gradient():
    x = t64(3)
    with irf.GradientTape() as tape:
        y = irf.reduce_sum(x * x)
    assert tape.gradient(y, x, unconnected_gradients="none") is None


def test_stop_recording_hides_ops_from_the_tape():
    x = t64(3)
    with irf.GradientTape() as tape:
        tape.watch(x)
        with tape.stop_recording():
            c = x * 3.0          # not recorded: a constant for the tape
        y = irf.reduce_sum(c * x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 3 * x.numpy(), rtol=1e-12)


def test_stop_gradient_blocks_gradient():
    x = t64(4)
    g = irf.grad(lambda a: irf.reduce_sum(irf.stop_gradient(a) * a))(x)
    np.testing.assert_allclose(g.numpy(), x.numpy(), rtol=1e-12)


def test_output_gradients_weight_the_target():
    x = t64(3)
    w = RNG.standard_normal(3)
    with irf.GradientTape() as tape:
        tape.watch(x)
        y = irf.exp(x)
    g = tape.gradient(y, x, output_gradients=irf.tensor(w))
    np.testing.assert_allclose(g.numpy(), w * np.exp(x.numpy()), rtol=1e-12)


def test_list_of_targets_adds_their_gradients():
    x = t64(3)
    with irf.GradientTape() as tape:
        tape.watch(x)
        y1 = irf.reduce_sum(x * x)
        y2 = irf.reduce_sum(x * 3.0)
    np.testing.assert_allclose(tape.gradient([y1, y2], x).numpy(), 2 * x.numpy() + 3, rtol=1e-12)


def test_value_used_twice_accumulates():
    x = t64(3)
    with irf.GradientTape() as tape:
        tape.watch(x)
        y = irf.reduce_sum(x * x + x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 2 * x.numpy() + 1, rtol=1e-12)


def test_scalar_operands_are_recorded_with_their_weak_dtype():
    x = irf.tensor(np.array([1.0, 2.0], dtype=np.float32))
    with irf.GradientTape() as tape:
        tape.watch(x)
        y = irf.reduce_sum(2.0 * x * x + 1.0)
    g = tape.gradient(y, x)
    assert g.dtype == irf.float32
    np.testing.assert_allclose(g.numpy(), [4.0, 8.0])


def test_missing_vjp_rule_raises_never_silent_zeros():
    from irflow.ops.registry import defop, REGISTRY
    from irflow.executors.numpy.kernels import KERNELS

    name = "_test_no_rule_op"
    if name not in REGISTRY:
        defop(name, lambda x: x, inputs=1, family="test")
        KERNELS[name] = lambda x: x * 1.0
    try:
        x = t64(3)
        with irf.GradientTape() as tape:
            tape.watch(x)
            y = irf.reduce_sum(irf.bind(name, x))
        with pytest.raises(irf.IrflowError, match=f"differentiation rule for '{name}' not implemented"):
            tape.gradient(y, x)
    finally:
        REGISTRY.pop(name, None)
        KERNELS.pop(name, None)


def test_non_differentiable_op_passes_no_gradient():
    x = t64(5)
    with irf.GradientTape() as tape:
        tape.watch(x)
        mask = x > 0.0                       # comparison: differentiable=False
        y = irf.reduce_sum(irf.where(mask, x, x * 0.5))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), np.where(x.numpy() > 0, 1.0, 0.5), rtol=1e-12)


def test_gradient_of_a_watched_tensor_with_respect_to_itself_is_ones():
    x = t64(2, 3)
    with irf.GradientTape() as tape:
        tape.watch(x)
    np.testing.assert_array_equal(tape.gradient(x, x).numpy(), np.ones((2, 3)))


def test_persistent_tape_can_differentiate_its_own_gradient_while_recording():
    x = irf.tensor(np.array([0.5, 1.5]))
    with irf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = irf.reduce_sum(x * x * x)
        g = tape.gradient(y, x)           # recorded by this same tape: 3 x^2
    h = tape.gradient(g, x)               # 6 x
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2, rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy(), rtol=1e-12)


def test_jacobian_falls_back_to_a_differentiable_loop_under_an_outer_tape():
    x = irf.tensor(np.array([0.3, -0.7, 1.1]))
    with irf.GradientTape() as outer:
        outer.watch(x)
        with irf.GradientTape() as inner:
            inner.watch(x)
            y = irf.exp(x) * x
        j = inner.jacobian(y, x)          # diag((1 + x) e^x)
        s = irf.reduce_sum(j)
    xv = x.numpy()
    np.testing.assert_allclose(j.numpy(), np.diag((1 + xv) * np.exp(xv)), rtol=1e-12)
    np.testing.assert_allclose(outer.gradient(s, x).numpy(), (2 + xv) * np.exp(xv), rtol=1e-12)


def test_integer_source_is_unconnected():
    i = irf.tensor(np.array([1, 2, 3], dtype=np.int64))
    x = t64(3)
    with irf.GradientTape() as tape:
        tape.watch([i, x])
        y = irf.reduce_sum(x * irf.cast(i, "float64"))
    gi, gx = tape.gradient(y, [i, x], unconnected_gradients="none")
    assert gi is None
    np.testing.assert_array_equal(gx.numpy(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_low_precision_gradients_keep_their_dtype(dtype):
    x = irf.tensor(np.array([1.0, -2.0, 3.0]), dtype=dtype)
    with irf.GradientTape() as tape:
        tape.watch(x)
        y = irf.reduce_sum(x * x * 0.5)
    g = tape.gradient(y, x)
    assert g.dtype == irf.DType(dtype)
    np.testing.assert_allclose(g.numpy().astype(np.float64), [1.0, -2.0, 3.0])
