"""``irf.viz``: pictures of graphs (Graphviz dot, svg through graphviz's `dot` when installed).

>>> import irflow as irf
>>> dot_text = irf.viz.to_dot(graph)   # doctest: +SKIP
>>> svg_text = irf.viz.to_svg(graph)   # doctest: +SKIP

In a notebook a Graph displays itself: as a picture when `dot` is installed, else as text.
"""
from irflow.ir.dot import dot_program, to_dot, to_svg

__all__ = ["to_dot", "to_svg", "dot_program"]
