"""``irf.train``: checkpoints of models, optimizers and Variables (docs/training.md).

>>> ckpt = irf.train.Checkpoint(model=model, optimizer=opt)             # doctest: +SKIP
>>> manager = irf.train.CheckpointManager(ckpt, "ckpts", max_to_keep=3)  # doctest: +SKIP
>>> ckpt.restore(manager.latest_checkpoint)                              # doctest: +SKIP
"""
from irflow.train.checkpoint import Checkpoint, CheckpointLoadStatus
from irflow.train.manager import CheckpointManager, latest_checkpoint

__all__ = ["Checkpoint", "CheckpointLoadStatus", "CheckpointManager", "latest_checkpoint"]
