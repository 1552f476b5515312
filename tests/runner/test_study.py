"""`selbench run` end to end on the tiny grid of the issue: a 48-example pool, budget 8, Longest + 2 random
seeds, 2 training steps of a tiny random-init model, IFEval on 2 prompts. Dry run, local run, all-cached
re-run, the same grid on a local Ray cluster, and a SIGKILL in the middle of a run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from selbench.analysis.tables import read_items, read_results
from selbench.cli.main import app

REPO = Path(__file__).resolve().parents[2]
WORDS = ["red", "green", "blue", "amber", "violet", "cyan", "olive", "coral", "teal", "gold"]
ANALYSIS_COLUMNS = ("dataset", "budget", "strategy", "seed", "preset", "lora", "benchmark", "metric", "value",
                    "ids_sha256", "selection_cost_usd", "selection_seconds", "train_cost_usd", "train_seconds",
                    "full_train_cost_usd_projected")


def tiny_grid(tmp_path: Path, model: Path, out: str = "run") -> Path:
    rng = random.Random(0)
    pool = tmp_path / "pool.jsonl"
    with open(pool, "w") as fh:
        for i in range(60):
            output = " ".join(rng.choice(WORDS) for _ in range(1 + (i * 7) % 23))
            fh.write(json.dumps({"instruction": f"List some colours ({i}).", "output": output}) + "\n")
    grid = tmp_path / "tiny.yaml"
    grid.write_text(f"""\
out: {tmp_path / out}
model: {model}
datasets:
  pool: {{source: jsonl, input: {pool}, limit: 48}}
budgets: [8]
strategies:
  longest: {{}}
random: {{seeds: [0, 1]}}
train: {{presets: [demo], lora: true, set: {{max_steps: 2, max_length: 64, save_steps: 1}}}}
benchmarks:
  ifeval: {{limit: 2, max_new_tokens: 8}}
