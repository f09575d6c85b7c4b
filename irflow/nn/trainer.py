"""``fit``: the training loop, as Keras' ``compile``/``fit`` and as a Lightning-style ``Trainer``.

One engine, two spellings (docs/training.md explains the choice):

- Keras: ``model.compile(optimizer, loss, metrics)`` then ``model.fit(data, epochs,
  validation_data, callbacks)`` and ``model.evaluate(data)``; these delegate to
- ``Trainer(model, optimizer, loss, metrics).fit(data, epochs, ...)`` (``irf.train.Trainer``),
  for code that keeps the loop apart from the model, as PyTorch Lightning's ``Trainer`` does;
  without a loss it calls the model's ``training_step(batch)`` (and ``validation_step``,
  ``configure_optimizers``), Lightning's hooks.

The train step (forward, loss, gradient, optimizer update, metric updates) is one
``irf.function``: traced once per batch shape (a shorter last batch adds one trace) and then
run as a graph on the chosen executor. ``data`` is any iterable of ``(x, y)`` or
``(x, y, sample_weight)`` batches of NumPy arrays, iterated once per epoch: a list, a
generator function's result wrapped in a list, an ``irf.data.Dataset`` or ``DataLoader``
(their ``set_epoch(e)`` is called before epoch ``e``, so a resumed run sees the same order).

>>> model.compile(irf.optim.Adam(1e-2), "sparse_categorical_crossentropy", ["accuracy"])   # doctest: +SKIP
>>> history = model.fit(batches, epochs=3)                                                   # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from irflow import summary
from irflow.autodiff import GradientTape
from irflow.errors import IrflowError
from irflow.frontends.trace import function
from irflow.frontends.variables import Variable
from irflow.nn import losses, metrics as metrics_mod

if TYPE_CHECKING:  # Module.compile builds a Trainer, so this module does not import module.py at run time
    from irflow.nn.module import Module

__all__ = ["Trainer", "Callback", "History", "ArrayBatches"]

_LOSSES: dict[str, Callable[[Any, Any], Any]] = {
    "sparse_categorical_crossentropy": losses.softmax_cross_entropy,
    "softmax_cross_entropy": losses.softmax_cross_entropy,
    "cross_entropy": losses.softmax_cross_entropy,
    "mse": losses.mse,
    "mean_squared_error": losses.mse,
    "binary_crossentropy": losses.binary_cross_entropy,
    "binary_cross_entropy": losses.binary_cross_entropy,
}
_METRICS: dict[str, Callable[[], Any]] = {
    "accuracy": metrics_mod.SparseCategoricalAccuracy,
    "acc": metrics_mod.SparseCategoricalAccuracy,
    "sparse_categorical_accuracy": metrics_mod.SparseCategoricalAccuracy,
    "categorical_accuracy": metrics_mod.CategoricalAccuracy,
    "auc": metrics_mod.AUC,
    "precision": metrics_mod.Precision,
    "recall": metrics_mod.Recall,
}


class Callback:
    """Hooks called by ``fit`` (Keras' names): ``on_train_begin/end(logs)``,
    ``on_epoch_begin/end(epoch, logs)``, ``on_train_batch_begin/end(batch, logs)``.
    ``self.trainer`` (and ``self.model``) are set before training; setting
    ``self.trainer.stop_training = True`` ends training after the current epoch.

    >>> class Print(irf.train.Callback):                                    # doctest: +SKIP
    ...     def on_epoch_end(self, epoch, logs): print(epoch, logs["loss"])
    """

    trainer: "Trainer"
    model: "Module"

    def on_train_begin(self, logs: dict) -> None: ...
    def on_train_end(self, logs: dict) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict) -> None: ...


class History(Callback):
    """What ``fit`` returns: ``history.history["loss"]`` is the list of per-epoch values
    (also each metric and ``val_*``), ``history.epoch`` the epoch numbers.

    >>> history.history["val_accuracy"][-1]   # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)


def _resolve_loss(loss: Any) -> Callable[[Any, Any], Any]:
    if isinstance(loss, str):
        if loss not in _LOSSES:
            raise IrflowError(f"fit: unknown loss {loss!r}; known: {sorted(_LOSSES)} (or pass a function (pred, y) -> loss)")
        return _LOSSES[loss]
    if not callable(loss):
        raise IrflowError(f"fit: loss must be a name or a function (predictions, targets) -> scalar, got {loss!r}")
    return loss


def _resolve_metrics(items: Sequence[Any] | None) -> list[Any]:
    out = []
    for m in items or []:
        if isinstance(m, str):
            if m not in _METRICS:
                raise IrflowError(f"fit: unknown metric {m!r}; known: {sorted(_METRICS)} (or pass a metric object)")
            m = _METRICS[m]()
            if m.name == "sparse_categorical_accuracy":
                m.name = "accuracy"  # Keras reports "accuracy" for the string "accuracy"
        if not (hasattr(m, "update_state") and hasattr(m, "result") and hasattr(m, "reset_state")):
            raise IrflowError(f"fit: metric {m!r} has no update_state/result/reset_state")
        out.append(m)
    names = [m.name for m in out]
    if len(set(names)) != len(names) or "loss" in names:
        raise IrflowError(f"fit: metric names must be distinct and not 'loss', got {names}")
    return out


def _unpack(batch: Any, where: str) -> tuple[Any, Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return batch[0], batch[1], (batch[2] if len(batch) == 3 else None)
    raise IrflowError(f"{where}: each batch must be (x, y) or (x, y, sample_weight), got {type(batch).__name__}"
                      + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))


class ArrayBatches:
    """Batches of arrays ``x, y`` (and ``sample_weight``), shuffled per epoch with
    ``default_rng([seed, epoch])`` when ``shuffle``: what ``fit(x, y, batch_size)`` iterates.
    ``set_epoch(e)`` fixes the order of the next pass (fit calls it), so a resumed run sees
    the same batches.

    >>> [xb.shape for xb, yb in ArrayBatches(np.zeros((5, 2)), np.zeros(5), batch_size=2)]   # doctest: +SKIP
    [(2, 2), (2, 2), (1, 2)]
    """

    def __init__(self, x: Any, y: Any, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                 sample_weight: Any = None):
        x, y = np.asarray(x), np.asarray(y)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise IrflowError(f"fit: batch_size must be a positive int, got {batch_size!r}")
        if len(x) != len(y) or (sample_weight is not None and len(sample_weight) != len(x)):
            raise IrflowError(f"fit: x has {len(x)} examples but y has {len(y)}"
                              + ("" if sample_weight is None else f" and sample_weight {len(sample_weight)}"))
        self.x, self.y, self.batch_size, self.shuffle, self.seed = x, y, batch_size, shuffle, seed
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Any:
        n = len(self.x)
        order = np.random.default_rng([self.seed, self._epoch]).permutation(n) if self.shuffle else np.arange(n)
        self._epoch += 1
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.sample_weight is None:
                yield self.x[idx], self.y[idx]
            else:
                yield self.x[idx], self.y[idx], self.sample_weight[idx]


def _as_batches(data: Any, batch_size: int | None) -> Any:
    """``(x, y)`` or ``(x, y, w)`` of whole arrays (Keras' validation_data) -> ArrayBatches."""
    if isinstance(data, tuple) and len(data) in (2, 3) and all(isinstance(a, np.ndarray) for a in data):
        return ArrayBatches(data[0], data[1], batch_size or 32, sample_weight=data[2] if len(data) == 3 else None)
    return data


def _length(data: Any) -> int | None:
    try:
        n = len(data)
    except Exception:  # unknown length (a generator, a dataset of unknown cardinality)
        return None
    return n if isinstance(n, int) and n >= 0 else None


class Trainer:
    """Trains ``model`` with ``optimizer`` on ``loss(predictions, targets)`` (irflow's argument
    order, as PyTorch; a name such as ``"sparse_categorical_crossentropy"`` or ``"mse"`` also
    works), updating ``metrics`` (objects or names such as ``"accuracy"``).

    The Lightning shape: with ``loss=None`` the model computes its own loss in
    ``training_step(batch)`` (returning the loss, or ``(loss, predictions)`` to update
    metrics; ``batch`` is the ``(x, y)`` tuple) and, for validation data,
    ``validation_step(batch)`` (run in inference mode; default: ``training_step``); with
    ``optimizer=None`` it comes from ``model.configure_optimizers()``. Both are traced.

    >>> trainer = irf.train.Trainer(model, irf.optim.Adam(1e-2), "sparse_categorical_crossentropy",
    ...                             metrics=["accuracy"])                            # doctest: +SKIP
    >>> trainer.fit(train_ds, epochs=3, validation_data=val_ds)                       # doctest: +SKIP
    >>> irf.train.Trainer(lit_model).fit(train_ds, epochs=3)                          # doctest: +SKIP
    """

    def __init__(self, model: "Module", optimizer: Any = None, loss: Any = None, metrics: Sequence[Any] | None = None,
                 executor: str = "numpy", device: str = "cpu"):
        if not (callable(model) and hasattr(model, "trainable_variables")):
            raise IrflowError(f"Trainer: model must be an irf.nn.Module, got {type(model).__name__}")
        if optimizer is None:
            if not hasattr(model, "configure_optimizers"):
                raise IrflowError(f"Trainer: no optimizer given and {type(model).__name__} defines no configure_optimizers()")
            optimizer = model.configure_optimizers()
        if not hasattr(optimizer, "apply_gradients"):
            raise IrflowError(f"Trainer: optimizer must be an irf.optim optimizer, got {type(optimizer).__name__}")
        if loss is None and not hasattr(model, "training_step"):
            raise IrflowError(f"Trainer: no loss given and {type(model).__name__} defines no training_step(batch)")
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = None if loss is None else _resolve_loss(loss)
        self.metrics = _resolve_metrics(metrics)
        self.loss_tracker = metrics_mod.Mean("loss")
        self.stop_training = False
        self.train_step = function(self._train_step, executor=executor, device=device)
        self.test_step = function(self._test_step, executor=executor, device=device)

    # -- the traced steps ------------------------------------------------------------------------
    def _model_step(self, x: Any, y: Any, sample_weight: Any, hook: str) -> tuple[Any, Any]:
        """(loss, predictions or None) from the model's own ``training_step``/``validation_step``."""
        batch = (x, y) if sample_weight is None else (x, y, sample_weight)
        out = getattr(self.model, hook)(batch)
        if isinstance(out, tuple) and len(out) == 2:
            return out
        if self.metrics:
            raise IrflowError(f"Trainer: {type(self.model).__name__}.{hook} returned only the loss; return "
                              "(loss, predictions) so the metrics can be updated")
        return out, None

    def _train_step(self, x: Any, y: Any, sample_weight: Any, log_batches: bool) -> Any:
        with GradientTape() as tape:
            if self.loss_fn is None:
                loss, pred = self._model_step(x, y, sample_weight, "training_step")
            else:
                pred = self.model.call_child(self.model, x, training=True)
                loss = self.loss_fn(pred, y)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self._update_metrics(loss, y, pred, sample_weight)
        if log_batches:  # one value per update, at the update's number (1, 2, ...)
            summary.scalar("batch/loss", loss, step=self.optimizer.iterations)
        return loss

    def _test_step(self, x: Any, y: Any, sample_weight: Any) -> Any:
        if self.loss_fn is None:
            hook = "validation_step" if hasattr(self.model, "validation_step") else "training_step"
            was_training = self.model.training
            self.model.eval()  # this runs while tracing: the traced graph is the inference-mode one
            try:
                loss, pred = self._model_step(x, y, sample_weight, hook)
            finally:
                self.model.train(was_training)
        else:
            pred = self.model.call_child(self.model, x, training=False)
            loss = self.loss_fn(pred, y)
        self._update_metrics(loss, y, pred, sample_weight)
        return loss

    def _update_metrics(self, loss: Any, y: Any, pred: Any, sample_weight: Any) -> None:
        self.loss_tracker.update_state(loss)
        if pred is None:
            return
        for m in self.metrics:
            if sample_weight is None:
                m.update_state(y, pred)
            else:
                m.update_state(y, pred, sample_weight)

    def _reset(self) -> None:
        self.loss_tracker.reset_state()
        for m in self.metrics:
            m.reset_state()

    def _results(self, prefix: str = "") -> dict[str, float]:
        logs = {prefix + "loss": float(self.loss_tracker.result())}
        for m in self.metrics:
            r = m.result()
            r = np.asarray(r.numpy() if hasattr(r, "numpy") else r)
            logs[prefix + m.name] = float(r) if r.size == 1 else r.tolist()
        return logs

    # -- evaluate --------------------------------------------------------------------------------
    def evaluate(self, data: Iterable[Any], verbose: int = 0) -> dict[str, float]:
        """Loss and metrics over ``data`` (inference mode), as a dict.

        >>> trainer.evaluate(test_batches)   # doctest: +SKIP
        {'loss': 0.12, 'accuracy': 0.97}
        """
        self._reset()
        for batch in data:
            x, y, w = _unpack(batch, "evaluate")
            self.test_step(x, y, w)
        logs = self._results()
        if verbose:
            print("evaluate: " + _format(logs))
        return logs

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, data: Iterable[Any], epochs: int = 1, validation_data: Iterable[Any] | None = None,
            callbacks: Sequence[Callback] | None = None, writer: Any = None, checkpoint_manager: Any = None,
            verbose: int = 1, initial_epoch: int | None = None, log_every_n_steps: int = 10) -> History:
        """Train for epochs ``initial_epoch .. epochs - 1``; returns a ``History``.

        - ``validation_data``: batches evaluated after each epoch (``val_loss``, ``val_<metric>``),
          or Keras' ``(x_val, y_val)`` tuple of whole arrays (batched by 32).
        - ``writer`` (an ``irf.summary`` writer): ``batch/loss`` every ``log_every_n_steps``
          updates (recorded from the traced step; step = the update count) and
          ``epoch/<name>`` for every log value at step = epoch.
        - ``checkpoint_manager`` (an ``irf.train.CheckpointManager``): saved after every epoch.
          If its Checkpoint holds a Variable named ``epoch``, fit sets it to the number of
          finished epochs before saving, and ``initial_epoch=None`` starts from its value,
          so restoring the latest checkpoint and calling ``fit`` again resumes the run.
        - ``verbose``: 1 shows a rich progress bar per epoch with the loss and metrics when
          stdout is a terminal; 2 prints one line per epoch; 0 prints nothing.

        >>> model.fit(train_ds, epochs=5, validation_data=val_ds, writer=writer)   # doctest: +SKIP
        """
        if not isinstance(epochs, int) or epochs < 0:
            raise IrflowError(f"fit: epochs must be an int >= 0, got {epochs!r}")
        if not isinstance(log_every_n_steps, int) or log_every_n_steps < 1:
            raise IrflowError(f"fit: log_every_n_steps must be an int >= 1, got {log_every_n_steps!r}")
        iterations = self.optimizer.iterations

        def batch_summary_due() -> bool:  # evaluated after each call, when the update count is written back
            return int(iterations.numpy()) % log_every_n_steps == 0
        if validation_data is not None:
            validation_data = _as_batches(validation_data, None)
        epoch_var = self._epoch_variable(checkpoint_manager)
        if initial_epoch is None:
            initial_epoch = int(epoch_var.numpy()) if epoch_var is not None else 0
        history = History()
        callbacks = [history, *(callbacks or [])]
        for cb in callbacks:
            cb.trainer, cb.model = self, self.model
        self.stop_training = False
        bar = _ProgressBar(verbose, _length(data))
        for cb in callbacks:
            cb.on_train_begin({})
        logs: dict[str, Any] = {}
        for epoch in range(initial_epoch, epochs):
            if hasattr(data, "set_epoch"):
                data.set_epoch(epoch)  # irf.data's (and DistributedSampler's) hook: epoch e's order
            self._reset()
            for cb in callbacks:
                cb.on_epoch_begin(epoch, {})
            bar.start(epoch, epochs)
            # One as_default per epoch: the writer flushes once, on leaving (a flush waits for
            # tensorboardX's queue, a few ms), and TensorBoard sees each finished epoch.
            with (writer.as_default() if writer is not None else contextlib.nullcontext()):
                n = 0
                for n, batch in enumerate(data, 1):
                    x, y, w = _unpack(batch, "fit")
                    for cb in callbacks:
                        cb.on_train_batch_begin(n - 1, {})
                    if writer is not None:
                        with summary.record_if(batch_summary_due):
                            loss = self.train_step(x, y, w, True)
                    else:
                        loss = self.train_step(x, y, w, False)
                    batch_logs = {"loss": float(loss.numpy())}
                    for cb in callbacks:
                        cb.on_train_batch_end(n - 1, batch_logs)
                    bar.advance(self)
                if n == 0:
                    raise IrflowError(f"fit: epoch {epoch} got no batches (an exhausted iterator? pass a list, "
                                      "an irf.data.Dataset or a DataLoader, which can be iterated again)")
                logs = self._results()
                if validation_data is not None:
                    self._reset()
                    for batch in validation_data:
                        x, y, w = _unpack(batch, "fit(validation_data)")
                        self.test_step(x, y, w)
                    logs.update(self._results("val_"))
                bar.finish(logs)
                if writer is not None:
                    for k, v in logs.items():
                        if isinstance(v, float):
                            summary.scalar(f"epoch/{k}", v, step=epoch)
            if checkpoint_manager is not None:
                if epoch_var is not None:
                    epoch_var.assign(np.asarray(epoch + 1, dtype=epoch_var.numpy().dtype))
                checkpoint_manager.save()
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end(logs)
        return history

    @staticmethod
    def _epoch_variable(manager: Any) -> Variable | None:
        if manager is None:
            return None
        if not hasattr(manager, "save"):
            raise IrflowError(f"fit: checkpoint_manager must be an irf.train.CheckpointManager, got {type(manager).__name__}")
        objects = getattr(getattr(manager, "checkpoint", None), "_objects", {})
        var = objects.get("epoch")
        return var if isinstance(var, Variable) else None


