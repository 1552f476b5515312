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
