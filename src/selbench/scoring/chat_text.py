"""How a stored conversation becomes one text, in the formats the reference implementations use.

* "plain": the turns' contents joined by blank lines;
* "vicuna": DEITA's embedding input (hkust-nlp/deita `selection/embedder/utils.py` `preprocess` with
  `conv_template="vicuna_v1.1"`, FastChat's template): the system line, then "USER: q ASSISTANT: a</s>" per
  pair (a space after each user turn, a literal "</s>" after each assistant turn);
* "tulu": RDS+'s input (hamishivi/automated-instruction-selection `encode_with_messages_format`): per turn
  "<|user|>\\n" + content + "\\n" or "<|assistant|>\\n" + content + EOS + "\\n", contents and the whole text
  stripped.

System turns are dropped for "plain" and "vicuna" (DEITA's data has none) and kept for "tulu" (its format
has a system role).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from selbench.errors import InputError

FORMATS = ("plain", "vicuna", "tulu")
VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                 "helpful, detailed, and polite answers to the user's questions.")


def conversation_text(messages: Sequence[Mapping[str, str]], fmt: str, eos: str = "</s>") -> str:
    """The text of a conversation in format `fmt` (see the module docstring).

    >>> msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    >>> conversation_text(msgs, "vicuna")[-40:]
    'questions. USER: Hi ASSISTANT: Hello</s>'
    >>> conversation_text(msgs, "tulu", eos="<eos>")
    '<|user|>\\nHi\\n<|assistant|>\\nHello<eos>'
    >>> conversation_text(msgs, "plain")
    'Hi\\n\\nHello'
    """
    if fmt == "tulu":
        text = ""
        for m in messages:
            role, content = m["role"], m["content"].strip()
            if role == "assistant":
                text += f"<|assistant|>\n{content}{eos}\n"
            elif role in ("user", "system"):
                text += f"<|{role}|>\n{content}\n"
            else:
                raise InputError(f"role {role!r} has no tulu tag", field="messages")
        return text.strip()
    turns = [m["content"] for m in messages if m.get("role") != "system"]
    if fmt == "plain":
        return "\n\n".join(turns)
    if fmt == "vicuna":
        text = VICUNA_SYSTEM + " "
        for i, content in enumerate(turns):
            if i % 2 == 0:
                text += f"USER: {content} " if content else "USER:"
            else:
                text += f"ASSISTANT: {content}</s>" if content else "ASSISTANT:"
        return text
    raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
