"""``irf.train``: checkpoints of models, optimizers and Variables, and the ``Trainer`` (docs/training.md).

>>> ckpt = irf.train.Checkpoint(model=model, optimizer=opt)             # doctest: +SKIP
>>> manager = irf.train.CheckpointManager(ckpt, "ckpts", max_to_keep=3)  # doctest: +SKIP
>>> ckpt.restore(manager.latest_checkpoint)                              # doctest: +SKIP
"""
from irflow.train.checkpoint import Checkpoint, CheckpointLoadStatus
from irflow.train.manager import CheckpointManager, latest_checkpoint
from irflow.nn.trainer import Callback, History, Trainer  # the loop behind Module.fit, for Lightning-style code

__all__ = ["Checkpoint", "CheckpointLoadStatus", "CheckpointManager", "latest_checkpoint", "Trainer", "Callback", "History"]
