"""The op set: declarations (type rules, attrs, VJP rules) and the public op functions.

Importing this package declares every op in ``REGISTRY``.
"""
from irflow.ops.registry import REGISTRY, Attr, OpDef, defop, defvjp, get_op
from irflow.ops.dispatch import bind
from irflow.ops.builder import GraphBuilder, SymbolicTensor
from irflow.ops import elementwise, reduction, linalg, shape, nn, random  # noqa: F401  (declares the ops)
from irflow.ops.elementwise import *  # noqa: F401,F403
from irflow.ops.reduction import *  # noqa: F401,F403
from irflow.ops.linalg import *  # noqa: F401,F403
from irflow.ops.shape import *  # noqa: F401,F403
from irflow.ops import shape_join, shape_index, shape_create  # noqa: E402  (the rest of the shape family)
from irflow.ops.shape_join import *  # noqa: F401,F403
from irflow.ops.shape_index import *  # noqa: F401,F403
from irflow.ops.shape_create import *  # noqa: F401,F403
from irflow.ops.nn import *  # noqa: F401,F403
from irflow.ops import conv  # noqa: E402  (convolutions and pooling, the rest of the nn family)
from irflow.ops.conv import *  # noqa: F401,F403
from irflow.ops import conv_nd  # noqa: E402  (N-D convolutions and pooling)
from irflow.ops.conv_nd import *  # noqa: F401,F403
from irflow.ops.random import *  # noqa: F401,F403
from irflow.ops.special import *  # noqa: F401,F403  (stop_gradient, call, custom_call)
from irflow.ops import control  # noqa: E402,F401  (cond, scan, while_loop)
from irflow.ops import resize, resize_dynamic  # noqa: E402,F401  (ONNX Resize as one op; run-time sizes)
from irflow.ops import vision  # noqa: E402  (grid_sample, roi_align)
from irflow.ops.vision import *  # noqa: F401,F403,E402
from irflow.ops import vision_conv  # noqa: E402  (col2im, deform_conv)
from irflow.ops.vision_conv import *  # noqa: F401,F403,E402
from irflow.ops import segment  # noqa: E402  (segment_sum / max / min: what ragged reductions lower to)
from irflow.ops.segment import *  # noqa: F401,F403,E402
from irflow.ops import data_dependent  # noqa: E402  (nonzero, unique, compress, non_max_suppression)
from irflow.ops.data_dependent import *  # noqa: F401,F403,E402
from irflow.ops import onnx_extra  # noqa: E402  (reverse_sequence, max_unpool, det)
from irflow.ops.onnx_extra import *  # noqa: F401,F403,E402

OP_FUNCTIONS = sorted(
    set(elementwise.__all__) | set(reduction.__all__) | set(linalg.__all__) | set(shape.__all__)
    | set(shape_join.__all__) | set(shape_index.__all__) | set(shape_create.__all__)
    | set(nn.__all__) | set(conv.__all__) | set(conv_nd.__all__) | set(random.__all__) | set(segment.__all__)
    | set(vision.__all__) | set(vision_conv.__all__)
    | set(data_dependent.__all__) | set(onnx_extra.__all__)
)
from irflow.ops.extra import *  # noqa: F401,F403  (ops ONNX import needs beyond the core set)
from irflow.ops import special, extra  # noqa: E402
from irflow.ops import dynamic_axes  # noqa: E402  (run-time axes: reduce_dynamic, squeeze_dynamic, ...)
from irflow.ops.dynamic_axes import *  # noqa: F401,F403,E402
from irflow.ops import dynamic_shape  # noqa: E402  (shape arguments read at run time: slice_dynamic, pad_dynamic, ...)
from irflow.ops.dynamic_shape import *  # noqa: F401,F403,E402
from irflow.ops import quantized  # noqa: E402  (MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv)
from irflow.ops.quantized import *  # noqa: F401,F403,E402
from irflow.ops import signal  # noqa: E402  (DFT, STFT, MelWeightMatrix)
from irflow.ops.signal import *  # noqa: F401,F403,E402

# `from irflow.ops import *` (and so `irf.<name>`) brings the op functions only, not the
# family modules (irflow.ops.nn must not shadow irflow.nn).
__all__ = sorted(set(OP_FUNCTIONS) | set(special.__all__) | set(extra.__all__)
           | set(dynamic_axes.__all__) | set(dynamic_shape.__all__)
           | set(quantized.__all__) | set(signal.__all__))