""")
    return grid


def invoke(*args: str) -> tuple[int, dict, str]:
    result = CliRunner().invoke(app, ["run", *args, "--json"])
    lines = result.stdout.strip().splitlines()
    return result.exit_code, json.loads(lines[-1]) if lines else {}, result.output


def subprocess_dry_run(grid: Path, cache: Path) -> dict:
    """A dry run in a fresh interpreter, reporting which heavy modules it imported."""
    script = ("import json, sys\nfrom selbench.runner.study import dry_run\n"
              f"out = dry_run({str(grid)!r}).summary()\n"
              "out['modules'] = [m for m in ('torch', 'transformers.modeling_utils', 'peft') "
              "if m in sys.modules]\nprint(json.dumps(out))\n")
    env = dict(os.environ, SELBENCH_CACHE=str(cache))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def step_dirs(cache: Path) -> set[str]:
    return {str(p.relative_to(cache)) for p in (cache / "steps").glob("*/*")} if (cache / "steps").is_dir() else set()


def selections(run: Path) -> dict[str, str]:
    return {p.stem: json.loads(p.read_text())["ids_sha256"] for p in (run / "selections/pool/b8").glob("*.json")}


def test_dry_run_plans_three_cells_and_computes_nothing(tmp_path, tiny_model_dir):
    grid = tiny_grid(tmp_path, tiny_model_dir)
    cache = tmp_path / "cache"
    summary = subprocess_dry_run(grid, cache)
    assert summary["cells"] == 3 and summary["cached"] == 0 and summary["to_run"] == summary["steps"] == 13
    assert summary["est_seconds"] > 0 and summary["est_cost_usd"] > 0
    assert summary["modules"] == [], "a dry run of a fresh grid imports no model code"
    assert not cache.exists() and not (tmp_path / "run").exists(), "a dry run writes nothing"
    code, out, _ = invoke(str(grid), "--dry-run")
    assert code == 0 and {"cells", "steps", "cached", "to_run", "est_seconds", "est_cost_usd"} <= set(out)


def test_tiny_grid_local_then_cached_then_ray(tmp_path, tiny_model_dir, monkeypatch):
    grid = tiny_grid(tmp_path, tiny_model_dir)
    cache = tmp_path / "cache"
    monkeypatch.setenv("SELBENCH_CACHE", str(cache))
    run = tmp_path / "run"
    code, first, output = invoke(str(grid), "--executor", "local")
    assert code == 0, output
    assert (first["cells"], first["done"], first["cached"], first["failed"]) == (3, 3, 0, 0)
    assert first["steps_run"] == 13 and first["cost_usd"] > 0 and first["spent_usd"] == first["cost_usd"]
    assert len(output.strip().splitlines()) == 1, f"only the JSON line reaches the terminal:\n{output}"
    # Library warnings and the Trainer's per-step logs go to each train step's own log (training/library_logs.py),
    # kept beside the model in the store, not to the terminal.
    from selbench.training.train import TEXT_LOG_FILE

    logged = "".join(p.read_text() for p in (cache / "steps" / "train").glob(f"*/{TEXT_LOG_FILE}"))
    assert "train_runtime" in logged and "FutureWarning" in logged, "training logs and warnings go to train.log"
    assert (run / "run.log").is_file()
    assert (run / "grid.yaml").is_file() and len(json.loads((run / "plan.json").read_text())["steps"]) == 13

    results = read_results(run / "results.parquet")  # the analysis's reader: columns and unique keys
    assert set(ANALYSIS_COLUMNS) <= set(results.columns)
    cells = results
    assert sorted(cells.cell.unique()) == ["pool/b8/longest/demo", "pool/b8/random-s0/demo", "pool/b8/random-s1/demo"]
    assert set(cells.metric) == {"prompt_strict", "inst_strict", "prompt_loose", "inst_loose"}
    assert len(cells) == 12
    base = pd.read_parquet(run / "base.parquet")
    assert len(base) == 4 and set(base.strategy) == {"base"} and base.dataset.isna().all()
    assert len(pd.read_parquet(run / "base_items.parquet")) == 2
    assert (cells.budget == 8).all() and cells.lora.all() and (cells.train_cost_usd > 0).all()
    assert (cells.full_train_cost_usd_projected > cells.train_cost_usd).all(), "48 examples cost more than 8"
    assert (cells[cells.strategy == "longest"].selection_seconds > 0).all()
    assert sorted(cells[cells.strategy == "random"].seed.unique()) == [0, 1]
    items = read_items(run / "items.parquet")
    assert len(items) == 3 * 2 and set(items.score) <= {0.0, 1.0}
    chosen = {name: json.loads((run / f"selections/pool/b8/{name}.json").read_text()) for name in selections(run)}
    assert chosen["random-s0"]["overlap"]["longest"] <= 0.3 and len(chosen["longest"]["ids"]) == 8
    model = run / "models" / "pool-b8-longest-demo"
    assert model.is_symlink() and (model / "adapter_config.json").is_file()
    assert str(model.resolve()).startswith(str(cache / "steps" / "train"))

    before = step_dirs(cache)
    code, again, output = invoke(str(grid))
    assert code == 0, output
    assert (again["done"], again["cached"], again["steps_run"], again["spent_usd"]) == (3, 3, 0, 0)
    assert again["cost_usd"] == first["cost_usd"], "the study's cost is the same whether or not it was cached"
    assert len(pd.read_parquet(run / "results.parquet")) == len(results)
    dry = subprocess_dry_run(grid, cache)
    assert dry["cached"] == dry["steps"] and dry["cells_cached"] == 3 and dry["est_seconds"] == 0
    assert not {"transformers.modeling_utils", "peft"} & set(dry["modules"]), "a dry run loads no model"
    assert step_dirs(cache) == before

    # The same grid on a local Ray cluster, from an empty store: the same selections.
    monkeypatch.setenv("SELBENCH_CACHE", str(tmp_path / "cache-ray"))
    code, on_ray, output = invoke(str(grid), "--executor", "ray", "--out", str(tmp_path / "run-ray"))
    assert code == 0, output
    assert (on_ray["done"], on_ray["failed"], on_ray["steps_run"]) == (3, 0, 13)
    assert selections(tmp_path / "run-ray") == selections(run)
    assert len(pd.read_parquet(tmp_path / "run-ray" / "results.parquet")) == len(results)


def test_sigkill_mid_run_then_rerun_redoes_no_finished_training(tmp_path, tiny_model_dir, monkeypatch):
    grid = tiny_grid(tmp_path, tiny_model_dir)
    cache = tmp_path / "cache"
    env = dict(os.environ, SELBENCH_CACHE=str(cache))
    argv = [sys.executable, "-m", "selbench.cli.main", "run", str(grid), "--json"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.time() + 600
    finished: list[Path] = []
    while not finished:
        assert process.poll() is None, f"the run ended before a training step finished: {process.stderr.read()}"
        assert time.time() < deadline, "no training step finished in time"
        finished = list((cache / "steps" / "train").glob("*/meta.json"))
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = {p.parent.name: p.stat().st_mtime_ns for p in (cache / "steps" / "train").glob("*/meta.json")}
    assert killed_at and len(killed_at) < 3, "killed while training"

    monkeypatch.setenv("SELBENCH_CACHE", str(cache))
    code, rerun, output = invoke(str(grid))
    assert code == 0, output
    assert (rerun["done"], rerun["failed"]) == (3, 0) and rerun["steps_run"] >= 1
    for key, mtime in killed_at.items():
        assert (cache / "steps" / "train" / key / "meta.json").stat().st_mtime_ns == mtime, "finished training redone"
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    trains = {s["key"]: s for s in plan["steps"] if s["kind"] == "train"}
    assert len(trains) == 3 and all(trains[key]["cached"] for key in killed_at), "reported as cached"
    assert sum(not s["cached"] for s in trains.values()) == 3 - len(killed_at)
    code, third, output = invoke(str(grid))
    assert code == 0 and (third["cached"], third["steps_run"]) == (3, 0), output


def test_benchmarks_and_a_failing_cell(tmp_path, tiny_model_dir, shared_data, monkeypatch):
    """LLMBar and the AlpacaEval head-to-head (judged by a local model served for the step) on every cell; a
    strict-random draw that cannot be met fails its own cell only, and the run exits 1; the grid's prices."""
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"instruction": f"Count to {i}.", "output": " ".join(["one"] * (i + 1))}) + "\n"
                            for i in range(12)))
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"""\
out: {tmp_path / "run"}
model: {tiny_model_dir}
evaluate_base: false
datasets:
  pool: {{source: jsonl, input: {pool}}}
budgets: [4, 8]
strategies:
  longest: {{}}
random: {{seeds: [0], strict: true}}
train: {{presets: [demo], lora: true, set: {{max_steps: 1, max_length: 32}}}}
benchmarks:
  llmbar: {{limit: 1, data_dir: {shared_data / "llmbar"}}}
  alpacaeval: {{limit: 1, max_new_tokens: 4, judge: {{model: {tiny_model_dir}}}}}
prices: {{node_usd_per_hour: {{default: 0.0}}}}
""")
    monkeypatch.setenv("SELBENCH_CACHE", str(tmp_path / "cache"))
    code, out, output = invoke(str(grid))
    assert code == 1, output
    assert (out["cells"], out["done"], out["failed"]) == (6, 5, 1)
    assert [f["step"] for f in out["failures"]] == ["select/pool/b8/strict-random-s0"]
    assert "cannot be met" in out["failures"][0]["error"]
    results = pd.read_parquet(tmp_path / "run" / "results.parquet")
    # The grid's price sheet (free machines, a local judge) prices every dollar column and the summary.
    assert out["cost_usd"] == 0 and (results[["selection_cost_usd", "train_cost_usd", "eval_cost_usd"]] == 0).all().all()
    assert (results.train_seconds > 0).all()
    llmbar = results[results.benchmark == "llmbar"]
    assert len(llmbar.cell.unique()) == 5 and set(llmbar.metric) == {"accuracy", "agreement"}
    h2h = results[results.benchmark == "alpacaeval"]
    assert sorted(h2h.cell.unique()) == ["pool/b4/longest/demo", "pool/b4/strict-random-s0/demo",
                                         "pool/b8/longest/demo"]
    assert set(h2h.metric) == {"win_rate", "mean_adjusted_win_rate"}
    items = pd.read_parquet(tmp_path / "run" / "items.parquet")
    assert set(items[items.benchmark == "alpacaeval"].opponent_seed.dropna()) <= {0}
    assert items[items.benchmark == "llmbar"].score.between(0, 1).all()


