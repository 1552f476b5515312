"""Superfiltering (Li et al., ACL 2024, "Superfiltering: Weak-to-Strong Data Filtering for Fast Instruction-Tuning
Data Selection", https://arxiv.org/abs/2402.00530; tianyi-lab/Superfiltering `code_ifd/`).

IFD from a small model, with Superfiltering's own prompt (`{instruction}\\n[{input}\\n]`), truncation (1024
tokens; the direct text is the output alone) and perplexity ratio (`selbench.scoring.ifd_text`); examples with
IFD >= 1 are dropped and the highest of the rest kept, ties to the earlier example (`selection.ifd_select`).
There is no pre-experienced model: the point of the paper is that a small model's IFD ranks data almost as a
large one's does.

The paper's model is GPT-2 (124M); offline, the default is the packaged SmolLM2-135M-Instruct, of the same
size. `model="hf://openai-community/gpt2"` reproduces the paper where the hub is reachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.selection.base import Pool, Selection
from selbench.selection.ifd_select import select_by_ifd


@dataclass(frozen=True)
class SuperfilterStrategy:
    """Args:
    model: the small scoring model (default: the packaged SmolLM2; the paper's is hf://openai-community/gpt2).
    max_length: token limit of the prompt and conditioned text (Superfiltering: 1024).
    max_ifd: examples with IFD at or above this are dropped (Superfiltering: 1.0).
    base_url: score through OpenAI-compatible servers serving `model` (comma-separated URLs); unset = locally.
    served_model: the model name those servers know (default: the only one they list).
    """

    model: str = "smollm2-135m-instruct"
    max_length: int = 1024
    max_ifd: float = 1.0
    base_url: str | None = None
    served_model: str | None = None

    name: ClassVar[str] = "superfilter"
    VERSION: ClassVar[int] = 1
    uses_against: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_ifd, (int, float)) or not np.isfinite(self.max_ifd) or self.max_ifd <= 0:
            raise InputError(f"got {self.max_ifd!r}, allowed: a number > 0", field="max_ifd")

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        options: dict[str, Any] = {"model": self.model, "method": "superfilter", "max_length": self.max_length}
        if self.base_url:
            options["base_url"] = self.base_url
        if self.served_model:
            options["served_model"] = self.served_model
        return {"ifd": ("ifd", options)}

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        indices, fallback, info = select_by_ifd(pool.scores["ifd"]["ifd"], budget, rng, self.max_ifd, "superfilter")
        return Selection(indices, fallback=fallback, info=info)
