"""irf.viz.to_dot / to_svg and a Graph's notebook display."""
from __future__ import annotations

import os
import re
import shutil
import stat

import pytest

import irflow as irf


def _graph() -> irf.Graph:
    b = irf.GraphBuilder("two_ops")
    x = b.input("x", "float32", ("batch", 3))
    with b:
        b.output(irf.exp(irf.relu(x)), names=["y"])
    return b.build()


def test_to_dot_has_one_box_per_node_and_an_edge_per_value_use():
    g = _graph()
    dot = irf.viz.to_dot(g)
    assert dot.startswith('digraph "two_ops" {') and dot.rstrip().endswith("}")
    boxes = re.findall(r'^\s*"node:[^"]+" \[shape=box', dot, flags=re.M)
    assert len(boxes) == len(g.nodes) >= 2
    edges = re.findall(r"->", dot)
    assert len(edges) == sum(len(n.inputs) for n in g.nodes) + len(g.outputs)  # one per value read, one per output
    assert '"in:x"' in dot and '"out:y"' in dot and "float32['batch', 3]" in dot


def test_without_graphviz_to_svg_is_a_clear_error_and_notebooks_get_text(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    g = _graph()
    with pytest.raises(irf.IrflowError, match="graphviz"):
        irf.viz.to_svg(g)
    assert g._repr_svg_() is None
    html = g._repr_html_()
    assert html.startswith("<pre>") and "relu(%x)" in html


def test_svg_comes_from_the_dot_program(tmp_path, monkeypatch):
    """A stand-in `dot` on PATH (echoes what it was given inside an <svg>) checks the plumbing;
    the real graphviz is exercised below when installed."""
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\n[ "$1" = "-Tsvg" ] || exit 3\necho "<svg><!--"; cat; echo "--></svg>"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    g = _graph()
    svg = irf.viz.to_svg(g)
    assert svg.startswith("<svg>") and irf.viz.to_dot(g) in svg
    assert g._repr_svg_() == svg and g._repr_html_() == svg


def test_real_graphviz_when_installed():
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed")
    svg = irf.viz.to_svg(_graph())
    assert "<svg" in svg and "relu" in svg
