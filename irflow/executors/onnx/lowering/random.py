"""ONNX lowerings of the random ops."""
from __future__ import annotations

import numpy as np  # noqa: F401

from irflow.executors.onnx.lowering import lowering, simple  # noqa: F401
