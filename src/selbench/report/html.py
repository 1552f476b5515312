"""The report as one self-contained HTML page, as Markdown, and its verdict as terminal text.

Self-contained: the CSS is inline, the plots are inline SVG, there is no script, no external font, image,
style sheet or link target; a Content-Security-Policy (`default-src 'none'`) tells the browser to refuse any
request the page might still make. Phone-first: viewport meta, one column, tables that scroll sideways inside
their own box, plots that scale to the screen's width. Every piece of text from the run (dataset names, model
specs, grid values) is HTML-escaped.
"""

from __future__ import annotations

import html
import re

from selbench.report.document import Code, Figure, Report, Section, Table

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
CSS = """
:root{color-scheme:light}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0 auto;
 padding:0 1rem 3rem;max-width:62rem;color:#1b1b1b;background:#fff}
h1{font-size:1.45rem;line-height:1.25;margin:1.2rem 0 .2rem}
h2{font-size:1.2rem;line-height:1.3;margin:2.4rem 0 .6rem;padding-bottom:.25rem;border-bottom:1px solid #ddd}
h3{font-size:1rem;margin:1.4rem 0 .3rem}
p{margin:.5rem 0}
.sub{color:#555;font-size:.9rem;margin:0 0 .8rem;overflow-wrap:anywhere}
.banner{background:#fff3e0;border:2px solid #d98200;border-radius:.5rem;padding:.7rem .9rem;margin:1rem 0}
.banner strong{display:block;font-size:1.05rem;margin-bottom:.3rem}
.banner ul{margin:.2rem 0 0;padding-left:1.1rem}
.headline{font-size:1.05rem;font-weight:600;background:#f3f6fb;border-left:4px solid #3b6db3;padding:.6rem .8rem}
.caption{font-weight:600;margin:1rem 0 .2rem}
.note,.absent,figcaption{color:#555;font-size:.9rem}
.absent{font-style:italic}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%;margin:.3rem 0 .8rem;
 border:1px solid #e2e2e2;border-radius:.35rem}
table{border-collapse:collapse;font-size:.85rem;width:max-content;min-width:100%}
th,td{padding:.32rem .6rem;border-bottom:1px solid #eee;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f5f5f5;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:last-child td{border-bottom:0}
.v-beats{background:#e2f3e2;color:#0f5a0f;font-weight:700}
.v-loses{background:#fbe3e3;color:#8b1313;font-weight:700}
.v-ties{color:#333}
.v-untested{color:#6b6b6b;font-style:italic;white-space:normal;min-width:14rem}
figure{margin:1.2rem 0 1.6rem}
svg.plot{display:block;width:100%;height:auto;max-width:32rem}
details{margin:.3rem 0}
summary{cursor:pointer;color:#2a5597}
summary.caption{color:#1b1b1b}
pre{overflow-x:auto;background:#f5f5f5;border-radius:.35rem;padding:.7rem;font-size:.8rem;line-height:1.4}
nav ol{padding-left:1.2rem;margin:.3rem 0}
"""
_NUMERIC = re.compile(r"[−+<>≤≥~]?\$?[\d.,]+(?:%| pts|×)?(?: \(.*\))?")


