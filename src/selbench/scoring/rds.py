"""RDS+ similarity to a target set (`rds`): a `[n, m]` column `rds_sim` of cosine similarities.

Ivison et al. (2025), "Large-Scale Data Selection for Instruction Tuning" (https://arxiv.org/abs/2503.01807),
reference code hamishivi/automated-instruction-selection `minimal_multitask/compute_influence_cosinesim.py`
with `--pooling weighted_mean` (the paper's RDS+): every pool example and every target example is written
in the Tulu chat format (`encode_with_messages_format`: "<|user|>\\n...\\n<|assistant|>\\n...EOS\\n", stripped,
tokenized with the tokenizer's special tokens and cut at `max_length`, 2,048 for Tulu pools), run through the
*base* model, and its last-layer hidden states are averaged with position weights: the token at position i
(1-based) of an L-token text weighs i / (1 + 2 + ... + L) (SGPT's weighting, https://arxiv.org/abs/2202.08904).
Embeddings are L2-normalized and compared by dot product. The `rds` strategy then selects round-robin over
the target examples (`selbench.selection.rds`).

The target file (`target`): JSON (a list) or JSONL; each record is an instruction string, an object with
`messages` ([{role, content}]), or an object with `instruction` (+ optional `input`, `output`). Or the name of
a packaged target set (`TARGET_SETS`): `instruction-following` holds 12 instructions written for selbench in
the style of the demo's benchmarks (format constraints as IFEval checks them, open requests as AlpacaEval
asks them), none taken from a benchmark, so selecting toward them leaks no test item. The paper's targets are
the evaluation tasks' own dev examples; the demo has none, hence this stand-in.

Deviation: the reference embeds the pool once and queries that index with each target set; here the
similarities are the score step's output, keyed by the target set's content, so a new target set embeds the
pool again (the cache still makes every budget and every re-run with the same targets free).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selbench.cost import CostMeter
from selbench.errors import InputError

TARGET_SETS = {"instruction-following": Path(__file__).with_name("targets") / "instruction-following.jsonl"}


def target_file(target: str | Path) -> Path:
    """The file a `target` names: a path, else a packaged target set's name (`TARGET_SETS`).

    >>> target_file("instruction-following").name
    'instruction-following.jsonl'
    """
    path = Path(target)
    if not path.exists() and str(target) in TARGET_SETS:
        return TARGET_SETS[str(target)]
    return path


def read_targets(path: str | Path) -> list[list[dict[str, str]]]:
    """The target examples of a JSON or JSONL file or a packaged set, as message lists (InputError naming
    record and field)."""
    path = target_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the target set: {exc.strerror or exc} (or name a packaged set: "
                         f"{', '.join(TARGET_SETS)})", path=path, field="target") from exc
    try:
        loaded = json.loads(text)
        records = loaded if isinstance(loaded, list) else [loaded]
        lines = None
    except json.JSONDecodeError:
        records, lines = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"not JSON: {exc.msg}", path=path, line=number) from None
                lines.append(number)
    if not records:
        raise InputError("the target set is empty", path=path, field="target")
    return [_messages(record, path, lines[i] if lines else i + 1) for i, record in enumerate(records)]


def _messages(record: Any, path: Path, line: int) -> list[dict[str, str]]:
    if isinstance(record, str) and record.strip():
        return [{"role": "user", "content": record}]
    if isinstance(record, dict) and "messages" in record:
        msgs = record["messages"]
        if (not isinstance(msgs, list) or not msgs or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str)
                and m.get("role") in ("system", "user", "assistant") for m in msgs)):
            raise InputError("must be a non-empty list of {role: system|user|assistant, content: string}",
                             path=path, line=line, field="messages")
        return [{"role": m["role"], "content": m["content"]} for m in msgs]
    if isinstance(record, dict) and isinstance(record.get("instruction"), str) and record["instruction"].strip():
        for name in ("input", "output"):
            if not isinstance(record.get(name, ""), str):
                raise InputError("must be a string", path=path, line=line, field=name)
        user = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
        msgs = [{"role": "user", "content": user}]
        if record.get("output"):
            msgs.append({"role": "assistant", "content": record["output"]})
        return msgs
    raise InputError("a target is an instruction string or an object with 'messages' or 'instruction'",
                     path=path, line=line, field="instruction")


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


@dataclass(frozen=True)
class RdsScorer:
    """Cosine similarity of each example to each target example, RDS+ embeddings (see the module docstring).

    Args:
        target: JSON or JSONL file of target instructions or examples, or a packaged set's name (instruction-following).
        model: the base model whose hidden states embed (asset, folder or hf://), e.g. hf://meta-llama/Llama-2-7b-hf.
        max_length: tokens per example (RDS+: 2048 for Tulu pools).
        batch_size: examples per forward pass.
        dtype: weights dtype: auto, float32, bfloat16 or float16.
        device: auto, cpu, cuda, cuda:N or mps.
    """

    target: str
    model: str
    max_length: int = 2048
    batch_size: int = 8
    dtype: str = "auto"
    device: str = "auto"

    name: ClassVar[str] = "rds"
    VERSION: ClassVar[int] = 1
    columns: ClassVar[tuple[str, ...]] = ("messages",)
    shard_size: ClassVar[int] = 512
    pooling: ClassVar[str] = "weighted_mean"

    def __post_init__(self) -> None:
        for name in ("max_length", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{value!r} is not an integer >= 1", field=name)
        from selbench.assets.models import LoadOptions

        LoadOptions(dtype=self.dtype, device=self.device)
        self.targets  # noqa: B018 - a bad target file fails now, naming record and field

    @cached_property
    def targets(self) -> list[list[dict[str, str]]]:
        return read_targets(self.target)

    def fingerprint(self) -> dict[str, Any]:
        from selbench.assets.fingerprint import model_fingerprint
        from selbench.hashing import sha256_json

        return {"model": model_fingerprint(self.model), "targets_sha256": sha256_json(self.targets),
                "n_targets": len(self.targets), "max_length": self.max_length, "dtype": self.dtype}

    def _embed(self, model: Any, tokenizer: Any, conversations: list[Any]) -> tuple[np.ndarray, int]:
        from selbench.scoring.causal_lm import pooled_embeddings
        from selbench.scoring.chat_text import conversation_text

        texts = [conversation_text(m or [], "tulu", tokenizer.eos_token or "</s>") for m in conversations]
        vectors, tokens = pooled_embeddings(model, tokenizer, texts, self.pooling, self.max_length, self.batch_size)
        return _unit(vectors), tokens

    @cached_property
    def _loaded(self) -> tuple[Any, Any, np.ndarray]:
        from selbench.assets import load_model

        model, tokenizer = load_model(self.model, dtype=self.dtype, device=self.device, padding_side="left")
        return model, tokenizer, self._embed(model, tokenizer, self.targets)[0]

    def score(self, rows: Mapping[str, list[Any]], meter: CostMeter) -> dict[str, np.ndarray]:
        model, tokenizer, targets = self._loaded
        pool, tokens = self._embed(model, tokenizer, rows["messages"])
        meter.add_tokens(tokens)
        return {"rds_sim": (pool @ targets.T).astype(np.float32)}
