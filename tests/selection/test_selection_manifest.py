"""End to end: `run_selection` and `selbench select` write manifests that are deterministic, cached by
content, and honest about overlaps and fallbacks."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from selbench.cli.main import app
from selbench.errors import InputError
from selbench.hashing import sha256_lines
from selbench.selection.manifest import load_manifest, run_selection
from selbench.selection.random import RandomStrategy
from selbench.store import StepStore

runner = CliRunner()


def test_manifest_fields_and_determinism_across_caches(pool_3k, tmp_path):
    a = run_selection(pool_3k, "random", 500, tmp_path / "a.json", seed=3, store=StepStore(tmp_path / "c1"))
    b = run_selection(pool_3k, "random", 500, tmp_path / "b.json", seed=3, store=StepStore(tmp_path / "c2"))
    assert not a.cached and not b.cached
    ma, mb = load_manifest(tmp_path / "a.json"), load_manifest(tmp_path / "b.json")
    assert ma["ids"] == mb["ids"] and len(ma["ids"]) == 500 == len(set(ma["ids"]))
    assert ma["ids_sha256"] == sha256_lines(ma["ids"])
    for field in ("strategy", "params", "budget", "seed", "dataset", "ids", "ids_sha256", "overlap", "cost"):
        assert field in ma
    assert ma["dataset"]["sha256"] and ma["dataset"]["n"] == 3000
    assert ma["params"] == {"max_overlap": 0.3, "max_tries": 2000}
    assert ma["cost"]["wall_seconds"] > 0 and ma["cost"]["usd"] > 0
    c = run_selection(pool_3k, "random", 500, tmp_path / "c.json", seed=4, store=StepStore(tmp_path / "c1"))
    assert c.manifest["ids"] != ma["ids"]


def test_scores_computed_once_for_every_budget(pool_3k, tmp_path):
    store = StepStore(tmp_path / "cache")
    runs = [run_selection(pool_3k, "longest", budget, tmp_path / f"l{budget}.json", store=store)
            for budget in (100, 500, 1000)]
    cached = [run.manifest["scores"]["length"]["cached"] for run in runs]
    assert cached == [False, True, True]
    keys = {run.manifest["scores"]["length"]["config_key"] for run in runs}
    assert len(keys) == 1 and len(list((store.steps_dir / "score").iterdir())) == 1
    score_parts = [run.manifest["cost"]["extra"]["parts"][0] for run in runs]
    assert score_parts[0]["wall_seconds"] > 0
    assert [p["wall_seconds"] for p in score_parts[1:]] == [0.0, 0.0]
    # The recorded scoring cost travels with every manifest, so tables can count it once.
    assert runs[2].manifest["scores"]["length"]["cost"] == runs[0].manifest["scores"]["length"]["cost"]
    # Longest at 100 is the prefix of longest at 1000 (same ranking, deterministic ties).
    assert runs[0].manifest["ids"] == runs[2].manifest["ids"][:100]


def test_select_key_changes_with_every_input(pool_3k, tmp_path, make_pool, monkeypatch):
    store = StepStore(tmp_path / "cache")
    longest = run_selection(pool_3k, "longest", 300, tmp_path / "longest.json", store=store).manifest
    other = run_selection(pool_3k, "longest", 200, tmp_path / "longest200.json", store=store).manifest

    def key(data=pool_3k, strategy="random", budget=300, seed=0, params=None, against=(tmp_path / "longest.json",)):
        return run_selection(data, strategy, budget, tmp_path / "k.json", seed=seed, params=params,
                             against=against, store=store).manifest["select_key"]

    base = key()
    other_pool = make_pool(tmp_path / "other", 3000, seed=1)
    run_selection(other_pool, "longest", 300, tmp_path / "olongest.json", store=store)
    perturbed = {
        "dataset": key(data=other_pool, against=(tmp_path / "olongest.json",)),
        "strategy": key(strategy="strict-random", params={"reference_budget": 200}),
        "budget": key(budget=301),
        "seed": key(seed=1),
        "params": key(params={"max_overlap": 0.2}),
        "against": key(against=(tmp_path / "longest200.json",)),
        "against order": key(against=(tmp_path / "longest200.json", tmp_path / "longest.json")),
    }
    assert base == key()
    monkeypatch.setattr(RandomStrategy, "VERSION", RandomStrategy.VERSION + 1)
    perturbed["version"] = key()
    monkeypatch.undo()
    assert len(set(perturbed.values()) | {base}) == len(perturbed) + 1, perturbed
    assert longest["select_key"] != other["select_key"]


def test_select_key_changes_with_the_scores(pool_3k, tmp_path, tiny_model_dir):
    store = StepStore(tmp_path / "cache")
    chars = run_selection(pool_3k, "longest", 50, tmp_path / "c.json", store=store).manifest
    tokens = run_selection(pool_3k, "longest", 50, tmp_path / "t.json", store=store,
                           params={"unit": "tokens", "tokenizer": str(tiny_model_dir)}).manifest
    assert chars["scores"]["length"]["config_key"] != tokens["scores"]["length"]["config_key"]
    assert chars["select_key"] != tokens["select_key"]


def test_overlap_constrained_random_meets_the_bound_end_to_end(pool_3k, tmp_path):
    run_selection(pool_3k, "longest", 1500, tmp_path / "longest.json")
    manifest = run_selection(pool_3k, "random", 1500, tmp_path / "random.json", seed=1,
                             against=[tmp_path / "longest.json"]).manifest
    assert manifest["fallback"] == {"used": False, "reason": None}
    assert manifest["overlap"]["longest"] <= 0.3
    shared = set(manifest["ids"]) & set(load_manifest(tmp_path / "longest.json")["ids"])
    assert manifest["overlap"]["longest"] == len(shared) / 1500
    assert manifest["against"]["longest"]["ids_sha256"] == load_manifest(tmp_path / "longest.json")["ids_sha256"]


def test_infeasible_bound_is_recorded(pool_3k, tmp_path):
    run_selection(pool_3k, "longest", 1500, tmp_path / "longest.json")
    manifest = run_selection(pool_3k, "random", 2500, tmp_path / "random.json",
                             against=[tmp_path / "longest.json"]).manifest
    assert manifest["fallback"]["used"] and "infeasible" in manifest["fallback"]["reason"]
    assert manifest["overlap"]["longest"] > 0.3


def test_strict_random_avoids_every_selection(pool_3k, tmp_path):
    run_selection(pool_3k, "longest", 1000, tmp_path / "longest.json")
    run_selection(pool_3k, "random", 1000, tmp_path / "random.json", seed=5)
    manifest = run_selection(pool_3k, "strict-random", 500, tmp_path / "strict.json",
                             params={"reference_budget": 1000},
                             against=[tmp_path / "longest.json", tmp_path / "random.json"]).manifest
    taken = set(load_manifest(tmp_path / "longest.json")["ids"]) | set(load_manifest(tmp_path / "random.json")["ids"])
    assert not taken & set(manifest["ids"])
    assert manifest["overlap"] == {"longest": 0.0, "random": 0.0}
    # An explicit reference budget says the selections were made at that budget or more.
    with pytest.raises(InputError, match="reference-budget") as info:
        run_selection(pool_3k, "strict-random", 500, tmp_path / "s2.json", params={"reference_budget": 2000},
                      against=[tmp_path / "longest.json"])
    assert info.value.field == "budget"


def test_strict_random_excludes_every_against_id_by_default(pool_3k, tmp_path):
    """Issue 10 item 3: DESIGN.md's plain call (no --reference-budget) with a 300-example selection exited 2
    (the default reference budget was 10,000); it samples from the examples no --against selection picked."""
    longest, rand, strict = tmp_path / "longest.json", tmp_path / "random.json", tmp_path / "strict.json"
    run_selection(pool_3k, "longest", 300, longest)
    run_selection(pool_3k, "random", 2000, rand, seed=1)
    result = runner.invoke(app, ["select", "strict-random", "--data", str(pool_3k), "--budget", "600", "--against",
                                 str(longest), "--against", str(rand), "--out", str(strict), "--json"])
    assert result.exit_code == 0, result.output
    manifest = load_manifest(strict)
    taken = set(load_manifest(longest)["ids"]) | set(load_manifest(rand)["ids"])
    assert len(taken) > 2000 and not taken & set(manifest["ids"])  # all 2,000 random ids, not a prefix
    assert manifest["params"] == {"reference_budget": None}
    # The complement (3,000 minus the union) cannot hold a budget larger than itself: exit 2, budget named.
    over = str(3000 - len(taken) + 1)
    too_big = runner.invoke(app, ["select", "strict-random", "--data", str(pool_3k), "--budget", over, "--against",
                                  str(longest), "--against", str(rand), "--out", str(tmp_path / "s.json")])
    assert too_big.exit_code == 2 and "field 'budget'" in too_big.output and "lower --budget" in too_big.output


def test_against_from_another_dataset_is_refused(pool_3k, tmp_path, make_pool):
    other = make_pool(tmp_path / "other", 100, seed=2)
    run_selection(other, "longest", 10, tmp_path / "other.json")
    with pytest.raises(InputError) as info:
        run_selection(pool_3k, "random", 10, tmp_path / "r.json", against=[tmp_path / "other.json"])
    assert info.value.field == "dataset.sha256"


def test_cli_budget_larger_than_pool_exits_2_and_writes_nothing(pool_3k, tmp_path):
    out = tmp_path / "too-big.json"
    result = runner.invoke(app, ["select", "random", "--data", str(pool_3k), "--budget", "3001", "--out", str(out)])
    assert result.exit_code == 2
    assert "budget 3001" in result.output and "pool size (3000" in result.output and "field 'budget'" in result.output
    assert not out.exists()


def test_cli_json_contract_and_overlap_command(pool_3k, tmp_path):
    longest, rand, full = tmp_path / "longest.json", tmp_path / "random.json", tmp_path / "full.json"
    result = runner.invoke(app, ["select", "longest", "--data", str(pool_3k), "--budget", "300", "--out",
                                 str(longest), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"n_selected", "ids_sha256", "seconds", "cost_usd"} <= set(payload) and payload["n_selected"] == 300
    result = runner.invoke(app, ["select", "random", "--data", str(pool_3k), "--budget", "300", "--seed", "2",
                                 "--against", str(longest), "--max-overlap", "0.1", "--out", str(rand), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["overlap"]["longest"] <= 0.1
    result = runner.invoke(app, ["select", "full", "--data", str(pool_3k), "--out", str(full), "--json"])
    assert json.loads(result.stdout.strip().splitlines()[-1])["n_selected"] == 3000
    result = runner.invoke(app, ["select", "overlap", str(longest), str(rand), str(full), "--json"])
    assert result.exit_code == 0, result.output
    matrices = json.loads(result.stdout.strip().splitlines()[-1])
    assert matrices["overlap"]["longest"]["full"] == 1.0 and matrices["overlap"]["full"]["longest"] == 0.1
    assert matrices["overlap"]["random"]["longest"] <= 0.1
    assert matrices["jaccard"]["longest"]["full"] == 0.1


def test_full_needs_the_whole_pool(pool_3k, tmp_path):
    with pytest.raises(InputError) as info:
        run_selection(pool_3k, "full", 10, tmp_path / "f.json")
    assert info.value.field == "budget" and not (tmp_path / "f.json").exists()


def test_cli_refuses_edited_manifest(pool_3k, tmp_path):
    run_selection(pool_3k, "longest", 20, tmp_path / "l.json")
    manifest = json.loads((tmp_path / "l.json").read_text())
    manifest["ids"] = manifest["ids"][:-1]
    (tmp_path / "l.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["select", "overlap", str(tmp_path / "l.json")])
    assert result.exit_code == 2 and "ids_sha256" in result.output


def test_a_swapped_parquet_is_refused_not_served_from_cache(tmp_path):
    """Review finding: the dataset's identity came from manifest.json alone, so a data.parquet copied over a
    prepared one got the old dataset's cached selections (ids not in it) or an internal error."""
    import json
    import shutil

    from typer.testing import CliRunner

    from selbench.cli.main import app

    def prepare(name, outputs):
        src = tmp_path / f"{name}.json"
        src.write_text(json.dumps([{"instruction": f"q{i} {name}", "input": "", "output": o} for i, o in enumerate(outputs)]))
        result = CliRunner().invoke(app, ["data", "prepare", "--source", "alpaca", "--input", str(src), "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        return tmp_path / name

    a, b = prepare("a", ["x" * (i + 1) for i in range(12)]), prepare("b", ["y" * (i + 2) for i in range(12)])
    for strategy in ("random", "longest"):
        ok = CliRunner().invoke(app, ["select", strategy, "--data", str(a), "--budget", "5", "--out", str(tmp_path / "s.json")])
        assert ok.exit_code == 0, ok.output
    shutil.copyfile(b / "data.parquet", a / "data.parquet")
    for strategy in ("random", "longest"):
        out = tmp_path / f"{strategy}-2.json"
        result = CliRunner().invoke(app, ["select", strategy, "--data", str(a), "--budget", "5", "--out", str(out)])
        assert result.exit_code == 2 and "field 'parquet_sha256'" in result.output and not out.exists()
    bad_seed = CliRunner().invoke(app, ["select", "random", "--data", str(b), "--budget", "5", "--seed", "-1",
                                        "--out", str(tmp_path / "x.json")])
    assert bad_seed.exit_code == 2 and "field 'seed'" in bad_seed.output


def test_one_reader_refuses_repeated_ids_for_select_and_train_alike(tmp_path):
    """`selbench select --against` and `selbench train --selection` read manifests with one reader: a repeated
    id is an error naming its file line in both (the select side used to accept it)."""
    from selbench.selection.manifest import read_manifest

    ids = ["a", "b", "a"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"strategy": "x", "budget": 3, "dataset": {"sha256": "d" * 64},
                                "ids": ids, "ids_sha256": sha256_lines(ids)}, indent=1))
    for complete in (True, False):
        with pytest.raises(InputError) as info:
            read_manifest(path, complete=complete)
        assert info.value.field == "ids" and "repeats entry 1" in info.value.message
        lines = path.read_text().splitlines()
        third = [n for n, line in enumerate(lines, 1) if line.strip().rstrip(",") == '"a"'][1]
        assert info.value.line == third  # the file line of the repeated id, not its list position
    with pytest.raises(InputError):
        load_manifest(path)
    path.write_text(json.dumps({"ids": ["a", "b"]}))
    assert read_manifest(path, complete=False)["ids"] == ["a", "b"]  # hand-written: ids alone
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert info.value.field == "strategy"
