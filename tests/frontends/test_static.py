"""irf.static: Program, Session, pruning, variables, groups, control dependencies, errors."""
import numpy as np
import pytest

import irflow as irf

rng = np.random.default_rng(2)
X = rng.standard_normal((5, 4)).astype(np.float32)
W0 = rng.standard_normal((4, 3)).astype(np.float32)


def build():
    prog = irf.static.Program("p")
    with prog:
        x = irf.static.placeholder("x", (None, 4), "float32")
        unused = irf.static.placeholder("unused", (2,), "float32")
        w = irf.static.variable(W0, name="w")
        y = irf.relu(x @ w)
        loss = irf.reduce_sum(y * y)
        new_w = w - 0.1 * w
        update = irf.static.group(w.assign(new_w))
    return prog, x, unused, w, y, loss, new_w, update


def loss_ref(w):
    y = np.maximum(X @ w, 0)
    return (y * y).sum()


def test_fetching_loss_alone_leaves_variables_unchanged():
    prog, x, _, w, _, loss, new_w, _ = build()
    sess = irf.static.Session(prog)
    for _ in range(2):
        np.testing.assert_allclose(sess.run(loss, {x: X}), loss_ref(W0), rtol=1e-5)
    np.testing.assert_array_equal(sess.value(w), W0)
    # Fetching the value an assignment uses does not apply the assignment either.
    np.testing.assert_allclose(sess.run(new_w), 0.9 * W0, rtol=1e-6)
    np.testing.assert_array_equal(sess.value(w), W0)


def test_fetching_the_update_group_changes_variables():
    prog, x, _, w, _, loss, _, update = build()
    sess = irf.static.Session(prog)
    loss_v, none = sess.run([loss, update], feed_dict={"x": X})
    assert none is None
    np.testing.assert_allclose(loss_v, loss_ref(W0), rtol=1e-5)  # reads see the value the run started with
    np.testing.assert_allclose(sess.value(w), 0.9 * W0, rtol=1e-6)
    sess.run(update)  # needs no feed
    np.testing.assert_allclose(sess.value(w), 0.81 * W0, rtol=1e-6)
    np.testing.assert_allclose(sess.run(loss, {x: X}), loss_ref(0.81 * W0), rtol=1e-5)
    # Variables live in the session: a new session starts from the initial value.
    np.testing.assert_array_equal(irf.static.Session(prog).value(w), W0)
    np.testing.assert_array_equal(w.numpy(), W0)


def test_only_what_fetches_need_runs_and_unneeded_placeholders_may_be_unfed():
    prog, x, unused, w, y, loss, _, update = build()
    sess = irf.static.Session(prog)
    sess.run(loss, {x: X})  # `unused` not fed
    g = sess.graph_for(loss)
    assert g.input_names == ("x", "w")
    assert [n.op for n in g.nodes] == ["matmul", "relu", "mul", "reduce_sum"]  # the assignment is pruned away
    g_step = sess.graph_for(update)
    assert g_step.input_names == ("w",) and [n.op for n in g_step.nodes] == ["mul", "sub", "identity"]


def test_fetching_an_assignment_directly_applies_it():
    prog, x, _, w, _, loss, _, update = build()
    (assign,) = update.members  # what w.assign(...) returned
    sess = irf.static.Session(prog)
    np.testing.assert_allclose(sess.run(assign), 0.9 * W0, rtol=1e-6)
    np.testing.assert_allclose(sess.value(w), 0.9 * W0, rtol=1e-6)


def test_fetch_structures_are_kept():
    prog, x, _, w, y, loss, _, _ = build()
    sess = irf.static.Session(prog)
    out = sess.run({"loss": loss, "both": (y, [loss]), "w": w}, {x: X})
    assert set(out) == {"loss", "both", "w"}
    assert isinstance(out["both"], tuple) and isinstance(out["both"][1], list)
    np.testing.assert_allclose(out["both"][0], np.maximum(X @ W0, 0), rtol=1e-5)
    np.testing.assert_allclose(out["both"][1][0], loss_ref(W0), rtol=1e-5)
    np.testing.assert_array_equal(out["w"], W0)


def test_control_dependencies_run_the_assignment_and_reads_see_it():
    prog = irf.static.Program()
    with prog:
        v = irf.static.variable(np.float32(1.0), name="v")
        inc = v.assign_add(1.0)
        with irf.static.control_dependencies([inc]):
            doubled = v * 2.0
        plain = v * 2.0
    sess = irf.static.Session(prog)
    assert sess.run(plain) == 2.0 and sess.value(v) == 1.0
    assert sess.run(doubled) == 4.0 and sess.value(v) == 2.0
    assert sess.run(doubled) == 6.0 and sess.value(v) == 3.0


