"""What a model spec names: asset, folder, adapter folder or hub id; clear errors otherwise."""

from __future__ import annotations

import json

import pytest

from selbench.assets.spec import adapter_base_spec, parse_spec
from selbench.errors import InputError


def test_asset_names():
    spec = parse_spec("smollm2-135m-instruct")
    assert (spec.kind, spec.name) == ("asset", "smollm2-135m-instruct")
    assert parse_spec("gemma3-270m").kind == "asset"


def test_hub_specs_with_and_without_revision():
    spec = parse_spec("hf://HuggingFaceTB/SmolLM2-135M-Instruct@v1.0")
    assert (spec.kind, spec.name, spec.revision) == ("hub", "HuggingFaceTB/SmolLM2-135M-Instruct", "v1.0")
    assert parse_spec("hf://gpt2", revision="main").revision == "main"
    for bad in ("hf://", "hf://a/b/c", "hf:///x"):
        with pytest.raises(InputError, match="hf://org/name"):
            parse_spec(bad)


def test_folders(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    assert parse_spec(tmp_path / "model").kind == "dir"
    assert parse_spec(str(tmp_path / "adapter")).kind == "adapter"
    with pytest.raises(InputError, match="neither config.json nor adapter_config.json"):
        parse_spec(tmp_path / "empty")
    (tmp_path / "f.bin").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        parse_spec(tmp_path / "f.bin")


def test_unknown_spec_names_near_assets_and_forms():
    with pytest.raises(InputError) as info:
        parse_spec("smollm2")
    message = str(info.value)
    assert "did you mean 'smollm2-135m-instruct'" in message
    assert "hf://org/name" in message and "\n" not in message
    with pytest.raises(InputError, match="gema3-270m.*did you mean 'gemma3-270m'"):
        parse_spec("gema3-270m")
    with pytest.raises(InputError, match="non-empty"):
        parse_spec("  ")


def test_adapter_base_forms(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")

    def base_of(value):
        (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": value}))
        return adapter_base_spec(adapter)

    assert base_of("smollm2-135m-instruct").kind == "asset"
    assert base_of(str(tmp_path / "base")).path == (tmp_path / "base").resolve()
    assert base_of("../base").kind == "dir"  # relative to the adapter folder
    hub = base_of("HuggingFaceTB/SmolLM2-135M")
    assert (hub.kind, hub.name) == ("hub", "HuggingFaceTB/SmolLM2-135M")
    with pytest.raises(InputError, match="base_model_name_or_path"):
        base_of("/no/such/base/model")
    with pytest.raises(InputError, match="base_model_name_or_path"):
        base_of(None)
