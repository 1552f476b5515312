"""`selbench eval llmbar`: the model as a pairwise evaluator on LLMBar (see `selbench.evaluation.llmbar`)."""

from __future__ import annotations

from typing import Any

import typer

from selbench.cli.common import JsonOption, emit, handle_errors

EPILOG = """Examples:

  selbench eval llmbar --model smollm2-135m-instruct --subset natural --json

  selbench eval llmbar --model out/model --subset adversarial --method logprob --limit 20
"""


def _human(result: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console()
    console.print(f"LLMBar {result['subset']} ({result['strategy']}, {result['method']}): "
                  f"accuracy {result['accuracy']:.3f}, agreement {result['agreement']:.3f}, "
                  f"unparsed {result['unparsed']}, n {result['n']}" + (" [cached]" if result["cached"] else ""))
    if len(result.get("per_set", {})) > 1:  # the headline is the mean of the sets, as LLMBar reports it
        console.print(f"  (mean of {len(result['per_set'])} sets; pooled over instances: accuracy "
                      f"{result['accuracy_pooled']:.3f}, agreement {result['agreement_pooled']:.3f})")
    for name, stats in result.get("per_set", {}).items():
        console.print(f"  {name}: accuracy {stats['accuracy']:.3f}, agreement {stats['agreement']:.3f}, "
                      f"unparsed {stats['unparsed']}, n {stats['n']}")


def register(app: typer.Typer) -> None:
    """Add `llmbar` to the `eval` group."""

    @app.command("llmbar", epilog=EPILOG)
    @handle_errors
    def llmbar(
        model: str = typer.Option(..., "--model", help="Model spec: packaged asset name, local folder, or hf://org/name."),
        subset: str = typer.Option("natural", "--subset", help="natural | adversarial (mean of its four sets, as in the LLMBar paper)."),
        prompt_strategy: str = typer.Option("vanilla_rules", "--prompt-strategy",
                                            help="LLMBar prompt strategy: vanilla_rules (default) | vanilla | vanilla_1shot | vanilla_2shot | cot | metrics | "
                                            "reference | metrics_reference | swap | swap_cot | rating_rules | rating | rating_metrics | "
                                            "rating_reference | rating_metrics_reference."),
        method: str = typer.Option("generate", "--method",
                                   help="generate (LLMBar's protocol) | logprob (answer-probability variant)."),
        limit: int = typer.Option(None, "--limit", help="Only the first K instances of each set."),
        batch_size: int = typer.Option(8, "--batch-size", help="Prompts per forward batch."),
        data_dir: str = typer.Option(None, "--data-dir",
                                     help="LLMBar data folder or http(s) base URL (Natural/, Adversarial/...); default "
                                          "$SELBENCH_LLMBAR_DIR, then llmbar/ in $SELBENCH_SHARED_DATA or beside the "
                                          "selbench checkout (../shared/data), then the files hf://princeton-nlp/LLMBar "
                                          "loads (downloaded once, cached; not when HF_HUB_OFFLINE is set)."),
        as_json: bool = JsonOption,
    ) -> None:
        """Judge LLMBar pairs in both orders: accuracy (mean over orders), positional agreement, unparsed."""
        from selbench.evaluation.llmbar import evaluate

        result = evaluate(model, subset, strategy=prompt_strategy, method=method, limit=limit,
                          batch_size=batch_size, data_dir=data_dir)
        emit(result, as_json, None if as_json else _human)
