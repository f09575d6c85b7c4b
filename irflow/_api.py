"""The public names of ``irflow``, imported on first use of any of them (see ``irflow/__init__.py``).

Add a public name here (not in ``__init__.py``), so ``import irflow`` and ``irflow --help``
stay fast: this module costs pydantic, the op set, the frontends and the NumPy executor.
Modules that pull in onnx, onnxruntime or ml_dtypes at import time do not belong here; they
are loaded lazily by ``irflow.__getattr__`` (``irf.onnx``) or where they are used.
"""
from irflow.errors import DTypeError, ExecutorError, IrflowError, IRValidationError, ShapeError, UnsupportedOpError
from irflow.ir import DType, Graph, TensorType
from irflow import ir
from irflow.ops import GraphBuilder, SymbolicTensor, bind
from irflow.ops import *  # noqa: F401,F403  (every op function: irf.add, irf.matmul, ...)
from irflow.ops import OP_FUNCTIONS
from irflow.frontends.eager import Tensor, tensor
from irflow.frontends.variables import Variable, variable_creator_scope
from irflow.frontends.spec import TensorSpec
from irflow.frontends.trace import function, host_callback
from irflow.frontends.control_flow import cond, fori_loop, scan, while_loop
from irflow.frontends import static
from irflow.executors import run
from irflow import autodiff
from irflow.autodiff import GradientTape, custom_gradient, grad, hessian, jacobian, jvp, stop_gradient, value_and_grad, vectorized_map, vmap
from irflow.autodiff import vjp_fn as vjp  # irf.vjp: the function transform; irflow.autodiff.vjp is the graph pass
from irflow import nn, optim  # irf.nn: Modules, layers, losses, metrics; irf.optim: optimizers
from irflow import data  # irf.data: Dataset chains (tf.data) and DataLoader (PyTorch)
from irflow import debugging  # irf.debugging: check_numerics, enable_check_numerics
from irflow import summary, train  # irf.summary: TensorBoard summaries; irf.train: checkpoints
from irflow import viz  # irf.viz: to_dot, to_svg
from irflow import ragged  # irf.ragged: RaggedTensor (values + row_splits) and its ops

float16, bfloat16, float32, float64 = DType.float16, DType.bfloat16, DType.float32, DType.float64
int8, int16, int32, int64, uint8, bool_ = DType.int8, DType.int16, DType.int32, DType.int64, DType.uint8, DType.bool
uint16, uint32, uint64 = DType.uint16, DType.uint32, DType.uint64
