"""The examples in the docstrings of irf.data, irf.ragged and the segment ops run and say what they show."""
import doctest
import importlib

import numpy as np
import pytest

import irflow as irf

MODULES = ["irflow.data", "irflow.data.dataset", "irflow.data.loader",
           "irflow.ragged", "irflow.ragged.tensor", "irflow.ragged.ops", "irflow.ops.segment"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"irf": irf, "np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} of {result.attempted} docstring example(s) of {name} failed"
