"""Per-example embeddings: a sentence-transformers model, or a causal LM's pooled last hidden state.

Two kinds of model, chosen from `model`:

* a sentence-transformers model (default: the packaged all-MiniLM-L6-v2, offline; or any folder holding
  `modules.json`): its own tokenizer, truncation (`max_seq_length`) and pooling;
* a causal LM (asset name, model folder or `hf://org/name`): the mean (or last-token) of its last hidden state
  after the final norm, over the text's tokens, padding excluded. With `text="cherry_prompt"` and
  `perplexity=True` this is Cherry LLM's `data_analysis.py --mod pre --prompt alpaca` (Li et al., NAACL 2024,
  tianyi-lab/Cherry_LLM): the embedding of the Alpaca prompt truncated to 512 tokens, and the prompt's
  perplexity (exp of the mean next-token loss over all its tokens but the first), which `data_by_cluster.py`
  uses as the confidence inside each k-means cluster.

Columns: `embedding` (a 2-D `[n, d]` column, float32 unless `dtype="float16"`) and, with `perplexity`, `ppl`.
Multi-turn examples are embedded from their first user/assistant pair (`instruction`, `input`, `output`),
except with `text="chat"`, which formats the whole stored conversation with the model's chat template.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from selbench.cost import CostMeter
from selbench.errors import InputError

TEXTS = ("instruction", "cherry_prompt", "pair", "chat", "vicuna")
POOLINGS = ("mean", "last")
STORAGE_DTYPES = ("float32", "float16")
PRECISIONS = ("auto", "float32", "bfloat16")
DEFAULT_EMBEDDER = "all-minilm-l6-v2"


def example_texts(rows: Mapping[str, list[Any]], text: str, tokenizer: Any = None) -> list[str]:
    """The text embedded for each row.

    >>> example_texts({"instruction": ["Add.", "Hi"], "input": ["2 3", ""], "output": ["5", "Hello"]}, "pair")
    ['Add.\\n\\n2 3\\n\\n5', 'Hi\\n\\nHello']
    """
    n = len(rows["instruction"])
    inputs = rows.get("input") or [""] * n
    asked = [ins + ("\n\n" + inp if inp else "") for ins, inp in zip(rows["instruction"], inputs, strict=True)]
    if text == "instruction":
        return asked
    if text == "pair":
        return [a + "\n\n" + out for a, out in zip(asked, rows["output"], strict=True)]
    if text == "cherry_prompt":
        from selbench.scoring.ifd_text import cherry_prompt

        return [cherry_prompt(ins, inp) for ins, inp in zip(rows["instruction"], inputs, strict=True)]
    if text == "vicuna":  # DEITA's embedding input: the whole conversation in FastChat's vicuna_v1.1 template
        from selbench.scoring.chat_text import conversation_text

        messages = rows.get("messages") or [None] * n
        return [conversation_text(messages[i] or [{"role": "user", "content": asked[i]},
                                                  {"role": "assistant", "content": rows["output"][i]}], "vicuna")
                for i in range(n)]
    if text == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise InputError("text 'chat' needs a causal LM with a chat template", field="text")
        messages = rows.get("messages") or [None] * n
        out = []
        for i in range(n):
            conversation = [{"role": m["role"], "content": m["content"]} for m in (messages[i] or [])]
            if not conversation:
                conversation = [{"role": "user", "content": asked[i]}, {"role": "assistant", "content": rows["output"][i]}]
            out.append(tokenizer.apply_chat_template(conversation, tokenize=False))
        return out
    raise ValueError(f"text must be one of {TEXTS}, got {text!r}")


def is_sentence_transformer(spec: str) -> bool:
    """Whether `spec` names a sentence-transformers model (the packaged embedder or a folder with modules.json)."""
    from selbench.assets.catalog import assets

    if spec in assets:
        return assets.get(spec).kind == "embedder"
    return (Path(spec).expanduser() / "modules.json").is_file()


@functools.lru_cache(maxsize=8)
def _folder_sha256(folder: str, signature: tuple[tuple[str, int, int], ...]) -> str:
    from selbench.hashing import sha256_file, sha256_json

    return sha256_json([[rel, sha256_file(Path(folder) / rel)] for rel, _, _ in signature])


def sentence_transformer_sha256(spec: str) -> str:
    """Content hash of a sentence-transformers folder: every file but its README (pooling config included)."""
    from selbench.assets.catalog import asset_path, assets

    folder = asset_path(spec) if spec in assets else Path(spec).expanduser()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "README")))
    signature = tuple((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _folder_sha256(str(folder), signature)


@dataclass(frozen=True)
class EmbedScorer:
    """Embedding of each example's instruction (or prompt, pair, conversation); 2-D column `embedding`.

    Args:
        model: "all-minilm-l6-v2" (the packaged sentence-transformers model), a sentence-transformers folder, or a causal LM (asset name, folder, hf://org/name) whose last hidden state is pooled.
        text: what is embedded: "instruction" (instruction, then a blank line and the input if any), "cherry_prompt" (Cherry LLM's Alpaca prompt, as its --mod pre), "pair" (instruction and input, a blank line, the output), "chat" (the stored conversation through the causal LM's chat template) or "vicuna" (the stored conversation in DEITA's vicuna_v1.1 template, selbench.scoring.chat_text).
        pooling: causal LM only: "mean" over the tokens (Cherry) or "last" (the last token's state).
        max_length: causal LM only: tokens kept per text (the tokenizer's truncation); sentence-transformers models keep their own max_seq_length.
        perplexity: causal LM only: also a `ppl` column, the text's perplexity (Cherry's pre-experienced confidence).
        normalize: L2-normalize each embedding.
        dtype: storage dtype of the embedding column: "float32" or "float16".
        precision: causal LM only: compute precision: "auto" (float32 on CPU, bfloat16 on CUDA), "float32" or "bfloat16".
        device: "auto", "cpu", "cuda" or "cuda:N".
        batch_tokens: causal LM only: padded tokens per forward pass, 0 = automatic; not in the cache key.
    """

    model: str = DEFAULT_EMBEDDER
    text: str = "instruction"
    pooling: str = "mean"
    max_length: int = 512
    perplexity: bool = False
    normalize: bool = False
    dtype: str = "float32"
    precision: str = "auto"
    device: str = "auto"
    batch_tokens: int = 0

    name = "embed"
    VERSION = 1
    shard_size = 2048

    def __post_init__(self) -> None:
        for name, allowed in (("text", TEXTS), ("pooling", POOLINGS), ("dtype", STORAGE_DTYPES),
                              ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise InputError(f"got {getattr(self, name)!r}, allowed: {', '.join(allowed)}", field=name)
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 1:
            raise InputError(f"got {self.max_length!r}, allowed: an integer >= 1", field="max_length")
        if not isinstance(self.batch_tokens, int) or self.batch_tokens < 0:
            raise InputError(f"got {self.batch_tokens!r}, allowed: an integer >= 0", field="batch_tokens")
        if self.sentence_transformer:
            if self.perplexity:
                raise InputError("perplexity needs a causal LM, not a sentence-transformers model", field="perplexity")
            if self.text == "chat":
                raise InputError("text 'chat' needs a causal LM with a chat template", field="text")

    @property
    def sentence_transformer(self) -> bool:
        return is_sentence_transformer(self.model)

    @property
    def columns(self) -> tuple[str, ...]:  # dataset columns read
        return {"instruction": ("instruction", "input"), "cherry_prompt": ("instruction", "input"),
                "pair": ("instruction", "input", "output"),
                "chat": ("instruction", "input", "output", "messages"),
                "vicuna": ("instruction", "input", "output", "messages")}[self.text]

    @property
    def column_dtypes(self) -> dict[str, str]:
        return {"embedding": self.dtype}

    def resolved_precision(self) -> str:
        if self.precision != "auto":
            return self.precision
        import torch

        cuda = self.device.startswith("cuda") or (self.device == "auto" and torch.cuda.is_available())
        return "bfloat16" if cuda else "float32"

    def fingerprint(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "normalize": self.normalize, "dtype": self.dtype}
        if self.sentence_transformer:  # encoded in the model's own float32
            return {**out, "sentence_transformer_sha256": sentence_transformer_sha256(self.model)}
        from selbench.assets import model_fingerprint

        return {**out, "pooling": self.pooling, "max_length": self.max_length, "perplexity": self.perplexity,
                "precision": self.resolved_precision(), **model_fingerprint(self.model)}

    @cached_property
    def _loaded(self) -> Any:
        if self.sentence_transformer:
            from selbench.assets import load_embedder

            return load_embedder(self.model, device=self.device)
        from selbench.assets import load_model

        return load_model(self.model, dtype=self.resolved_precision(), device=self.device)

    def score(self, rows: Mapping[str, list[Any]], meter: CostMeter) -> dict[str, np.ndarray]:
        if self.sentence_transformer:
            embedder = self._loaded
            texts = example_texts(rows, self.text)
            vectors = embedder.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False,
                                      normalize_embeddings=self.normalize)
            ids = embedder.tokenizer(texts, truncation=True, max_length=embedder.max_seq_length)["input_ids"]
            meter.add_tokens(sum(len(x) for x in ids))
            return {"embedding": np.asarray(vectors, dtype=np.float32)}
        from selbench.scoring.lm_forward import sequence_stats

        model, tokenizer = self._loaded
        texts = example_texts(rows, self.text, tokenizer)
        special = self.text != "chat"  # a chat template writes its own special tokens
        sequences = tokenizer(texts, truncation=True, max_length=self.max_length, add_special_tokens=special)["input_ids"]
        spans = [(1, len(s)) if len(s) > 1 else (0, 0) for s in sequences] if self.perplexity else None
        losses, pooled = sequence_stats(model, sequences, spans, pool=self.pooling,
                                        batch_tokens=self.batch_tokens or None)
        meter.add_tokens(sum(len(s) for s in sequences))
        if pooled is None:  # every text was empty
            pooled = np.full((len(sequences), int(model.config.hidden_size)), np.nan, dtype=np.float32)
        if self.normalize:
            pooled = pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(min=1e-12)
        columns = {"embedding": pooled.astype(np.float32, copy=False)}
        if self.perplexity:
            columns["ppl"] = np.exp(losses)
        return columns
