"""DEITA's complexity and quality scorers (`deita-complexity`, `deita-quality`).

Liu et al. (2024), "What Makes Good Data for Alignment?" (DEITA, https://arxiv.org/abs/2312.15685); reference
code hkust-nlp/deita `src/deita/selection/scorer/{base,llama_scorer,mistral_scorer}.py` and
`src/deita/pipeline/score_pipeline.py`. What is reproduced:

* The prompts, character for character (`COMPLEXITY_TEMPLATE`, `QUALITY_TEMPLATE`), tokenized as DEITA's
  `tokenizer.encode(text)` does (the tokenizer's special tokens added, e.g. Llama's BOS).
* The score: the logits of the first generated token for the six tokens "1" ... "6", softmaxed over those six
  only, and the expected value sum_k k * p_k (`Scorer.infer_score`; `expected_score` here). DEITA reads
  them from `generate(..., output_scores=True)`; without sampling or logits processors (the scorers'
  generation config has none) those are the raw next-token logits, which is what we compute, with one
  forward pass and only the last position through the LM head. The six token ids are the vocabulary
  entries spelled "1" ... "6"; DEITA hard-codes them per tokenizer (Llama: 29896, 29906, 29941, 29946,
  29945, 29953; Mistral: 28740, 28750, 28770, 28781, 28782, 28784), which are, as far as we know, those
  entries (not checkable offline: the tokenizers are not packaged).
* Multi-turn records, as `ScorePipeline._load_sharegpt` cuts them: turns are paired by position
  (turn 0 with 1, 2 with 3, ...), a last unanswered turn is scored with an empty response, and every pair is
  scored: complexity from the pair's instruction, quality from instruction and response. DEITA keeps the
  per-turn lists; its filter sorts by sum_t (complexity_t x quality_t) (`Combined_Filter._sort`). The
  columns: `complexity` / `quality` = the sum over turns (DEITA's key when one score is used alone) and
  `complexity_turns` / `quality_turns` = `[n, max_turns]` per-turn scores, NaN past the last turn, from
  which the `deita` strategy forms the product key.
* The official scorers: `hf://hkust-nlp/deita-complexity-scorer` and `hf://hkust-nlp/deita-quality-scorer`
  (the defaults). Offline, any causal LM stands in (e.g. `smollm2-135m-instruct`): the machinery is real,
  the numbers are not DEITA's (an untuned model was never taught what the scores mean).

Deviations (all documented choices, none changes a score DEITA would compute on a prompt that fits):
system turns are dropped (DEITA's ShareGPT data has none); pairs beyond `max_turns` are not scored (logged;
the packaged ShareGPT pool has at most 63 pairs); a prompt longer than `max_length` tokens is shortened
inside its fields (quality: the response first, then the instruction; the template's tail "##Quality: "
always stays, since the score is read right after it), where DEITA would feed the whole prompt to its
2,048-token Llama scorer; weights load in `dtype` ("auto": bfloat16 on CUDA, float32 on CPU; DEITA's
HF path used float32); batches are left-padded, which changes logits only by float rounding.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from selbench.cost import CostMeter
from selbench.errors import InputError

log = logging.getLogger(__name__)

COMPLEXITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the complexity score of the following user query. \n"
    "##Query: {instruction}  \n##Complexity: "
)
QUALITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the quality score of the Response corresponding to the "
    "Question. \n #Question#:\n{instruction}\n#Response#:\n{output} \n##Quality: "
)
SCORE_TOKENS = ("1", "2", "3", "4", "5", "6")
OFFICIAL = {"complexity": "hf://hkust-nlp/deita-complexity-scorer", "quality": "hf://hkust-nlp/deita-quality-scorer"}
DEFAULT_MAX_TURNS = 64


def expected_score(score_logits: np.ndarray) -> np.ndarray:
    """DEITA's score: softmax over the logits of "1" ... "6", then the expected value.

    >>> expected_score(np.array([[0.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 50.0]])).round(6).tolist()
    [3.5, 6.0]
    """
    logits = np.asarray(score_logits, dtype=np.float64)
    assert logits.shape[-1] == len(SCORE_TOKENS), f"need {len(SCORE_TOKENS)} logits per row, got {logits.shape}"
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs @ np.arange(1, len(SCORE_TOKENS) + 1, dtype=np.float64)


def conversation_pairs(messages: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    """(instruction, response) pairs as DEITA cuts a conversation: turns paired by position, system turns
    dropped, a last unanswered turn paired with "".

    >>> conversation_pairs([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
    ...                     {"role": "user", "content": "c"}])
    [('a', 'b'), ('c', '')]
    """
    turns = [m["content"] for m in messages if m.get("role") != "system"]
    return [(turns[i], turns[i + 1] if i + 1 < len(turns) else "") for i in range(0, len(turns), 2)]


def score_token_ids(tokenizer: Any) -> list[int]:
    """Ids of the vocabulary entries "1" ... "6" (InputError when the vocabulary lacks one)."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in SCORE_TOKENS if t not in vocab]
    if missing:
        raise InputError(f"the scorer's vocabulary has no single token for {', '.join(missing)}: DEITA reads the "
                         "score from the tokens '1' ... '6'", field="model")
    return [int(vocab[t]) for t in SCORE_TOKENS]


