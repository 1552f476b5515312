"""The benchmark registry, and the output files every evaluation step writes.

Each benchmark lives in its own module and exposes one entry point named `evaluate`; built-ins register
here as lazy "module:attr" strings so that `selbench --help` never imports torch or lm-eval. Outside
packages add benchmarks through the `selbench.benchmarks` entry-point group.

Every evaluation step (`IFEvalStep`, `LLMBarStep`, `OpenLLMStep`, ...) leaves in its store folder
`metrics.json` (the benchmark's headline numbers) and `items.jsonl`: one JSON row per benchmark item with at
least `item` (a string id, stable across models, so rows of two models pair up) and `score` (a float, higher
is better), which the study collects into `items.parquet` for paired statistics.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from selbench.registry import Registry

BENCHMARKS: Registry[Callable[..., Any]] = Registry("benchmark", "selbench.benchmarks")

BENCHMARKS.register("ifeval", "selbench.evaluation.ifeval:evaluate")
BENCHMARKS.register("alpacaeval", "selbench.evaluation.alpacaeval:evaluate")
BENCHMARKS.register("lc-winrate", "selbench.evaluation.lc_winrate:evaluate")
BENCHMARKS.register("llmbar", "selbench.evaluation.llmbar:evaluate")
BENCHMARKS.register("openllm", "selbench.evaluation.openllm:evaluate")

METRICS_FILE = "metrics.json"
ITEMS_FILE = "items.jsonl"


def write_items(folder: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write `items.jsonl` into an evaluation step's folder (each row needs a string `item` and a float `score`)."""
    from selbench.store import write_text_atomic

    lines = []
    for row in rows:
        assert isinstance(row.get("item"), str) and isinstance(row.get("score"), float), f"bad item row {row}"
        lines.append(json.dumps(dict(row), ensure_ascii=False, sort_keys=True) + "\n")
    write_text_atomic(Path(folder) / ITEMS_FILE, "".join(lines))


def read_items(folder: str | Path) -> list[dict[str, Any]]:
    """The per-item rows of a finished evaluation step folder."""
    text = (Path(folder) / ITEMS_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line]
