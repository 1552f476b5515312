"""Instruction-Following Difficulty (IFD): the score behind Cherry LLM and Superfiltering.

IFD compares how well a model predicts an example's response with and without its instruction: the mean
cross-entropy of the response tokens after the prompt-formatted instruction, divided by the mean cross-entropy
of the same response after only `### Response:` (Li et al., NAACL 2024, https://arxiv.org/abs/2308.12032,
tianyi-lab/Cherry_LLM). Superfiltering (Li et al., ACL 2024, https://arxiv.org/abs/2402.00530) computes it
with a small model, its own prompt and the perplexity ratio. The texts, truncation lengths, spans and skip
rules of both are in `selbench.scoring.ifd_text`; the batched forward passes in `selbench.scoring.lm_forward`;
the scale-out backend (prompt log-probabilities from OpenAI-compatible servers) in
`selbench.scoring.logprob_client`.

The scorer `ifd` returns, per example: `ifd` (NaN where the reference skips the example), `loss_cond`,
`loss_uncond` (the two mean span losses; NaN where not computed) and `ifd_skip` (0 = scored, else the reason
code of `ifd_text.SKIP_REASONS`). Selection (drop IFD > 1, keep the highest) is the strategies' job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from selbench.cost import CostMeter
from selbench.errors import InputError
from selbench.scoring.ifd_text import METHODS, IFDPlan, ifd_from_losses, ifd_ppl_from_losses, plan_ifd

__all__ = ["IFDScorer", "ifd_columns", "ifd_from_losses", "ifd_ppl_from_losses", "ifd_scores"]

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16")


def _plan_sequences(plan: IFDPlan) -> tuple[list[int], list[list[int]], list[tuple[int, int]]]:
    """(example index per sequence, sequences, spans): each planned example's conditioned then direct text."""
    owners, sequences, spans = [], [], []
    for i in sorted(plan.cond):
        for ids, span in (plan.cond[i], plan.uncond[i]):
            owners.append(i)
            sequences.append(ids)
            spans.append(span)
    return owners, sequences, spans


def _columns_from_losses(plan: IFDPlan, losses: np.ndarray) -> dict[str, np.ndarray]:
    loss_cond = np.full(plan.n, np.nan)
    loss_uncond = np.full(plan.n, np.nan)
    indices = sorted(plan.cond)
    loss_cond[indices] = losses[0::2]
    loss_uncond[indices] = losses[1::2]
    return plan.combine(loss_cond, loss_uncond)


def ifd_columns(model: Any, tokenizer: Any, examples: Sequence[Mapping[str, Any]], max_length: int = 512, *,
                method: str = "cherry", batch_tokens: int | None = None) -> dict[str, np.ndarray]:
    """`ifd`, `loss_cond`, `loss_uncond`, `ifd_skip` per example, from a loaded model (see the module docstring).

    Both texts of every example go through the same length-sorted batches (one pass over the data, not one per
    text), so a batch holds texts of similar length whichever kind they are.
    """
    return _local_columns(model, tokenizer, examples, max_length, method, batch_tokens)[0]


def _local_columns(model: Any, tokenizer: Any, examples: Sequence[Mapping[str, Any]], max_length: int, method: str,
                   batch_tokens: int | None) -> tuple[dict[str, np.ndarray], int]:
    """(columns, tokens run through the model)."""
    from selbench.scoring.lm_forward import sequence_stats

    plan = plan_ifd(tokenizer, examples, max_length, method)
    _, sequences, spans = _plan_sequences(plan)
    losses, _ = sequence_stats(model, sequences, spans, batch_tokens=batch_tokens)
    columns = _columns_from_losses(plan, losses if losses is not None else np.zeros(0))
    return columns, sum(len(s) for s in sequences)


def ifd_scores(model: Any, tokenizer: Any, examples: Sequence[Mapping[str, Any]], max_length: int = 512) -> np.ndarray:
    """Cherry LLM's IFD of each example with its Alpaca prompt (NaN where Cherry skips it).

    Args:
        model: a 🤗 causal LM in eval mode (on any device; bf16 on GPU is fine).
        tokenizer: its tokenizer.
        examples: mappings with `instruction`, `input` (may be empty or absent) and `output`.
        max_length: Cherry's `--max_length`.

    Returns:
        float64 array `[len(examples)]`: mean response loss with the instruction / without it.
    """
    return ifd_columns(model, tokenizer, examples, max_length)["ifd"]


