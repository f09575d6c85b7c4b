"""Optimizers: ``Optimizer`` (the base with the subclass hook), SGD, Adam, AdamW, RMSProp.

An optimizer keeps, per variable, a dict of *slots* (Variables: momentum buffers, moment
estimates) and a step counter ``iterations`` (an int64 Variable). Every update is written
with irf ops and ``assign``, so ``apply_gradients`` runs eagerly and inside ``irf.function``
alike: in a traced train step the slots and the counter are graph state, updated in the graph.

The hook for a custom optimizer (docs/nn.md):

- ``create_slots(var) -> dict[str, Variable]``: called once per variable, on its first update
  (use ``self.slot(var, "name")`` to make a zero Variable like ``var``);
- ``update(var, grad, slots, step) -> new value of var``: ``step`` is the 1-based update count
  as a float tensor (for bias corrections), ``self.lr`` the learning rate of this step;
  assign the slots inside (``slots["m"].assign(...)``); the base class assigns the result to var.

>>> opt = irf.optim.SGD(0.1, momentum=0.9)                                # doctest: +SKIP
>>> opt.apply_gradients(zip(grads, model.trainable_variables))           # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import numpy as np

from irflow import ops
from irflow.errors import IrflowError, ShapeError
from irflow.frontends.variables import Variable

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSProp"]


def _nonneg(value: Any, what: str, opt: str) -> float:
    if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) or value < 0:
        raise IrflowError(f"{opt}: {what} must be a number >= 0, got {value!r}")
    return float(value)


def _slot_problems(specs: Mapping[str, tuple], values: Mapping[str, np.ndarray], key: str, var_name: str) -> list[str]:
    """What is wrong with ``values`` as the slots ``specs`` describes (unexpected or mis-shaped)."""
    problems = []
    for name, arr in values.items():
        if name not in specs:
            problems.append(f"unexpected slot {key}.{name} (Variable {var_name!r} has {sorted(specs)})")
        elif (tuple(np.shape(arr)), np.asarray(arr).dtype) != (specs[name][0], specs[name][1]):
            problems.append(f"slot {key}.{name} of Variable {var_name!r} is {specs[name][1]}{list(specs[name][0])}, "
                            f"the state holds {np.asarray(arr).dtype}{list(np.shape(arr))}")
    return problems


def _fill_slots(opt: "Optimizer", var: Variable, slots: Mapping[str, Variable], values: Mapping[str, np.ndarray]) -> None:
    problems = _slot_problems({k: (tuple(s.shape), s.numpy().dtype) for k, s in slots.items()}, values, "slot", var.name)
    if problems:
        raise IrflowError(f"{type(opt).__name__}: " + "; ".join(problems))
    for name, arr in values.items():
        # _set, not assign: this may run while a step is being traced (slots are created on a
        # variable's first update); the slot's value is then what the graph is fed.
        slots[name]._set(np.array(arr, copy=True), "restoring an optimizer slot")


class Optimizer:
    """Base class. Subclasses implement ``update`` (and ``create_slots`` if they keep state).

    ``learning_rate``: a float or a schedule, ``schedule(step) -> lr`` called with the number
    of updates done so far (a float32 tensor) and written with irf ops (``irf.optim.schedules``).

    >>> class SignSGD(irf.optim.Optimizer):                                # doctest: +SKIP
    ...     def update(self, var, grad, slots, step):
    ...         return var - self.lr * irf.sign(grad)
    """

    def __init__(self, learning_rate: float | Callable[[Any], Any], name: str | None = None):
        if not callable(learning_rate):
            learning_rate = _nonneg(learning_rate, "learning_rate", type(self).__name__)
        self.learning_rate = learning_rate
        self.name = name or type(self).__name__.lower()
        self.iterations = Variable(np.zeros((), np.int64), name=f"{self.name}/iterations", trainable=False)
        self._slots: dict[int, tuple[Variable, dict[str, Variable]]] = {}
        self._pending_slots: dict[int, dict[str, np.ndarray]] = {}  # loaded before the slots existed
        self.lr: Any = None

    # -- the hook ------------------------------------------------------------------------------
    def create_slots(self, var: Variable) -> dict[str, Variable]:
        """The per-variable state of this optimizer (none by default)."""
        return {}

    def update(self, var: Variable, grad: Any, slots: dict[str, Variable], step: Any) -> Any:
        """The new value of ``var`` (see the module docstring)."""
        raise IrflowError(f"{type(self).__name__} does not implement update(var, grad, slots, step)")

    # -- helpers for subclasses ----------------------------------------------------------------
    def slot(self, var: Variable, name: str, init: float = 0.0) -> Variable:
        """A non-trainable Variable like ``var`` filled with ``init``, named ``<var>/<optimizer>/<name>``."""
        return Variable(np.full(var.shape, init, var.numpy().dtype), name=f"{var.name}/{self.name}/{name}", trainable=False)

    def slots_of(self, var: Variable) -> dict[str, Variable]:
        """The slots of ``var`` (created on first use)."""
        entry = self._slots.get(id(var))
        if entry is None:
            entry = self._slots[id(var)] = (var, dict(self.create_slots(var)))  # var kept alive: ids stay unique
            pending = self._pending_slots.pop(len(self._slots) - 1, None)
            if pending is not None:  # load_state_dict came before this variable's first update
                _fill_slots(self, var, entry[1], pending)
        return entry[1]

    def slot_variables(self) -> list[tuple[Variable, dict[str, Variable]]]:
        """(variable, its slots) for every variable updated so far, in first-update order."""
        return [(var, slots) for var, slots in self._slots.values()]

    def slot_specs(self, var: Variable) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Slot name -> (shape, dtype) that ``var`` has or would get (without creating them)."""
        entry = self._slots.get(id(var))
        slots = entry[1] if entry is not None else self.create_slots(var)
        return {k: (tuple(s.shape), s.numpy().dtype) for k, s in slots.items()}

    def set_slots(self, var: Variable, values: Mapping[str, np.ndarray]) -> None:
        """Give ``var``'s slots (created now if needed) these values; names and shapes must match
        ``slot_specs(var)`` (checkpoint restore checks that first)."""
        _fill_slots(self, var, self.slots_of(var), values)

    # -- state (PyTorch's state_dict protocol) -----------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """The step counter and every slot, as copies: ``{"iterations": ..., "<i>.<slot>": ...}``
        where ``i`` numbers the variables in the order of their first update (PyTorch numbers
        its parameters the same way, by position).

        >>> opt2.load_state_dict(opt.state_dict())   # doctest: +SKIP
        """
        state = {"iterations": np.array(self.iterations.numpy(), copy=True)}
        for i, (_, slots) in enumerate(self.slot_variables()):
            for name, slot in slots.items():
                state[f"{i}.{name}"] = np.array(slot.numpy(), copy=True)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ``state_dict()``. Slots of variables this optimizer has not updated yet are
        kept and filled when the i-th variable gets its slots (its first update, traced or not).
        Unknown keys, missing slots and shape or dtype mismatches are one ``IrflowError``
        naming them; nothing changes unless every entry checks out.

        >>> opt.load_state_dict(state)   # doctest: +SKIP
        """
        where = f"{type(self).__name__}.load_state_dict"
        per_var: dict[int, dict[str, np.ndarray]] = {}
        problems = []
        if "iterations" not in state:
            problems.append("missing 'iterations'")
        for key, value in state.items():
            if key == "iterations":
                continue
            index, _, name = key.partition(".")
            if not index.isdigit() or not name:
                problems.append(f"unexpected key {key!r} (keys are 'iterations' and '<i>.<slot>')")
                continue
            per_var.setdefault(int(index), {})[name] = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        existing = self.slot_variables()
        for i, (var, slots) in enumerate(existing):
            got = per_var.get(i, {})
            for name in slots:
                if name not in got:
                    problems.append(f"missing slot {i}.{name} (Variable {var.name!r})")
            problems += _slot_problems(self.slot_specs(var), got, f"{i}", var.name)
        if problems:
            raise IrflowError(f"{where}: " + "; ".join(problems))
        self.iterations.assign(np.asarray(state["iterations"], np.int64).reshape(()))
        for i, (var, slots) in enumerate(existing):
            _fill_slots(self, var, slots, per_var.pop(i, {}))
        self._pending_slots = per_var

    @property
    def variables(self) -> list[Variable]:
        """The optimizer's own Variables: the step counter and every slot."""
        return [self.iterations] + [s for _, slots in self._slots.values() for s in slots.values()]

    # -- applying ------------------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> None:
        """Update each variable from its gradient; pairs whose gradient is None are skipped.

        >>> opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
        ...                         model.trainable_variables))           # doctest: +SKIP
        """
        pairs = []
        for i, pair in enumerate(grads_and_vars):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise IrflowError(f"{type(self).__name__}.apply_gradients: item {i} is not a (gradient, variable) pair")
            grad, var = pair
            if not isinstance(var, Variable):
                raise IrflowError(f"{type(self).__name__}.apply_gradients: item {i} pairs a gradient with a "
                                  f"{type(var).__name__}, not an irf.Variable")
            if grad is not None:
                if tuple(grad.shape) != tuple(var.shape) and all(isinstance(d, int) for d in grad.shape):
                    raise ShapeError(f"{type(self).__name__}: gradient of shape {tuple(grad.shape)} for Variable "
                                     f"{var.name!r} of shape {var.shape}")
                pairs.append((grad, var))
        if not pairs:
            return
        done = ops.cast(self.iterations, "float32")  # updates applied before this one
        step = done + 1.0
        lr = self.learning_rate(done) if callable(self.learning_rate) else self.learning_rate
        per_dtype: dict[Any, tuple[Any, Any]] = {}  # var dtype -> (lr, step) in that dtype
        for grad, var in pairs:
            slots = self.slots_of(var)
            if var.dtype not in per_dtype:
                st = step if var.dtype.value == "float32" else ops.cast(step, var.dtype)
                per_dtype[var.dtype] = (lr if isinstance(lr, float) else ops.cast(lr, var.dtype), st)
            self.lr, st = per_dtype[var.dtype]  # a Python float lr stays weakly typed
            new = self.update(var, grad, slots, st)
            if new is not None:
                var.assign(new)
        self.lr = None
        self.iterations.assign_add(1)

    def minimize(self, loss_fn: Callable[[], Any], var_list: list[Variable]) -> Any:
        """Compute ``loss_fn()`` under a GradientTape, apply its gradients, return the loss."""
        from irflow.autodiff import GradientTape

        with GradientTape() as tape:
            loss = loss_fn()
        self.apply_gradients(zip(tape.gradient(loss, var_list), var_list))
        return loss


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD`` (dampening 0):
    ``g += weight_decay * var``; with momentum ``buf = momentum * buf + g`` and the step
    direction ``buf`` (or ``g + momentum * buf`` with ``nesterov``); ``var -= lr * direction``.

    >>> opt = irf.optim.SGD(0.01, momentum=0.9, nesterov=True)   # doctest: +SKIP
    """

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, name: str | None = None):
        super().__init__(learning_rate, name)
        self.momentum = _nonneg(momentum, "momentum", "SGD")
        self.weight_decay = _nonneg(weight_decay, "weight_decay", "SGD")
        if nesterov and self.momentum == 0.0:
            raise IrflowError("SGD: nesterov=True needs a momentum > 0")
        self.nesterov = bool(nesterov)

    def create_slots(self, var: Variable) -> dict[str, Variable]:
        return {"momentum": self.slot(var, "momentum")} if self.momentum else {}

    def update(self, var: Variable, grad: Any, slots: dict[str, Variable], step: Any) -> Any:
        if self.weight_decay:
            grad = grad + var * self.weight_decay
        if self.momentum:
            buf = slots["momentum"].assign(slots["momentum"] * self.momentum + grad)
            grad = grad + buf * self.momentum if self.nesterov else buf
        return var - grad * self.lr


class Adam(Optimizer):
    """Adam (Kingma and Ba), as ``torch.optim.Adam``: ``m = b1 m + (1-b1) g``,
    ``v = b2 v + (1-b2) g^2``, ``var -= lr * m_hat / (sqrt(v_hat) + epsilon)`` with the bias
    corrections ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``.

    >>> opt = irf.optim.Adam(1e-3)   # doctest: +SKIP
    """

    def __init__(self, learning_rate: Any = 1e-3, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-7,
                 name: str | None = None):
        super().__init__(learning_rate, name)
        for what, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= b < 1.0:
                raise IrflowError(f"{type(self).__name__}: {what} must be in [0, 1), got {b!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.epsilon = _nonneg(epsilon, "epsilon", type(self).__name__)

    def create_slots(self, var: Variable) -> dict[str, Variable]:
        return {"m": self.slot(var, "m"), "v": self.slot(var, "v")}

    def adam_step(self, var: Variable, grad: Any, slots: dict[str, Variable], step: Any) -> Any:
        """The Adam direction times lr (shared by Adam and AdamW)."""
        b1, b2 = self.beta1, self.beta2
        m = slots["m"].assign(slots["m"] * b1 + grad * (1.0 - b1))
        v = slots["v"].assign(slots["v"] * b2 + grad * grad * (1.0 - b2))
        m_hat = m / (1.0 - ops.pow(b1, step))
        v_hat = v / (1.0 - ops.pow(b2, step))
        return m_hat / (ops.sqrt(v_hat) + self.epsilon) * self.lr

    def update(self, var: Variable, grad: Any, slots: dict[str, Variable], step: Any) -> Any:
        return var - self.adam_step(var, grad, slots, step)


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``: ``var *= 1 - lr * weight_decay``,
    then the Adam step.

    >>> opt = irf.optim.AdamW(1e-3, weight_decay=0.01)   # doctest: +SKIP
    """

    def __init__(self, learning_rate: Any = 1e-3, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-7,
                 weight_decay: float = 0.01, name: str | None = None):
        super().__init__(learning_rate, beta1, beta2, epsilon, name)
        self.weight_decay = _nonneg(weight_decay, "weight_decay", "AdamW")

    def update(self, var: Variable, grad: Any, slots: dict[str, Variable], step: Any) -> Any:
        decayed = var - var * (self.lr * self.weight_decay)
        return decayed - self.adam_step(var, grad, slots, step)


