"""Model specs: what a `--model` string names, decided without loading anything.

A spec is one of:
* a packaged model asset name (`smollm2-135m-instruct`, `gemma3-270m`);
* a local directory: a 🤗 model folder (has `config.json`) or a LoRA adapter folder (has
  `adapter_config.json`, whose `base_model_name_or_path` is itself a spec: asset name, path or hub id);
* `hf://org/name[@revision]`: a model on the Hugging Face Hub.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from selbench.errors import InputError

SPEC_KINDS = ("asset", "dir", "adapter", "hub")
HUB_PREFIX = "hf://"


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model spec.

    Args:
        kind: one of SPEC_KINDS.
        text: the spec as given.
        name: asset name (kind "asset") or hub repo id (kind "hub").
        path: the folder (kinds "dir" and "adapter").
        revision: hub revision (branch, tag or commit), if any.
    """

    kind: str
    text: str
    name: str | None = None
    path: Path | None = None
    revision: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SPEC_KINDS:
            raise ValueError(f"ModelSpec.kind: {self.kind!r} is not one of {', '.join(SPEC_KINDS)}")


def model_asset_names() -> list[str]:
    from selbench.assets.catalog import assets

    return [n for n in assets.names() if assets.get(n).kind == "model"]


def is_local_model(spec: str | None, base_url: str | None = None) -> bool:
    """Whether a judge's `model` names weights selbench can load and serve itself (a packaged asset, a model
    folder or `hf://...`) rather than a model behind an API: only when no `base_url` is given.

    >>> is_local_model("smollm2-135m-instruct"), is_local_model("gpt-4o"), is_local_model("smollm2-135m-instruct", "http://h/v1")
    (True, False, False)
    """
    if base_url is not None or not spec:
        return False
    return spec.startswith(HUB_PREFIX) or spec in model_asset_names() or Path(spec).expanduser().is_dir()


def parse_spec(spec: str | os.PathLike, revision: str | None = None) -> ModelSpec:
    """Decide what `spec` names.

    Args:
        spec: asset name, local directory, or `hf://org/name[@revision]`.
        revision: hub revision used when the spec carries none.

    Raises:
        InputError: empty spec, a file instead of a folder, a folder that holds no model, or an unknown
            name (the message lists near names and the accepted forms).
    """
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"model spec must be a non-empty string, got {spec!r}", field="model")
    if text.startswith(HUB_PREFIX):
        repo, _, rev = text[len(HUB_PREFIX) :].partition("@")
        if not repo or repo.count("/") > 1 or repo.startswith("/") or repo.endswith("/"):
            raise InputError(f"{text!r}: expected hf://org/name[@revision]", field="model")
        return ModelSpec("hub", text, name=repo, revision=rev or revision)
    if text in model_asset_names():
        return ModelSpec("asset", text, name=text)
    path = Path(text).expanduser()
    if path.is_dir():
        path = path.resolve()
        if (path / "adapter_config.json").is_file():
            return ModelSpec("adapter", text, path=path)
        if (path / "config.json").is_file():
            return ModelSpec("dir", text, path=path)
        raise InputError(
            "not a model folder: it has neither config.json nor adapter_config.json", path=path, field="model"
        )
    if path.exists():
        raise InputError(
            "is a file; a model spec is an asset name, a model folder or hf://org/name",
            path=path,
            field="model",
        )
    names = model_asset_names()
    near = [n for n in names if text.lower() in n] or difflib.get_close_matches(text, names, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    raise InputError(
        f"unknown model {text!r}{hint} (a model spec is a packaged asset: {', '.join(names)}; "
        "a local model or adapter folder; or hf://org/name[@revision])",
        field="model",
    )


def adapter_base_spec(adapter_dir: Path) -> ModelSpec:
    """The spec of a LoRA adapter's base model, from its `adapter_config.json`.

    The base may be a packaged asset name, an absolute path, a path relative to the adapter folder, an
    `hf://` spec or a bare hub id (`org/name`, as PEFT records models loaded from the hub).
    """
    config_path = adapter_dir / "adapter_config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable adapter config: {exc}", path=config_path) from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not base:
        raise InputError(
            "missing: cannot tell which base model the adapter needs",
            path=config_path,
            field="base_model_name_or_path",
        )
    revision = config.get("revision") or None
    if base.startswith(HUB_PREFIX) or base in model_asset_names():
        return parse_spec(base, revision)
    for candidate in (Path(base).expanduser(), adapter_dir / base):
        if candidate.is_dir():
            return parse_spec(str(candidate), revision)
    if not os.path.isabs(base) and base.count("/") == 1:
        return ModelSpec("hub", base, name=base, revision=revision)
    raise InputError(
        f"base model {base!r} is neither a packaged asset, an existing folder nor a hub id",
        path=config_path,
        field="base_model_name_or_path",
    )
