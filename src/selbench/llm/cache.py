"""The per-request answer cache of `LLMClient`, inside the step store.

One JSON file per chat request, named by the sha256 of what determines the answer: the endpoint's base
URL, the model name it serves, the messages and the sampling parameters (never the API key, which decides
who pays, not what is answered). Entries are written atomically (`write_json_atomic`), so a killed run
leaves whole answers or none, and a re-run, a resumed run or another step asking the same question gets
the stored answer without a request.

Default location: the step store's `partial/llm-requests/<judge id>/` (judge id = sha256 of endpoint and
model, first 16 hex digits), so `selbench cache du` counts it and `selbench cache gc --older-than` prunes
it. A caller whose answers depend on more than the endpoint's name passes its own folder: the openai
generation backend keeps its requests inside its generation step's partial folder, keyed by the local
model's fingerprint, so other weights served under the same URL and name never get its answers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selbench.hashing import sha256_json
from selbench.store import StepStore, write_json_atomic

CACHE_VERSION = 1
REQUESTS_STEP = "llm-requests"


def request_key(endpoint: str, model: str, messages: Sequence[dict[str, Any]], params: dict[str, Any]) -> str:
    """Cache key of one chat request: endpoint, model, messages and sampling params (never the API key).

    >>> a = request_key("http://127.0.0.1:8000/v1", "m", [{"role": "user", "content": "x"}], {"max_tokens": 1})
    >>> a == request_key("http://127.0.0.1:8000/v1", "m", [{"role": "user", "content": "x"}], {"max_tokens": 2})
    False
    """
    return sha256_json(
        {
            "version": CACHE_VERSION,
            "base_url": endpoint,
            "model": model,
            "messages": list(messages),
            "params": params,
        }
    )


def judge_id(endpoint: str, model: str) -> str:
    """Folder name of one judge's answers: the first 16 hex digits of sha256(endpoint, model)."""
    return sha256_json({"base_url": endpoint, "model": model})[:16]


class RequestCache:
    """Stored answers of one judge, one file per request.

    Args:
        folder: where the answers live (see the module docstring for the default).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def default(cls, endpoint: str, model: str, store: StepStore | None = None) -> RequestCache:
        # The folder is created with its first answer (`StepStore.partial_dir` would create it now).
        return cls((store or StepStore()).root / "partial" / REQUESTS_STEP / judge_id(endpoint, model))

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response, or None."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))["response"]
        except (OSError, ValueError, KeyError):
            return None  # unreadable (e.g. a disk that filled up): ask again and overwrite it

    def put(self, key: str, *, endpoint: str, model: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        """Store one response (no headers, no key: only what the endpoint answered)."""
        write_json_atomic(
            self.path(key),
            {"key": key, "model": model, "base_url": endpoint, "params": params, "response": response},
            indent=None,
        )
