"""NumPy kernels of matmul and einsum."""
from __future__ import annotations

import numpy as np

from irflow.executors.numpy.kernels import KERNELS

KERNELS.update(matmul=np.matmul)
