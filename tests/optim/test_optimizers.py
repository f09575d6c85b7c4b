"""Optimizers against hand-written NumPy formulas (3 steps), torch.optim, eagerly and traced;
the custom-optimizer hook; schedules; a traced train step on NumPy vs onnxruntime."""
import numpy as np
import pytest

import irflow as irf

SHAPES = [(3, 4), (4,)]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype("float32") for s in SHAPES]
    grads = [[rng.standard_normal(s).astype("float32") for s in SHAPES] for _ in range(3)]
    return init, grads


def run_irflow(opt, init, grads, traced=False):
    vs = [irf.Variable(v.copy(), name=f"p{i}") for i, v in enumerate(init)]

    def step(*gs):
        opt.apply_gradients(zip(gs, vs))

    fn = irf.function(step) if traced else step
    for gs in grads:
        fn(*gs)
    return [v.numpy() for v in vs]


def np_sgd(p, grads, lr, momentum=0.0, nesterov=False, wd=0.0):
    p = [x.astype(np.float64) for x in p]
    buf = [np.zeros_like(x) for x in p]
    for gs in grads:
        for i, g in enumerate(gs):
            g = g + wd * p[i]
            if momentum:
                buf[i] = momentum * buf[i] + g
                g = g + momentum * buf[i] if nesterov else buf[i]
            p[i] = p[i] - lr * g
    return p


def np_adam(p, grads, lr, b1=0.9, b2=0.999, eps=1e-7, wd=0.0, decoupled=False):
    p = [x.astype(np.float64) for x in p]
    m = [np.zeros_like(x) for x in p]
    v = [np.zeros_like(x) for x in p]
    for t, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            if decoupled:
                p[i] = p[i] * (1 - lr * wd)
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            mh, vh = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
            p[i] = p[i] - lr * mh / (np.sqrt(vh) + eps)
    return p


def np_rmsprop(p, grads, lr, rho=0.9, eps=1e-7, momentum=0.0):
    p = [x.astype(np.float64) for x in p]
    s = [np.zeros_like(x) for x in p]
    buf = [np.zeros_like(x) for x in p]
    for gs in grads:
        for i, g in enumerate(gs):
            s[i] = rho * s[i] + (1 - rho) * g * g
            d = g / (np.sqrt(s[i]) + eps)
            if momentum:
                buf[i] = momentum * buf[i] + d
                d = buf[i]
            p[i] = p[i] - lr * d
    return p


CASES = [
    ("sgd", lambda: irf.optim.SGD(0.1), lambda p, g: np_sgd(p, g, 0.1)),
    ("sgd_momentum", lambda: irf.optim.SGD(0.1, momentum=0.9), lambda p, g: np_sgd(p, g, 0.1, 0.9)),
    ("sgd_nesterov_wd", lambda: irf.optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
     lambda p, g: np_sgd(p, g, 0.1, 0.9, True, 0.01)),
    ("adam", lambda: irf.optim.Adam(0.01), lambda p, g: np_adam(p, g, 0.01)),
    ("adamw", lambda: irf.optim.AdamW(0.01, weight_decay=0.1), lambda p, g: np_adam(p, g, 0.01, wd=0.1, decoupled=True)),
    ("rmsprop", lambda: irf.optim.RMSProp(0.01, rho=0.8), lambda p, g: np_rmsprop(p, g, 0.01, 0.8)),
    ("rmsprop_momentum", lambda: irf.optim.RMSProp(0.01, momentum=0.5), lambda p, g: np_rmsprop(p, g, 0.01, momentum=0.5)),
]


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
@pytest.mark.parametrize("name,make,ref", CASES, ids=[c[0] for c in CASES])
def test_three_steps_equal_numpy_formulas(name, make, ref, traced):
    init, grads = _problem()
    opt = make()
    got = run_irflow(opt, init, grads, traced=traced)
    want = ref(init, grads)
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)
    assert int(opt.iterations.numpy()) == 3


TORCH_CASES = [
    ("sgd_momentum", lambda: irf.optim.SGD(0.1, momentum=0.9), lambda t, ps: t.optim.SGD(ps, lr=0.1, momentum=0.9)),
    ("sgd_nesterov", lambda: irf.optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
     lambda t, ps: t.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("adam", lambda: irf.optim.Adam(0.01, epsilon=1e-8), lambda t, ps: t.optim.Adam(ps, lr=0.01, eps=1e-8)),
    ("adamw", lambda: irf.optim.AdamW(0.01, epsilon=1e-8, weight_decay=0.1),
     lambda t, ps: t.optim.AdamW(ps, lr=0.01, eps=1e-8, weight_decay=0.1)),
    ("rmsprop", lambda: irf.optim.RMSProp(0.01, rho=0.9, epsilon=1e-8),
     lambda t, ps: t.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-8)),
]


