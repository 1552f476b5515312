"""A scoring step killed with SIGKILL after some shards resumes where it stopped: a second run computes only
the shards the first did not save, and the final scores are complete and right (issue 15, item 3).

The step runs in a child process with a test-local scorer registered there, which sleeps a little per shard
and logs the ids it scored; the parent kills the child once some shard files exist under
`$SELBENCH_CACHE/partial/score/<key>/`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from selbench.data.schema import Example, read_examples, write_examples
from selbench.scoring.base import read_scores

N_EXAMPLES = 20
SHARD_SIZE = 2
KILL_AFTER = 3  # shards saved before the kill

CHILD = '''
import json, os, sys, time
import numpy as np
from selbench.scoring.base import SCORERS, compute_scores

data, log_path, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])


class SlowScorer:
    """Characters of the response, slowly; every call logs the ids it scored (one JSON list per line)."""

    name = "slow-test"
    VERSION = 1
    columns = ("output",)
    shard_size = SHARD_SIZE

    def fingerprint(self):
        return {"unit": "chars"}

    def score(self, rows, meter):
        time.sleep(delay)
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rows["id"]) + "\\n")
            fh.flush()
            os.fsync(fh.fileno())
        return {"chars": np.array([len(o) for o in rows["output"]], dtype=np.float64)}


SCORERS.register("slow-test", SlowScorer)
result = compute_scores(data, "slow-test")
print(json.dumps({"key": result.key, "path": str(result.path), "cached": result.cached}))
'''.replace("SHARD_SIZE", str(SHARD_SIZE))


def _logged(path: Path) -> list[list[str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_sigkilled_scoring_resumes_and_computes_only_the_rest(tmp_path, isolated_cache):
    examples = [Example(instruction=f"q{i}", output="x" * (i + 1)) for i in range(N_EXAMPLES)]
    write_examples(examples, tmp_path / "data" / "data.parquet")
    ids = [e.id for e in read_examples(tmp_path / "data")]
    shard_of = {example_id: i // SHARD_SIZE for i, example_id in enumerate(ids)}
    n_shards = N_EXAMPLES // SHARD_SIZE
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = dict(os.environ, SELBENCH_CACHE=str(isolated_cache))
    partial = isolated_cache / "partial" / "score"

    first_log = tmp_path / "first.log"
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path / "data"), str(first_log), "0.4"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(list(partial.glob("*/shard-*.npz"))) < KILL_AFTER:
            assert child.poll() is None, f"the child ended before the kill: {child.communicate()}"
            assert time.monotonic() < deadline, "no shard progress within 120 s"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    (key_dir,) = list(partial.iterdir())
    saved = {int(p.stem.split("-")[1]) for p in key_dir.glob("shard-*.npz")}
    assert KILL_AFTER <= len(saved) < n_shards, saved  # killed part-way
    assert not (isolated_cache / "steps" / "score" / key_dir.name / "meta.json").exists()  # nothing finished
    first_shards = [shard_of[row[0]] for row in _logged(first_log)]
    assert saved <= set(first_shards)

    second_log = tmp_path / "second.log"
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "data"), str(second_log), "0"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["key"] == key_dir.name and not result["cached"]
    second = _logged(second_log)
    computed = [shard_of[row[0]] for row in second]
    # Only the shards the killed run had not saved were scored again, each once, whole.
    assert sorted(computed) == sorted(set(range(n_shards)) - saved)
    for row in second:
        assert {shard_of[i] for i in row} == {shard_of[row[0]]} and len(row) == SHARD_SIZE
    meta = json.loads((Path(result["path"]).parent / "meta.json").read_text())
    assert meta["stats"]["shards"] == {"shards": n_shards, "resumed": len(saved), "computed": n_shards - len(saved)}
    scored_ids, columns = read_scores(result["path"])
    assert scored_ids == ids
    np.testing.assert_array_equal(columns["chars"], [len(e.output) for e in read_examples(tmp_path / "data")])
    assert not key_dir.exists()  # progress removed once the step is stored
