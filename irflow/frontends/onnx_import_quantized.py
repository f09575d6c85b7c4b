"""ONNX integer-quantized ops -> IR: MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv,
one IR op each (``irflow/ops/quantized.py``), so the export keeps onnxruntime's native
integer kernels. (QuantizeLinear / DequantizeLinear are elementwise decompositions in
``onnx_import_nn.py``.)
"""
from __future__ import annotations

from irflow.frontends.onnx_import_base import importer
from irflow.frontends.onnx_import_nn import _nd_pads, _spatial
from irflow.ops.dispatch import bind


@importer("MatMulInteger")
def _matmul_integer(n):
    return bind("matmul_integer", n.input(0), n.input(1), n.input(2), n.input(3))


@importer("QLinearMatMul")
def _qlinear_matmul(n):
    return bind("qlinear_matmul", *(n.input(i) for i in range(8)))


def _conv_attrs(n, x, w) -> dict:
    r = _spatial(n, x, n.op_type)
    kernel = n.attr("kernel_shape") or list(w.shape[2:])
    strides = n.attr("strides") or [1] * r
    dil = n.attr("dilations") or [1] * r
    if not all(isinstance(k, int) for k in kernel):
        raise n.unsupported("a kernel of symbolic size without kernel_shape")
    return dict(strides=tuple(strides), pads=_nd_pads(n, r, kernel, strides, dil, x.shape[2:]), dilations=tuple(dil),
                groups=int(n.attr("group", 1)))


@importer("ConvInteger")
def _conv_integer(n):
    x, w = n.input(0), n.input(1)
    return bind("conv_integer", x, w, n.input(2), n.input(3), **_conv_attrs(n, x, w))


@importer("QLinearConv")
def _qlinear_conv(n):
    x, w = n.input(0), n.input(3)
    ins = [n.input(i) for i in range(8)] + ([n.input(8)] if n.input(8) is not None else [])
    return bind("qlinear_conv", *ins, **_conv_attrs(n, x, w))
