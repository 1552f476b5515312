"""`selbench eval ifeval`: score IFEval responses, or generate them with a model first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from selbench.cli.common import JsonOption, backend_options, check_writable, emit, handle_errors

EPILOG = """Examples:

  selbench eval ifeval --responses ../shared/data/ifeval/responses_gpt4_20231107.jsonl --json

  selbench eval ifeval --model smollm2-135m-instruct --limit 20 --max-new-tokens 256 --out runs/ifeval

  selbench eval ifeval --model out/model --setting study --seed 1
"""

SETTINGS = ("greedy", "study")


def _human(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"IFEval, {result['n']} prompts, {result['n_instructions']} instructions"
                  + (f" ({result['model']})" if result.get("model") else ""))
    table = Table("level", "strict", "loose")
    table.add_row("prompt", f"{result['prompt_strict']:.4f}", f"{result['prompt_loose']:.4f}")
    table.add_row("instruction", f"{result['inst_strict']:.4f}", f"{result['inst_loose']:.4f}")
    console.print(table)
    per = Table("instruction category", "n", "strict", "loose")
    for name, stats in result["per_category"].items():
        per.add_row(name, str(stats["n"]), f"{stats['strict']:.3f}", f"{stats['loose']:.3f}")
    console.print(per)


def generation_config(setting: str, *, seed: int, batch_size: int, max_new_tokens: int | None) -> Any:
    """The `GenerationConfig` of a setting; an explicit `max_new_tokens` applies to both (default 1024).

    `study` is `GenerationConfig.study` (vLLM's default sampling with the study's `max_tokens=1024`).
    """
    import dataclasses

    from selbench.generation.base import GenerationConfig

    if setting == "study":
        config = GenerationConfig.study(seed=seed, batch_size=batch_size)
        return config if max_new_tokens is None else dataclasses.replace(config, max_new_tokens=max_new_tokens)
    return GenerationConfig.greedy(max_new_tokens=1024 if max_new_tokens is None else max_new_tokens,
                                   batch_size=batch_size)


def register(app: typer.Typer) -> None:
    """Add `ifeval` to the `eval` group."""

    @app.command("ifeval", epilog=EPILOG)
    @handle_errors
    def ifeval(
        responses: Path = typer.Option(None, "--responses", help="JSONL with `prompt` and `response` per row."),
        model: str = typer.Option(None, "--model", help="Model spec to generate responses with (asset, folder, hf://)."),
        prompts: str = typer.Option(None, "--prompts",
                                    help="Prompt set: default the packaged 541; a JSONL path or hf://google/IFEval."),
        limit: int = typer.Option(None, "--limit", help="Only the first K prompts."),
        max_new_tokens: int = typer.Option(None, "--max-new-tokens",
                                           help="Most tokens generated per response (default 1024, both settings)."),
        batch_size: int = typer.Option(8, "--batch-size", help="Prompts per generation batch."),
        setting: str = typer.Option("greedy", "--setting",
                                    help="greedy (ours) | study (the study's vLLM defaults: sampling at temperature "
                                         "1.0, 1024 new tokens unless --max-new-tokens)."),
        seed: int = typer.Option(0, "--seed", help="Sampling seed (study setting)."),
        backend: str = typer.Option("hf", "--backend",
                                    help="hf | vllm (in-process) | openai (an OpenAI-compatible server, e.g. `vllm serve`)."),
        backend_url: str = typer.Option(None, "--backend-url",
                                        help="openai backend: the server's base URL (http://HOST:PORT/v1)."),
        served_model: str = typer.Option(None, "--served-model",
                                         help="openai backend: the served model's name (default: the only one listed)."),
        allow_missing: bool = typer.Option(False, "--allow-missing", help="Score only the prompts that have a response."),
        out: Path = typer.Option(None, "--out", help="Folder for responses.jsonl and scores.json."),
        as_json: bool = JsonOption,
    ) -> None:
        """IFEval prompt- and instruction-level accuracy, strict and loose (fractions in [0, 1])."""
        from selbench.errors import InputError
        from selbench.evaluation.ifeval import evaluate

        if (responses is None) == (model is None):
            raise InputError("give exactly one of --responses FILE or --model M", field="responses")
        if setting not in SETTINGS:
            raise InputError(f"{setting!r} is not one of {', '.join(SETTINGS)}", field="setting")
        if out is not None and out.exists() and not out.is_dir():
            raise InputError("exists and is not a folder", path=out, field="out")
        if out is not None:
            check_writable(out)
        generation = None if model is None else generation_config(setting, seed=seed, batch_size=batch_size,
                                                                   max_new_tokens=max_new_tokens)
        result = evaluate(responses=responses, model=model, prompts=prompts, limit=limit, allow_missing=allow_missing,
                          generation=generation, backend=backend, out=out, progress=True,
                          backend_options=backend_options(backend, backend_url, served_model))
        if not as_json:
            result.pop("per_instruction", None)
        emit(result, as_json, None if as_json else _human)