def _cell(text: str, style: str = "") -> str:
    classes = " ".join(c for c in (style, "num" if _NUMERIC.fullmatch(text) and not style else "") if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{html.escape(text)}</td>"


def table_html(table: Table) -> str:
    """A table in its own sideways-scrolling box, its title above and its note below."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in table.header)
    body = []
    for i, row in enumerate(table.rows):
        styles = table.styles[i] if table.styles else [""] * len(row)
        body.append("<tr>" + "".join(_cell(c, s) for c, s in zip(row, styles, strict=True)) + "</tr>")
    parts = [f'<p class="caption">{esc(table.title)}</p>' if table.title else "",
             f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>']
    if table.note:
        parts.append(f'<p class="note">{esc(table.note)}</p>')
    return "".join(parts)


def _block(block: Table | Figure | Code) -> str:
    esc = html.escape
    if isinstance(block, Table):
        return table_html(block)
    if isinstance(block, Code):
        return f'<details><summary class="caption">{esc(block.title)}</summary><pre>{esc(block.text)}</pre></details>'
    caption = f"<figcaption>{esc(block.caption)}</figcaption>" if block.caption else ""
    numbers = ""
    if block.table is not None:
        inner = Table("", block.table.header, block.table.rows, styles=block.table.styles, note=block.table.note)
        numbers = f"<details><summary>The numbers</summary>{table_html(inner)}</details>"
    return f'<figure><p class="caption">{esc(block.title)}</p>{block.svg}{caption}{numbers}</figure>'


def _section(section: Section) -> str:
    esc = html.escape
    parts = [f'<section id="{esc(section.id)}"><h2>{esc(section.title)}</h2>']
    parts += [f"<p>{esc(p)}</p>" for p in section.text]
    if section.absent:
        parts.append(f'<p class="absent">{esc(section.absent)}</p>')
    parts += [_block(b) for b in section.blocks]
    parts.append("</section>")
    return "\n".join(parts)


def to_html(report: Report) -> str:
    """The whole page: title, caveats banner, headline, verdict, figures, cost, provenance."""
    esc = html.escape
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
             f"<title>{esc(report.title)}</title><style>{CSS}</style></head><body>",
             f"<header><h1>{esc(report.title)}</h1>"]
    if report.subtitle:
        parts.append(f'<p class="sub">{esc(report.subtitle)}</p>')
    parts.append("</header>")
    if report.banners:
        items = "".join(f"<li>{esc(b)}</li>" for b in report.banners[1:])
        parts.append(f'<div class="banner" role="note"><strong>{esc(report.banners[0])}</strong>'
                     f"{f'<ul>{items}</ul>' if items else ''}</div>")
    if report.headline:
        parts.append(f'<p class="headline">{esc(report.headline)}</p>')
    links = "".join(f'<li><a href="#{esc(s.id)}">{esc(s.title)}</a></li>' for s in report.sections)
    sections = [_section(s) for s in report.sections]
    if sections:  # the verdict first, then the contents of the rest
        parts.append(sections[0])
        parts.append(f"<nav><details><summary>Contents</summary><ol>{links}</ol></details></nav>")
        parts.extend(sections[1:])
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table) -> list[str]:
    lines = [f"**{table.title}**", ""] if table.title else []
    lines += ["| " + " | ".join(_md_cell(h) or " " for h in table.header) + " |",
              "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"_{table.note}_"]
    return [*lines, ""]


def to_markdown(report: Report) -> str:
    """The same content as Markdown: figures become their title, caption and the table of what they plot."""
    lines = [f"# {report.title}", ""]
    if report.subtitle:
        lines += [report.subtitle, ""]
    if report.banners:
        lines += [f"> **{report.banners[0]}**", ">"] + [f"> - {b}" for b in report.banners[1:]] + [""]
    if report.headline:
        lines += [f"**{report.headline}**", ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.text:
            lines += [paragraph, ""]
        if section.absent:
            lines += [f"_{section.absent}_", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines += table_markdown(block)
            elif isinstance(block, Code):
                lines += [f"**{block.title}**", "", f"```{block.language}", block.text.rstrip("\n"), "```", ""]
            else:
                lines += [f"### Figure: {block.title}", ""]
                if block.caption:
                    lines += [block.caption, ""]
                if block.table is not None:
                    inner = Table("", block.table.header, block.table.rows, note=block.table.note)
                    lines += ["(plotted in report.html; the numbers:)", "", *table_markdown(inner)]
    return "\n".join(lines).rstrip("\n") + "\n"


def to_text(report: Report) -> str:
    """The caveats, the headline and the verdict table as plain text for the terminal."""
    lines = []
    if report.banners:
        lines += [report.banners[0], *(f"  - {b}" for b in report.banners[1:]), ""]
    lines += [report.headline, ""]
    verdict = report.sections[0] if report.sections else None
    tables = [b for b in (verdict.blocks if verdict else []) if isinstance(b, Table)]
    if tables:
        table = tables[-1]
        keep = [table.header.index(h) for h in ("Strategy", "Verdict", "Budget", "Benchmark", "Δ vs random [95% CI]",
                                                 "p (Holm)", "Extra selection $") if h in table.header]
        rows = [[table.header[i] for i in keep], *([row[i] for i in keep] for row in table.rows)]
        widths = [max(len(r[c]) for r in rows) for c in range(len(keep))]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    elif verdict is not None and verdict.absent:
        lines.append(verdict.absent)
    return "\n".join(lines)
