"""Image layers (NCHW): Conv2d, MaxPool2d, AvgPool2d, and BatchNorm (any rank, channels on axis 1).

>>> conv = irf.nn.Conv2d(1, 8, 3, padding=1)                  # doctest: +SKIP
>>> conv(np.zeros((2, 1, 8, 8), "float32")).shape              # doctest: +SKIP
(2, 8, 8, 8)
"""
from __future__ import annotations

from typing import Any

from irflow import ops
from irflow.errors import IrflowError, ShapeError
from irflow.frontends.variables import Variable
from irflow.nn import init as initializers
from irflow.nn.layers import _positive_int
from irflow.nn.module import Module

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm"]


class Conv2d(Module):
    """2-D convolution, weight (out, in/groups, kh, kw), as ``torch.nn.Conv2d``; ``padding`` an
    int, a pair, four ints (top, left, bottom, right) or ``"same"``.

    >>> irf.nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)   # doctest: +SKIP
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, dtype: Any = "float32",
                 weight_init: Any = "glorot_uniform", bias_init: Any = "zeros", rng: Any = None):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = _positive_int(out_channels, "out_channels", "Conv2d")
        groups = _positive_int(groups, "groups", "Conv2d")
        if in_channels % groups or out_channels % groups:
            raise IrflowError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        rng = initializers.generator(rng)
        shape = (out_channels, in_channels // groups, kh, kw)
        self.weight = Variable(initializers.get(weight_init)(shape, dtype, rng), name="weight")
        self.bias = Variable(initializers.get(bias_init)((out_channels,), dtype, rng), name="bias") if bias else None

    def forward(self, x: Any) -> Any:
        return ops.conv2d(x, self.weight, self.bias, strides=self.stride, padding=self.padding,
                          dilations=self.dilation, groups=self.groups)


class MaxPool2d(Module):
    """Max over (kh, kw) windows; ``stride`` defaults to the kernel size."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Any) -> Any:
        return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(Module):
    """Mean over (kh, kw) windows (padding not counted); ``stride`` defaults to the kernel size."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Any) -> Any:
        return ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class BatchNorm(Module):
    """Batch normalization over axis 1 of (N, C) or (N, C, H, W) inputs, as ``torch.nn.BatchNorm2d``.

    Training mode normalizes with the batch's mean and (biased) variance and updates the running
    statistics ``running = (1 - momentum) * running + momentum * batch`` (the unbiased variance
    goes into ``running_var``), by ``assign``: eagerly, and inside ``irf.function`` as graph
    outputs written back. Inference mode normalizes with the running statistics.
    ``running_mean`` / ``running_var`` are non-trainable Variables.

    >>> bn = irf.nn.BatchNorm(16)                        # doctest: +SKIP
    >>> y = bn(x, training=True)                          # doctest: +SKIP
    """

    def __init__(self, num_features: int, momentum: float = 0.1, epsilon: float = 1e-5, dtype: Any = "float32"):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features", "BatchNorm")
        if not 0.0 <= momentum <= 1.0:
            raise IrflowError(f"BatchNorm: momentum must be in [0, 1], got {momentum!r}")
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        c = (num_features,)
        self.scale = Variable(initializers.ones(c, dtype), name="scale")
        self.bias = Variable(initializers.zeros(c, dtype), name="bias")
        self.running_mean = Variable(initializers.zeros(c, dtype), name="running_mean", trainable=False)
        self.running_var = Variable(initializers.ones(c, dtype), name="running_var", trainable=False)

    def forward(self, x: Any, training: bool | None = None) -> Any:
        shape = tuple(x.shape)
        if len(shape) < 2 or (isinstance(shape[1], int) and shape[1] != self.num_features):
            raise ShapeError(f"BatchNorm {self.path!r}: expects (N, {self.num_features}, ...), got shape {shape}")
        if not self.is_training(training):
            return ops.batch_norm(x, self.scale, self.bias, self.running_mean, self.running_var, epsilon=self.epsilon)
        axes = (0,) + tuple(range(2, len(shape)))
        mean = ops.reduce_mean(x, axis=axes)
        keep = ops.reduce_mean(x, axis=axes, keepdims=True)
        var = ops.reduce_mean(ops.mul(x - keep, x - keep), axis=axes)
        count = self._count(x, shape, axes)
        m = self.momentum
        unbiased = var * (count / (count - 1.0)) if count is not None else var
        self.running_mean.assign(self.running_mean * (1.0 - m) + ops.stop_gradient(mean) * m)
        self.running_var.assign(self.running_var * (1.0 - m) + ops.stop_gradient(unbiased) * m)
        return ops.batch_norm(x, self.scale, self.bias, mean, var, epsilon=self.epsilon)

    @staticmethod
    def _count(x: Any, shape: tuple, axes: tuple) -> Any:
        """Elements per channel: a float when the dims are known, else a tensor read at run time."""
        dims = [shape[a] for a in axes]
        if all(isinstance(d, int) for d in dims):
            n = 1
            for d in dims:
                n *= d
            return float(n) if n > 1 else None
        sizes = ops.gather(ops.shape_of(x), list(axes))
        return ops.cast(ops.reduce_prod(sizes), x.dtype)
