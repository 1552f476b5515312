"""A study summary as Markdown, HTML and JSON, written atomically side by side.

The report is built from plain tables (lists of rows), so the same content reaches every format; HTML
escapes every cell (dataset text and model names are untrusted).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from selbench.store import write_json_atomic, write_text_atomic

Table = tuple[str, list[str], list[list[Any]]]  # title, header, rows


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    text = str(value)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text[:12]  # a sha256: the prefix identifies it, the JSON report keeps it whole
    return text


def matrix_table(title: str, matrix: Mapping[str, Mapping[str, float]]) -> Table:
    names = list(matrix)
    return title, ["", *names], [[row, *(matrix[row].get(col) for col in names)] for row in names]


def records_table(title: str, records: Mapping[str, Mapping[str, Any]] | Sequence[Mapping[str, Any]], key: str = "name") -> Table:
    """Rows from a name -> record mapping (or a list of records), columns = the union of record keys."""
    items = list(records.items()) if isinstance(records, Mapping) else [(None, r) for r in records]
    columns: list[str] = []
    for _, record in items:
        columns += [c for c in record if c not in columns]
    header = ([key] if isinstance(records, Mapping) else []) + columns
    rows = [([name] if isinstance(records, Mapping) else []) + [record.get(c) for c in columns] for name, record in items]
    return title, header, rows


def study_tables(report: Mapping[str, Any]) -> list[Table]:
    tables: list[Table] = [records_table("Selections", report["selections"])]
    tables.append(matrix_table("Overlap (shared ids / budget of the row)", report["overlap"]))
    if report.get("training"):
        tables.append(records_table("Fine-tuning", report["training"]))
    if report.get("ifeval"):
        tables.append(records_table("IFEval (fractions)", report["ifeval"]))
    cost = report.get("cost", {})
    if cost.get("selection_per_1k"):
        tables.append(records_table("Selection cost per 1,000 pool examples (the study's Table 6)", cost["selection_per_1k"]))
    if cost.get("selection_vs_full"):
        tables.append(records_table("Selection cost vs full fine-tuning (the study's Table 2; full fine-tuning projected when not run)", cost["selection_vs_full"]))
    return tables


def to_markdown(title: str, intro: str, tables: Sequence[Table]) -> str:
    lines = [f"# {title}", "", intro, ""]
    for name, header, rows in tables:
        lines += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_fmt(c).replace("|", "\\|") for c in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


def to_html(title: str, intro: str, tables: Sequence[Table]) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}</style></head><body>",
        f"<h1>{esc(title)}</h1><p>{esc(intro)}</p>",
    ]
    for name, header, rows in tables:
        parts.append(f"<h2>{esc(name)}</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: Mapping[str, Any], out_dir: str | Path, title: str = "selbench study") -> dict[str, Path]:
    """Write `report.md`, `report.html` and `report.json` into `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    intro = (
        f"Dataset {report['dataset']['path']} ({report['dataset']['n']} examples); "
        f"budget {report['config'].get('budget')}; model {report['config'].get('model')}. "
        "Random baselines are overlap-constrained (the study's 30% bound) or strict (drawn outside every "
        "strategy's picks). At demo scale the scores show the pipeline, not an answer."
    )
    tables = study_tables(report)
    paths = {"markdown": out_dir / "report.md", "html": out_dir / "report.html", "json": out_dir / "report.json"}
    write_text_atomic(paths["markdown"], to_markdown(title, intro, tables))
    write_text_atomic(paths["html"], to_html(title, intro, tables))
    write_json_atomic(paths["json"], json.loads(json.dumps(report, default=str)))
    return paths
