"""The format of the study's released training code (ippolito-cmu/ChasingRandom `src/train.py`, `src/utils.py`).

Reproduces, for users who want the study's numbers, what its Llama runs trained on: the system line
(`SYSTEM_INSTRUCTION` in `src/utils.py`), then ` \\n ### Instruction: <prompt> \\n ### Response: <output>`,
with TRL packing and the loss on every token (their SFTTrainer was given a formatting function, so no
completion-only masking). These are the study's choices, not ours; the `alpaca` and `chat` templates mask
the prompt.

With `packing=True` this template uses TRL's `wrapped` packing (examples concatenated, EOS between them,
cut into `max_length` rows, attention across the cut), the behaviour of the TRL version the study ran;
our own templates pack with `bfd`, which keeps examples apart.

Deviations: the released code receives the instruction already merged with its input in one field; we
append a non-empty `input` after the instruction, separated by a newline. Each example ends with the EOS
token, which TRL's packing of that time inserted between packed examples; as in the study (pad = EOS, and
its collator masked pad tokens), EOS tokens carry no loss. With packing, examples are not truncated to
`max_length` first: the packed stream is cut into rows, so a long example continues on the next row, as
TRL's ConstantLengthDataset did.
"""

from __future__ import annotations

from typing import Any

from selbench.training.base import Segment

# Verbatim from the study's code, including its grammar and trailing " \n": changing it changes the tokens.
SYSTEM_INSTRUCTION = (
    "Below is an instruction that is optionally paired with some additional context. "
    "Respond appropriately follows using the context (if any) \n"
)


def study_prompt(instruction: str, input: str = "") -> str:
    """The study's prompt up to and including `### Response:` (the space after it starts the response segment).

    >>> study_prompt("Hi").endswith(" \\n ### Instruction: Hi \\n ### Response:")
    True
    """
    prompt = instruction if not input else f"{instruction}\n{input}"
    return f"{SYSTEM_INSTRUCTION} \n ### Instruction: {prompt} \n ### Response:"


class StudyTemplate:
    """Study format; `loss_on_prompt` defaults to True (the study's choice)."""

    name = "study"
    loss_on_prompt = True
    # The study set pad = EOS, and its TRL collator masked pad tokens out of the labels: EOS got no loss.
    eos_in_loss = False

    @staticmethod
    def prompt_parts() -> tuple[str, str, str]:
        """(text before the instruction, text after it, text before the response): the study's format, which
        its inference script also used (ChasingRandom `src/utils.py` `model_formatter`)."""
        prefix, suffix = study_prompt("\0").split("\0")
        return prefix, suffix, " "

    def segments(self, example: Any, tokenizer: Any) -> list[Segment]:
        eos = tokenizer.eos_token or ""
        return [
            Segment(study_prompt(example.instruction, example.input), trained=False),
            Segment(" " + example.output + eos, trained=True),
        ]
