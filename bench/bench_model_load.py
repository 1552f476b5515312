"""Packaged SmolLM2: first GGUF -> safetensors conversion vs later loads from the cached copy.

Run: `.venv/bin/python bench/bench_model_load.py [--asset smollm2-135m-instruct] [--runs 3] [--json]`.
Converts into a fresh temporary model cache (so the first load really converts), then loads the cached
copy `--runs` times in the same process. torch/transformers and the model class are imported before
timing, so the numbers are the loading work itself; the cold import cost is printed separately. Target:
a cached load under 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

TARGET_S = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asset", default="smollm2-135m-instruct")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()

    start = time.perf_counter()
    import torch  # noqa: F401
    from transformers import AutoTokenizer, LlamaForCausalLM  # noqa: F401  (model class import, once)

    import_s = time.perf_counter() - start

    from selbench.assets import load_model
    from selbench.assets.convert import converted_dir

    with tempfile.TemporaryDirectory(prefix="selbench-bench-models-") as cache:
        os.environ["SELBENCH_MODEL_CACHE"] = cache
        start = time.perf_counter()
        load_model(args.asset)
        first_s = time.perf_counter() - start
        folder = converted_dir(args.asset)
        marker = json.loads((folder / "selbench-asset.json").read_text())
        cached = []
        for _ in range(args.runs):
            start = time.perf_counter()
            load_model(args.asset)
            cached.append(time.perf_counter() - start)

    median = statistics.median(cached)
    result = {
        "asset": args.asset,
        "import_s": round(import_s, 2),
        "first_load_with_conversion_s": round(first_s, 2),
        "conversion_s": marker["seconds"],
        "cached_load_s": [round(s, 3) for s in cached],
        "cached_load_median_s": round(median, 3),
        "ratio_first_over_cached": round(first_s / median, 1),
        "target_s": TARGET_S,
        "ok": median < TARGET_S,
    }
    print(f"imports (torch, transformers, model class): {import_s:.2f} s", file=sys.stderr)
    print(
        f"first load (converts GGUF): {first_s:.2f} s (conversion itself {marker['seconds']} s)",
        file=sys.stderr,
    )
    print(
        f"cached loads: {', '.join(f'{s:.2f}' for s in cached)} s (median {median:.2f} s, target < {TARGET_S} s)",
        file=sys.stderr,
    )
    print(f"ratio first / cached: {first_s / median:.1f}x", file=sys.stderr)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
