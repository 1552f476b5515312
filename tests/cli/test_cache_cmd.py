"""`selbench cache ls|du|gc` over a real store."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from selbench.cli.main import app
from selbench.store import StepStore


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_cache_ls_du_gc(isolated_cache):
    store = StepStore()
    store.run("prepare", 1, {"x": 1}, {}, lambda tmp: (tmp / "f").write_text("data") and {})
    leftover = store.steps_dir / "prepare" / ".tmp-deadbeef"
    leftover.mkdir()
    runner = CliRunner()

    listed = _last_json(runner.invoke(app, ["cache", "ls", "--json"]).stdout)
    assert listed["n"] == 1 and listed["entries"][0]["step"] == "prepare"

    usage = _last_json(runner.invoke(app, ["cache", "du", "--json"]).stdout)
    assert usage["bytes"]["prepare"] >= 4

    dry = _last_json(runner.invoke(app, ["cache", "gc", "--dry-run", "--json"]).stdout)
    assert dry["n_removed"] == 1 and leftover.exists()
    done = _last_json(runner.invoke(app, ["cache", "gc", "--json"]).stdout)
    assert done["n_removed"] == 1 and not leftover.exists()
    assert _last_json(runner.invoke(app, ["cache", "ls", "--json"]).stdout)["n"] == 1


def test_cache_gc_rejects_negative_age():
    result = CliRunner().invoke(app, ["cache", "gc", "--older-than-days", "-1"])
    assert result.exit_code == 2
    assert "error: --older-than-days" in result.stderr


def test_cache_du_counts_the_whole_store(isolated_cache, monkeypatch, tmp_path):
    """Issue 10, item 10: converted models, judge responses and any other area count, not only steps."""
    monkeypatch.delenv("SELBENCH_MODEL_CACHE", raising=False)  # default: $SELBENCH_CACHE/models
    store = StepStore()
    store.run("prepare", 1, {"x": 1}, {}, lambda tmp: (tmp / "f").write_text("data") and {})
    (isolated_cache / "models" / "m").mkdir(parents=True)
    (isolated_cache / "models" / "m" / "model.safetensors").write_bytes(b"w" * 5000)
    (isolated_cache / "judge" / "ab").mkdir(parents=True)
    (isolated_cache / "judge" / "ab" / "r.json").write_text("{}")
    (isolated_cache / "models" / "link").symlink_to(isolated_cache / "models" / "m" / "model.safetensors")
    on_disk = sum(p.stat().st_size for p in isolated_cache.rglob("*") if p.is_file() and not p.is_symlink())
    usage = _last_json(CliRunner().invoke(app, ["cache", "du", "--json"]).stdout)
    assert usage["total_bytes"] == on_disk
    assert usage["other_bytes"]["models"] == 5000 and usage["other_bytes"]["judge"] == 2
    # a model cache elsewhere is selbench's cache too
    elsewhere = tmp_path / "elsewhere-models"
    (elsewhere / "m").mkdir(parents=True)
    (elsewhere / "m" / "w.bin").write_bytes(b"x" * 700)
    monkeypatch.setenv("SELBENCH_MODEL_CACHE", str(elsewhere))
    usage = _last_json(CliRunner().invoke(app, ["cache", "du", "--json"]).stdout)
    assert usage["outside_bytes"] == {str(elsewhere): 700} and usage["total_bytes"] == on_disk + 700
    human = CliRunner().invoke(app, ["cache", "du"]).stdout
    assert "models/" in human and "total" in human
