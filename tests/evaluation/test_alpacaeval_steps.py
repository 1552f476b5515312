"""AlpacaEval's judging and head-to-head as store steps: keys computed before running, perturbed by every
input, and a finished step asks the judge nothing (requests counted by a server on 127.0.0.1)."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace

from faulty_judge import FaultyJudge
from selbench.evaluation.alpacaeval import FN_ANNOTATOR, is_switched
from selbench.evaluation.alpacaeval_steps import HeadToHeadStep, JudgePairsStep
from selbench.llm.client import LLMConfig
from selbench.store import StepStore

JUDGE = LLMConfig(model="judge", base_url="http://127.0.0.1:9/v1")
PAIRS = JudgePairsStep(JUDGE, ("a", "b"), ("x1", "x2"), ("y1", "y2"))
H2H = HeadToHeadStep(JUDGE, ("a", "b"), ("s1", "s2"), (("r0", ("x1", "x2")), ("r1", ("z1", "z2"))))


def test_judge_step_key_changes_with_every_input_and_not_with_limits():
    variants = [
        replace(PAIRS, judge=LLMConfig(model="other", base_url=JUDGE.base_url)),
        replace(PAIRS, judge=LLMConfig(model="judge", base_url="http://127.0.0.1:10/v1")),
        replace(PAIRS, instructions=("a", "c")),
        replace(PAIRS, outputs_1=("x1", "x3")),
        replace(PAIRS, outputs_2=("y1", "y3")),
        replace(PAIRS, annotator=FN_ANNOTATOR),
        replace(PAIRS, randomize_order=False),
    ]
    keys = {PAIRS.key(), *(v.key() for v in variants)}
    assert len(keys) == len(variants) + 1
    same = replace(PAIRS, judge=replace(JUDGE, max_workers=16, api_key_env="OTHER", timeout_s=5), progress=True)
    assert same.key() == PAIRS.key()
    assert pickle.loads(pickle.dumps(PAIRS)).key() == PAIRS.key()  # a worker can run it from the object alone


def test_head_to_head_key_changes_with_every_input():
    variants = [
        replace(H2H, judge=LLMConfig(model="other", base_url=JUDGE.base_url)),
        replace(H2H, instructions=("a", "c")),
        replace(H2H, selected_outputs=("s1", "s3")),
        replace(H2H, random_outputs=(("r0", ("x1", "x2")),)),
        replace(H2H, random_outputs=(("r0", ("x1", "x2")), ("r1", ("z1", "z3")))),
        replace(H2H, seed=1),
        replace(H2H, full_per_seed=True),
        replace(H2H, protocol="study"),
        replace(H2H, annotator=FN_ANNOTATOR),
    ]
    assert len({H2H.key(), *(v.key() for v in variants)}) == len(variants) + 1


def _ranking(messages):
    # the function-calling annotator's answer as text: model "m" (whatever was shown first) ranked first
    return json.dumps({"ordered_models": [{"model": "m", "rank": 1}, {"model": "M", "rank": 2}]})


def test_judge_step_runs_once_and_its_key_is_known_before():
    instructions = tuple(f"Explain topic {i}." for i in range(6))
    with FaultyJudge(["500"], answer=_ranking) as judge:
        config = LLMConfig(model="faulty", base_url=judge.base_url, backoff_s=0.01)
        step = JudgePairsStep(config, instructions, tuple("ref" for _ in instructions),
                              tuple(f"out {i}" for i in range(6)), annotator=FN_ANNOTATOR)
        key = step.key()
        first = step.run(StepStore())
        assert first.key == key and not first.cached
        assert judge.chat_requests == 7  # six pairs, one retried 500
        prefs = JudgePairsStep.preferences(first)
        assert prefs == [2.0 if is_switched(x) else 1.0 for x in instructions]
        assert first.stats["judge"]["retries"] == 1 and first.stats["unparsed"] == 0
        again = step.run(StepStore())
        assert again.cached and JudgePairsStep.preferences(again) == prefs
        assert judge.chat_requests == 7


def test_head_to_head_step_stores_its_result():
    instructions = tuple(f"Explain topic {i}." for i in range(4))
    with FaultyJudge(answer=_ranking) as judge:
        config = LLMConfig(model="faulty", base_url=judge.base_url)
        step = HeadToHeadStep(config, instructions, tuple(f"sel {i}" for i in range(4)),
                              (("r0", tuple(f"r0 {i}" for i in range(4))),), annotator=FN_ANNOTATOR)
        stored = step.run(StepStore())
        assert stored.key == step.key() and judge.chat_requests == 8  # both orders
        result = HeadToHeadStep.result(stored)
        # "m" (shown first) always wins: the selected output wins one order and loses the other -> a draw
        assert result["win_rate"] == 50.0 and result["n"] == 4 and result["per_seed"]["r0"]["n"] == 4
        assert step.run(StepStore()).cached and judge.chat_requests == 8
