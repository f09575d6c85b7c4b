"""NumPy kernels of the nn ops."""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import KERNELS, kernel  # noqa: F401
