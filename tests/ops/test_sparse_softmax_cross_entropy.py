"""sparse_softmax_cross_entropy: the fused per-example loss -log_softmax(logits)[..., label].

Through ``check_op`` (a hand-written float64 loop reference, the type rule, the interpreter,
onnxruntime, finite-difference gradients in float64) on several batch shapes; then extreme
logits, 16-bit floats, PyTorch's cross_entropy (loss and gradient), second order, the gradient
graph on onnxruntime, symbolic shapes, the shape of the gradient graph, and the errors.
"""
from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import irflow as irf
from irflow.autodiff import vjp
from irflow.executors.numpy import Interpreter
from irflow.executors.numpy.kernels import KERNELS
from irflow.executors.onnx import OrtRunner
from irflow.ir.dtypes import DType
from tests.ops.harness import build_graph, check_op
from tests.ops.test_reduction import hessian_vector_check

OP = "sparse_softmax_cross_entropy"


def xent_reference(logits, labels):
    """Loop over examples in float64: log(sum(exp(x))) - x[label], shifted by the row's max."""
    out = np.zeros(labels.shape)
    for i in np.ndindex(labels.shape):
        row = logits[i].astype(np.float64)
        m = row.max()
        out[i] = m + math.log(sum(math.exp(v - m) for v in row)) - row[labels[i]]
    return out.astype(logits.dtype)


def softmax_rows(logits):
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def example(shape, dtype="float32", label_dtype="int64", seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(shape) * scale).astype(dtype)
    labels = rng.integers(0, shape[-1], shape[:-1]).astype(label_dtype)
    return logits, labels


# -- values and gradients ---------------------------------------------------------------------

SHAPES = [(7,), (1, 5), (6, 4), (2, 3, 5), (4, 1)]  # (7,): one example, a scalar label; (4, 1): one class


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("label_dtype", ["int64", "int32"])
def test_matches_reference_type_rule_ort_and_finite_differences(shape, dtype, label_dtype):
    logits, labels = example(shape, dtype, label_dtype)
    (loss,) = check_op(OP, [logits, labels], xent_reference)
    assert loss.shape == shape[:-1] and loss.dtype == logits.dtype
    if shape[-1] == 1:
        np.testing.assert_array_equal(loss, 0)  # one class: probability 1, whatever the logit


def test_empty_batch():
    logits, labels = np.zeros((0, 3), np.float32), np.zeros((0,), np.int64)
    (loss,) = check_op(OP, [logits, labels], lambda x, y: np.zeros((0,), np.float32), grad=False)
    assert loss.shape == (0,)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_logits_give_finite_loss_and_gradient(dtype):
    """Spreads of 1e4: exp(1e4) overflows even float64, so only the shifted form is finite."""
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [5e3, 5e3, -5e3]], dtype)
    labels = np.array([1, 2, 0])
    want = np.array([2e4, math.log(3), math.log(2)])
    (loss,) = check_op(OP, [logits, labels], lambda x, y: want.astype(dtype), rtol=1e-6, atol=0, grad=False)
    assert np.isfinite(loss).all()
    x = irf.Variable(logits)
    with irf.GradientTape() as tape:
        total = irf.reduce_sum(irf.sparse_softmax_cross_entropy(x, labels))
    grad = tape.gradient(total, x).numpy()
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[1, -1, 0], [1 / 3, 1 / 3, -2 / 3], [-0.5, 0.5, 0]], atol=1e-7)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_floats_are_computed_in_float32_and_rounded_once(dtype):
    np_dtype = DType(dtype).numpy
    logits, labels = example((5, 7), "float32", scale=4.0)
    logits = logits.astype(np_dtype)
    # the float64 loss rounded once to the 16-bit dtype; computing in the 16-bit dtype itself
    # would be off by many units in the last place
    want = xent_reference(logits.astype(np.float64), labels).astype(np_dtype)
    ulp = float(np.finfo(np.float16).eps) if dtype == "float16" else 2.0**-7
    (loss,) = check_op(OP, [logits, labels], lambda x, y: want, rtol=ulp, atol=0, ort=dtype == "float16",
                       ort_rtol=ulp, ort_atol=0, grad=False)
    assert loss.dtype == np_dtype


@pytest.mark.parametrize("classes", [1, 2, 64, 65, 300])  # class-major copy up to 64 classes, row-major above
@pytest.mark.parametrize("examples", [1, 3, 70])
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("step", [1, 2])
def test_kernel_layouts_agree_with_reference_and_leave_inputs_alone(classes, examples, dtype, step):
    np_dtype = DType(dtype).numpy
    rng = np.random.default_rng(classes * 100 + examples)
    # step 2: strided views (every other class and example), the kernel must not assume
    # contiguity; step 1 with one example or class: a transpose that is a view, not a copy
    big = (rng.standard_normal((step * examples, step * classes)) * 5).astype(np_dtype)
    logits = big[::step, ::step]
    labels = rng.integers(0, classes, step * examples)[::step]
    before = logits.copy(), labels.copy()
    got = KERNELS[OP](logits, labels)
    np.testing.assert_array_equal(logits, before[0])
    np.testing.assert_array_equal(labels, before[1])
    want = xent_reference(logits.astype(np.float64), labels)
    assert got.dtype == np_dtype and got.shape == (examples,)
    tol = 2.0**-7 if dtype == "bfloat16" else 1e-6
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)


