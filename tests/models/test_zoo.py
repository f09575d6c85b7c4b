"""Model zoo check: tiny PyTorch architectures (tests/models/zoo_models.py: ResNet-18-like,
MobileNetV2 blocks, a ViT, a GPT-2-like decoder, a UNet, a dynamic-batch MLP, LSTM and GRU
language models, a Conv3d net) with random weights, exported by ``torch.onnx.export``,
imported by irflow, run on NumPy and onnxruntime and differentiated: outputs and gradients
(w.r.t. float inputs and the weights that kept their PyTorch names) against PyTorch's own.

Exporters: the legacy TorchScript one for every model; the dynamo one (needs onnxscript, the
``torch`` extra) for the models where it differs most (GPT-2's Pow, the UNet's Resize, the
LSTM) by default, for all with IRFLOW_ZOO_FULL=1 (each dynamo export takes ~2-3 s).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the model zoo is built and checked with PyTorch")

import irflow as irf  # noqa: E402
from irflow.autodiff.vjp import vjp  # noqa: E402
from tests.models.zoo_models import BUILDERS, DYNAMIC_BATCH, build, export  # noqa: E402

DYNAMO_DEFAULT = {"gpt2", "unet", "lstm_lm"}
CASES = [(name, "legacy") for name in BUILDERS] + [
    (name, "dynamo") for name in BUILDERS if os.environ.get("IRFLOW_ZOO_FULL") or name in DYNAMO_DEFAULT]


def _exported(name, exporter, tmp_path):
    if exporter == "dynamo":
        pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript (the torch extra)")
    model, inputs = build(name)
    path = str(tmp_path / f"{name}_{exporter}.onnx")
    export(model, inputs, path, exporter, dynamic_batch=name in DYNAMIC_BATCH)
    return model, inputs, path


@pytest.mark.parametrize("name,exporter", CASES)
def test_zoo_model_forward_and_gradients_match_torch(name, exporter, tmp_path):
    model, inputs, path = _exported(name, exporter, tmp_path)
    g = irf.onnx.load(path)
    feeds = {n: x.numpy() for n, x in zip(g.input_names, inputs)}
    ins = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = model(*ins)
    want = out.detach().numpy()
    for executor in ("numpy", "ort"):
        got = irf.run(g, feeds, executor=executor)
        np.testing.assert_allclose(got[g.output_names[0]], want, rtol=1e-4, atol=2e-5, err_msg=executor)

    ct = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    model.zero_grad()
    (out * ct).sum().backward()
    params = {n: p for n, p in model.named_parameters()}
    same_weights = [n for n, v in g.initializers.items()
                    if n in params and np.array_equal(np.asarray(v), params[n].detach().numpy())]
    float_inputs = [n for n, x in zip(g.input_names, ins) if x.grad is not None]
    wrt = float_inputs + same_weights
    assert wrt, f"{name}: nothing to compare gradients of (initializers: {list(g.initializers)[:5]})"
    gg = vjp(g, wrt, outputs=[g.output_names[0]])
    grads = irf.run(gg, {**feeds, f"ct_{g.output_names[0]}": ct.numpy()})
    torch_grads = {**{n: x.grad for n, x in zip(g.input_names, ins) if x.grad is not None},
                   **{n: params[n].grad for n in same_weights}}
    for n in wrt:
        t = torch_grads[n].numpy()
        np.testing.assert_allclose(grads[f"grad_{n}"], t, rtol=2e-3, atol=2e-4 * max(1.0, float(np.abs(t).max())),
                                   err_msg=f"gradient of {n}")


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_dynamic_batch_model_runs_any_batch(exporter, tmp_path):
    model, _, path = _exported("dynamic_batch", exporter, tmp_path)
    g = irf.onnx.load(path)
    assert not isinstance(g.inputs[0].type.shape[0], int)
    for batch in (1, 5):
        x = torch.randn(batch, 12, generator=torch.Generator().manual_seed(batch))
        want = model(x).detach().numpy()
        for executor in ("numpy", "ort"):
            got = irf.run(g, {g.input_names[0]: x.numpy()}, executor=executor)[g.output_names[0]]
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
