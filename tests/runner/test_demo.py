"""`selbench demo`: the packaged demo grid scaled by `--size`, run with `selbench run`, then reported.

The shipped grid takes tens of minutes on 2 cores, so the end-to-end test runs the demo's code path on a
tiny grid (a 48-example pool, a tiny random-init model, IFEval on 4 prompts); `make demo` runs the real one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from selbench.cli.main import app
from selbench.errors import InputError
from selbench.runner.demo import DEMO_GRID, SIZES, demo_grid, run_demo
from selbench.runner.grid import load_grid

REPO = Path(__file__).resolve().parents[2]


def test_the_packaged_grid_is_configs_demo_yaml():
    assert DEMO_GRID.read_text(encoding="utf-8") == (REPO / "configs" / "demo.yaml").read_text(encoding="utf-8")
    assert demo_grid("small") == yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("size", list(SIZES))
def test_every_size_is_a_valid_grid_of_the_same_study(size, tmp_path):
    path = tmp_path / f"{size}.yaml"
    path.write_text(yaml.safe_dump(demo_grid(size)))
    grid = load_grid(path, allow_unregistered=True)
    small = load_grid(DEMO_GRID, allow_unregistered=True)
    # The same study: model, strategies, random baselines, presets and benchmarks; only the scale changes.
    assert grid.model == small.model and grid.random == small.random
    # The same strategies with the same options, but the rated AlpaGasus pool: the small demo rates a seeded
    # 64 of its 128 examples, bigger ones the study preset's 40,000.
    assert sorted(grid.strategies) == sorted(small.strategies)
    for name, params in grid.strategies.items():
        expected = dict(small.strategies[name] or {})
        if size != "small":
            expected.pop("pool_size", None)
        assert dict(params or {}) == expected, name
    assert grid.train.presets == small.train.presets and grid.benchmarks.names() == small.benchmarks.names()
    assert str(grid.out) == SIZES[size].out


def test_bigger_sizes_scale_data_budgets_and_benchmarks_up():
    grids = [demo_grid(size) for size in ("small", "medium", "large")]

    def pool(g):
        return min(d.get("limit") or 16_578 for d in g["datasets"].values())

    def items(g, bench):
        return g["benchmarks"][bench].get("limit") or 10_000

    for smaller, bigger in zip(grids, grids[1:], strict=False):
        assert pool(bigger) > pool(smaller)
        assert min(bigger["budgets"]) > max(smaller["budgets"])
        assert bigger["train"]["set"]["max_length"] > smaller["train"]["set"]["max_length"]
        for bench in ("ifeval", "llmbar", "alpacaeval"):
            assert items(bigger, bench) > items(smaller, bench)
    assert items(grids[1], "ifeval") >= 100  # medium's benchmarks are no longer "tiny" by the report's rule


def test_an_unknown_size_is_a_usage_error():
    with pytest.raises(InputError, match="'huge' is not one of small, medium, large"):
        demo_grid("huge")
    result = CliRunner().invoke(app, ["demo", "--size", "huge"])
    assert result.exit_code == 2 and "huge" in result.output


def _tiny_grid(tmp_path: Path, model: Path) -> Path:
    rng = random.Random(0)
    pool = tmp_path / "pool.jsonl"
    words = ["red", "green", "blue", "amber", "violet", "cyan", "olive", "coral", "teal", "gold"]
    pool.write_text("".join(json.dumps({"instruction": f"List some colours ({i}).",
                                        "output": " ".join(rng.choice(words) for _ in range(1 + (i * 7) % 23))}) + "\n"
                            for i in range(60)))
    grid = tmp_path / "tiny.yaml"
    grid.write_text(yaml.safe_dump({
        "out": str(tmp_path / "ignored"), "model": str(model),
        "datasets": {"pool": {"source": "jsonl", "input": str(pool), "limit": 48}},
        "budgets": [8], "strategies": {"longest": {}}, "random": {"seeds": [0, 1, 2], "strict": True},
        "train": {"presets": ["demo"], "lora": True, "set": {"max_steps": 1, "max_length": 64}},
        "benchmarks": {"ifeval": {"limit": 4, "max_new_tokens": 8}}}))
    return grid


def test_the_demo_runs_its_grid_and_writes_the_report(tmp_path, tiny_model_dir):
    out = tmp_path / "demo"
    result = run_demo("small", grid=_tiny_grid(tmp_path, tiny_model_dir), out=out, progress=False)
    assert result["run"]["cells"] == 5 and result["run"]["failed"] == 0  # longest, 3 random, strict-random
    assert Path(result["report"]) == out / "report" / "report.html"
    assert {p.name for p in (out / "report").iterdir()} == {"report.html", "report.md", "report.json"}
    assert (out / "demo.yaml").is_file() and (out / "grid.yaml").is_file()  # the grid that ran, and resolved
    # The terminal text: the caveats (a tiny model on 4 prompts), then the verdict table.
    text = result["text"]
    assert text.startswith("These numbers show the machinery, not a finding.")
    assert "Strategy" in text and "longest" in text and "strict-random s0" in text
    doc = json.loads(Path(result["json"]).read_text(encoding="utf-8"))
    assert doc["sections"][0]["id"] == "verdict" and sum(doc["summary"]["verdicts"].values()) == 2
    assert result["seconds"] > 0

    # Everything is cached: a second demo computes nothing and reports the same verdicts.
    again = run_demo("small", grid=_tiny_grid(tmp_path, tiny_model_dir), out=out, progress=False)
    assert again["run"]["steps_run"] == 0 and again["verdicts"] == result["verdicts"]

    # `selbench run` writes the same report at its end.
    ran = CliRunner().invoke(app, ["run", str(out / "demo.yaml"), "--out", str(tmp_path / "run"), "--json"])
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.stdout.strip().splitlines()[-1])
    assert Path(summary["report"]) == tmp_path / "run" / "report" / "report.html" and Path(summary["report"]).is_file()
