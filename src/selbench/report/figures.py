"""The report's plots as inline SVG (matplotlib, no pyplot and no global backend: a `Figure` per plot).

The SVG keeps its text as text (`svg.fonttype: none`: small, selectable, drawn in the page's own sans-serif
font, so no font file is embedded or fetched), loses its XML prolog and metadata (the page is one HTML
document), and gets ids unique to the figure (several SVGs share one page's id space). Figures are drawn
narrow and tall so they read on a phone. Scores are plotted in percent whatever the metric's unit
(`selbench.report.format.metric_is_fraction`).

Each function takes the rows of one `selbench.analysis` view for one panel group and returns SVG markup.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from selbench.report.format import metric_is_fraction

WIDTH = 4.6  # inches; with 11-12 pt text this stays legible scaled to a 390 px phone screen
_RC = {"svg.fonttype": "none", "svg.hashsalt": "selbench", "font.size": 12, "font.family": "sans-serif",
       "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 12, "axes.titleweight": "bold",
       "axes.labelsize": 12, "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 11,
       "legend.frameon": False}
FIXED_COLORS = {"random": "#7f7f7f", "strict-random": "#4d4d4d", "full": "#111111", "base": "#9467bd"}
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
            "#393b79", "#ad494a"]
_ids = itertools.count(1)


def colors(strategies: Sequence[str]) -> dict[str, str]:
    """One colour per strategy, the same in every figure of a report (fixed ones for the baselines).

    >>> colors(["longest", "random", "cherry"])
    {'cherry': '#1f77b4', 'longest': '#ff7f0e', 'random': '#7f7f7f'}
    """
    names = sorted(set(map(str, strategies)))
    others = iter(_PALETTE * (1 + len(names) // len(_PALETTE)))
    return {n: FIXED_COLORS[n] if n in FIXED_COLORS else next(others) for n in names}


def to_svg(fig, label: str) -> str:
    """Serialize `fig` to SVG markup that can sit inline in an HTML page (see the module docstring)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    prefix = f"f{next(_ids)}-"
    text = re.sub(r'(\bid="|href="#|url\(#)([^")]+)', lambda m: m.group(1) + prefix + m.group(2), text)
    title = label.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    text = re.sub(r'<svg([^>]*?)\swidth="[^"]*"\s+height="[^"]*"',
                  lambda m: f'<svg{m.group(1)} class="plot" role="img" aria-label="{title}"', text, count=1)
    return re.sub(r"(<svg[^>]*>)", lambda m: f"{m.group(1)}<title>{title}</title>", text, count=1)


def _figure(height: float, nrows: int = 1, ncols: int = 1, **kw):
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDTH, max(1.6, height)), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _pct(values, metric: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr * 100 if metric_is_fraction(metric) else arr


def vs_random(panels: list[tuple[str, pd.DataFrame]], metric: str, base: float | None, label: str) -> str:
    """Figure 6: each strategy's score against the random seeds' mean ± sd and their worst seed.

    Args:
        panels: (title, rows of `selbench.analysis.views.vs_random`) per budget/setup.
        metric: the plotted metric (for its unit).
        base: the base model's score (drawn as a dotted line), if evaluated.
    """
    import matplotlib

    with matplotlib.rc_context(_RC):
        heights = [max(1, len(rows)) for _, rows in panels]
        fig, axes = _figure(0.9 + 0.32 * sum(heights) + 0.45 * len(panels), len(panels), 1, sharex=True,
                            gridspec_kw={"height_ratios": heights})
        palette = colors([s for _, rows in panels for s in rows["strategy"]])
        for ax, (title, rows) in zip(axes[:, 0], panels, strict=True):
            rows = rows.sort_values("strategy")
            y = np.arange(len(rows))
            first = rows.iloc[0] if len(rows) else None
            if first is not None and np.isfinite(first["random_mean"]):
                mean, sd = _pct([first["random_mean"], first["random_sd"]], metric)
                if np.isfinite(sd):
                    ax.axvspan(mean - sd, mean + sd, color="#dddddd", label="random mean ± sd")
                ax.axvline(mean, color="#7f7f7f", lw=1.5, label="random mean")
                ax.axvline(_pct([first["random_min"]], metric)[0], color="#c44e52", lw=1.2, ls="--",
                           label="worst random seed")
            if base is not None and np.isfinite(base):
                ax.axvline(_pct([base], metric)[0], color=FIXED_COLORS["base"], lw=1.2, ls=":", label="base model")
            ax.scatter(_pct(rows["value"], metric), y, s=42, zorder=3,
                       c=[palette[s] for s in rows["strategy"]])
            ax.set_yticks(y, [str(s) for s in rows["strategy"]])
            ax.set_ylim(-0.7, len(rows) - 0.3)
            ax.set_title(title, loc="left")
            ax.grid(axis="x", color="#eeeeee")
        axes[-1, 0].set_xlabel(f"{metric} (%)")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=2)
    return to_svg(fig, label)


