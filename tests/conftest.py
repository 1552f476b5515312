"""Shared fixtures: an isolated cache per test, a tiny random-init model, the shared reference data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SELBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))

# Torch's spinning OpenMP workers make model code 10x slower when the 2 cores are shared (xdist workers,
# other jobs): let idle threads sleep, and give each xdist worker one thread so workers don't fight.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

# Keep tests off the network and quiet, whatever the developer's shell says.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own empty $SELBENCH_CACHE, except the model-conversion cache (see below)."""
    root = tmp_path_factory.mktemp("selbench-cache")
    monkeypatch.setenv("SELBENCH_CACHE", str(root))
    # Converting the packaged GGUF takes ~20 s; share the converted models across the whole session.
    monkeypatch.setenv("SELBENCH_MODEL_CACHE", str(_session_model_cache()))
    return root


_MODEL_CACHE: Path | None = None


def _session_model_cache() -> Path:
    global _MODEL_CACHE
    if _MODEL_CACHE is None:
        default = Path(os.environ.get("SELBENCH_TEST_MODEL_CACHE", REPO / ".cache" / "test-models"))
        default.mkdir(parents=True, exist_ok=True)
        _MODEL_CACHE = default
    return _MODEL_CACHE


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny random-init Llama with a GPT-2 BPE tokenizer and a ChatML template."""
    from selbench.assets.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-model")
    build_tiny_model(out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    """(model, tokenizer) loaded from `tiny_model_dir`, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    return model, tok


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data`, or skip when this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def local_hub(tmp_path, isolated_cache):
    """Start a Hugging Face Hub on 127.0.0.1 (`tests/local_hub.py`) serving local folders as repos.

    Call it with {("model" | "dataset", "org/name"): folder}; it returns `run(argv)`, which runs a command
    in a fresh process whose hub endpoint is that server (hub clients read it at import) and returns the
    CompletedProcess, and the `LocalHub` (its `requests` list shows what was asked).
    """
    import subprocess
    import sys

    from local_hub import LocalHub

    hubs = []

    def start(repos):
        hub = LocalHub(repos)
        hubs.append(hub)
        env = dict(os.environ, HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0",
                   TRANSFORMERS_OFFLINE="0", HF_HOME=str(tmp_path / "hf-home"), SELBENCH_CACHE=str(isolated_cache))
        env.pop("HF_HUB_CACHE", None)
        env.pop("HF_DATASETS_CACHE", None)

        def run(argv, timeout=300):
            if argv[0] == "selbench":
                argv = [sys.executable, "-m", "selbench.cli.main", *argv[1:]]
            return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)

        return run, hub

    yield start
    for hub in hubs:
        hub.close()


@pytest.fixture
def forbid_model_loading():
    """Make every way of loading model weights fail: step keys must be computed from fingerprints alone.

    Yields its own MonkeyPatch: `forbid_model_loading.undo()` lifts the ban (and only the ban; the test's
    `monkeypatch`, which holds the isolated cache, stays as it is).
    """
    import transformers

    from selbench.assets import models

    def refuse(*args, **kwargs):
        raise AssertionError(f"model weights were loaded ({args[:1]})")

    patch = pytest.MonkeyPatch()
    patch.setattr(models, "load_model", refuse)
    patch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    patch.setattr(transformers.PreTrainedModel, "from_pretrained", refuse)
    yield patch
    patch.undo()
