"""Scorer protocol, the `SCORERS` registry and the cached "score" step.

A scorer turns a prepared dataset into per-example columns (a length, a loss ratio, a rating...). The
"score" step runs it once per (dataset sha256, scorer name, scorer VERSION, scorer fingerprint) and keeps
`scores.parquet` (`id` + the scorer's columns) in the step store, so selecting at 1k, 5k and 10k scores the
pool once and the second budget costs nothing (DESIGN.md "Scores are computed once").

Adding a scorer is one file: a class with `name`, `VERSION`, `columns` (the dataset columns it reads),
`fingerprint()`, `score()` and optionally `stats()` (counts of its last run, kept in the step's meta.json),
registered below as a lazy "module:attr" string (or through the
`selbench.scorers` entry-point group).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from selbench.cost import CostMeter, CostRecord, PriceSheet
from selbench.errors import InputError
from selbench.registry import Registry
from selbench.store import StepStore

log = logging.getLogger(__name__)

SCORES_FILE = "scores.parquet"
STEP = "score"


class Scorer(Protocol):
    """What every scorer provides.

    Attributes:
        name: registered name (== module name).
        VERSION: bumped whenever the scorer's output bytes change for the same inputs.
        columns: dataset columns `score` reads (`output`, `instruction`, `messages`...).
    """

    name: str
    VERSION: int
    columns: tuple[str, ...]

    def fingerprint(self) -> dict[str, Any]:
        """Everything besides the dataset that can change the scores: config, model/tokenizer hashes."""
        ...

    def score(self, rows: Mapping[str, list[Any]], meter: CostMeter) -> dict[str, np.ndarray]:
        """Per-example score columns (same length as `rows[...]`); count tokens on `meter`."""
        ...


# Values are factories `(**options) -> Scorer` (usually the scorer class itself).
SCORERS: Registry[Any] = Registry("scorer", "selbench.scorers")
SCORERS.register("length", "selbench.scoring.length:LengthScorer")
SCORERS.register("alpagasus", "selbench.scoring.alpagasus:AlpagasusScorer")


@dataclass
class ScoresResult:
    """A finished score step.

    Args:
        scorer: scorer name.
        key: the step key (the scores' `config_key` in selection manifests).
        path: the `scores.parquet` file in the store.
        n: number of scored examples.
        config: the scorer's fingerprint (what the key was built from, besides the dataset).
        cost: the cost record of the run that computed the scores (the same on every later lookup).
        cached: True when this call found the scores already computed.
        call_cost: what this call cost: `cost` when computed now, zero when cached.
        stats: the step's stats (`n`, `columns`, and what the scorer's optional `stats()` reported, e.g. a
            judge's `unparsed` and `requests`), from the run that computed the scores.
    """

    scorer: str
    key: str
    path: Path
    n: int
    config: dict[str, Any]
    cost: dict[str, Any]
    cached: bool
    call_cost: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


def build_scorer(name: str, options: Mapping[str, Any] | None = None) -> Scorer:
    """Instantiate the registered scorer `name` with `options` (unknown options are an InputError)."""
    factory = SCORERS.get(name)
    try:
        return factory(**dict(options or {}))
    except TypeError as exc:
        raise InputError(f"bad options for scorer {name!r}: {exc}", field="scorer") from exc


def prepared_data_file(dataset_dir: str | Path) -> Path:
    """The `data.parquet` of a prepared dataset folder (or the file itself); InputError when absent."""
    path = Path(dataset_dir)
    path = path / "data.parquet" if path.is_dir() else path
    if not path.is_file():
        raise InputError("no prepared dataset here (run `selbench data prepare` first)", path=dataset_dir, field="data")
    return path


def compute_scores(
    dataset_dir: str | Path,
    scorer_name: str,
    config: Mapping[str, Any] | None = None,
    store: StepStore | None = None,
    *,
    prices: PriceSheet | None = None,
) -> ScoresResult:
    """Score a prepared dataset with a registered scorer, or return the cached scores.

    Args:
        dataset_dir: prepared dataset folder (or its `data.parquet`).
        scorer_name: registered scorer name ("length", ...).
        config: scorer options (e.g. `{"unit": "tokens", "tokenizer": "path"}`).
        store: the step store (default: `$SELBENCH_CACHE`).
        prices: price sheet for the cost record (default: the study's).

    Returns:
        The scores' location, key and cost records.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from selbench.data.schema import dataset_sha256

    store = store or StepStore()
    data_file = prepared_data_file(dataset_dir)
    scorer = build_scorer(scorer_name, config)
    fingerprint = scorer.fingerprint()
    key_config = {"scorer": scorer_name, **fingerprint}
    inputs = {"dataset": dataset_sha256(data_file.parent)}

    def compute(tmp: Path) -> dict[str, Any]:
        with CostMeter(f"{STEP}:{scorer_name}", prices=prices) as meter:
            table = pq.read_table(data_file, columns=["id", *scorer.columns])
            rows = table.to_pydict()
            columns = scorer.score(rows, meter)
            n = table.num_rows
            for name, values in columns.items():
                assert len(values) == n, f"scorer {scorer_name} returned {len(values)} {name!r} values for {n} rows"
            out = pa.table({"id": table.column("id"), **{k: pa.array(np.asarray(v)) for k, v in columns.items()}})
            pq.write_table(out, tmp / SCORES_FILE)
        # A scorer may report counts of its run (a judge's unparsed replies and requests): kept in meta.json.
        extra = scorer.stats() if callable(getattr(scorer, "stats", None)) else {}
        return {**extra, "n": n, "columns": sorted(columns), "cost": meter.record.to_dict()}

    started = time.perf_counter()
    result = store.run(STEP, scorer.VERSION, key_config, inputs, compute)
    elapsed = time.perf_counter() - started
    if result.cached:
        # A cache hit is charged nothing: the pool was scored (and paid for) once, by the first call.
        call_cost = CostRecord(step=f"{STEP}:{scorer_name}").to_dict()
        call_cost["extra"] = {"cached": True, "key": result.key, "lookup_seconds": elapsed}
        log.info("scores %s for %s: cached (%s)", scorer_name, data_file.parent, result.key[:12])
    else:
        call_cost = dict(result.cost)
    return ScoresResult(
        scorer=scorer_name,
        key=result.key,
        path=result.path / SCORES_FILE,
        n=int(result.stats.get("n", 0)),
        config=fingerprint,
        cost=dict(result.cost),
        cached=result.cached,
        call_cost=call_cost,
        stats=dict(result.stats),
    )


def read_scores(path: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """(ids, column -> values) of a scores Parquet file."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    ids = table.column("id").to_pylist()
    columns = {name: table.column(name).to_numpy() for name in table.column_names if name != "id"}
    return ids, columns
