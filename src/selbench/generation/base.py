"""Generation settings, the backend protocol and the backend registry.

A backend turns a list of prompts (chat message lists or plain strings) into a same-length list of
completions (pattern: lm-eval's `lm_eval/api/model.py` request lists). Built-ins register lazily so
that importing this module never imports torch or vLLM.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from selbench.registry import Registry

Message = dict[str, str]
Prompt = list[Message] | str

# The study's released inference script (ippolito-cmu/ChasingRandom) builds vLLM's `SamplingParams`
# with only `max_tokens=1024`, leaving vLLM's defaults: temperature 1.0, top_p 1.0 (pure sampling).
STUDY_MAX_NEW_TOKENS = 1024
STUDY_TEMPERATURE = 1.0
STUDY_TOP_P = 1.0


@dataclass(frozen=True)
class GenerationConfig:
    """How to decode. Every field can change the output bytes, so all of them key the cache.

    Args:
        max_new_tokens: most tokens generated per prompt.
        min_new_tokens: EOS and the chat end token are ignored before this many new tokens (0: off; for
            benchmarks that need equal-length rows).
        temperature: sampling temperature; only used when `do_sample` is true.
        top_p: nucleus sampling mass; only used when `do_sample` is true.
        do_sample: sample instead of greedy decoding.
        seed: random seed for sampling (set once per generation call).
        batch_size: prompts per forward batch (padding can perturb fp arithmetic, hence in the key).
        stop: extra stop strings; generation stops on the tokenizer's EOS / chat end token anyway and
            the returned text is cut before the first stop string.
    """

    max_new_tokens: int = 512
    min_new_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    do_sample: bool = False
    seed: int = 0
    batch_size: int = 8
    stop: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"GenerationConfig.max_new_tokens={self.max_new_tokens!r}: must be an integer >= 1")
        if not isinstance(self.min_new_tokens, int) or not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(f"GenerationConfig.min_new_tokens={self.min_new_tokens!r}: must be an integer in "
                             f"[0, max_new_tokens={self.max_new_tokens}]")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"GenerationConfig.batch_size={self.batch_size!r}: must be an integer >= 1")
        if not self.temperature > 0:
            raise ValueError(f"GenerationConfig.temperature={self.temperature!r}: must be > 0 (use do_sample=False for greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"GenerationConfig.top_p={self.top_p!r}: must be in (0, 1]")
        if isinstance(self.stop, str):
            raise ValueError(f"GenerationConfig.stop={self.stop!r}: must be a sequence of strings, not a string")
        stop = tuple(self.stop)
        if any(not isinstance(s, str) or not s for s in stop):
            raise ValueError(f"GenerationConfig.stop={self.stop!r}: every stop string must be a non-empty string")
        object.__setattr__(self, "stop", stop)

    @classmethod
    def greedy(cls, max_new_tokens: int = 512, batch_size: int = 8, stop: tuple[str, ...] = ()) -> GenerationConfig:
        """Deterministic greedy decoding (our default for evaluation)."""
        return cls(max_new_tokens=max_new_tokens, batch_size=batch_size, stop=stop)

    @classmethod
    def study(cls, seed: int = 0, batch_size: int = 8) -> GenerationConfig:
        """The study's choice, not ours: its released script ran vLLM with default sampling.

        Diddee & Ippolito's `ChasingRandom` inference script sets only `max_tokens=1024` in vLLM's
        `SamplingParams`, so outputs are sampled at temperature 1.0 with top_p 1.0 and no top-k. We add a
        seed so a rerun reproduces the same sample. (Its prompts went through its own per-model-type
        `model_formatter`; we use the model's chat template for every setting.)
        """
        return cls(
            max_new_tokens=STUDY_MAX_NEW_TOKENS,
            temperature=STUDY_TEMPERATURE,
            top_p=STUDY_TOP_P,
            do_sample=True,
            seed=seed,
            batch_size=batch_size,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stop"] = list(self.stop)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"GenerationConfig: unknown field(s) {unknown}; allowed: {sorted(known)}")
        data = dict(data)
        if "stop" in data:
            data["stop"] = tuple(data["stop"])
        return cls(**data)


# Named settings usable from the command line and study grids.
SETTINGS = {"greedy": GenerationConfig.greedy, "study": GenerationConfig.study}


@runtime_checkable
class GenerationBackend(Protocol):
    """Anything that completes a batch of prompts.

    `generate` returns one string per prompt, in the prompts' order: the generated text only (no prompt),
    cut at the first stop string, without the EOS / chat end token.
    """

    name: str

    def generate(self, prompts: list[Prompt], config: GenerationConfig) -> list[str]: ...


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut `text` before the earliest occurrence of any stop string.

    >>> truncate_at_stop("a\\nUser: b", ("User:", "###"))
    'a\\n'
    """
    cut = len(text)
    for s in stop:
        idx = text.find(s)
        if idx != -1:
            cut = min(cut, idx)
    return text[:cut]


BACKENDS: Registry[Any] = Registry("generation backend", "selbench.generation_backends")
BACKENDS.register("hf", "selbench.generation.hf:HFBackend")
BACKENDS.register("vllm", "selbench.generation.vllm:VLLMBackend")
BACKENDS.register("openai", "selbench.generation.openai_server:OpenAIServerBackend")
