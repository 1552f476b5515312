"""The study summary report: same tables in every format, HTML escaped, written atomically."""

from __future__ import annotations

import json

from selbench.report.summary import matrix_table, records_table, to_html, to_markdown, write_report

REPORT = {
    "config": {"budget": 2, "model": "tiny"},
    "dataset": {"path": "d", "n": 10, "n_dropped": 0, "sha256": "a" * 64},
    "selections": {
        "longest": {"strategy": "longest", "n_selected": 2, "ids_sha256": "b" * 64},
        "random-s0": {"strategy": "random", "n_selected": 2, "ids_sha256": "c" * 64},
    },
    "overlap": {"longest": {"longest": 1.0, "random-s0": 0.5}, "random-s0": {"longest": 0.5, "random-s0": 1.0}},
    "jaccard": {},
    "training": {},
    "ifeval": {"base": {"prompt_strict": 0.25, "n": 4}},
    "cost": {"selection_per_1k": [{"strategy": "longest", "usd_per_1k": 0.5}], "selection_vs_full": []},
}


def test_matrix_and_records_tables():
    title, header, rows = matrix_table("Overlap", REPORT["overlap"])
    assert header == ["", "longest", "random-s0"]
    assert rows[0] == ["longest", 1.0, 0.5]
    _, header, rows = records_table("Selections", REPORT["selections"])
    assert header == ["name", "strategy", "n_selected", "ids_sha256"]
    assert rows[1][0] == "random-s0"


def test_markdown_shortens_hashes_and_html_escapes_cells():
    table = ("T", ["name", "text"], [["<script>alert(1)</script>", "x|y"], ["h", "d" * 64]])
    md = to_markdown("title", "intro", [table])
    assert "x\\|y" in md and "d" * 12 in md and "d" * 13 not in md
    page = to_html("title", "intro", [table])
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_write_report_writes_three_formats(tmp_path):
    paths = write_report(REPORT, tmp_path / "report")
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"report.md", "report.html", "report.json"}
    assert json.loads(paths["json"].read_text())["ifeval"]["base"]["prompt_strict"] == 0.25
    md = paths["markdown"].read_text()
    assert "## IFEval (fractions)" in md and "## Fine-tuning" not in md
    assert "Table 6" in md and "Table 2" not in md  # the study numbers wall clock per 1k as Table 6
