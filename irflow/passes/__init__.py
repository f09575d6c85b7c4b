"""IR -> IR rewrites."""
from irflow.passes.prune import prune

__all__ = ["prune"]
