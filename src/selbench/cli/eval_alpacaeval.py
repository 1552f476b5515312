"""`selbench eval lc-winrate | alpacaeval | head-to-head`: AlpacaEval 2 from annotations, models or both."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from selbench.cli.common import JsonOption, backend_options, emit, handle_errors

JUDGE_HELP = (
    "Judge model name at the endpoint (e.g. gpt-4-1106-preview, or the name `selbench serve` reports)."
)
SUBSET_HELP = "all (805) | study300 (our seeded 300) | a JSON file of instructions or indices."
ANNOTATOR_HELP = (
    "weighted_alpaca_eval_gpt4_turbo (AlpacaEval 2's, logprob-weighted) | alpaca_eval_gpt4_turbo_fn "
    "(function-calling ranking; the study's head-to-head)."
)
URL_HELP = "OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1); default api.openai.com (needs $OPENAI_API_KEY)."
KEY_ENV_HELP = "Environment variable holding the judge's API key (sent only as the bearer token; not needed on 127.0.0.1)."


def _public(result: dict) -> dict:
    """Drop per-instruction arrays from what the CLI prints; NaN (nothing judged) becomes null."""
    hidden = ("glm_preference", "preferences", "opponents")
    return {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in result.items()
        if k not in hidden
    }


@handle_errors
def lc_winrate(
    annotations: Path = typer.Option(
        ..., "--annotations", help="AlpacaEval annotations JSON (output_1 = baseline)."
    ),
    difficulty: str = typer.Option(
        "auto", "--difficulty", help="auto | official | estimate | path to instruction_difficulty.csv."
    ),
    difficulty_from: list[Path] | None = typer.Option(  # noqa: UP007 - typer needs Optional
        None,
        "--difficulty-from",
        help="Annotation files/folders to estimate difficulty from (default: files beside --annotations).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Win rate and length-controlled win rate of one annotations file (percent).

    Examples:

      selbench eval lc-winrate --annotations ../shared/data/alpaca_eval/annotations/claude-2.json --json
    """
    from selbench.evaluation.alpacaeval_data import lc_winrate_file

    emit(
        _public(lc_winrate_file(annotations, difficulty=difficulty, difficulty_from=difficulty_from or ())),
        as_json,
    )


