"""The ONNX executor: IR -> ONNX lowering and the onnxruntime runner."""
from irflow.executors.onnx.export import to_model
from irflow.executors.onnx.lowering import LOWERINGS, lowering, simple
from irflow.executors.onnx.runner import OrtRunner

__all__ = ["to_model", "LOWERINGS", "lowering", "simple", "OrtRunner"]
