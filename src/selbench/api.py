"""selbench's public Python API: one name per pipeline step, imported lazily (no torch at import).

    from selbench import api
    api.prepare("alpaca", "alpaca_data.json", "runs/alpaca")
    api.run_selection("runs/alpaca", "longest", 1000, "runs/sel/longest.json")
    model, tokenizer = api.load_model("smollm2-135m-instruct")

The command line is a thin layer over these functions.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # data
    "prepare": "selbench.data.prepare:prepare",
    "read_examples": "selbench.data.schema:read_examples",
    # assets
    "load_model": "selbench.assets.models:load_model",
    "model_fingerprint": "selbench.assets.fingerprint:model_fingerprint",
    # scoring and selection
    "compute_scores": "selbench.scoring.base:compute_scores",
    "run_selection": "selbench.selection.manifest:run_selection",
    "overlap_matrix": "selbench.analysis.overlap:overlap_matrix",
    # training
    "train": "selbench.training.train:train",
    "train_config": "selbench.training.presets:from_preset",
    # generation and evaluation
    "generate": "selbench.generation.cached:cached_generate",
    "evaluate_ifeval": "selbench.evaluation.ifeval:evaluate",
    "evaluate_lc_winrate": "selbench.evaluation.alpacaeval_data:lc_winrate_file",
    "evaluate_alpacaeval": "selbench.evaluation.alpacaeval:evaluate",
    "evaluate_head_to_head": "selbench.evaluation.alpacaeval:evaluate_head_to_head",
    "evaluate_llmbar": "selbench.evaluation.llmbar:evaluate",
    "evaluate_openllm": "selbench.evaluation.openllm:evaluate",
    # cost, report, demo
    "collect_costs": "selbench.cost.tables:collect_costs",
    "write_report": "selbench.report.summary:write_report",
    "write_study_report": "selbench.report.study:write_study_report",
    "run_demo": "selbench.runner.demo:run_demo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"selbench.api has no {name!r} (public names: {', '.join(__all__)})")
    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value
