"""Training templates (protocol + registry), the study's presets, and the span tokenizer they share.

A template turns one `Example` into text segments, each flagged as trained or not; `encode_segments`
tokenizes the segments one by one and labels the untrained ones -100. Tokenizing segment by segment (rather
than tokenizing the whole text and guessing where the prompt ends) makes the mask exact whatever BPE would
merge across the boundary, and matches inference, where the prompt is tokenized alone and the response is
generated after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from selbench.registry import Registry

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Segment:
    """A piece of rendered text and whether its tokens carry loss."""

    text: str
    trained: bool


@dataclass(frozen=True)
class Encoded:
    """One tokenized training example.

    Args:
        input_ids: token ids.
        labels: same length; -100 where no loss is taken.
        truncated: True when `max_length` cut the example.
    """

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def n_trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


class Template(Protocol):
    """Renders an example into segments. `loss_on_prompt` is the template's default for that choice."""

    name: str
    loss_on_prompt: bool

    def segments(self, example: Any, tokenizer: Any) -> list[Segment]: ...


TEMPLATES: Registry[Template] = Registry("template", "selbench.templates")
TEMPLATES.register("chat", "selbench.training.chat:ChatTemplate")
TEMPLATES.register("alpaca", "selbench.training.alpaca:AlpacaTemplate")
TEMPLATES.register("study", "selbench.training.study:StudyTemplate")


def resolve_template_name(name: str, tokenizer: Any) -> str:
    """`auto` -> `chat` when the tokenizer has a chat template, else `alpaca`; other names unchanged."""
    if name == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"
    return name


def get_template(name: str) -> Template:
    """An instance of the template registered as `name`."""
    return TEMPLATES.get(name)()


def encode_segments(
    segments: Sequence[Segment],
    tokenizer: Any,
    max_length: int | None,
    *,
    loss_on_prompt: bool = False,
    add_bos: bool | None = None,
) -> Encoded | None:
    """Tokenize segments one by one; label untrained segments -100 (all trained when `loss_on_prompt`).

    Truncation keeps the start (the prompt) and cuts the end (the response); an example left with no trained
    token is dropped (returns None) so that the caller can count it.

    Args:
        segments: rendered text pieces in order.
        tokenizer: a 🤗 tokenizer; special tokens written as text (e.g. `<|im_end|>`) are parsed as such.
        max_length: keep at most this many tokens (None: no limit).
        loss_on_prompt: train on every token (the study's choice), not only on trained segments.
        add_bos: prepend the BOS token; default: when the tokenizer itself adds one to plain text.

    Returns:
        The encoded example, or None when no trained token is left.
    """
    if add_bos is None:
        add_bos = tokenizer_adds_bos(tokenizer)
    first = next((seg.text for seg in segments if seg.text), "")
    if add_bos and tokenizer.bos_token and first.startswith(tokenizer.bos_token):
        add_bos = False  # a chat template that writes BOS itself (Llama, Gemma, Mistral): one BOS, as at inference
    input_ids: list[int] = []
    labels: list[int] = []
    if add_bos:
        input_ids.append(tokenizer.bos_token_id)
        labels.append(tokenizer.bos_token_id if loss_on_prompt else IGNORE_INDEX)
    if loss_on_prompt:
        # Every token is trained, so there is no boundary to keep exact: tokenize the text in one piece,
        # exactly as a plain-text SFT pipeline (the study's) does.
        ids = tokenizer("".join(seg.text for seg in segments), add_special_tokens=False)["input_ids"]
        input_ids.extend(ids)
        labels.extend(ids)
    else:
        for seg in segments:
            if not seg.text:
                continue
            ids = tokenizer(seg.text, add_special_tokens=False)["input_ids"]
            input_ids.extend(ids)
            labels.extend(ids if seg.trained else [IGNORE_INDEX] * len(ids))
    truncated = max_length is not None and len(input_ids) > max_length
    if truncated:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    encoded = Encoded(input_ids=input_ids, labels=labels, truncated=truncated)
    # Position 0 is never predicted (no token before it), so it alone cannot make an example trainable.
    if not any(label != IGNORE_INDEX for label in labels[1:]):
        return None
    return encoded


def prompt_chat_template(prefix: str, suffix: str, response_prefix: str, bos: bool) -> str:
    """A Jinja chat template that renders a conversation in a single-turn prompt format, for inference.

    A model fine-tuned on `prefix + instruction + suffix` then `response_prefix + output + EOS` must be
    prompted the same way at evaluation; saving this as the trained tokenizer's chat template makes every
    backend (HF, `selbench serve`, vLLM) do so. System messages are prepended to the next user message's
    text, separated by a blank line (the formats have no system slot); each user turn opens a new prompt;
    assistant turns are written as trained (`response_prefix + content + EOS`), so few-shot turns look like
    training examples. The generation prompt is the format's own ending (`suffix`), always present after a
    user turn.
    """
    import json

    def lit(text: str) -> str:  # a Jinja string literal (our constants are ASCII)
        return json.dumps(text)

    return (
        ("{{ bos_token }}" if bos else "")
        + "{% set ns = namespace(system='') %}"
        + "{% for message in messages %}"
        + "{% if message['role'] == 'system' %}"
        + "{% set ns.system = ns.system + message['content'] + " + lit("\n\n") + " %}"
        + "{% elif message['role'] == 'user' %}"
        + "{{ " + lit(prefix) + " + ns.system + message['content'] + " + lit(suffix) + " }}"
        + "{% set ns.system = '' %}"
        + "{% elif message['role'] == 'assistant' %}"
        + "{{ " + lit(response_prefix) + " + message['content'] + eos_token }}"
        + "{% endif %}"
        + "{% endfor %}"
    )


def inference_chat_template(name: str, tokenizer: Any) -> str | None:
    """The chat template a model trained with template `name` should be prompted with (None: keep its own).

    `chat` keeps the tokenizer's template; `alpaca` and `study` render their training prompt.
    """
    template = get_template(name)
    parts = getattr(template, "prompt_parts", None)
    if parts is None:
        return None
    prefix, suffix, response_prefix = parts()
    return prompt_chat_template(prefix, suffix, response_prefix, tokenizer_adds_bos(tokenizer))


def tokenizer_adds_bos(tokenizer: Any) -> bool:
    """True when `tokenizer("x")` starts with the BOS token (Llama-style tokenizers)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("x")["input_ids"]
    return bool(ids) and ids[0] == bos
