"""Start-up time of `irflow` commands, against `python -c "import numpy"` on the same machine.

    python benchmarks/cli_startup.py [--repeat 15]        # the irflow on sys.path (PYTHONPATH)

Each command runs in a fresh subprocess (the same Python, the same environment), alternating
with the others so machine load affects them alike; the table gives the median wall time and
its ratio to importing NumPy, the floor every command pays. Absolute times move with the
load of a shared machine; read the ratios. `python -X importtime -m irflow.cli --help` shows
where the time goes.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL_JSON = ROOT / "irflow" / "models" / "mlp.irflow.json"


def commands(tmp: Path) -> dict[str, list[str]]:
    py = sys.executable
    onnx_model = tmp / "mlp.onnx"
    subprocess.run([py, "-m", "irflow.cli", "convert", str(MODEL_JSON), str(onnx_model)], check=True, capture_output=True,
                   cwd=tmp)
    return {
        'python -c "import numpy"': [py, "-c", "import numpy"],
        'python -c "import irflow"': [py, "-c", "import irflow"],
        "irflow --help": [py, "-m", "irflow.cli", "--help"],
        "irflow inspect mlp.irflow.json": [py, "-m", "irflow.cli", "inspect", str(MODEL_JSON)],
        "irflow inspect mlp.onnx": [py, "-m", "irflow.cli", "inspect", str(onnx_model)],
        'python -c "import irflow as irf; irf.tensor"': [py, "-c", "import irflow as irf; irf.tensor"],
    }


def wall_time(cmd: list[str], cwd: Path) -> float:
    # cwd: a directory without an irflow/ in it, so the irflow on sys.path (PYTHONPATH or the
    # installed one) is measured, not whatever tree the script is started from.
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(Path(tmp))
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for name, cmd in cmds.items():
            wall_time(cmd, Path(tmp))  # warm the page cache once
        for _ in range(args.repeat):
            for name, cmd in cmds.items():
                times[name].append(wall_time(cmd, Path(tmp)))
    base = statistics.median(times['python -c "import numpy"'])
    print(f"{'command':48s} {'median s':>9s} {'x numpy':>8s}   (n={args.repeat}, min-max s)")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:48s} {med:9.3f} {med / base:8.2f}   ({min(ts):.3f}-{max(ts):.3f})")


if __name__ == "__main__":
    main()
