"""`selbench report RUN_DIR`: the study's report, from the run folder alone.

    paths = write_study_report("runs/my-study")     # runs/my-study/report/report.{html,md,json}

Reads only the run folder (`selbench.report.run_folder`), computes every statistic with `selbench.analysis`,
and writes one self-contained HTML page, its Markdown and its JSON, with the same content (`Report`). The
order is the reader's: caveats (when the run is too small to be a finding), the verdict, the figures (Chasing
Random's Figures 6, 2, 4/11, 7, 1/12/13, budget trends, overlap, regret), the cost tables (Tables 2 and 6),
and the provenance.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from selbench.report.against_random import (
    budget_trends_section,
    head_to_head_section,
    regret_section,
    vs_random_section,
)
from selbench.report.answer import verdict_counts, verdict_section
from selbench.report.document import Report, Section
from selbench.report.honesty import BANNER, caveats
from selbench.report.html import to_html, to_markdown
from selbench.report.provenance import cost_section, provenance_section
from selbench.report.relations import correlations_section, lora_section, overlap_section, pareto_section
from selbench.report.run_folder import RunFolder, read_run
from selbench.store import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

TITLE = "Does selection beat random?"


def _guarded(name: str, build, *args) -> Section:
    """A section, or, should its analysis fail on data the checks did not foresee, a section saying so
    (one broken figure must not cost the reader the verdict). Bad input is raised before this point."""
    try:
        return build(*args)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        log.warning("report section %s failed: %s", name, exc, exc_info=True)
        return Section(name, name.replace("-", " ").capitalize(),
                       absent=f"This section could not be computed from the run's tables: {type(exc).__name__}: {exc}")


def build_report(run: RunFolder) -> Report:
    """The report's content for one run folder (pure: reads nothing beyond `run`)."""
    results, items = run.results, run.items
    planned = [str(c.get("id")) for c in run.cells()] or None
    reasons = caveats(results, items, run.grid, planned)
    verdict, table, headline = verdict_section(results, items)
    max_overlap = (run.grid.get("random") or {}).get("max_overlap") if isinstance(run.grid.get("random"), dict) else None
    sections = [
        verdict,
        _guarded("vs-random", vs_random_section, results, run.base_results),
        _guarded("head-to-head", head_to_head_section, results),
        _guarded("budget-trends", budget_trends_section, results),
        _guarded("correlations", correlations_section, results),
        _guarded("lora-vs-full", lora_section, results),
        _guarded("cost-vs-performance", pareto_section, results),
        _guarded("overlap", overlap_section, run.cells(), run.selections, max_overlap),
        _guarded("regret", regret_section, results),
        _guarded("cost", cost_section, run),
        provenance_section(run),
    ]
    datasets = sorted(map(str, results["dataset"].unique())) if len(results) else []
    model = run.base_model or "?"
    subtitle = f"Datasets: {', '.join(datasets) or 'none'} · base model {model} · run folder {run.path}"
    summary = {"verdicts": verdict_counts(table), "caveats": reasons, "run_dir": str(run.path),
               "cells": int(len(results.drop_duplicates(["dataset", "budget", "strategy", "seed", "preset", "lora"])))
               if len(results) else 0,
               "verdict": table.to_dict("records") if len(table) else []}
    return Report(TITLE, subtitle, [BANNER, *reasons] if reasons else [], headline, sections, summary)


def write_study_report(run_dir: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Read `run_dir`, write `report.html`, `report.md` and `report.json` into `out` (default
    `run_dir/report`), and return their paths (`html`, `markdown`, `json`) and the report's summary."""
    run = read_run(run_dir)
    report = build_report(run)
    out_dir = Path(out) if out is not None else Path(run_dir) / "report"
    paths = {"html": out_dir / "report.html", "markdown": out_dir / "report.md", "json": out_dir / "report.json"}
    page, markdown = to_html(report), to_markdown(report)
    document = json.loads(json.dumps(report.to_json(), allow_nan=False))
    write_text_atomic(paths["markdown"], markdown)
    write_json_atomic(paths["json"], document)
    write_text_atomic(paths["html"], page)
    return {**{k: str(v) for k, v in paths.items()}, "summary": document["summary"], "report": report}
