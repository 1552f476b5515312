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
