"""Dense layers, containers and activations: Linear (Dense), Embedding, LayerNorm, Dropout,
Flatten, Sequential, MLP, ReLU/Tanh/Sigmoid/GELU. Convolution, pooling and BatchNorm are in
``irflow.nn.conv``. Every forward is written with ``irf`` ops, so a layer runs eagerly, under
a GradientTape and inside ``irf.function`` alike.

>>> model = irf.nn.MLP([784, 256, 10])           # doctest: +SKIP
>>> logits = model(np.zeros((2, 784), "float32"))  # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from irflow import ops
from irflow.errors import IrflowError
from irflow.frontends.variables import Variable
from irflow.nn import init as initializers
from irflow.nn.module import Module
from irflow.ops.dispatch import BUILDER_STACK

__all__ = ["Linear", "Dense", "Embedding", "LayerNorm", "Dropout", "Flatten", "Sequential", "MLP",
           "ReLU", "Tanh", "Sigmoid", "GELU", "activation"]


def _positive_int(value: Any, what: str, layer: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise IrflowError(f"{layer}: {what} must be a positive int, got {value!r}")
    return int(value)


class Linear(Module):
    """``y = x @ weight + bias`` with ``weight`` of shape (in_features, out_features).

    ``weight_init`` / ``bias_init``: an initializer or its name (``irf.nn.init``); ``rng``: a
    Generator or int seed for them (default: the ``irf.nn.init`` generator).

    >>> layer = irf.nn.Linear(3, 2, rng=0)            # doctest: +SKIP
    >>> layer(np.ones((4, 3), "float32")).shape         # doctest: +SKIP
    (4, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = "float32",
                 weight_init: Any = "glorot_uniform", bias_init: Any = "zeros", rng: Any = None):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        rng = initializers.generator(rng)
        self.weight = Variable(initializers.get(weight_init)((in_features, out_features), dtype, rng), name="weight")
        self.bias = Variable(initializers.get(bias_init)((out_features,), dtype, rng), name="bias") if bias else None

    def forward(self, x: Any) -> Any:
        y = ops.matmul(x, self.weight)
        return y if self.bias is None else y + self.bias


Dense = Linear  # Keras' name