@pytest.mark.slow
def test_demo_grid_on_smollm2_in_miniature(tmp_path, shared_data, monkeypatch):
    """configs/demo.yaml as shipped (packaged ShareGPT pool, SmolLM2, every strategy with AlpaGasus' judge and
    the head-to-head's served on 127.0.0.1, LoRA, IFEval, LLMBar), shrunk to a handful of items and one training step per model."""
    import yaml

    grid = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    grid["out"] = str(tmp_path / "demo")
    grid["datasets"]["sharegpt"]["limit"] = 64
    grid["budgets"] = [8]
    grid["random"]["seeds"] = [0]
    grid["train"]["set"].update(max_steps=1, max_length=128)
    for name in ("superfilter", "cherry", "rds"):
        grid["strategies"][name]["max_length"] = 128
    grid["strategies"]["alpagasus"]["pool_size"] = 16  # the served judge rates a seeded 16 of the 64
    grid["benchmarks"]["ifeval"].update(limit=1, max_new_tokens=16)
    grid["benchmarks"]["llmbar"].update(limit=1, data_dir=str(shared_data / "llmbar"))
    grid["benchmarks"]["alpacaeval"].update(limit=1, max_new_tokens=16)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(grid))
    monkeypatch.setenv("SELBENCH_CACHE", str(tmp_path / "cache"))
    code, out, output = invoke(str(path))
    assert code == 0, output
    # longest, alpagasus, superfilter, cherry, deita, rds, kcenter, random-s0, strict-random-s0
    assert (out["cells"], out["done"], out["failed"]) == (9, 9, 0), output
    results = read_results(tmp_path / "demo" / "results.parquet")
    assert set(results.benchmark) == {"ifeval", "llmbar", "alpacaeval"}
    assert set(results[results.benchmark == "alpacaeval"].strategy) == {
        "longest", "alpagasus", "superfilter", "cherry", "deita", "rds", "kcenter", "strict-random"}
    assert len(pd.read_parquet(tmp_path / "demo" / "base.parquet").benchmark.unique()) == 2
