"""Every op in the registry is complete: a NumPy kernel, an ONNX lowering, and either a VJP
rule or an explicit ``differentiable=False``."""
import pytest

import irflow  # noqa: F401  (declares every op)
from irflow.executors.numpy.kernels import KERNELS
from irflow.executors.onnx.lowering import LOWERINGS
from irflow.ops.registry import REGISTRY

OPS = sorted(REGISTRY)


@pytest.mark.parametrize("op", OPS)
def test_op_has_numpy_kernel(op):
    assert op in KERNELS, f"op {op!r} has no NumPy kernel"


@pytest.mark.parametrize("op", OPS)
def test_op_has_onnx_lowering(op):
    assert op in LOWERINGS, f"op {op!r} has no ONNX lowering"


@pytest.mark.parametrize("op", OPS)
def test_op_is_differentiable_or_says_not(op):
    opdef = REGISTRY[op]
    assert opdef.vjp is not None or not opdef.differentiable, f"op {op!r} has no VJP rule and is not marked differentiable=False"


def test_no_kernel_or_lowering_for_unknown_ops():
    assert not set(KERNELS) - set(REGISTRY), f"kernels for undeclared ops: {set(KERNELS) - set(REGISTRY)}"
    assert not set(LOWERINGS) - set(REGISTRY), f"lowerings for undeclared ops: {set(LOWERINGS) - set(REGISTRY)}"


def test_docs_op_table_is_current():
    """docs/ops.md is generated from the registry; regenerate with scripts/gen_op_table.py."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gen_op_table", root / "scripts" / "gen_op_table.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (root / "docs" / "ops.md").read_text() == gen.render(), "docs/ops.md is stale: run python scripts/gen_op_table.py"
