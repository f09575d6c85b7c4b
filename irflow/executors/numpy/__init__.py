"""The NumPy reference executor: kernels by op name and the interpreter."""
from irflow.executors.numpy.interpreter import Interpreter
from irflow.executors.numpy.kernels import KERNELS, kernel

__all__ = ["Interpreter", "KERNELS", "kernel"]
