"""Running graphs on onnxruntime, with one cached InferenceSession per graph."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from irflow.errors import ExecutorError
from irflow.executors.feeds import check_feeds
from irflow.ir.graph import Graph


class OrtRunner:
    """Lowers a graph once and runs it on onnxruntime (CPU for now).

    >>> OrtRunner(g).run({"x": x})   # doctest: +SKIP
    """

    def __init__(self, graph: Graph, *, device: str = "cpu"):
        import onnxruntime as ort

        from irflow.executors.onnx.export import to_model

        self.graph = graph
        model = to_model(graph)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ExecutorError(f"onnxruntime rejected graph {graph.name!r}: {e}") from None
        self._out_names = list(graph.output_names)

    def run(self, feeds: Mapping[str, Any], *, check: bool = True) -> dict[str, np.ndarray]:
        arrays = check_feeds(self.graph, feeds) if check else dict(feeds)
        try:
            outs = self.session.run(self._out_names, arrays)
        except Exception as e:
            raise ExecutorError(f"onnxruntime failed on graph {self.graph.name!r}: {e}") from None
        return dict(zip(self._out_names, outs))
