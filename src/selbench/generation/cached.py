"""`cached_generate`: generation as a cached, resumable step.

The step key covers everything that can change the output text: the model's and tokenizer's content
hashes (chat template included), the benchmark name, the sha256 of the prompts, every `GenerationConfig`
field and the backend. Outputs are written shard by shard into the store's `partial/` folder while the
step runs, so an interrupted generation resumes at the first unfinished shard; the finished step holds
`outputs.jsonl` (one `{"index", "output"}` row per prompt) and is never recomputed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selbench.errors import InputError
from selbench.generation.base import BACKENDS, GenerationConfig, Prompt
from selbench.hashing import canonical_json, sha256_json
from selbench.store import StepStore, step_key, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

STEP = "generate"
VERSION = 1


@dataclass
class GenerationResult:
    """Outputs of `cached_generate`.

    Args:
        outputs: one completion per prompt, in the prompts' order.
        key: the step key.
        path: the step's folder in the store.
        cached: True when nothing had to be generated.
        stats: the step's stats (`n`, `new_tokens`, `prompt_tokens`, `seconds`).
        cost: the step's cost record.
    """

    outputs: list[str]
    key: str
    path: Path
    cached: bool
    stats: dict[str, Any]
    cost: dict[str, Any]


def generation_key_parts(
    fingerprint: dict[str, str], benchmark: str, prompts: list[Prompt], config: GenerationConfig, backend: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, inputs) of the generation step key."""
    step_config = {"generation": config.to_dict(), "backend": backend}
    inputs = {
        "model_sha256": fingerprint["model_sha256"],
        "tokenizer_sha256": fingerprint["tokenizer_sha256"],
        "benchmark": benchmark,
        "prompts_sha256": sha256_json(prompts),
        "n_prompts": len(prompts),
    }
    return step_config, inputs


def _validate_prompts(prompts: list[Prompt]) -> None:
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            continue
        if not isinstance(prompt, list) or not prompt:
            raise InputError("expected a string or a non-empty list of messages", line=i + 1, field="prompt")
        for message in prompt:
            if not isinstance(message, dict) or not isinstance(message.get("role"), str) \
                    or not isinstance(message.get("content"), str):
                raise InputError("every message needs string 'role' and 'content'", line=i + 1, field="messages")


def _make_backend(
    backend: str,
    model_spec: str | os.PathLike,
    model: Any,
    tokenizer: Any,
    progress: bool,
    options: Mapping[str, Any] | None = None,
) -> Any:
    cls = BACKENDS.get(backend)
    if backend == "openai":
        options = dict(options or {})
        if not options.get("base_url"):
            raise InputError("the openai backend needs the server's URL (--backend-url)", field="backend-url")
        return cls(options.pop("base_url"), **options)
    if backend == "vllm":
        from selbench.assets.spec import parse_spec

        resolved = parse_spec(model_spec)
        if resolved.kind == "asset":
            from selbench.assets.convert import ensure_converted

            return cls(str(ensure_converted(resolved.name)))
        if resolved.kind == "hub":
            return cls(resolved.name)
        if resolved.kind == "dir":
            return cls(str(resolved.path))
        raise InputError("the vllm backend needs a merged model folder, not a LoRA adapter", field="model")
    if model is None:
        from selbench.assets import load_model

        model, tokenizer = load_model(model_spec, padding_side="left")
    return cls(model, tokenizer, progress=progress)


