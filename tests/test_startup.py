"""`import irflow` and the `irflow` command import heavy packages only where they are used.

Each case runs in a fresh subprocess and lists which heavy modules ended up in sys.modules
(not how long it took: timings belong to benchmarks/cli_startup.py). ml_dtypes alone costs
0.6-1.6 s on the development machine; onnx imports it, so onnx is as heavy.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_JSON = ROOT / "irflow" / "models" / "mlp.irflow.json"
HEAVY = ("ml_dtypes", "onnx", "onnxruntime", "rich", "pydantic", "typer", "torch", "tensorboardX",
         "safetensors", "sklearn", "scipy", "irflow._api")


def _loaded_after(code: str) -> set[str]:
    probe = (f"import sys\n{code}\n"
             f"import json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _cli(*args: str) -> str:
    return ("import contextlib, io\nfrom irflow.cli import main\nsys.argv = ['irflow', " + ", ".join(map(repr, args))
            + "]\nwith contextlib.redirect_stdout(io.StringIO()):\n    try:\n        main()\n    except SystemExit as e:\n"
            "        assert e.code in (0, None), e.code\n")


def test_import_irflow_imports_nothing_heavy():
    assert _loaded_after("import irflow") == set()


def test_eager_use_does_not_import_onnx_ml_dtypes_or_optional_packages():
    loaded = _loaded_after("import irflow as irf, numpy as np\n"
                           "irf.relu(irf.tensor(np.ones(3, 'float32'))).numpy()\nirf.nn.Linear(3, 2)")
    assert loaded <= {"pydantic", "irflow._api"}, loaded


def test_bfloat16_loads_ml_dtypes_when_first_used():
    loaded = _loaded_after("import irflow as irf, numpy as np\n"
                           "assert irf.tensor(np.ones(2, 'float32')).astype('bfloat16').dtype == irf.bfloat16")
    assert "ml_dtypes" in loaded


def test_irflow_help_imports_only_typer_and_rich():
    loaded = _loaded_after(_cli("--help"))
    assert loaded <= {"typer", "rich"}, loaded


@pytest.mark.parametrize("command", ["inspect", "run"])
def test_json_model_commands_do_not_import_onnx(command):
    args = [command, str(MODEL_JSON)] + (["-i", "x=random"] if command == "run" else [])
    loaded = _loaded_after(_cli(*args))
    assert not loaded & {"onnx", "onnxruntime", "ml_dtypes", "torch"}, loaded
