"""``CheckpointManager``: numbered checkpoints in one directory, the newest ``max_to_keep`` kept,
and a ``checkpoint.json`` state file that ``latest_checkpoint(directory)`` reads.

>>> manager = irf.train.CheckpointManager(ckpt, "ckpts", max_to_keep=3)   # doctest: +SKIP
>>> manager.save()                                                        # doctest: +SKIP
'ckpts/ckpt-1'
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from irflow.atomic import write_text
from irflow.errors import IrflowError
from irflow.train.checkpoint import INDEX_SUFFIX, TENSORS_SUFFIX, Checkpoint

__all__ = ["CheckpointManager", "latest_checkpoint"]

STATE_FILE = "checkpoint.json"


def _read_state(directory: Path) -> list[str]:
    path = directory / STATE_FILE
    if not path.is_file():
        return []
    try:
        state = json.loads(path.read_text())
        names = state["checkpoints"]
    except (ValueError, KeyError, TypeError) as e:
        raise IrflowError(f"{path} is not a checkpoint state file written by irflow: {e}") from None
    return [str(n) for n in names]


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> str | None:
    """The newest checkpoint a ``CheckpointManager`` recorded in ``checkpoint_dir``, or None.

    >>> ckpt.restore(irf.train.latest_checkpoint("ckpts"))   # doctest: +SKIP
    """
    directory = Path(checkpoint_dir)
    names = [n for n in _read_state(directory) if (directory / (n + TENSORS_SUFFIX)).is_file()]
    return str(directory / names[-1]) if names else None


class CheckpointManager:
    """Save ``checkpoint`` as ``<directory>/<checkpoint_name>-<n>``, keep the newest
    ``max_to_keep`` (None: all), as ``tf.train.CheckpointManager``. Numbering continues from
    the checkpoint's ``save_counter``, so a restored run goes on counting where it stopped.

    >>> manager = irf.train.CheckpointManager(ckpt, "ckpts", max_to_keep=2)   # doctest: +SKIP
    >>> ckpt.restore(manager.latest_checkpoint)                                # doctest: +SKIP
    """

    def __init__(self, checkpoint: Checkpoint, directory: str | os.PathLike, max_to_keep: int | None = 5,
                 checkpoint_name: str = "ckpt"):
        if not isinstance(checkpoint, Checkpoint):
            raise IrflowError(f"CheckpointManager: expected an irf.train.Checkpoint, got {type(checkpoint).__name__}")
        if max_to_keep is not None and (not isinstance(max_to_keep, int) or max_to_keep < 1):
            raise IrflowError(f"CheckpointManager: max_to_keep must be a positive int or None, got {max_to_keep!r}")
        self.checkpoint = checkpoint
        self.directory = Path(directory)
        self.max_to_keep = max_to_keep
        self.checkpoint_name = checkpoint_name
        if self.directory.exists() and not self.directory.is_dir():
            raise IrflowError(f"CheckpointManager: {self.directory} exists and is not a directory")
        self._names = _read_state(self.directory)

    @property
    def checkpoints(self) -> list[str]:
        """The kept checkpoints' paths, oldest first."""
        return [str(self.directory / n) for n in self._names]

    @property
    def latest_checkpoint(self) -> str | None:
        """The newest kept checkpoint's path, or None."""
        return self.checkpoints[-1] if self._names else None

    def save(self, checkpoint_number: int | None = None) -> str:
        """Write a new checkpoint (numbered ``checkpoint_number``, else the next save count),
        record it, delete the oldest beyond ``max_to_keep``; returns its path.

        >>> manager.save()   # doctest: +SKIP
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        ckpt = self.checkpoint
        if checkpoint_number is None:
            ckpt.save_counter.assign_add(1)
            number = int(ckpt.save_counter.numpy())
        else:
            number = int(checkpoint_number)
        name = f"{self.checkpoint_name}-{number}"
        ckpt.write(self.directory / name)
        self._names = [n for n in self._names if n != name] + [name]
        removed: list[str] = []
        if self.max_to_keep is not None:
            while len(self._names) > self.max_to_keep:
                removed.append(self._names.pop(0))
        # Record first, delete after: a crash in between leaves stray files, never a state
        # file naming a deleted checkpoint.
        write_text(self.directory / STATE_FILE, json.dumps({"checkpoints": self._names}, indent=1) + "\n")
        for old in removed:
            for suffix in (TENSORS_SUFFIX, INDEX_SUFFIX):
                try:
                    (self.directory / (old + suffix)).unlink()
                except FileNotFoundError:
                    pass
        return str(self.directory / name)

    def restore_or_initialize(self) -> str | None:
        """Restore the latest checkpoint if there is one; returns its path (None: fresh start)."""
        path = self.latest_checkpoint
        self.checkpoint.restore(path)
        return path

    def __repr__(self) -> str:
        return f"<CheckpointManager {str(self.directory)!r}: {len(self._names)} kept, max {self.max_to_keep}>"


