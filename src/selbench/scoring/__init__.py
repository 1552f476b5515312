"""Scoring: per-example signals (length, IFD, DEITA scores, ratings, embeddings) computed once per
(dataset, scorer config) and cached, so every budget and strategy reuses them."""

from selbench.scoring.base import SCORERS, Scorer, ScoresResult, compute_scores, read_scores

__all__ = ["SCORERS", "Scorer", "ScoresResult", "compute_scores", "read_scores"]