def _format(logs: dict[str, Any]) -> str:
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in logs.items())


class _ProgressBar:
    """A rich progress bar per epoch (verbose=1 on a terminal), or one line per epoch (verbose=2)."""

    REFRESH_SECONDS = 0.1  # reading the metrics costs a few eager ops: not after every batch

    def __init__(self, verbose: int, total: int | None):
        self.verbose = verbose
        self.total = total
        self.bar = verbose == 1 and sys.stdout.isatty()
        self._progress: Any = None
        self._last = 0.0
        self._started = 0.0

    def start(self, epoch: int, epochs: int) -> None:
        self._started = time.perf_counter()
        self.epoch_text = f"epoch {epoch + 1}/{epochs}"
        if not self.bar:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [TextColumn(self.epoch_text), BarColumn(), MofNCompleteColumn() if self.total else TextColumn("{task.completed}"),
                   TimeElapsedColumn(), TextColumn("{task.fields[logs]}")]
        self._progress = Progress(*columns, transient=False)
        self._progress.start()
        self._task = self._progress.add_task("train", total=self.total, logs="")

    def advance(self, trainer: Trainer) -> None:
        if self._progress is None:
            return
        now = time.perf_counter()
        fields = {}
        if now - self._last >= self.REFRESH_SECONDS:
            self._last = now
            fields["logs"] = _format(trainer._results())
        self._progress.update(self._task, advance=1, **fields)

    def finish(self, logs: dict[str, Any]) -> None:
        if self._progress is not None:
            self._progress.update(self._task, logs=_format(logs))
            self._progress.stop()
            self._progress = None
        elif self.verbose == 2:
            seconds = time.perf_counter() - self._started
            print(f"{self.epoch_text}  {_format(logs)}  ({seconds:.1f} s)", flush=True)

