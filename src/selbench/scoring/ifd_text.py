"""The texts and token spans behind IFD, exactly as Cherry LLM and Superfiltering build them (no model here).

Cherry LLM (Li et al., NAACL 2024, https://arxiv.org/abs/2308.12032; tianyi-lab/Cherry_LLM
`cherry_seletion/data_analysis.py --mod cherry --prompt alpaca` and `data_by_IFD.py`), per example:

* prompt = the Alpaca prompt (with or without the input), ending in `### Response:` with no newline;
  `ins_len` = its token count, truncated to `max_length` (512 in the authors' scripts).
* conditioned text = prompt + output, truncated to `max_length` tokens;
  direct (unconditioned) text = `"### Response:" + output`, truncated to `max_length - ins_len + 4` tokens.
* the response span of a text starts at the token count of the text before the output's last occurrence
  (`text.rfind(output)`, tokenized without truncation) and runs to the end of the truncated text; each of its
  tokens is scored from the tokens before it.
* skipped (IFD NaN): `ins_len >= max_length` (prompt_too_long); an empty span in either text
  (no_response_tokens); `ins_len + len(direct span) > max_length` (response_too_long).
  The last rule is Cherry's: its `+4` is the token count of `### Response:` with LLaMA's BOS, so with
  LLaMA it never fires; with a tokenizer that spends fewer tokens on that prefix (GPT-2 BPE, SmolLM2: 3)
  it skips every example whose direct text was truncated. We keep the rule as written.
* IFD = mean span loss of the conditioned text / mean span loss of the direct text.

Superfiltering (Li et al., ACL 2024, https://arxiv.org/abs/2402.00530; tianyi-lab/Superfiltering
`code_ifd/data_analysis.py --prompt none`, `put_analysis_to_data.py`) differs on purpose:

* prompt = `"{instruction}\\n"` or `"{instruction}\\n{input}\\n"`; `max_length` 1024 in its scripts.
* direct text = the output alone, truncated to `max_length - ins_len + 1` tokens, scored on every token
  but the first (the loss of `model(ids, labels=ids)`).
* an empty output is skipped (empty_output); there is no `response_too_long` rule; a span without tokens
  gives a NaN loss (the reference's `nan` from an empty mean).
* IFD = perplexity ratio `exp(loss_cond) / exp(loss_direct)` (not the ratio of losses).

Deviation: the reference scripts catch any exception of a forward pass and record 0; nothing here raises
on such inputs, and unscorable examples are NaN, never 0.

Multi-turn examples (ShareGPT) are scored on their first user/assistant pair: the `instruction` and `output`
fields the loaders fill from it (later turns and system turns are ignored, as the study did).

Truncation is the tokenizer's own (`tokenizer(text, truncation=True, max_length=m)`), computed exactly:
texts are tokenized once without truncation in one batch call and only the ones longer than their limit are
tokenized again with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METHODS = ("cherry", "superfilter")

CHERRY_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
CHERRY_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
CHERRY_DIRECT_PREFIX = "### Response:"
SUPERFILTER_PROMPT_INPUT = "{instruction}\n{input}\n"
SUPERFILTER_PROMPT_NO_INPUT = "{instruction}\n"

# Skip reasons, stored as the `ifd_skip` column (0 = scored).
SCORED, PROMPT_TOO_LONG, NO_RESPONSE_TOKENS, RESPONSE_TOO_LONG, EMPTY_OUTPUT = 0, 1, 2, 3, 4
SKIP_REASONS = {PROMPT_TOO_LONG: "prompt_too_long", NO_RESPONSE_TOKENS: "no_response_tokens",
                RESPONSE_TOO_LONG: "response_too_long", EMPTY_OUTPUT: "empty_output"}


def cherry_prompt(instruction: str, input: str = "") -> str:
    """Cherry LLM's Alpaca prompt (no newline after `### Response:`, unlike Alpaca's training prompt).

    >>> cherry_prompt("Add 2 and 3.").endswith("### Instruction:\\nAdd 2 and 3.\\n\\n### Response:")
    True
    """
    if input:
        return CHERRY_PROMPT_INPUT.format_map({"instruction": instruction, "input": input})
    return CHERRY_PROMPT_NO_INPUT.format_map({"instruction": instruction})


def superfilter_prompt(instruction: str, input: str = "") -> str:
    """Superfiltering's `none` prompt.

    >>> superfilter_prompt("Add.", "2 3")
    'Add.\\n2 3\\n'
    """
    if input:
        return SUPERFILTER_PROMPT_INPUT.format_map({"instruction": instruction, "input": input})
    return SUPERFILTER_PROMPT_NO_INPUT.format_map({"instruction": instruction})


def ifd_from_losses(loss_cond: np.ndarray, loss_uncond: np.ndarray) -> np.ndarray:
    """Cherry's IFD: mean response loss with the instruction / mean response loss without it (NaN stays NaN).

    >>> ifd_from_losses(np.array([1.0, 2.0, np.nan]), np.array([2.0, 1.0, 1.0])).tolist()
    [0.5, 2.0, nan]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(loss_cond, dtype=np.float64) / np.asarray(loss_uncond, dtype=np.float64)


