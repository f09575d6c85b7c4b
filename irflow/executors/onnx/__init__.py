"""The ONNX executor: IR -> ONNX lowering, the onnxruntime runners and device selection."""
from irflow.executors.onnx.export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, save_model, to_model
from irflow.executors.onnx.lowering import LOWERINGS, lowering, simple
from irflow.executors.onnx.runner import OrtOptions, OrtRunner, ort_options
from irflow.executors.onnx.stateful import StatefulOrtRunner
from irflow.executors.onnx.device import cuda_available, cuda_status, resolve_device
from irflow.executors.onnx.check import check_export, shape_inference_mismatches

__all__ = [
    "to_model", "save_model", "DEFAULT_OPSET", "MIN_OPSET", "MAX_OPSET", "LOWERINGS", "lowering", "simple",
    "OrtOptions", "OrtRunner", "ort_options", "StatefulOrtRunner", "cuda_available", "cuda_status",
    "resolve_device", "check_export", "shape_inference_mismatches",
]
