"""`selbench demo --quick`: the embedded default study's data, selection and cost stages, end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from selbench.cli.main import app


@pytest.mark.slow
def test_quick_demo_end_to_end_and_cached_rerun(tmp_path):
    out = tmp_path / "demo"
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--quick", "--out", str(out), "--budget", "16", "--json"])
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout.strip().splitlines()[-1])
    report = json.loads((out / "report" / "report.json").read_text())
    assert result["report"].endswith("report.html")
    sels = report["selections"]
    assert set(sels) == {"longest", "random-s0", "random-s1", "random-s2", "strict-random-s0"}
    assert all(s["n_selected"] == 16 for s in sels.values())
    # The study's bound holds for every random baseline, and strict-random never meets longest.
    for name in ("random-s0", "random-s1", "random-s2"):
        assert all(v <= 0.3 for v in sels[name]["overlap_with_against"].values())
    assert report["overlap"]["strict-random-s0"]["longest"] == 0
    assert {row["strategy"] for row in report["cost"]["selection_per_1k"]} == {"longest", "random", "strict-random"}

    again = runner.invoke(app, ["demo", "--quick", "--out", str(out), "--budget", "16", "--json"])
    assert again.exit_code == 0, again.output
    rerun = json.loads((out / "report" / "report.json").read_text())
    ids = {name: s["ids_sha256"] for name, s in report["selections"].items()}
    assert {name: s["ids_sha256"] for name, s in rerun["selections"].items()} == ids, "a re-run reproduces every selection"
    assert rerun["seconds"] < report["seconds"]
