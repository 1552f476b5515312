"""One local 🤗 causal LM behind `selbench serve`: generation of one prompt, per-token log-probabilities,
and a stop at the next token when the request is cancelled.

Log-probabilities are recorded token by token (`_StepLogprobs`), not from `generate(output_logits=True)`,
which keeps every step's full-vocabulary logits until the end (49k floats a token for SmolLM2: 1.6 GB
for a generation that fills its 8k context). The recorder sits where 🤗 puts caller-supplied logits
processors: after the checkpoint's own processors (none for the packaged models) and before sampling's
temperature / top-p, i.e. it sees the model's log-softmax as OpenAI reports it. `min_tokens` is applied
after the recorder by 🤗's own `MinNewTokensLengthLogitsProcessor`, exactly where `generate` would put it,
so the tokens generated are what `generate(min_new_tokens=...)` gives and the reported log-probabilities
are the model's, not the suppressed ones.
"""

from __future__ import annotations

import threading
from typing import Any

from selbench.generation.server_http import Cancelled


class LocalModel:
    """Greedy or sampled generation of one prompt with per-token log-probabilities, under a lock.

    Args:
        model: a 🤗 causal LM in eval mode.
        tokenizer: its tokenizer.
        name: the name the server reports and accepts.
        shutdown: set when the server stops; running and queued generations then end (Cancelled).
    """

    def __init__(self, model: Any, tokenizer: Any, name: str, shutdown: threading.Event | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.lock = threading.Lock()
        self.shutdown = shutdown or threading.Event()

    def chat_prompt_ids(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> list[int]:
        extra = {"tools": tools} if tools else {}
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def text_prompt_ids(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def _acquire(self, cancel: threading.Event) -> None:
        """Wait for the model, giving up when the request is cancelled meanwhile (its client left)."""
        while not self.lock.acquire(timeout=0.1):
            if cancel.is_set() or self.shutdown.is_set():
                raise Cancelled("cancelled while waiting for the model")

    def complete(
        self, prompt_ids: list[int], fields: dict[str, Any], top_k: int, cancel: threading.Event | None = None
    ) -> dict[str, Any]:
        """Generate after `prompt_ids`. Returns text, finish_reason, per-token strings/logprobs/top lists.

        Raises Cancelled when `cancel` (or the server's shutdown) is set before the generation ends.
        """
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList
        from transformers.generation.logits_process import MinNewTokensLengthLogitsProcessor

        from selbench.generation.hf import HFBackend, stop_token_ids

        cancel = cancel or threading.Event()
        stops = stop_token_ids(self.model, self.tokenizer)  # the HF backend's stop set: EOS and chat end tokens
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        do_sample = fields["temperature"] > 0
        kwargs: dict[str, Any] = {"do_sample": do_sample, "max_new_tokens": fields["max_tokens"]}
        if do_sample:
            kwargs.update(temperature=fields["temperature"], top_p=fields["top_p"], top_k=0)
        recorder = _StepLogprobs(top_k, (cancel, self.shutdown))
        processors = [recorder]
        if fields.get("min_tokens"):  # stop tokens are suppressed until then, as the HF backend does
            processors.append(
                MinNewTokensLengthLogitsProcessor(len(prompt_ids), fields["min_tokens"], stops or eos)
            )
        self._acquire(cancel)
        try:
            with torch.no_grad():
                if cancel.is_set() or self.shutdown.is_set():
                    raise Cancelled("cancelled before generation")
                if fields["seed"] is not None:
                    torch.manual_seed(fields["seed"])
                input_ids = torch.tensor([prompt_ids], dtype=torch.long)
                sequences = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    eos_token_id=stops or eos,
                    pad_token_id=pad,
                    logits_processor=LogitsProcessorList(processors),
                    stopping_criteria=StoppingCriteriaList([recorder.criterion]),
                    **kwargs,
                )
        finally:
            self.lock.release()
        if recorder.stopped:
            raise Cancelled("the request was cancelled during generation")
        new_ids = sequences[0, len(prompt_ids):].tolist()
        assert len(recorder.token_logprobs) == len(new_ids), "one recorded log-probability per new token"
        kept = HFBackend._until_stop(new_ids, stops)
        finish = "stop" if len(kept) < len(new_ids) else "length"
        new_ids = kept
        tokens = [self.tokenizer.decode([t]) for t in new_ids]
        token_logprobs = recorder.token_logprobs[: len(new_ids)]
        tops = [
            [(self.tokenizer.decode([j]), v) for j, v in top] for top in recorder.tops[: len(new_ids)]
        ]
        # The message text is decoded as a whole without special tokens, as the HF backend does; the
        # per-token strings serve the logprobs.
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        joined = "".join(tokens)
        # Stop strings: cut the text and the token lists at the first token that completes a stop string.
        cut_tokens = len(tokens)
        for stop in fields["stop"]:
            idx = text.find(stop)
            if idx != -1:
                finish = "stop"
                text = text[:idx]
            idx = joined.find(stop)
            if idx != -1:
                length = 0
                for j, tok in enumerate(tokens):
                    length += len(tok)
                    if length > idx:
                        cut_tokens = min(cut_tokens, j + 1)
                        break
        return {
            "text": text,
            "finish_reason": finish,
            "tokens": tokens[:cut_tokens],
            "token_logprobs": token_logprobs[:cut_tokens],
            "top": tops[:cut_tokens],
            "prompt_tokens": len(prompt_ids),
            "completion_tokens": len(new_ids),
        }


class _StepLogprobs:
    """Records each step's log-softmax (as a logits processor) and, once the step's token is chosen, its
    log-probability and top-k (as a stopping criterion, which also ends generation when an event is set)."""

    def __init__(self, top_k: int, events: tuple[threading.Event, ...]) -> None:
        self.top_k = top_k
        self.events = events
        self.pending: Any = None
        self.pending_top: list[tuple[int, float]] = []
        self.token_logprobs: list[float] = []
        self.tops: list[list[tuple[int, float]]] = []
        self.stopped = False
        self.criterion = _RecordChosen(self)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        assert scores.shape[0] == 1, "the server generates one prompt at a time"
        self.pending = torch.log_softmax(scores[0].float(), dim=-1)
        self.pending_top = []
        if self.top_k:
            values, ids = torch.topk(self.pending, self.top_k)
            self.pending_top = [(int(j), float(v)) for v, j in zip(values, ids, strict=True)]
        return scores


class _RecordChosen:
    def __init__(self, recorder: _StepLogprobs) -> None:
        self.recorder = recorder

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        rec = self.recorder
        rec.token_logprobs.append(float(rec.pending[int(input_ids[0, -1])]))
        rec.tops.append(rec.pending_top)
        rec.stopped = rec.stopped or any(event.is_set() for event in rec.events)
        return torch.full((input_ids.shape[0],), rec.stopped, dtype=torch.bool, device=input_ids.device)
