"""The study's cost tables (Tables 2 and 6) from selection manifests and training records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selbench.cli.main import app
from selbench.cost import load_price_sheet
from selbench.cost.tables import (
    SelectionCost,
    TrainCost,
    collect_costs,
    price_usd,
    selection_cost_rows,
    selection_vs_full_rows,
)
from selbench.data.schema import Example, rows_sha256, write_examples
from selbench.selection.manifest import run_selection


def _sel(strategy="longest", budget=100, seed=0, select_usd=1.0, scores=(("k", 4.0, 10.0),), pool=2000):
    return SelectionCost("d", "alpaca", pool, strategy, budget, f"{strategy}-{budget}-{seed}", select_usd, 2.0,
                         scores)


def test_scoring_counted_once_per_config_key():
    rows = selection_cost_rows([_sel(budget=100), _sel(budget=500), _sel(budget=1000), _sel(budget=1000)])
    (row,) = rows
    assert row["n_selections"] == 3 and row["budgets"] == [100, 500, 1000]
    assert row["scoring_usd"] == 4.0 and row["selection_usd"] == 1.0
    assert row["usd_per_1k"] == pytest.approx((4.0 + 1.0) / 2.0)
    assert row["seconds_per_1k"] == pytest.approx((10.0 + 2.0) / 2.0)


def test_total_vs_full_finetuning():
    sels = [_sel(budget=100), _sel(budget=500), _sel("random", 100, scores=(), select_usd=0.5)]
    trains = [TrainCost("d", "full", 2000, 10.0, 1.0), TrainCost("d", "full", 2000, 30.0, 1.0),
              TrainCost("d", "longest", 100, 99.0, 1.0)]
    rows = {r["strategy"]: r for r in selection_vs_full_rows(sels, trains)}
    assert rows["longest"]["total_selection_usd"] == 4.0 + 1.0 + 1.0
    assert rows["longest"]["full_finetune_usd"] == 20.0 and rows["longest"]["ratio"] == pytest.approx(6.0 / 20.0)
    assert rows["random"]["total_selection_usd"] == 0.5
    assert selection_vs_full_rows(sels, [])[0]["full_finetune_usd"] is None


def test_repricing_uses_seconds_and_api_tokens():
    record = {"usd": 1.0, "wall_seconds": 1800.0, "device_kind": "cuda",
              "extra": {"api_models": {"gpt-4-turbo": {"input": 1_000_000, "output": 100_000}}}}
    assert price_usd(record, None) == 1.0
    from selbench.cost.prices import PriceSheet

    assert price_usd(record, PriceSheet()) == pytest.approx(4.0 + 10.0 + 3.0)


def _pool(folder: Path, n: int = 400) -> Path:
    examples = [Example(instruction=f"q{i}", output="z" * (i % 37)) for i in range(n)]
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": n}))
    return folder


def test_run_folder_to_tables_and_cli(tmp_path):
    data = _pool(tmp_path / "alpaca")
    run = tmp_path / "run"
    for budget in (50, 100, 200):
        run_selection(data, "longest", budget, run / "sel" / f"longest-{budget}.json")
    full = run_selection(data, "full", None, run / "sel" / "full.json").manifest
    run_selection(data, "random", 50, run / "sel" / "random-50.json", against=[run / "sel" / "longest-50.json"])
    # A training run's record, as the train step stores it: step "train", cost, the selection it used.
    (run / "train" / "full").mkdir(parents=True)
    (run / "train" / "full" / "meta.json").write_text(json.dumps({
        "step": "train", "inputs": {"selection": full["ids_sha256"]},
        "cost": {"step": "train", "wall_seconds": 3600.0, "device_kind": "cpu", "usd": 8.0}}))
    selections, trains = collect_costs(run)
    assert len(selections) == 5 and trains == [TrainCost(full["dataset"]["sha256"], "full", 400, 8.0, 3600.0)]
    rows = {r["strategy"]: r for r in selection_cost_rows(selections)}
    longest = json.loads((run / "sel" / "longest-50.json").read_text())
    assert rows["longest"]["n_selections"] == 3
    assert rows["longest"]["scoring_usd"] == pytest.approx(longest["scores"]["length"]["cost"]["usd"])
    assert rows["random"]["scoring_usd"] == 0.0
    table6 = {r["strategy"]: r for r in selection_vs_full_rows(selections, trains)}
    assert table6["longest"]["full_finetune_usd"] == 8.0

    runner = CliRunner()
    result = runner.invoke(app, ["cost", str(run), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert {r["strategy"] for r in payload["selection_per_1k"]} == {"longest", "full", "random"}
    prices = tmp_path / "prices.yaml"
    prices.write_text("node_usd_per_hour: {default: 16.0}\n")
    repriced = json.loads(runner.invoke(app, ["cost", str(run), "--prices", str(prices), "--json"]).stdout
                          .strip().splitlines()[-1])
    full_usd = {r["strategy"]: r["full_finetune_usd"] for r in repriced["selection_vs_full"]}
    assert full_usd["longest"] == pytest.approx(16.0)
    human = runner.invoke(app, ["cost", str(run)])
    assert human.exit_code == 0 and "Table 2" in human.output and "Table 6" in human.output
    missing = runner.invoke(app, ["cost", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a folder" in missing.output


def test_bad_price_sheet_exits_2(tmp_path):
    prices = tmp_path / "p.yaml"
    prices.write_text("node_usd_per_hour: {default: -1}\n")
    result = CliRunner().invoke(app, ["cost", str(tmp_path), "--prices", str(prices)])
    assert result.exit_code == 2 and "node_usd_per_hour.default" in result.output
    assert load_price_sheet(None).node_rate("cuda") == 8.0


def test_published_training_output_links_by_dataset_and_size(tmp_path):
    data = _pool(tmp_path / "dolly", n=120)
    run = tmp_path / "run"
    manifest = run_selection(data, "longest", 60, run / "longest-60.json").manifest
    sha = manifest["dataset"]["sha256"]
    # What `selbench train --out` publishes: cost.json beside step_meta.json (no selection manifest for it).
    out = run / "train-all"
    out.mkdir()
    (out / "cost.json").write_text(json.dumps({"step": "train", "wall_seconds": 900.0, "usd": 2.0}))
    (out / "step_meta.json").write_text(json.dumps({"step": "train", "inputs": {"dataset": sha, "ids": "x" * 64},
                                                    "stats": {"n_examples": 120}, "cost": {"usd": 2.0}}))
    lora = run / "train-longest"
    lora.mkdir()
    (lora / "cost.json").write_text(json.dumps({"step": "train", "wall_seconds": 450.0, "usd": 1.0}))
    (lora / "train_config.json").write_text(json.dumps({"inputs": {"ids": manifest["ids_sha256"]}}))
    _, trains = collect_costs(run)
    assert sorted(trains, key=lambda t: t.usd) == [TrainCost(sha, "longest", 60, 1.0, 450.0),
                                                    TrainCost(sha, None, 120, 2.0, 900.0)]
    (row,) = selection_vs_full_rows(*collect_costs(run))
    assert row["full_finetune_usd"] == 2.0


def test_full_finetuning_is_projected_from_uniform_runs_when_never_run():
    sels = [_sel(budget=100), _sel("random", 100, scores=(), select_usd=0.5)]
    # A Longest subset has longer examples than the pool: random runs are the projection's basis.
    trains = [TrainCost("d", "longest", 100, 9.0, 900.0), TrainCost("d", "random", 100, 1.0, 100.0),
              TrainCost("d", "random", 300, 2.0, 200.0)]
    row = {r["strategy"]: r for r in selection_vs_full_rows(sels, trains)}["longest"]
    assert row["full_finetune_projected"] is True
    assert row["full_finetune_usd"] == pytest.approx(3.0 / 400 * 2000)
    assert row["full_finetune_seconds"] == pytest.approx(300.0 / 400 * 2000)
    measured = selection_vs_full_rows(sels, [*trains, TrainCost("d", "full", 2000, 50.0, 1.0)])[0]
    assert measured["full_finetune_projected"] is False and measured["full_finetune_usd"] == 50.0
