"""Tiny PyTorch versions of common architectures, with random weights, for the model zoo check
(tests/models/test_zoo.py) and benchmark (benchmarks/zoo.py). Each ``build_<name>()`` returns
``(module in eval mode, example inputs)``; everything is seeded."""
from __future__ import annotations

import math

import torch
from torch import nn


def _randomize_bn(module: nn.Module) -> None:
    """Non-trivial BatchNorm statistics and affine parameters (eval mode reads them), and
    LayerNorm parameters."""
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        elif isinstance(m, nn.LayerNorm):  # distinct values: exporters merge equal initializers
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def _conv_bn(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a, self.b = _conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout)
        self.down = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.b(torch.relu(self.a(x)))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNetTiny(nn.Module):
    """ResNet-18's layout (stem, 4 stages of 2 basic blocks, global pool, fc) at width 8."""

    def __init__(self, width=8, classes=10):
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, width), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            cout = width * mult
            blocks += [BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand=4):
        super().__init__()
        hidden = cin * expand
        self.body = nn.Sequential(_conv_bn(cin, hidden, 1), nn.ReLU6(), _conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                  nn.ReLU6(), _conv_bn(hidden, cout, 1))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, 8, 3, 2), nn.ReLU6())
        self.blocks = nn.Sequential(InvertedResidual(8, 8, 1), InvertedResidual(8, 12, 2))
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class Attention(nn.Module):
    def __init__(self, dim, heads, causal=False):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        if self.causal:
            mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
            att = att.masked_fill(~mask, float("-inf"))
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(y)


def gelu_tanh(x):  # GPT-2's GELU, with the x ** 3 the issue measured
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Block(nn.Module):
    def __init__(self, dim, heads, causal):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, causal)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.causal = causal

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        h = self.fc1(self.ln2(x))
        return x + self.fc2(gelu_tanh(h) if self.causal else nn.functional.gelu(h))


class ViTTiny(nn.Module):
    def __init__(self, dim=32, patch=4, image=16, classes=5):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        n = (image // patch) ** 2
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(Block(dim, 4, False), Block(dim, 4, False))
        self.ln, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x):
        p = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(p.shape[0], -1, -1), p], dim=1) + self.pos
        return self.head(self.ln(self.blocks(x))[:, 0])


class GPT2Tiny(nn.Module):
    def __init__(self, vocab=50, dim=32, context=16):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.Sequential(Block(dim, 4, True), Block(dim, 4, True))
        self.ln, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab, bias=False)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1])
        return self.head(self.ln(self.blocks(self.wte(ids) + self.wpe(pos))))


def _double_conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())


class UNetTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1, self.enc2, self.mid = _double_conv(3, 8), _double_conv(8, 16), _double_conv(16, 32)
        self.up_resize = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                       nn.Conv2d(32, 16, 1))
        self.dec2 = _double_conv(32, 16)
        self.up_transposed = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec1 = _double_conv(16, 8)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(nn.functional.max_pool2d(e1, 2))
        m = self.mid(nn.functional.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up_resize(m), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up_transposed(d2), e1], dim=1))
        return self.out(d1)


class DynamicBatchMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 4))

    def forward(self, x):
        return self.net(x).softmax(dim=-1)


class RecurrentLM(nn.Module):
    def __init__(self, cell="lstm", vocab=30, dim=16, hidden=24):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        if cell == "lstm":
            self.rnn = nn.LSTM(dim, hidden, num_layers=2, batch_first=True)
            out = hidden
        else:
            self.rnn = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)
            out = 2 * hidden
        self.head = nn.Linear(out, vocab)

    def forward(self, ids):
        y, _ = self.rnn(self.emb(ids))
        return self.head(y)


class Conv3dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv3d(2, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(), nn.MaxPool3d(2),
                                  nn.Conv3d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool3d(2, ceil_mode=True))
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.body(x), 1))


def _ids(b, t, vocab, seed):
    return torch.randint(0, vocab, (b, t), generator=torch.Generator().manual_seed(seed))


def _image(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


BUILDERS = {
    "resnet18": lambda: (ResNetTiny(), (_image(2, 3, 32, 32),)),
    "mobilenetv2": lambda: (MobileNetV2Tiny(), (_image(2, 3, 32, 32),)),
    "vit": lambda: (ViTTiny(), (_image(2, 3, 16, 16),)),
    "gpt2": lambda: (GPT2Tiny(), (_ids(2, 12, 50, 0),)),
    "unet": lambda: (UNetTiny(), (_image(2, 3, 16, 16),)),
    "dynamic_batch": lambda: (DynamicBatchMLP(), (_image(3, 12),)),
    "lstm_lm": lambda: (RecurrentLM("lstm"), (_ids(2, 7, 30, 1),)),
    "gru_lm": lambda: (RecurrentLM("gru"), (_ids(2, 7, 30, 2),)),
    "conv3d": lambda: (Conv3dNet(), (_image(2, 2, 8, 8, 8),)),
}
# Models exported with a symbolic batch axis (input 0, axis 0).
DYNAMIC_BATCH = {"dynamic_batch"}


def build(name: str):
    torch.manual_seed(0)
    model, inputs = BUILDERS[name]()
    _randomize_bn(model)
    return model.eval(), inputs


def export(model, inputs, path: str, exporter: str, dynamic_batch: bool = False) -> None:
    """``torch.onnx.export`` with the legacy TorchScript exporter or the dynamo one."""
    import warnings

    names = [f"input_{i}" for i in range(len(inputs))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            axes = {names[0]: {0: "batch"}} if dynamic_batch else None
            torch.onnx.export(model, inputs, path, dynamo=False, input_names=names, output_names=["output"],
                              dynamic_axes=axes, opset_version=17)
        else:
            shapes = ({0: torch.export.Dim("batch", min=1, max=64)},) if dynamic_batch else None
            torch.onnx.export(model, inputs, path, dynamo=True, input_names=names, output_names=["output"],
                              dynamic_shapes=shapes, verbose=False)
