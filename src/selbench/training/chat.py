"""The model's own chat template, trained on every assistant turn (multi-turn ShareGPT included).

Each assistant turn's span is found by rendering the conversation up to that turn twice: once ending with
the generation prompt (what the model sees before answering) and once including the turn. The difference is
the assistant's reply through its end-of-turn token; that span is trained, everything else (system, user,
role headers, and any whitespace a template writes after the end-of-turn token) is not. This is what TRL's
`assistant_only_loss` computes from `{% generation %}` markers, which SmolLM2's template does not have.
"""

from __future__ import annotations

from typing import Any

from selbench.errors import InputError
from selbench.training.base import Segment


class ChatTemplate:
    """Renders `example.messages` with `tokenizer.apply_chat_template`."""

    name = "chat"
    loss_on_prompt = False

    def segments(self, example: Any, tokenizer: Any) -> list[Segment]:
        if not getattr(tokenizer, "chat_template", None):
            raise InputError("the tokenizer has no chat template; use --template alpaca", field="template")
        messages = [{"role": m["role"], "content": m["content"]} for m in example.messages]
        if not any(m["role"] == "assistant" for m in messages):
            raise InputError("conversation has no assistant turn", field="messages", line=None)

        def render(msgs: list[dict[str, str]], gen_prompt: bool) -> str:
            return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen_prompt)

        full = render(messages, False)
        eos = getattr(tokenizer, "eos_token", None) or ""
        segments: list[Segment] = []
        done = 0  # characters of `full` already assigned to a segment
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = render(messages[:i], True)
            through = render(messages[: i + 1], False)
            if not (full.startswith(before) and through.startswith(before) and full.startswith(through)):
                raise InputError(
                    "chat template does not render conversations incrementally; cannot locate assistant spans",
                    field="template",
                )
            reply = through[len(before) :]
            # Train through the end-of-turn token; what the template writes after it belongs to the next turn.
            cut = reply.rfind(eos) + len(eos) if eos and eos in reply else len(reply)
            segments.append(Segment(full[done : len(before)], trained=False))
            segments.append(Segment(reply[:cut], trained=True))
            done = len(before) + cut
        segments.append(Segment(full[done:], trained=False))
        return [s for s in segments if s.text]
