"""Generation through an OpenAI-compatible server: `vllm serve`, `selbench serve`, TGI, a hosted API.

Why: vLLM's own dependency pins (numpy < 2.4 through mistral-common, fastapi < 0.137, setuptools) cannot
share one environment with selbench's pinned stack, so the robust way to generate with vLLM is to run
`vllm serve MODEL` in its own environment and send it the prompts. This backend does that over
`/v1/chat/completions`: the server applies the model's chat template, as `HFBackend` does.

Decoding maps onto the request: greedy = `temperature: 0`; sampling sends `temperature`, `top_p` and the
config's `seed` with every request (vLLM seeds each request's generator with it); `stop` is sent and the
text is cut at the first stop string again (servers differ on whether they include it); `min_new_tokens`
goes as vLLM's `min_tokens` extension field. Requests run concurrently (the server batches them), are
retried on transient errors and cached per request on disk by the shared client (`selbench.llm.LLMClient`),
so an interrupted shard resumes without re-asking. Errors name this backend's flags (`--backend-url`,
`--served-model`), not the judge's.

`model_spec` still names the model for the cache key (its fingerprint): it must be what the server serves.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from selbench.errors import InputError
from selbench.generation.base import GenerationConfig, Prompt, truncate_at_stop

log = logging.getLogger(__name__)


class OpenAIServerBackend:
    """Chat generation against an OpenAI-compatible endpoint.

    Args:
        base_url: the server's base URL ending in /v1 (e.g. http://127.0.0.1:8000/v1).
        served_model: the model name the server knows; None = the only one `GET /v1/models` lists.
        max_workers: concurrent requests.
        api_key_env: environment variable with the API key (not needed on 127.0.0.1).
        cache_dir: where responses are cached per request. `cached_generate` passes a folder inside its
            step's partial folder, so the cache belongs to one model fingerprint: a different model served
            under the same URL and name never gets another model's answers.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        served_model: str | None = None,
        *,
        max_workers: int = 8,
        api_key_env: str = "OPENAI_API_KEY",
        cache_dir: str | Path | None = None,
    ) -> None:
        import os
        from urllib.parse import urlparse

        from selbench.llm.client import LOOPBACK_HOSTS, LLMClient, LLMConfig

        url = urlparse(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InputError("must be an http(s) URL such as http://127.0.0.1:8000/v1", path=base_url,
                             field="backend-url")
        if url.hostname not in LOOPBACK_HOSTS and not os.environ.get(api_key_env):
            raise InputError(f"no API key: set ${api_key_env} for this server", path=base_url, field="backend-url")
        probe = LLMClient(LLMConfig(model=served_model or "-", base_url=base_url, api_key_env=api_key_env))
        served = self._served_models(probe)
        if served_model is None:
            if len(served) != 1:
                raise InputError(
                    f"the server lists {len(served)} models ({', '.join(served) or 'none'}); name one with "
                    "--served-model",
                    path=base_url,
                    field="served-model",
                )
            served_model = served[0]
        elif served and served_model not in served:
            raise InputError(
                f"{served_model!r} is not served there (it lists {', '.join(served)})",
                path=base_url,
                field="served-model",
            )
        self.served_model = served_model
        self.client = LLMClient(
            LLMConfig(model=served_model, base_url=base_url, max_workers=max_workers, api_key_env=api_key_env),
            cache_dir=cache_dir,
        )
        self.stats = {"prompt_tokens": 0, "new_tokens": 0}

    @staticmethod
    def _served_models(client: Any) -> list[str]:
        try:
            return client.list_models()
        except InputError as exc:  # the shared client names the judge's flag; this is the backend's URL
            raise _as_backend_error(exc) from None

    @staticmethod
    def request_params(config: GenerationConfig) -> dict[str, Any]:
        """The chat-completions fields for `config` (see the module docstring)."""
        params: dict[str, Any] = {"max_tokens": config.max_new_tokens, "n": 1}
        if config.do_sample:
            params.update(temperature=config.temperature, top_p=config.top_p, seed=config.seed)
        else:
            params["temperature"] = 0.0
        if config.stop:
            params["stop"] = list(config.stop)
        if config.min_new_tokens:
            params["extra_body"] = {"min_tokens": config.min_new_tokens}
        return params

    def generate(self, prompts: list[Prompt], config: GenerationConfig) -> list[str]:
        for i, prompt in enumerate(prompts):
            if isinstance(prompt, str):
                raise InputError(
                    "the openai backend sends chat messages; this prompt is raw text", line=i + 1, field="prompt"
                )
        before = (self.client.stats.prompt_tokens, self.client.stats.completion_tokens)
        try:
            texts = self.client.judge_many(
                prompts,
                self.request_params(config),
                parser=lambda response: response["choices"][0]["message"]["content"] or "",
            )
        except InputError as exc:
            raise _as_backend_error(exc) from None
        if any(t is None for t in texts):
            raise InputError(
                f"{sum(t is None for t in texts)} responses had no message content",
                path=self.client.config.endpoint,
                field="choices",
            )
        self.stats["prompt_tokens"] += self.client.stats.prompt_tokens - before[0]
        self.stats["new_tokens"] += self.client.stats.completion_tokens - before[1]
        return [truncate_at_stop(t, config.stop) for t in texts]


def _as_backend_error(exc: InputError) -> InputError:
    """The shared client's error with this backend's flag names (`--backend-url`, `--served-model`)."""
    fields = {"judge-base-url": "backend-url", "judge": "served-model"}
    return InputError(exc.message, path=exc.path, line=exc.line, field=fields.get(exc.field or "", exc.field))
