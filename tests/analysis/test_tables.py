"""The results-table readers: what they accept and how they refuse bad files (exit 2, naming the field)."""

from __future__ import annotations

import pandas as pd
import pytest

from selbench.analysis.tables import (
    CELL_COLUMNS,
    ITEMS_COLUMNS,
    RESULTS_COLUMNS,
    read_items,
    read_results,
)
from selbench.errors import InputError


def _results():
    row = dict(dataset="alpaca", budget=1000, strategy="random", seed=0, preset="set1", lora=True,
               benchmark="ifeval", metric="prompt_strict", value=0.4, ids_sha256="ab" * 32,
               selection_cost_usd=0.0, selection_seconds=0.1, train_cost_usd=1.0, train_seconds=450.0,
               full_train_cost_usd_projected=52.0)
    return pd.DataFrame([row, row | {"seed": 1, "value": 0.5}, row | {"strategy": "longest", "seed": None}])


def test_round_trip(tmp_path):
    path = tmp_path / "results.parquet"
    _results().to_parquet(path)
    back = read_results(path)
    assert list(back.columns) == list(RESULTS_COLUMNS) and len(back) == 3
    items = _results()[list(CELL_COLUMNS) + ["benchmark"]].assign(item="q1", score=1.0)
    items.to_parquet(tmp_path / "items.parquet")
    assert list(read_items(tmp_path / "items.parquet").columns) == list(ITEMS_COLUMNS)


def test_refusals_name_file_and_field(tmp_path):
    path = tmp_path / "results.parquet"
    _results().drop(columns="train_cost_usd").to_parquet(path)
    with pytest.raises(InputError) as err:
        read_results(path)
    assert err.value.exit_code == 2 and err.value.field == "train_cost_usd" and str(path) in str(err.value)
    pd.concat([_results(), _results().iloc[[1]]]).to_parquet(path)
    with pytest.raises(InputError, match="repeats the key .* of record 2") as err:
        read_results(path)
    assert err.value.line == 4
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="not a readable Parquet"):
        read_results(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="no such file"):
        read_items(tmp_path / "missing.parquet")
