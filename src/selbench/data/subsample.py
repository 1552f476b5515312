"""The `subsample` step: a seeded sample of `limit` examples of a prepared dataset, as a prepared dataset.

The study grid's `datasets: {name: {source, input, limit}}` prepares the source, then keeps `limit` of its
examples. The sample is drawn without replacement by numpy's `Generator.choice` from a `SeedSequence` of
(seed, the dataset's sha256), so the same dataset and seed give the same sample on every machine, and two
datasets with the same seed get unrelated samples. The kept rows stay in the dataset's order. A `limit` at
or above the dataset's size keeps every example.

The step's store folder is itself a prepared dataset folder: `data.parquet` (same schema and compression
as `prepare`'s) and `manifest.json` (written by the step, so with no timestamps: `n`, `sha256` of the kept
rows, `parquet_sha256`, `sources`, `tasks`, token lengths, and `subsample`: {`of` (the source dataset's
sha256), `of_n`, `limit`, `seed`}), which `dataset_sha256`, scoring, selection and training read as they
read `prepare`'s output.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.step import InputsNotReady, Step
from selbench.store import StepResult, StepStore, write_json_atomic

STEP = "subsample"
VERSION = 1
DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"
_BATCH_ROWS = 4096


def subsample_indices(n: int, limit: int, seed: int, dataset_sha256: str) -> np.ndarray:
    """Sorted indices of the `limit` kept rows of an `n`-row dataset (all of them when `limit >= n`).

    >>> a = subsample_indices(10, 3, 0, "ab" * 32)
    >>> a.tolist() == sorted(a.tolist()) and len(set(a.tolist())) == 3
    True
    >>> a.tolist() == subsample_indices(10, 3, 0, "ab" * 32).tolist()
    True
    >>> subsample_indices(4, 9, 0, "ab" * 32).tolist()
    [0, 1, 2, 3]
    """
    if limit >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence((int(seed), int(dataset_sha256, 16))))
    return np.sort(rng.choice(n, size=limit, replace=False)).astype(np.int64)


@dataclass(frozen=True)
class SubsampleStep(Step):
    """Keep a seeded sample of `limit` examples of a prepared dataset.

    Args:
        data: the prepared dataset folder (`data.parquet` + `manifest.json`, e.g. a `PrepareStep`'s `out`).
        limit: examples to keep (>= 1).
        seed: sampling seed (mixed with the dataset's sha256).
        out: (not in the key) a folder to publish the subsample into after `run()`, besides the store.

    Key: `limit`, `seed` and the dataset's sha256 (from its manifest: the pool is not read). Outputs: the
    store folder is a prepared dataset folder (`data.parquet`, `manifest.json`); `meta.json` stats: `n`,
    `of_n`, `sha256`.
    """

    data: str
    limit: int
    seed: int = 0
    out: str | None = field(default=None, compare=False)

    name: ClassVar[str] = STEP
    VERSION: ClassVar[int] = VERSION
    resources: ClassVar[Mapping[str, float]] = {"cpus": 1, "gpus": 0, "memory_gb": 2}

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 1:
            raise InputError(f"limit {self.limit!r} must be an integer >= 1", field="limit")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InputError(f"seed {self.seed!r} must be an integer >= 0", field="seed")

    def config(self) -> dict[str, Any]:
        return {"limit": self.limit, "seed": self.seed}

    def inputs(self) -> dict[str, Any]:
        from selbench.data.schema import dataset_sha256

        folder = Path(self.data)
        if not (folder / DATA_FILE).is_file() or not (folder / MANIFEST_FILE).is_file():
            raise InputsNotReady(f"{self.data} is not prepared yet")
        return {"dataset": dataset_sha256(folder)}

    def describe(self) -> str:
        return f"subsample {Path(self.data).name} to {self.limit} (seed {self.seed})"

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from selbench.cost import CostMeter
        from selbench.data.lengths import summarize, token_lengths, tokenizer_id
        from selbench.data.prepare import read_manifest
        from selbench.data.schema import Example, arrow_schema, rows_sha256
        from selbench.hashing import sha256_file

        parent = read_manifest(self.data)
        of_sha = self.inputs()["dataset"]
        source_file = Path(self.data) / DATA_FILE
        with CostMeter(STEP) as meter:
            n = pq.ParquetFile(source_file).metadata.num_rows
            keep = subsample_indices(n, self.limit, self.seed, of_sha)
            examples: list[Example] = []
            start = 0
            for batch in pq.ParquetFile(source_file).iter_batches(batch_size=_BATCH_ROWS):
                stop = start + batch.num_rows
                lo, hi = np.searchsorted(keep, [start, stop])
                if hi > lo:
                    rows = batch.take(pa.array(keep[lo:hi] - start)).to_pylist()
                    examples.extend(Example.from_row(row) for row in rows)
                start = stop
            assert len(examples) == len(keep), f"kept {len(examples)} rows, expected {len(keep)}"
            table = pa.Table.from_pylist([e.to_row() for e in examples], schema=arrow_schema())
            pq.write_table(table, tmp / DATA_FILE, compression="zstd")
            prompts = [e.instruction if not e.input else f"{e.instruction}\n\n{e.input}" for e in examples]
            prompt_tokens, output_tokens = token_lengths(prompts), token_lengths([e.output for e in examples])
            meter.add_tokens(int(prompt_tokens.sum() + output_tokens.sum()))
        sha = rows_sha256(examples)
        manifest = {
            "n": len(examples),
            "n_dropped": 0,
            "dropped": {},
            "truncated": None,
            "sha256": sha,
            "parquet_sha256": sha256_file(tmp / DATA_FILE),
            "source": parent.get("source"),
            "input": parent.get("input"),
            "sources": dict(Counter(e.source for e in examples)),
            "tasks": dict(sorted(Counter(e.task for e in examples if e.task).items())),
            "n_multi_turn": sum(len(e.messages) > 2 for e in examples),
            "tokens": {"tokenizer": tokenizer_id(), "instruction_input": summarize(prompt_tokens),
                       "output": summarize(output_tokens)},
            "subsample": {"of": of_sha, "of_n": n, "limit": self.limit, "seed": self.seed},
        }
        write_json_atomic(tmp / MANIFEST_FILE, manifest)
        return {"n": len(examples), "of_n": n, "sha256": sha, "cost": meter.record.to_dict()}

    def run(self, store: StepStore | None = None, *, force: bool = False) -> StepResult:
        """The stored subsample (computed first if absent), published to `out` when set."""
        result = super().run(store, force=force)
        if self.out is not None:
            publish_dataset(result.path, Path(self.out))
        return result


def publish_dataset(src: Path, out_dir: Path) -> None:
    """Copy a prepared dataset folder's `data.parquet` and `manifest.json` to `out_dir` (manifest last)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("exists and is not a folder", path=out_dir, field="out")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)  # no stale manifest beside a new Parquet
    tmp = out_dir / f".{DATA_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        shutil.copyfile(src / DATA_FILE, tmp)
        tmp.replace(out_dir / DATA_FILE)
    finally:
        tmp.unlink(missing_ok=True)
    write_json_atomic(out_dir / MANIFEST_FILE, json.loads((src / MANIFEST_FILE).read_text(encoding="utf-8")))


__all__ = ["SubsampleStep", "publish_dataset", "subsample_indices"]
