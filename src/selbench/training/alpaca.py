"""The Stanford Alpaca prompt (Taori et al., 2023; tatsu-lab/stanford_alpaca `train.py` PROMPT_DICT).

Two prompts, with and without an `input` field; the response follows the prompt and ends with the EOS
token, as in Alpaca's training code, which also labels the prompt -100. Multi-turn conversations use their
first turn only (the `instruction`/`input`/`output` fields); use the `chat` template to train on all turns.
"""

from __future__ import annotations

from typing import Any

from selbench.training.base import Segment

PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def alpaca_prompt(instruction: str, input: str = "") -> str:
    """The Alpaca prompt for an instruction (and optional input).

    >>> alpaca_prompt("Add 2 and 3.").endswith("### Instruction:\\nAdd 2 and 3.\\n\\n### Response:\\n")
    True
    """
    if input:
        return PROMPT_WITH_INPUT.format(instruction=instruction, input=input)
    return PROMPT_NO_INPUT.format(instruction=instruction)


class AlpacaTemplate:
    """Prompt untrained, response + EOS trained."""

    name = "alpaca"
    loss_on_prompt = False

    @staticmethod
    def prompt_parts() -> tuple[str, str, str]:
        """(text before the instruction, text after it, text before the response) of the no-input prompt."""
        prefix, suffix = PROMPT_NO_INPUT.split("{instruction}")
        return prefix, suffix, ""

    def segments(self, example: Any, tokenizer: Any) -> list[Segment]:
        eos = tokenizer.eos_token or ""
        return [
            Segment(alpaca_prompt(example.instruction, example.input), trained=False),
            Segment(example.output + eos, trained=True),
        ]
