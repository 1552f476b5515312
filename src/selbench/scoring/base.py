"""Scorer protocol, the `SCORERS` registry and the cached "score" step.

A scorer turns a prepared dataset into per-example columns (a length, a loss ratio, a rating...). The
"score" step runs it once per (dataset sha256, scorer name, scorer VERSION, scorer fingerprint) and keeps
`scores.parquet` (`id` + the scorer's columns) in the step store, so selecting at 1k, 5k and 10k scores the
pool once and the second budget costs nothing (DESIGN.md "Scores are computed once").

Adding a scorer is one file: a class with `name`, `VERSION`, `columns` (the dataset columns it reads),
`fingerprint()` and `score()`, registered below as a lazy "module:attr" string (or through the
`selbench.scorers` entry-point group).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from selbench.cost import CostMeter, CostRecord, PriceSheet
from selbench.errors import InputError
from selbench.registry import Registry
from selbench.step import InputsNotReady, ShardedStep
from selbench.store import ShardProgress, StepStore

log = logging.getLogger(__name__)

SCORES_FILE = "scores.parquet"
STEP = "score"


class Scorer(Protocol):
    """What every scorer provides.

    Attributes:
        name: registered name (== module name).
        VERSION: bumped whenever the scorer's output bytes change for the same inputs.
        columns: dataset columns `score` reads (`output`, `instruction`, `messages`...).
        shard_size: (optional) examples per resumable shard; default `DEFAULT_SHARD_SIZE`.
        column_dtypes: (optional) storage dtype per output column, e.g. `{"embedding": "float16"}`.
        summarize: (optional) `summarize(columns) -> dict` of counts worth printing (e.g. `n_skipped`).
        rows_to_score: (optional) `rows_to_score(n) -> sorted positions | None`: score only these examples
            of the n-example pool (e.g. the study's 40,000-example AlpaGasus pool); every column of the others
            is NaN (columns are stored as floats then). None: all.
        session: (optional) `session()` context manager the score step holds open while it computes shards,
            and only when some are left (AlpaGasus serves a local judge on 127.0.0.1 for that long).

    Its options are the fields of a frozen dataclass documented in an "Args:" docstring section:
    `selbench score <name>` is generated from them (`selbench.cli.registry_cmds`).

    `score` is called once per shard with that shard's rows, so it must not depend on other rows. It may
    return several columns; a 2-D `[n, d]` array is stored as a fixed-size list column (embeddings).
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
SCORERS.register("ifd", "selbench.scoring.ifd:IFDScorer")
SCORERS.register("embed", "selbench.scoring.embed:EmbedScorer")
SCORERS.register("deita-complexity", "selbench.scoring.deita:DeitaComplexityScorer")
SCORERS.register("deita-quality", "selbench.scoring.deita:DeitaQualityScorer")
SCORERS.register("rds", "selbench.scoring.rds:RdsScorer")


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
        summary: the scorer's own summary of its columns (`summarize`, e.g. IFD's `n_skipped`).
    """

    scorer: str
    key: str
    path: Path
    n: int
    config: dict[str, Any]
    cost: dict[str, Any]
    cached: bool
    call_cost: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


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


DEFAULT_SHARD_SIZE = 1024


def scorer_shard_size(scorer: Any) -> int:
    """Examples per resumable shard: the scorer's `shard_size` attribute, else `DEFAULT_SHARD_SIZE`."""
    return int(getattr(scorer, "shard_size", None) or DEFAULT_SHARD_SIZE)


