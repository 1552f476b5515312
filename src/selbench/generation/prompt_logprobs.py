"""Prompt log-probabilities for `selbench serve`: `/v1/completions` with `echo: true` and `max_tokens: 0`.

vLLM answers such a request with the prompt itself as the completion and, when `logprobs: k` is set, the
log-probability of every prompt token given the tokens before it (`token_logprobs[0]` is None: the first
token has no context), the top-k alternatives per position and the character offsets, in the legacy
completions shape. Scorers use it to compute losses on a server (`selbench.scoring.logprob_client`).

Prompts may be text (tokenized with the tokenizer's special tokens unless `add_special_tokens: false`, as
vLLM does for completions) or token ids (a list of ints, or a list of such lists), which are used as given.
Log-probabilities are the model's log-softmax in float32 over the model's own logits.
"""

from __future__ import annotations

from typing import Any

from selbench.generation.server_http import text_completion, text_offsets

MAX_TOP_LOGPROBS = 20


def wants_prompt_logprobs(body: dict[str, Any]) -> bool:
    """Whether a completions request asks only for its prompt scored (echo with zero new tokens)."""
    return bool(body.get("echo")) and body.get("max_tokens", body.get("max_completion_tokens")) == 0


def _prompts(body: dict[str, Any], tokenizer: Any) -> list[tuple[str, list[int]]]:
    """(text, token ids) per prompt; ValueError naming the field when the prompt is malformed."""
    prompt = body.get("prompt")
    add_special = body.get("add_special_tokens", True)
    if not isinstance(add_special, bool):
        raise ValueError(f"field 'add_special_tokens': {add_special!r} must be true or false")
    if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt)):
        prompt = [prompt]
    if not isinstance(prompt, list) or not prompt:
        raise ValueError("field 'prompt': must be a string, a list of strings, a list of token ids or a list of such lists")
    out = []
    vocab = len(tokenizer)
    for i, item in enumerate(prompt):
        if isinstance(item, str):
            ids = tokenizer(item, add_special_tokens=add_special)["input_ids"]
            out.append((item, list(ids)))
        elif isinstance(item, list) and item and all(isinstance(t, int) and not isinstance(t, bool) for t in item):
            if any(not 0 <= t < vocab for t in item):
                raise ValueError(f"field 'prompt[{i}]': token ids must be in [0, {vocab})")
            out.append((tokenizer.decode(item), item))
        else:
            raise ValueError(f"field 'prompt[{i}]': must be a non-empty string or list of token ids")
        if not out[-1][1]:
            raise ValueError(f"field 'prompt[{i}]': has no tokens")
    return out


def _score(local: Any, ids: list[int], top_k: int) -> tuple[list[float | None], list[dict[str, float] | None]]:
    import torch

    model = local.model
    device = next(model.parameters()).device
    with local.lock, torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0]
    logprobs = torch.log_softmax(logits.float(), dim=-1)  # row p: the distribution of token p + 1
    targets = torch.tensor(ids[1:], device=device)
    chosen = logprobs[:-1].gather(1, targets[:, None])[:, 0].tolist() if len(ids) > 1 else []
    token_logprobs: list[float | None] = [None, *chosen]
    tops: list[dict[str, float] | None] = [None]
    if top_k:
        values, indices = torch.topk(logprobs[:-1], top_k, dim=-1)
        for p in range(len(ids) - 1):
            top = {local.tokenizer.decode([int(j)]): float(v) for v, j in zip(values[p], indices[p], strict=True)}
            top.setdefault(local.tokenizer.decode([ids[p + 1]]), float(chosen[p]))  # vLLM includes the prompt token
            tops.append(top)
    else:
        tops.extend({local.tokenizer.decode([ids[p + 1]]): float(chosen[p])} for p in range(len(ids) - 1))
    return token_logprobs, tops


def prompt_logprobs_response(
    local: Any, body: dict[str, Any], model_name: str, context: int | None = None
) -> dict[str, Any]:
    """The completions answer to an echo/max_tokens 0 request (ValueError naming the field when malformed).

    With `context`, a prompt longer than the model's context is refused (`server_http.fit_context`'s 400)
    before any forward pass.
    """

    from selbench.generation.server_http import fit_context

    top_k = body.get("logprobs")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or not 0 <= top_k <= MAX_TOP_LOGPROBS):
        raise ValueError(f"field 'logprobs': {top_k!r} must be an integer in [0, {MAX_TOP_LOGPROBS}]")
    prompts = _prompts(body, local.tokenizer)
    if context is not None:
        for index, (_, ids) in enumerate(prompts):
            param = "prompt" if len(prompts) == 1 else f"prompt[{index}]"
            fit_context(len(ids), {"max_tokens": 0, "min_tokens": 0}, context, param=param)
    choices = []
    n_tokens = 0
    for index, (text, ids) in enumerate(prompts):
        n_tokens += len(ids)
        logprobs = None
        if top_k is not None:
            token_logprobs, tops = _score(local, ids, top_k)
            tokens = [local.tokenizer.decode([t]) for t in ids]
            logprobs = {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": tops,
                        "text_offset": text_offsets(tokens)}
        choices.append({"index": index, "text": text, "logprobs": logprobs, "finish_reason": "length"})
    return text_completion(model_name, choices, n_tokens, 0)
