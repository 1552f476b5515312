"""A prepared synthetic pool (data.parquet + manifest.json) with known response lengths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selbench.data.schema import Example, rows_sha256, write_examples


def write_pool(folder: Path, n: int, seed: int = 0) -> Path:
    """n examples whose response lengths are random in [0, 400); returns the folder."""
    lengths = np.random.default_rng(seed).integers(0, 400, n)
    examples = [Example(instruction=f"task {seed}-{i}", output="y" * int(k)) for i, k in enumerate(lengths)]
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": n}))
    return folder


@pytest.fixture(scope="module")
def pool_3k(tmp_path_factory) -> Path:
    return write_pool(tmp_path_factory.mktemp("pool3k"), 3000)


@pytest.fixture
def make_pool():
    """`make_pool(folder, n, seed)` -> a prepared pool folder."""
    return write_pool


def write_chat_pool(folder: Path, n: int) -> Path:
    """n short conversations on six topics (every fourth one has two turns); returns the folder."""
    topics = ["cooking", "astronomy", "tax law", "poetry", "python", "gardening"]
    examples = []
    for i in range(n):
        topic = topics[i % len(topics)]
        messages = [{"role": "user", "content": f"Question {i} about {topic}?"},
                    {"role": "assistant", "content": f"An answer about {topic}, number {i}."}]
        if i % 4 == 0:
            messages += [{"role": "user", "content": "Tell me more."}, {"role": "assistant", "content": "More."}]
        examples.append(Example(instruction=messages[0]["content"], output=messages[1]["content"], messages=messages))
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": n}))
    return folder


@pytest.fixture
def make_chat_pool():
    """`make_chat_pool(folder, n)` -> a prepared pool of short conversations."""
    return write_chat_pool
