"""Autodiff: IR -> IR reverse mode (``vjp``, ``backward``), tapes, function transforms.

- ``vjp(graph, wrt)``: graph -> gradient graph (``irflow.autodiff.vjp``, the IR pass);
- ``GradientTape``: eager recording; inside traces it emits gradient nodes;
- ``symbolic_gradients(ys, xs)``: gradient nodes in the graph being built (``irf.static.gradients``);
- ``grad``, ``value_and_grad``, ``vjp_fn`` (top level ``irf.vjp``), ``jvp``, ``jacobian``,
  ``hessian``, ``stop_gradient``, ``custom_gradient``;
- ``vmap``: vectorization as an IR transform (``autodiff.vmap_transform``: ``vmap_graph``, ``batch_nodes``).
"""
from irflow.autodiff.vjp import backward, replay, vjp
from irflow.autodiff.symbolic import symbolic_gradients, symbolic_jacobian
from irflow.autodiff.tape import GradientTape
from irflow.autodiff.transforms import grad, hessian, jacobian, jvp, stop_gradient, value_and_grad
from irflow.autodiff.transforms import vjp as vjp_fn
from irflow.autodiff.custom import custom_gradient
from irflow.autodiff.vectorize import vectorized_map, vmap

__all__ = ["vjp", "backward", "replay", "symbolic_gradients", "symbolic_jacobian", "GradientTape", "grad", "value_and_grad",
           "vjp_fn", "jvp", "jacobian", "hessian", "stop_gradient", "custom_gradient", "vmap", "vectorized_map"]
