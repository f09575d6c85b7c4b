"""The `irflow` command (typer). Commands live in their own modules."""
from __future__ import annotations


def main() -> None:
    from irflow.cli.app import app

    app()
