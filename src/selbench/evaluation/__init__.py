"""Benchmarks: IFEval, AlpacaEval (LC win rate, head-to-head), LLMBar, OpenLLM tasks via lm-eval."""
