"""``python -m irflow.cli``: the `irflow` command."""
from irflow.cli import main

main()
