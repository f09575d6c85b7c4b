"""The typer app behind the `irflow` command: one module per command, composed here.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(app, ["--version"]).output   # doctest: +SKIP
'irflow 0.1.0\\n'
"""
from __future__ import annotations

from typing import Annotated

import typer

import irflow
from irflow.cli import convert, grad, inspect_cmd, run, viz
from irflow.cli.common import STATE

HELP = """irflow: convert, inspect, differentiate, check and run models (.onnx or .irflow.json).

Examples:

  irflow run irflow/models/mlp.irflow.json -i x=random

  irflow run model.onnx -i x=x.npy --compare --bisect

  irflow convert model.onnx model.irflow.json

  irflow inspect model.onnx

  irflow grad model.onnx --loss loss --wrt w -o grad.onnx

  irflow viz model.onnx -o model.dot

Bad input ends with a one-line error and exit status 2 (--debug shows the traceback).
"""

app = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


def _version(value: bool) -> None:
    if value:
        typer.echo(f"irflow {irflow.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
) -> None:
    """irflow: one typed IR for deep learning."""
    STATE.debug = debug


app.command("run", epilog=run.EPILOG)(run.run)
app.command("convert", epilog=convert.EPILOG)(convert.convert)
app.command("inspect", epilog=inspect_cmd.EPILOG)(inspect_cmd.inspect)
app.command("grad", epilog=grad.EPILOG)(grad.grad)
app.command("viz", epilog=viz.EPILOG)(viz.viz)
