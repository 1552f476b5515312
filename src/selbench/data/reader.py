"""Streaming readers: JSON arrays, JSONL, Parquet and `hf://` datasets -> `(line, dict | Dropped)`.

Files are read as bytes and decoded here so that every problem has a line number: a JSONL line that is
not UTF-8 or not JSON becomes a `Dropped` record naming that line instead of an exception that names
nothing. JSON arrays are parsed one element at a time with `json.JSONDecoder.raw_decode` over a buffered
reader (never `json.load`), so a 125 MB file costs a few MB of memory and a file cut off in the middle of
an element (the packaged ShareGPT pool is) yields every whole element before it, then one `truncated`
record. A syntax error inside a JSON array raises `InputError` at once, even under --skip-invalid: the
array cannot be parsed past it, so "skipping the record" would silently drop the rest of the file.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from selbench.data.base import MALFORMED_JSON, NON_UTF8, TRUNCATED, WRONG_TYPE, Dropped
from selbench.errors import InputError

RawItem = tuple[int, "dict[str, Any] | Dropped"]

_CHUNK_CHARS = 1 << 22
_NEAR_END = 64  # longer than any JSON token that can be cut in two (literals, numbers, \uXXXX pairs)
_WS = re.compile(r"\s*")
# Lone surrogates come from undecodable bytes (surrogateescape) or from "\udXXX" escapes in the JSON text.
_SUSPECT = re.compile("[\ud800-\udfff]|\\\\[uU][dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Python's JSON parser recurses per nesting level; past ~1000 levels it raises RecursionError.
NESTED_TOO_DEEPLY = "not valid JSON here: nested too deeply to parse (more levels than Python's recursion limit)"


def iter_records(path: str | Path, *, allow_truncated: bool = False) -> Iterator[RawItem]:
    """Stream raw records (dicts) of a JSON array, JSONL or Parquet file, or an `hf://` dataset.

    Args:
        path: a file, or `hf://org/name[:split]` (see `selbench.data.hf`).
        allow_truncated: a JSON array cut off mid-element ends with a non-fatal `truncated` record instead
            of an invalid one.

    Yields:
        (line, record): `line` is 1-based (JSONL line, first line of a JSON array element, Parquet/dataset row).
    """
    text = str(path)
    if text.startswith("hf://"):
        from selbench.data.hf import iter_hf_rows

        yield from iter_hf_rows(text)
        return
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if path.suffix == ".parquet" or head.startswith(b"PAR1"):
        yield from _iter_parquet(path)
        return
    if head.lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"["):
        yield from _iter_json_array(path, allow_truncated)
    else:
        yield from _iter_jsonl(path)


def bad_text_field(record: dict[str, Any]) -> str | None:
    """The first top-level field whose text holds a lone surrogate (undecodable bytes), or None."""
    for key, value in record.items():
        if _SURROGATE.search(json.dumps(value, ensure_ascii=False)) is not None:
            return str(key)
    return None


def _check_record(obj: Any, line: int) -> RawItem:
    if not isinstance(obj, dict):
        return line, Dropped(WRONG_TYPE, f"a record must be a JSON object, got {type(obj).__name__}")
    return line, obj


def _non_utf8(record: dict[str, Any], line: int) -> RawItem:
    key = bad_text_field(record)
    return line, Dropped(NON_UTF8, "text is not valid UTF-8", field=key)


def _iter_jsonl(path: Path) -> Iterator[RawItem]:
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if line_no == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield line_no, Dropped(NON_UTF8, f"bytes are not valid UTF-8 at column {exc.start + 1}")
                continue
            try:
                obj = json.loads(text.rstrip("\r\n"))  # else an error at the line's end points past it
            except json.JSONDecodeError as exc:
                yield line_no, Dropped(MALFORMED_JSON, f"not valid JSON: {exc.msg} at column {exc.colno}")
                continue
            except RecursionError:
                yield line_no, Dropped(MALFORMED_JSON, NESTED_TOO_DEEPLY)
                continue
            item = _check_record(obj, line_no)
            # Strictly decoded text holds no raw surrogate: only a "\udXXX" escape can make one (a cheap
            # substring test first; the regex on the few lines that pass it).
            if isinstance(item[1], dict) and _maybe_escaped_surrogate(text) and _SUSPECT.search(text) and bad_text_field(item[1]) is not None:
                item = _non_utf8(item[1], line_no)
            yield item


def _maybe_escaped_surrogate(text: str) -> bool:
    return "\\ud" in text or "\\uD" in text or "\\Ud" in text or "\\UD" in text


class _Buffer:
    """Decoded text of a byte stream, consumed from the front, with the current line number."""

    def __init__(self, fh) -> None:
        self.fh = fh
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.text = ""
        self.pos = 0
        self.line = 1
        self.eof = False

    def more(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(_CHUNK_CHARS)
        self.eof = not chunk
        decoded = self.decoder.decode(chunk, final=self.eof)
        self.text = self.text[self.pos :] + decoded
        self.pos = 0
        return bool(decoded) or not self.eof

    def skip_ws(self) -> bool:
        """Skip whitespace; False at end of input."""
        while True:
            self.advance(_WS.match(self.text, self.pos).end())
            if self.pos < len(self.text):
                return True
            if not self.more():
                return False

    def advance(self, new_pos: int) -> None:
        self.line += self.text.count("\n", self.pos, new_pos)
        self.pos = new_pos


def _iter_json_array(path: Path, allow_truncated: bool) -> Iterator[RawItem]:
    decoder = json.JSONDecoder()
    with open(path, "rb") as fh:
        buf = _Buffer(fh)
        buf.more()
        if buf.text.startswith("\ufeff"):
            buf.pos = 1
        buf.skip_ws()
        buf.advance(buf.pos + 1)  # the "[" that iter_records saw
        count = 0
        expect_comma = False
        while True:
            if not buf.skip_ws():
                yield buf.line, _truncation(count, allow_truncated, "the array is never closed")
                return
            char = buf.text[buf.pos]
            if char == "]":
                return
            if expect_comma:
                if char != ",":
                    _broken_array(path, buf.line, f"expected ',' or ']' after element {count}")
                buf.advance(buf.pos + 1)
                expect_comma = False
                continue
            start_line = buf.line
            try:
                obj, end = decoder.raw_decode(buf.text, buf.pos)
            except RecursionError:
                _broken_array(path, start_line, f"nested too deeply to parse (element {count + 1})")
            except json.JSONDecodeError as exc:
                # Running out of text fails within a few characters of the end ("fals", "\\u00", "12" + "3")
                # or as an unterminated string; any of those may just need the next chunk.
                near_end = exc.pos >= len(buf.text) - _NEAR_END or exc.msg.startswith("Unterminated string")
                if near_end and not buf.eof:
                    buf.more()
                    continue
                if _ran_out(buf.text, exc):
                    yield start_line, _truncation(count, allow_truncated, f"the file ends inside element {count + 1}")
                    return
                _broken_array(path, start_line + buf.text.count("\n", buf.pos, exc.pos), f"{exc.msg} (element {count + 1})")
            if end >= len(buf.text) and not buf.eof and buf.more():
                continue  # a bare scalar may continue in the next chunk; parse it again whole
            suspect = _SUSPECT.search(buf.text, buf.pos, end) is not None
            buf.advance(end)
            count += 1
            expect_comma = True
            item = _check_record(obj, start_line)
            if suspect and isinstance(item[1], dict) and bad_text_field(item[1]) is not None:
                item = _non_utf8(item[1], start_line)
            yield item


def _ran_out(text: str, exc: json.JSONDecodeError) -> bool:
    """At end of file: did parsing fail because the text stops (truncation) rather than on a bad token?

    A whole array ends with "]"; a cut-off one ends wherever the cut fell: in a string (unterminated), right
    after some inner token (the error is at the very end), or anywhere else before the closing "]".
    """
    stripped = text.rstrip()
    return not stripped.endswith("]") or exc.msg.startswith("Unterminated string") or exc.pos >= len(stripped)


def _broken_array(path: Path, line: int, what: str) -> NoReturn:
    """A syntax error inside a JSON array is fatal even with --skip-invalid: nothing after it can be parsed,
    and skipping one record would silently lose the rest of the file."""
    raise InputError(f"not valid JSON: {what}; a JSON array cannot be read past a syntax error", path=path, line=line)


def _truncation(count: int, allow: bool, what: str) -> Dropped:
    return Dropped(TRUNCATED, f"truncated JSON array: {what}; {count} whole elements read", invalid=not allow)


def _iter_parquet(path: Path) -> Iterator[RawItem]:
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        raise InputError(f"not a readable Parquet file: {exc}", path=path) from None
    row = 0
    for batch in reader.iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            row += 1
            yield row, record
