"""`cached_generate`: generation as a cached, resumable step.

The step key covers everything that can change the output text: the model's and tokenizer's content
hashes (chat template included), the benchmark name, the sha256 of the prompts, every `GenerationConfig`
field and the backend. Outputs are written shard by shard into the store's `partial/` folder while the
step runs (`selbench.store.ShardProgress`), so an interrupted generation resumes at the first unfinished
shard; the finished step holds `outputs.jsonl` (one `{"index", "output"}` row per prompt) and is never
recomputed. `GenerateStep` is the step object; `cached_generate` runs one and reads its outputs.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from selbench.errors import InputError
from selbench.generation.base import BACKENDS, GenerationConfig, Prompt
from selbench.hashing import canonical_json, sha256_json
from selbench.step import InputsNotReady, ShardedStep, Step
from selbench.store import ShardProgress, StepStore, write_text_atomic

log = logging.getLogger(__name__)

STEP = "generate"
VERSION = 1
OUTPUTS_FILE = "outputs.jsonl"


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


def model_fingerprint_when_ready(spec: str | os.PathLike) -> dict[str, str]:
    """`model_fingerprint(spec)`, or `InputsNotReady` (caused by the InputError) when `spec` is a local path
    that does not exist yet (a model another step trains)."""
    from selbench.assets.fingerprint import model_fingerprint

    text = os.fspath(spec)
    try:
        return model_fingerprint(text)
    except InputError as exc:
        path = Path(text).expanduser()
        if not text.startswith("hf://") and ("/" in text or os.sep in text) and not path.exists():
            raise InputsNotReady(f"model {text} does not exist yet") from exc
        raise


def key_or_input_error(step: Step) -> str:
    """`step.key()` for a command run by hand, where an input that is not there is bad input (the InputError
    behind the `InputsNotReady`), not a step still to run."""
    try:
        return step.key()
    except InputsNotReady as exc:
        if isinstance(exc.__cause__, InputError):
            raise exc.__cause__ from None
        raise InputError(str(exc)) from None


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
    step = GenerateStep.make(model_spec, benchmark, prompts, config, backend=backend, shard_size=shard_size,
                             progress=progress, backend_options=backend_options,
                             loaded=(model, tokenizer) if model is not None else None)
    step.check()
    store = store or StepStore()
    key = key_or_input_error(step)
    result = step.run(store)
    assert result.key == key, "the generation key computed here and the store's differ"
    return GenerationResult(
        outputs=read_outputs(result.path), key=result.key, path=result.path, cached=result.cached,
        stats=result.stats, cost=result.cost,
    )


def read_outputs(path: str | Path) -> list[str]:
    """The completions of a finished generate step folder, in the prompts' order."""
    rows = [json.loads(line) for line in (Path(path) / OUTPUTS_FILE).read_text(encoding="utf-8").splitlines()]
    return [row["output"] for row in rows]


