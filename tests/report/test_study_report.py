"""The study report on a hand-made run folder: verdict first, every section, people's numbers, honesty, formats."""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from synthetic_run import MODEL_SHA, make_run
from typer.testing import CliRunner

from selbench.analysis.verdict import verdict_table
from selbench.cli.main import app
from selbench.errors import InputError
from selbench.report.honesty import BANNER, caveats
from selbench.report.run_folder import read_run
from selbench.report.study import write_study_report

SECTIONS = ["verdict", "vs-random", "head-to-head", "budget-trends", "correlations", "lora-vs-full",
            "cost-vs-performance", "overlap", "regret", "cost", "provenance"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("study"))
    out = write_study_report(run)
    return run, out, Path(out["html"]).read_text(encoding="utf-8")


def _text(page: str) -> str:
    """The page's text outside the plots (SVGs hold tick labels, not the report's formatting)."""
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", " ", page, flags=re.S)))


def test_three_formats_are_written_side_by_side(written):
    run, out, _ = written
    assert {p.name for p in (run / "report").iterdir()} == {"report.html", "report.md", "report.json"}
    assert out["markdown"].endswith("report.md") and out["json"].endswith("report.json")


def test_verdict_comes_first_and_every_section_is_there(written):
    _, out, page = written
    ids = re.findall(r'<section id="([^"]+)"', page)
    assert ids == SECTIONS
    # Nothing but the title, the caveats and the headline before the verdict.
    before = page[: page.index('<section id="verdict"')]
    assert "<svg" not in before and "<table" not in before
    md = Path(out["markdown"]).read_text(encoding="utf-8")
    assert re.findall(r"^## (.+)$", md, flags=re.M)[0].startswith("Verdict")
    doc = json.loads(Path(out["json"]).read_text(encoding="utf-8"))
    assert [s["id"] for s in doc["sections"]] == SECTIONS
    absent = {s["id"]: s["absent"] for s in doc["sections"] if s["absent"]}
    assert absent.keys() == {"lora-vs-full"}, absent  # every other section has its data in this run


def test_verdict_is_the_analysis_verdict_table(written):
    run, out, page = written
    folder = read_run(run)
    expected = verdict_table(folder.results, folder.items)
    doc = json.loads(Path(out["json"]).read_text(encoding="utf-8"))
    got = pd.DataFrame(doc["summary"]["verdict"])
    assert len(got) == len(expected) == 8  # 2 budgets x 2 benchmarks x (longest, strict-random)
    merged = got.merge(expected, on=["budget", "benchmark", "strategy"], suffixes=("", "_exp"))
    assert (merged["verdict"] == merged["verdict_exp"]).all()
    assert merged["p_holm"].to_numpy() == pytest.approx(merged["p_holm_exp"].to_numpy())
    # Longest is built to win by 45 points on IFEval at budget 32: it must read as beating random.
    longest = got[(got["strategy"] == "longest") & (got["benchmark"] == "ifeval") & (got["budget"] == 32)]
    assert longest["verdict"].item() == "beats random"
    assert doc["summary"]["verdicts"]["beats random"] >= 1
    assert 'class="v-beats">beats random</td>' in page


def test_numbers_are_formatted_for_people(written):
    _, out, page = written
    text = _text(page)
    assert "+$0.19" in text  # Longest's extra selection cost: $0.12 scoring + $0.07 picking - $0.001 random
    assert "<0.001" in text  # a Holm p-value of the clear win
    assert re.search(r"[+−]\d+\.\d pts \[", text)  # deltas with intervals in percentage points
    assert re.search(r"\d\.\d+e[-+]?\d", text) is None, "no scientific notation in the page's text"
    assert "nan" not in text.lower().split()
    md = Path(out["markdown"]).read_text(encoding="utf-8")
    assert "+$0.19" in md and "<0.001" in md and re.search(r"\d\.\d+e[-+]?\d", md) is None


