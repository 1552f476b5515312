"""Open LLM Leaderboard tasks through lm-evaluation-harness, on our loaded model.

Tasks: MMLU, ARC-Easy, ARC-Challenge, WinoGrande, TruthfulQA (MC1, MC2), HellaSwag, run with
`lm_eval.simple_evaluate` on `lm_eval.models.huggingface.HFLM(pretrained=<loaded model>)`, one task at a
time so that each (model, task, setting, limit) is cached on its own.

Two named settings:

* `study` — as Diddee & Ippolito's released script ran it (ippolito-cmu/ChasingRandom
  `src/evaluation/openllm_simple_evaluate.py`): 5-shot for every task, `max_length=1024`, and the
  reported number is `acc` for every task (their `eval_harness_summary_compiler` reads `acc,none`, which
  for `truthfulqa_mc2` is MC2). Their script loaded models in 4-bit NF4 with bitsandbytes on a GPU; we
  note this but run the model in the precision it was loaded with. (Their README's command-line variant
  used `max_length=2048` and each task's default shots; the script is what we reproduce.)
* `leaderboard` — the Open LLM Leaderboard v1 (Beeching et al., 2023): ARC 25-shot `acc_norm`,
  HellaSwag 10-shot `acc_norm`, MMLU 5-shot `acc`, TruthfulQA 0-shot `mc2` (TruthfulQA MC1, not on the
  leaderboard, 0-shot `acc`), WinoGrande 5-shot `acc`; the model's own maximum length. MMLU is the plain
  mean of the 57 subject accuracies, as the leaderboard reported it (`subtask_mean`); lm-eval 0.4's
  `mmlu` group instead weights subjects by their number of questions (`lm_eval/tasks/mmlu/default/_mmlu.yaml`,
  `weight_by_size: True`), which the `study` setting keeps because ChasingRandom read
  `results["mmlu"]["acc,none"]`. lm-eval's weighted value stays in each task's `metrics`.

Tasks outside this list (e.g. local definitions passed with `include_path`) run with the setting's
default shots (study: 5; leaderboard: the task's own default) and report `acc`. Chat templates are not
applied, as in both references. lm-eval's real tasks read their data from the hub; offline, only local
task definitions can run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

from selbench.errors import InputError
from selbench.evaluation.base import METRICS_FILE, write_items
from selbench.step import Step

log = logging.getLogger(__name__)

STEP = "eval:openllm"
VERSION = 2  # 2: the step folder also holds metrics.json and items.jsonl (results.json unchanged)
OPENLLM_TASKS = ("mmlu", "arc_easy", "arc_challenge", "winogrande", "truthfulqa_mc1", "truthfulqa_mc2", "hellaswag")
ALIASES = {"truthfulqa": ("truthfulqa_mc1", "truthfulqa_mc2"), "arc": ("arc_easy", "arc_challenge")}


@dataclass(frozen=True)
class OpenLLMSetting:
    """Shots, headline metric and context length of one named way of running the tasks.

    Args:
        name: setting name.
        shots: few-shot count per known task.
        metrics: headline metric per known task (lm-eval metric name, filter "none").
        default_shots: shots for tasks not in `shots` (None: the task's own default).
        max_length: HFLM's maximum sequence length (None: the model's).
        unweighted_groups: groups whose headline is the unweighted mean of their leaf tasks' metric
            (`subtask_mean`) instead of lm-eval's group aggregate.
    """

    name: str
    shots: Mapping[str, int] = field(default_factory=dict)
    metrics: Mapping[str, str] = field(default_factory=dict)
    default_shots: int | None = None
    max_length: int | None = None
    unweighted_groups: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        bad = {t: n for t, n in self.shots.items() if not isinstance(n, int) or n < 0}
        if bad:
            raise ValueError(f"OpenLLMSetting.shots={bad}: shots must be integers >= 0")

    def num_fewshot(self, task: str) -> int | None:
        return self.shots.get(task, self.default_shots)

    def metric(self, task: str) -> str:
        return self.metrics.get(task, "acc")

    def aggregation(self, task: str) -> str:
        """How a group's headline is formed: "subtask_mean" (unweighted over leaf tasks) or "lm_eval"."""
        return "subtask_mean" if task in self.unweighted_groups else "lm_eval"


SETTINGS: dict[str, OpenLLMSetting] = {
    "study": OpenLLMSetting("study", shots={t: 5 for t in OPENLLM_TASKS}, metrics={t: "acc" for t in OPENLLM_TASKS},
                            default_shots=5, max_length=1024),
    "leaderboard": OpenLLMSetting(
        "leaderboard",
        shots={"arc_easy": 25, "arc_challenge": 25, "hellaswag": 10, "mmlu": 5, "truthfulqa_mc1": 0,
               "truthfulqa_mc2": 0, "winogrande": 5},
        metrics={"arc_easy": "acc_norm", "arc_challenge": "acc_norm", "hellaswag": "acc_norm", "mmlu": "acc",
                 "truthfulqa_mc1": "acc", "truthfulqa_mc2": "acc", "winogrande": "acc"},
        unweighted_groups=frozenset({"mmlu"}),
    ),
}


