"""`selbench run`: bad grids and bad options exit 2 with one line naming the file, line and field, and write
nothing; the dry run's JSON keys and human table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selbench.cli.main import app

REPO = Path(__file__).resolve().parents[2]


def invoke(*args):
    return CliRunner().invoke(app, ["run", *(str(a) for a in args)])


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.fixture
def grid(tmp_path) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(f"out: {tmp_path / 'run'}\ndatasets:\n  d: {{source: jsonl, input: {tmp_path / 'd.jsonl'}}}\n"
                    "budgets: [4]\nstrategies:\n  longest: {}\n")
    return path


def test_bad_grid_names_file_line_and_field(grid, tmp_path):
    grid.write_text(grid.read_text().replace("budgets: [4]", "budgets: [4]\nseeds: [1]"))
    line = one_error_line(invoke(grid))
    assert line == f"error: {grid}:5: field 'seeds': unknown key (not allowed here; check its spelling)"
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
    grid.write_text(grid.read_text().replace("seeds: [1]\n", "").replace("longest", "longst"))
    assert "did you mean 'longest'" in one_error_line(invoke(grid, "--dry-run"))


def test_bad_options(grid):
    assert "field 'executor'" in one_error_line(invoke(grid, "--executor", "slurm"))
    assert "field 'address'" in one_error_line(invoke(grid, "--address", "auto"))
    assert "field 'address'" in one_error_line(invoke(grid, "--executor", "local", "--address", "auto"))
    line = one_error_line(invoke(grid, "--executor", "ray", "--address", "127.0.0.1:9"))
    assert "field 'address'" in line and "no Ray cluster answers at 127.0.0.1:9" in line
    assert "field 'address'" in one_error_line(invoke(grid, "--executor", "ray", "--address", "nowhere"))
    assert not (grid.parent / "run").exists()
    assert "field 'device'" in one_error_line(invoke(grid, "--device", "tpu", "--dry-run"))
    assert "not found" in one_error_line(invoke(grid.with_name("absent.yaml")))


def test_dry_run_json_and_table(grid, tmp_path):
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"instruction": f"q{i}", "output": "a" * i}) + "\n"
                                              for i in range(1, 9)))
    result = invoke(grid, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # longest + 3 random seeds at budget 4, one preset (set4-lora): 4 cells; no benchmark.
    assert (out["cells"], out["steps"], out["cached"], out["to_run"]) == (4, 1 + 1 + 4 + 4, 0, 10)
    assert out["est_seconds"] > 0 and out["est_cost_usd"] > 0 and out["throughputs"]["sources"]["train"]
    table = invoke(grid, "--dry-run")
    assert table.exit_code == 0 and "d/b4/random-s2/set4-lora" in table.stdout and "to run" in table.stdout
    assert not (tmp_path / "run").exists()


def test_paper_grid_dry_run_plans_the_study():
    result = invoke(REPO / "configs" / "paper.yaml", "--dry-run", "--json", "--device", "cuda")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # 4 datasets x 3 budgets x (4 strategies + 3 random seeds + 1 strict-random) x 4 presets.
    assert out["cells"] == 4 * 3 * 8 * 4 == 384
    assert out["by_kind"]["train"]["steps"] == 384 and out["by_kind"]["select"]["steps"] == 96
    assert out["est_seconds"] > 0 and out["est_cost_usd"] > 0 and out["throughputs"]["device"] == "cuda"


def test_a_dry_run_downloads_no_hub_dataset_and_reads_a_prepared_ones_identity(local_hub, tmp_path):
    """A grid on an `hf://` dataset: the dry run asks the hub nothing (its prepare step is "to run"); once the
    dataset has been prepared, a dry run knows the step's key from the identity recorded then, and still asks
    the hub nothing."""
    repo = tmp_path / "tiny-alpaca"
    repo.mkdir()
    (repo / "data.jsonl").write_text("".join(json.dumps({"instruction": f"Task {i}.", "input": "",
                                                          "output": "word " * (i + 1)}) + "\n" for i in range(12)))
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"out: {tmp_path / 'run'}\ndatasets:\n  d: {{source: alpaca, input: 'hf://org/tiny-alpaca'}}\n"
                    "budgets: [4]\nstrategies:\n  longest: {}\n")
    run, hub = local_hub({("dataset", "org/tiny-alpaca"): repo})
    first = run(["selbench", "run", str(grid), "--dry-run", "--json"])
    assert first.returncode == 0, first.stderr[-2000:]
    plan = json.loads(first.stdout.strip().splitlines()[-1])
    assert plan["cached"] == 0 and plan["to_run"] == plan["steps"] and hub.requests == []
    prepared = run(["selbench", "data", "prepare", "--source", "alpaca", "--input", "hf://org/tiny-alpaca",
                    "--out", str(tmp_path / "prepared"), "--json"])
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    asked = len(hub.requests)
    assert asked > 0
    again = run(["selbench", "run", str(grid), "--dry-run", "--json"])
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(hub.requests) == asked and json.loads(again.stdout.strip().splitlines()[-1])["cached"] == 1
    assert not (tmp_path / "run").exists()
