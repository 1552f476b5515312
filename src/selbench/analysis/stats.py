"""Strategy vs random, calibrated for seed-to-seed variation; Holm; rank correlations with bootstrap intervals.

Why a test over items alone is wrong here: two fine-tuning runs that differ only in the random subset (or
the seed) give models whose benchmark scores differ by more than item sampling explains — the models
themselves vary. A paired test over items treats the strategy's model and the random models as fixed, so
with three random seeds it calls another random seed "better than random" far more often than 5 % of the
time (see `compare_items_only` and tests/analysis/test_stats.py). `compare_to_random` instead asks whether
the strategy's model is an outlier among random models, estimating their spread from the random seeds.

The model (a two-way random-effects layout, models x items): score[m, i] = mu + theta_m + b_i + e[m, i],
with theta_m the model's own level (variance tau^2 among random seeds: the between-seed variance), b_i the
item's difficulty (shared by every model, so it cancels in every comparison) and e the model-by-item noise
(variance sigma^2). Null hypothesis: the strategy's model is one more draw of theta (it is "just another
random seed"); alternative: its level is shifted by delta. Simulated false-positive rates and power are in
`compare_to_random`'s docstring and asserted in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as sps


def _interval(delta: float, var: float, df: float, level: float) -> dict[str, float]:
    """delta, 2-sided `level` interval, one-sided p (greater) and two-sided p under a t(df) reference."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    se = float(np.sqrt(var))
    if se == 0.0:  # every model scored the same on every item
        p = 0.5 if delta == 0 else (0.0 if delta > 0 else 1.0)
        return {"delta": delta, "ci_low": delta, "ci_high": delta, "p_value": p,
                "p_two_sided": 1.0 if delta == 0 else 0.0, "se": 0.0, "df": float(df)}
    t = delta / se
    q = float(sps.t.ppf(0.5 + level / 2, df))
    p_greater = float(sps.t.sf(t, df))
    p_less = float(sps.t.cdf(t, df))
    return {"delta": delta, "ci_low": delta - q * se, "ci_high": delta + q * se, "p_value": p_greater,
            "p_two_sided": min(1.0, 2 * min(p_greater, p_less)), "se": se, "df": float(df)}


