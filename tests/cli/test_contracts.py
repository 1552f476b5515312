"""The command-line contracts of DESIGN.md, checked on real invocations with tiny inputs.

Exit 0 on success; 2 on bad input or usage with one `error: ...` line on stderr naming the file and field (no
traceback unless `--debug`); 1 on an internal failure; `--json` prints exactly one JSON object, as the last
stdout line; bad input leaves no output behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from selbench.cli.common import handle_errors
from selbench.cli.main import app

SELBENCH = Path(sys.executable).parent / "selbench"


def _invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _json_only(result) -> dict:
    """The command's stdout must be exactly one line: its JSON object."""
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout has {len(lines)} lines, expected only the JSON result:\n{result.stdout}"
    return json.loads(lines[0])


def _input_error(result, *needles: str) -> str:
    """Exit 2 with one `error:` line on stderr that contains every needle, nothing on stdout, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def pool(tmp_path) -> Path:
    """A prepared 12-example Alpaca dataset."""
    rows = [{"instruction": f"Write item {i}", "input": "" if i % 2 else f"ctx {i}", "output": "word " * (i + 1)}
            for i in range(12)]
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps(rows), encoding="utf-8")
    out = tmp_path / "pool"
    result = _json_only(_invoke("data", "prepare", "--source", "alpaca", "--input", source, "--out", out, "--json"))
    assert {"n", "n_dropped", "sha256"} <= result.keys() and result["n"] == 12
    return out


def test_prepare_bad_record_names_file_line_field_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n" + json.dumps({"instruction": "c"}) + "\n")
    out = tmp_path / "out"
    result = _invoke("data", "prepare", "--source", "jsonl", "--input", bad, "--out", out, "--json")
    _input_error(result, f"{bad}:2", "field 'output'")
    assert not out.exists()


def test_score_and_select_json_is_one_line_with_the_listed_keys(pool, tmp_path):
    scores = _json_only(_invoke("score", "length", "--data", pool, "--out", tmp_path / "len.parquet", "--json"))
    assert {"n", "seconds", "tokens", "cost_usd"} <= scores.keys()
    longest = tmp_path / "longest.json"
    for args in (("longest",), ("random", "--against", longest), ("strict-random", "--against", longest,
                                                                    "--reference-budget", "4")):
        out = longest if args[0] == "longest" else tmp_path / f"{args[0]}.json"
        result = _json_only(_invoke("select", *args, "--data", pool, "--budget", "4", "--out", out, "--json"))
        assert {"n_selected", "ids_sha256", "seconds", "cost_usd"} <= result.keys() and result["n_selected"] == 4
        manifest = json.loads(out.read_text())
        assert {"strategy", "params", "budget", "seed", "dataset", "ids", "ids_sha256", "overlap", "cost"} <= \
            manifest.keys()
        assert {"path", "sha256"} <= manifest["dataset"].keys()
    overlap = _json_only(_invoke("select", "overlap", longest, tmp_path / "random.json", "--json"))
    assert {"overlap", "jaccard"} <= overlap.keys()


@pytest.mark.parametrize("command", [["select", "longest", "--budget", "2"], ["score", "length"]])
def test_out_that_is_a_folder_is_bad_input(pool, tmp_path, command):
    # Was: IsADirectoryError when renaming the temp file into place, reported as an internal failure (exit 1).
    folder = tmp_path / "a-folder"
    folder.mkdir()
    result = _invoke(*command, "--data", pool, "--out", folder, "--json")
    _input_error(result, str(folder), "field 'out'")
    assert list(folder.iterdir()) == []


def test_train_json_stdout_holds_only_the_result(pool, tmp_path, tiny_model_dir):
    # Was: the HF Trainer's log dicts ({'loss': ...}) printed on stdout before the JSON line.
    selection = tmp_path / "sel.json"
    _json_only(_invoke("select", "longest", "--data", pool, "--budget", "4", "--out", selection, "--json"))
    result = _json_only(_invoke("train", "--model", tiny_model_dir, "--data", pool, "--selection", selection,
                                "--preset", "demo", "--out", tmp_path / "trained", "--json"))
    assert {"train_tokens", "tokens_per_s", "seconds", "cost_usd"} <= result.keys()


def test_train_bad_input_names_the_field_and_writes_nothing(pool, tmp_path, tiny_model_dir):
    out = tmp_path / "trained"
    # Was: IsADirectoryError, exit 1.
    folder = tmp_path / "not-a-manifest"
    folder.mkdir()
    common = ("--model", tiny_model_dir, "--data", pool, "--preset", "demo", "--out", out)
    _input_error(_invoke("train", *common, "--selection", folder), str(folder), "field 'selection'")
    _input_error(_invoke("train", *common, "--selection", tmp_path / "missing.json"), "missing.json")
    assert not out.exists()


def test_ifeval_out_that_is_a_file_is_bad_input(shared_data, tmp_path):
    # Was: FileExistsError after scoring, exit 1.
    responses = tmp_path / "responses.jsonl"
    lines = (shared_data / "ifeval" / "responses_gpt4_20231107.jsonl").read_text(encoding="utf-8").splitlines()
    responses.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    result = _invoke("eval", "ifeval", "--responses", responses, "--allow-missing", "--out", taken, "--json")
    _input_error(result, str(taken), "field 'out'")
    assert taken.read_text() == "{}"


def test_alpacaeval_annotations_out_folder_is_rejected_before_any_work(tmp_path, tiny_model_dir):
    # Was: generation and judging ran first, then IsADirectoryError (exit 1); an unreachable judge makes
    # that path slow, so the check must come before it.
    folder = tmp_path / "annotations"
    folder.mkdir()
    result = _invoke("eval", "alpacaeval", "--model", tiny_model_dir, "--judge", "j", "--judge-base-url",
                     "http://127.0.0.1:9/v1", "--limit", "1", "--annotations-out", folder, "--json")
    _input_error(result, str(folder), "field 'annotations-out'")


def test_error_messages_are_one_line(capsys):
    # Was: a multi-line exception message (e.g. transformers' config validation) printed several lines.
    @handle_errors
    def usage_problem() -> None:
        raise ValueError("first line\n    second line")

    @handle_errors
    def internal_problem() -> None:
        raise RuntimeError("broken\nacross lines")

    for func, code, text in ((usage_problem, 2, "first line second line"), (internal_problem, 1, "broken across lines")):
        with pytest.raises(typer.Exit) as exc:
            func()
        assert exc.value.exit_code == code
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and text in err, err


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("SELBENCH_DEBUG", "0")  # `--debug` sets it; monkeypatch restores it afterwards
    args = ("select", "longest", "--data", tmp_path / "nothing", "--budget", "2", "--out", tmp_path / "s.json")
    plain = _invoke(*args)
    _input_error(plain, "field 'data'")
    debug = _invoke("--debug", *args)
    assert debug.exit_code == 2 and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.skipif(not SELBENCH.exists(), reason="console script not installed beside this Python")
@pytest.mark.parametrize("args, needle", [
    (["data", "prepare", "--source", "alpaca", "--out", "x"], "Missing option '--input'"),
    (["select", "longest", "--bogus"], "No such option: --bogus"),
    (["select", "longst"], "Did you mean 'longest'"),
    (["select", "longest", "--data", "d", "--budget", "abc", "--out", "x.json"], "'--budget'"),
])
def test_usage_errors_are_one_error_line_and_exit_2(args, needle, tmp_path):
    # Was: click's multi-line usage box ("Usage: ... Try ... --help ... Error ...") without `error:`.
    proc = subprocess.run([str(SELBENCH), *args], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert proc.stdout == "" and not any(tmp_path.iterdir())


@pytest.mark.skipif(not SELBENCH.exists(), reason="console script not installed beside this Python")
def test_help_and_bare_group_keep_their_exit_codes(tmp_path):
    help_ = subprocess.run([str(SELBENCH), "select", "--help"], capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0 and "longest" in help_.stdout
    bare = subprocess.run([str(SELBENCH), "select"], capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and "longest" in bare.stdout and "Traceback" not in bare.stderr


def test_train_bad_manifests_and_settings_exit_2_naming_the_field(pool, tmp_path, tiny_model_dir):
    # Was (review findings 5-6): exit 1 with TypeError/AttributeError/OverflowError, or exit 0 with NaN weights
    # (learning_rate=1e400), or exit 2 with a message naming no field (lora_target_modules).
    import torch

    out = tmp_path / "trained"
    common = ("--model", tiny_model_dir, "--data", pool, "--preset", "demo", "--out", out)
    selection = tmp_path / "sel.json"
    _json_only(_invoke("select", "random", "--data", pool, "--budget", "3", "--out", selection, "--json"))
    manifest = json.loads(selection.read_text())
    bad = tmp_path / "bad.json"
    for edit, field in (({"ids": [manifest["ids"][:1]]}, "field 'ids'"), ({"dataset": "x"}, "field 'dataset'"),
                        ({"ids": [manifest["ids"][0]] * 2}, "field 'ids'"), ({"ids_sha256": "deadbeef"}, "field 'ids_sha256'")):
        bad.write_text(json.dumps({**manifest, **edit}))
        _input_error(_invoke("train", *common, "--selection", bad), str(bad), field)
    for setting, field in (("learning_rate=1e400", "learning_rate"), ("epochs=inf", "epochs"), ("seed=-5", "seed"),
                           ("deepspeed=/nonexistent.json", "deepspeed")):
        _input_error(_invoke("train", *common, "--set", setting), f"field '{field}'")
    _input_error(_invoke("train", *common, "--lora", "--set", "lora_target_modules=nope"), "field 'lora_target_modules'")
    if not torch.cuda.is_available():
        _input_error(_invoke("train", *common, "--set", "optimizer=paged_adamw_32bit"), "field 'optimizer'", "CUDA")
    assert not out.exists()
