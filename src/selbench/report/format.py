"""Numbers formatted for people: dollars, percentages, points, p-values, durations.

Every formatter takes a number (or None / NaN, shown as an en dash) and returns a short string; the report
keeps the raw numbers in its JSON, so rounding here never loses anything.

Metric conventions (`selbench.analysis.tables`): accuracies and pass rates are fractions in [0, 1], win
rates are percent (0-100). `metric_scale` says which, so a fraction 0.451 and a win rate 45.1 both read
"45.1%", and a difference of two fractions reads in percentage points.
"""

from __future__ import annotations

import math
from typing import Any

DASH = "–"
#: Metrics reported in percent (0-100) rather than as fractions.
PERCENT_METRICS = frozenset({"win_rate", "mean_adjusted_win_rate", "lc_win_rate", "length_controlled_winrate"})


def missing(value: Any) -> bool:
    """True for None, NaN, pandas' NA and the like.

    >>> missing(None), missing(float("nan")), missing(0.0)
    (True, True, False)
    """
    if value is None:
        return True
    try:
        return bool(value != value) or (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):  # pandas.NA refuses bool()
        return True


def usd(value: Any, *, sign: bool = False) -> str:
    """Dollars: cents for ordinary amounts, two significant digits below a cent, thousands separated; below a
    hundredth of a cent (timer noise in a difference of two costs) "≈$0.00".

    >>> usd(0.1929), usd(1234.5), usd(0.0031), usd(0), usd(None)
    ('$0.19', '$1,234.50', '$0.0031', '$0.00', '–')
    >>> usd(0.05, sign=True), usd(-0.05, sign=True), usd(-2.5), usd(-0.0000044, sign=True)
    ('+$0.05', '−$0.05', '−$2.50', '≈$0.00')
    """
    if missing(value):
        return DASH
    value = float(value)
    if 0 < abs(value) < 1e-4:
        return "≈$0.00"
    mark = "−" if value < 0 else ("+" if sign and value > 0 else "")
    amount = abs(value)
    if amount == 0:
        text = "0.00"
    elif amount < 0.01:
        digits = max(2, 1 - math.floor(math.log10(amount)))
        text = f"{amount:.{digits}f}"
    else:
        text = f"{amount:,.2f}"
    return f"{mark}${text}"


def percent(value: Any, *, fraction: bool = True, decimals: int = 1) -> str:
    """A share as a percentage; `fraction=False` when `value` is already in percent.

    >>> percent(0.4512), percent(45.12, fraction=False), percent(1.0), percent(None)
    ('45.1%', '45.1%', '100.0%', '–')
    """
    if missing(value):
        return DASH
    return f"{float(value) * (100 if fraction else 1):.{decimals}f}%"


def points(value: Any, *, fraction: bool = True, decimals: int = 1) -> str:
    """A difference of two percentages, in signed percentage points.

    >>> points(0.045), points(-3.0, fraction=False), points(0.0), points(None)
    ('+4.5 pts', '−3.0 pts', '0.0 pts', '–')
    """
    if missing(value):
        return DASH
    v = float(value) * (100 if fraction else 1)
    text = f"{abs(v):.{decimals}f}"
    if float(text) == 0:
        return f"{text} pts"
    return f"{'+' if v > 0 else '−'}{text} pts"


def p_value(value: Any) -> str:
    """p-values the way papers print them: three decimals below 0.1, two above, "<0.001" at the bottom.

    >>> p_value(0.0312), p_value(0.00004), p_value(0.25), p_value(1.0), p_value(None)
    ('0.031', '<0.001', '0.25', '1.00', '–')
    """
    if missing(value):
        return DASH
    p = float(value)
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def seconds(value: Any) -> str:
    """A duration: seconds, minutes and seconds, or hours.

    >>> seconds(3.24), seconds(0.004), seconds(252), seconds(5400), seconds(None)
    ('3.2 s', '4 ms', '4 min 12 s', '1.5 h', '–')
    """
    if missing(value):
        return DASH
    s = float(value)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        minutes, rest = divmod(round(s), 60)
        return f"{minutes} min {rest} s"
    return f"{s / 3600:.1f} h"


def number(value: Any, decimals: int = 2) -> str:
    """A plain number: integers with thousands separators, others with `decimals` decimals.

    >>> number(16578), number(0.51234), number(-0.2, 1), number(None)
    ('16,578', '0.51', '−0.2', '–')
    """
    if missing(value):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    v = float(value)
    text = f"{abs(v):,.0f}" if v.is_integer() else f"{abs(v):,.{decimals}f}"
    return ("−" if v < 0 and text.strip("0.,") else "") + text


def metric_is_fraction(metric: str) -> bool:
    """Whether a metric is a fraction in [0, 1] (accuracies, pass rates) rather than a percentage.

    >>> metric_is_fraction("prompt_strict"), metric_is_fraction("win_rate")
    (True, False)
    """
    return metric not in PERCENT_METRICS


def score(value: Any, metric: str) -> str:
    """A benchmark score in percent, whatever the metric's own unit.

    >>> score(0.5, "accuracy"), score(56.0, "win_rate")
    ('50.0%', '56.0%')
    """
    return percent(value, fraction=metric_is_fraction(metric))


def score_delta(value: Any, metric: str) -> str:
    """A difference of two scores of `metric`, in percentage points.

    >>> score_delta(0.05, "accuracy"), score_delta(-6.0, "mean_adjusted_win_rate")
    ('+5.0 pts', '−6.0 pts')
    """
    return points(value, fraction=metric_is_fraction(metric))


def short_hash(value: Any, n: int = 12) -> str:
    """The first `n` hex digits of a sha256 (the JSON report keeps it whole).

    >>> short_hash("ab" * 32)
    'abababababab'
    """
    return DASH if missing(value) or not str(value) else str(value)[:n]


def yes_no(value: Any) -> str:
    """Booleans as words; unknown as a dash.

    >>> yes_no(True), yes_no(False), yes_no(None)
    ('yes', 'no', '–')
    """
    return DASH if missing(value) else ("yes" if bool(value) else "no")
