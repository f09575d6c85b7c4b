"""IR -> IR transforms: reverse mode (vjp) and what is built on it."""
from irflow.autodiff.vjp import backward, replay, vjp

__all__ = ["vjp", "backward", "replay"]
