"""A loaded causal LM used as a judge: identity, fingerprint, prompt ids, greedy answers, answer log-probs.

Shared by the benchmarks that use the fine-tuned model itself as an evaluator (LLMBar) or score choices
with it (OpenLLM through lm-eval).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from selbench.errors import InputError
from selbench.hashing import sha256_json, sha256_text

log = logging.getLogger(__name__)


def model_identity(model: Any) -> tuple[str, str]:
    """(spec, fingerprint) of a model spec or a loaded (model, tokenizer) pair, without loading a spec.

    A spec is fingerprinted by its files (`selbench.assets.fingerprint`), a loaded pair by its weights.
    """
    if isinstance(model, (tuple, list)) and len(model) == 2:
        return "<in-memory>", loaded_model_fingerprint(model[0], model[1])
    from selbench.assets.fingerprint import model_fingerprint

    return str(model), sha256_json(model_fingerprint(str(model)))


def load_judge(model: Any) -> tuple[Any, Any]:
    """(model, tokenizer) from a model spec, or the loaded pair itself."""
    if isinstance(model, (tuple, list)) and len(model) == 2:
        return model[0], model[1]
    from selbench.assets import load_model

    return load_model(str(model))


def loaded_model_fingerprint(model: Any, tokenizer: Any) -> str:
    """sha256 of the weights (names, dtypes, shapes, bytes), the tokenizer definition and the chat template."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    tok_def = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    digest.update(sha256_text(tok_def).encode())
    digest.update(sha256_text(str(getattr(tokenizer, "chat_template", None))).encode())
    return digest.hexdigest()


def render_prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of `messages` in the judge's chat template, ending with the assistant turn's opening.

    Rendering is the generation backend's (`HFBackend.encode`), so both methods see the same prompt.
    Without a chat template the messages are joined by a blank line, as the reference does for PaLM 2.
    """
    from selbench.generation.hf import HFBackend

    return list(HFBackend(None, tokenizer).encode([messages])[0])


def _batches_by_length(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), which keeps padding small."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _left_padded(ids: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    import torch

    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, x in enumerate(ids):
        input_ids[row, width - len(x):] = torch.tensor(x, dtype=torch.long)
        mask[row, width - len(x):] = 1
    return input_ids, mask


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise InputError("the tokenizer has neither a pad nor an EOS token", field="model")
    return int(pad)


def greedy_generate(model: Any, tokenizer: Any, prompts: list[list[dict[str, str]]], max_new_tokens: int,
                    batch_size: int) -> tuple[list[str], int]:
    """Greedy completions of chat prompts with the HF backend (length-sorted, left-padded batches).

    The text is decoded without special tokens, ending at EOS or the chat end token. Returns the
    completions in the prompts' order and the number of tokens processed (prompt + new).
    """
    from selbench.generation.base import GenerationConfig
    from selbench.generation.hf import HFBackend

    backend = HFBackend(model, tokenizer, progress=True)
    texts = backend.generate(prompts, GenerationConfig.greedy(max_new_tokens=max_new_tokens, batch_size=batch_size))
    return texts, backend.stats["prompt_tokens"] + backend.stats["new_tokens"]


def answer_logprobs(model: Any, tokenizer: Any, prompts: list[list[dict[str, str]]], answers: tuple[str, str],
                    batch_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Log-probabilities of the two answers' first differing tokens, after the prompt and their shared tokens.

    One forward pass per prompt: the input is the rendered prompt followed by the tokens both answers
    start with ("Output (" for LLMBar), and the two numbers are the log-softmax of the last position at
    the first token where the answers differ. Returns (logp_first, logp_second, tokens processed).
    """
    import torch
    from tqdm.auto import tqdm

    first, second = (list(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)
    shared = 0
    while shared < min(len(first), len(second)) and first[shared] == second[shared]:
        shared += 1
    if shared == len(first) or shared == len(second):
        raise ValueError(f"answers {answers!r} tokenize to a prefix of one another; cannot compare them")
    ids = [render_prompt_ids(tokenizer, p) + first[:shared] for p in prompts]
    logp = np.zeros((len(ids), 2), dtype=np.float64)
    pad = _pad_id(tokenizer)
    device = next(model.parameters()).device
    for batch in tqdm(_batches_by_length([len(x) for x in ids], batch_size), desc="llmbar score", disable=None):
        input_ids, mask = _left_padded([ids[i] for i in batch], pad)
        # Left padding needs explicit positions, or every padded row would be shifted.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                           position_ids=positions.to(device), logits_to_keep=1).logits
        scores = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
        pair = scores[:, [first[shared], second[shared]]].cpu().numpy()
        logp[batch] = pair
    return logp[:, 0], logp[:, 1], sum(len(x) for x in ids)