def cached_generate(
    model_spec: str | os.PathLike,
    benchmark: str,
    prompts: list[Prompt],
    config: GenerationConfig,
    store: StepStore | None = None,
    *,
    backend: str = "hf",
    model: Any = None,
    tokenizer: Any = None,
    shard_size: int | None = None,
    progress: bool = False,
    backend_options: Mapping[str, Any] | None = None,
) -> GenerationResult:
    """Generate one completion per prompt, or return the stored ones.

    Args:
        model_spec: the model (asset name, folder, adapter folder, `hf://...`); it is fingerprinted for the
            key and loaded only when something is left to generate.
        benchmark: the benchmark the prompts belong to (part of the key).
        prompts: chat message lists or plain strings.
        config: decoding settings.
        store: the step store (default: `$SELBENCH_CACHE`).
        backend: "hf", "vllm" or "openai" (an OpenAI-compatible server, e.g. `vllm serve`), or a plugin.
        model, tokenizer: an already-loaded model for `model_spec` (saves the load; must be that model).
        shard_size: prompts per resumable shard (default: 2 batches, at least 16 prompts); prompts are
            sorted by length within a shard.
        progress: show a progress bar.
        backend_options: the openai backend's `base_url`, `served_model`, `max_workers` (not part of the
            key: `model_spec` must be the model the server serves).

    Returns:
        A `GenerationResult` with the outputs in the prompts' order.
    """
    from selbench.cost import CostMeter

    if not prompts:
        raise InputError("no prompts to generate for", field="prompts")
    _validate_prompts(prompts)
    BACKENDS.get(backend)  # an unknown name fails here, before any work
    if backend == "openai" and not (backend_options or {}).get("base_url"):
        raise InputError("the openai backend needs the server's URL (--backend-url)", field="backend-url")
    from selbench.assets.fingerprint import model_fingerprint

    store = store or StepStore()
    fingerprint = model_fingerprint(model_spec)
    step_config, inputs = generation_key_parts(fingerprint, benchmark, prompts, config, backend)
    key = step_key(STEP, VERSION, json.loads(canonical_json(step_config)), json.loads(canonical_json(inputs)))
    shard_size = shard_size or max(16, 2 * config.batch_size)
    shards = [list(range(i, min(i + shard_size, len(prompts)))) for i in range(0, len(prompts), shard_size)]

    def compute(tmp: Path) -> dict[str, Any]:
        partial = store.partial_dir(STEP, key)
        outputs: list[str | None] = [None] * len(prompts)
        runner = None
        totals = {"prompt_tokens": 0, "new_tokens": 0, "resumed_shards": 0}
        started = time.time()
        with CostMeter(f"{STEP}:{benchmark}") as meter:
            for number, shard in enumerate(shards):
                shard_file = partial / f"shard-{number:05d}.json"
                if shard_file.is_file():
                    saved = json.loads(shard_file.read_text(encoding="utf-8"))
                    if saved.get("indices") == shard:
                        for i, text in zip(shard, saved["outputs"], strict=True):
                            outputs[i] = text
                        totals["resumed_shards"] += 1
                        continue
                if runner is None:
                    options = backend_options
                    if backend == "openai":  # per-request answers are cached with this step (this model) only
                        options = {**(backend_options or {}), "cache_dir": partial / "requests"}
                    runner = _make_backend(backend, model_spec, model, tokenizer, progress, options)
                before = dict(runner.stats)
                texts = runner.generate([prompts[i] for i in shard], config)
                assert len(texts) == len(shard), f"backend returned {len(texts)} outputs for {len(shard)} prompts"
                for i, text in zip(shard, texts, strict=True):
                    outputs[i] = text
                write_json_atomic(shard_file, {"indices": shard, "outputs": texts}, indent=None)
                for name in ("prompt_tokens", "new_tokens"):
                    totals[name] += runner.stats.get(name, 0) - before.get(name, 0)
                log.info("generate %s: shard %d/%d done", key[:12], number + 1, len(shards))
            meter.add_tokens(totals["prompt_tokens"] + totals["new_tokens"])
        assert all(o is not None for o in outputs), "a prompt was left without an output"
        write_text_atomic(tmp / "outputs.jsonl", "".join(
            json.dumps({"index": i, "output": o}, ensure_ascii=False) + "\n" for i, o in enumerate(outputs)))
        return {"n": len(prompts), **totals, "seconds": time.time() - started, "cost": meter.record.to_dict()}

    result = store.run(STEP, VERSION, step_config, inputs, compute)
    assert result.key == key, "the generation key computed here and the store's differ"
    rows = [json.loads(line) for line in (result.path / "outputs.jsonl").read_text(encoding="utf-8").splitlines()]
    return GenerationResult(
        outputs=[row["output"] for row in rows], key=result.key, path=result.path, cached=result.cached,
        stats=result.stats, cost=result.cost,
    )
