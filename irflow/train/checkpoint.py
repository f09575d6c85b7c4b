"""Checkpoints: the state of models, optimizers and Variables in one safetensors file plus a
small JSON index beside it (no pickle), written atomically (``irflow.atomic``).

A checkpoint at path ``P`` is two files: ``P.safetensors`` (every tensor, under a key naming
the object and its attribute path) and ``P.index.json`` (what was saved: objects, keys, shapes,
dtypes, the save counter). Keys:

- ``<name>/<attribute path>`` for a Module (``model/layers.0.weight``: its ``state_dict`` keys,
  plus state kept out of ``state_dict`` such as Dropout's call counter,
  ``model/layers.3._module_calls``, so a resumed run draws the same masks);
- ``<name>`` for a Variable (``step``);
- ``<name>/iterations`` and ``<name>/slots/<key of the variable>/<slot>`` for an optimizer
  (``optimizer/slots/model/layers.0.weight/m``): a slot is keyed by its variable's key in the
  same checkpoint, so it restores into a new model of the same structure;
- ``<name>/<state>`` for anything with ``state_dict()`` / ``load_state_dict()`` (metrics);
- ``save_counter``.

>>> ckpt = irf.train.Checkpoint(model=model, optimizer=opt)          # doctest: +SKIP
>>> path = ckpt.save("ckpts/ckpt")   # 'ckpts/ckpt-1'                  # doctest: +SKIP
>>> ckpt.restore(path)                                               # doctest: +SKIP
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from irflow.atomic import atomic_write_many
from irflow.errors import IrflowError
from irflow.frontends.variables import Variable
from irflow.nn.module import Module
from irflow.optim.optimizer import Optimizer

__all__ = ["Checkpoint", "CheckpointLoadStatus"]

FORMAT = "irflow-checkpoint"
VERSION = 1
TENSORS_SUFFIX = ".safetensors"
INDEX_SUFFIX = ".index.json"


def _import_safetensors() -> Any:
    try:
        import safetensors.numpy as st
    except ImportError as e:  # a runtime dependency, but say what is missing if it is
        raise IrflowError("checkpoints need the 'safetensors' package: pip install safetensors") from e
    return st


def checkpoint_prefix(path: str | Path) -> Path:
    """The checkpoint's path without the file suffixes (accepts either file's name too)."""
    p = str(path)
    for suffix in (TENSORS_SUFFIX, INDEX_SUFFIX):
        if p.endswith(suffix):
            return Path(p[: -len(suffix)])
    return Path(p)


class CheckpointLoadStatus:
    """What ``Checkpoint.restore`` returns (TensorFlow's status object). Restore is strict, so
    by the time you hold one everything matched; the methods exist for TF-shaped code."""

    def __init__(self, path: Path | None):
        self.path = path

    def assert_consumed(self) -> "CheckpointLoadStatus":
        return self

    def assert_existing_objects_matched(self) -> "CheckpointLoadStatus":
        return self

    def expect_partial(self) -> "CheckpointLoadStatus":
        return self


class Checkpoint:
    """Save and restore the named objects given as keyword arguments, as ``tf.train.Checkpoint``.

    Objects: ``irf.nn.Module`` (its ``state_dict``, trainable and not), ``irf.optim.Optimizer``
    (the step counter and every slot), ``irf.Variable``, and anything with ``state_dict()`` /
    ``load_state_dict()`` (metrics). ``save(prefix)`` numbers the checkpoints
    (``prefix-1``, ``prefix-2``: ``save_counter``), ``write(path)`` writes exactly ``path``;
    ``restore(path)`` / ``read(path)`` load one (``restore(None)`` does nothing, so
    ``ckpt.restore(manager.latest_checkpoint)`` starts fresh when there is none).

    Restore is strict: a checkpoint that does not fit the objects (keys missing from the file,
    keys the objects do not have, shapes or dtypes that differ) raises one ``IrflowError``
    listing all three kinds, and nothing is assigned.

    >>> ckpt = irf.train.Checkpoint(model=model, optimizer=opt, step=irf.Variable(0))   # doctest: +SKIP
    >>> ckpt.restore(ckpt.save("ckpts/ckpt"))                                             # doctest: +SKIP
    """

    def __init__(self, **objects: Any):
        for name, obj in objects.items():
            if "/" in name or name == "save_counter":
                raise IrflowError(f"Checkpoint: the name {name!r} is reserved or contains '/'")
            if not isinstance(obj, (Module, Optimizer, Variable)) and not (
                    hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
                raise IrflowError(f"Checkpoint: {name}={type(obj).__name__} is not a Module, Optimizer, Variable "
                                  "or an object with state_dict()/load_state_dict()")
        self._objects = dict(objects)
        self.save_counter = Variable(np.zeros((), np.int64), name="save_counter", trainable=False)

    def __getattr__(self, name: str) -> Any:
        objects = self.__dict__.get("_objects", {})
        if name in objects:
            return objects[name]
        raise AttributeError(name)

    # -- keys ------------------------------------------------------------------------------------
    def _variable_keys(self) -> dict[int, str]:
        """id(Variable) -> its key, for every Variable of a Module or given directly."""
        keys: dict[int, str] = {}
        for key, var in self._variables_by_key().items():
            keys.setdefault(id(var), key)
        return keys

    def _variables_by_key(self) -> dict[str, Variable]:
        """key -> Variable, for every Variable of a Module or given directly."""
        out: dict[str, Variable] = {}
        for name, obj in self._objects.items():
            if isinstance(obj, Module):
                for path, var in obj.named_variables():
                    out.setdefault(f"{name}/{path}", var)
            elif isinstance(obj, Variable):
                out.setdefault(name, obj)
        return out

    def _state(self) -> dict[str, np.ndarray]:
        """Every tensor this checkpoint saves, by key."""
        state: dict[str, np.ndarray] = {"save_counter": np.array(self.save_counter.numpy(), copy=True)}
        var_keys = self._variable_keys()
        for name, obj in self._objects.items():
            if isinstance(obj, Module):
                state.update({f"{name}/{k}": v for k, v in obj.state_dict().items()})
                state.update({f"{name}/{k}": np.array(v.numpy(), copy=True) for k, v in obj.named_extra_variables()})
            elif isinstance(obj, Variable):
                state[name] = np.array(obj.numpy(), copy=True)
            elif isinstance(obj, Optimizer):
                state[f"{name}/iterations"] = np.array(obj.iterations.numpy(), copy=True)
                orphans = []
                for var, slots in obj.slot_variables():
                    vkey = var_keys.get(id(var))
                    if vkey is None:
                        orphans.append(var.name)
                        continue
                    for slot, svar in slots.items():
                        state[f"{name}/slots/{vkey}/{slot}"] = np.array(svar.numpy(), copy=True)
                if orphans:
                    raise IrflowError(f"Checkpoint: optimizer {name!r} has slots for Variables {orphans} that are in "
                                      "no Module or Variable of this checkpoint; pass their model too")
            else:
                state.update({f"{name}/{k}": np.asarray(v) for k, v in obj.state_dict().items()})
        return state

    # -- writing ---------------------------------------------------------------------------------
    def write(self, path: str | Path) -> str:
        """Write the checkpoint to ``path`` (``path.safetensors`` + ``path.index.json``); returns ``path``.

        >>> ckpt.write("weights/final")   # doctest: +SKIP
        """
        st = _import_safetensors()
        prefix = checkpoint_prefix(path)
        if prefix.parent.exists() and not prefix.parent.is_dir():
            raise IrflowError(f"Checkpoint.write: {prefix.parent} is not a directory")
        prefix.parent.mkdir(parents=True, exist_ok=True)  # as tf.train.Checkpoint.save("new_dir/ckpt")
        state = {k: np.asarray(v, order="C") for k, v in self._state().items()}  # ascontiguousarray would make 0-d 1-d
        index = {
            "format": FORMAT,
            "version": VERSION,
            "save_counter": int(self.save_counter.numpy()),
            "objects": {name: type(obj).__name__ for name, obj in self._objects.items()},
            "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in state.items()},
        }
        # Keys are object paths (so a checkpoint restores into a new instance, as TF's object-based
        # checkpoints); each Variable's own name (its module path, as in the IR and ONNX) is kept too.
        for key, var in self._variables_by_key().items():
            if key in index["tensors"]:
                index["tensors"][key]["variable"] = var.name
        # One staged pair, tensors renamed first and the index last: a failure anywhere leaves the
        # old pair (a rewrite of the same prefix never mixes new tensors with an old index).
        tensors = st.save(state, metadata={"format": FORMAT})
        with atomic_write_many([str(prefix) + TENSORS_SUFFIX, str(prefix) + INDEX_SUFFIX]) as (tf, jf):
            tf.write(tensors)
            jf.write((json.dumps(index, indent=1) + "\n").encode())
        return str(prefix)

    def save(self, file_prefix: str | Path) -> str:
        """Increment ``save_counter`` and write ``<file_prefix>-<counter>``; returns that path.

        >>> ckpt.save("ckpts/ckpt")   # doctest: +SKIP
        'ckpts/ckpt-1'
        """
        self.save_counter.assign_add(1)
        return self.write(f"{file_prefix}-{int(self.save_counter.numpy())}")

    # -- reading ---------------------------------------------------------------------------------
    def read(self, path: str | Path) -> CheckpointLoadStatus:
        """Restore from ``path`` (the counterpart of ``write``; same as ``restore``)."""
        return self.restore(path)

    def restore(self, save_path: str | Path | None) -> CheckpointLoadStatus:
        """Load the checkpoint at ``save_path`` into the objects (None: do nothing).

        >>> ckpt.restore(irf.train.latest_checkpoint("ckpts"))   # doctest: +SKIP
        """
        if save_path is None:
            return CheckpointLoadStatus(None)
        prefix = checkpoint_prefix(save_path)
        tensors_file = Path(str(prefix) + TENSORS_SUFFIX)
        if not tensors_file.is_file():
            raise IrflowError(f"Checkpoint.restore: no checkpoint at {str(prefix)!r} ({tensors_file} does not exist)")
        st = _import_safetensors()
        try:
            loaded = st.load(tensors_file.read_bytes())
        except Exception as e:  # safetensors raises its own error types for a corrupt header
            raise IrflowError(f"Checkpoint.restore: {tensors_file} is not a safetensors file: {e}") from None
        self._assign(loaded, str(prefix))
        return CheckpointLoadStatus(prefix)

    def _assign(self, loaded: dict[str, np.ndarray], where: str) -> None:
        expected = self._state()  # the current values: their keys, shapes and dtypes
        vars_by_key = {key: var for name, obj in self._objects.items() for key, var in _vars_of(name, obj)}
        optimizers = {name: obj for name, obj in self._objects.items() if isinstance(obj, Optimizer)}
        # Slots the optimizers do not have yet (a fresh optimizer) are expected for every
        # variable the file has slots for, with the names and shapes create_slots would give.
        slot_specs: dict[str, tuple] = {}
        for key in loaded:
            opt_name, sep, rest = key.partition("/slots/")
            if sep and opt_name in optimizers and key not in expected:
                vkey, _, slot = rest.rpartition("/")
                var = vars_by_key.get(vkey)
                if var is not None:
                    spec = optimizers[opt_name].slot_specs(var).get(slot)
                    if spec is not None:
                        slot_specs[key] = spec
        want = {k: (tuple(v.shape), v.dtype) for k, v in expected.items()}
        want.update(slot_specs)
        missing = sorted(k for k in want if k not in loaded)
        unexpected = sorted(k for k in loaded if k not in want)
        misshaped = [f"{k}: expected {want[k][1]}{list(want[k][0])}, the checkpoint holds "
                     f"{loaded[k].dtype}{list(loaded[k].shape)}"
                     for k in sorted(want) if k in loaded and (tuple(loaded[k].shape), loaded[k].dtype) != want[k]]
        if missing or unexpected or misshaped:
            parts = [f"missing from the checkpoint: {missing}" if missing else "",
                     f"unexpected (not in these objects): {unexpected}" if unexpected else "",
                     f"shape or dtype differs: {misshaped}" if misshaped else ""]
            raise IrflowError(f"Checkpoint.restore({where!r}) does not fit the objects: "
                              + "; ".join(p for p in parts if p))
        # Everything checked: assign.
        self.save_counter.assign(loaded["save_counter"])
        for name, obj in self._objects.items():
            if isinstance(obj, Module):
                extra = dict(obj.named_extra_variables())
                obj.load_state_dict({k[len(name) + 1:]: v for k, v in loaded.items()
                                     if k.startswith(name + "/") and k[len(name) + 1:] not in extra})
                for path, var in extra.items():
                    var.assign(loaded[f"{name}/{path}"])
            elif isinstance(obj, Variable):
                obj.assign(loaded[name])
            elif isinstance(obj, Optimizer):
                obj.iterations.assign(loaded[f"{name}/iterations"])
                per_var: dict[str, dict[str, np.ndarray]] = {}
                for key, arr in loaded.items():
                    if key.startswith(f"{name}/slots/"):
                        vkey, _, slot = key[len(name) + 7:].rpartition("/")
                        per_var.setdefault(vkey, {})[slot] = arr
                for vkey, values in per_var.items():
                    obj.set_slots(vars_by_key[vkey], values)
            else:
                obj.load_state_dict({k[len(name) + 1:]: v for k, v in loaded.items() if k.startswith(name + "/")})


def _vars_of(name: str, obj: Any) -> list[tuple[str, Variable]]:
    if isinstance(obj, Module):
        return [(f"{name}/{path}", var) for path, var in obj.named_variables()]
    if isinstance(obj, Variable):
        return [(name, obj)]
    return []
