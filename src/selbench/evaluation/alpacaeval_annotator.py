"""AlpacaEval 2's annotators: prompts, requests, parsing and alpaca_eval's seeded order switch.

* The weighted annotator, `weighted_alpaca_eval_gpt4_turbo` (Dubois et al., 2024,
  https://github.com/tatsu-lab/alpaca_eval, `evaluators_configs/weighted_alpaca_eval_gpt4_turbo/`): its
  prompt file is read from the installed alpaca_eval package at run time; the two outputs are shown as
  models "m" (output_1) and "M" (output_2); one token is requested (max_tokens 1, temperature 1, logprobs
  with top 5); preference = 2 - P(m) / (P(m) + P(M)) over the top-5 list (a token absent from it has
  probability 0; neither present = unparseable).
* The function-calling ranking annotator the study's head-to-head script used, `alpaca_eval_gpt4_turbo_fn`:
  prompt and request (tools, forced tool_choice, temperature 0, 100 tokens) from the installed alpaca_eval's
  configs; the verdict is the rank (1 or 2, never soft) of model "m" in the call's `ordered_models`.
* Before prompting, a pair is swapped when `random.Random("is_switched_outputs" + instruction + "0")` draws
  True, and the preference mapped back with 3 - x, exactly as alpaca_eval's pairwise annotator does (its
  annotators run with seed 0, passed down to the switch; the official leaderboard annotations agree on every
  instruction, see the tests). Pairs whose two outputs are identical get 1.5 without a judge call, as in
  alpaca_eval.

Judging goes through the shared client (`selbench.llm.LLMClient`): cached per request, retried, accounted.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from selbench.errors import InputError
from selbench.llm.client import LLMClient, ResponseParseError

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
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

    message = ((response.get("choices") or [{}])[0].get("message")) or {}
    calls = message.get("tool_calls") or []
    text = calls[0]["function"]["arguments"] if calls else (message.get("content") or "")
    if not text:
        raise ResponseParseError("empty completion")
    try:
        ordered = json.loads(text)["ordered_models"]
        rank = [entry for entry in ordered if entry["model"] == first][0]["rank"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ResponseParseError(f"no ranking of model {first!r}: {exc}") from None
    if rank not in (1, 2):
        raise ResponseParseError(f"rank {rank!r} is not 1 or 2")
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
        raise ResponseParseError(f"neither {first!r} nor {second!r} among the top log-probabilities")
    lp_first = found.get(first, -math.inf)
    norm = np.logaddexp(lp_first, found.get(second, -math.inf))
    return float(2 - math.exp(lp_first - norm))


def parse_weighted_preference(response: dict[str, Any]) -> float:
    """Preference in [1, 2] from a chat completion with logprobs (first generated token)."""
    content = ((response.get("choices") or [{}])[0].get("logprobs") or {}).get("content")
    if not content:
        raise ResponseParseError("response has no logprobs.content")
    return preference_from_top_logprobs(content[0].get("top_logprobs") or [])


def is_switched(instruction: str, seed: int = ANNOTATOR_SEED) -> bool:
    """alpaca_eval's seeded output-order switch for one instruction."""
    return random.Random("is_switched_outputs" + instruction + str(seed)).choices([False, True], k=1)[0]


def annotate_pairs(
    client: LLMClient,
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
