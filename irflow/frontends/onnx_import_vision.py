"""ONNX vision ops -> IR: GridSample -> ``grid_sample`` (``irflow/ops/vision.py``), which
exports back as GridSample. GridSample-16's mode names (bilinear, bicubic) are read as
GridSample-20's (linear, cubic)."""
from __future__ import annotations

from irflow.frontends.onnx_import_base import importer, np_dtype, rank_of
from irflow.ops.dispatch import bind
from irflow.ops.vision import GRID_MODES, PADDING_MODES, _ALIASES


@importer("GridSample")
def _grid_sample(n):
    x, grid = n.input(0), n.input(1)
    mode = n.attr("mode", "linear" if n.opset >= 20 else "bilinear")
    mode = _ALIASES.get(mode, mode)
    padding = n.attr("padding_mode", "zeros")
    if mode not in GRID_MODES or padding not in PADDING_MODES:
        raise n.unsupported(f"mode {mode!r} / padding_mode {padding!r}")
    if rank_of(x) < 3:
        raise n.error(f"X must be (N, C, D1, ...), it has rank {rank_of(x)}")
    if np_dtype(grid) != np_dtype(x):  # GridSample lets the grid's float type differ from X's
        grid = bind("cast", grid, dtype=np_dtype(x))
    return bind("grid_sample", x, grid, mode=mode, padding_mode=padding, align_corners=int(n.attr("align_corners", 0)))