class Embedding(Module):
    """A lookup table: integer ids of any shape -> vectors, ``weight[ids]`` (shape ids.shape + (dim,)).

    >>> emb = irf.nn.Embedding(100, 16)                 # doctest: +SKIP
    >>> emb(np.array([[1, 2, 3]])).shape                 # doctest: +SKIP
    (1, 3, 16)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype: Any = "float32",
                 weight_init: Any = None, rng: Any = None):
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim", "Embedding")
        init = initializers.get(weight_init) if weight_init is not None else initializers.normal(1.0)  # PyTorch's N(0, 1)
        self.weight = Variable(init((num_embeddings, embedding_dim), dtype, initializers.generator(rng)), name="weight")

    def forward(self, ids: Any) -> Any:
        return ops.gather(self.weight, ids, axis=0)


class LayerNorm(Module):
    """Normalize over the last axis, then scale and shift (learned, shape (features,)).

    >>> irf.nn.LayerNorm(8)(np.ones((2, 8), "float32")).shape   # doctest: +SKIP
    (2, 8)
    """

    def __init__(self, features: int, epsilon: float = 1e-5, dtype: Any = "float32"):
        super().__init__()
        self.features = _positive_int(features, "features", "LayerNorm")
        self.epsilon = float(epsilon)
        self.scale = Variable(initializers.ones((features,), dtype), name="scale")
        self.bias = Variable(initializers.zeros((features,), dtype), name="bias")

    def forward(self, x: Any) -> Any:
        return ops.layer_norm(x, self.scale, self.bias, axis=-1, epsilon=self.epsilon)


class Dropout(Module):
    """Inverted dropout in training mode (zero with probability ``rate``, scale the rest by
    1/(1 - rate)), the identity in inference mode.

    A fresh mask per training call, eagerly and inside ``irf.function`` alike: the mask is
    ``frac(u + k * phi) < rate`` with ``u`` uniform numbers drawn once from ``seed`` for the
    input's shape, ``k`` a call counter (a non-trainable Variable, so a traced step advances it
    in the graph) and ``phi`` the golden ratio. Each call's mask is an independent-looking
    Bernoulli(rate) pattern; across calls each element follows a Weyl sequence (dropped in a
    fraction ``rate`` of the calls). Same seed, same calls: same masks, eager or traced.
    An input whose shape is not static (a symbolic batch dim in a trace) falls back to the
    ``dropout`` op, whose seed is fixed at trace time (docs/nn.md).
    Inside ``irf.vmap`` (static batch size B) example b uses counter ``k + b`` and the counter
    advances by B once: exactly the masks of a Python loop calling the layer on each example in
    turn (nested vmaps: the nested loop, row-major; docs/vectorization.md).

    >>> drop = irf.nn.Dropout(0.1, seed=3)               # doctest: +SKIP
    """

    _GOLDEN = 0.6180339887498949

    def __init__(self, rate: float = 0.5, seed: int | None = None):
        super().__init__()
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
            raise IrflowError(f"Dropout: rate must be a float in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = int(initializers.generator(None).integers(0, 2**31 - 1)) if seed is None else int(seed)
        # The call counter is state but not part of the model: kept out of state_dict (the
        # "_module_" prefix is not tracked), read and advanced like any Variable in a trace.
        self._module_calls = Variable(np.zeros((), np.int64), name="dropout_calls", trainable=False)

    def forward(self, x: Any, training: bool | None = None) -> Any:
        if not self.is_training(training) or self.rate == 0.0:
            return x
        shape = tuple(x.shape)
        if not all(isinstance(d, int) for d in shape):
            return ops.dropout(x, rate=self.rate, seed=self.seed, training=True)
        k = ops.cast(self._module_calls, "float64")
        in_vmap = _vmap_example_index()
        if in_vmap is not None:
            k = k + in_vmap[0]  # example b: the loop's (b+1)-th call
        shift = k * self._GOLDEN - ops.floor(k * self._GOLDEN)  # frac(k * phi) in float64: exact enough for 2**40 calls
        u = ops.random_uniform(shape, dtype="float64", seed=self.seed) + shift
        u = u - ops.floor(u)
        keep = ops.greater_equal(u, self.rate)
        self._module_calls.assign_add(1 if in_vmap is None else in_vmap[1])
        return ops.where(keep, x * (1.0 / (1.0 - self.rate)), ops.zeros_like(x))


def _vmap_example_index() -> tuple[Any, int] | None:
    """(this example's index among all examples of the active vmaps, their number), or None
    outside vmap. Nested vmaps number examples row-major (outer index * inner size + inner
    index), as the nested Python loop would call the layer. None too when a batch size is not
    static. The vmap builders are told by their fields (nn does not import autodiff internals)."""
    levels = [b for b in BUILDER_STACK if getattr(b, "batch_index", None) is not None and hasattr(b, "size")]
    if not levels or not all(isinstance(b.size, int) for b in levels):
        return None
    index, total = None, 1
    for b in reversed(levels):  # innermost first
        term = ops.cast(b.batch_index(), "float64") * float(total)
        index = term if index is None else index + term
        total *= b.size
    return index, total


class Flatten(Module):
    """(batch, d1, d2, ...) -> (batch, d1*d2*...); the batch dim may be symbolic, the rest must be known."""

    def forward(self, x: Any) -> Any:
        rest = tuple(x.shape[1:])
        if not all(isinstance(d, int) for d in rest):
            raise IrflowError(f"Flatten: the dims after the batch dim must be known, got shape {tuple(x.shape)}")
        return ops.reshape(x, (-1, int(np.prod(rest))))


class _Activation(Module):
    fn = staticmethod(ops.relu)

    def forward(self, x: Any) -> Any:
        return type(self).fn(x)


class ReLU(_Activation):
    """max(x, 0)."""
    fn = staticmethod(ops.relu)


class Tanh(_Activation):
    """tanh(x)."""
    fn = staticmethod(ops.tanh)


class Sigmoid(_Activation):
    """1 / (1 + exp(-x))."""
    fn = staticmethod(ops.sigmoid)


class GELU(_Activation):
    """x * Phi(x) (the exact, erf-based GELU)."""
    fn = staticmethod(ops.gelu)


_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "gelu": GELU}


def activation(name: str) -> Module:
    """An activation Module by name: relu, tanh, sigmoid, gelu."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise IrflowError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}") from None


class Sequential(Module):
    """Layers applied in order: ``Sequential([a, b, c])`` or ``Sequential(a, b, c)``.

    A ``training=`` keyword reaches the layers that take one (Dropout, BatchNorm).

    >>> model = irf.nn.Sequential(irf.nn.Linear(4, 8), irf.nn.ReLU(), irf.nn.Linear(8, 2))   # doctest: +SKIP
    """

    def __init__(self, *layers: Any):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise IrflowError(f"Sequential: layer {i} is a {type(layer).__name__}, not a Module or callable")
        self.layers = list(layers)

    def forward(self, x: Any, training: bool | None = None) -> Any:
        for layer in self.layers:
            x = self.call_child(layer, x, training)
        return x

    def __getitem__(self, i: int) -> Any:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)


class MLP(Module):
    """Linear layers of the given sizes with an activation between them (none after the last).

    ``MLP([784, 256, 256, 10])`` is Linear(784, 256), ReLU, Linear(256, 256), ReLU, Linear(256, 10),
    its weights named ``mlp/linear/weight``, ``mlp/linear_1/weight``, ``mlp/linear_2/weight``.

    >>> irf.nn.MLP([4, 8, 3], activation="tanh")   # doctest: +SKIP
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", dtype: Any = "float32",
                 weight_init: Any = "glorot_uniform", rng: Any = None):
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2:
            raise IrflowError(f"MLP: sizes needs at least an input and an output size, got {sizes}")
        if activation not in _ACTIVATIONS:
            raise IrflowError(f"MLP: unknown activation {activation!r}; known: {sorted(_ACTIVATIONS)}")
        rng = initializers.generator(rng)
        self.layers = [Linear(a, b, dtype=dtype, weight_init=weight_init, rng=rng) for a, b in zip(sizes, sizes[1:])]
        self.activation = _ACTIVATIONS[activation].fn

    def forward(self, x: Any) -> Any:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x
