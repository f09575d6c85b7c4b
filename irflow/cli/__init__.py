"""The `irflow` command (typer). Commands live in their own modules; ``app.py`` composes them."""
from __future__ import annotations


def main() -> None:
    """Entry point of the `irflow` console script and of ``python -m irflow``."""
    from irflow.cli.app import app

    app(prog_name="irflow")
