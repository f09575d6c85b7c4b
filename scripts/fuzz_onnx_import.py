"""The long run of the ONNX importer's fuzzers (the quick one is tests/frontends/test_onnx_import_fuzz.py).

    python scripts/fuzz_onnx_import.py                       # 3000 single-op models, 1500 mutations
    python scripts/fuzz_onnx_import.py --single 500 --mutations 200 --seed 7

Each case is loaded with ``irflow.frontends.onnx_import.load``; a model that imports is also
run once on the NumPy executor with small random feeds when its declared inputs are small.
Outcomes: imported (and ran), an ``IrflowError`` (by class), or anything else: a bug, listed
with its seed so it can be replayed. Peak traced memory per case is reported too.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import irflow as irf  # noqa: E402
from irflow.frontends.onnx_import import load  # noqa: E402
from tests.frontends.onnx_fuzz import fuzz_ops, mutate, seed_models, single_op_model  # noqa: E402

OPSETS = (13, 17, 18, 21)


def feeds_for(g, rng):
    feeds = {}
    for v in g.inputs:
        shape = tuple(d if isinstance(d, int) else 2 for d in v.type.shape)
        if int(np.prod(shape, dtype=np.int64)) > 4096:
            return None
        dt = v.type.dtype.numpy
        if dt.kind == "b":
            feeds[v.name] = rng.integers(0, 2, shape).astype(bool)
        elif dt.kind in "iu":
            feeds[v.name] = rng.integers(0, 3, shape).astype(dt)
        else:
            feeds[v.name] = rng.standard_normal(shape).astype(dt)
    return feeds


def try_case(source, rng, run: bool):
    """(outcome, detail, peak bytes)."""
    tracemalloc.reset_peak()
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = load(source)
    except irf.IrflowError as e:
        if "import failed:" in str(e):  # the catch-all wrapper: an unchecked case, still a bug to fix
            return "wrapped stray exception", str(e).split("import failed: ")[1][:200], tracemalloc.get_traced_memory()[1]
        return f"refused: {type(e).__name__}", str(e)[:160], tracemalloc.get_traced_memory()[1]
    except Exception as e:  # noqa: BLE001 - what the fuzzer is looking for
        return "BUG at import", f"{type(e).__name__}: {str(e)[:200]}", tracemalloc.get_traced_memory()[1]
    peak = tracemalloc.get_traced_memory()[1]
    if not run:
        return "imported", "", peak
    feeds = feeds_for(g, rng)
    if feeds is None:
        return "imported (too large to run)", "", peak
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            irf.run(g, feeds)
    except irf.IrflowError as e:
        return f"imported, run refused: {type(e).__name__}", str(e)[:160], peak
    except Exception as e:  # noqa: BLE001
        return "BUG at run", f"{type(e).__name__}: {str(e)[:200]}", peak
    return "imported and ran", "", peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--single", type=int, default=3000, help="schema-generated single-op models")
    ap.add_argument("--mutations", type=int, default=1500, help="mutated valid models")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-run", action="store_true", help="import only")
    args = ap.parse_args()
    ops = fuzz_ops()
    seeds = [m.SerializeToString() for m in seed_models()]
    tracemalloc.start()
    t0 = time.perf_counter()
    report = {}
    for kind, count in (("single-op", args.single), ("mutated", args.mutations)):
        outcomes = collections.Counter()
        bugs = collections.defaultdict(list)
        peak_max = 0
        made = 0
        for i in range(count):
            rng = np.random.default_rng([args.seed, i, kind == "mutated"])
            if kind == "single-op":
                op = ops[int(rng.integers(len(ops)))]
                source = single_op_model(op, int(rng.choice(OPSETS)), rng)
                if source is None:
                    continue
                label = op
            else:
                base = seeds[int(rng.integers(len(seeds)))]
                import onnx

                data = mutate(base, rng)
                try:
                    source = onnx.load_from_string(data)
                except Exception:  # noqa: BLE001 - undecodable bytes: load() of a file says so
                    path = ROOT / ".fuzz_case.onnx"
                    path.write_bytes(data)
                    source = path
                label = "mutation"
            made += 1
            outcome, detail, peak = try_case(source, rng, run=not args.no_run)
            peak_max = max(peak_max, peak)
            outcomes[outcome] += 1
            if outcome.startswith("BUG") or outcome.startswith("wrapped"):
                bugs[(label, detail.split(":")[0])].append((i, detail))
        report[kind] = (made, outcomes, bugs, peak_max)
    (ROOT / ".fuzz_case.onnx").unlink(missing_ok=True)
    secs = time.perf_counter() - t0
    for kind, (made, outcomes, bugs, peak_max) in report.items():
        print(f"\n## {kind}: {made} cases, peak traced memory per case {peak_max / 2**20:.1f} MiB")
        for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1]):
            print(f"| {k} | {v} |")
        for (label, exc), cases in sorted(bugs.items()):
            print(f"- {label} {exc} x{len(cases)}: seed index {cases[0][0]}: {cases[0][1]}")
    print(f"\n{secs:.0f} s (shared machine: timings are noisy)")


if __name__ == "__main__":
    main()
