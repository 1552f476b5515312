"""The report's content, independent of its format: sections of paragraphs, tables and figures.

One `Report` is rendered three ways (`selbench.report.html`, `selbench.report.markdown`, `Report.to_json`),
so the page, the Markdown and the JSON say the same things. Tables hold both the text a person reads
(`rows`, already formatted: "$0.19", "45.1%", "<0.001") and the numbers behind it (`data`, for the JSON);
a figure holds its SVG (HTML only) and the table of what it plots (every format).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    """One table.

    Args:
        title: caption.
        header: column names.
        rows: formatted cells, one list per row (strings).
        data: the raw records behind the rows (numbers unrounded), for the JSON.
        styles: optional per-row list of per-cell CSS class names ("" for none), e.g. a verdict's colour.
        note: a sentence under the table.
    """

    title: str
    header: list[str]
    rows: list[list[str]]
    data: list[dict[str, Any]] = field(default_factory=list)
    styles: list[list[str]] | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "header": self.header, "rows": self.rows, "data": _plain(self.data),
                "note": self.note}


@dataclass
class Figure:
    """One plot: inline SVG markup (no XML prolog; ids already made unique), a caption, and its numbers.

    Args:
        title: heading of the figure.
        svg: `<svg ...>...</svg>` markup.
        caption: how to read it.
        table: the numbers it plots (shown under it in the page, as the figure in Markdown and JSON).
    """

    title: str
    svg: str
    caption: str = ""
    table: Table | None = None

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "caption": self.caption,
                "table": self.table.to_json() if self.table is not None else None}


@dataclass
class Code:
    """Verbatim text (the grid as resolved), shown preformatted.

    Args:
        title: caption.
        text: the text.
        language: for Markdown's code fence.
    """

    title: str
    text: str
    language: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "text": self.text, "language": self.language}


Block = Table | Figure | Code


@dataclass
class Section:
    """A titled part of the report.

    Args:
        id: anchor (letters, digits and dashes).
        title: heading.
        text: paragraphs (plain text).
        blocks: tables, figures and code, in order.
        absent: when the run has no data for this section, one sentence saying so (the section keeps its
            place so a reader sees what was not measured).
    """

    id: str
    title: str
    text: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    absent: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": self.text, "absent": self.absent,
                "blocks": [{"kind": type(b).__name__.lower(), **b.to_json()} for b in self.blocks]}


@dataclass
class Report:
    """The whole report.

    Args:
        title / subtitle: page heading and the line under it (run folder, date).
        banners: warnings a reader must see before any number (e.g. "tiny benchmarks: machinery, not a
            finding").
        headline: one or two sentences with the answer.
        sections: in reading order; the verdict first.
        summary: machine-readable essentials (verdict counts, paths), JSON only.
    """

    title: str
    subtitle: str = ""
    banners: list[str] = field(default_factory=list)
    headline: str = ""
    sections: list[Section] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "subtitle": self.subtitle, "banners": self.banners,
                "headline": self.headline, "summary": _plain(self.summary),
                "sections": [s.to_json() for s in self.sections]}


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars become Python numbers, NaN / NA become None, tuples become lists.

    >>> import numpy as np
    >>> _plain({"a": np.float64("nan"), "b": (np.int64(3), True), "c": {"d": np.bool_(False)}})
    {'a': None, 'b': [3, True], 'c': {'d': False}}
    """
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if hasattr(value, "item") and not isinstance(value, (bytes, bytearray)):
        try:
            return _plain(value.item())
        except (ValueError, TypeError):
            pass
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        if value != value:  # NaN-like (pandas.NA raises TypeError here)
            return None
    except TypeError:
        return None
    return str(value)