def bars(panels: list[tuple[str, list[str], Sequence[float]]], xlabel: str, label: str,
         palette: dict[str, str] | None = None, strategies: list[list[str]] | None = None) -> str:
    """Horizontal bars from 0 (e.g. Figure 2's mean-adjusted win rates, or regret), one panel per group."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        heights = [max(1, len(names)) for _, names, _ in panels]
        fig, axes = _figure(0.7 + 0.32 * sum(heights) + 0.45 * len(panels), len(panels), 1, sharex=True,
                            gridspec_kw={"height_ratios": heights})
        for i, (ax, (title, names, values)) in enumerate(zip(axes[:, 0], panels, strict=True)):
            y = np.arange(len(names))
            keys = strategies[i] if strategies else names
            c = [(palette or {}).get(k, "#1f77b4") for k in keys]
            ax.barh(y, np.asarray(values, dtype=float), color=c, height=0.6)
            ax.axvline(0, color="#333333", lw=1)
            ax.set_yticks(y, names)
            ax.set_ylim(-0.7, len(names) - 0.3)
            ax.set_title(title, loc="left")
            ax.grid(axis="x", color="#eeeeee")
        axes[-1, 0].set_xlabel(xlabel)
    return to_svg(fig, label)


def budget_trends(rows: pd.DataFrame, metric: str, label: str) -> str:
    """Each strategy's score across budgets; random as its mean ± sd band; full as a dashed line."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, axes = _figure(3.4)
        ax = axes[0, 0]
        palette = colors(rows["strategy"])
        budgets = sorted(rows["budget"].unique())
        for strategy, part in rows.sort_values("budget").groupby("strategy", sort=True):
            x, v = part["budget"].to_numpy(float), _pct(part["value"], metric)
            if strategy == "random":
                sd = _pct(part["sd"].fillna(0), metric)
                ax.fill_between(x, v - sd, v + sd, color="#dddddd", label="random ± sd")
            ax.plot(x, v, marker="o", color=palette[strategy], label=str(strategy),
                    lw=2 if strategy == "random" else 1.5)
        full = rows["full_value"].dropna()
        if len(full):
            ax.axhline(_pct([full.iloc[0]], metric)[0], color=FIXED_COLORS["full"], ls="--", lw=1, label="full data")
        if len(budgets) > 1 and budgets[-1] / max(budgets[0], 1) >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [f"{int(b):,}" for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel("budget (examples)")
        ax.set_ylabel(f"{metric} (%)")
        ax.grid(color="#eeeeee")
        fig.legend(loc="outside lower center", ncols=3)
    return to_svg(fig, label)


def heatmap(names: list[str], matrix: np.ndarray, label: str, *, vmin: float, vmax: float, cmap: str,
            fmt: str = "{:.2f}", notes: np.ndarray | None = None) -> str:
    """A square annotated matrix (benchmark correlations, selection overlap)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        side = min(WIDTH, 1.6 + 0.55 * len(names))
        fig, axes = _figure(side)
        ax = axes[0, 0]
        image = ax.imshow(np.asarray(matrix, dtype=float), vmin=vmin, vmax=vmax, cmap=cmap)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        for (i, j), value in np.ndenumerate(np.asarray(matrix, dtype=float)):
            if np.isfinite(value):
                text = fmt.format(value) + (f"\n{notes[i, j]}" if notes is not None and notes[i, j] else "")
                r, g, b, _ = image.cmap(image.norm(value))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(j, i, text, ha="center", va="center", fontsize=10, color="white" if dark else "black")
        ax.spines[:].set_visible(False)
        fig.colorbar(image, ax=ax, shrink=0.8)
    return to_svg(fig, label)


def scatter_panels(panels: list[tuple[str, pd.DataFrame]], x: str, y: str, xlabel: str, ylabel: str,
                   label: str, *, diagonal: bool = False, front: str | None = None, logx: bool = False,
                   annotate: str | None = None) -> str:
    """One scatter per panel, coloured by strategy: LoRA vs full (with the diagonal), cost vs score (with
    the Pareto front joined in cost order when `front` names the boolean column)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, axes = _figure(0.6 + 3.1 * len(panels), len(panels), 1)
        palette = colors([s for _, rows in panels for s in rows["strategy"]])
        for ax, (title, rows) in zip(axes[:, 0], panels, strict=True):
            for strategy, part in rows.groupby("strategy", sort=True):
                ax.scatter(part[x], part[y], s=40, color=palette[strategy], label=str(strategy), zorder=3)
                if annotate:
                    for _, row in part.iterrows():
                        ax.annotate(f"{row[annotate]:,}" if isinstance(row[annotate], (int, np.integer))
                                    else str(row[annotate]), (row[x], row[y]), fontsize=9,
                                    xytext=(4, 3), textcoords="offset points", color="#555555")
            if front is not None:
                on = rows[rows[front].astype(bool)].sort_values(x)
                if len(on) > 1:
                    ax.step(on[x], on[y], where="post", color="#333333", lw=1, ls="--", label="Pareto front")
            if diagonal and len(rows):
                lo = float(np.nanmin(rows[[x, y]].to_numpy(float)))
                hi = float(np.nanmax(rows[[x, y]].to_numpy(float)))
                ax.plot([lo, hi], [lo, hi], color="#999999", lw=1, ls=":")
            finite = rows[x].to_numpy(float)
            if logx and np.all(finite[np.isfinite(finite)] > 0) and np.isfinite(finite).sum() > 1:
                if np.nanmax(finite) / np.nanmin(finite) > 10:
                    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

                    ax.set_xscale("log")
                    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:g}"))
                    ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(title, loc="left")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(color="#eeeeee")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        seen = dict(zip(labels, handles, strict=True))
        for ax in axes[1:, 0]:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                seen.setdefault(lab, h)
        if seen:
            fig.legend(list(seen.values()), list(seen.keys()), loc="outside lower center", ncols=3)
    return to_svg(fig, label)
