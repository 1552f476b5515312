"""Batched generation with 🤗 transformers.

Prompts are rendered with the tokenizer's chat template when it has one (plain text otherwise), sorted by
token length so each batch holds similar lengths (less padding), left-padded (the new tokens of every row
then start at the same position), generated with the KV cache, and returned in the caller's order.
Generation stops per row at EOS, at the chat end token (`<|im_end|>` for ChatML models) and at any stop
string; the text is cut before the first stop string.
"""

from __future__ import annotations

import logging
from typing import Any

from selbench.generation.base import GenerationConfig, Prompt, truncate_at_stop

log = logging.getLogger(__name__)

# Chat end tokens of common templates; those present in the vocabulary also end generation.
CHAT_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Where generation ends: EOS ids of the tokenizer and the generation config, plus the chat end tokens in
    the vocabulary (a base model's EOS is often not its chat template's end of turn). Shared by the HF
    backend and `selbench serve`, so both stop at the same token."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if gen_eos is not None:
        ids.update(int(i) for i in (gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos]))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in CHAT_END_TOKENS if t in vocab)
    return sorted(ids)


class HFBackend:
    """Greedy or sampled generation with a loaded causal LM.

    Args:
        model: a 🤗 causal LM in eval mode (e.g. from `selbench.assets.load_model`).
        tokenizer: its tokenizer.
        progress: show a progress bar over batches.

    Attributes:
        stats: running totals `prompt_tokens`, `new_tokens`, `padded_tokens`, `batches`.
    """

    name = "hf"

    def __init__(self, model: Any, tokenizer: Any, *, progress: bool = False) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.progress = progress
        self.stats = {"prompt_tokens": 0, "new_tokens": 0, "padded_tokens": 0, "batches": 0}

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """(text, templated): the prompt as the model sees it.

        A chat prompt goes through the chat template with the generation prompt appended. Without a
        template, a chat prompt's message contents are joined by blank lines (our choice, for base models).
        """
        if isinstance(prompt, str):
            return prompt, False
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True), True
        return "\n\n".join(m["content"] for m in prompt), False

    def stop_token_ids(self) -> list[int]:
        """EOS ids of the tokenizer and generation config, plus chat end tokens in the vocabulary."""
        return stop_token_ids(self.model, self.tokenizer)

    def encode(self, prompts: list[Prompt]) -> list[list[int]]:
        out = []
        for index, prompt in enumerate(prompts):
            text, templated = self.render(prompt)
            # A chat template writes its own special tokens (BOS included where the model uses one).
            ids = self.tokenizer(text, add_special_tokens=not templated)["input_ids"]
            if not ids:
                raise ValueError(f"prompt {index + 1} is empty after tokenization; there is nothing to continue")
            out.append(ids)
        return out

    def generate(self, prompts: list[Prompt], config: GenerationConfig) -> list[str]:
        """One completion per prompt, in the prompts' order."""
        import torch
        from tqdm.auto import tqdm

        if not prompts:
            return []
        encoded = self.encode(prompts)
        # Longest first: memory peaks on the first batch, and similar lengths share a batch.
        order = sorted(range(len(prompts)), key=lambda i: (-len(encoded[i]), i))
        batches = [order[i: i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        outputs: list[str | None] = [None] * len(prompts)
        gen_config = self._generation_config(config)
        if config.do_sample:
            torch.manual_seed(config.seed)
        device = next(self.model.parameters()).device
        pad_id = self.tokenizer.pad_token_id
        assert pad_id is not None, "tokenizer has no pad token; load models with selbench.assets.load_model"
        for batch in tqdm(batches, desc="generate", unit="batch", disable=not self.progress):
            width = max(len(encoded[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids = encoded[i]
                input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
                attention[row, width - len(ids):] = 1
            extra = {"stop_strings": list(config.stop), "tokenizer": self.tokenizer} if config.stop else {}
            with torch.inference_mode():
                generated = self.model.generate(
                    input_ids=input_ids.to(device), attention_mask=attention.to(device),
                    generation_config=gen_config, **extra,
                )
            new_tokens = generated[:, width:].tolist()
            for row, i in enumerate(batch):
                tokens = self._until_stop(new_tokens[row], gen_config.eos_token_id)
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                outputs[i] = truncate_at_stop(text, config.stop)
                self.stats["new_tokens"] += len(tokens)
            self.stats["prompt_tokens"] += sum(len(encoded[i]) for i in batch)
            self.stats["padded_tokens"] += sum(width - len(encoded[i]) for i in batch)
            self.stats["batches"] += 1
        assert all(o is not None for o in outputs), "a prompt was left without an output"
        return outputs  # type: ignore[return-value]

    @staticmethod
    def _until_stop(tokens: list[int], stop_ids: list[int]) -> list[int]:
        """Tokens before the first stop token (rows that stopped early are padded after it)."""
        stops = set(stop_ids)
        for pos, tok in enumerate(tokens):
            if tok in stops:
                return tokens[:pos]
        return tokens

    def _generation_config(self, config: GenerationConfig) -> Any:
        from transformers import GenerationConfig as HFGenerationConfig

        # A fresh config, so the checkpoint's own sampling defaults never leak into greedy decoding.
        kwargs: dict[str, Any] = {
            "max_new_tokens": config.max_new_tokens,
            "min_new_tokens": config.min_new_tokens,
            "do_sample": config.do_sample,
            "eos_token_id": self.stop_token_ids(),
            "pad_token_id": self.tokenizer.pad_token_id,
            "use_cache": True,
        }
        if config.do_sample:
            kwargs.update(temperature=config.temperature, top_p=config.top_p, top_k=0)
        return HFGenerationConfig(**kwargs)