class RMSProp(Optimizer):
    """RMSProp, as ``torch.optim.RMSprop(alpha=rho)``: ``s = rho s + (1-rho) g^2``,
    ``var -= lr * g / (sqrt(s) + epsilon)``; with momentum ``buf = momentum buf + g / (sqrt(s) + eps)``,
    ``var -= lr * buf``.

    >>> opt = irf.optim.RMSProp(1e-3, rho=0.9)   # doctest: +SKIP
    """

    def __init__(self, learning_rate: Any = 1e-3, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7,
                 name: str | None = None):
        super().__init__(learning_rate, name)
        if not 0.0 <= rho < 1.0:
            raise IrflowError(f"RMSProp: rho must be in [0, 1), got {rho!r}")
        self.rho = float(rho)
        self.momentum = _nonneg(momentum, "momentum", "RMSProp")
        self.epsilon = _nonneg(epsilon, "epsilon", "RMSProp")

    def create_slots(self, var: Variable) -> dict[str, Variable]:
        slots = {"square_avg": self.slot(var, "square_avg")}
        if self.momentum:
            slots["momentum"] = self.slot(var, "momentum")
        return slots

    def update(self, var: Variable, grad: Any, slots: dict[str, Variable], step: Any) -> Any:
        s = slots["square_avg"].assign(slots["square_avg"] * self.rho + grad * grad * (1.0 - self.rho))
        direction = grad / (ops.sqrt(s) + self.epsilon)
        if self.momentum:
            direction = slots["momentum"].assign(slots["momentum"] * self.momentum + direction)
        return var - direction * self.lr
