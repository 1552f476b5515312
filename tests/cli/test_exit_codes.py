"""Exit 2 where the README promises it (issue 10, item 5): inputs that used to crash with exit 1 or pass
with exit 0 are bad input, reported on one line that names the file, URL or flag."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selbench.cli.main import app
from selbench.errors import InputError

DEEP = "[" * 100_000 + "]" * 100_000
GOOD = {"instruction": "Say hi", "input": "", "output": "hi"}
ROWS = [{"instruction": f"Say hi {i}", "input": "", "output": "hi " * (i + 1)} for i in range(3)]


def _invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _exit_2(result, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in line, line
    return line


def test_a_100k_deep_json_line_is_bad_input(tmp_path):
    jsonl = tmp_path / "deep.jsonl"
    jsonl.write_text(json.dumps(GOOD) + "\n" + DEEP + "\n", encoding="utf-8")
    _exit_2(_invoke("data", "prepare", "--source", "jsonl", "--input", jsonl, "--out", tmp_path / "a"),
            "deep.jsonl:2", "nested too deeply")
    array = tmp_path / "deep.json"
    array.write_text("[" + json.dumps(GOOD) + ",\n" + DEEP + "]", encoding="utf-8")
    _exit_2(_invoke("data", "prepare", "--source", "alpaca", "--input", array, "--out", tmp_path / "b"),
            "deep.json:2", "nested too deeply")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    manifest = tmp_path / "sel.json"
    manifest.write_text(DEEP, encoding="utf-8")
    _exit_2(_invoke("select", "overlap", manifest), "sel.json", "nested too deeply")


def _unwritable(tmp_path: Path) -> Path:
    """A folder that cannot be written: /sys refuses even root; otherwise a read-only folder (non-root)."""
    if Path("/sys").is_dir():
        return Path("/sys/selbench-test-out")
    if os.geteuid() == 0:
        pytest.skip("no unwritable folder for root on this machine")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder / "out"


def test_an_out_that_cannot_be_written_is_bad_input(tmp_path):
    target = _unwritable(tmp_path)
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps(ROWS), encoding="utf-8")
    _exit_2(_invoke("data", "prepare", "--source", "alpaca", "--input", source, "--out", target),
            str(target), "field 'out'", "cannot be written")
    pool = tmp_path / "pool"
    assert _invoke("data", "prepare", "--source", "alpaca", "--input", source, "--out", pool).exit_code == 0
    _exit_2(_invoke("select", "longest", "--data", pool, "--budget", 1, "--out", target / "x.json"),
            "x.json", "cannot be written")
    _exit_2(_invoke("score", "length", "--data", pool, "--out", target / "s.parquet"), "cannot be written")


def test_a_permission_error_anywhere_is_exit_2_naming_the_path(tmp_path, monkeypatch):
    """The CLI's last line of defence: an unwritable cache (not an --out) is bad usage, not a crash."""
    target = _unwritable(tmp_path)
    monkeypatch.setenv("SELBENCH_CACHE", str(target))
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps(ROWS), encoding="utf-8")
    _exit_2(_invoke("data", "prepare", "--source", "alpaca", "--input", source, "--out", tmp_path / "pool"),
            str(target))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_judge_fails_at_once_naming_the_url():
    from selbench.evaluation.judge import JudgeClient, JudgeConfig

    url = f"http://127.0.0.1:{_closed_port()}/v1"
    client = JudgeClient(JudgeConfig(model="x", base_url=url, max_retries=3, backoff_s=0.01))
    with pytest.raises(InputError, match="(?i)connection refused") as info:
        client.complete([{"role": "user", "content": "q"}], {"max_tokens": 1})
    assert url in str(info.value)
    assert client.stats.http_requests == 1 and client.stats.retries == 0


def test_head_to_head_with_an_unreachable_judge_exits_2(tmp_path):
    from selbench.evaluation import alpacaeval

    rows = alpacaeval.load_reference(limit=2)
    for name in ("m", "r"):
        (tmp_path / f"{name}.json").write_text(json.dumps(
            [{"instruction": r["instruction"], "output": f"{name} says", "generator": name} for r in rows]))
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    _exit_2(_invoke("eval", "head-to-head", "--model", tmp_path / "m.json", "--random", tmp_path / "r.json",
                    "--judge", "x", "--judge-base-url", url, "--limit", 2), url, "Connection refused")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_as_input_is_named_as_such(tmp_path):
    line = _exit_2(_invoke("data", "prepare", "--source", "jsonl", "--input", "/dev/zero", "--out", tmp_path / "o"),
                   "/dev/zero", "device")
    assert "folder" not in line


def test_cache_gc_and_ls_refuse_unknown_steps_and_non_finite_ages(tmp_path):
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps(ROWS), encoding="utf-8")
    assert _invoke("data", "prepare", "--source", "alpaca", "--input", source, "--out", tmp_path / "p").exit_code == 0
    _exit_2(_invoke("cache", "gc", "--step", "nosuchstep"), "nosuchstep", "prepare")
    _exit_2(_invoke("cache", "gc", "--step", "prepar"), "did you mean prepare")
    _exit_2(_invoke("cache", "ls", "--step", "nosuchstep"), "nosuchstep")
    for age in ("nan", "inf", "-1"):
        _exit_2(_invoke("cache", "gc", "--older-than-days", age), "older-than-days")
    assert _invoke("cache", "gc", "--step", "prepare", "--dry-run").exit_code == 0