# -- against PyTorch --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 5)], ids=str)
def test_loss_and_gradient_match_pytorch_cross_entropy(shape):
    torch = pytest.importorskip("torch", reason="the PyTorch cross-check needs torch")
    logits, labels = example(shape, "float64", seed=3)
    ct = np.random.default_rng(4).standard_normal(shape[:-1])
    t = torch.tensor(logits.reshape(-1, shape[-1]), requires_grad=True)
    want = torch.nn.functional.cross_entropy(t, torch.tensor(labels.reshape(-1)), reduction="none")
    want.backward(torch.tensor(ct.reshape(-1)))

    x = irf.Variable(logits)
    with irf.GradientTape() as tape:
        loss = irf.sparse_softmax_cross_entropy(x, labels)
    (grad,) = tape.gradient(loss, [x], output_gradients=[irf.tensor(ct)])
    np.testing.assert_allclose(loss.numpy(), want.detach().numpy().reshape(shape[:-1]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad.numpy(), t.grad.numpy().reshape(shape), rtol=1e-12, atol=1e-12)


def test_softmax_cross_entropy_loss_matches_pytorch_in_float32():
    torch = pytest.importorskip("torch", reason="the PyTorch cross-check needs torch")
    logits, labels = example((64, 10), "float32", seed=5)
    t = torch.tensor(logits, requires_grad=True)
    want = torch.nn.CrossEntropyLoss()(t, torch.tensor(labels))
    want.backward()
    x = irf.Variable(logits)
    with irf.GradientTape() as tape:
        loss = irf.nn.losses.softmax_cross_entropy(x, labels)
    np.testing.assert_allclose(float(loss), float(want.detach()), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-8)


# -- second order and the gradient graph ------------------------------------------------------

def test_hessian_vector_product_matches_finite_differences():
    """The gradient (softmax - one_hot) * g differentiates again, w.r.t. logits (NumPy and ORT)."""
    hessian_vector_check(OP, list(example((4, 5), "float64", seed=6)), {})


def test_hessian_is_diag_p_minus_p_p_transposed():
    # For one example, d2 loss / d logits2 = diag(p) - p p^T (the label drops out).
    logits, labels = example((3, 4), "float64", seed=7)
    hess = irf.hessian(lambda z: irf.reduce_sum(irf.sparse_softmax_cross_entropy(z, labels)))(logits).numpy()
    want = np.zeros((3, 4, 3, 4))
    for i, p in enumerate(softmax_rows(logits)):
        want[i, :, i, :] = np.diag(p) - np.outer(p, p)
    np.testing.assert_allclose(hess, want, rtol=1e-10, atol=1e-12)


def test_gradient_is_five_small_nodes_and_runs_on_onnxruntime():
    logits, labels = example((6, 4), "float32", seed=8)
    g = build_graph(OP, [logits, labels], {})
    gg = vjp(g, wrt=["in0"]).verify()
    added = sorted(n.op for n in gg.nodes[len(g.nodes):] if n.op != "identity")
    assert added == sorted(["softmax", "one_hot", "sub", "expand_dims", "mul"]), added
    ct = np.random.default_rng(9).standard_normal(6).astype("float32")
    feeds = {"in0": logits, "in1": labels, gg.inputs[-1].name: ct}
    want, got = Interpreter(gg).run(feeds), OrtRunner(gg).run(feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_softmax_cross_entropy_is_the_mean_of_the_fused_op():
    logits, labels = example((5, 3), "float32", seed=10)
    b = irf.GraphBuilder("loss")
    x, y = b.input("x", "float32", ("n", 3)), b.input("y", "int64", ("n",))
    with b:
        b.output(irf.nn.losses.softmax_cross_entropy(x, y), names=["loss"])
    g = b.build(verify=True)
    assert [n.op for n in g.nodes if n.op != "identity"] == [OP, "reduce_mean"]  # identity: the output's name
    got = Interpreter(g).run({"x": logits, "y": labels})["loss"]
    np.testing.assert_allclose(got, xent_reference(logits, labels).astype(np.float64).mean(), rtol=1e-6)


# -- symbolic shapes --------------------------------------------------------------------------

def test_symbolic_batch_keeps_its_symbol_and_runs_any_batch_on_both_executors():
    b = irf.GraphBuilder("xent")
    x, y = b.input("x", "float32", ("n", 4)), b.input("y", "int32", ("n",))
    with b:
        loss = irf.sparse_softmax_cross_entropy(x, y)
        assert loss.type.shape == ("n",) and loss.type.dtype is DType.float32
        b.output(loss, names=["loss"])
    gg = vjp(b.build(), wrt=["x"]).verify()
    runner = OrtRunner(gg)
    for n in (1, 5):
        logits, labels = example((n, 4), "float32", "int32", seed=n)
        feeds = {"x": logits, "y": labels, "ct_loss": np.ones(n, np.float32)}
        want, got = Interpreter(gg).run(feeds), runner.run(feeds)
        # atol: a loss near 0 is log(1 + tiny) - 0, a few float32 ulps of 1 off
        np.testing.assert_allclose(want["loss"], xent_reference(logits, labels), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(want["grad_x"], softmax_rows(logits) - np.eye(4)[labels], rtol=1e-5, atol=1e-6)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_a_known_dim_wins_over_a_symbol_and_symbolic_classes_have_no_gradient():
    b = irf.GraphBuilder("xent")
    x, y = b.input("x", "float32", ("n", 3, "c")), b.input("y", "int64", (2, "m"))
    with b:
        assert irf.sparse_softmax_cross_entropy(x, y).type.shape == (2, 3)  # symbols may match at run time
        b.output(irf.sparse_softmax_cross_entropy(x, y), names=["loss"])
    with pytest.raises(irf.UnsupportedOpError, match=r"sparse_softmax_cross_entropy.*static number of classes"):
        vjp(b.build(), wrt=["x"])


# -- errors -----------------------------------------------------------------------------------

def test_type_errors_name_the_op():
    logits, labels = example((4, 3))
    with pytest.raises(irf.DTypeError, match=r"sparse_softmax_cross_entropy: labels must be int32 or int64.*float32"):
        irf.sparse_softmax_cross_entropy(logits, labels.astype("float32"))
    with pytest.raises(irf.DTypeError, match=r"sparse_softmax_cross_entropy: labels must be int32 or int64.*uint8"):
        irf.sparse_softmax_cross_entropy(logits, labels.astype("uint8"))
    with pytest.raises(irf.DTypeError, match=r"sparse_softmax_cross_entropy takes float tensors"):
        irf.sparse_softmax_cross_entropy(labels[:, None].repeat(3, axis=1), labels)
    with pytest.raises(irf.ShapeError, match=r"sparse_softmax_cross_entropy: labels must have the shape.*\(4,\)"):
        irf.sparse_softmax_cross_entropy(logits, labels[:, None])
    with pytest.raises(irf.ShapeError, match=r"sparse_softmax_cross_entropy: labels must have the shape"):
        irf.sparse_softmax_cross_entropy(logits, labels[:3])
    with pytest.raises(irf.ShapeError, match=r"sparse_softmax_cross_entropy: logits must have a class axis"):
        irf.sparse_softmax_cross_entropy(np.float32(1.0), np.int64(0))
    b = irf.GraphBuilder("g")
    x, y = b.input("x", "float32", ("n", 3)), b.input("y", "int64", ("n", 3))
    with b, pytest.raises(irf.ShapeError, match=r"sparse_softmax_cross_entropy \(node"):
        irf.sparse_softmax_cross_entropy(x, y)


@pytest.mark.parametrize("bad", [3, -1, 100])
def test_labels_out_of_range_raise_on_numpy_naming_the_label(bad):
    """As PyTorch and TensorFlow (CPU): no silent zero row, no negative index from the end."""
    logits = np.zeros((4, 3), np.float32)
    labels = np.array([0, bad, 2, 1])
    with pytest.raises(irf.IrflowError, match=rf"label {bad} is out of range for 3 classes"):
        irf.sparse_softmax_cross_entropy(logits, labels)
    g = build_graph(OP, [logits, labels], {})
    with pytest.raises(irf.ExecutorError, match=rf"label {bad} is out of range for 3 classes"):
        Interpreter(g).run({"in0": logits, "in1": labels})


def test_labels_out_of_range_on_onnxruntime():
    """ONNX GatherElements (documented in docs/ops-nn.md): -classes..-1 count from the end,
    anything else fails the run."""
    logits = np.array([[0.0, 1.0, 2.0]], np.float32)
    g = build_graph(OP, [logits, np.array([0])], {})
    runner = OrtRunner(g)
    got = runner.run({"in0": logits, "in1": np.array([-1])})[g.output_names[0]]
    np.testing.assert_allclose(got, xent_reference(logits, np.array([2])), rtol=1e-6)
    with pytest.raises(Exception, match=r"(?i)out of range"):
        runner.run({"in0": logits, "in1": np.array([3])})


def test_docstring_example_runs():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(irf.sparse_softmax_cross_entropy, globs={"irf": irf, "np": np}):
        runner.run(test)
    assert runner.tries >= 1 and runner.failures == 0
