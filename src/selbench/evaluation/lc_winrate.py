"""AlpacaEval 2 win rate and length-controlled (LC) win rate, from pairwise preferences.

Definitions follow alpaca_eval 0.6.6 (`alpaca_eval/metrics/winrate.py`, `metrics/helpers.py`,
`metrics/glm_winrate.py`) and Dubois et al., 2024, "Length-Controlled AlpacaEval: A Simple Way to Debias
Automatic Evaluators" (https://arxiv.org/abs/2404.04475):

* A preference is in [1, 2]: 1 = the baseline (`output_1`) wins, 2 = the model (`output_2`) wins; 0 is
  the legacy code for a draw and means 1.5. Missing (None / NaN) preferences are dropped.
* win rate = 100 x mean(preference - 1); `n_draws` counts preferences exactly 1.5 (or 0);
  `n_wins` those > 1.5, `n_wins_base` those < 1.5; `discrete_win_rate` rounds each preference first.
* LC win rate: a logistic GLM with no intercept on three features, fitted on soft labels
  (preference - 1) by L1-penalised `LogisticRegressionCV` (liblinear, 5 group folds, seed 123):
  `tanh(std_delta_len)` (length of output_1 minus output_2, divided by its sample std),
  `instruction_difficulty` (one number per instruction) and a constant model-vs-baseline term. The LC
  win rate is 100 x the mean predicted preference with the length feature set to 0.
  Officially (`length_controlled_v1`) the fit also includes the annotations of two "gamed" versions of
  the baseline (asked to be verbose / concise; `df_gamed.csv` on the hub) weighted lambda/2 = 0.1 each,
  which regularises the length and difficulty weights; pass them as `gamed` when available.

Offline deviation (documented, measured): the official per-instruction difficulty
(`instruction_difficulty.csv`) and `df_gamed.csv` live only on the hub. `estimate_instruction_difficulty`
then fits, jointly over every annotation set at hand (instructions matched by text, so files may cover
different subsets), `logit P(model m wins on x) = theta_m + phi_m * tanh(std_delta_len_mx) + gamma_x` by
maximum likelihood on the soft labels (tiny L2 on gamma for identifiability) -- the same joint model
alpaca_eval's `notebooks/instruction_difficulty.ipynb` fits across leaderboard models -- and uses gamma_x as
the difficulty; the GLM is then fitted without the gamed rows, i.e. alpaca_eval's
`length_controlled_noreg` (results say which `glm` was used). On the 9 official annotation files in the
shared data this matches the leaderboard's win rate exactly and its LC win rate within 6.7 points (median
0.8); see the tests. The largest gap (gpt-3.5-turbo-1106: 25.9 vs 19.3) comes from the missing
regularisation: our unregularised length weight is -2.82 where the official fit, pulled towards the gamed
baselines' -1.6, has -2.04 (alpaca_eval's saved GLM weights in its GitHub repository).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# The official GLM (alpaca_eval `GLM_INFO["length_controlled_v1"]`).
GLM_FORMULA = ("tanh(std_delta_len)", "instruction_difficulty", "not_gamed_baseline")
REGULARIZE_TO_BASELINE_LAMBDA = 0.2
N_SPLITS = 5
RANDOM_STATE = 123


def normalize_preferences(preferences: np.ndarray) -> np.ndarray:
    """Map legacy draws (0) to 1.5 and return floats (NaN = missing).

    >>> normalize_preferences(np.array([0.0, 1.0, 2.0, np.nan])).tolist()[:3]
    [1.5, 1.0, 2.0]
    """
    prefs = np.asarray(preferences, dtype=float).copy()
    prefs[prefs == 0.0] = 1.5
    return prefs


def win_rate_stats(preferences: np.ndarray) -> dict[str, Any]:
    """Win rate and counts exactly as alpaca_eval's `get_winrate` (absolute scoring rule).

    Args:
        preferences: one value per instruction in [1, 2] (0 = draw, NaN = missing, dropped).

    Returns:
        `win_rate` and `standard_error` (percent), `n_wins`, `n_wins_base`, `n_draws`, `n_total`,
        `discrete_win_rate` (percent).

    >>> win_rate_stats(np.array([1.0, 2.0, 1.5, np.nan]))["win_rate"]
    50.0
    """
    raw = np.asarray(preferences, dtype=float)
    n_draws = int(np.sum((raw == 1.5) | (raw == 0.0)))
    prefs = normalize_preferences(raw)
    valid = ~np.isnan(prefs)
    if np.any(valid & ((prefs < 1) | (prefs > 2))):
        raise ValueError("preferences must lie in [1, 2] (0 = draw, NaN = missing)")
    p = prefs[valid] - 1.0
    n = int(p.size)
    # discrete: round each preference to 1 / 1.5 / 2 (0 = draw), as ZeroOneScoringRule does
    rounded = np.round(np.where(prefs[valid] == 1.5, 0.0, prefs[valid]))
    discrete = np.where(rounded == 0.0, 0.5, rounded - 1.0)
    return {
        "win_rate": float(p.mean() * 100) if n else float("nan"),
        "standard_error": float(p.std(ddof=1) / np.sqrt(n) * 100) if n > 1 else float("nan"),
        "n_wins": int(np.sum(p > 0.5)),
        "n_wins_base": int(np.sum(p < 0.5)),
        "n_draws": n_draws,
        "n_total": n,
        "discrete_win_rate": float(discrete.mean() * 100) if n else float("nan"),
    }


def std_delta_len(len_baseline: np.ndarray, len_model: np.ndarray) -> np.ndarray:
    """(len(output_1) - len(output_2)) / its sample std, in characters as alpaca_eval measures length."""
    delta = np.asarray(len_baseline, dtype=float) - np.asarray(len_model, dtype=float)
    std = delta.std(ddof=1)
    return delta / std if std > 0 else np.zeros_like(delta)


@dataclass(frozen=True)
class GamedRows:
    """Annotations of the gamed baselines (`df_gamed.csv`), already featurised.

    Args:
        preference: soft labels in [0, 1] (preference - 1).
        std_delta_len: standardised length differences.
        instruction_difficulty: difficulty of each row's instruction.
    """

    preference: np.ndarray
    std_delta_len: np.ndarray
    instruction_difficulty: np.ndarray


def _fit_soft_logistic_cv(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """alpaca_eval's `fit_LogisticRegressionCV(is_ytrue_proba=True)`: coefficients of the chosen fit.

    Each row is duplicated with label 1 (sample weight y*w) and label 0 (weight (1-y)*w); folds group the
    two copies; the CV score is the weighted soft-label log loss. We call alpaca_eval's function itself
    (pandas + sklearn, no network) so its C grid, solver and scorer are used exactly.
    """
    import pandas as pd
    from alpaca_eval.metrics.glm_winrate import fit_LogisticRegressionCV

    data = pd.DataFrame(x, columns=list(GLM_FORMULA))
    data["preference"] = y
    sample_weight = None if np.all(weight == 1.0) else pd.Series(weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fit_LogisticRegressionCV(
            data,
            "preference",
            is_ytrue_proba=True,
            n_splits=N_SPLITS,
            sample_weight=sample_weight,
            random_state=RANDOM_STATE,
        )
    return np.asarray(model.coef_[0], dtype=float)


def length_controlled_win_rate(
    preferences: np.ndarray,
    len_baseline: np.ndarray,
    len_model: np.ndarray,
    difficulty: np.ndarray,
    *,
    gamed: GamedRows | None = None,
    regularize_lambda: float = REGULARIZE_TO_BASELINE_LAMBDA,
) -> dict[str, Any]:
    """LC win rate of the model against the baseline (alpaca_eval `length_controlled_v1`).

    Args:
        preferences: per instruction, in [1, 2] (0 = draw, NaN = missing: excluded from the fit only).
        len_baseline / len_model: character lengths of output_1 / output_2.
        difficulty: instruction difficulty per instruction (official file or our estimate).
        gamed: the gamed-baseline rows for the regularised fit; None fits on the model's rows alone.
        regularize_lambda: total weight of the gamed rows (split between the two gamed baselines).

    Returns:
        `lc_win_rate`, `lc_standard_error` (percent), `glm_weights` (feature -> coefficient) and the
        per-instruction `glm_preference` array.
    """
    prefs = normalize_preferences(preferences) - 1.0
    diff = np.asarray(difficulty, dtype=float)
    if not (prefs.shape == diff.shape == np.shape(len_baseline) == np.shape(len_model)):
        raise ValueError(
            f"preferences {prefs.shape}, lengths {np.shape(len_baseline)}/{np.shape(len_model)} and "
            f"difficulty {diff.shape} must have the same length"
        )
    x_model = np.column_stack([np.tanh(std_delta_len(len_baseline, len_model)), diff, np.ones_like(diff)])
    keep = ~np.isnan(prefs)
    x_train, y_train, w_train = x_model[keep], prefs[keep], np.ones(int(keep.sum()))
    if gamed is not None and regularize_lambda:
        x_gamed = np.column_stack(
            [np.tanh(gamed.std_delta_len), gamed.instruction_difficulty, np.zeros_like(gamed.preference)]
        )
        keep_g = ~np.isnan(gamed.preference)
        x_train = np.vstack([x_gamed[keep_g], x_train])
        y_train = np.concatenate([gamed.preference[keep_g], y_train])
        w_train = np.concatenate([np.full(int(keep_g.sum()), regularize_lambda / 2), w_train])
    coef = _fit_soft_logistic_cv(x_train, y_train, w_train)
    x_test = x_model.copy()
    x_test[:, 0] = 0.0  # tanh(0): what the model would get with no length difference
    predicted = 1.0 / (1.0 + np.exp(-(x_test @ coef)))
    return {
        "lc_win_rate": float(predicted.mean() * 100),
        "lc_standard_error": float(predicted.std(ddof=1) / np.sqrt(predicted.size) * 100),
        "glm_weights": dict(zip(GLM_FORMULA, coef.tolist(), strict=True)),
        "glm_preference": predicted,
    }


def estimate_instruction_difficulty(
    preferences: np.ndarray, len_baseline: np.ndarray, len_model: np.ndarray, *, l2: float = 1e-3
) -> np.ndarray:
    """Per-instruction difficulty from several models' annotations on the same instructions.

    Fits `logit p_mx = theta_m + phi_m * tanh(std_delta_len_mx) + gamma_x` (soft labels p_mx =
    preference - 1, missing entries skipped, L2 penalty `l2` on gamma only) by L-BFGS and returns gamma.
    This is our offline stand-in for alpaca_eval's hub-only `instruction_difficulty.csv`, which the
    authors also fitted across leaderboard models; its scale and offset do not matter since the LC GLM
    fits its own weight on it.

    Args:
        preferences / len_baseline / len_model: arrays of shape (n_models, n_instructions); NaN where a
            model was not judged on an instruction (files covering different subsets).
        l2: ridge strength on gamma (identifiability; results are insensitive to it).

    Returns:
        gamma, shape (n_instructions,): higher = the models win more often (an easier instruction).
    """
    from scipy.optimize import minimize

    prefs = normalize_preferences(np.atleast_2d(preferences)) - 1.0
    n_models, n_items = prefs.shape
    mask = ~np.isnan(prefs)
    len_b = np.atleast_2d(np.asarray(len_baseline, dtype=float))
    len_m = np.atleast_2d(np.asarray(len_model, dtype=float))
    tanh_len = np.zeros_like(prefs)  # per model, standardised over the instructions it was judged on
    for i in range(n_models):
        seen = ~np.isnan(len_b[i]) & ~np.isnan(len_m[i])
        tanh_len[i, seen] = np.tanh(std_delta_len(len_b[i, seen], len_m[i, seen]))
    mask &= ~np.isnan(len_b) & ~np.isnan(len_m)
    y = np.where(mask, prefs, 0.0)

    def loss_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        theta, phi, gamma = w[:n_models], w[n_models : 2 * n_models], w[2 * n_models :]
        z = theta[:, None] + phi[:, None] * tanh_len + gamma[None, :]
        nll = np.where(mask, y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z), 0.0)
        resid = np.where(mask, 1.0 / (1.0 + np.exp(-z)) - y, 0.0)
        grad = np.concatenate([resid.sum(1), (resid * tanh_len).sum(1), resid.sum(0) + 2 * l2 * gamma])
        return float(nll.sum() + l2 * np.sum(gamma**2)), grad

    start = np.zeros(2 * n_models + n_items)
    result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    if not result.success:
        log.warning("instruction difficulty fit did not converge: %s", result.message)
    return result.x[2 * n_models :]


def evaluate(
    preferences: np.ndarray,
    len_baseline: np.ndarray,
    len_model: np.ndarray,
    difficulty: np.ndarray,
    *,
    gamed: GamedRows | None = None,
) -> dict[str, Any]:
    """Win rate stats + LC win rate in one dict (the `lc-winrate` benchmark's entry point).

    Returns:
        `win_rate`, `lc_win_rate`, `n` (instructions with a preference), `standard_error`,
        `lc_standard_error`, `n_wins`, `n_wins_base`, `n_draws`, `discrete_win_rate`, `glm_weights`.
    """
    stats = win_rate_stats(preferences)
    lc = length_controlled_win_rate(preferences, len_baseline, len_model, difficulty, gamed=gamed)
    stats["n"] = stats.pop("n_total")
    stats.update({k: v for k, v in lc.items() if k != "glm_preference"})
    return stats