@dataclass(frozen=True)
class GenerateStep(ShardedStep):
    """One completion per prompt from a model: the `generate` step (resumable shard by shard).

    Args:
        model: model spec (asset name, model or adapter folder, `hf://...`); fingerprinted for the key,
            loaded only when something is left to generate.
        benchmark: the benchmark the prompts belong to (part of the key).
        prompts: chat message lists or plain strings (a tuple; `make` takes a list).
        generation: the `GenerationConfig` (decoding settings).
        backend: "hf", "vllm", "openai" or a plugin backend name.
        shard_size: (not in the key) prompts per resumable shard; None = 2 batches, at least 16 prompts.
        progress: (not in the key) show progress bars.
        backend_options: (not in the key) the openai backend's `base_url`, `served_model`, `max_workers`, as
            (name, value) pairs.
        loaded: (not in the key, not pickled) an already-loaded (model, tokenizer) pair for `model`.

    Key: the model's and tokenizer's content hashes, the benchmark, the prompts' sha256 and count, every
    GenerationConfig field and the backend (unchanged from `cached_generate`'s). Outputs: `outputs.jsonl` in
    the store folder, one `{"index", "output"}` row per prompt (`read_outputs`); meta.json stats `n`,
    `prompt_tokens`, `new_tokens` (all shards), `resumed_shards`, `seconds`. Shards in progress live in
    `partial/generate/<key>/` (`ShardProgress`, JSON); an openai backend's per-request cache beside them.
    Sharded (`selbench.step.ShardedStep`): `run_shards` generates just the given shards.
    An hf backend uses a GPU when one is present (`load_model`'s device "auto") but does not need one.
    """

    model: str
    benchmark: str
    prompts: tuple[Prompt, ...] = field(hash=False)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    backend: str = "hf"
    shard_size: int | None = field(default=None, compare=False)
    progress: bool = field(default=False, compare=False)
    backend_options: tuple[tuple[str, Any], ...] = field(default=(), compare=False)
    loaded: tuple[Any, Any] | None = field(default=None, compare=False, repr=False)

    name: ClassVar[str] = STEP
    VERSION: ClassVar[int] = VERSION

    @classmethod
    def make(cls, model: str | os.PathLike, benchmark: str, prompts: list[Prompt], generation: GenerationConfig, *,
             backend: str = "hf", shard_size: int | None = None, progress: bool = False,
             backend_options: Mapping[str, Any] | None = None, loaded: tuple[Any, Any] | None = None) -> GenerateStep:
        return cls(os.fspath(model), benchmark, tuple(prompts), generation, backend, shard_size, progress,
                   tuple(sorted(dict(backend_options or {}).items())), loaded)

    def __getstate__(self) -> dict[str, Any]:  # never ship a loaded model
        return {**self.__dict__, "loaded": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def resources(self) -> Mapping[str, float]:  # type: ignore[override]
        """vLLM needs a GPU; an openai backend only talks to a server; hf runs anywhere."""
        return {"cpus": 1 if self.backend == "openai" else 2, "gpus": 1 if self.backend == "vllm" else 0,
                "memory_gb": 8}

    def check(self) -> None:
        """Bad prompts, an unknown backend or a missing server URL: InputError before any work."""
        if not self.prompts:
            raise InputError("no prompts to generate for", field="prompts")
        _validate_prompts(list(self.prompts))
        BACKENDS.get(self.backend)  # an unknown name fails here, before any work
        if self.backend == "openai" and not dict(self.backend_options).get("base_url"):
            raise InputError("the openai backend needs the server's URL (--backend-url)", field="backend-url")

    def key_parts_raw(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return generation_key_parts(model_fingerprint_when_ready(self.model), self.benchmark, list(self.prompts),
                                    self.generation, self.backend)

    def config(self) -> dict[str, Any]:
        return self.key_parts_raw()[0]

    def inputs(self) -> dict[str, Any]:
        return self.key_parts_raw()[1]

    def key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        config, inputs = self.key_parts_raw()  # fingerprint the model once
        return json.loads(canonical_json(config)), json.loads(canonical_json(inputs))

    def describe(self) -> str:
        return f"generate {self.benchmark} with {Path(self.model).name} ({len(self.prompts)} prompts)"

    def shard_progress(self, store: StepStore) -> ShardProgress:
        size = self.shard_size or max(16, 2 * self.generation.batch_size)
        return ShardProgress(store.partial_dir(STEP, self.key()), len(self.prompts), size, fmt="json")

    def shard_computer(self, store: StepStore, shards: ShardProgress) -> Callable[[int, range], dict[str, Any]]:
        """Generates one shard's prompts; the backend (the model) is made on the first call."""
        prompts, config, backend = self.prompts, self.generation, self.backend
        runner = None

        def generate_shard(number: int, items: range) -> dict[str, Any]:
            nonlocal runner
            started = time.perf_counter()
            if runner is None:
                options = dict(self.backend_options)
                if backend == "openai":  # per-request answers are cached with this step (this model) only
                    options["cache_dir"] = shards.directory / "requests"
                model, tokenizer = self.loaded or (None, None)
                runner = _make_backend(backend, self.model, model, tokenizer, self.progress, options)
            before = dict(runner.stats)
            texts = runner.generate([prompts[i] for i in items], config)
            assert len(texts) == len(items), f"backend returned {len(texts)} outputs for {len(items)} prompts"
            return {"outputs": texts, "seconds": time.perf_counter() - started,
                    **{name: runner.stats.get(name, 0) - before.get(name, 0) for name in ("prompt_tokens", "new_tokens")}}

        return generate_shard

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        from selbench.cost import CostMeter

        prompts = self.prompts
        shards = self.shard_progress(store)
        generate_shard = self.shard_computer(store, shards)
        started = time.time()
        done_before = [i for i in range(shards.n_shards) if shards.done(i)]
        with CostMeter(f"{STEP}:{self.benchmark}") as meter:
            shards.run(generate_shard, desc=f"generate {self.benchmark}", progress=self.progress)
            outputs: list[str] = []
            totals = {"prompt_tokens": 0, "new_tokens": 0, "resumed_shards": len(done_before)}
            for number in range(shards.n_shards):
                payload = shards.load(number)
                outputs.extend(payload["outputs"])
                for name in ("prompt_tokens", "new_tokens"):
                    totals[name] += int(payload.get(name, 0))
                if number in done_before:  # finished by an earlier (killed) run or another worker: charged once, here
                    meter.add_seconds(float(payload.get("seconds", 0.0)))
            meter.add_tokens(totals["prompt_tokens"] + totals["new_tokens"])
        assert len(outputs) == len(prompts), f"{len(outputs)} outputs for {len(prompts)} prompts"
        write_text_atomic(tmp / OUTPUTS_FILE, "".join(
            json.dumps({"index": i, "output": o}, ensure_ascii=False) + "\n" for i, o in enumerate(outputs)))
        return {"n": len(prompts), **totals, "seconds": time.time() - started, "cost": meter.record.to_dict()}