@dataclass(frozen=True)
class IFDScorer:
    """Instruction-Following Difficulty per example (columns ifd, loss_cond, loss_uncond, ifd_skip).

    Args:
        model: scoring model: packaged asset name, local model folder (e.g. a fine-tuned one) or hf://org/name.
        method: "cherry" (Cherry LLM's Alpaca prompt, truncation and loss ratio) or "superfilter" (Superfiltering's prompt, truncation and perplexity ratio).
        max_length: token limit of the prompt and of the conditioned text (Cherry's scripts: 512; Superfiltering's: 1024).
        base_url: score through OpenAI-compatible /v1/completions servers (vLLM, selbench serve) serving `model`; comma-separated URLs share the work; unset = load the model here.
        served_model: the model name the servers know (default: the only one they list).
        dtype: "auto" (float32 on CPU, bfloat16 on CUDA), "float32" or "bfloat16"; local backend only.
        device: "auto", "cpu", "cuda" or "cuda:N"; local backend only.
        batch_tokens: padded tokens per forward pass, 0 = automatic; speed and memory only, not in the cache key.
        concurrency: requests in flight per server (base_url only).
        api_key_env: environment variable holding the servers' API key, sent as the bearer token (base_url only).
    """

    model: str = "smollm2-135m-instruct"
    method: str = "cherry"
    max_length: int = 512
    base_url: str | None = None
    served_model: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    batch_tokens: int = 0
    concurrency: int = 4
    api_key_env: str = "OPENAI_API_KEY"

    name = "ifd"
    VERSION = 1
    columns = ("instruction", "input", "output")
    shard_size = 512

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"got {self.method!r}, allowed: {', '.join(METHODS)}", field="method")
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 8:
            raise InputError(f"got {self.max_length!r}, allowed: an integer >= 8", field="max_length")
        if self.dtype not in DTYPES:
            raise InputError(f"got {self.dtype!r}, allowed: {', '.join(DTYPES)}", field="dtype")
        if not isinstance(self.batch_tokens, int) or self.batch_tokens < 0:
            raise InputError(f"got {self.batch_tokens!r}, allowed: an integer >= 0", field="batch_tokens")
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise InputError(f"got {self.concurrency!r}, allowed: an integer >= 1", field="concurrency")
        if self.base_url is not None:
            from selbench.scoring.logprob_client import parse_base_urls

            parse_base_urls(self.base_url)

    def resolved_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        if self.device.startswith("cuda"):
            return "bfloat16"
        if self.device == "auto":
            import torch

            return "bfloat16" if torch.cuda.is_available() else "float32"
        return "float32"

    def fingerprint(self) -> dict[str, Any]:
        from selbench.assets import model_fingerprint

        # Content hashes, not the spec: the same model anywhere shares scores, a changed one never reuses them.
        out: dict[str, Any] = {"method": self.method, "max_length": self.max_length, **model_fingerprint(self.model)}
        # Precision changes the losses; a server's precision is its own (recorded as the backend kind).
        out["backend"] = "openai-completions" if self.base_url else f"local:{self.resolved_dtype()}"
        return out

    @cached_property
    def _tokenizer(self) -> Any:
        if self.base_url:
            from selbench.assets import load_tokenizer

            return load_tokenizer(self.model)
        return self._model[1]

    @cached_property
    def _model(self) -> tuple[Any, Any]:
        from selbench.assets import load_model

        return load_model(self.model, dtype=self.resolved_dtype(), device=self.device)

    @cached_property
    def _client(self) -> Any:
        from selbench.scoring.logprob_client import PromptLogprobClient

        return PromptLogprobClient(self.base_url, self.served_model, concurrency=self.concurrency,
                                   api_key_env=self.api_key_env)

    def score(self, rows: Mapping[str, list[Any]], meter: CostMeter) -> dict[str, np.ndarray]:
        n = len(rows["output"])
        examples = [{"instruction": rows["instruction"][i], "input": (rows.get("input") or [""] * n)[i],
                     "output": rows["output"][i]} for i in range(n)]
        if self.base_url:
            plan = plan_ifd(self._tokenizer, examples, self.max_length, self.method)
            _, sequences, spans = _plan_sequences(plan)
            losses = self._client.span_losses(sequences, spans)
            columns = _columns_from_losses(plan, losses)
            tokens = sum(len(s) for s in sequences)
        else:
            model, tokenizer = self._model
            columns, tokens = _local_columns(model, tokenizer, examples, self.max_length, self.method,
                                             self.batch_tokens or None)
        meter.add_tokens(tokens)
        skipped = int(np.isnan(columns["ifd"]).sum())
        log.info("ifd: %d examples, %d skipped, %d tokens", n, skipped, tokens)
        return columns

    def summarize(self, columns: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """`n_skipped` (DESIGN's `score ifd --json`: examples Cherry's rules leave unscored) and the count per
        reason (`ifd_text.SKIP_REASONS`), from the stored columns, so a cached table answers the same."""
        from selbench.scoring.ifd_text import SKIP_REASONS

        skip = np.asarray(columns["ifd_skip"])
        return {"n_skipped": int((skip != 0).sum()),
                "skipped_by_reason": {name: int((skip == code).sum()) for code, name in SKIP_REASONS.items()
                                      if (skip == code).any()}}
