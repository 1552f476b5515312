"""Content fingerprints of models and tokenizers, the model part of every step's cache key.

`model_sha256` hashes the weight files and the configs that change what the model computes or
generates (`config.json`, `generation_config.json`); `tokenizer_sha256` hashes every tokenizer file,
including the chat template (inside `tokenizer_config.json` or in `chat_template.jinja`). Names and
paths are not part of either hash: the same bytes anywhere give the same fingerprint, and changed bytes
under the same name give a new one (the bugs of lm-eval #2715 and open-instruct PR #1518).

Hashing a 135M-parameter float32 model reads ~0.5 GB, so results are cached: for packaged assets in the
converted folder's completion record, for other folders in `$SELBENCH_MODEL_CACHE/fingerprints/`, keyed
by the files' paths, sizes and modification times.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from selbench.errors import InputError
from selbench.hashing import sha256_file, sha256_json, sha256_text

MODEL_FILES = ("config.json", "generation_config.json", "adapter_config.json")
MODEL_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "chat_template.jinja",
    "chat_template.json",
)
_CACHE_VERSION = 1


def _is_model_file(rel: str) -> bool:
    return rel in MODEL_FILES or (
        rel.endswith(MODEL_SUFFIXES) and "/" not in rel and rel != "training_args.bin"
    )


def _is_tokenizer_file(rel: str) -> bool:
    return rel in TOKENIZER_FILES or rel.startswith("additional_chat_templates/")


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def fingerprint_dir(folder: str | Path) -> dict[str, str]:
    """`model_sha256` and `tokenizer_sha256` of a saved model or adapter folder (no caching).

    A folder without tokenizer files gets the hash of nothing for `tokenizer_sha256`.
    """
    folder = Path(folder)
    rels = _files(folder)
    model = [[rel, sha256_file(folder / rel)] for rel in rels if _is_model_file(rel)]
    tokenizer = [[rel, sha256_file(folder / rel)] for rel in rels if _is_tokenizer_file(rel)]
    if not model:
        raise InputError("no weights or config files to fingerprint", path=folder, field="model")
    return {"model_sha256": sha256_json(model), "tokenizer_sha256": sha256_json(tokenizer)}


def _cached_fingerprint_dir(folder: Path) -> dict[str, str]:
    from selbench.assets.convert import model_cache_root
    from selbench.store import write_json_atomic

    folder = folder.resolve()
    stats = []
    for rel in _files(folder):
        if _is_model_file(rel) or _is_tokenizer_file(rel):
            st = (folder / rel).stat()
            stats.append([rel, st.st_size, st.st_mtime_ns])
    cache_file = model_cache_root() / "fingerprints" / f"{sha256_text(str(folder))[:32]}.json"
    signature = sha256_json({"version": _CACHE_VERSION, "files": stats})
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
        if cached.get("signature") == signature:
            return cached["fingerprint"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    result = fingerprint_dir(folder)
    try:
        write_json_atomic(cache_file, {"folder": str(folder), "signature": signature, "fingerprint": result})
    except OSError:  # a read-only cache only costs speed
        pass
    return result


def model_fingerprint(spec: str | os.PathLike) -> dict[str, str]:
    """Content hashes of the model and tokenizer that `spec` names, for cache keys.

    Args:
        spec: anything `load_model` accepts (asset name, model or adapter folder, `hf://org/name`), or the
            folder a model was saved to.

    Returns:
        `{"model_sha256": ..., "tokenizer_sha256": ...}`. For an adapter, `model_sha256` covers the base's
        fingerprint and the adapter's files; `tokenizer_sha256` is the adapter's own tokenizer if it was
        saved with one, else the base's.
    """
    from selbench.assets.spec import parse_spec

    return _fingerprint(parse_spec(spec))


def _fingerprint(resolved) -> dict[str, str]:
    from selbench.assets.spec import adapter_base_spec

    if resolved.kind == "asset":
        from selbench.assets.convert import MARKER, ensure_converted

        record = json.loads((ensure_converted(resolved.name) / MARKER).read_text(encoding="utf-8"))
        return {"model_sha256": record["model_sha256"], "tokenizer_sha256": record["tokenizer_sha256"]}
    if resolved.kind == "dir":
        return _cached_fingerprint_dir(resolved.path)
    if resolved.kind == "hub":
        return _cached_fingerprint_dir(_hub_snapshot(resolved.name, resolved.revision))
    base_spec = adapter_base_spec(resolved.path)
    base = _fingerprint(base_spec)
    own = _cached_fingerprint_dir(resolved.path)
    has_tokenizer = any(_is_tokenizer_file(rel) for rel in _files(resolved.path))
    return {
        "model_sha256": sha256_json({"base": base["model_sha256"], "adapter": own["model_sha256"]}),
        "tokenizer_sha256": own["tokenizer_sha256"] if has_tokenizer else base["tokenizer_sha256"],
    }


def _hub_snapshot(repo: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    from selbench.assets.models import _hub_offline, hub_reachable

    patterns = [*MODEL_FILES, *(f"*{s}" for s in MODEL_SUFFIXES), *TOKENIZER_FILES]
    try:
        return Path(
            snapshot_download(
                repo,
                revision=revision,
                allow_patterns=patterns,
                local_files_only=_hub_offline() or not hub_reachable(),
            )
        )
    except Exception as exc:  # noqa: BLE001 - hub client raises many types; report one line
        raise InputError(
            f"cannot fetch hf://{repo} to fingerprint it: {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
            field="model",
        ) from None


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 of a loaded tokenizer's full serialized definition (vocab, merges, normalizer, added tokens):
    the one tokenizer hash for keys that depend on a tokenizer object rather than on its files."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return sha256_text(backend.to_str())
    return sha256_text(repr(sorted(tokenizer.get_vocab().items())))