def compare_to_random(
    strategy: Sequence[float] | np.ndarray,
    randoms: Sequence[Sequence[float]] | np.ndarray,
    *,
    seed: int = 0,
    level: float = 0.95,
    conservative: bool = False,
) -> dict[str, Any]:
    """Is the strategy's model better than the random-baseline models on one benchmark?

    Method. delta = mean(strategy) - mean(randoms). Under the null the strategy's model is one more random
    model, so Var(delta) = (1 + 1/K) * Var(per-model mean), the variance of one model's mean after removing
    the shared item effects (tau^2 + sigma^2 / n). Its unbiased estimate is the sample variance of the K
    random models' per-seed means (K - 1 degrees of freedom), and (delta / se) follows t(K - 1) exactly
    when the model levels and the item noise are normal: a prediction-interval test of "is the new model an
    outlier among the random ones". The item-sampling part sigma^2 / n is estimated separately from the
    model-by-item residuals of all K + 1 models (K * (n - 1) degrees of freedom). When the seeds' spread is
    below what item sampling alone explains (between-seed variance tau^2 estimated <= 0, truncated at zero
    as REML does), the item-sampling variance is used with its own degrees of freedom: the models then look
    like fixed models measured on a sample of items, and the reference is effectively normal. So the
    variance used is (1 + 1/K) * max(seed spread, item-sampling variance), with t(K - 1) or t(K(n - 1)).

    Assumptions: the random seeds are exchangeable draws of the same training recipe, and under the null
    so is the strategy's model (same item-noise level); additivity on the score scale; per-model means
    approximately normal (many items, or normal model effects). With K = 2 the seed spread has one degree
    of freedom and the truncation step is anti-conservative when tau^2 is small but non-zero (simulated
    worst case 0.08 at the 5 % level); `conservative=True` always uses t(K - 1), which keeps the level under
    any tau^2 at the cost of power when the models differ only item to item.

    Simulated at the one-sided 5 % level (binary items, logit difficulty N(0, 1), 1,500-2,000 runs per
    world; tests/analysis/test_stats.py): false positives 0.03-0.05 with no seed variance and 0.03-0.06
    for K >= 3 at every between-seed spread tried (logit sd 0.05-0.6, 20-541 items); the naive paired test
    over items reaches 0.25 (300 items, K = 3, logit sd 0.3, about 6 points between seeds) and 0.31 (500
    items, K = 5). Power against a +0.6 logit shift (about +12 accuracy points) with K = 3: 0.75 (200
    items) when models differ only item to item, 0.32 (300 items) with a seed logit sd of 0.3: three seeds
    cannot tell such a gain from seed noise most of the time, which is the study's point.

    Args:
        strategy: per-item scores of the strategy's model, shape [items].
        randoms: per-item scores of the random baselines on the same items, shape [seeds, items], seeds >= 2.
            Items with a NaN score for any model are dropped.
        seed: accepted for the contract in DESIGN.md; the method is analytic, the result does not depend on it.
        level: two-sided confidence level of [ci_low, ci_high].
        conservative: always use t(K - 1) (see Assumptions).

    Returns:
        `delta`, `ci_low`, `ci_high`, `p_value` (one-sided: strategy better than random), `p_two_sided`,
        `se`, `df`, `between_seed_var` (tau^2 estimate, >= 0), `item_var` (item-sampling variance of one
        model's mean, sigma^2 / n), `n_items`, `n_seeds`, `reference` ("seeds" or "items": which variance set
        the interval).

    >>> r = compare_to_random([1, 1, 1, 1, 0, 1], [[1, 0, 1, 0, 0, 1], [0, 1, 1, 0, 0, 1], [1, 1, 0, 0, 0, 1]])
    >>> round(r["delta"], 3), r["n_seeds"], r["n_items"], r["reference"]
    (0.333, 3, 6, 'items')
    >>> round(r["p_value"], 3), round(r["ci_low"], 3), round(r["ci_high"], 3)  # the seeds agree: items decide
    (0.052, -0.077, 0.744)
    >>> r = compare_to_random([1, 1, 1, 1, 0, 1, 1, 1], [[1, 0, 1, 0, 0, 1, 0, 0], [1, 1, 1, 1, 0, 1, 1, 0],
    ...                                                   [1, 1, 0, 0, 0, 1, 1, 1]])
    >>> r["reference"], r["df"], round(r["p_value"], 3)  # the seeds disagree: their spread decides
    ('seeds', 2.0, 0.158)
    >>> compare_to_random([1, 0], [[1, 0]])
    Traceback (most recent call last):
    ...
    ValueError: compare_to_random needs scores of at least 2 random seeds to estimate their spread, got 1
    """
    del seed  # analytic method: nothing to seed
    s = np.asarray(strategy, dtype=float)
    r = np.asarray(randoms, dtype=float)
    if s.ndim != 1 or r.ndim != 2 or r.shape[1] != s.shape[0]:
        raise ValueError(f"strategy must have shape [items] and randoms [seeds, items]; got {s.shape} and {r.shape}")
    k = r.shape[0]
    if k < 2:
        raise ValueError(f"compare_to_random needs scores of at least 2 random seeds to estimate their spread, got {k}")
    keep = np.isfinite(s) & np.isfinite(r).all(axis=0)
    s, r = s[keep], r[:, keep]
    n = s.shape[0]
    if n == 0:
        raise ValueError("no item has a finite score for every model")
    delta = float(s.mean() - r.mean())
    seed_spread = float(r.mean(axis=1).var(ddof=1))
    if n >= 2:
        models = np.vstack([s[None, :], r])
        resid = models - models.mean(axis=1, keepdims=True) - models.mean(axis=0, keepdims=True) + models.mean()
        df_items = k * (n - 1)
        item_var = float((resid**2).sum() / df_items / n)
    else:  # one item: no item-sampling estimate; the seed spread carries all of it
        df_items, item_var = 0, 0.0
    if conservative or seed_spread >= item_var or df_items == 0:
        var, df, reference = (1 + 1 / k) * max(seed_spread, item_var), k - 1, "seeds"
    else:
        var, df, reference = (1 + 1 / k) * item_var, df_items, "items"
    out: dict[str, Any] = _interval(delta, var, df, level)
    out.update(between_seed_var=max(0.0, seed_spread - item_var), item_var=item_var, n_items=n, n_seeds=k,
               reference=reference)
    return out


