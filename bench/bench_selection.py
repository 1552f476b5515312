"""Selecting longest at 1k / 5k / 10k from a 100k-example pool scores the pool once.

Run: `.venv/bin/python bench/bench_selection.py [--n 100000]`. Builds a synthetic prepared pool in a
temporary folder (its own step store too), then runs `selbench.selection.manifest.run_selection` three
times, the code path of `selbench select longest`. Prints the scoring time (paid once, by the first budget),
each selection's wall time, whether each score lookup was a cache hit (read from the manifests' cost
records), and checks the target: the three selections take under 2 s in total.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 2.0
BUDGETS = (1_000, 5_000, 10_000)


def build_pool(folder: Path, n: int) -> None:
    import numpy as np

    from selbench.data.schema import Example, rows_sha256, write_examples

    lengths = np.random.default_rng(0).integers(1, 2000, n)
    examples = [Example(instruction=f"synthetic task {i}", output="r" * int(k)) for i, k in enumerate(lengths)]
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": n}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="pool size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-selection-") as tmp:
        root = Path(tmp)
        os.environ["SELBENCH_CACHE"] = str(root / "cache")
        started = time.perf_counter()
        build_pool(root / "pool", args.n)
        print(f"pool: {args.n} examples written in {time.perf_counter() - started:.2f} s")

        from selbench.cost import detect_device
        from selbench.selection.manifest import run_selection
        from selbench.store import StepStore

        detect_device()  # import torch once, outside the timings, as any real pipeline already has
        store = StepStore(root / "cache")
        rows = []
        for budget in BUDGETS:
            run = run_selection(root / "pool", "longest", budget, root / f"longest-{budget}.json", store=store)
            score_part, select_part = run.manifest["cost"]["extra"]["parts"]
            rows.append((budget, run.seconds, run.manifest["scores"]["length"]["cached"], score_part, select_part))
        score_cost = run.manifest["scores"]["length"]["cost"]
        print(f"scoring (once): {score_cost['wall_seconds']:.3f} s, {score_cost['usd']:.6f} USD")
        print(f"{'budget':>7} {'seconds':>8} {'score cache hit':>16} {'score s charged':>16} {'select s':>9}")
        for budget, seconds, hit, score_part, select_part in rows:
            print(f"{budget:>7} {seconds:>8.3f} {str(hit):>16} {score_part['wall_seconds']:>16.3f} "
                  f"{select_part['wall_seconds']:>9.4f}")
        total = sum(r[1] for r in rows)
        without_scoring = total - score_cost["wall_seconds"]
        hits_ok = [r[2] for r in rows] == [False, True, True]
        print(f"total for the three selections: {total:.3f} s ({without_scoring:.3f} s besides the one scoring); "
              f"target < {TARGET_S} s: {'met' if total < TARGET_S else 'MISSED'}; "
              f"2nd/3rd score lookups cached: {hits_ok}")
        return 0 if hits_ok and total < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