def parse_tasks(tasks: str | Sequence[str]) -> list[str]:
    """Task names from "a,b" or a list, aliases expanded, duplicates dropped, order kept.

    >>> parse_tasks("arc,mmlu,arc_easy")
    ['arc_easy', 'arc_challenge', 'mmlu']
    """
    names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
    if not names:
        raise InputError("no task given", field="tasks")
    out: list[str] = []
    for name in names:
        for task in ALIASES.get(name, (name,)):
            if task not in out:
                out.append(task)
    return out


def headline(results: Mapping[str, Any], task: str, metric: str) -> float:
    """The `metric` of `task` (filter "none") from lm-eval's `results` section."""
    row = results.get(task)
    if row is None or f"{metric},none" not in row:
        raise KeyError(f"lm-eval returned no {metric!r} for task {task!r} (got {sorted(row or {})})")
    return float(row[f"{metric},none"])


def leaf_tasks(group_subtasks: Mapping[str, Sequence[str]], group: str) -> list[str]:
    """The tasks under `group` that are not groups themselves, in lm-eval's order.

    >>> leaf_tasks({"mmlu": ["mmlu_stem", "mmlu_law"], "mmlu_stem": ["mmlu_anatomy"]}, "mmlu")
    ['mmlu_anatomy', 'mmlu_law']
    """
    out: list[str] = []
    for child in group_subtasks.get(group, ()):
        if child in group_subtasks:
            out.extend(t for t in leaf_tasks(group_subtasks, child) if t not in out)
        elif child not in out:
            out.append(child)
    return out


def subtask_mean(raw: Mapping[str, Any], group: str, metric: str) -> tuple[float, int]:
    """(unweighted mean of `metric` over the leaf tasks of `group`, number of leaf tasks).

    The Open LLM Leaderboard v1 reported MMLU as the plain mean of the 57 subject accuracies, while
    lm-eval 0.4's `mmlu` group weights each subject by its size. `raw` is lm-eval's output
    (`results` and `group_subtasks`, as kept by `run_task`).

    >>> raw = {"group_subtasks": {"g": ["a", "b"]}, "results": {"a": {"acc,none": 1.0}, "b": {"acc,none": 0.5}}}
    >>> subtask_mean(raw, "g", "acc")
    (0.75, 2)
    """
    leaves = leaf_tasks(raw.get("group_subtasks", {}), group)
    if not leaves:
        raise KeyError(f"lm-eval returned no subtasks for group {group!r}")
    values = [headline(raw["results"], leaf, metric) for leaf in leaves]
    return sum(values) / len(values), len(leaves)


def task_manager(include_path: str | Path | None, tasks: Sequence[str] = ()) -> Any:
    """lm-eval's task index; only the local folder's when it defines every task asked for.

    Indexing lm-eval's ~15k built-in task definitions takes most of a minute on a small CPU, so it is
    skipped when the local folder suffices.
    """
    from lm_eval.tasks import TaskManager

    if include_path is None:
        return TaskManager()
    path = Path(include_path)
    if not path.is_dir():
        raise InputError("task folder not found", path=str(path), field="include-path")
    local = TaskManager(include_path=str(path.resolve()), include_defaults=False)
    if tasks and all(t in local.all_tasks for t in tasks):
        return local
    return TaskManager(include_path=str(path.resolve()))


