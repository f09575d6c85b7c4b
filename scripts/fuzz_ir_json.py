"""Long run of the IR JSON mutation fuzzer (the suite runs 400 seeded examples of the same).

    python scripts/fuzz_ir_json.py --examples 5000

Prints the outcome counts: loaded fine, IrflowError, and anything else (a bug: listed with
where it was raised). docs/reliability.md records the last numbers.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402

import irflow as irf  # noqa: E402
from tests.ir.test_ir_json_robustness import _load_text, mutated_documents  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    args = parser.parse_args()
    counts: collections.Counter = collections.Counter()
    examples: dict[str, str] = {}

    @settings(max_examples=args.examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(doc=mutated_documents())
    def run(doc):
        with tempfile.TemporaryDirectory() as d:
            try:
                _load_text(json.dumps(doc), Path(d))
                counts["loaded and verified"] += 1
            except irf.IrflowError:
                counts["IrflowError"] += 1
            except Exception as e:  # noqa: BLE001 - this is what the fuzzer looks for
                frame = traceback.extract_tb(e.__traceback__)[-1]
                key = f"LEAKED {type(e).__name__} at {Path(frame.filename).name}:{frame.lineno}"
                counts[key] += 1
                examples.setdefault(key, str(e)[:200])

    run()
    for key, n in counts.most_common():
        print(f"{n:6d}  {key}")
    for key, text in examples.items():
        print(f"{key}: {text}")


if __name__ == "__main__":
    main()
