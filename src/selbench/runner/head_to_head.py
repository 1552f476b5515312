"""The AlpacaEval head-to-head of the study (its Figure 2) as a step, until the stage ships its own.

A strategy's model against the random-baseline models of its cell (dataset, budget, preset), one judge: an API
model, or a local model served on 127.0.0.1 for the step's duration (`selbench serve`'s app). Key: the judge's
settings and the fingerprints of every model involved (the judge's too when it is local); output:
`metrics.json`, the stats' `metrics` (`win_rate`, `mean_adjusted_win_rate`, percent) and `items.jsonl` (per
instruction: `score` = the preference for the strategy's output in [0, 1], `opponent_seed` = the random model it
met). Generation is cached by the generation stage, so a random model's outputs are generated once for every
head-to-head that meets it.

Only `selbench.runner.plan` builds it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from selbench.evaluation.base import write_items
from selbench.hashing import canonical_json
from selbench.runner.steps import model_ready
from selbench.step import Step
from selbench.store import StepStore, write_json_atomic


def _fingerprint(spec: str) -> dict[str, str]:
    from selbench.assets.fingerprint import model_fingerprint

    model_ready(spec)
    return model_fingerprint(spec)


@dataclass(frozen=True)
class HeadToHeadStep(Step):
    """AlpacaEval head-to-head: a model against the random-baseline models of its cell, one judge.

    Args:
        model: the strategy's model.
        randoms: the random-baseline models.
        random_seeds: their seeds, in the same order (for the items' `opponent_seed`; not part of the key).
        judge: API model name, or a local model spec served on 127.0.0.1 for the step (when `judge_base_url`
            is None and the name is a packaged asset, a folder or `hf://`).
        judge_base_url / judge_api_key_env / judge_workers: the endpoint.
        limit / max_new_tokens / protocol / annotator / seed: `selbench eval head-to-head`'s options.
    """

    model: str
    randoms: tuple[str, ...]
    random_seeds: tuple[int, ...]
    judge: str
    judge_base_url: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    judge_workers: int = 4
    limit: int | None = None
    max_new_tokens: int = 512
    protocol: str = "both"
    annotator: str | None = None
    seed: int = 0

    name: ClassVar[str] = "eval:head-to-head-run"
    VERSION: ClassVar[int] = 1

    def _local_judge(self) -> bool:
        from selbench.assets.spec import is_local_model

        return is_local_model(self.judge, self.judge_base_url)

    def config(self) -> dict[str, Any]:
        from selbench.evaluation.alpacaeval import ANNOTATOR

        return {"judge": self.judge, "limit": self.limit, "max_new_tokens": self.max_new_tokens,
                "protocol": self.protocol, "annotator": self.annotator or ANNOTATOR, "seed": self.seed}

    def inputs(self) -> dict[str, Any]:
        inputs: dict[str, Any] = {"model": _fingerprint(self.model), "randoms": [_fingerprint(r) for r in self.randoms]}
        if self._local_judge():
            inputs["judge"] = _fingerprint(self.judge)
        return inputs

    def key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        inputs = self.inputs()  # the models first: nothing else is read while one is not trained yet
        return json.loads(canonical_json(self.config())), json.loads(canonical_json(inputs))

    def describe(self) -> str:
        return f"head-to-head {Path(self.model).name}"

    @contextlib.contextmanager
    def _endpoint(self) -> Iterator[tuple[str, str | None]]:
        """(judge model name, base URL): a local judge is served on 127.0.0.1 while the step runs."""
        if not self._local_judge():
            yield self.judge, self.judge_base_url
            return
        from selbench.assets import load_model
        from selbench.generation.server import BackgroundServer, create_app

        model, tokenizer = load_model(self.judge)
        with BackgroundServer(create_app(model, tokenizer, self.judge)) as server:
            yield self.judge, server.base_url

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        import inspect

        from selbench.cost import CostMeter
        from selbench.evaluation.alpacaeval import ANNOTATOR, evaluate_head_to_head

        options = {}
        if "judge_api_key_env" in inspect.signature(evaluate_head_to_head).parameters:
            options["judge_api_key_env"] = self.judge_api_key_env
        with CostMeter(self.name) as meter, self._endpoint() as (judge, base_url):
            result = evaluate_head_to_head(
                self.model, list(self.randoms), judge=judge, judge_base_url=base_url, limit=self.limit,
                seed=self.seed, max_new_tokens=self.max_new_tokens, judge_workers=self.judge_workers,
                protocol=self.protocol, annotator=self.annotator or ANNOTATOR, **options)
        # Preferences are in [1, 2], 2 = the strategy's output (output_2) preferred: score = its win share.
        seed_of = {str(path): seed for path, seed in zip(self.randoms, self.random_seeds, strict=True)}
        write_items(tmp, [{"item": str(i), "score": float(p) - 1.0, "opponent_seed": seed_of.get(str(opponent))}
                          for i, (p, opponent) in enumerate(zip(result["preferences"], result["opponents"], strict=True))
                          if p is not None])
        judge_cost = result.get("cost") or {}
        record = meter.record.to_dict()
        for name in ("api_input_tokens", "api_output_tokens", "api_usd"):
            record[name] = judge_cost.get(name, 0)
        record["usd"] = record["node_usd"] + record["api_usd"]
        metrics = {k: result[k] for k in ("win_rate", "mean_adjusted_win_rate") if result.get(k) is not None}
        write_json_atomic(tmp / "metrics.json", {**metrics, "n": result.get("n"), "unparsed": result.get("unparsed")})
        return {"metrics": metrics, "n": result.get("n"), "unparsed": result.get("unparsed"),
                "per_seed": result.get("per_seed"), "cost": record}