def compare_head_to_head(
    preferences: Sequence[float] | np.ndarray,
    opponents: Sequence[Any] | np.ndarray,
    *,
    level: float = 0.95,
) -> dict[str, Any]:
    """Does the strategy's model win the head-to-head against the random models more than half the time?

    The study's Figure 2 protocol: each instruction's answer is judged against one random model's answer
    (`opponents[i]` = that model's seed). delta = mean preference - 0.5 (x 100 = the mean-adjusted win
    rate). Calibration follows `compare_to_random`: with w_k the win rate against random seed k (n_k items,
    weight pi_k = n_k / n), Var(delta) = (1 + sum pi_k^2) * c^2 tau^2 + sigma^2 / n, where c^2 tau^2 is the
    between-seed variance on the preference scale and sigma^2 the per-judgement variance. The spread of the
    w_k estimates c^2 tau^2 + sigma^2 * mean(1 / n_k), sigma^2 is the pooled within-opponent variance (n - K
    degrees of freedom); the between-seed part is their difference truncated at zero, and the degrees of
    freedom of the resulting estimate come from Satterthwaite's formula (n - K when truncated). Unlike
    `compare_to_random`, the strategy's own seed variance is never observed here (random models are not
    judged against each other), so it is assumed equal to the random models' (the null: one more seed).

    Simulated at the one-sided 5 % level (wins drawn with logit = level difference + N(0, 1) instruction
    noise, K = 3 or 5, 50-800 instructions, 1,500-2,000 runs): false positives 0.03-0.05 without seed
    variance and at most 0.095 with it (worst at a small between-seed spread, where the truncation bites);
    the naive binomial test reaches 0.39 (800 instructions, K = 3, logit sd 0.5).

    Args:
        preferences: per instruction, the preference for the strategy's answer in [0, 1] (1 = it wins,
            0.5 = tie); NaN (unparsed judgement) is dropped.
        opponents: per instruction, the random seed whose model answered it (>= 2 distinct seeds).
        level: two-sided confidence level.

    Returns:
        the keys of `compare_to_random` (delta on the preference scale) with `n_seeds` = distinct opponents.

    >>> r = compare_head_to_head([1, 0, 1, 1, 0, 1, 1, 1, 0, 0.5], [0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    >>> round(r["delta"], 3), r["n_items"], r["n_seeds"], r["reference"], round(r["p_value"], 3)
    (0.15, 10, 3, 'items', 0.203)
    """
    p = np.asarray(preferences, dtype=float)
    opp = np.asarray(opponents)
    if p.ndim != 1 or opp.shape != p.shape:
        raise ValueError(f"preferences and opponents must be 1-D of the same length; got {p.shape} and {opp.shape}")
    keep = np.isfinite(p)
    p, opp = p[keep], opp[keep]
    if len(p) and (p.min() < 0 or p.max() > 1):
        raise ValueError("preferences must lie in [0, 1]")
    labels, code = np.unique(opp, return_inverse=True)
    k, n = len(labels), len(p)
    if k < 2:
        raise ValueError(f"compare_head_to_head needs judgements against at least 2 random seeds, got {k}")
    if n <= k:
        raise ValueError(f"{n} judged instructions against {k} random seeds: too few to estimate the noise")
    counts = np.bincount(code, minlength=k).astype(float)
    rates = np.bincount(code, weights=p, minlength=k) / counts
    within = float(((p - rates[code]) ** 2).sum() / (n - k))
    weights = counts / n
    a = 1 + float((weights**2).sum())
    spread = float(rates.var(ddof=1))
    between = spread - within * float(np.mean(1 / counts))
    delta = float(p.mean() - 0.5)
    if between > 0:
        c = a * float(np.mean(1 / counts)) - 1 / n
        var = a * between + within / n
        df = var**2 / ((a * spread) ** 2 / (k - 1) + (c * within) ** 2 / (n - k))
        reference = "seeds"
    else:
        var, df, reference = within / n, n - k, "items"
    out: dict[str, Any] = _interval(delta, var, df, level)
    out.update(between_seed_var=max(0.0, between), item_var=within / n, n_items=n, n_seeds=k, reference=reference)
    return out


