"""The grid file of a study (DESIGN.md "The study"): validated YAML -> a frozen `Grid`.

A grid names datasets, budgets and strategies (required) and, with defaults, the base model, the random
baselines, the training presets, the benchmarks, the price sheet and the executor. Validation is pydantic v2
with `extra="forbid"` everywhere, so a misspelt key is an error, not a silently ignored setting. Errors are
one `InputError` naming the grid file, the line of the offending key (the YAML is composed with
`yaml.SafeLoader` and every mapping key's line is kept) and the dotted field, which the command line turns
into `error: GRID.yaml:LINE: field 'x.y': ...` and exit 2.

Registry names (loaders, strategies, presets) are checked against the registries, which include outside
plug-ins (entry points): a strategy written on another branch or in another package is accepted once its
registry knows it. `load_grid(..., allow_unregistered=True)` (dry runs) plans strategies the registry does not
know yet (unless the name is close to a registered one: a typo) and lists them (`unregistered_strategies`)
instead of refusing the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator

from selbench.errors import InputError
from selbench.runner.grid_benchmarks import BenchmarksSpec, Spec
from selbench.runner.yaml_lines import compose, key_lines, line_of, pydantic_message

DEFAULT_MODEL = "smollm2-135m-instruct"


class DatasetSpec(Spec):
    """One dataset: `selbench data prepare` arguments, and an optional seeded subsample.

    Args:
        source: registered loader (`alpaca`, `dolly`, `flan`, `evol`, `sharegpt`, `jsonl`, ...).
        input: file path, `hf://org/name[@revision][:split]`, or a packaged pool name (`sharegpt`).
        limit: keep a uniform random subsample of this many examples (seeded by the grid's `seed`), in pool
            order; None keeps the whole pool.
        skip_invalid: drop invalid records (counted) instead of stopping.
        max_per_task: FLAN's per-task cap (the study: 50).
        max_chars: longer examples are invalid.
        field_map: canonical field -> source field (jsonl, parquet, hf).
    """

    source: str
    input: str
    limit: int | None = Field(default=None, ge=1)
    skip_invalid: bool = False
    max_per_task: int | None = Field(default=None, ge=1)
    max_chars: int | None = Field(default=None, ge=1)
    field_map: dict[str, str] | None = None

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        from selbench.data.base import LOADERS

        if value not in LOADERS:
            try:
                LOADERS.get(value)
            except KeyError as exc:  # near-name suggestions; pydantic reports ValueErrors with their location
                raise ValueError(str(exc.args[0])) from None
        return value


class RandomSpec(Spec):
    """The random baselines of every (dataset, budget).

    Args:
        seeds: seeds of the overlap-constrained random selections (`select random --against` every strategy
            of that dataset and budget at once).
        max_overlap: their bound on shared ids / budget with each strategy (the study: 0.3).
        strict: strict-random baselines too: `true` = one, with the first seed; a list = these seeds. They
            sample outside every strategy's selection at the largest budget (the study's rule).
    """

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    max_overlap: float = Field(default=0.3, ge=0.0, le=1.0)
    strict: bool | list[int] = False

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        _check_seeds(value)
        return value

    @field_validator("strict", mode="before")
    @classmethod
    def _strict(cls, value: Any) -> bool | list[int]:
        if isinstance(value, bool):
            return value
        if not isinstance(value, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
            raise ValueError(f"expected true, false or a list of integer seeds, got {value!r}")
        _check_seeds(value)
        return value

    @property
    def strict_seeds(self) -> list[int]:
        if self.strict is True:
            return self.seeds[:1] or [0]
        return list(self.strict) if isinstance(self.strict, list) else []


def _check_seeds(value: list[int]) -> None:
    if any(s < 0 for s in value):
        raise ValueError(f"seeds must be integers >= 0, got {value}")
    if len(set(value)) != len(value):
        raise ValueError(f"seeds must not repeat, got {value}")


class TrainSpec(Spec):
    """Fine-tuning of every cell.

    Args:
        presets: training presets (`selbench.training.presets.PRESETS`: set1, set2, set3, set4-lora, demo);
            each is its own cell.
        lora: force LoRA on (true) or off (false) for every preset; None keeps each preset's choice.
        set: `TrainConfig` overrides applied to every preset (e.g. `{max_length: 256, max_steps: 2}`).
    """

    presets: list[str] = Field(default_factory=lambda: ["set4-lora"], min_length=1)
    lora: bool | None = None
    set: dict[str, Any] = Field(default_factory=dict)

    @field_validator("presets")
    @classmethod
    def _known_presets(cls, value: list[str]) -> list[str]:
        from selbench.training.presets import PRESETS

        unknown = [p for p in value if p not in PRESETS]
        if unknown:
            raise ValueError(f"unknown preset(s) {unknown} (known: {', '.join(PRESETS)})")
        if len(set(value)) != len(value):
            raise ValueError(f"presets must not repeat, got {value}")
        return value

    def config(self, preset: str) -> Any:
        """The `TrainConfig` of `preset` with `lora` and `set` applied (ValueError/InputError when bad)."""
        from selbench.training.presets import from_preset

        overrides = dict(self.set)
        if self.lora is not None:
            overrides["lora"] = self.lora
        return from_preset(preset, **overrides)


class ExecutorSpec(Spec):
    """Args:
    kind: `local` (this machine's cores and GPUs) or `ray`.
    address: Ray cluster address (`auto`, `HOST:PORT`); None starts a local Ray.
    max_retries: retries of a failed step (Ray: task retries; local: re-runs) before its cell fails.
    workers: local executor: most steps at once (None: the machine's CPU count).
    shard_tasks: ray executor: most Ray tasks one long scoring, generation or LLMBar step is spread over
        (None: as many as the cluster runs at once with the step's request; 1: one task per step).
    """

    kind: Literal["local", "ray"] = "local"
    address: str | None = None
    max_retries: int = Field(default=1, ge=0)
    workers: int | None = Field(default=None, ge=1)
    shard_tasks: int | None = Field(default=None, ge=1)


class Grid(Spec):
    """A study grid (DESIGN.md "The study"). Only `datasets`, `budgets` and `strategies` are required.

    Args:
        out: the run folder.
        model: base model spec (packaged asset name, folder or `hf://org/name`).
        seed: seeds dataset subsamples and deterministic strategies' tie-breaking.
        datasets: name -> prepare arguments.
        budgets: selection sizes.
        strategies: registry name -> its parameters (`full` is a strategy like any other).
        random: the random baselines.
        train: presets and overrides.
        benchmarks: benchmark -> options.
        evaluate_base: also evaluate the base model, once, on every benchmark but the head-to-head.
        prices: a price sheet YAML path, or the sheet itself; None = the study's 8 USD/hour.
        executor: where the steps run.
    """

    out: str = "runs/study"
    model: str = DEFAULT_MODEL
    seed: int = Field(default=0, ge=0)
    datasets: dict[str, DatasetSpec] = Field(min_length=1)
    budgets: list[int] = Field(min_length=1)
    strategies: dict[str, dict[str, Any]]
    random: RandomSpec = Field(default_factory=RandomSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    benchmarks: BenchmarksSpec = Field(default_factory=BenchmarksSpec)
    evaluate_base: bool = True
    prices: str | dict[str, Any] | None = None
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    _unregistered: list[str] = PrivateAttr(default_factory=list)

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, value: dict[str, DatasetSpec]) -> dict[str, DatasetSpec]:
        import re

        bad = [name for name in value if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name)]
        if bad:
            raise ValueError(f"dataset names become folder names: letters, digits, '_', '.', '-' only, got {bad}")
        return value

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, value: list[int]) -> list[int]:
        if any(b < 1 for b in value):
            raise ValueError(f"budgets must be integers >= 1, got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"budgets must not repeat, got {value}")
        return sorted(value)

    @field_validator("strategies")
    @classmethod
    def _strategy_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in value:
            if name in ("random", "strict-random"):
                raise ValueError(f"{name!r} is planned from the 'random' section (seeds, max_overlap, strict), "
                                 "not listed under strategies")
            if name == "base":
                raise ValueError("'base' names the base model's evaluation; pick another strategy name")
        return value

    def strategy_params(self, name: str) -> dict[str, Any]:
        return dict(self.strategies[name] or {})


# ---------------------------------------------------------------------------------------------- loading
def grid_from_dict(raw: Any, path: str | Path = "<grid>", lines: dict[tuple[Any, ...], int] | None = None,
                   *, allow_unregistered: bool = False) -> Grid:
    """Validate a grid given as plain data; errors name `path`, the line (when `lines` has it) and the field."""
    path = Path(path)
    lines = lines or {}
    if not isinstance(raw, dict):
        raise InputError(f"a grid is a YAML mapping, got {type(raw).__name__}", path=path, line=1)
    try:
        grid = Grid.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        field = ".".join(str(p) for p in loc if not (isinstance(p, str) and "[" in p)) or None
        raise InputError(pydantic_message(error), path=path, line=line_of(loc, lines) if loc else 1,
                         field=field) from None
    except (KeyError, ValueError) as exc:  # raised by a registry inside a validator
        raise InputError(str(exc.args[0] if exc.args else exc), path=path) from None
    _check_train(grid, path, lines)
    unregistered = _check_strategies(grid, path, lines, allow_unregistered)
    grid._unregistered = unregistered
    return grid


def _check_train(grid: Grid, path: Path, lines: dict[tuple[Any, ...], int]) -> None:
    """Every preset with the grid's overrides is a valid `TrainConfig` (errors name the `set` key)."""
    import re

    for preset in grid.train.presets:
        try:
            grid.train.config(preset)
        except InputError as exc:  # a bad value: TrainConfig names the field
            key = exc.field or ""
            raise InputError(f"{exc.message} (preset {preset})", path=path, field=f"train.set.{key}",
                             line=lines.get(("train", "set", key), lines.get(("train", "set")))) from None
        except (TypeError, ValueError) as exc:  # an unknown field: "TrainConfig has no field 'x'"
            found = re.search(r"no field '([^']+)'", str(exc))
            key = found.group(1) if found else ""
            raise InputError(str(exc), path=path, field=f"train.set.{key}".rstrip("."),
                             line=lines.get(("train", "set", key), lines.get(("train", "set")))) from None


def _check_strategies(grid: Grid, path: Path, lines: dict[tuple[Any, ...], int], allow_unregistered: bool) -> list[str]:
    """Every strategy is registered and accepts its parameters; returns the unregistered ones when allowed."""
    import difflib

    from selbench.selection.base import STRATEGIES

    unregistered = []
    for name, params in grid.strategies.items():
        line = lines.get(("strategies", name))
        if name not in STRATEGIES:
            # A name close to a registered one is a typo, not a strategy from elsewhere: refused even then.
            if allow_unregistered and not difflib.get_close_matches(name, STRATEGIES.names(), n=1):
                unregistered.append(name)
                continue
            try:
                STRATEGIES.get(name)
            except KeyError as exc:
                raise InputError(str(exc.args[0]), path=path, line=line, field=f"strategies.{name}") from None
        if params is not None and not isinstance(params, dict):
            raise InputError(f"parameters are a mapping, got {type(params).__name__}", path=path, line=line,
                             field=f"strategies.{name}")
        try:
            STRATEGIES.get(name)(**dict(params or {}))
        except TypeError as exc:
            raise InputError(f"bad parameters: {exc}", path=path, line=line, field=f"strategies.{name}") from None
        except InputError as exc:
            key = exc.field or ""
            raise InputError(exc.message, path=path, line=lines.get(("strategies", name, key), line),
                             field=f"strategies.{name}.{key}".rstrip(".")) from None
    return unregistered


def unregistered_strategies(grid: Grid) -> list[str]:
    """Strategies a dry run planned although the registry does not know them (see `load_grid`)."""
    return list(grid._unregistered)


def load_grid(path: str | Path, *, allow_unregistered: bool = False) -> Grid:
    """Read and validate a grid YAML file.

    Args:
        path: the grid file.
        allow_unregistered: accept strategy names the registry does not know and that are not near a known one
            (a dry run plans them and says so); a real run refuses them.

    Raises:
        InputError: unreadable file, invalid YAML, an unknown key or a bad value: the file, the key's line and
            the dotted field are named.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("grid file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the grid file: {exc}", path=path) from None
    node = compose(text, path)
    lines = key_lines(node, path)
    raw = yaml.safe_load(text) if node is not None else None
    return grid_from_dict(raw, path, lines, allow_unregistered=allow_unregistered)


def grid_yaml(grid: Grid) -> str:
    """The grid as resolved (every default filled in), as YAML: the run folder's `grid.yaml`."""
    return yaml.safe_dump(grid.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
