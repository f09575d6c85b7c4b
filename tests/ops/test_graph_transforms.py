"""The nested-graph ops' rules reach autodiff / passes through ops/transforms.py's table."""
import numpy as np
import pytest

import irflow as irf
from irflow.ops import transforms


def test_table_holds_the_autodiff_and_passes_functions():
    import sys

    import irflow.autodiff.vjp  # noqa: F401  (irflow.autodiff.vjp the attribute is the function)
    from irflow.autodiff import vmap_transform

    vjp_module = sys.modules["irflow.autodiff.vjp"]
    from irflow.passes.prune import prune

    assert transforms.graph_transform("replay") is vjp_module.replay
    assert transforms.graph_transform("backward") is vjp_module.backward
    assert transforms.graph_transform("vjp") is vjp_module.vjp
    assert transforms.graph_transform("prune") is prune
    assert transforms.graph_transform("batch_graph") is vmap_transform.batch_graph
    assert transforms.graph_transform("batch_nodes") is vmap_transform.batch_nodes


def test_an_empty_table_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(transforms, "GRAPH_TRANSFORMS", {})
    with pytest.raises(irf.IrflowError, match=r"'(backward|replay)'.*import irflow\.autodiff\.vjp"):
        _traced_cond_gradient(np.float32(0.5))


def test_cond_gradient_through_the_table_matches_calculus():
    # d/dx of x*x on the taken branch is 2x, of -x is -1 (hand-written, not from irflow)
    for value, expected in [(0.75, 1.5), (-2.0, -1.0)]:
        np.testing.assert_allclose(_traced_cond_gradient(np.float32(value)).numpy(), expected, rtol=1e-6)


def _traced_cond_gradient(value):
    # traced, so the cond is a node and its gradient comes from the cond op's VJP rule
    @irf.function
    def grad_of_cond(x):
        with irf.GradientTape() as tape:
            tape.watch(x)
            y = irf.cond(x > 0.0, lambda: x * x, lambda: -x)
        return tape.gradient(y, x)

    return grad_of_cond(value)
