"""Commands generated from the registries: a new strategy or scorer, built in or plugged in through an
entry point, gets `selbench select|score <name>` with its fields as options, without touching cli/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selbench.cli.registry_cmds import field_help

PLUGIN = '''
"""A toy strategy and scorer living outside selbench."""
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from selbench.selection.base import Selection


@dataclass(frozen=True)
class ToyStrategy:
    """Every stride-th example, starting at offset.

    Args:
        stride: distance between picked examples.
        offset: first example picked.
        reverse: walk from the end of the pool.
    """

    stride: int = 2
    offset: int = 0
    reverse: bool = False

    name: ClassVar[str] = "toy"
    VERSION: ClassVar[int] = 1
    uses_against: ClassVar[bool] = False

    def score_requests(self):
        return {"size": ("toy-size", {"scale": 2.0})}

    def select(self, pool, budget, rng):
        order = np.arange(pool.n)[::-1] if self.reverse else np.arange(pool.n)
        picked = order[self.offset::self.stride][:budget]
        assert pool.scores["size"]["size"].shape == (pool.n,)
        return Selection(picked)


@dataclass(frozen=True)
class ToySize:
    """Response length times a scale.

    Args:
        scale: factor applied to each length.
    """

    scale: float = 1.0

    name: ClassVar[str] = "toy-size"
    VERSION: ClassVar[int] = 1
    columns: ClassVar[tuple] = ("output",)

    def fingerprint(self):
        return {"scale": self.scale}

    def score(self, rows, meter):
        return {"size": np.array([len(o) * self.scale for o in rows["output"]])}

    def summarize(self, columns):
        return {"n_long": int((columns["size"] > 10).sum())}
'''


@pytest.fixture
def plugin_env(tmp_path) -> dict[str, str]:
    """A distribution installed on the path (dist-info with entry points), as `pip install` would leave it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "toy_plugin.py").write_text(PLUGIN)
    info = site / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[selbench.strategies]\ntoy = toy_plugin:ToyStrategy\n\n[selbench.scorers]\ntoy-size = toy_plugin:ToySize\n")
    src = Path(__file__).resolve().parents[2] / "src"
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(src), os.environ.get("PYTHONPATH", "")]))


def _selbench(env, *args):
    return subprocess.run([sys.executable, "-m", "selbench.cli.main", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


def _pool(folder: Path, n: int) -> Path:
    from selbench.data.schema import Example, rows_sha256, write_examples

    examples = [Example(instruction=f"task {i}", output="y" * (3 * i)) for i in range(n)]
    folder.mkdir(parents=True)
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": n}))
    return folder


def test_a_plugged_in_strategy_and_scorer_get_commands_with_their_options(plugin_env, tmp_path):
    help_ = _selbench(plugin_env, "select", "toy", "--help")
    assert help_.returncode == 0, help_.stderr
    for option in ("--stride", "--offset", "--reverse", "--data", "--budget", "--out", "--seed"):
        assert option in help_.stdout
    assert "distance between picked examples" in help_.stdout
    assert "Every stride-th example" in help_.stdout
    assert "--against" not in help_.stdout  # the toy does not read other selections

    pool = _pool(tmp_path / "pool", 20)
    out = tmp_path / "toy.json"
    run = _selbench(plugin_env, "select", "toy", "--data", pool, "--budget", 4, "--stride", 3, "--reverse",
                    "--out", out, "--json")
    assert run.returncode == 0, run.stderr
    from selbench.selection.manifest import load_manifest

    manifest = load_manifest(out)
    assert manifest["strategy"] == "toy" and manifest["params"] == {"stride": 3, "offset": 0, "reverse": True}
    import pyarrow.parquet as pq

    ids = pq.read_table(pool / "data.parquet", columns=["id"]).column("id").to_pylist()
    assert manifest["ids"] == [ids[i] for i in (19, 16, 13, 10)]
    assert json.loads(run.stdout.strip().splitlines()[-1])["n_selected"] == 4

    scored = _selbench(plugin_env, "score", "toy-size", "--data", pool, "--scale", 0.5, "--out",
                       tmp_path / "s.parquet", "--json")
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout.strip().splitlines()[-1])
    assert result["n"] == 20 and "n_long" in result  # the scorer's own summary reaches --json

    bad = _selbench(plugin_env, "select", "toy", "--data", pool, "--budget", 4, "--stride", "x", "--out", out)
    assert bad.returncode == 2 and "--stride" in bad.stderr


def test_built_in_members_have_their_documented_options():
    env = dict(os.environ)
    help_ = _selbench(env, "select", "strict-random", "--help")
    assert "--reference-budget" in help_.stdout and "--against" in help_.stdout
    assert _selbench(env, "select", "full", "--help").stdout.count("--budget") == 1


def test_field_help_reads_the_args_section_with_continuations():
    class Config:
        """What it is.

        Args:
            alpha: first line
                continued here.
            beta (int): second.

        Returns:
            nothing.
        """

    assert field_help(Config) == {"alpha": "first line continued here.", "beta": "second."}
