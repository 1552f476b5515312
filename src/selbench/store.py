"""The step store: the one place that decides whether work is already done.

A step's key is the sha256 of canonical JSON of its name, its VERSION, its full config and the keys of its
inputs (data sha256, model content hash, tokenizer/chat-template hash, seed...). Outputs live in
`$SELBENCH_CACHE/steps/<step>/<key>/`; they are written into a temporary sibling folder which is renamed
into place, and `meta.json` is written last inside it, so a folder with `meta.json` is complete and a
killed run leaves only a `.tmp-*` folder that `gc` removes (pattern: datatrove's completion files,
open-instruct's `compute_config_hash`).

Long steps keep per-shard progress under `partial/<step>/<key>/` so an interrupted run resumes from the
last finished shard instead of starting over (datatrove issue #316).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from selbench.hashing import canonical_json, sha256_json

log = logging.getLogger(__name__)

META_FILE = "meta.json"
# Libraries whose version can change a step's output bytes; recorded in meta.json (not in the key, so a
# patch upgrade does not silently invalidate a week of training; bump a step's VERSION for that).
TRACKED_LIBRARIES = ("selbench", "torch", "transformers", "trl", "peft", "datasets", "lm_eval", "numpy")


def cache_root() -> Path:
    """`$SELBENCH_CACHE`, default `~/.cache/selbench`."""
    return Path(os.environ.get("SELBENCH_CACHE", Path.home() / ".cache" / "selbench")).expanduser()


def step_key(step: str, version: int, config: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """sha256 of canonical JSON of (step, version, config, inputs).

    >>> step_key("prepare", 1, {"a": 1}, {"data": "x"}) == step_key("prepare", 1, {"a": 1}, {"data": "x"})
    True
    >>> step_key("prepare", 1, {"a": 1}, {"data": "x"}) == step_key("prepare", 2, {"a": 1}, {"data": "x"})
    False
    """
    return sha256_json({"step": step, "version": version, "config": dict(config), "inputs": dict(inputs)})


def library_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


@dataclass
class StepResult:
    """A finished step's folder and record.

    Args:
        step: step name.
        key: the step key (folder name).
        path: the output folder.
        meta: the contents of meta.json.
        cached: True when this call found the work already done.
    """

    step: str
    key: str
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    cached: bool = False

    @property
    def stats(self) -> dict[str, Any]:
        return self.meta.get("stats", {})

    @property
    def cost(self) -> dict[str, Any]:
        return self.meta.get("cost", {})


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    """Write JSON through a temporary file in the same folder + rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=indent, sort_keys=True, ensure_ascii=False, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def tree_bytes(path: str | Path) -> int:
    """Bytes of the files under `path` (or of the file itself); links are not followed, so a file that
    several links point to (🤗 hub caches) counts once, and nothing outside `path` counts.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a").write_bytes(b"12345")
    >>> (folder / "b").symlink_to(folder / "a")
    >>> tree_bytes(folder)
    5
    """
    path = Path(path)
    if path.is_symlink():
        return 0
    if not path.is_dir():
        return path.stat().st_size if path.exists() else 0
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                total += os.lstat(full).st_size
    return total