@handle_errors
def alpacaeval(
    model: str = typer.Option(..., "--model", help="Model spec, or an AlpacaEval outputs JSON."),
    judge: str = typer.Option(..., "--judge", help=JUDGE_HELP),
    baseline: str = typer.Option(
        "gpt4_1106_preview",
        "--baseline",
        help="gpt4_1106_preview (packaged), a model spec or an outputs JSON.",
    ),
    judge_base_url: str | None = typer.Option(None, "--judge-base-url", help=URL_HELP),  # noqa: UP007
    limit: int | None = typer.Option(None, "--limit", help="First K instructions only."),  # noqa: UP007
    subset: str = typer.Option("all", "--subset", help=SUBSET_HELP),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="Generation length for model specs."),
    workers: int = typer.Option(4, "--judge-workers", help="Concurrent judge requests."),
    judge_api_key_env: str = typer.Option("OPENAI_API_KEY", "--judge-api-key-env", help=KEY_ENV_HELP),
    annotations_out: Path | None = typer.Option(None, "--annotations-out", help="Write annotations here."),  # noqa: UP007
    difficulty: str = typer.Option(
        "auto", "--difficulty", help="auto | official | estimate | path to instruction_difficulty.csv."
    ),
    difficulty_from: list[Path] | None = typer.Option(  # noqa: UP007 - typer needs Optional
        None,
        "--difficulty-from",
        help="Other models' AlpacaEval annotation files/folders: offline, LC's instruction difficulty is "
        "estimated from them.",
    ),
    annotator: str = typer.Option("weighted_alpaca_eval_gpt4_turbo", "--annotator", help=ANNOTATOR_HELP),
    backend: str = typer.Option("hf", "--backend", help="Where MODEL generates: hf | vllm | openai (a server)."),
    backend_url: str | None = typer.Option(  # noqa: UP007
        None, "--backend-url", help="openai backend: the server's base URL (e.g. a `vllm serve` at http://HOST:8000/v1)."
    ),
    served_model: str | None = typer.Option(  # noqa: UP007
        None, "--served-model", help="openai backend: the served model's name (default: the only one listed)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Generate MODEL's outputs, judge them against the baseline (weighted GPT-4-turbo annotator), report win rates.

    Examples:

      selbench eval alpacaeval --model runs/m --baseline gpt4_1106_preview --judge gpt-4-1106-preview --json

      selbench eval alpacaeval --model smollm2-135m-instruct --judge smollm2-135m-instruct \\
          --judge-base-url http://127.0.0.1:8000/v1 --limit 20 \\
          --difficulty-from ../shared/data/alpaca_eval/annotations
    """
    from selbench.errors import InputError
    from selbench.evaluation.alpacaeval import evaluate

    if annotations_out is not None:  # checked before generating and judging
        if annotations_out.is_dir():
            raise InputError(
                "is a folder; expected the annotations' file path (FILE.json)",
                path=annotations_out,
                field="annotations-out",
            )
        blocking = next((p for p in annotations_out.parents if p.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise InputError(f"{blocking} is a file, not a folder", path=annotations_out, field="annotations-out")
    result = evaluate(
        model,
        judge=judge,
        baseline=baseline,
        judge_base_url=judge_base_url,
        subset=subset,
        limit=limit,
        max_new_tokens=max_new_tokens,
        judge_workers=workers,
        annotations_out=annotations_out,
        difficulty=difficulty,
        difficulty_from=difficulty_from or (),
        backend=backend,
        backend_options=backend_options(backend, backend_url, served_model),
        annotator=annotator,
        judge_api_key_env=judge_api_key_env,
    )
    emit(_public(result), as_json)


@handle_errors
def head_to_head(
    model: str = typer.Option(..., "--model", help="The selected-data model: spec or outputs JSON."),
    random: list[str] = typer.Option(
        ..., "--random", help="A random-baseline model (repeat per seed): spec or outputs JSON."
    ),
    judge: str = typer.Option(..., "--judge", help=JUDGE_HELP),
    judge_base_url: str | None = typer.Option(None, "--judge-base-url", help=URL_HELP),  # noqa: UP007
    limit: int | None = typer.Option(None, "--limit", help="First K instructions only."),  # noqa: UP007
    subset: str = typer.Option("all", "--subset", help=SUBSET_HELP),
    seed: int = typer.Option(0, "--seed", help="Seeds the per-instruction choice of random baseline."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="Generation length for model specs."),
    workers: int = typer.Option(4, "--judge-workers", help="Concurrent judge requests."),
    judge_api_key_env: str = typer.Option("OPENAI_API_KEY", "--judge-api-key-env", help=KEY_ENV_HELP),
    full_per_seed: bool = typer.Option(
        False,
        "--full-per-seed",
        help="Also judge against every random model on every instruction (per_seed_full).",
    ),
    annotator: str = typer.Option("weighted_alpaca_eval_gpt4_turbo", "--annotator", help=ANNOTATOR_HELP),
    protocol: str = typer.Option(
        "both",
        "--protocol",
        help="both (each pair judged in both orders, averaged) | study (once, random output as the reference, "
        "alpaca_eval's order switch: the study's script).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """The study's Figure 2: MODEL vs a randomly chosen random-baseline model per instruction, both orders judged.

    Examples:

      selbench eval head-to-head --model runs/longest --random runs/random-s0 --random runs/random-s1 \\
          --judge smollm2-135m-instruct --judge-base-url http://127.0.0.1:8000/v1 --limit 10 --json
    """
    from selbench.evaluation.alpacaeval import evaluate_head_to_head

    result = evaluate_head_to_head(
        model,
        random,
        judge=judge,
        judge_base_url=judge_base_url,
        subset=subset,
        limit=limit,
        seed=seed,
        max_new_tokens=max_new_tokens,
        judge_workers=workers,
        full_per_seed=full_per_seed,
        protocol=protocol,
        annotator=annotator,
        judge_api_key_env=judge_api_key_env,
    )
    emit(_public(result), as_json)


def register(app: typer.Typer) -> None:
    """Add `lc-winrate`, `alpacaeval` and `head-to-head` to the `eval` group."""
    app.command(name="lc-winrate")(lc_winrate)
    app.command(name="alpacaeval")(alpacaeval)
    app.command(name="head-to-head")(head_to_head)
