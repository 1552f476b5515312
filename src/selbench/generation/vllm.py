"""Generation with vLLM in-process, the engine the study's inference script used.

vLLM's pins conflict with selbench's (see pyproject's `gpu` extra), so this backend works only where
`import vllm` does; the tested route is `vllm serve` in its own environment plus the `openai` backend
(`selbench.generation.openai_server`). Not run in CI (no GPU, no vLLM).

Same interface as `HFBackend`: chat prompts go through the tokenizer's chat template, then
`LLM.generate` with `SamplingParams` built from our `GenerationConfig` (greedy = temperature 0, as vLLM
defines it). vLLM batches and schedules internally, so `batch_size` is not used here.
"""

from __future__ import annotations

import logging
from typing import Any

from selbench.errors import MissingDependencyError
from selbench.generation.base import GenerationConfig, Prompt, truncate_at_stop

log = logging.getLogger(__name__)


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise MissingDependencyError(
            "vllm",
            None,
            "its pins conflict with selbench's; run `vllm serve MODEL` in its own environment and pass "
            "--backend openai --backend-url http://HOST:PORT/v1",
        ) from exc
    return vllm


class VLLMBackend:
    """vLLM generation over a model folder or hub id.

    Args:
        model_path: what `vllm.LLM(model=...)` accepts (a local folder, e.g. a converted asset or a merged
            fine-tuned model).
        seed: engine seed.
        **engine_options: passed to `vllm.LLM` (e.g. `gpu_memory_utilization`, `dtype`).
    """

    name = "vllm"

    def __init__(self, model_path: str, *, seed: int = 0, **engine_options: Any) -> None:
        vllm = _import_vllm()
        self._vllm = vllm
        self.llm = vllm.LLM(model=str(model_path), seed=seed, **engine_options)
        self.tokenizer = self.llm.get_tokenizer()
        self.stats = {"prompt_tokens": 0, "new_tokens": 0}

    def render(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in prompt)

    def sampling_params(self, config: GenerationConfig) -> Any:
        return self._vllm.SamplingParams(
            max_tokens=config.max_new_tokens,
            min_tokens=config.min_new_tokens,
            temperature=config.temperature if config.do_sample else 0.0,
            top_p=config.top_p if config.do_sample else 1.0,
            seed=config.seed,
            stop=list(config.stop) or None,
        )

    def generate(self, prompts: list[Prompt], config: GenerationConfig) -> list[str]:
        if not prompts:
            return []
        results = self.llm.generate([self.render(p) for p in prompts], self.sampling_params(config))
        outputs = []
        for result in results:
            completion = result.outputs[0]
            self.stats["prompt_tokens"] += len(result.prompt_token_ids or [])
            self.stats["new_tokens"] += len(completion.token_ids)
            outputs.append(truncate_at_stop(completion.text, config.stop))
        return outputs