@dataclass(frozen=True)
class _DeitaScorer:
    """Shared machinery of the two DEITA scorers (see the module docstring)."""

    model: str | None = None
    max_turns: int = DEFAULT_MAX_TURNS
    max_length: int = 2048
    batch_size: int = 8
    dtype: str = "auto"
    device: str = "auto"

    kind: ClassVar[str]
    VERSION: ClassVar[int] = 1
    columns: ClassVar[tuple[str, ...]] = ("messages",)
    shard_size: ClassVar[int] = 256

    def __post_init__(self) -> None:
        for name, low in (("max_turns", 1), ("max_length", 16), ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"{value!r} is not an integer >= {low}", field=name)
        from selbench.assets.models import LoadOptions

        LoadOptions(dtype=self.dtype, device=self.device)  # names the field of a bad dtype or device now

    @property
    def model_spec(self) -> str:
        return self.model or OFFICIAL[self.kind]

    @property
    def template(self) -> str:
        return COMPLEXITY_TEMPLATE if self.kind == "complexity" else QUALITY_TEMPLATE

    def fingerprint(self) -> dict[str, Any]:
        from selbench.assets.fingerprint import model_fingerprint

        return {"model": model_fingerprint(self.model_spec), "max_turns": self.max_turns,
                "max_length": self.max_length, "dtype": self.dtype}

    @cached_property
    def _loaded(self) -> tuple[Any, Any, list[int]]:
        from selbench.assets import load_model

        model, tokenizer = load_model(self.model_spec, dtype=self.dtype, device=self.device, padding_side="left")
        return model, tokenizer, score_token_ids(tokenizer)

    def _fields(self, instruction: str, response: str) -> dict[str, str]:
        if self.kind == "complexity":
            return {"instruction": instruction}
        return {"instruction": instruction, "output": response}

    def encode(self, tokenizer: Any, fields: dict[str, str]) -> list[int]:
        """Token ids of the filled template; fields are shortened (last field first) until it fits."""
        fields = dict(fields)
        ids = tokenizer(self.template.format(**fields))["input_ids"]
        for name in reversed(list(fields)):
            while len(ids) > self.max_length and fields[name]:
                overflow = len(ids) - self.max_length
                field_tokens = len(tokenizer(fields[name], add_special_tokens=False)["input_ids"])
                keep = len(fields[name]) * max(0, field_tokens - overflow - 4) // max(1, field_tokens)
                fields[name] = fields[name][: min(keep, len(fields[name]) - 1)]
                ids = tokenizer(self.template.format(**fields))["input_ids"]
        if len(ids) > self.max_length:
            raise InputError(f"{self.max_length} tokens cannot hold DEITA's {self.kind} prompt", field="max_length")
        return ids

    def score(self, rows: Mapping[str, list[Any]], meter: CostMeter) -> dict[str, np.ndarray]:
        from tqdm.auto import tqdm

        from selbench.scoring.causal_lm import batches_by_length, next_token_logits, pad_id

        model, tokenizer, token_ids = self._loaded
        n = len(rows["messages"])
        prompts: list[list[int]] = []
        where: list[tuple[int, int]] = []
        cut = 0
        for row, messages in enumerate(rows["messages"]):
            pairs = conversation_pairs(messages or [])
            cut += max(0, len(pairs) - self.max_turns)
            for turn, (instruction, response) in enumerate(pairs[: self.max_turns]):
                prompts.append(self.encode(tokenizer, self._fields(instruction, response)))
                where.append((row, turn))
        if cut:
            log.info("deita-%s: %d turn(s) past max_turns=%d not scored", self.kind, cut, self.max_turns)
        scores = np.empty(len(prompts), dtype=np.float64)
        pad = pad_id(tokenizer)
        batches = list(batches_by_length([len(p) for p in prompts], self.batch_size))
        for batch in tqdm(batches, desc=f"deita-{self.kind}", unit="batch", disable=None, leave=False):
            logits = next_token_logits(model, [prompts[i] for i in batch], token_ids, pad)
            scores[batch] = expected_score(logits)
        meter.add_tokens(sum(len(p) for p in prompts))
        turns = np.full((n, self.max_turns), np.nan, dtype=np.float32)
        if where:
            rows_idx, turn_idx = np.array(where).T
            turns[rows_idx, turn_idx] = scores
        total = np.zeros(n, dtype=np.float64)
        if where:
            np.add.at(total, rows_idx, scores)
        return {self.kind: total, f"{self.kind}_turns": turns}


@dataclass(frozen=True)
class DeitaComplexityScorer(_DeitaScorer):
    """DEITA's instruction complexity (1-6, expected value), per turn and summed over turns.

    Args:
        model: scorer model (asset, folder or hf://); default hf://hkust-nlp/deita-complexity-scorer.
        max_turns: conversation turns scored per example (DEITA scores all; 1 = the first only).
        max_length: longest prompt in tokens; longer instructions are shortened to fit.
        batch_size: prompts per forward pass.
        dtype: weights dtype: auto, float32, bfloat16 or float16.
        device: auto, cpu, cuda, cuda:N or mps.
    """

    name: ClassVar[str] = "deita-complexity"
    kind: ClassVar[str] = "complexity"


@dataclass(frozen=True)
class DeitaQualityScorer(_DeitaScorer):
    """DEITA's response quality (1-6, expected value), per turn and summed over turns.

    Args:
        model: scorer model (asset, folder or hf://); default hf://hkust-nlp/deita-quality-scorer.
        max_turns: conversation turns scored per example (DEITA scores all; 1 = the first only).
        max_length: longest prompt in tokens; longer responses, then instructions, are shortened to fit.
        batch_size: prompts per forward pass.
        dtype: weights dtype: auto, float32, bfloat16 or float16.
        device: auto, cpu, cuda, cuda:N or mps.
    """

    name: ClassVar[str] = "deita-quality"
    kind: ClassVar[str] = "quality"