@pytest.mark.parametrize("name,make,make_torch", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_three_steps_equal_torch_optim(name, make, make_torch):
    torch = pytest.importorskip("torch", reason="comparison with torch.optim needs torch")
    init, grads = _problem(1)
    got = run_irflow(make(), init, grads)
    ps = [torch.nn.Parameter(torch.tensor(v.copy())) for v in init]
    opt = make_torch(torch, ps)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = torch.tensor(g)
        opt.step()
    for g, p in zip(got, ps):
        np.testing.assert_allclose(g, p.detach().numpy(), rtol=1e-5, atol=1e-6)


class SignMomentum(irf.optim.Optimizer):
    """A custom optimizer through the documented hook: signSGD with a momentum slot."""

    def __init__(self, learning_rate, beta=0.5):
        super().__init__(learning_rate)
        self.beta = beta

    def create_slots(self, var):
        return {"buf": self.slot(var, "buf")}

    def update(self, var, grad, slots, step):
        buf = slots["buf"].assign(slots["buf"] * self.beta + grad)
        return var - irf.sign(buf) * self.lr / step  # step: 1, 2, 3 ...


def np_sign_momentum(p, grads, lr, beta=0.5):
    p = [x.astype(np.float64) for x in p]
    buf = [np.zeros_like(x) for x in p]
    for t, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            buf[i] = beta * buf[i] + g
            p[i] = p[i] - np.sign(buf[i]) * lr / t
    return p


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
def test_custom_optimizer_subclass_eager_and_traced(traced):
    init, grads = _problem(2)
    opt = SignMomentum(0.1)
    got = run_irflow(opt, init, grads, traced=traced)
    for g, w in zip(got, np_sign_momentum(init, grads, 0.1)):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
    slots = [s for s in opt.variables if s is not opt.iterations]
    assert [s.name for s in slots] == ["p0/signmomentum/buf", "p1/signmomentum/buf"]
    assert all(not s.trainable for s in slots)


def test_optimizer_without_update_raises_naming_it():
    class Nothing(irf.optim.Optimizer):
        pass

    with pytest.raises(irf.IrflowError, match="Nothing does not implement update"):
        Nothing(0.1).apply_gradients([(np.ones(2, "float32"), irf.Variable(np.zeros(2, "float32")))])


def test_bad_pairs_and_none_gradients():
    v = irf.Variable(np.ones(2, "float32"), name="v")
    opt = irf.optim.SGD(0.5)
    opt.apply_gradients([(None, v)])  # skipped, nothing changes, the counter stays
    np.testing.assert_array_equal(v.numpy(), [1, 1])
    assert int(opt.iterations.numpy()) == 0
    with pytest.raises(irf.IrflowError, match="not an irf.Variable"):
        opt.apply_gradients([(np.ones(2, "float32"), np.ones(2, "float32"))])
    with pytest.raises(irf.ShapeError, match="'v'"):
        opt.apply_gradients([(np.ones(3, "float32"), v)])
    with pytest.raises(irf.IrflowError, match="learning_rate"):
        irf.optim.Adam(-1.0)


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
def test_schedules_follow_their_formulas(traced):
    sched = irf.optim.schedules.ExponentialDecay(0.5, decay_steps=2, decay_rate=0.5)
    v = irf.Variable(np.zeros(1, "float32"), name="v")
    opt = irf.optim.SGD(sched)

    def step():
        opt.apply_gradients([(irf.ones((1,), "float32"), v)])

    fn = irf.function(step) if traced else step
    total = 0.0
    for t in range(5):
        fn()
        total += 0.5 * 0.5 ** (t / 2)  # lr at step t (updates done before it)
        np.testing.assert_allclose(v.numpy(), [-total], rtol=1e-6)
    cos = irf.optim.schedules.CosineDecay(1.0, decay_steps=4, alpha=0.1)
    for t in [0.0, 2.0, 4.0, 9.0]:
        want = (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(t, 4) / 4))) * 1.0
        np.testing.assert_allclose(float(cos(irf.tensor(np.float32(t)))), want, rtol=1e-6)
    pw = irf.optim.schedules.PiecewiseConstant([2, 5], [1.0, 0.5, 0.1])
    assert [float(pw(irf.tensor(np.float32(t)))) for t in (0, 2, 4, 5, 9)] == pytest.approx([1.0, 0.5, 0.5, 0.1, 0.1])


def test_traced_train_step_numpy_and_ort_give_the_same_losses_for_10_steps():
    """One model per executor, same init and data: the losses of 10 Adam steps agree."""
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((16, 6)).astype("float32") for _ in range(10)]
    ys = [np.argmax(x[:, :3], axis=1) for x in xs]  # a learnable rule

    def losses(executor):
        model = irf.nn.MLP([6, 16, 3], rng=7)
        opt = irf.optim.Adam(0.01)

        @irf.function(executor=executor)
        def step(x, y):
            with irf.GradientTape() as tape:
                loss = irf.nn.losses.softmax_cross_entropy(model(x), y)
            vs = model.trainable_variables
            opt.apply_gradients(zip(tape.gradient(loss, vs), vs))
            return loss

        out = [float(step(x, y)) for x, y in zip(xs, ys)]
        return out, model.state_dict()

    a, sa = losses("numpy")
    b, sb = losses("ort")
    np.testing.assert_allclose(b, a, rtol=1e-5)
    assert a[-1] < a[0]  # it learns
    for k in sa:
        np.testing.assert_allclose(sb[k], sa[k], rtol=1e-4, atol=1e-5)
