"""`selbench eval openllm`: Open LLM Leaderboard tasks through lm-eval-harness (see `selbench.evaluation.openllm`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from selbench.cli.common import JsonOption, emit, handle_errors

DEFAULT_TASKS = "mmlu,arc_easy,arc_challenge,winogrande,truthfulqa_mc1,truthfulqa_mc2,hellaswag"

EPILOG = """Examples:

  selbench eval openllm --model out/model --tasks arc_easy,hellaswag --setting leaderboard --json

  selbench eval openllm --model smollm2-135m-instruct --tasks my_task --include-path tasks/ --limit 50
"""


def _human(result: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console()
    console.print(f"OpenLLM tasks, setting {result['setting']}:")
    for task, info in result["details"].items():
        console.print(f"  {task}: {info['metric']} {result[task]:.4f} ({info['num_fewshot']}-shot, n {info['n']})"
                      + (" [cached]" if info["cached"] else ""))


def register(app: typer.Typer) -> None:
    """Add `openllm` to the `eval` group."""

    @app.command("openllm", epilog=EPILOG)
    @handle_errors
    def openllm(
        model: str = typer.Option(..., "--model", help="Model spec: packaged asset name, local folder, or hf://org/name."),
        tasks: str = typer.Option(DEFAULT_TASKS, "--tasks", help="Comma-separated lm-eval tasks ('truthfulqa' = mc1,mc2)."),
        setting: str = typer.Option("study", "--setting", help="study (5-shot, max length 1024, acc) | leaderboard."),
        limit: int = typer.Option(None, "--limit", help="Only the first K documents of each (sub)task."),
        include_path: Path = typer.Option(None, "--include-path", help="Folder of extra lm-eval task YAMLs."),
        batch_size: int = typer.Option(8, "--batch-size", help="lm-eval batch size."),
        as_json: bool = JsonOption,
    ) -> None:
        """Score the model on lm-eval tasks; one number per task (the setting's headline metric)."""
        from selbench.evaluation.openllm import evaluate

        result = evaluate(model, tasks, setting=setting, limit=limit, include_path=include_path, batch_size=batch_size)
        emit(result, as_json, None if as_json else _human)
