"""Tool calls for `selbench serve`: the request's tools, and the call read back from a completion.

The tools are given to the chat template and the completion is read as tool-calling models write calls:
the first JSON object in it (`{"name", "arguments"}`, or the arguments alone when `tool_choice` forces a
function). Unlike OpenAI and vLLM there is no schema-constrained decoding: a small model may answer
off-format, which the client then counts as unparsed.
"""

from __future__ import annotations

import uuid
from typing import Any


def tool_request(body: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, str | None]:
    """(tools for the chat template, the function a call must name or "" for any), or (None, None) when the
    request asks for no tool call. Raises ValueError naming the field."""
    tools = body.get("tools")
    choice = body.get("tool_choice", "auto" if tools else "none")
    if not tools or choice == "none":
        return None, None
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance((t.get("function") or {}).get("name"), str) for t in tools
    ):
        raise ValueError("field 'tools': must be a list of {type: function, function: {name, parameters}}")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name not in {t["function"]["name"] for t in tools}:
            raise ValueError(f"field 'tool_choice': {name!r} is not one of the tools")
        return tools, name
    if choice not in ("auto", "required"):
        raise ValueError(f"field 'tool_choice': {choice!r} must be none, auto, required or a function")
    return tools, ""


def tool_call(text: str, tools: list[dict[str, Any]], forced: str) -> dict[str, Any] | None:
    """The function call in a completion, read as tool-calling models write it: the first JSON object in
    the text, either `{"name": ..., "arguments": {...}}` or (with a forced function) the arguments alone.
    None when the text holds no such object (the caller then returns plain content)."""
    import json

    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            obj, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        names = {t["function"]["name"] for t in tools}
        if isinstance(obj.get("name"), str) and obj["name"] in names:
            args = obj.get("arguments", obj.get("parameters", {}))
            name = obj["name"]
        elif forced:
            args, name = obj, forced
        else:
            continue
        if forced and name != forced:
            continue
        return {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
        }
    return None
