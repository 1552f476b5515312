"""The grid file: defaults, and bad keys or values named with the file's line and the dotted field."""

from __future__ import annotations

from pathlib import Path

import pytest

from selbench.errors import InputError
from selbench.runner.grid import grid_yaml, load_grid, unregistered_strategies

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """\
datasets:
  pool: {source: jsonl, input: pool.jsonl}
budgets: [16, 4]
strategies:
  longest: {}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, **options) -> InputError:
    with pytest.raises(InputError) as info:
        load_grid(write(tmp_path, text), **options)
    return info.value


def test_minimal_grid_gets_every_default(tmp_path):
    grid = load_grid(write(tmp_path, MINIMAL))
    assert grid.budgets == [4, 16]  # sorted
    assert grid.model == "smollm2-135m-instruct" and grid.out == "runs/study"
    assert grid.random.seeds == [0, 1, 2] and grid.random.max_overlap == 0.3 and grid.random.strict_seeds == []
    assert grid.train.presets == ["set4-lora"] and grid.benchmarks.names() == []
    assert grid.executor.kind == "local" and grid.evaluate_base
    # The resolved grid round-trips through its YAML.
    again = load_grid(write(tmp_path, grid_yaml(grid)))
    assert again == grid


def test_strict_random_seeds(tmp_path):
    assert load_grid(write(tmp_path, MINIMAL + "random: {seeds: [3, 4], strict: true}\n")).random.strict_seeds == [3]
    assert load_grid(write(tmp_path, MINIMAL + "random: {strict: [7, 8]}\n")).random.strict_seeds == [7, 8]


@pytest.mark.parametrize(
    ("extra", "line", "field", "says"),
    [
        ("random: {seeds: [0], max_overlp: 0.2}\n", 6, "random.max_overlp", "unknown key"),
        ("random:\n  seeds: [0]\n  max_overlap: 3\n", 8, "random.max_overlap", "less than or equal to 1"),
        ("random: {seeds: [1, 1]}\n", 6, "random.seeds", "must not repeat"),
        ("random: {strict: [1, x]}\n", 6, "random.strict", "list of integer seeds"),
        ("train:\n  presets: [demo]\n  set:\n    max_stepz: 3\n", 9, "train.set.max_stepz", "did you mean 'max_steps'"),
        ("train:\n  set: {max_steps: -5}\n", 7, "train.set.max_steps", "-1 or > 0"),
        ("train: {presets: [set9]}\n", 6, "train.presets", "unknown preset"),
        ("benchmarks:\n  ifeval: {limit: 0}\n", 7, "benchmarks.ifeval.limit", "greater than or equal to 1"),
        ("benchmarks:\n  llmbar: {subset: nat}\n", 7, "benchmarks.llmbar.subset", "natural"),
        ("benchmarks:\n  mmlu: {}\n", 7, "benchmarks.mmlu", "unknown key"),
        ("benchmarks:\n  alpacaeval: {limit: 3}\n", 7, "benchmarks.alpacaeval.judge", "missing"),
        ("executor: {kind: slurm}\n", 6, "executor.kind", "'local' or 'ray'"),
        ("outt: runs/x\n", 6, "outt", "unknown key"),
    ],
)
def test_bad_key_or_value_names_line_and_field(tmp_path, extra, line, field, says):
    err = error_of(tmp_path, MINIMAL + extra)
    assert err.path == str(tmp_path / "grid.yaml") and err.line == line and err.field == field, err.one_line()
    assert says in err.message, err.one_line()


def test_registry_names_are_checked_with_suggestions(tmp_path):
    err = error_of(tmp_path, MINIMAL.replace("longest: {}", "longst: {}"))
    assert (err.line, err.field) == (5, "strategies.longst") and "did you mean 'longest'" in err.message
    err = error_of(tmp_path, MINIMAL.replace("source: jsonl", "source: jsnl"))
    assert (err.line, err.field) == (2, "datasets.pool.source") and "did you mean 'jsonl'" in err.message
    err = error_of(tmp_path, MINIMAL.replace("longest: {}", "longest: {depth: 3}"))
    assert (err.line, err.field) == (5, "strategies.longest") and "depth" in err.message
    err = error_of(tmp_path, MINIMAL.replace("longest: {}", "random: {}"))
    assert err.field == "strategies" and "'random' section" in err.message


def test_bad_structure(tmp_path):
    err = error_of(tmp_path, MINIMAL + "budgets: [3]\n")
    assert (err.line, err.field) == (6, "budgets") and "repeats line 3" in err.message
    err = error_of(tmp_path, "datasets: [\n")
    assert err.line == 2 and "not valid YAML" in err.message
    err = error_of(tmp_path, "budgets: [3]\nstrategies: {longest: {}}\n")
    assert err.field == "datasets" and "missing" in err.message
    err = error_of(tmp_path, MINIMAL.replace("budgets: [16, 4]", "budgets: [16, 0]"))
    assert (err.line, err.field) == (3, "budgets")
    err = error_of(tmp_path, MINIMAL.replace("pool:", "my/pool:"))
    assert err.field == "datasets" and "folder names" in err.message
    err = error_of(tmp_path, "- a\n- b\n")
    assert "mapping" in err.message
    with pytest.raises(InputError, match="not found"):
        load_grid(tmp_path / "absent.yaml")


def test_unregistered_strategies_only_when_allowed(tmp_path):
    text = MINIMAL + "  not-yet-written: {model: x}\n"
    err = error_of(tmp_path, text)
    assert (err.line, err.field) == (6, "strategies.not-yet-written")
    grid = load_grid(write(tmp_path, text), allow_unregistered=True)
    assert unregistered_strategies(grid) == ["not-yet-written"]


def test_shipped_configs_validate():
    demo = load_grid(REPO / "configs" / "demo.yaml")
    assert demo.model == "smollm2-135m-instruct" and demo.random.strict_seeds == [0]
    assert demo.benchmarks.names() == ["ifeval", "llmbar", "alpacaeval"]
    paper = load_grid(REPO / "configs" / "paper.yaml", allow_unregistered=True)
    assert paper.model == "hf://meta-llama/Llama-2-7b-hf" and paper.budgets == [1000, 5000, 10000]
    assert set(paper.datasets) == {"alpaca", "dolly", "flan", "evol"} and paper.datasets["flan"].max_per_task == 50
    assert set(paper.strategies) == {"longest", "alpagasus", "cherry", "deita"}
    assert paper.train.presets == ["set1", "set2", "set3", "set4-lora"] and paper.random.seeds == [0, 1, 2]
    assert paper.benchmarks.alpacaeval.judge.model == "gpt-4-turbo"


def test_a_near_miss_is_a_typo_even_in_a_dry_run(tmp_path):
    err = error_of(tmp_path, MINIMAL.replace("longest: {}", "longst: {}"), allow_unregistered=True)
    assert "did you mean 'longest'" in err.message
