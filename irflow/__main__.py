"""``python -m irflow``: the `irflow` command."""
from irflow.cli import main

main()