def test_to_ir_gives_the_graph_of_the_fetches():
    prog, x, unused, w, y, loss, _, update = build()
    g = prog.to_ir([loss, update]).verify()
    assert g.input_names == ("x", "unused", "w")
    assert len(g.outputs) == 2 and g.outputs[1].name.startswith("w_assign")
    out = irf.run(g, {"x": X, "unused": np.zeros(2, np.float32), "w": W0})
    np.testing.assert_allclose(out[g.outputs[0].name], loss_ref(W0), rtol=1e-5)
    np.testing.assert_allclose(out[g.outputs[1].name], 0.9 * W0, rtol=1e-6)
    full = prog.to_ir()
    assert {v.name for v in full.outputs} >= {g.outputs[1].name, loss.name}


def test_session_on_onnxruntime_matches_numpy():
    prog, x, _, w, _, loss, _, update = build()
    a, b = irf.static.Session(prog), irf.static.Session(prog, executor="ort")
    for _ in range(2):
        la, _ = a.run([loss, update], {x: X})
        lb, _ = b.run([loss, update], {x: X})
        np.testing.assert_allclose(la, lb, rtol=1e-5)
    np.testing.assert_allclose(a.value(w), b.value(w), rtol=1e-6)


def test_gradients_in_a_program_train_a_variable():
    if not hasattr(irf.autodiff, "symbolic_gradients"):
        pytest.skip("irflow.autodiff.symbolic_gradients (autodiff issue) not available")
    prog = irf.static.Program()
    with prog:
        x = irf.static.placeholder("x", (None, 4), "float32")
        w = irf.static.variable(W0, name="w")
        loss = irf.reduce_sum((x @ w) * (x @ w))
        (gw,) = irf.static.gradients(loss, [w])
        step = irf.static.group(w.assign_sub(0.01 * gw))
    sess = irf.static.Session(prog)
    g_v, _ = sess.run([gw, step], {x: X})
    np.testing.assert_allclose(g_v, 2 * X.T @ (X @ W0), rtol=1e-4)
    np.testing.assert_allclose(sess.value(w), W0 - 0.01 * g_v, rtol=1e-5)


# -- bad input: each an IrflowError naming the culprit ---------------------------------------------
def test_wrong_feed_dtype():
    prog, x, _, _, _, loss, _, _ = build()
    with pytest.raises(irf.DTypeError, match=r"placeholder 'x' must be float32, got float64"):
        irf.static.Session(prog).run(loss, {x: X.astype(np.float64)})


def test_wrong_feed_shape():
    prog, x, _, _, _, loss, _, _ = build()
    with pytest.raises(irf.ShapeError, match=r"placeholder 'x' must have shape \(None, 4\), got \(5, 3\)"):
        irf.static.Session(prog).run(loss, {x: X[:, :3]})


def test_unknown_placeholder():
    prog, x, _, _, _, loss, _, _ = build()
    with pytest.raises(irf.IrflowError, match=r"unknown placeholder 'z'.*placeholders: x, unused"):
        irf.static.Session(prog).run(loss, {"x": X, "z": X})
    with pytest.raises(irf.IrflowError, match=r"%relu_\d+ is not a placeholder"):
        irf.static.Session(prog).run(loss, {prog.placeholders[0]: X, _relu_of(prog): X})


def _relu_of(prog):
    b = prog.builder
    node = next(n for n in b.nodes if n.op == "relu")
    return irf.SymbolicTensor(b, node.outputs[0].name, node.outputs[0].type)


def test_missing_feed():
    prog, x, _, _, _, loss, _, _ = build()
    with pytest.raises(irf.IrflowError, match=r"missing feed for placeholder 'x' \(float32\[None, 4\]\)"):
        irf.static.Session(prog).run(loss)


def test_placeholder_outside_a_program():
    with pytest.raises(irf.IrflowError, match=r"irf.static.placeholder must be called inside `with program:`"):
        irf.static.placeholder("x", (2,), "float32")


def test_variable_assignment_checks_dtype_and_shape_in_a_program():
    prog = irf.static.Program()
    with prog:
        w = irf.static.variable(np.zeros((2, 2), np.float32), name="w")
        with pytest.raises(irf.DTypeError, match=r"Variable 'w' \(float32\[2, 2\]\): assign got a float64"):
            w.assign(irf.static.constant(np.zeros((2, 2))))
        with pytest.raises(irf.ShapeError, match=r"Variable 'w': assign of a value of shape \(3,\)"):
            w.assign(irf.static.constant(np.zeros(3, np.float32)))
