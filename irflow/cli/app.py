"""The typer app behind `irflow`. Filled in by the CLI issue (#6)."""
from __future__ import annotations

import typer

import irflow

app = typer.Typer(help="irflow: convert, inspect, differentiate and run models.", no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"irflow {irflow.__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version.")) -> None:
    """irflow: one typed IR for deep learning."""