def build_lm(model: Any, tokenizer: Any, batch_size: int, max_length: int | None) -> Any:
    """lm-eval's HF wrapper around an already loaded model."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length,
                device=str(model.device))


def run_task(lm: Any, task: str, *, num_fewshot: int | None, limit: int | None, manager: Any,
             log_samples: bool = False, item_metric: str | None = None) -> dict[str, Any]:
    """One `simple_evaluate` call; returns its JSON-safe parts (results, configs, n-samples, versions).

    With `log_samples`, also `loglikelihoods`: per subtask, per document id, the log-likelihood of each
    choice (multiple-choice tasks). With `item_metric`, also `items`: per subtask, per document id, that
    metric's per-document value (filter "none"), or None for a subtask whose values are not numbers.
    """
    import lm_eval

    if task not in manager.all_tasks:
        raise InputError(f"unknown lm-eval task {task!r} (use --include-path for local task definitions)",
                         field="tasks")
    try:
        out = lm_eval.simple_evaluate(model=lm, tasks=[task], num_fewshot=num_fewshot, limit=limit,
                                      task_manager=manager, log_samples=log_samples or item_metric is not None)
    except ConnectionError as exc:  # `datasets` raises this subclass of OSError when the hub is unreachable
        raise RuntimeError(f"task {task!r} could not load its data ({exc}); lm-eval's tasks read their data from "
                           "the hub: go online, or run local task definitions with --include-path") from exc
    keep = ("results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples")
    raw = json.loads(json.dumps({k: out[k] for k in keep if k in out}, default=str))
    if log_samples:
        raw["loglikelihoods"] = {
            name: {int(s["doc_id"]): [float(r[0]) for r in s["filtered_resps"]] for s in samples}
            for name, samples in out.get("samples", {}).items()
        }
    if item_metric is not None:
        raw["items"] = {name: _sample_values(samples, item_metric) for name, samples in out.get("samples", {}).items()}
    return raw


def _sample_values(samples: Sequence[Mapping[str, Any]], metric: str) -> dict[int, float] | None:
    """{doc id: the sample's `metric`} for lm-eval's logged samples (filter "none"); None when a value is not a
    number (corpus-level metrics such as BLEU log per-document tuples, not scores)."""
    import numbers

    values = {}
    for sample in samples:
        if sample.get("filter", "none") != "none":
            continue
        value = sample.get(metric)
        if not isinstance(value, numbers.Real):
            return None
        values[int(sample["doc_id"])] = float(value)
    return values


def _n_docs(raw: Mapping[str, Any]) -> int:
    return int(sum(v.get("effective", 0) for v in raw.get("n-samples", {}).values()))


def cache_inputs(model_fp: str, include_path: str | Path | None) -> dict[str, Any]:
    """What besides the config keys a task's result: the model and, for local tasks, their definitions."""
    from selbench.hashing import sha256_tree

    return {"model": model_fp, "tasks_dir": sha256_tree(include_path) if include_path is not None else None}


def cache_config(task: str, setting: OpenLLMSetting, limit: int | None, batch_size: int) -> dict[str, Any]:
    return {"task": task, "setting": setting.name, "num_fewshot": setting.num_fewshot(task),
            "metric": setting.metric(task), "aggregation": setting.aggregation(task),
            "max_length": setting.max_length, "limit": limit,
            "batch_size": batch_size, "lm_eval": version("lm_eval")}


def evaluate(model: Any, tasks: str | Sequence[str] = ",".join(OPENLLM_TASKS), *, setting: str = "study",
             limit: int | None = None, include_path: str | Path | None = None, batch_size: int = 8,
             store: Any = None) -> dict[str, Any]:
    """Run the tasks on `model` (spec or loaded (model, tokenizer) pair), each cached on its own.

    Returns one key per task (the setting's headline metric, in [0, 1]) plus `details` (per task: metric,
    aggregation ("lm_eval", or "subtask_mean" with `n_subtasks`), shots, n, all lm-eval metrics, cached),
    `setting` and `seconds`.
    """
    if setting not in SETTINGS:
        raise InputError(f"setting {setting!r} is not one of {sorted(SETTINGS)}", field="setting")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit {limit!r} must be an integer >= 1", field="limit")
    chosen = SETTINGS[setting]
    names = parse_tasks(tasks)
    manager = task_manager(include_path, names)
    unknown = [t for t in names if t not in manager.all_tasks]
    if unknown:
        raise InputError(f"unknown lm-eval task(s) {unknown} (local definitions: --include-path DIR)", field="tasks")
    from selbench.generation.cached import key_or_input_error

    loaded = isinstance(model, (tuple, list)) and len(model) == 2
    shared: dict[str, Any] = {"manager": manager}  # one task index and one loaded model for all the tasks
    started = time.time()
    out: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for task in names:
        step = OpenLLMStep("<in-memory>" if loaded else str(model), task, setting, limit,
                           None if include_path is None else str(include_path), batch_size,
                           loaded=tuple(model) if loaded else None, shared=shared)
        key_or_input_error(step)
        result = step.run(store)
        out[task] = result.stats["value"]
        details[task] = {"metric": chosen.metric(task), "aggregation": chosen.aggregation(task),
                         "num_fewshot": chosen.num_fewshot(task), "n": result.stats["n"],
                         "metrics": result.stats["metrics"], "cached": result.cached, "path": str(result.path)}
        if "n_subtasks" in result.stats:
            details[task]["n_subtasks"] = result.stats["n_subtasks"]
    return {**out, "details": details, "setting": setting, "seconds": round(time.time() - started, 3)}


@dataclass(frozen=True)
class OpenLLMStep(Step):
    """One lm-eval task on one model under a named setting: the `eval:openllm` step.

    Args:
        model: model spec (`"<in-memory>"` with `loaded`).
        task: one lm-eval task or group name (aliases already expanded: `parse_tasks`).
        setting: "study" or "leaderboard" (`SETTINGS`: shots, headline metric, max length, aggregation).
        limit: documents per (sub)task (None: all).
        include_path: a folder of local task definitions (hashed into the key).
        batch_size: HFLM batch size.
        loaded: (not in the key, not pickled) an already-loaded (model, tokenizer) pair.
        shared: (not in the key, not pickled) a dict the steps of one `evaluate` call share, so that the task
            index is built and the model is loaded once for all their tasks.

    Key: `cache_config` (task, setting, shots, metric, aggregation, max length, limit, batch size, lm-eval's
    version) and `cache_inputs` (the model's fingerprint, the local task folder's hash). Outputs in the store
    folder: `results.json` (lm-eval's results, configs, versions, n-samples), `metrics.json` (`value`: the
    setting's headline, `metric`, `aggregation`, `n`, lm-eval's metrics for the task) and `items.jsonl`: one
    row per document, `item` = "<leaf task>/<doc id>", `score` = that document's headline metric (for MMLU
    every subject's documents; for TruthfulQA MC2 the document's MC2 score), `task`. Corpus-level metrics
    (BLEU and the like) have no per-document score: their `items.jsonl` is empty and `metrics.json` says
    `items: "unavailable"`.
    """

    model: str
    task: str
    setting: str = "study"
    limit: int | None = None
    include_path: str | None = None
    batch_size: int = 8
    loaded: tuple[Any, Any] | None = field(default=None, compare=False, repr=False)
    shared: dict[str, Any] | None = field(default=None, compare=False, repr=False, hash=False)

    name: ClassVar[str] = STEP
    VERSION: ClassVar[int] = VERSION
    resources: ClassVar[Mapping[str, float]] = {"cpus": 2, "gpus": 0, "memory_gb": 8}

    def __post_init__(self) -> None:
        if self.setting not in SETTINGS:
            raise InputError(f"setting {self.setting!r} is not one of {sorted(SETTINGS)}", field="setting")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise InputError(f"limit {self.limit!r} must be an integer >= 1", field="limit")

    def __getstate__(self) -> dict[str, Any]:  # never ship a loaded model or lm-eval objects
        return {**self.__dict__, "loaded": None, "shared": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def config(self) -> dict[str, Any]:
        return cache_config(self.task, SETTINGS[self.setting], self.limit, self.batch_size)

    def inputs(self) -> dict[str, Any]:
        from selbench.generation.cached import model_fingerprint_when_ready
        from selbench.generation.judge_model import loaded_model_fingerprint
        from selbench.hashing import sha256_json

        if self.loaded is not None:
            fingerprint = loaded_model_fingerprint(*self.loaded)
        else:
            fingerprint = sha256_json(model_fingerprint_when_ready(self.model))
        return cache_inputs(fingerprint, self.include_path)

    def describe(self) -> str:
        return f"openllm {self.task} ({self.setting}) with {Path(self.model).name}"

    def compute(self, tmp: Path, store: Any) -> dict[str, Any]:
        from selbench.cost import CostMeter
        from selbench.generation.judge_model import load_judge
        from selbench.store import write_json_atomic

        chosen, task = SETTINGS[self.setting], self.task
        shared = self.shared if self.shared is not None else {}
        if "manager" not in shared:
            shared["manager"] = task_manager(self.include_path, [task])
        if "lm" not in shared:  # loaded only when some task is not cached
            shared["lm"] = build_lm(*(self.loaded or load_judge(self.model)), self.batch_size, chosen.max_length)
        with CostMeter(f"{STEP}:{task}") as meter:
            raw = run_task(shared["lm"], task, num_fewshot=chosen.num_fewshot(task), limit=self.limit,
                           manager=shared["manager"], item_metric=chosen.metric(task))
        per_task = raw.pop("items")
        (tmp / "results.json").write_text(json.dumps(raw, indent=2, sort_keys=True), encoding="utf-8")
        stats: dict[str, Any] = {}
        if chosen.aggregation(task) == "subtask_mean":
            stats["value"], stats["n_subtasks"] = subtask_mean(raw, task, chosen.metric(task))
        else:
            stats["value"] = headline(raw["results"], task, chosen.metric(task))
        stats.update(n=_n_docs(raw), metrics=raw["results"].get(task, {}))
        items = [{"item": f"{name}/{doc}", "score": value, "task": name}
                 for name, values in sorted(per_task.items()) if values is not None
                 for doc, value in sorted(values.items())]
        unavailable = any(values is None for values in per_task.values())
        write_json_atomic(tmp / METRICS_FILE, {**stats, "metric": chosen.metric(task),
                                               "aggregation": chosen.aggregation(task),
                                               **({"items": "unavailable"} if unavailable else {})})
        write_items(tmp, [] if unavailable else items)
        spec = "<in-memory>" if self.loaded is not None else self.model
        return {**stats, "model_spec": spec, "cost": meter.record.to_dict()}
