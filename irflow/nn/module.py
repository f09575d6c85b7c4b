"""``irf.nn.Module``: a Python object that tracks the Variables and sub-Modules it holds.

Tracking walks the attributes (``self.__dict__``, in assignment order) and the lists,
tuples and dicts in them, every time it is asked, so a list appended to later is still seen.
A Variable or Module met twice (a shared layer) is counted once.

Names: constructing a Module opens a name scope; Variables created while it is open get the
scope path as prefix, so ``MLP([...])`` holding two Linear layers names its weights
``mlp/linear/weight`` and ``mlp/linear_1/weight`` (Keras' rule: the first of a kind has the
bare name, later ones ``_1``, ``_2`` ... within the same parent scope).

``state_dict()`` keys are attribute paths relative to the Module (``layers.0.weight``, as
PyTorch), not Variable names: two instances of one architecture have different Variable
names (``linear_3/weight``) but the same attribute paths, so their states load into each other.

>>> class Affine(irf.nn.Module):                      # doctest: +SKIP
...     def __init__(self):
...         super().__init__()
...         self.w = irf.Variable(np.ones((2, 2), "float32"), name="w")
...     def forward(self, x):
...         return x @ self.w
>>> Affine().variables[0].name                         # doctest: +SKIP
'affine/w'
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from irflow.atomic import atomic_write
from irflow.errors import DTypeError, IrflowError, ShapeError
from irflow.frontends.eager import Tensor
from irflow.frontends.variables import Variable, variable_creator_scope

__all__ = ["Module"]


class _Scope:
    """One open name scope: its path and how often each base name was used in it."""

    def __init__(self, path: str):
        self.path = path
        self.counts: dict[str, int] = {}

    def unique(self, base: str) -> str:
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"


_ROOT = _Scope("")
_SCOPES: list[_Scope] = [_ROOT]


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s).lower()


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


class _ModuleMeta(type):
    """Opens the Module's name scope around ``__init__`` so its Variables get prefixed names."""

    def __init__(cls, name, bases, ns):
        super().__init__(name, bases, ns)
        if callable(ns.get("call")) and "forward" not in ns:
            cls.forward = ns["call"]  # Keras spells forward `call(self, inputs, training=None)`
        forward = getattr(cls, "forward", None)
        call = getattr(cls, "__call__", None)
        if call is not None and call.__qualname__ != "Module.__call__":
            forward = call  # a tf.Module-style subclass that overrides __call__ itself
        try:
            cls._forward_takes_training = forward is not None and "training" in inspect.signature(forward).parameters
        except (TypeError, ValueError):
            cls._forward_takes_training = False
        try:
            cls._init_takes_name = "name" in inspect.signature(cls.__init__).parameters
        except (TypeError, ValueError):
            cls._init_takes_name = False

    def __call__(cls, *args: Any, name: str | None = None, **kwargs: Any):
        parent = _SCOPES[-1]
        local = parent.unique(name or _snake(cls.__name__))
        self = cls.__new__(cls)
        object.__setattr__(self, "_module_name", local)
        object.__setattr__(self, "_module_path", _join(parent.path, local))
        object.__setattr__(self, "training", True)
        scope = _Scope(self._module_path)

        def prefix(next_creator: Callable[..., Any], **kw: Any) -> Any:
            if _SCOPES[-1] is scope:  # only Variables this Module itself creates (sub-Modules prefix their own)
                kw["name"] = _join(scope.path, kw.get("name") or "Variable")
            return next_creator(**kw)

        if cls._init_takes_name:  # a subclass that takes name= gets it too (as a Keras layer)
            kwargs["name"] = name
        _SCOPES.append(scope)
        try:
            with variable_creator_scope(prefix):
                self.__init__(*args, **kwargs)
        finally:
            _SCOPES.pop()
        return self


def _walk(value: Any, path: str, out: list[tuple[str, Any]]) -> None:
    """Variables and Modules inside ``value`` (lists, tuples, dicts searched), with their paths."""
    if isinstance(value, (Variable, Module)):
        out.append((path, value))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _walk(item, f"{path}.{i}", out)
    elif isinstance(value, dict):
        for k, item in value.items():
            _walk(item, f"{path}.{k}", out)


