"""The `prepare` step: a source file (or `hf://` dataset) -> `OUT/data.parquet` + `OUT/manifest.json`.

Runs in the step store keyed by (source, loader config, tokenizer used for statistics, content hash of the
input), so the same input is prepared once. Bad records stop the step with an `InputError` naming
FILE:LINE and field, before anything is written under OUT; with `skip_invalid` they are dropped and counted
by reason. Exact duplicates (same id) are always dropped and counted (`dropped.duplicate`; the first one is
recorded as `first_duplicate`). The dataset hash (`sha256`) is `schema.rows_sha256` over the rows in order.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selbench.data.base import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_PER_TASK,
    DUPLICATE,
    Loader,
    LoaderConfig,
    get_loader,
)
from selbench.data.schema import Example
from selbench.errors import InputError
from selbench.step import Step
from selbench.store import StepResult, StepStore

log = logging.getLogger(__name__)

STEP = "prepare"
VERSION = 3  # 2: ShareGPT conversations opening with a gpt turn start at the next turn (FastChat)
# 3: exact duplicates are dropped and counted for every source (they stopped non-ShareGPT sources before);
#    token statistics of pools over lengths.SAMPLE_SIZE describe a uniform sample of that size
DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"
STATS_FILE = "stats.json"
# `--input NAME` that is not an existing path: packaged pools, by source.
PACKAGED_INPUTS = {"sharegpt": "sharegpt"}
MAPPED_SOURCES = ("jsonl", "parquet", "hf")


def resolve_input(source: str, input: str | Path) -> tuple[str | Path, str, Any]:
    """(what the loader reads, how the manifest names it, the input's content identity for the step key)."""
    text = str(input)
    if text.startswith("hf://"):
        from selbench.data.hf import hf_identity

        return text, text, {"hf": hf_identity(text)}
    path = Path(text).expanduser()
    if not path.exists() and PACKAGED_INPUTS.get(source) == text:
        from selbench.data.sharegpt import packaged_path

        path = packaged_path()
    if not path.exists():
        raise InputError("no such file", path=text, field="--input")
    if path.is_dir():
        raise InputError("expected a file (JSON, JSONL or Parquet), got a folder", path=text, field="--input")
    if not path.is_file():
        raise InputError("expected a file (JSON, JSONL or Parquet), got a device, pipe or socket", path=text,
                         field="--input")
    from selbench.hashing import sha256_file

    return path, str(path), {"sha256": sha256_file(path)}


def prepare(
    source: str,
    input: str | Path,
    out_dir: str | Path,
    *,
    skip_invalid: bool = False,
    max_per_task: int = DEFAULT_MAX_PER_TASK,
    field_map: Mapping[str, str] | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    store: StepStore | None = None,
) -> dict[str, Any]:
    """Prepare `input` as source `source` into `out_dir` and return its manifest (+ `cached`, `seconds`, `out`).

    Args:
        source: registered loader name (`selbench.data.base.LOADERS`).
        input: a file path, `hf://org/name[:split]`, or a packaged pool name (`sharegpt`).
        out_dir: folder that receives `data.parquet` and `manifest.json`.
        skip_invalid: drop invalid records (counted by reason) instead of stopping at the first.
        max_per_task: FLAN's per-task cap.
        field_map: canonical field -> source field (jsonl, parquet, hf only).
        max_chars: longer examples are invalid.
        store: a `StepStore` (default: the one under `$SELBENCH_CACHE`).

    Raises:
        InputError: bad input (FILE:LINE and field named) or bad options; nothing is written under OUT.
        KeyError: unknown source (with near-name suggestions).
    """
    started = time.perf_counter()
    step = PrepareStep.make(source, input, skip_invalid=skip_invalid, max_per_task=max_per_task,
                            field_map=field_map, max_chars=max_chars)
    step.loader_config()  # unknown source, bad --field: before anything else
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise InputError("exists and is not a folder", path=out_dir, field="--out")
    result = step.run(store)
    manifest = step.publish(result, out_dir)
    return {**manifest, "cached": result.cached, "seconds": round(time.perf_counter() - started, 3), "out": str(out_dir)}


@dataclass(frozen=True)
class PrepareStep(Step):
    """Read a source file (or `hf://` dataset) into the canonical schema: the `prepare` step.

    Args:
        source: registered loader name (`selbench.data.base.LOADERS`: alpaca, dolly, sharegpt, jsonl, ...).
        input: a file path, `hf://org/name[@revision][:split]`, or a packaged pool name (`sharegpt`).
        skip_invalid: drop invalid records (counted by reason) instead of stopping at the first.
        max_per_task: FLAN's per-task cap.
        field_map: (canonical field, source field) pairs (jsonl, parquet, hf only); `make` takes a mapping.
        max_chars: longer examples are invalid.
        out: (not in the key) a folder to publish `data.parquet` + `manifest.json` into after `run()`.

    Key: the loader options, the statistics tokenizer's id and the input's content identity (a file's sha256,
    hashed from disk without parsing it; a hub dataset's revision fingerprint). Outputs: the store folder holds
    `data.parquet`, and meta.json's `stats` are the manifest's body (`n`, `sha256`, drops, token lengths). A
    prepared dataset *folder* (what scoring, selection and training read) is the published `out` (or
    `prepare()`'s `out_dir`): `data.parquet` + `manifest.json`.
    """

    source: str
    input: str
    skip_invalid: bool = False
    max_per_task: int = DEFAULT_MAX_PER_TASK
    field_map: tuple[tuple[str, str], ...] = ()
    max_chars: int = DEFAULT_MAX_CHARS
    out: str | None = field(default=None, compare=False)

    name: ClassVar[str] = STEP
    VERSION: ClassVar[int] = VERSION
    resources: ClassVar[Mapping[str, float]] = {"cpus": 1, "gpus": 0, "memory_gb": 4}

    @classmethod
    def make(cls, source: str, input: str | Path, *, skip_invalid: bool = False,
             max_per_task: int = DEFAULT_MAX_PER_TASK, field_map: Mapping[str, str] | None = None,
             max_chars: int = DEFAULT_MAX_CHARS, out: str | Path | None = None) -> PrepareStep:
        return cls(source, str(input), skip_invalid, max_per_task, tuple(sorted(dict(field_map or {}).items())),
                   max_chars, None if out is None else str(out))

    def __getstate__(self) -> dict[str, Any]:  # the resolved input is recomputed where the step runs
        return {k: v for k, v in self.__dict__.items() if k != "_resolved"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def loader_config(self) -> LoaderConfig:
        """The loader options, validated (KeyError: unknown source; InputError: bad field map)."""
        get_loader(self.source)
        if self.field_map:
            if self.source not in MAPPED_SOURCES:
                raise InputError(f"--field only applies to sources {', '.join(MAPPED_SOURCES)}, not {self.source!r}",
                                 field="--field")
            from selbench.data.jsonl import validate_field_map

            validate_field_map(dict(self.field_map))
        return LoaderConfig(max_per_task=self.max_per_task, field_map=self.field_map, max_chars=self.max_chars)

    def resolved(self) -> tuple[str | Path, str, Any]:
        """`resolve_input` of this step's input, hashed once per step object."""
        cached = self.__dict__.get("_resolved")
        if cached is None:
            cached = resolve_input(self.source, self.input)
            object.__setattr__(self, "_resolved", cached)
        return cached

    def config(self) -> dict[str, Any]:
        from selbench.data.lengths import tokenizer_id

        return {"source": self.source, "loader": self.loader_config().to_dict(), "skip_invalid": self.skip_invalid,
                "tokenizer": tokenizer_id()}

    def inputs(self) -> dict[str, Any]:
        return {"input": self.resolved()[2]}

    def describe(self) -> str:
        return f"prepare {self.source} {Path(self.input).name if '://' not in self.input else self.input}"

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        read_from, input_name, _ = self.resolved()
        return _compute(tmp, get_loader(self.source), read_from, input_name, self.loader_config(), self.skip_invalid)

    def run(self, store: StepStore | None = None, *, force: bool = False) -> StepResult:
        """The stored result (computed first if absent), published to `out` when set."""
        result = super().run(store, force=force)
        if self.out is not None:
            self.publish(result, self.out)
        return result

    def publish(self, result: StepResult, out_dir: str | Path) -> dict[str, Any]:
        """Copy the store entry's Parquet to `out_dir` with a `manifest.json` (written last); returns the manifest."""
        manifest = {
            **result.stats,
            "source": self.source,
            "input": self.resolved()[1],
            "input_sha256": _input_hash(result.meta["inputs"]["input"]),
            "config": result.meta["config"],
            "step_key": result.key,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "selbench_version": _selbench_version(),
            "cost": result.cost,
        }
        _place(result.path, Path(out_dir), manifest)
        return manifest

BATCH = 8192  # examples converted, hashed, token-counted and written together


def _compute(tmp: Path, loader: Loader, read_from: str | Path, input_name: str, config: LoaderConfig, skip_invalid: bool) -> dict[str, Any]:
    """Stream the loader's records into `tmp/data.parquet` a batch at a time.

    Memory is bounded by a batch and a Parquet row group, plus 16 bytes per example (its id, to find
    duplicates) and the token sample (`lengths.TokenSample`, at most `lengths.SAMPLE_SIZE` examples).
    """
    from tqdm.auto import tqdm

    from selbench.cost import CostMeter
    from selbench.data.lengths import (
        TokenSample,
        id_keys,
        stats_tokenizer,
        summarize,
        token_lengths,
        tokenizer_id,
    )
    from selbench.data.schema import ExampleWriter

    dropped: Counter[str] = Counter()
    truncated = first_duplicate = None
    tasks: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    n_multi_turn = 0
    sample = TokenSample()
    tokenizer = stats_tokenizer()
    batch: list[Example] = []
    # Token counting (Rust, without the GIL) runs on a worker thread while the next batch is read and
    # converted; one batch at most is in flight, and batches are added to the sample in order.
    counting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare-tokens")
    in_flight: list[Future] = []

    def count(keys: np.ndarray, prompts: list[str], outputs: list[str]) -> None:
        sample.add(keys, token_lengths(prompts, tokenizer, progress=False), token_lengths(outputs, tokenizer, progress=False))

    def wait_counting() -> None:
        while in_flight:
            in_flight.pop().result()

    def flush() -> None:
        nonlocal n_multi_turn
        if not batch:
            return
        writer.write(batch)
        tasks.update(e.task for e in batch if e.task)
        sources.update(e.source for e in batch)
        n_multi_turn += sum(len(e.messages) > 2 for e in batch)
        keys = id_keys([e.id for e in batch])
        wait_counting()
        chosen = np.flatnonzero(sample.wanted(keys))
        in_flight.append(counting.submit(count, keys[chosen], [_prompt(batch[i]) for i in chosen], [batch[i].output for i in chosen]))
        batch.clear()

    with CostMeter(STEP) as meter:
        writer = ExampleWriter(tmp / DATA_FILE)
        try:
            records = tqdm(loader(read_from, config), desc=f"prepare {getattr(loader, 'name', 'data')}", unit=" rec", disable=None, mininterval=1.0)
            for line, item in records:
                if isinstance(item, Example):
                    batch.append(item)
                    if len(batch) >= BATCH:
                        flush()
                    continue
                if item.invalid and not skip_invalid:
                    raise InputError(f"{item.message} [{item.reason}; --skip-invalid drops such records]", path=input_name, line=line, field=item.field)
                dropped[item.reason] += 1
                if item.reason == "truncated":
                    truncated = {"line": line, "message": item.message}
                if item.reason == DUPLICATE and first_duplicate is None:
                    first_duplicate = {"line": line, "message": item.message}
                log.debug("%s:%d dropped (%s): %s", input_name, line, item.reason, item.message)
            flush()
            wait_counting()
        except BaseException:
            writer.abort()
            raise
        finally:
            counting.shutdown(wait=True, cancel_futures=True)
        sha256 = writer.close()
        if not writer.n:
            raise InputError(f"no usable examples (dropped: {dict(dropped) or 'none'})", path=input_name)
        meter.add_tokens(sample.tokens)
    tokens: dict[str, Any] = {"tokenizer": tokenizer_id(), "instruction_input": summarize(sample.prompt), "output": summarize(sample.output)}
    if len(sample.keys) < writer.n:
        tokens["sample"] = {"n": len(sample.keys), "of": writer.n, "how": "the examples with the smallest ids (uniform: ids are content hashes)"}
    return {
        "n": writer.n,
        "n_dropped": sum(dropped.values()),
        "dropped": dict(sorted(dropped.items())),
        "truncated": truncated,
        "first_duplicate": first_duplicate,
        "sha256": sha256,
        "sources": dict(sources),
        "tasks": dict(sorted(tasks.items())),
        "n_multi_turn": n_multi_turn,
        "tokens": tokens,
        "cost": meter.record.to_dict(),
    }


def _input_hash(identity: Mapping[str, Any]) -> str | None:
    """The input's sha256 (a file's bytes), or for a hub dataset its `datasets` fingerprint."""
    hf = identity.get("hf") or {}
    return identity.get("sha256") or hf.get("sha256") or hf.get("fingerprint")


def _prompt(example: Example) -> str:
    """instruction + input as the user turn shows them."""
    return example.instruction if not example.input else f"{example.instruction}\n\n{example.input}"


def _place(entry: Path, out_dir: Path, manifest: dict[str, Any]) -> None:
    """Copy the store entry's Parquet into OUT atomically, then write the manifest (last: the done marker)."""
    from selbench.hashing import sha256_file
    from selbench.store import write_json_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / DATA_FILE
    tmp = out_dir / f".{DATA_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    # The old manifest goes first: a run stopped before the new one is written leaves no stale pair.
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
    try:
        shutil.copyfile(entry / DATA_FILE, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    write_json_atomic(out_dir / MANIFEST_FILE, {**manifest, "parquet_sha256": sha256_file(target)})


def _selbench_version() -> str:
    from selbench import __version__

    return __version__


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The manifest of a prepared dataset folder (InputError when it is not one)."""
    import json

    path = Path(out_dir) / MANIFEST_FILE
    if not path.is_file():
        raise InputError("not a prepared dataset (no manifest.json; run `selbench data prepare`)", path=out_dir)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"manifest.json is not valid JSON: {exc}", path=path) from None


__all__ = ["PrepareStep", "prepare", "read_manifest", "resolve_input"]
