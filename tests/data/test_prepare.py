"""The prepare step: outputs, manifest, caching, and a key that changes with every input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from selbench.cli.main import app
from selbench.data import lengths
from selbench.data.prepare import prepare
from selbench.data.schema import dataset_sha256, read_examples, rows_sha256

ROWS = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, sleep, move."},
    {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
    {"instruction": "Name a prime number.", "input": "", "output": "7"},
]


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_prepare_writes_parquet_and_manifest(tmp_path):
    src = _jsonl(tmp_path / "alpaca.jsonl", ROWS)
    result = prepare("alpaca", src, tmp_path / "out")
    examples = read_examples(tmp_path / "out")
    assert [e.instruction for e in examples] == [r["instruction"] for r in ROWS]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["n"] == 3 and manifest["n_dropped"] == 0 and manifest["dropped"] == {}
    assert manifest["source"] == "alpaca" and manifest["input"] == str(src)
    assert manifest["sha256"] == rows_sha256(examples) == dataset_sha256(tmp_path / "out") == result["sha256"]
    from selbench.hashing import sha256_file

    assert manifest["input_sha256"] == sha256_file(src)
    tokens = manifest["tokens"]
    assert tokens["tokenizer"].startswith("gpt2-bpe")
    # "Name a prime number." is 5 GPT-2 tokens, "7" is one.
    assert tokens["output"]["count"] == 3 and tokens["output"]["max"] >= tokens["output"]["median"] >= 1
    assert tokens["instruction_input"]["max"] >= 5
    assert manifest["selbench_version"] and manifest["created"].endswith("Z")
    assert manifest["cost"]["wall_seconds"] > 0 and manifest["cost"]["tokens"] > 0


def test_token_lengths_are_gpt2_counts():
    counts = lengths.token_lengths(["Name a prime number.", "7", ""])
    assert counts.tolist() == [5, 1, 0]


def test_second_prepare_is_cached_and_cli_says_so(tmp_path):
    src = _jsonl(tmp_path / "alpaca.jsonl", ROWS)
    runner = CliRunner()
    args = ["data", "prepare", "--source", "alpaca", "--input", str(src), "--out", str(tmp_path / "a"), "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    first_json = _last_json(first.stdout)
    assert first_json["cached"] is False and first_json["n"] == 3 and first_json["n_dropped"] == 0
    args[args.index(str(tmp_path / "a"))] = str(tmp_path / "b")
    second_json = _last_json(runner.invoke(app, args).stdout)
    assert second_json["cached"] is True and second_json["sha256"] == first_json["sha256"]
    assert (tmp_path / "b" / "data.parquet").is_file()
    human = runner.invoke(app, args[:-1])
    assert human.exit_code == 0 and "cached" in human.stdout


def test_stats_command(tmp_path):
    src = _jsonl(tmp_path / "alpaca.jsonl", ROWS)
    prepare("alpaca", src, tmp_path / "out")
    result = CliRunner().invoke(app, ["data", "stats", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    stats = _last_json(result.stdout)
    assert stats["n"] == 3 and stats["sources"] == {"alpaca": 3} and stats["tokens"]["output"]["count"] == 3
    human = CliRunner().invoke(app, ["data", "stats", str(tmp_path / "out")])
    assert human.exit_code == 0 and "instruction_input" in human.stdout


def test_prepare_key_changes_with_every_input(tmp_path, monkeypatch):
    rows = [{"instruction": "q1", "output": "a1", "task": "t"}, {"instruction": "q2", "output": "a2", "task": "t"}]
    src = _jsonl(tmp_path / "in.jsonl", rows)

    def key(source="jsonl", path=src, **options):
        return prepare(source, path, tmp_path / "out", **options)["step_key"]

    base = key()
    assert key() == base
    variants = {
        "source": key(source="alpaca"),
        "max_per_task": key(max_per_task=7),
        "field_map": key(field_map={"task": "task"}),
        "max_chars": key(max_chars=999),
        "skip_invalid": key(skip_invalid=True),
        "input bytes": key(path=_jsonl(tmp_path / "other.jsonl", rows[:1])),
    }
    monkeypatch.setattr(lengths, "tokenizer_id", lambda: "another tokenizer")
    variants["tokenizer"] = key()
    assert all(v != base for v in variants.values()), variants
    assert len(set(variants.values())) == len(variants)


def test_token_statistics_of_a_big_pool_describe_its_smallest_ids(tmp_path, monkeypatch):
    """Over `lengths.SAMPLE_SIZE` examples the statistics are those of the SAMPLE_SIZE smallest ids: the same
    whatever the input order, and what counting those examples directly gives."""
    monkeypatch.setattr(lengths, "SAMPLE_SIZE", 40)
    monkeypatch.setattr("selbench.data.prepare.BATCH", 16)  # several batches, so the sample is really streamed
    rows = [{"instruction": f"Question {i}: " + "why " * (i % 7), "output": "because " * (i % 23 + 1)} for i in range(300)]
    tokens = []
    for name, order in (("fwd", rows), ("rev", rows[::-1])):
        prepare("alpaca", _jsonl(tmp_path / f"{name}.jsonl", order), tmp_path / name)
        tokens.append(json.loads((tmp_path / name / "manifest.json").read_text())["tokens"])
    assert tokens[0] == tokens[1]
    assert tokens[0]["sample"]["n"] == 40 and tokens[0]["sample"]["of"] == 300
    smallest = sorted(read_examples(tmp_path / "fwd"), key=lambda e: e.id)[:40]
    assert tokens[0]["output"] == lengths.summarize(lengths.token_lengths([e.output for e in smallest]))
    prompts = [e.instruction if not e.input else f"{e.instruction}\n\n{e.input}" for e in smallest]
    assert tokens[0]["instruction_input"] == lengths.summarize(lengths.token_lengths(prompts))


DUPLICATE_SOURCES = {
    # source: (a record, the same content with other whitespace or extra fields, a different record)
    "alpaca": ({"instruction": "Q", "input": "", "output": "A"}, {"instruction": "Q ", "output": "A\r\n"}, {"instruction": "Q", "output": "B"}),
    "jsonl": ({"instruction": "Q", "output": "A"}, {"instruction": "Q", "output": "A", "extra": 1}, {"instruction": "R", "output": "A"}),
    "dolly": ({"instruction": "Q", "context": "", "response": "A", "category": "qa"}, {"instruction": "Q", "context": "", "response": "A", "category": "other"}, {"instruction": "Q", "context": "c", "response": "A", "category": "qa"}),
    "flan": ({"inputs": "Q", "targets": "A", "task": "t1"}, {"inputs": "Q", "targets": "A", "task": "t2"}, {"inputs": "Q2", "targets": "A", "task": "t1"}),
    "evol": ({"instruction": "Q", "output": "A"}, {"instruction": "Q", "output": "A"}, {"instruction": "Q", "output": "C"}),
    "parquet": ({"instruction": "Q", "output": "A"}, {"instruction": "Q", "output": " A"}, {"instruction": "P", "output": "A"}),
}


@pytest.mark.parametrize("source", sorted(DUPLICATE_SOURCES))
def test_duplicates_are_dropped_and_counted_for_every_source(tmp_path, source):
    """Issue 10 item 4: an exact duplicate (same content, so same id) stopped `data prepare` (exit 2) unless
    --skip-invalid, which also swallows malformed records. Now it is dropped for every source, counted in the
    manifest's `dropped` and reported on stderr; the first occurrence is kept."""
    first, same, other = DUPLICATE_SOURCES[source]
    rows = [first, other, same, same]
    if source == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        src = tmp_path / "in.parquet"
        pq.write_table(pa.Table.from_pylist([{"instruction": r["instruction"], "output": r["output"]} for r in rows]), src)
    else:
        src = _jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "DIR"
    result = CliRunner().invoke(app, ["data", "prepare", "--source", source, "--input", str(src), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = _last_json(result.stdout)
    assert summary["n"] == 2 and summary["dropped"] == {"duplicate": 2} and summary["n_dropped"] == 2
    assert "dropped 2 exact duplicate record(s)" in result.stderr and "line 3" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dropped"] == {"duplicate": 2} and manifest["first_duplicate"]["line"] == 3
    assert "same content as line 1" in manifest["first_duplicate"]["message"]
    assert [e.instruction.strip() for e in read_examples(out)] == [first.get("instruction", first.get("inputs")), other.get("instruction", other.get("inputs"))]


@pytest.mark.slow
def test_prepare_packaged_sharegpt(tmp_path):
    """The whole packaged pool (~30 s on 2 CPU cores, mostly token counting)."""
    result = prepare("sharegpt", "sharegpt", tmp_path / "sg")
    assert 16_000 <= result["n"] <= 17_000 and result["truncated"] is not None
    # FastChat skips a leading gpt turn instead of dropping the piece: few are left without a human turn
    assert result["dropped"]["truncated"] == 1 and 0 < result["dropped"]["not_human_first"] < 500
    assert result["n"] + result["n_dropped"] == 17_672
