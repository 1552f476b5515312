"""Per-example embedding vectors (`embed`): a 2-D column `embedding` `[n, d]` (float32).

Two kinds of model:

* a sentence-transformers model: the packaged `all-minilm-l6-v2` (the default, offline) or a local
  sentence-transformers folder (one with `modules.json`); it pools and normalizes as its own modules say;
* a causal LM (asset, folder or `hf://`): its last-layer hidden states, pooled over the example's tokens
  (`pooling`): "last" token (DEITA's embedder, hkust-nlp/deita `selection/embedder/clm_embedder.py`),
  "weighted_mean" (position-weighted mean, SGPT's weighting as RDS+ uses it; see
  `selbench.scoring.causal_lm.pooled_hidden_states`) or plain "mean".

What text an example becomes (`format`):

* "plain": the turns' contents joined by blank lines;
* "vicuna": DEITA's embedding input, FastChat's vicuna_v1.1 template as DEITA's `preprocess` renders it:
  the system line, then "USER: q ASSISTANT: a</s>" per pair (a space after each user turn, a literal "</s>"
  after each assistant turn);
* "tulu": RDS+'s input (hamishivi/automated-instruction-selection `encode_with_messages_format`): per turn
  "<|user|>\\n" + content + "\\n" or "<|assistant|>\\n" + content + EOS + "\\n", contents and the whole text
  stripped.

Causal-LM text is tokenized as both references do (`tokenizer(text, truncation=True, max_length=...)`: special
tokens added, cut at the end). System turns are dropped for "plain" and "vicuna" (DEITA's data has none)
and kept for "tulu" (its format has a system role).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selbench.cost import CostMeter
from selbench.errors import InputError
from selbench.scoring.causal_lm import POOLINGS

DEFAULT_EMBEDDER = "all-minilm-l6-v2"
FORMATS = ("plain", "vicuna", "tulu")
VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                 "helpful, detailed, and polite answers to the user's questions.")


def conversation_text(messages: Sequence[Mapping[str, str]], fmt: str, eos: str = "</s>") -> str:
    """The text an example is embedded as (see the module docstring).

    >>> msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    >>> conversation_text(msgs, "vicuna")[-40:]
    'questions. USER: Hi ASSISTANT: Hello</s>'
    >>> conversation_text(msgs, "tulu", eos="<eos>")
    '<|user|>\\nHi\\n<|assistant|>\\nHello<eos>'
    >>> conversation_text(msgs, "plain")
    'Hi\\n\\nHello'
    """
    if fmt == "tulu":
        text = ""
        for m in messages:
            role, content = m["role"], m["content"].strip()
            if role == "assistant":
                text += f"<|assistant|>\n{content}{eos}\n"
            elif role in ("user", "system"):
                text += f"<|{role}|>\n{content}\n"
            else:
                raise InputError(f"role {role!r} has no tulu tag", field="messages")
        return text.strip()
    turns = [m["content"] for m in messages if m.get("role") != "system"]
    if fmt == "plain":
        return "\n\n".join(turns)
    if fmt == "vicuna":
        text = VICUNA_SYSTEM + " "
        for i, content in enumerate(turns):
            if i % 2 == 0:
                text += f"USER: {content} " if content else "USER:"
            else:
                text += f"ASSISTANT: {content}</s>" if content else "ASSISTANT:"
        return text
    raise ValueError(f"format {fmt!r} is not one of {FORMATS}")


def is_sentence_transformer(spec: str) -> bool:
    """True for an embedder asset or a local sentence-transformers folder."""
    from selbench.assets.catalog import assets, get_asset

    if spec in assets:
        return get_asset(spec).kind == "embedder"
    return (Path(spec).expanduser() / "modules.json").is_file()


def _folder_sha256(folder: Path) -> str:
    from selbench.hashing import sha256_file, sha256_json

    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return sha256_json([[p.relative_to(folder).as_posix(), sha256_file(p)] for p in files])


@dataclass(frozen=True)
class EmbedScorer:
    """Embedding vectors, for diversity filters (DEITA), coverage (k-center) and similarity (RDS+).

    Args:
        model: all-minilm-l6-v2 (packaged sentence-transformers model), a sentence-transformers folder, or a causal LM (asset, folder or hf://).
        pooling: causal LMs only: last (DEITA), weighted_mean (RDS+) or mean.
        format: text of an example: plain (turns joined by blank lines), vicuna (DEITA's template) or tulu (RDS+'s).
        max_length: tokens per example; longer texts are cut at the end (sentence-transformers: at most the model's own limit).
        batch_size: examples per forward pass.
        dtype: causal-LM weights dtype: auto, float32, bfloat16 or float16.
        device: auto, cpu, cuda, cuda:N or mps.
    """

    model: str = DEFAULT_EMBEDDER
    pooling: str = "last"
    format: str = "plain"
    max_length: int = 512
    batch_size: int = 16
    dtype: str = "auto"
    device: str = "auto"

    name: ClassVar[str] = "embed"
    VERSION: ClassVar[int] = 1
    columns: ClassVar[tuple[str, ...]] = ("messages",)
    shard_size: ClassVar[int] = 1024

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise InputError(f"{self.pooling!r} is not one of {', '.join(POOLINGS)}", field="pooling")
        if self.format not in FORMATS:
            raise InputError(f"{self.format!r} is not one of {', '.join(FORMATS)}", field="format")
        for name in ("max_length", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{value!r} is not an integer >= 1", field=name)
        from selbench.assets.models import LoadOptions

        LoadOptions(dtype=self.dtype, device=self.device)

    @property
    def sentence_transformer(self) -> bool:
        return is_sentence_transformer(self.model)

    def fingerprint(self) -> dict[str, Any]:
        base = {"format": self.format, "max_length": self.max_length}
        if self.sentence_transformer:
            from selbench.assets.catalog import asset_path, assets

            folder = asset_path(self.model) if self.model in assets else Path(self.model).expanduser()
            return {**base, "kind": "sentence-transformers", "model_sha256": _folder_sha256(folder)}
        from selbench.assets.fingerprint import model_fingerprint

        return {**base, "kind": "causal-lm", "model": model_fingerprint(self.model), "pooling": self.pooling,
                "dtype": self.dtype}

    @cached_property
    def _loaded(self) -> tuple[Any, Any]:
        if self.sentence_transformer:
            from selbench.assets import load_embedder

            model = load_embedder(self.model, device=self.device)
            model.max_seq_length = min(self.max_length, model.max_seq_length or self.max_length)
            return model, model.tokenizer
        from selbench.assets import load_model

        return load_model(self.model, dtype=self.dtype, device=self.device, padding_side="left")

    def score(self, rows: Mapping[str, list[Any]], meter: CostMeter) -> dict[str, np.ndarray]:
        model, tokenizer = self._loaded
        eos = tokenizer.eos_token or "</s>"
        texts = [conversation_text(messages or [], self.format, eos) for messages in rows["messages"]]
        return {"embedding": embed_texts(model, tokenizer, texts, self, meter)}


def embed_texts(model: Any, tokenizer: Any, texts: list[str], options: Any, meter: CostMeter | None = None) -> np.ndarray:
    """`[len(texts), d]` float32 embeddings with the model and the `pooling`, `max_length` and `batch_size`
    of `options` (an `EmbedScorer` or anything with those attributes)."""
    from tqdm.auto import tqdm

    from selbench.scoring.causal_lm import batches_by_length, pad_id, pooled_hidden_states

    if hasattr(model, "encode") and not hasattr(model, "generate"):  # sentence-transformers
        lengths = [len(x) for x in tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]]
        if meter is not None:
            meter.add_tokens(sum(lengths))
        out = model.encode(texts, batch_size=options.batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)
    ids = tokenizer(texts, truncation=True, max_length=options.max_length)["input_ids"]
    if meter is not None:
        meter.add_tokens(sum(len(x) for x in ids))
    hidden = int(model.config.get_text_config().hidden_size)
    out = np.zeros((len(texts), hidden), dtype=np.float32)
    pad = pad_id(tokenizer)
    for batch in tqdm(list(batches_by_length([len(x) for x in ids], options.batch_size)), desc="embed",
                      unit="batch", disable=None, leave=False):
        out[batch] = pooled_hidden_states(model, [ids[i] for i in batch], options.pooling, pad)
    return out
