"""Bad input through the CLI: exit 2, one `error: FILE:LINE: field 'x': ...` line, no traceback, no output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selbench.cli.main import app

GOOD = {"instruction": "Say hi", "input": "", "output": "hi"}
SELBENCH = Path(sys.executable).with_name("selbench")


def _line(obj) -> str:
    return json.dumps(obj)


def _invoke(*args: str):
    result = CliRunner().invoke(app, ["data", "prepare", *args])
    return result.exit_code, result.stdout, result.stderr


def _assert_one_line_error(code: int, stderr: str, *parts: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def test_acceptance_broken_line_2_exits_2_and_names_it(tmp_path):
    """The exact check: a JSONL file whose line 2 is broken."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_line(GOOD) + "\n" + '{"instruction": "oops", "output": \n' + _line({**GOOD, "output": "hello"}) + "\n")
    out = tmp_path / "DIR"
    env = {**os.environ, "SELBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [str(SELBENCH), "data", "prepare", "--source", "jsonl", "--input", str(bad), "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    _assert_one_line_error(proc.returncode, proc.stderr, f"{bad}:2: ", "not valid JSON")
    assert not (out / "data.parquet").exists()


CASES = {
    "missing field": ([GOOD, {"instruction": "x"}], ["--source", "alpaca"], (":2: ", "field 'output'", "missing")),
    "wrong type": ([GOOD, GOOD | {"output": "b"}, {"instruction": "x", "output": 3}], ["--source", "alpaca"], (":3: ", "field 'output'", "expected a string")),
    "empty output": ([{**GOOD, "output": " \n\t"}], ["--source", "alpaca"], (":1: ", "field 'output'", "empty")),
    "empty instruction": ([GOOD, {"instruction": "  ", "output": "b"}], ["--source", "alpaca"], (":2: ", "field 'instruction'", "empty")),
    # A duplicate before it does not hide a malformed record: duplicates are dropped, malformed ones stay fatal.
    "missing field after a duplicate": ([GOOD, {**GOOD, "output": "hi  "}, {"instruction": "x"}], ["--source", "alpaca"], (":3: ", "field 'output'", "missing")),
    "too long": ([GOOD, {**GOOD, "output": "x" * 80}], ["--source", "alpaca", "--max-chars", "50"], (":2: ", "more than max_chars=50")),
    "not an object": ([GOOD, [1, 2]], ["--source", "alpaca"], (":2: ", "must be a JSON object")),
    "dolly field names": ([{"instruction": "q", "context": "", "category": "open_qa"}], ["--source", "dolly"], (":1: ", "field 'response'")),
    "mapped field names": ([{"prompt": "q", "completion": 5}], ["--source", "jsonl", "--field", "instruction=prompt", "--field", "output=completion"], (":1: ", "field 'completion'")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_record_cases(tmp_path, case):
    rows, options, parts = CASES[case]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(_line(r) for r in rows) + "\n", encoding="utf-8")
    code, _, stderr = _invoke("--input", str(src), "--out", str(tmp_path / "DIR"), *options)
    _assert_one_line_error(code, stderr, str(src), *parts)
    assert not (tmp_path / "DIR" / "data.parquet").exists()


def test_non_utf8_line(tmp_path):
    src = tmp_path / "latin1.jsonl"
    src.write_bytes(_line(GOOD).encode() + b"\n" + '{"instruction": "caf\xe9", "output": "x"}'.encode("latin-1") + b"\n")
    code, _, stderr = _invoke("--source", "alpaca", "--input", str(src), "--out", str(tmp_path / "DIR"))
    _assert_one_line_error(code, stderr, f"{src}:2: ", "not valid UTF-8")
    assert not (tmp_path / "DIR").exists()


def test_json_array_problems_name_line_and_field(tmp_path):
    good = json.dumps([GOOD, {"instruction": "a", "output": "b"}], indent=2)
    src = tmp_path / "arr.json"
    # Undecodable bytes inside the second element's output (line 8 of the pretty-printed file).
    src.write_bytes(good.replace('"b"', '"b\udcff"').encode("utf-8", "surrogateescape"))
    code, _, stderr = _invoke("--source", "alpaca", "--input", str(src), "--out", str(tmp_path / "DIR"))
    _assert_one_line_error(code, stderr, f"{src}:7: ", "field 'output'", "UTF-8")
    # A syntax error inside an element names the line of the error, and is fatal even with --skip-invalid
    # (nothing after it can be parsed).
    src.write_text(good.replace('"output": "b"', '"output": b'), encoding="utf-8")
    for extra in ([], ["--skip-invalid"]):
        code, _, stderr = _invoke("--source", "alpaca", "--input", str(src), "--out", str(tmp_path / "DIR"), *extra)
        _assert_one_line_error(code, stderr, f"{src}:9: ", "not valid JSON")
    # A truncated array is bad input for sources other than the packaged ShareGPT.
    src.write_text(good[:-10], encoding="utf-8")
    code, _, stderr = _invoke("--source", "alpaca", "--input", str(src), "--out", str(tmp_path / "DIR"))
    _assert_one_line_error(code, stderr, f"{src}:7: ", "truncated")
    assert not (tmp_path / "DIR" / "data.parquet").exists()


def test_skip_invalid_counts_by_reason(tmp_path):
    src = tmp_path / "mixed.jsonl"
    lines = [_line(GOOD), "{not json", _line({"instruction": "x"}), _line({**GOOD, "output": " "}), _line(GOOD), _line({"instruction": "q", "output": "a"})]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["data", "prepare", "--source", "alpaca", "--input", str(src), "--out", str(tmp_path / "DIR"), "--skip-invalid", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n"] == 2 and out["n_dropped"] == 4
    assert out["dropped"] == {"duplicate": 1, "empty_output": 1, "malformed_json": 1, "missing_field": 1}
    manifest = json.loads((tmp_path / "DIR" / "manifest.json").read_text())
    assert manifest["dropped"] == out["dropped"] and manifest["n_dropped"] == 4


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (["--source", "sharegtp", "--input", "x.json"], ("unknown loader 'sharegtp'", "did you mean 'sharegpt'")),
        (["--source", "alpaca", "--input", "missing.json"], ("missing.json: ", "field '--input'", "no such file")),
        (["--source", "jsonl", "--input", "in.jsonl", "--field", "answer=completion"], ("unknown canonical field 'answer'",)),
        (["--source", "jsonl", "--input", "in.jsonl", "--field", "output"], ("expected CANONICAL=SOURCE_FIELD",)),
        (["--source", "alpaca", "--input", "in.jsonl", "--field", "output=completion"], ("--field only applies",)),
        (["--source", "flan", "--input", "in.jsonl", "--max-per-task", "0"], ("max_per_task must be a positive integer",)),
        (["--source", "alpaca", "--input", "in.jsonl", "--out", "in.jsonl"], ("in.jsonl: ", "field '--out'", "not a folder")),
    ],
)
def test_bad_usage(tmp_path, monkeypatch, args, parts):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text(_line(GOOD) + "\n", encoding="utf-8")
    code, _, stderr = _invoke(*args, *([] if "--out" in args else ["--out", "DIR"]))
    _assert_one_line_error(code, stderr, *parts)
    assert not (tmp_path / "DIR" / "data.parquet").exists()


def test_no_usable_examples_and_stats_on_wrong_folder(tmp_path):
    src = tmp_path / "flan.jsonl"
    src.write_text("\n", encoding="utf-8")
    code, _, stderr = _invoke("--source", "flan", "--input", str(src), "--out", str(tmp_path / "DIR"))
    _assert_one_line_error(code, stderr, str(src), "no usable examples")
    result = CliRunner().invoke(app, ["data", "stats", str(tmp_path)])
    _assert_one_line_error(result.exit_code, result.stderr, "no manifest.json")