class StepStore:
    """Content-addressed, atomic store of step outputs.

    Args:
        root: cache root; `steps/` and `partial/` live under it. Default: `cache_root()`.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()

    @property
    def steps_dir(self) -> Path:
        return self.root / "steps"

    def path(self, step: str, key: str) -> Path:
        return self.steps_dir / step / key

    def partial_dir(self, step: str, key: str) -> Path:
        """A folder that survives interruption, for per-shard progress of a step not yet finished."""
        path = self.root / "partial" / step / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def lookup(self, step: str, key: str) -> StepResult | None:
        path = self.path(step, key)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            return None
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return StepResult(step=step, key=key, path=path, meta=meta, cached=True)

    def run(
        self,
        step: str,
        version: int,
        config: Mapping[str, Any],
        inputs: Mapping[str, Any],
        compute: Callable[[Path], Mapping[str, Any] | None],
        *,
        force: bool = False,
    ) -> StepResult:
        """Return the step's stored result, computing it first if absent.

        `compute(tmp_dir)` writes the outputs into `tmp_dir` and returns a dict; its `cost` entry (if
        any) becomes meta's cost record and everything else meta's `stats`.
        """
        # Round-trip through canonical JSON so meta holds exactly what was hashed.
        config = json.loads(canonical_json(dict(config)))
        inputs = json.loads(canonical_json(dict(inputs)))
        key = step_key(step, version, config, inputs)
        if not force and (found := self.lookup(step, key)) is not None:
            log.info("%s %s: cached", step, key[:12])
            return found
        final = self.path(step, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{key[:16]}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            started = time.time()
            returned = dict(compute(tmp) or {})
            cost = returned.pop("cost", None)
            meta = {
                "step": step,
                "version": version,
                "key": key,
                "config": config,
                "inputs": inputs,
                "stats": returned,
                "cost": cost or {},
                "libraries": library_versions(),
                "created": started,
                "finished": time.time(),
            }
            write_json_atomic(tmp / META_FILE, meta)
            if force and final.exists():
                shutil.rmtree(final)
            try:
                os.rename(tmp, final)
            except OSError:
                # Another process finished the same key first: its output is equally valid.
                if (final / META_FILE).is_file():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        partial = self.root / "partial" / step / key
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
        result = self.lookup(step, key)
        assert result is not None, f"{final} has no {META_FILE} right after writing it"
        result.cached = False
        return result

    def entries(self) -> Iterator[StepResult]:
        """Every complete entry, oldest first within a step."""
        if not self.steps_dir.is_dir():
            return
        for step_dir in sorted(p for p in self.steps_dir.iterdir() if p.is_dir()):
            for key_dir in sorted(p for p in step_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                found = self.lookup(step_dir.name, key_dir.name)
                if found is not None:
                    yield found

    def step_names(self) -> list[str]:
        """Names of the steps with anything in the store (finished entries, partial progress, leftovers)."""
        names: set[str] = set()
        for sub in ("steps", "partial"):
            base = self.root / sub
            if base.is_dir():
                names.update(p.name for p in base.iterdir() if p.is_dir())
        return sorted(names)

    def du(self) -> dict[str, int]:
        """Bytes used per step (complete entries, partial progress and leftovers together)."""
        usage: dict[str, int] = {}
        for sub in ("steps", "partial"):
            base = self.root / sub
            if not base.is_dir():
                continue
            for step_dir in base.iterdir():
                usage[step_dir.name] = usage.get(step_dir.name, 0) + tree_bytes(step_dir)
        return usage

    def du_other(self) -> dict[str, int]:
        """Bytes of everything else under the root, per top-level entry (`models/` converted assets,
        `judge/` responses, `nltk_data/`, ...): with `du()` this is the whole store."""
        if not self.root.is_dir():
            return {}
        return {p.name: tree_bytes(p) for p in sorted(self.root.iterdir()) if p.name not in ("steps", "partial")}

    def gc(self, *, older_than_s: float | None = None, step: str | None = None, dry_run: bool = False) -> list[Path]:
        """Remove leftovers of killed runs, and (optionally) entries older than `older_than_s`.

        Returns the removed folders.
        """
        removed: list[Path] = []
        now = time.time()
        if self.steps_dir.is_dir():
            for step_dir in self.steps_dir.iterdir():
                if step is not None and step_dir.name != step:
                    continue
                for key_dir in step_dir.iterdir():
                    incomplete = key_dir.name.startswith(".tmp-") or not (key_dir / META_FILE).is_file()
                    stale = False
                    if not incomplete and older_than_s is not None:
                        stale = now - (key_dir / META_FILE).stat().st_mtime > older_than_s
                    if incomplete or stale:
                        removed.append(key_dir)
        if older_than_s is not None and (self.root / "partial").is_dir():
            for step_dir in (self.root / "partial").iterdir():
                if step is None or step_dir.name == step:
                    removed.extend(p for p in step_dir.iterdir() if now - p.stat().st_mtime > older_than_s)
        if not dry_run:
            for path in removed:
                shutil.rmtree(path, ignore_errors=True)
        return removed


class ShardProgress:
    """Per-shard progress of one long step (scoring a pool, generating, judging), kept under
    `partial/<step>/<key>/` so a run killed at 90 % resumes at 90 % (datatrove issue #316).

    Items `0..n_items-1` are cut into consecutive shards of `shard_size`. A shard is done when its file
    exists: it is written to a temporary name and renamed, so a kill never leaves half a shard. Shards hold
    either numeric arrays (`.npz`, read back with `allow_pickle=False`) or JSON. A folder whose recorded
    layout (item count, shard size, format) differs from this one is cleared: its shards cut the items
    differently.

    Args:
        directory: the step's partial folder (`StepStore.partial_dir(step, key)`).
        n_items: number of items the step processes.
        shard_size: items per shard.
        fmt: "npz" (dict of numeric arrays) or "json" (any JSON value).

    >>> import tempfile
    >>> shards = ShardProgress(Path(tempfile.mkdtemp()), n_items=5, shard_size=2)
    >>> [(s.start, s.stop) for s in shards.ranges()]
    [(0, 2), (2, 4), (4, 5)]
    """

    def __init__(self, directory: str | Path, n_items: int, shard_size: int, *, fmt: str = "npz") -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        if fmt not in ("npz", "json"):
            raise ValueError(f"fmt must be 'npz' or 'json', got {fmt!r}")
        self.directory = Path(directory)
        self.n_items = int(n_items)
        self.shard_size = int(shard_size)
        self.fmt = fmt
        self.directory.mkdir(parents=True, exist_ok=True)
        layout = {"n_items": self.n_items, "shard_size": self.shard_size, "fmt": fmt}
        layout_file = self.directory / "layout.json"
        if layout_file.is_file():
            try:
                previous = json.loads(layout_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                previous = None
            if previous != layout:
                log.info("%s: shard layout changed (%s -> %s); starting over", self.directory, previous, layout)
                for old in self.directory.glob("shard-*"):
                    old.unlink(missing_ok=True)
        else:
            previous = None
        # Written only when it changes: workers sharing the folder (`run(numbers=...)` on several machines)
        # open it with the same layout and leave it, and each other's shards, alone.
        if previous != layout:
            write_json_atomic(layout_file, layout)

    @property
    def n_shards(self) -> int:
        return (self.n_items + self.shard_size - 1) // self.shard_size

    def ranges(self) -> list[range]:
        return [range(i, min(i + self.shard_size, self.n_items)) for i in range(0, self.n_items, self.shard_size)]

    def path(self, number: int) -> Path:
        return self.directory / f"shard-{number:06d}.{self.fmt}"

    def done(self, number: int) -> bool:
        return self.path(number).is_file()

    def n_done(self) -> int:
        return sum(self.done(i) for i in range(self.n_shards))

    def todo(self) -> list[int]:
        """Numbers of the shards not done yet, ascending."""
        return [i for i in range(self.n_shards) if not self.done(i)]

    def save(self, number: int, payload: Any) -> None:
        """Record shard `number` as done with its `payload` (atomically)."""
        import numpy as np

        final = self.path(number)
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            if self.fmt == "npz":
                with open(tmp, "wb") as fh:
                    np.savez(fh, **{name: np.asarray(values) for name, values in payload.items()})
                    fh.flush()
                    os.fsync(fh.fileno())
            else:
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump(payload, fh, ensure_ascii=False)
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def load(self, number: int) -> Any:
        """The payload of a finished shard (arrays for npz, the JSON value for json)."""
        import numpy as np

        if self.fmt == "npz":
            with np.load(self.path(number), allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        return json.loads(self.path(number).read_text(encoding="utf-8"))

    def run(
        self,
        compute: Callable[[int, range], Any],
        *,
        desc: str | None = None,
        progress: bool | None = None,
        numbers: Iterable[int] | None = None,
    ) -> dict[str, int]:
        """Compute every shard not yet done with `compute(number, item_range)` and save it, in ascending order.

        `numbers` limits the work to these shards (one worker's share when several processes fill the same
        folder; each shard file is written atomically, so workers on different shards never disturb each
        other). Returns `{"shards": n, "resumed": already done, "computed": done now}` (over the shards
        asked for). A progress bar (tqdm; off when stderr is not a terminal unless `progress=True`) starts at
        the resumed count, so its ETA is the remaining work's.
        """
        from tqdm.auto import tqdm

        wanted = None
        if numbers is not None:
            wanted = set(numbers)
            outside = sorted(n for n in wanted if not 0 <= n < self.n_shards)
            if outside:
                raise ValueError(f"shards {outside} are outside 0..{self.n_shards - 1}")
        resumed = computed = 0
        todo = []
        for number, items in enumerate(self.ranges()):
            if wanted is not None and number not in wanted:
                continue
            if self.done(number):
                resumed += 1
            else:
                todo.append((number, items))
        total = self.n_shards if wanted is None else len(wanted)
        disable = None if progress is None else not progress
        with tqdm(total=total, initial=resumed, desc=desc, unit="shard", disable=disable) as bar:
            for number, items in todo:
                self.save(number, compute(number, items))
                computed += 1
                bar.update(1)
                log.info("%s: shard %d/%d done", desc or self.directory.name, number + 1, self.n_shards)
        return {"shards": self.n_shards, "resumed": resumed, "computed": computed}