def test_the_same_content_in_html_markdown_and_json(written):
    _, out, page = written
    md = Path(out["markdown"]).read_text(encoding="utf-8")
    doc = json.loads(Path(out["json"]).read_text(encoding="utf-8"))
    text = _text(page)
    for section in doc["sections"]:
        assert section["title"] in md and htmllib.escape(section["title"]) in page
        for block in section["blocks"]:
            table = block.get("table") if block["kind"] == "figure" else (block if block["kind"] == "table" else None)
            if table is None:
                continue
            for row in table["rows"]:
                for cell in row:
                    assert cell.replace("|", "\\|") in md, cell
                    assert cell in text, cell


def test_honesty_banner_for_a_small_model_and_tiny_benchmarks(written):
    _, out, page = written
    assert page.index(BANNER) < page.index('<section id="verdict"')
    text = _text(page)
    assert "ifeval has 40 items" in text and "smollm2-135m-instruct" in text
    doc = json.loads(Path(out["json"]).read_text(encoding="utf-8"))
    assert doc["banners"][0] == BANNER and len(doc["summary"]["caveats"]) >= 2
    assert Path(out["markdown"]).read_text(encoding="utf-8").count(BANNER) == 1


def test_no_banner_when_the_study_is_big_enough():
    cell = dict(dataset="d", preset="p", lora=False, benchmark="ifeval", metric="acc", value=0.5)
    results = pd.DataFrame([cell | dict(budget=b, strategy=s, seed=k) for b in (1000, 5000)
                            for s, k in (("random", 0), ("random", 1), ("random", 2), ("longest", None))])
    items = pd.DataFrame({"benchmark": "ifeval", "item": [str(i) for i in range(541)]})
    assert caveats(results, items, {"model": "hf://meta-llama/Llama-2-7b-hf"}) == []
    grid = {"model": "hf://meta-llama/Llama-2-7b-hf", "benchmarks": {"alpacaeval": {"judge": {"model": "smollm2-135m-instruct"}}}}
    assert any("judge is a small model" in c for c in caveats(results, items, grid))
    assert any("planned cells have no results" in c
               for c in caveats(results.assign(cell="d/b1000/longest/p"), items, {}, ["d/b1000/longest/p", "d/b1000/x/p"]))


def test_page_is_phone_ready_and_self_contained(written):
    _, _, page = written
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "default-src 'none'" in page  # the browser refuses any request
    assert page.count('<div class="scroll"><table>') == page.count("<table>") > 5  # every table scrolls in its box
    assert page.count("<svg") >= 8 and page.count('class="plot"') == page.count("<svg")
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "ids of the inline SVGs collide"


def test_provenance_names_the_models_data_and_libraries(written):
    _, out, page = written
    text = _text(page)
    assert MODEL_SHA[:12] in text and ("d" * 12) in text
    assert "transformers" in text and "5.24.0" in text
    assert "budgets:" in text and "max_overlap: 0.3" in text  # the grid as resolved
    doc = json.loads(Path(out["json"]).read_text(encoding="utf-8"))
    prov = next(s for s in doc["sections"] if s["id"] == "provenance")
    models = next(b for b in prov["blocks"] if b["title"].startswith("Fine-tuned models"))
    assert models["data"][0]["inputs"]["model"]["model_sha256"] == MODEL_SHA  # whole hashes in the JSON


def test_cost_tables_match_the_manifests(written):
    _, out, _ = written
    doc = json.loads(Path(out["json"]).read_text(encoding="utf-8"))
    cost = next(s for s in doc["sections"] if s["id"] == "cost")
    per_k, vs_full = (b["data"] for b in cost["blocks"])
    longest = next(r for r in per_k if r["strategy"] == "longest")
    # Scoring ($0.12) counted once for both budgets, plus one selection ($0.07), per 1,000 of 400 examples.
    assert longest["scoring_usd"] == pytest.approx(0.12)
    assert longest["usd_per_1k"] == pytest.approx((0.12 + 0.07) / 0.4)
    row = next(r for r in vs_full if r["strategy"] == "longest")
    assert row["total_selection_usd"] == pytest.approx(0.12 + 2 * 0.07)
    assert row["full_finetune_usd"] == pytest.approx(0.004 * 400) and not row["full_finetune_projected"]
    assert {r["strategy"] for r in per_k} == {"longest", "random", "strict-random"}  # `full` selects nothing