def compare_items_only(
    strategy: Sequence[float] | np.ndarray,
    randoms: Sequence[Sequence[float]] | np.ndarray,
    *,
    level: float = 0.95,
) -> dict[str, Any]:
    """The naive paired t-test over items of strategy - mean(randoms): NOT calibrated for seed variance.

    Shown for contrast (and in the tests): it treats the models as fixed, so it answers "is this model
    better than those K models on the population of items", not "is this strategy better than random".

    >>> r = compare_items_only([1, 1, 1, 0], [[1, 0, 1, 0], [0, 1, 1, 0]])
    >>> round(r["delta"], 3), r["df"], round(r["p_value"], 3)
    (0.25, 3.0, 0.091)
    """
    s = np.asarray(strategy, dtype=float)
    r = np.asarray(randoms, dtype=float)
    if s.ndim != 1 or r.ndim != 2 or r.shape[1] != s.shape[0]:
        raise ValueError(f"strategy must have shape [items] and randoms [seeds, items]; got {s.shape} and {r.shape}")
    keep = np.isfinite(s) & np.isfinite(r).all(axis=0)
    diff = s[keep] - r[:, keep].mean(axis=0)
    n = len(diff)
    if n < 2:
        raise ValueError("compare_items_only needs at least 2 items")
    out: dict[str, Any] = _interval(float(diff.mean()), float(diff.var(ddof=1) / n), n - 1, level)
    out.update(n_items=n, n_seeds=r.shape[0], reference="items")
    return out


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control); NaN entries stay NaN, uncounted.

    >>> holm([0.01, 0.04, 0.03, float("nan")]).round(3).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho (average ranks for ties) per row of two [B, n] arrays; NaN where a row is constant."""
    rx = sps.rankdata(x, axis=1)
    ry = sps.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(axis=1) / den, np.nan)


def _kendall_rows(x: np.ndarray, y: np.ndarray, chunk_cells: int = 4_000_000) -> np.ndarray:
    """Kendall's tau-b per row of two [B, n] arrays (scipy's default variant); NaN where a row is constant."""
    b, n = x.shape
    out = np.empty(b)
    if n * n > chunk_cells:  # pairwise sign matrices would not fit: scipy's O(n log n) per row
        for row in range(b):
            out[row] = sps.kendalltau(x[row], y[row]).statistic
        return out
    step = max(1, chunk_cells // max(1, n * n))
    for start in range(0, b, step):
        xs, ys = x[start : start + step], y[start : start + step]
        sx = np.sign(xs[:, :, None] - xs[:, None, :])
        sy = np.sign(ys[:, :, None] - ys[:, None, :])
        den = np.sqrt((sx**2).sum(axis=(1, 2)) * (sy**2).sum(axis=(1, 2)))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = np.where(den > 0, (sx * sy).sum(axis=(1, 2)) / den, np.nan)
    return out


def rank_correlation(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Spearman's rho and Kendall's tau-b of paired values, with percentile bootstrap intervals over pairs.

    Pairs with a NaN are dropped. Bootstrap resamples whose values are constant are skipped; an interval
    is NaN when fewer than half of the resamples give a correlation.

    >>> r = rank_correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], n_boot=200, seed=0)
    >>> r["spearman"], r["kendall"], r["n"]
    (0.8, 0.6, 5)
    >>> r["spearman_low"] <= r["spearman"] <= r["spearman_high"]
    True
    """
    xv = np.asarray(x, dtype=float)
    yv = np.asarray(y, dtype=float)
    if xv.shape != yv.shape or xv.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length; got {xv.shape} and {yv.shape}")
    keep = np.isfinite(xv) & np.isfinite(yv)
    xv, yv = xv[keep], yv[keep]
    n = len(xv)
    out = {"n": n}
    nan = float("nan")
    for name in ("spearman", "kendall"):
        out.update({name: nan, f"{name}_low": nan, f"{name}_high": nan})
    if n < 2:
        return out
    out["spearman"] = float(_spearman_rows(xv[None], yv[None])[0])
    out["kendall"] = float(_kendall_rows(xv[None], yv[None])[0])
    if n_boot <= 0 or n < 3:
        return out
    idx = np.random.default_rng(seed).integers(n, size=(n_boot, n))
    tails = [100 * (0.5 - level / 2), 100 * (0.5 + level / 2)]
    for name, fn in (("spearman", _spearman_rows), ("kendall", _kendall_rows)):
        boot = fn(xv[idx], yv[idx])
        boot = boot[np.isfinite(boot)]
        if len(boot) >= n_boot / 2:
            low, high = np.percentile(boot, tails)
            out[f"{name}_low"], out[f"{name}_high"] = float(low), float(high)
    return out
