"""Running a strategy on a prepared dataset and writing its selection manifest.

This is the I/O shell around the pure strategies in this package: it reads the dataset's ids, fetches the
scores a strategy needs through the cached "score" step, maps `--against` manifests onto pool indices, runs
the strategy as the cached "select" step (key: dataset sha256, strategy, VERSION, params, budget, seed, the
scores' keys and the against selections' `ids_sha256`, in order) and writes the manifest atomically.

Manifest (DESIGN.md "selection manifest"): `strategy`, `params`, `budget`, `seed`, `dataset` {path, sha256,
n}, `ids` (selection order), `ids_sha256`, `scores` {role: {path, scorer, config_key, config, cost}} where
`cost` is the record of the run that computed the scores (so cost tables count each scoring once),
`against` {name: {path, strategy, budget, ids_sha256}}, `overlap` {name: shared / budget}, `fallback`
{used, reason}, `select_key`, `info`, `prerequisites` {name: {step, key, path, cost, cached}} (model steps a
strategy's `prepare` hook ran first, e.g. Cherry's pre-experienced model), and `cost`: the select step's record plus what scoring cost *this
call* (zero when the scores were cached), with the parts listed in `cost.extra.parts`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selbench.cost import CostMeter, CostRecord, PriceSheet
from selbench.errors import InputError
from selbench.hashing import sha256_lines
from selbench.scoring.base import SCORES_FILE, ScoreStep, prepared_data_file, read_scores
from selbench.selection.base import STRATEGIES, Pool, strategy_params, strategy_rng
from selbench.step import InputsNotReady, Step
from selbench.store import StepStore, write_json_atomic

log = logging.getLogger(__name__)

STEP = "select"
SELECTION_FILE = "selection.json"
REQUIRED_FIELDS = ("strategy", "budget", "dataset", "ids", "ids_sha256")


@dataclass
class SelectionRun:
    """manifest: what was written; seconds: wall time of this call; cached: the select step was cached."""

    manifest: dict[str, Any]
    seconds: float
    cached: bool


def read_manifest(path: str | Path, *, complete: bool = True) -> dict[str, Any]:
    """Read and check a selection manifest: the one reader every stage uses (InputError naming the file, the
    line and the field when malformed).

    Always checked: a JSON object; `ids` a non-empty list of distinct strings (a bad or repeated id names the
    file line it sits on); `ids_sha256`, when present, `sha256_lines(ids)`; `dataset`, when present, an
    object with a string `sha256`. With `complete` (what `selbench select` writes and reads back) the fields
    `strategy`, `budget`, `dataset`, `ids` and `ids_sha256` must all be there; without it, a hand-written
    manifest holding only `ids` is accepted (what `selbench train --selection` takes).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        manifest = json.loads(text)
    except FileNotFoundError:
        raise InputError("selection manifest not found", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    except RecursionError:
        raise InputError("not valid JSON here: nested too deeply to parse", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read selection manifest: {getattr(exc, 'strerror', None) or exc}", path=path) from None
    if not isinstance(manifest, dict):
        raise InputError(f"expected a JSON object, got {type(manifest).__name__}", path=path)
    if complete:
        for name in REQUIRED_FIELDS:
            if name not in manifest:
                raise InputError("missing (not a selection manifest?)", path=path, field=name)
    ids = manifest.get("ids")
    if not isinstance(ids, list) or not ids:
        raise InputError("expected a non-empty list of example ids", path=path, field="ids")
    seen: dict[str, int] = {}
    for k, example_id in enumerate(ids):
        if not isinstance(example_id, str):
            raise bad_id_error(path, text, ids, k,
                               f"expected an example id string, got {type(example_id).__name__} {example_id!r}")
        if example_id in seen:
            raise bad_id_error(path, text, ids, k,
                               f"id {example_id!r} repeats entry {seen[example_id] + 1}; each example is selected once")
        seen[example_id] = k
    if "ids_sha256" in manifest and manifest["ids_sha256"] != sha256_lines(ids):
        raise InputError(f"{manifest['ids_sha256']!r} is not the sha256 of the ids (file edited?); expected "
                         f"{sha256_lines(ids)}", path=path, field="ids_sha256")
    dataset = manifest.get("dataset")
    if dataset is not None or complete:
        if not isinstance(dataset, dict):
            raise InputError(f"expected an object with 'sha256', got {type(dataset).__name__}", path=path,
                             field="dataset")
        if not isinstance(dataset.get("sha256"), str):
            raise InputError(f"expected the dataset's sha256 string, got {dataset.get('sha256')!r}", path=path,
                             field="dataset.sha256")
    return manifest


def load_manifest(path: str | Path) -> dict[str, Any]:
    """A complete selection manifest, as `selbench select` writes it (`read_manifest(path)`)."""
    return read_manifest(path, complete=True)


def bad_id_error(path: str | Path, text: str, ids: list[Any], k: int, message: str) -> InputError:
    """An InputError about `ids[k]` carrying the file line it sits on (not its list position, which editors
    would jump to wrongly)."""
    return InputError(f"{message} (entry {k + 1} of 'ids')", path=path, line=_id_line(text, ids, k), field="ids")


def _id_line(text: str, ids: list[Any], k: int) -> int | None:
    """1-based file line of `ids[k]`, or None: each `"ids": [` in the text is decoded item by item
    (`raw_decode` gives offsets) and trusted only if it decodes to `ids`, so no misleading line is given."""
    import re

    decoder = json.JSONDecoder()
    for match in re.finditer(r'"ids"\s*:\s*\[', text):
        pos, starts, values = match.end(), [], []
        try:
            while True:
                pos = len(text) - len(text[pos:].lstrip())
                if text[pos] == "]":
                    break
                starts.append(pos)
                value, pos = decoder.raw_decode(text, pos)
                values.append(value)
                pos = len(text) - len(text[pos:].lstrip())
                pos += text[pos] == ","
        except (ValueError, IndexError):
            continue
        if values == ids:
            return text.count("\n", 0, starts[k]) + 1
    return None


def manifest_names(paths: Sequence[str | Path]) -> list[str]:
    """Short unique names for manifests: file stems, suffixed `#2`, `#3`... on collisions."""
    names: list[str] = []
    for path in paths:
        stem = Path(path).stem
        name, k = stem, 1
        while name in names:
            k += 1
            name = f"{stem}#{k}"
        names.append(name)
    return names


def _against_indices(paths: Sequence[str | Path], pool_ids: Any, dataset_sha: str, names: Sequence[str]
                     ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Each `--against` manifest's pool indices (in its selection order), description and ids.

    `pool_ids` is the dataset's id column as a pyarrow array: ids are mapped onto it in Arrow, without a
    Python dict of the whole pool.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    indices: dict[str, np.ndarray] = {}
    described: dict[str, dict[str, Any]] = {}
    selected: dict[str, list[str]] = {}
    for path, name in zip(paths, names, strict=True):
        manifest = load_manifest(path)
        if manifest["dataset"]["sha256"] != dataset_sha:
            raise InputError(f"selects from dataset {manifest['dataset']['sha256'][:12]}, not from --data "
                             f"({dataset_sha[:12]})", path=path, field="dataset.sha256")
        found = pc.index_in(pa.array(manifest["ids"], pa.string()), value_set=pool_ids)
        if found.null_count:
            missing = manifest["ids"][int(np.flatnonzero(found.is_null().to_numpy(zero_copy_only=False))[0])]
            raise InputError(f"id {missing!r} is not in the dataset", path=path, field="ids")
        indices[name] = found.to_numpy().astype(np.int64, copy=False)
        described[name] = {"path": str(path), "strategy": manifest["strategy"], "budget": manifest["budget"],
                           "ids_sha256": manifest["ids_sha256"]}
        selected[name] = manifest["ids"]
    return indices, described, selected


def _same_ids(score_ids: Any, pool_ids: Any) -> bool:
    """Whether a scores table's ids (a list or an Arrow array) are the pool's ids, in order."""
    import pyarrow as pa

    if isinstance(score_ids, pa.ChunkedArray):
        score_ids = score_ids.combine_chunks()
    if not isinstance(score_ids, pa.Array):
        score_ids = pa.array(score_ids, pa.string())
    return len(score_ids) == len(pool_ids) and score_ids.cast(pa.string()).equals(pool_ids.cast(pa.string()))


@dataclass(frozen=True)
class SelectStep(Step):
    """Run a registered strategy on a prepared dataset (the cached "select" step).

    Its output is `selection.json` (`ids` in selection order, `fallback`, `info`) in the store; the manifest
    at the user's path is written by `run_selection` around it. The key needs only content hashes already on
    disk: the dataset's manifest, the keys of the score steps the strategy requests (which need only file
    fingerprints) and the `ids_sha256` of each `against` manifest.

    Args:
        data: prepared dataset folder.
        strategy: registered strategy name.
        budget: examples to select (None: the whole pool).
        seed: seed of the strategy's random stream.
        params: the strategy's parameters, as sorted (name, value) pairs.
        against: manifests of other selections, for the random baselines (in order).
        prices: price sheet for the cost records (prices, does not change the selection; not in the key).
        prerequisites: (name, step key) of the model steps a strategy's `prepare` hook ran first (Cherry:
            embeddings, pre-experienced data, pre-experienced model); until they have run, a strategy with a
            `prepare` hook is not ready (its IFD scores depend on a model that does not exist yet).
        extra_requests: (role, scorer, options) score requests those prerequisites made possible.
    """

    data: str
    strategy: str
    budget: int | None
    seed: int = 0
    params: tuple[tuple[str, Any], ...] = ()
    against: tuple[str, ...] = ()
    prices: PriceSheet | None = field(default=None, compare=False)
    prerequisites: tuple[tuple[str, str], ...] = ()
    extra_requests: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...] = ()

    name: ClassVar[str] = STEP

    @classmethod
    def make(cls, data: str | Path, strategy: str, budget: int | None, *, seed: int = 0,
             params: Mapping[str, Any] | None = None, against: Sequence[str | Path] = (),
             prices: PriceSheet | None = None) -> SelectStep:
        return cls(str(data), strategy, budget, seed, tuple(sorted(dict(params or {}).items())),
                   tuple(str(p) for p in against), prices)

    @property
    def built(self) -> Any:
        """The strategy object (a frozen dataclass of its parameters)."""
        cached = self.__dict__.get("_built")
        if cached is None:
            try:
                cached = STRATEGIES.get(self.strategy)(**dict(self.params))
            except TypeError as exc:
                raise InputError(f"bad parameters for strategy {self.strategy!r}: {exc}", field="params") from exc
            object.__setattr__(self, "_built", cached)
        return cached

    @property
    def VERSION(self) -> int:  # type: ignore[override]  # the strategy's version is the step's
        return int(self.built.VERSION)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_built"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def score_steps(self) -> dict[str, ScoreStep]:
        """role -> the score step the strategy needs (shared by every budget and seed)."""
        requests = dict(self.built.score_requests())
        requests.update({role: (scorer, dict(options)) for role, scorer, options in self.extra_requests})
        return {role: ScoreStep.make(self.data, scorer, options, self.prices)
                for role, (scorer, options) in requests.items()}

    def with_prerequisites(self, prepared: Any) -> SelectStep:
        """This step once the strategy's `prepare` hook has run (`selection.base.Prepared`)."""
        import dataclasses

        return dataclasses.replace(
            self, prerequisites=tuple(sorted((name, info["key"]) for name, info in prepared.steps.items())),
            extra_requests=tuple(sorted((role, scorer, tuple(sorted(options.items())))
                                        for role, (scorer, options) in prepared.score_requests.items())))

    def n_pool(self) -> int:
        import pyarrow.parquet as pq

        return pq.ParquetFile(prepared_data_file(self.data)).metadata.num_rows

    def resolved_budget(self) -> int:
        return self.n_pool() if self.budget is None else int(self.budget)

    def config(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "params": strategy_params(self.built), "budget": self.resolved_budget(),
                "seed": self.seed}

    def inputs(self) -> dict[str, Any]:
        from selbench.data.schema import dataset_sha256

        path = Path(self.data)
        if not (path / "data.parquet").is_file():
            raise InputsNotReady(f"{self.data} is not prepared yet")
        against = []
        for manifest_path in self.against:
            if not Path(manifest_path).is_file():
                raise InputsNotReady(f"{manifest_path} is not selected yet")
            against.append(load_manifest(manifest_path)["ids_sha256"])
        if hasattr(self.built, "prepare") and not self.prerequisites:
            raise InputsNotReady(f"strategy {self.strategy!r} runs its prerequisite steps first")
        inputs = {"dataset": dataset_sha256(path),
                  "scores": {role: step.key() for role, step in self.score_steps().items()}, "against": against}
        if self.prerequisites:
            inputs["prerequisites"] = dict(self.prerequisites)
        return inputs

    def describe(self) -> str:
        seed = f" seed {self.seed}" if self.built.uses_against or self.strategy in ("random", "strict-random") else ""
        return f"select {self.strategy} {self.budget}{seed} {Path(self.data).name}"

    def pool(self, store: StepStore) -> tuple[Any, Pool, dict[str, Any]]:
        """(dataset ids as an Arrow array, the strategy's Pool, scores info by role): runs (or finds) the score
        steps. The pool's ids stay an Arrow array (~20 bytes an id): only selected ids become Python strings."""
        import pyarrow.parquet as pq

        from selbench.data.schema import dataset_sha256

        data_file = prepared_data_file(self.data)
        ids = pq.read_table(data_file, columns=["id"]).column("id").combine_chunks()
        names = manifest_names(self.against)
        against_idx, _, _ = _against_indices(self.against, ids, dataset_sha256(data_file.parent), names)
        scores: dict[str, dict[str, np.ndarray]] = {}
        scores_info: dict[str, dict[str, Any]] = {}
        for role, step in self.score_steps().items():
            started = time.perf_counter()
            result = step.run(store)
            score_ids, columns = read_scores(result.path / SCORES_FILE)
            if not _same_ids(score_ids, ids):
                raise InputError(
                    f"does not hold the examples its cached scores were computed on ({result.path}): run "
                    "`selbench data prepare` again", path=data_file, field="id")
            scores[role] = columns
            config = dict(result.meta.get("config", {}))
            config.pop("scorer", None)
            if result.cached:
                call_cost = CostRecord(step=f"score:{step.scorer}").to_dict()
                call_cost["extra"] = {"cached": True, "key": result.key,
                                      "lookup_seconds": time.perf_counter() - started}
            else:
                call_cost = dict(result.cost)
            scores_info[role] = {"path": str(result.path / SCORES_FILE), "scorer": step.scorer,
                                 "config_key": result.key, "config": config, "cost": dict(result.cost),
                                 "cached": result.cached, "call_cost": call_cost}
        return ids, Pool(n=len(ids), scores=scores, against=against_idx), scores_info

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        ids, pool, _ = self.pool(store)
        budget = self.resolved_budget()
        with CostMeter(f"{STEP}:{self.strategy}", prices=self.prices) as meter:
            from selbench.data.schema import dataset_sha256

            dataset_sha = dataset_sha256(prepared_data_file(self.data).parent)
            selection = self.built.select(pool, budget, strategy_rng(self.built, self.seed, dataset_sha))
            indices = np.asarray(selection.indices, dtype=np.int64)
            # A variable-size strategy (a rating threshold) may select fewer than the budget, never more.
            variable_size = bool(getattr(self.built, "variable_size", False))
            size_ok = len(indices) <= budget if variable_size else len(indices) == budget
            assert size_ok and len(np.unique(indices)) == len(indices), (
                f"strategy {self.strategy} returned {len(indices)} indices ({len(np.unique(indices))} unique) "
                f"for budget {budget}")
            chosen = ids.take(indices).to_pylist()
            write_json_atomic(tmp / SELECTION_FILE, {"ids": chosen, "fallback": selection.fallback,
                                                     "info": selection.info}, indent=None)
        return {"n_selected": len(chosen), "fallback": selection.fallback, "cost": meter.record.to_dict()}


def run_selection(
    data: str | Path,
    strategy_name: str,
    budget: int | None,
    out: str | Path,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    against: Sequence[str | Path] = (),
    store: StepStore | None = None,
    prices: PriceSheet | None = None,
) -> SelectionRun:
    """Select `budget` examples of the prepared dataset `data` with a registered strategy; write `out`.

    Args:
        data: prepared dataset folder.
        strategy_name: registered strategy ("random", "strict-random", "longest", "full", ...).
        budget: number of examples; None means the whole pool (only sensible for "full").
        out: manifest path (JSON), written atomically.
        params: strategy parameters (fields of its dataclass).
        seed: seed of the strategy's random generator (a stream of its own: `selection.base.strategy_rng`).
        against: manifests of other selections, for the random baselines.
        store: the step store (default `$SELBENCH_CACHE`).
        prices: price sheet for the cost records.

    Returns:
        The manifest written, this call's wall seconds and whether the selection was cached.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"{seed!r} is not an integer >= 0", field="seed")
    started = time.perf_counter()
    store = store or StepStore()
    data_file = prepared_data_file(data)
    step = SelectStep.make(data, strategy_name, budget, seed=seed, params=params, against=against, prices=prices)
    n = step.n_pool()
    budget = step.resolved_budget()
    if budget < 1 or budget > n:
        raise InputError(f"budget {budget} must be between 1 and the pool size ({n} examples)", path=data_file,
                         field="budget")
    strategy = step.built
    if against and not strategy.uses_against:
        raise InputError(f"strategy {strategy_name!r} does not take --against selections", field="against")
    prepared = None
    if hasattr(strategy, "prepare"):  # prerequisite model steps (selection/base.py `Prepared`), each cached
        prepared = strategy.prepare(data_file.parent, store, prices)
        step = step.with_prerequisites(prepared)
    # The against manifests are checked (and mapped onto the pool) before any scoring.
    ids, pool, scores_info = step.pool(store)
    names = manifest_names(against)
    against_info = {name: _describe_against(path) for name, path in zip(names, against, strict=True)}
    reference = getattr(strategy, "reference_budget", None)
    if reference is not None:  # an explicit reference budget says the selections were made at K or more
        for name, sel in pool.against.items():
            if len(sel) < min(reference, n):
                raise InputError(f"selects {len(sel)} examples, fewer than --reference-budget {reference}: "
                                 "pass selections made at the reference budget (or lower it)",
                                 path=against_info[name]["path"], field="budget")

    result = step.run(store)
    stored = json.loads((result.path / SELECTION_FILE).read_text(encoding="utf-8"))
    chosen_ids: list[str] = stored["ids"]
    chosen_set = set(chosen_ids)
    budget = len(chosen_ids)  # the selection's size (a variable-size strategy may have selected fewer)
    overlap = {name: sum(i in chosen_set for i in load_manifest(path)["ids"]) / budget
               for name, path in zip(names, against, strict=True)}

    call_costs = [*(prepared.call_costs if prepared is not None else []),
                  *(info.pop("call_cost") for info in scores_info.values())]
    parts = [*call_costs, dict(result.cost)]
    total = CostRecord(step=f"{STEP}:{strategy_name}")
    for part in parts:
        total = total + CostRecord.from_dict(part)
    cost = total.to_dict()
    cost["step"] = f"{STEP}:{strategy_name}"
    cost["extra"] = {"parts": parts, "select_cached": result.cached}

    manifest = {
        "strategy": strategy_name,
        "params": strategy_params(strategy),
        "budget": budget,
        "seed": seed,
        "dataset": {"path": str(Path(data)), "sha256": result.meta["inputs"]["dataset"], "n": n},
        "ids": chosen_ids,
        "ids_sha256": sha256_lines(chosen_ids),
        "scores": scores_info,
        "against": against_info,
        "overlap": overlap,
        "fallback": {"used": stored["fallback"] is not None, "reason": stored["fallback"]},
        "select_key": result.key,
        "info": {**(prepared.info if prepared is not None else {}), **stored.get("info", {})},
        "cost": cost,
    }
    if prepared is not None:
        manifest["prerequisites"] = prepared.steps
    write_json_atomic(out, manifest)
    return SelectionRun(manifest=manifest, seconds=time.perf_counter() - started, cached=result.cached)


def _describe_against(path: str | Path) -> dict[str, Any]:
    manifest = load_manifest(path)
    return {"path": str(path), "strategy": manifest["strategy"], "budget": manifest["budget"],
            "ids_sha256": manifest["ids_sha256"]}