def test_sections_without_data_say_so(tmp_path):
    run = make_run(tmp_path, budgets=(32,), head_to_head=False)
    out = write_study_report(run)
    doc = json.loads(Path(out["json"]).read_text(encoding="utf-8"))
    absent = {s["id"]: s["absent"] for s in doc["sections"] if s["absent"]}
    assert set(absent) == {"head-to-head", "budget-trends", "correlations", "lora-vs-full", "regret"}
    assert "No LoRA-vs-full pairs" in absent["lora-vs-full"]
    assert "One budget" in absent["budget-trends"]
    page = Path(out["html"]).read_text(encoding="utf-8")
    assert page.count("<svg") >= 3  # vs random, cost vs score, overlap


def test_a_moved_run_folder_still_finds_its_manifests(tmp_path):
    run = make_run(tmp_path / "a")
    moved = shutil.copytree(run, tmp_path / "b" / "run")
    shutil.rmtree(run)
    folder = read_run(moved)
    assert len(folder.selections) == 11 and folder.datasets["pool"]["n"] == 400 and not folder.missing
    out = write_study_report(moved)
    assert Path(out["html"]).parent == moved / "report"


def test_missing_files_are_listed_not_fatal(tmp_path):
    run = make_run(tmp_path, missing_model=True)
    (run / "items.parquet").unlink()
    folder = read_run(run)
    assert "items.parquet" in folder.missing and any("meta.json" in m for m in folder.missing)
    doc = json.loads(Path(write_study_report(run)["json"]).read_text(encoding="utf-8"))
    assert doc["summary"]["verdicts"]["untested"] == 8
    assert any("No per-item scores" in c for c in doc["summary"]["caveats"])


def test_bad_run_folders_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        read_run(tmp_path / "nope")
    run = make_run(tmp_path)
    (run / "plan.json").write_text("{not json")
    with pytest.raises(InputError, match=r"plan.json:1: not JSON"):
        read_run(run)
    (run / "plan.json").unlink()
    (run / "results.parquet").unlink()
    with pytest.raises(InputError, match="results.parquet: no such file"):
        read_run(run)


def test_cli_report_json_and_errors(tmp_path):
    run = make_run(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(printed["html"]) == tmp_path / "out" / "report.html" and Path(printed["markdown"]).is_file()
    human = runner.invoke(app, ["report", str(run)])
    assert human.exit_code == 0 and "beats random" in human.stdout and "report: " in human.stdout
    (run / "grid.yaml").write_text("model: [unclosed\n")
    bad = runner.invoke(app, ["report", str(run)])
    assert bad.exit_code == 2 and "grid.yaml" in bad.output and "not YAML" in bad.output


def test_lora_vs_full_when_the_same_selections_are_trained_both_ways(tmp_path):
    run = make_run(tmp_path, full_finetuning=True, head_to_head=False)
    out = write_study_report(run)
    doc = json.loads(Path(out["json"]).read_text(encoding="utf-8"))
    lora = next(s for s in doc["sections"] if s["id"] == "lora-vs-full")
    assert lora["absent"] is None
    figure = lora["blocks"][0]
    assert figure["kind"] == "figure" and figure["table"]["data"][0]["n"] == 11  # every selection, paired
    verdict = next(s for s in doc["sections"] if s["id"] == "verdict")
    table = verdict["blocks"][-1]
    assert "Setup" in table["header"] and {r[table["header"].index("Setup")] for r in table["rows"]} == {
        "demo, LoRA", "set1, full fine-tuning"}
    assert sum(doc["summary"]["verdicts"].values()) == 8  # 2 budgets x 2 setups x (longest, strict-random)
    page = Path(out["html"]).read_text(encoding="utf-8")
    assert page.count("<svg") >= 6
