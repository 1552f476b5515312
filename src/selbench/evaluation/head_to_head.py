"""Head-to-head against the random baselines (the study's Figure 2), judged with AlpacaEval's annotators.

For each instruction, the selected model's output is judged against one random-baseline model's output
picked uniformly at random (seeded). The study's script pooled the random models' outputs per instruction,
sampled one with Python's unseeded `random.sample`, and ran alpaca_eval's `alpaca_eval_gpt4_turbo_fn`
annotator once per pair (random output as the reference, alpaca_eval's seeded order switch). We seed the
pick and, by default (`protocol="both"`), judge with the weighted annotator in both orders (position
swapping) and average the two preferences; `protocol="study"` judges once as the study did (random output as
output_1, alpaca_eval's switch); `annotator="alpaca_eval_gpt4_turbo_fn"` uses the study's function-calling
ranking annotator (hard 1/2 verdicts) instead of the weighted one, so `protocol="study",
annotator=FN_ANNOTATOR` is the study's script. Mean-adjusted win rate = win rate - 50. `per_seed` reports
the win rate over the instructions whose opponent came from each random seed (no extra judge calls).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from selbench.errors import InputError
from selbench.evaluation.alpacaeval_annotator import ANNOTATOR, annotate_pairs
from selbench.llm.client import LLMClient

PROTOCOLS = ("both", "study")  # head-to-head judging: both orders averaged, or once as the study did


def win_rate_summary(preferences: Sequence[float]) -> dict[str, Any]:
    """Win rate (percent) of output_2 from preferences in [1, 2], and the mean-adjusted win rate (- 50).

    >>> win_rate_summary([2.0, 1.0, 1.75])
    {'win_rate': 58.33333333333333, 'mean_adjusted_win_rate': 8.333333333333329, 'n': 3}
    >>> win_rate_summary([])["win_rate"] is None
    True
    """
    if not preferences:
        return {"win_rate": None, "mean_adjusted_win_rate": None, "n": 0}
    wr = float((np.mean(preferences) - 1) * 100)
    return {"win_rate": wr, "mean_adjusted_win_rate": wr - 50, "n": len(preferences)}


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
    client: LLMClient,
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

    out = win_rate_summary([p for p in prefs if p is not None])
    out["unparsed"] = sum(p is None for p in prefs)
    out["unparsed_orders"] = unparsed_orders
    out["protocol"] = protocol
    out["annotator"] = annotator
    out["per_seed"] = {
        str(k): win_rate_summary([p for p, pk in zip(prefs, picks, strict=True) if pk == k and p is not None])
        for k in keys
    }
    if full_per_seed:
        out["per_seed_full"] = {}
        for key in keys:
            full, _ = judged(random_outputs_by_seed[key], False)
            out["per_seed_full"][str(key)] = win_rate_summary([p for p in full if p is not None])
    out["opponents"] = [str(k) for k in picks]
    out["preferences"] = prefs
    return out
