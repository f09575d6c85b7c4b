"""A fast, fixed sample of the ONNX backend node test cases (the full run is
scripts/conformance.py, which also picks this sample and writes docs/conformance.md).

Each case's expected outputs come from onnx's own reference implementation; a case passes
when irflow's import -> NumPy interpreter and import -> export -> onnxruntime both match them.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.conformance.cases import run_case, some_cases

# "module case_name" per line: only those onnx case modules are imported (onnx computes a
# module's expected outputs on import, so importing all of them takes ~15 s).
LINES = [line.split() for line in (Path(__file__).parent / "fast_cases.txt").read_text().splitlines() if line.strip()]
SAMPLE = [name for _, name in LINES]


@pytest.fixture(scope="module")
def cases():
    return some_cases(module for module, _ in LINES)


@pytest.mark.parametrize("name", SAMPLE)
def test_case_passes_numpy_and_onnxruntime(cases, name):
    assert name in cases, f"{name} is no longer an onnx node test case; rerun scripts/conformance.py --sample"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        r = run_case(cases[name])
    assert r.scope is None, r.scope
    assert r.numpy == "pass", r.detail.get("numpy")
    assert r.ort == "pass", r.detail.get("ort")


def test_sample_spreads_over_many_ops():
    assert len(SAMPLE) >= 100 and len(set(SAMPLE)) == len(SAMPLE)