@dataclass(frozen=True)
class ScoreStep(ShardedStep):
    """Score every example of a prepared dataset with a registered scorer, shard by shard.

    Args:
        data: prepared dataset folder (or its `data.parquet`).
        scorer: registered scorer name.
        options: the scorer's options (fields of its config dataclass).
        prices: price sheet for the cost record (not part of the key: it prices, it does not change scores).
        shard_size: (not in the key) examples per resumable shard; None = the scorer's `shard_size`. A scorer
            scores each row on its own, so the cut does not change the scores (up to float rounding of
            batched model scorers); smaller shards spread a pool over more Ray tasks.

    Sharded (`selbench.step.ShardedStep`): `shard_plan` reads the pool's row count from its Parquet footer;
    `run_shards` scores just the given shards.
    """

    data: str
    scorer: str
    options: tuple[tuple[str, Any], ...] = ()
    prices: PriceSheet | None = field(default=None, compare=False)
    shard_size: int | None = field(default=None, compare=False)

    name: ClassVar[str] = STEP
    resources: ClassVar[Mapping[str, float]] = {"cpus": 1, "gpus": 0, "memory_gb": 4}

    @classmethod
    def make(cls, data: str | Path, scorer: str, options: Mapping[str, Any] | None = None,
             prices: PriceSheet | None = None, shard_size: int | None = None) -> ScoreStep:
        if shard_size is not None and (isinstance(shard_size, bool) or not isinstance(shard_size, int)
                                       or shard_size < 1):
            raise InputError(f"shard_size {shard_size!r} must be an integer >= 1", field="shard_size")
        return cls(str(data), scorer, tuple(sorted(dict(options or {}).items())), prices, shard_size)

    @property
    def VERSION(self) -> int:  # type: ignore[override]  # the scorer's version is the step's
        return int(self.built.VERSION)

    @property
    def built(self) -> Scorer:
        """The scorer object (built once per step object; it loads its model lazily, on first use)."""
        cached = self.__dict__.get("_built")
        if cached is None:
            cached = build_scorer(self.scorer, dict(self.options))
            object.__setattr__(self, "_built", cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:  # ship names and options, never a loaded model
        return {k: v for k, v in self.__dict__.items() if k != "_built"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def data_file(self) -> Path:
        return prepared_data_file(self.data)

    def config(self) -> dict[str, Any]:
        return {"scorer": self.scorer, **self.built.fingerprint()}

    def inputs(self) -> dict[str, Any]:
        from selbench.data.schema import dataset_sha256

        path = Path(self.data)
        if not (path / "data.parquet").is_file() and not path.is_file():
            raise InputsNotReady(f"{self.data} is not prepared yet")
        return {"dataset": dataset_sha256(self.data_file.parent)}

    def describe(self) -> str:
        return f"score {self.scorer} {Path(self.data).name}"

    def shard_progress(self, store: StepStore) -> ShardProgress:
        import pyarrow.parquet as pq

        n = pq.ParquetFile(self.data_file).metadata.num_rows
        return ShardProgress(store.partial_dir(STEP, self.key()), n, self.shard_size or scorer_shard_size(self.built))

    def shard_computer(self, store: StepStore, shards: ShardProgress) -> Callable[[int, range], dict[str, np.ndarray]]:
        """Scores one shard's rows (the pool is read window by window; earlier windows are read past)."""
        scorer = self.built
        windows = _row_windows(self.data_file, ["id", *scorer.columns], shards.shard_size)
        subset = scorer.rows_to_score(shards.n_items) if callable(getattr(scorer, "rows_to_score", None)) else None

        def score_shard(number: int, items: range) -> dict[str, np.ndarray]:
            start, rows = next(windows)
            while start < items.start:  # windows of shards finished earlier are read past, not scored
                start, rows = next(windows)
            assert start == items.start, f"shard {number} starts at {items.start}, rows at {start}"
            local = None
            if subset is not None:  # only the scorer's chosen rows are scored; the others get NaN
                local = subset[(subset >= items.start) & (subset < items.stop)] - items.start
                rows = {k: [v[i] for i in local] for k, v in rows.items()}
            with CostMeter(f"{STEP}:{self.scorer}", prices=self.prices) as meter:
                columns = scorer.score(rows, meter)
            record = meter.record
            if local is not None:
                columns = _scatter(columns, local, len(items))
            payload = _check_columns(self.scorer, columns, len(items))
            payload[_COST] = np.array([record.wall_seconds, record.tokens, record.api_input_tokens,
                                       record.api_output_tokens, record.api_usd], dtype=np.float64)
            return payload

        return score_shard

    def shard_session(self) -> contextlib.AbstractContextManager[Any]:
        """The scorer's `session()`, if it has one (AlpaGasus serving a local judge)."""
        session = getattr(self.built, "session", None)
        return session() if session is not None else contextlib.nullcontext()

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        scorer = self.built
        data_file = self.data_file
        shards = self.shard_progress(store)
        n = shards.n_items
        score_shard = self.shard_computer(store, shards)
        done_before = [i for i in range(shards.n_shards) if shards.done(i)]
        opened = self.shard_session() if len(done_before) < shards.n_shards else contextlib.nullcontext()
        with CostMeter(f"{STEP}:{self.scorer}", prices=self.prices) as meter:
            with opened:
                progress = shards.run(score_shard, desc=f"score {self.scorer}")
            written, totals = _write_score_table(data_file, shards, tmp,
                                                 getattr(scorer, "column_dtypes", None) or {})
            meter.add_tokens(int(totals[1]))
        record = meter.record
        # Shards finished by an earlier (killed) run or by other workers (`run_shards`) are charged their own
        # time once, here.
        record.wall_seconds += sum(float(shards.load(i)[_COST][0]) for i in done_before)
        record.api_input_tokens, record.api_output_tokens = int(totals[2]), int(totals[3])
        record.node_usd = record.wall_seconds / 3600.0 * (self.prices or PriceSheet()).node_rate(record.device_kind)
        record.api_usd = float(totals[4])
        record.usd = record.node_usd + record.api_usd
        summary = {}
        if hasattr(scorer, "summarize"):
            summary = dict(scorer.summarize(read_scores(tmp / SCORES_FILE)[1]))
        return {"n": n, "columns": written, "shards": progress, "summary": summary, "cost": record.to_dict()}


# Per-shard cost kept in the shard file: [seconds, tokens, api input tokens, api output tokens, api usd].
_COST = "__cost__"
_INTERNAL = (_COST,)


def _row_windows(data_file: Path, columns: list[str], size: int):
    """Consecutive (start, {column: list}) windows of exactly `size` rows (the last may be shorter), read
    batch by batch so memory is bounded by the window, not the pool."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pending: list[Any] = []
    pending_rows = 0
    start = 0
    for batch in pq.ParquetFile(data_file).iter_batches(batch_size=size, columns=columns):
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= size:
            table = pa.Table.from_batches(pending)
            yield start, table.slice(0, size).to_pydict()
            rest = table.slice(size)
            pending, pending_rows = rest.to_batches(), rest.num_rows
            start += size
    if pending_rows:
        yield start, pa.Table.from_batches(pending).to_pydict()


def _scatter(columns: Mapping[str, Any], positions: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Columns for `positions` of an n-row shard spread out over all n rows, NaN elsewhere.

    >>> _scatter({"score": np.array([4.0, 5.0])}, np.array([0, 2]), 3)["score"].tolist()
    [4.0, nan, 5.0]
    """
    out = {}
    for name, values in columns.items():
        values = np.asarray(values, dtype=np.float64)
        full = np.full((n, *values.shape[1:]), np.nan, dtype=np.float64)
        full[positions] = values
        out[name] = full
    return out


def _check_columns(scorer: str, columns: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    out = {}
    for name, values in columns.items():
        array = np.asarray(values)
        if name in _INTERNAL or name == "id":
            raise ValueError(f"scorer {scorer} returned a reserved column name {name!r}")
        assert array.ndim in (1, 2), f"scorer {scorer} column {name!r} has {array.ndim} dimensions (1 or 2 allowed)"
        assert len(array) == n, f"scorer {scorer} returned {len(array)} {name!r} values for {n} rows"
        out[name] = array
    return out


def _arrow_column(values: np.ndarray, dtype: str | None):
    import pyarrow as pa

    if dtype is not None:
        values = values.astype(dtype, copy=False)
    if values.ndim == 2:
        flat = pa.array(np.ascontiguousarray(values).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    return pa.array(values)


def _write_score_table(data_file: Path, shards: ShardProgress, tmp: Path,
                       dtypes: Mapping[str, str]) -> tuple[list[str], np.ndarray]:
    """Stream the shards into `scores.parquet` (and each 2-D column into `<column>.npy`, for memory-mapped
    reads); memory is bounded by one shard. Returns the columns written and the summed per-shard costs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    npy: dict[str, Any] = {}
    names: list[str] = []
    ids = pq.ParquetFile(data_file).iter_batches(batch_size=shards.shard_size, columns=["id"])
    id_buffer: list[str] = []
    totals = np.zeros(5, dtype=np.float64)
    try:
        for number, items in enumerate(shards.ranges()):
            loaded = shards.load(number)
            totals += loaded.get(_COST, 0.0)
            saved = {k: v for k, v in loaded.items() if k not in _INTERNAL}
            while len(id_buffer) < len(items):
                id_buffer.extend(next(ids).column("id").to_pylist())
            shard_ids, id_buffer = id_buffer[: len(items)], id_buffer[len(items):]
            table = pa.table({"id": pa.array(shard_ids, pa.string()),
                              **{k: _arrow_column(v, dtypes.get(k)) for k, v in sorted(saved.items())}})
            if writer is None:
                names = sorted(saved)
                writer = pq.ParquetWriter(tmp / SCORES_FILE, table.schema)
            elif table.schema != writer.schema:  # every shard is stored with the first shard's types
                table = table.cast(writer.schema)
            writer.write_table(table)
            for name, values in saved.items():
                if values.ndim == 2:
                    if name not in npy:
                        npy[name] = np.lib.format.open_memmap(
                            tmp / f"{name}.npy", mode="w+", dtype=np.dtype(dtypes.get(name, values.dtype)),
                            shape=(shards.n_items, values.shape[1]))
                    npy[name][items.start : items.stop] = values
        if writer is None:  # an empty pool still gets a (typed) table
            pq.write_table(pa.table({"id": pa.array([], pa.string())}), tmp / SCORES_FILE)
    finally:
        if writer is not None:
            writer.close()
        for array in npy.values():
            array.flush()
    return names, totals


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
    store = store or StepStore()
    prepared_data_file(dataset_dir)  # a missing dataset is an InputError before any scorer is built
    step = ScoreStep.make(dataset_dir, scorer_name, config, prices)
    started = time.perf_counter()
    result = step.run(store)
    elapsed = time.perf_counter() - started
    if result.cached:
        # A cache hit is charged nothing: the pool was scored (and paid for) once, by the first call.
        call_cost = CostRecord(step=f"{STEP}:{scorer_name}").to_dict()
        call_cost["extra"] = {"cached": True, "key": result.key, "lookup_seconds": elapsed}
        log.info("scores %s for %s: cached (%s)", scorer_name, dataset_dir, result.key[:12])
    else:
        call_cost = dict(result.cost)
    fingerprint = dict(result.meta.get("config", {}))
    fingerprint.pop("scorer", None)
    return ScoresResult(
        scorer=scorer_name,
        key=result.key,
        path=result.path / SCORES_FILE,
        n=int(result.stats.get("n", 0)),
        config=fingerprint,
        cost=dict(result.cost),
        cached=result.cached,
        call_cost=call_cost,
        summary=dict(result.stats.get("summary", {})),
    )


def read_scores(path: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """(ids, column -> values) of a scores Parquet file; 2-D (fixed-size list) columns come back as
    `[n, d]` arrays, memory-mapped from the store's `<column>.npy` beside the file when it is there.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    table = pq.read_table(path, memory_map=True)
    ids = table.column("id").to_pylist()
    columns: dict[str, np.ndarray] = {}
    for name in table.column_names:
        if name == "id":
            continue
        column = table.column(name)
        if pa.types.is_fixed_size_list(column.type):
            beside = path.with_name(f"{name}.npy")
            if beside.is_file():
                columns[name] = np.load(beside, mmap_mode="r")
                continue
            flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
            columns[name] = flat.reshape(len(column), column.type.list_size)
        else:
            columns[name] = column.to_numpy()
    return ids, columns