class Module(metaclass=_ModuleMeta):
    """Base class of layers and models: subclass it, create Variables and sub-Modules in
    ``__init__`` and compute in ``forward``; call the Module to run ``forward``.

    ``training`` (True after construction) is read by layers whose output depends on the mode
    (Dropout, BatchNorm); ``train()`` / ``eval()`` set it for the whole tree, and a
    ``training=`` keyword given to the call wins over it for that call.

    >>> model = irf.nn.MLP([4, 8, 2])                          # doctest: +SKIP
    >>> [v.name for v in model.trainable_variables][:2]         # doctest: +SKIP
    ['mlp/linear/weight', 'mlp/linear/bias']
    """

    _module_name: str
    _module_path: str
    _forward_takes_training: bool
    training: bool

    def __init__(self, name: str | None = None) -> None:
        """Accepts ``super().__init__()`` and the Keras idiom ``super().__init__(name=name)``.

        The metaclass has named the Module already (from ``name=`` given to the constructor, or
        the class name); a different ``name`` given here renames it, as long as no Variable has
        been created under the old name yet (call ``super().__init__`` first, as in Keras).
        """
        if name is None or name == self._module_name:
            return
        scope = _SCOPES[-1]
        if scope.path != self._module_path or len(_SCOPES) < 2:
            raise IrflowError(f"{type(self).__name__}.__init__(name={name!r}) called outside the Module's construction")
        if scope.counts or any(isinstance(v, (Variable, Module)) for v in self.__dict__.values()):
            raise IrflowError(f"{type(self).__name__}.__init__(name={name!r}): Variables were already created as "
                              f"{self._module_path!r}; call super().__init__(name=...) before creating any")
        parent = _SCOPES[-2]
        local = parent.unique(name)
        object.__setattr__(self, "_module_name", local)
        object.__setattr__(self, "_module_path", _join(parent.path, local))
        scope.path = self._module_path

    # -- calling -----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise IrflowError(f"{type(self).__name__} ({self._module_path!r}) defines no forward(...)")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if "training" in kwargs and not self._forward_takes_training:
            kwargs.pop("training")  # a mode-independent layer ignores the mode
        return self.forward(*args, **kwargs)

    def call_child(self, child: Any, x: Any, training: bool | None) -> Any:
        """Call ``child`` on ``x``, passing ``training`` on when the child's forward takes it."""
        if training is not None and isinstance(child, Module) and child._forward_takes_training:
            return child(x, training=training)
        return child(x)

    def is_training(self, training: bool | None) -> bool:
        """The mode of one call: the ``training`` argument if given, else ``self.training``."""
        return self.training if training is None else bool(training)

    # -- tracking ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """This Module's name in its parent scope (``linear_1``)."""
        return self._module_name

    @property
    def path(self) -> str:
        """The full name scope (``mlp/linear_1``): the prefix of its Variables' names."""
        return self._module_path

    def _children(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for key, value in self.__dict__.items():
            if not key.startswith("_module_"):
                _walk(value, key, out)
        return out

    def named_variables(self) -> list[tuple[str, Variable]]:
        """(attribute path, Variable) for every Variable in the tree, each once, in order."""
        seen: set[int] = set()
        out: list[tuple[str, Variable]] = []

        def visit(module: Module, prefix: str, active: set[int]) -> None:
            if id(module) in active:
                return  # a cycle (a Module holding its parent): do not loop
            active = active | {id(module)}
            for path, obj in module._children():
                full = f"{prefix}{path}"
                if isinstance(obj, Module):
                    visit(obj, full + ".", active)
                elif id(obj) not in seen:
                    seen.add(id(obj))
                    out.append((full, obj))

        visit(self, "", set())
        return out

    def named_extra_variables(self) -> list[tuple[str, Variable]]:
        """(path, Variable) for state kept out of ``state_dict`` (attributes named
        ``_module_*``, such as Dropout's call counter): not part of the model's weights, but
        part of a training run, so ``irf.train.Checkpoint`` saves it for an exact resume."""
        out: list[tuple[str, Variable]] = []
        modules = [("", self)] + self._named_submodules()
        for prefix, module in modules:
            for key, value in module.__dict__.items():
                if key.startswith("_module_") and isinstance(value, Variable):
                    out.append((f"{prefix}{key}", value))
        return out

    def _named_submodules(self) -> list[tuple[str, "Module"]]:
        """(attribute path + ".", Module) for every sub-Module, each once, depth first."""
        seen: set[int] = {id(self)}
        out: list[tuple[str, Module]] = []

        def visit(module: Module, prefix: str) -> None:
            for path, obj in module._children():
                if isinstance(obj, Module) and id(obj) not in seen:
                    seen.add(id(obj))
                    out.append((f"{prefix}{path}.", obj))
                    visit(obj, f"{prefix}{path}.")

        visit(self, "")
        return out

    @property
    def variables(self) -> list[Variable]:
        """Every Variable (trainable or not) in this Module and its sub-Modules."""
        return [v for _, v in self.named_variables()]

    @property
    def trainable_variables(self) -> list[Variable]:
        """The Variables with ``trainable=True`` (what an optimizer updates)."""
        return [v for _, v in self.named_variables() if v.trainable]

    @property
    def non_trainable_variables(self) -> list[Variable]:
        """The Variables with ``trainable=False`` (BatchNorm's running statistics, counters)."""
        return [v for _, v in self.named_variables() if not v.trainable]

    @property
    def submodules(self) -> list["Module"]:
        """Every Module below this one (not itself), depth first, each once."""
        seen: set[int] = {id(self)}
        out: list[Module] = []

        def visit(module: Module) -> None:
            for _, obj in module._children():
                if isinstance(obj, Module) and id(obj) not in seen:
                    seen.add(id(obj))
                    out.append(obj)
                    visit(obj)

        visit(self)
        return out

    def train(self, mode: bool = True) -> "Module":
        """Set ``training`` on this Module and all sub-Modules; returns self."""
        for m in [self, *self.submodules]:
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """``train(False)``: inference mode (Dropout off, BatchNorm uses running statistics)."""
        return self.train(False)

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Attribute path -> a copy of the Variable's value (trainable and not).

        >>> model.state_dict().keys()   # doctest: +SKIP
        dict_keys(['layers.0.weight', 'layers.0.bias', ...])
        """
        return {path: np.array(v.numpy(), copy=True) for path, v in self.named_variables()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Assign values by attribute path. ``strict``: missing or unexpected keys are an
        ``IrflowError`` naming them; a shape or dtype mismatch is always a ShapeError/DTypeError.
        Nothing is assigned unless every entry checks out.

        >>> other.load_state_dict(model.state_dict())   # doctest: +SKIP
        """
        named = dict(self.named_variables())
        missing = [k for k in named if k not in state]
        unexpected = [k for k in state if k not in named]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise IrflowError(f"load_state_dict into {type(self).__name__} {self.path!r}: " + "; ".join(parts))
        checked: list[tuple[Variable, np.ndarray]] = []
        for key, var in named.items():
            if key not in state:
                continue
            value = state[key]
            arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
            if arr.shape != var.shape:
                raise ShapeError(f"load_state_dict: {key!r} (Variable {var.name!r}) has shape {var.shape}, the state holds {arr.shape}")
            if arr.dtype != var.numpy().dtype:
                raise DTypeError(f"load_state_dict: {key!r} (Variable {var.name!r}) is {var.dtype.value}, the state holds {arr.dtype}")
            checked.append((var, np.array(arr, copy=True)))
        for var, arr in checked:
            var.assign(arr)

    def save(self, path: str | Path) -> Path:
        """Write ``state_dict()`` as an ``.npz`` file (no pickle); returns the path written.

        >>> model.save("model.npz")   # doctest: +SKIP
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")  # np.savez would append it silently
        state = self.state_dict()
        for key, arr in state.items():
            if arr.dtype.kind == "V" or arr.dtype.name == "bfloat16":
                raise DTypeError(f"save: {key!r} is {arr.dtype}, which .npz cannot store without pickle")
        with atomic_write(path, "wb") as f:  # a crash mid-save leaves the old file intact
            np.savez(f, **state)
        return path

    def load(self, path: str | Path, strict: bool = True) -> None:
        """Read a file written by ``save`` (``np.load(allow_pickle=False)``) into this Module.

        >>> model.load("model.npz")   # doctest: +SKIP
        """
        path = Path(path)
        if not path.is_file():
            raise IrflowError(f"Module.load: no such file: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                state = {k: data[k] for k in data.files}
        except (ValueError, OSError) as e:
            raise IrflowError(f"Module.load: {path} is not an .npz file written by Module.save: {e}") from None
        self.load_state_dict(state, strict=strict)

    # -- Keras-style training (the loop lives in irflow.nn.trainer.Trainer) ---------------------------
    def compile(self, optimizer: Any, loss: Any, metrics: Any = None, executor: str = "numpy",
                device: str = "cpu") -> None:
        """Choose the optimizer, loss (``loss(predictions, targets)`` or a name) and metrics for
        ``fit`` / ``evaluate``, as Keras' ``compile`` (docs/training.md).

        >>> model.compile(irf.optim.Adam(1e-2), "sparse_categorical_crossentropy", ["accuracy"])   # doctest: +SKIP
        """
        from irflow.nn.trainer import Trainer

        object.__setattr__(self, "_module_trainer", Trainer(self, optimizer, loss, metrics, executor, device))

    def _trainer(self, what: str) -> Any:
        trainer = self.__dict__.get("_module_trainer")
        if trainer is None:
            raise IrflowError(f"{type(self).__name__}.{what}: call compile(optimizer, loss, metrics) first")
        return trainer

    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1, verbose: int = 1,
            callbacks: Any = None, validation_data: Any = None, shuffle: bool = True,
            initial_epoch: int | None = None, *, sample_weight: Any = None, seed: int = 0, writer: Any = None,
            checkpoint_manager: Any = None, log_every_n_steps: int = 10) -> Any:
        """Train the compiled model; returns a History. Keras' argument order: ``x`` is an
        iterable of ``(x, y)`` batches (an ``irf.data.Dataset``, a ``DataLoader``, a list) or an
        array with its labels ``y`` (batched by ``batch_size``, default 32, shuffled per epoch
        with ``seed`` when ``shuffle``). ``fit(dataset, 3)`` also means 3 epochs. The rest as
        ``irflow.nn.trainer.Trainer.fit`` (docs/training.md).

        >>> history = model.fit(train_ds, epochs=3, validation_data=val_ds)   # doctest: +SKIP
        >>> history = model.fit(x, y, batch_size=64, epochs=3)                # doctest: +SKIP
        """
        from irflow.nn.trainer import ArrayBatches

        trainer = self._trainer("fit")
        is_array = isinstance(x, (np.ndarray, Tensor))
        if is_array:
            if y is None:
                raise IrflowError(f"{type(self).__name__}.fit(x): an array x needs its labels y")
            data = ArrayBatches(np.asarray(x), np.asarray(y), batch_size or 32, shuffle, seed, sample_weight)
        else:
            if isinstance(y, int) and not isinstance(y, bool) and epochs == 1:
                y, epochs = None, y  # fit(dataset, 3): the spec's positional epochs
            if y is not None or batch_size is not None or sample_weight is not None:
                raise IrflowError(f"{type(self).__name__}.fit: y, batch_size and sample_weight are for array inputs; "
                                  f"{type(x).__name__} already yields (x, y) batches")
            data = x
        return trainer.fit(data, epochs, validation_data, callbacks, writer, checkpoint_manager, verbose, initial_epoch,
                           log_every_n_steps)

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None, verbose: int = 0, *,
                 sample_weight: Any = None) -> dict[str, float]:
        """Loss and metrics of the compiled model, in inference mode, with Keras' argument order:
        ``x`` is an iterable of ``(x, y)`` batches, or an array with its labels ``y`` (batched by
        ``batch_size``, default 32, in order).

        >>> model.evaluate(test_ds)              # doctest: +SKIP
        >>> model.evaluate(x_test, y_test)       # doctest: +SKIP
        """
        from irflow.nn.trainer import ArrayBatches

        if isinstance(x, (np.ndarray, Tensor)):
            if y is None:
                raise IrflowError(f"{type(self).__name__}.evaluate(x): an array x needs its labels y")
            data = ArrayBatches(np.asarray(x), np.asarray(y), batch_size or 32, False, 0, sample_weight)
        else:
            if y is not None or batch_size is not None or sample_weight is not None:
                raise IrflowError(f"{type(self).__name__}.evaluate: y, batch_size and sample_weight are for array "
                                  f"inputs; {type(x).__name__} already yields (x, y) batches")
            data = x
        return self._trainer("evaluate").evaluate(data, verbose)

    def __repr__(self) -> str:
        n = sum(int(np.prod(v.shape)) for v in self.variables)
        return f"<{type(self).__name__} {self.path!r}: {len(self.variables)} variables, {n} values>"
