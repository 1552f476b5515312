"""The dry run's estimate: model sizes without loading, throughputs from the store's cost records, defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selbench.runner.estimate import DEFAULTS, estimate, measure_throughputs, model_params
from selbench.runner.grid import grid_from_dict
from selbench.runner.plan import build_plan, node_status
from selbench.store import StepStore


def test_model_params_without_loading(tiny_model_dir):
    assert model_params("hf://meta-llama/Llama-2-7b-hf") == 7e9
    assert model_params("smollm2-135m-instruct") == 135e6
    assert model_params("hf://Qwen/Qwen2.5-0.5B-Instruct") == 0.5e9
    assert model_params("my-model") == 1e9
    config = json.loads((Path(tiny_model_dir) / "config.json").read_text())
    h, v = config["hidden_size"], config["vocab_size"]
    assert v * h < model_params(str(tiny_model_dir)) < v * h + 100 * h * h


def record_training(store: StepStore, model: str, tokens: float, seconds: float, device: str = "cpu") -> None:
    """A finished `train` entry as the training stage writes it (stats, cost record, train_config.json)."""

    def compute(tmp: Path) -> dict:
        (tmp / "train_config.json").write_text(json.dumps({"model": model}))
        return {"train_tokens": tokens, "train_seconds": seconds,
                "cost": {"step": "train", "wall_seconds": seconds, "device_kind": device, "usd": 0.01}}

    store.run("train", 3, {"model": model, "tokens": tokens}, {}, compute)


def test_throughputs_come_from_cost_records(tmp_path):
    store = StepStore(tmp_path / "cache")
    fresh = measure_throughputs(store, "hf://org/model-7b", device="cpu")
    assert fresh.sources == {"train": "default", "generate": "default"}
    assert fresh.train_tokens_per_s == pytest.approx(DEFAULTS["cpu"]["train_tokens_per_s"] * 135e6 / 7e9)
    record_training(store, "smollm2-135m-instruct", tokens=4000, seconds=10)
    same = measure_throughputs(store, "smollm2-135m-instruct", device="cpu")
    assert same.train_tokens_per_s == pytest.approx(400.0) and same.sources["train"] == "measured (1 runs)"
    # Another model's speed is scaled by size: twice the parameters, half the tokens per second.
    assert measure_throughputs(store, "x-270m", device="cpu").train_tokens_per_s == pytest.approx(200.0)
    # Records of other devices do not count.
    assert measure_throughputs(store, "smollm2-135m-instruct", device="cuda").sources["train"] == "default"


def test_estimate_covers_what_is_left(tmp_path):
    grid = grid_from_dict({
        "out": str(tmp_path / "run"), "model": "hf://meta-llama/Llama-2-7b-hf",
        "datasets": {"alpaca": {"source": "alpaca", "input": "hf://tatsu-lab/alpaca"}},
        "budgets": [1000], "strategies": {"longest": {}}, "random": {"seeds": [0]},
        "train": {"presets": ["set1"]},
        "benchmarks": {"ifeval": {}, "alpacaeval": {"judge": {"model": "gpt-4-turbo"}}},
    })
    plan = build_plan(grid)
    store = StepStore(tmp_path / "cache")
    status = node_status(plan, store)
    gpu = estimate(plan, status, store, device="cuda")
    assert set(gpu.seconds) == set(plan.nodes) and all(s > 0 for s in gpu.seconds.values())
    train = gpu.seconds["train/alpaca/b1000/longest/set1"]
    # 1000 examples x (300 tokens + 20) x 3 epochs at the GPU node's default speed.
    assert train == pytest.approx(1000 * 320 * 3 / DEFAULTS["cuda"]["train_tokens_per_s"])
    judge = gpu.usd["eval/alpacaeval/alpaca/b1000/longest/set1"] - gpu.seconds["eval/alpacaeval/alpaca/b1000/longest/set1"] * 8 / 3600
    assert judge == pytest.approx(805 * 2 * (1000 * 10.0 + 1 * 30.0) / 1e6), "GPT-4-turbo list price, both orders"
    cpu = estimate(plan, status, store, device="cpu")
    assert cpu.total_seconds > 10 * gpu.total_seconds
