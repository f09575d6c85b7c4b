"""``irf.optim``: optimizers with per-variable slots and learning-rate schedules (docs/nn.md).

>>> opt = irf.optim.Adam(1e-3)   # doctest: +SKIP
"""
from irflow.optim import schedules
from irflow.optim.optimizer import SGD, Adam, AdamW, Optimizer, RMSProp

RMSprop = RMSProp  # PyTorch's and Keras' spelling

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSProp", "RMSprop", "schedules"]
