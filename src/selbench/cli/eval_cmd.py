"""`selbench eval ...`: one module per benchmark, each adding its commands to this group."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Benchmarks: IFEval, AlpacaEval (LC win rate, head-to-head), LLMBar, OpenLLM tasks.", no_args_is_help=True)

# Each module defines `register(app: typer.Typer) -> None`.
_BENCHMARK_COMMANDS = (
    "selbench.cli.eval_ifeval",
    "selbench.cli.eval_alpacaeval",
    "selbench.cli.eval_llmbar",
    "selbench.cli.eval_openllm",
)

for _name in _BENCHMARK_COMMANDS:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _module.register(app)