def ifd_ppl_from_losses(loss_cond: np.ndarray, loss_uncond: np.ndarray) -> np.ndarray:
    """Superfiltering's IFD: the perplexity ratio `exp(loss_cond) / exp(loss_uncond)`.

    >>> ifd_ppl_from_losses(np.array([1.0, 2.0]), np.array([1.0, 1.0])).round(4).tolist()
    [1.0, 2.7183]
    """
    return np.exp(np.asarray(loss_cond, dtype=np.float64) - np.asarray(loss_uncond, dtype=np.float64))


@dataclass
class IFDPlan:
    """Token sequences to score and where their response spans are.

    Args:
        n: number of examples.
        cond / uncond: example index -> (token ids, (span start, span end)) of its conditioned and direct
            texts; only examples that are not skipped before any forward pass are present.
        skip: per-example skip reason code (`SKIP_REASONS`; 0 = scored).
        method: "cherry" or "superfilter".
    """

    n: int
    method: str
    cond: dict[int, tuple[list[int], tuple[int, int]]] = field(default_factory=dict)
    uncond: dict[int, tuple[list[int], tuple[int, int]]] = field(default_factory=dict)
    skip: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))

    def combine(self, loss_cond: np.ndarray, loss_uncond: np.ndarray) -> dict[str, np.ndarray]:
        """The scorer's columns from the span losses of every example (NaN where not computed)."""
        loss_cond = np.asarray(loss_cond, dtype=np.float64).copy()
        loss_uncond = np.asarray(loss_uncond, dtype=np.float64).copy()
        skip = self.skip.copy()
        skip[(skip == SCORED) & (np.isnan(loss_cond) | np.isnan(loss_uncond))] = NO_RESPONSE_TOKENS
        ratio = ifd_from_losses if self.method == "cherry" else ifd_ppl_from_losses
        ifd = ratio(loss_cond, loss_uncond)
        ifd[skip != SCORED] = np.nan
        return {"ifd": ifd, "loss_cond": loss_cond, "loss_uncond": loss_uncond, "ifd_skip": skip}


def _field(example: Mapping[str, Any], name: str) -> str:
    value = example.get(name) if isinstance(example, Mapping) else getattr(example, name, None)
    return value or ""


def _encode(tokenizer: Any, texts: list[str], limits: Sequence[int | None]) -> list[list[int]]:
    """`tokenizer(text, truncation=True, max_length=limit)` per text (no truncation where limit is None), with
    one batch call for all texts and a second call only for those over their limit."""
    if not texts:
        return []
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    out = []
    for text, tokens, limit in zip(texts, ids, limits, strict=True):
        if limit is not None and len(tokens) > limit:
            tokens = tokenizer(text, truncation=True, max_length=limit)["input_ids"]
        out.append(list(tokens))
    return out


