"""`selbench train` per the command-line contract: --json keys, exit 2 with a one-line error on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from selbench.cli.main import app
from selbench.data.schema import Example, dataset_sha256, read_examples, write_examples


def make_data(root: Path) -> Path:
    write_examples([Example(instruction=f"Q{i}?", output=f"A{i}.") for i in range(6)], root / "data" / "data.parquet")
    return root / "data"


def invoke(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def test_train_json_output_and_cache_hit(tiny_model_dir, tmp_path):
    data = make_data(tmp_path)
    ids = [e.id for e in read_examples(data)][:4]
    sel = tmp_path / "sel.json"
    sel.write_text(json.dumps({"ids": ids, "dataset": {"sha256": dataset_sha256(data)}}))
    args = ["--model", str(tiny_model_dir), "--data", str(data), "--selection", str(sel), "--preset", "demo",
            "--lora", "--out", str(tmp_path / "out"), "--set", "max_steps=2", "--set", "effective_batch_size=2",
            "--set", "per_device_batch_size=2", "--json"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("train_tokens", "tokens_per_s", "seconds", "cost_usd", "final_loss", "first_loss", "out", "cached"):
        assert key in payload
    assert payload["n_trained"] == 4 and payload["global_step"] == 2 and not payload["cached"]
    assert (tmp_path / "out" / "adapter_config.json").is_file()
    again = invoke(*args)
    assert json.loads(again.stdout.strip().splitlines()[-1])["cached"] is True


def test_bad_inputs_exit_2_with_one_line(tiny_model_dir, tmp_path):
    data = make_data(tmp_path)
    common = ["--model", str(tiny_model_dir), "--data", str(data), "--out", str(tmp_path / "out")]
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"ids": [read_examples(data)[0].id, "nope"], "dataset": {"sha256": dataset_sha256(data)}}))
    result = invoke(*common, "--selection", str(unknown), "--preset", "demo")
    assert result.exit_code == 2
    assert f"error: {unknown}:1: field 'ids': id 'nope' is not in" in result.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"ids": [read_examples(data)[0].id], "dataset": {"sha256": "0" * 64}}))
    result = invoke(*common, "--selection", str(other), "--preset", "demo")
    assert result.exit_code == 2 and "field 'dataset.sha256'" in result.stderr
    result = invoke(*common, "--preset", "set9")
    assert result.exit_code == 2 and "--preset 'set9'" in result.stderr
    result = invoke(*common, "--preset", "demo", "--set", "lora_rank=4")
    assert result.exit_code == 2 and "did you mean 'lora_r'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_dropped_examples_are_reported_with_their_reason(tiny_model_dir, tmp_path, caplog):
    """Issue 10, item 6: examples whose prompt fills max_length are counted by reason, on stderr and in --json."""
    long_prompt = "Explain this: " + "word " * 200
    examples = [Example(instruction=f"Q{i}?", output=f"A{i}.") for i in range(4)]
    examples += [Example(instruction=f"{long_prompt} {i}", output="Short.") for i in range(2)]
    write_examples(examples, tmp_path / "data" / "data.parquet")
    args = ["--model", str(tiny_model_dir), "--data", str(tmp_path / "data"), "--preset", "demo", "--lora",
            "--out", str(tmp_path / "out"), "--set", "max_steps=1", "--set", "max_length=64", "--set",
            "effective_batch_size=2", "--set", "per_device_batch_size=2", "--json"]
    for attempt in ("fresh", "cached"):
        caplog.clear()
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout.strip().splitlines()[-1])
        assert payload["cached"] is (attempt == "cached")
        assert payload["n_trained"] == 4 and payload["dropped"] == 2
        assert payload["dropped_by_reason"] == {"too_long": 2}
        # the CLI's log lines go to stderr (pytest's caplog holds them here)
        assert "dropped 2: 2 because the prompt fills max_length=64" in caplog.text, caplog.text
