"""The study's results tables: column names (one place, imported by the runner that writes them) and readers.

`results.parquet` has one row per cell x benchmark x metric (DESIGN.md "The study"):

* cell: `dataset`, `budget`, `strategy`, `seed`, `preset`, `lora` (a cell = one fine-tuned model);
* `benchmark`, `metric`, `value` (every metric is higher-is-better: accuracies, pass rates, win rates);
* `ids_sha256` of the cell's selection;
* cost of the cell: `selection_cost_usd`, `selection_seconds`, `train_cost_usd`, `train_seconds`, and
  `full_train_cost_usd_projected` (what fine-tuning on the whole dataset would cost with the same preset).

`items.parquet` has the cell columns + `benchmark`, `item`, `score`: one per-item score per cell and
benchmark, higher is better (e.g. IFEval: 1/0 for the prompt's strict pass; LLMBar: the instance's accuracy
over both orders; the AlpacaEval head-to-head: the preference for the strategy's output in [0, 1], 0.5 a
tie, i.e. alpaca_eval's preference - 1), plus, for head-to-head rows, the optional
`opponent_seed`: the random seed whose model answered that instruction (see
`selbench.analysis.stats.compare_head_to_head`).

Strategy names the analysis treats specially: `random` (the overlap-constrained baselines, one cell per seed
0, 1, 2, ...), `strict-random` (sampled outside every strategy's selection) and `full` (the whole dataset;
its `budget` is ignored, it is matched to every budget of its dataset).

Everything here is pure except `read_results` / `read_items`, the thin Parquet readers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from selbench.errors import InputError

DATASET = "dataset"
BUDGET = "budget"
STRATEGY = "strategy"
SEED = "seed"
PRESET = "preset"
LORA = "lora"
BENCHMARK = "benchmark"
METRIC = "metric"
VALUE = "value"
IDS_SHA256 = "ids_sha256"
SELECTION_COST_USD = "selection_cost_usd"
SELECTION_SECONDS = "selection_seconds"
TRAIN_COST_USD = "train_cost_usd"
TRAIN_SECONDS = "train_seconds"
FULL_TRAIN_COST_USD_PROJECTED = "full_train_cost_usd_projected"
ITEM = "item"
SCORE = "score"
OPPONENT_SEED = "opponent_seed"

RANDOM = "random"
STRICT_RANDOM = "strict-random"
FULL = "full"

#: The head-to-head benchmark of the grid and its metrics (`selbench.evaluation.alpacaeval.head_to_head`).
HEAD_TO_HEAD = "alpacaeval"
WIN_RATE = "win_rate"
MEAN_ADJUSTED_WIN_RATE = "mean_adjusted_win_rate"

#: A setup: everything of a cell except the selection. Random baselines are compared within a setup.
SETUP_COLUMNS: tuple[str, ...] = (DATASET, BUDGET, PRESET, LORA)
CELL_COLUMNS: tuple[str, ...] = (DATASET, BUDGET, STRATEGY, SEED, PRESET, LORA)
COST_COLUMNS: tuple[str, ...] = (
    SELECTION_COST_USD,
    SELECTION_SECONDS,
    TRAIN_COST_USD,
    TRAIN_SECONDS,
    FULL_TRAIN_COST_USD_PROJECTED,
)
RESULTS_COLUMNS: tuple[str, ...] = (*CELL_COLUMNS, BENCHMARK, METRIC, VALUE, IDS_SHA256, *COST_COLUMNS)
ITEMS_COLUMNS: tuple[str, ...] = (*CELL_COLUMNS, BENCHMARK, ITEM, SCORE)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str = "table") -> None:
    """Raise ValueError naming the first of `columns` that `frame` lacks.

    >>> require_columns(pd.DataFrame({"a": [1]}), ["a"])
    >>> require_columns(pd.DataFrame({"a": [1]}), ["a", "b"], "results")
    Traceback (most recent call last):
    ...
    ValueError: results has no column 'b' (has: a)
    """
    for column in columns:
        if column not in frame.columns:
            raise ValueError(f"{what} has no column {column!r} (has: {', '.join(map(str, frame.columns))})")


def duplicated_keys(frame: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """The rows whose `keys` repeat (a results table has one row per cell x benchmark x metric).

    >>> t = pd.DataFrame({"a": [1, 1, 2], "b": ["x", "x", "y"]})
    >>> duplicated_keys(t, ["a", "b"]).index.tolist()
    [0, 1]
    """
    keys = list(keys)
    return frame[frame.duplicated(keys, keep=False)]


def check_results(frame: pd.DataFrame, extra: Iterable[str] = ()) -> None:
    """ValueError unless `frame` has the cell, benchmark, metric and value columns (+ `extra`) and one row
    per cell x benchmark x metric (a repeated row would silently be averaged by the views).

    >>> t = pd.DataFrame([dict(dataset="d", budget=8, strategy="random", seed=0, preset="p", lora=True,
    ...                        benchmark="ifeval", metric="prompt_strict", value=0.5)])
    >>> check_results(t)
    >>> check_results(pd.concat([t, t]))
    Traceback (most recent call last):
    ...
    ValueError: results repeat the row of cell ('d', 8, 'random', 0, 'p', True), benchmark 'ifeval', metric 'prompt_strict'
    """
    keys = [*CELL_COLUMNS, BENCHMARK, METRIC]
    require_columns(frame, [*keys, VALUE, *extra], "results")
    dup = duplicated_keys(frame, keys)
    if len(dup):
        row = dup.iloc[0]
        cell = tuple(row[c].item() if hasattr(row[c], "item") else row[c] for c in CELL_COLUMNS)
        raise ValueError(f"results repeat the row of cell {cell}, benchmark {row[BENCHMARK]!r}, metric {row[METRIC]!r}")


def _read(path: str | Path, columns: tuple[str, ...], keys: tuple[str, ...]) -> pd.DataFrame:
    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"not a readable Parquet file ({type(exc).__name__}: {exc})", path=path) from None
    for column in columns:
        if column not in frame.columns:
            raise InputError("missing column", path=path, field=column)
    frame = frame.reset_index(drop=True)
    repeats = np.flatnonzero(frame.duplicated(list(keys), keep="first").to_numpy())
    if len(repeats):
        row = int(repeats[0])
        group = frame.groupby(list(keys), dropna=False, sort=False).ngroup().to_numpy()
        first = int(np.flatnonzero(group == group[row])[0])
        raise InputError(f"repeats the key ({', '.join(keys)}) of record {first + 1}", path=path, line=row + 1,
                         field=keys[-1])
    return frame


def read_results(path: str | Path) -> pd.DataFrame:
    """Read `results.parquet`; InputError (exit 2) naming the file and field when a column is missing
    or a (cell, benchmark, metric) key repeats."""
    return _read(path, RESULTS_COLUMNS, (*CELL_COLUMNS, BENCHMARK, METRIC))


def read_items(path: str | Path) -> pd.DataFrame:
    """Read `items.parquet`; InputError naming the file and field when a column is missing or a
    (cell, benchmark, item) key repeats."""
    return _read(path, ITEMS_COLUMNS, (*CELL_COLUMNS, BENCHMARK, ITEM))