def plan_ifd(tokenizer: Any, examples: Sequence[Mapping[str, Any]], max_length: int = 512,
             method: str = "cherry") -> IFDPlan:
    """Tokenize every example's two texts and find their response spans (see the module docstring).

    Args:
        tokenizer: the scoring model's 🤗 tokenizer.
        examples: mappings (or objects) with `instruction`, `input` (may be absent), `output`.
        max_length: Cherry's `--max_length` (512 in its scripts; Superfiltering's 1024).
        method: "cherry" or "superfilter".
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    n = len(examples)
    plan = IFDPlan(n=n, method=method, skip=np.zeros(n, dtype=np.int8))
    outputs = [_field(e, "output") for e in examples]
    make_prompt = cherry_prompt if method == "cherry" else superfilter_prompt
    prompts = [make_prompt(_field(e, "instruction"), _field(e, "input")) for e in examples]
    prompt_lens = [len(ids) for ids in _encode(tokenizer, prompts, [None] * n)]
    ins_lens = [min(length, max_length) for length in prompt_lens]  # what truncation to max_length leaves

    todo = []
    for i in range(n):
        if method == "cherry" and max_length - ins_lens[i] <= 0:
            plan.skip[i] = PROMPT_TOO_LONG
        elif method == "superfilter" and outputs[i] == "":
            plan.skip[i] = EMPTY_OUTPUT
        else:
            todo.append(i)
    whole = [prompts[i] + outputs[i] for i in todo]
    if method == "cherry":
        direct = [CHERRY_DIRECT_PREFIX + outputs[i] for i in todo]
        direct_limits = [max_length - ins_lens[i] + 4 for i in todo]
    else:
        direct = [outputs[i] for i in todo]
        direct_limits = [max_length - ins_lens[i] + 1 for i in todo]
    cond_ids = _encode(tokenizer, whole, [max_length] * len(todo))
    direct_ids = _encode(tokenizer, direct, direct_limits)
    cond_prefix = _prefix_lengths(tokenizer, whole, [outputs[i] for i in todo])
    direct_prefix = (_prefix_lengths(tokenizer, direct, [outputs[i] for i in todo]) if method == "cherry"
                     else [1] * len(todo))  # Superfiltering: the whole text's loss, every token but the first
    for k, i in enumerate(todo):
        c_start, c_end = cond_prefix[k], len(cond_ids[k])
        d_start, d_end = direct_prefix[k], len(direct_ids[k])
        if method == "cherry":
            if d_end - d_start <= 0 or c_end - c_start <= 0:
                plan.skip[i] = NO_RESPONSE_TOKENS
                continue
            if ins_lens[i] + (d_end - d_start) > max_length:
                plan.skip[i] = RESPONSE_TOO_LONG
                continue
        plan.cond[i] = (cond_ids[k], _span(c_start, c_end))
        plan.uncond[i] = (direct_ids[k], _span(d_start, d_end))
    return plan


def _span(start: int, end: int) -> tuple[int, int]:
    """(start, end), or (0, 0) when there is no token to score (its loss is then NaN)."""
    return (start, end) if end > start else (0, 0)


def _prefix_lengths(tokenizer: Any, texts: list[str], targets: list[str]) -> list[int]:
    """Token count of the text before the target's last occurrence (`text.rfind(target)`), untruncated.

    Cherry's rule, kept literally: for a text that ends with its (non-empty) target the cut is the prompt's end.
    """
    prefixes = [text[: text.rfind(target)] for text, target in zip(texts, targets, strict=True)]
    cache: dict[str, int] = {}
    unique = [p for p in dict.fromkeys(prefixes)]
    for prefix, ids in zip(unique, _encode(tokenizer, unique, [None] * len(unique)), strict=True):
        cache[prefix] = len(ids)
    return [cache[p] for p in prefixes]
