"""The report's figures as PNG bytes: matplotlib's object API on the Agg canvas (no pyplot, no
display, no global state), styled through an rc context."""
from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

DPI = 110
INK, GRID, MUTED = "#1f2933", "#d9dee3", "#7b8794"


STYLE: Any = {  # rcParams of every figure (Any: matplotlib types the keys as a Literal of every rc name)
    "font.size": 9, "axes.edgecolor": GRID, "axes.labelcolor": INK, "xtick.color": INK, "ytick.color": INK,
    "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 10, "axes.titleweight": "bold",
    "figure.facecolor": "white"}


def _styled(plot: Callable[..., bytes | None]) -> Callable[..., bytes | None]:
    """Build and save a figure under STYLE (the caller's rcParams are left as they were)."""
    @functools.wraps(plot)
    def styled(*args: Any, **kwargs: Any) -> bytes | None:
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return plot(*args, **kwargs)

    return styled


def _figure(figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A figure on an Agg canvas, and its one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def colors(keys: list[str]) -> dict[str, Any]:
    """One stable colour per method (or method and source)."""
    palette = ["#3b6ea5", "#e07a2f", "#4c9a5b", "#b04a5a", "#7a5ea8", "#8c6d46", "#c45fa0", "#6b7b8c", "#a3a33a"]
    return {k: palette[i % len(palette)] for i, k in enumerate(keys)}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _label(method: str, source: str, split: bool) -> str:
    return f"{method}\n({source})" if split else method


@_styled
def success_bars(table: pd.DataFrame, compare_paper: bool = False) -> bytes | None:
    """Success rate per method (and source) with its Wilson 95 % interval; the paper's value as a ◆."""
    t = table[table["judged"] > 0]
    if t.empty:
        return None
    split = t["outcome_source"].nunique() > 1
    labels = [_label(m, s, split) for m, s in zip(t["method"], t["outcome_source"], strict=True)]
    col = colors(list(dict.fromkeys(table["method"])))
    fig, ax = _figure((max(4.0, 1.3 * len(t) + 1.5), 3.2))
    x = np.arange(len(t))
    pct = t["success_pct"].to_numpy(float)
    err = np.vstack([pct - t["success_ci_low_pct"].to_numpy(float), t["success_ci_high_pct"].to_numpy(float) - pct])
    ax.bar(x, pct, width=0.6, color=[col[m] for m in t["method"]], alpha=0.85, label="this run (Wilson 95 % CI)")
    ax.errorbar(x, pct, yerr=err, fmt="none", ecolor=INK, capsize=5, lw=1.2)
    if compare_paper and "paper_success_pct" in t:
        paper = t["paper_success_pct"].to_numpy(float)
        ok = ~np.isnan(paper)
        if ok.any():
            ax.scatter(x[ok], paper[ok], marker="D", color=INK, zorder=5, label="paper, real robot (IROS 2019)")
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=8)
    labels = [f"{lab}\n{p:.1f} % ({k}/{n})"
              for lab, p, k, n in zip(labels, pct, t["successes"], t["judged"], strict=True)]
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success % (Wilson 95 % CI)")
    ax.grid(axis="y", color=GRID, lw=0.6)
    ax.set_axisbelow(True)
    return _png(fig)


def _groups(values: dict[tuple[str, str], dict[str, np.ndarray]], name: str, methods: list[str]):
    split = len({s for (_m, s) in values}) > 1
    keys = sorted((k for k, v in values.items() if len(v[name])),
                  key=lambda k: (methods.index(k[0]) if k[0] in methods else len(methods), k[1]))
    return [(k, _label(k[0], k[1], split).replace("\n", " "), values[k][name]) for k in keys]


@_styled
def q_distributions(values: dict, methods: list[str], thresholds: list[float]) -> bytes | None:
    """Histogram of the robustness q per method (outlines on shared bins), with the robust threshold."""
    groups = _groups(values, "q", methods)
    if not groups:
        return None
    col = colors(methods)
    fig, ax = _figure((7.5, 2.8))
    bins = np.linspace(0, 1, 21)
    for (method, _s), label, q in groups:
        counts, _ = np.histogram(q, bins=bins)
        c = col.get(method, MUTED)
        ax.stairs(counts, bins, fill=True, alpha=0.25, color=c)
        ax.stairs(counts, bins, lw=1.4, color=c, label=f"{label} (n = {len(q)})")
    for th in thresholds:
        ax.axvline(th, color=INK, ls="--", lw=1)
    ax.set_xlabel("q (GQ-CNN robustness)" + ("; dashed: robust threshold" if thresholds else ""))
    ax.set_ylabel("final attempts")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", color=GRID, lw=0.6)
    return _png(fig)


@_styled
def detection_times(values: dict, methods: list[str]) -> bytes | None:
    """Detection time (capture → grasp) per method on shared logarithmic bins."""
    groups = _groups(values, "detect_s", methods)
    groups = [(k, lab, d[d > 0]) for k, lab, d in groups if (d > 0).any()]
    if not groups:
        return None
    col = colors(methods)
    lo = min(float(d.min()) for _k, _l, d in groups)
    hi = max(float(d.max()) for _k, _l, d in groups)
    bins = np.logspace(math.log10(lo) - 0.05, math.log10(hi) + 0.05, 40)
    fig, ax = _figure((7.5, 2.8))
    for (method, _s), label, d in groups:
        counts, _ = np.histogram(d, bins=bins)
        ax.stairs(counts, bins, fill=True, alpha=0.35, color=col.get(method, MUTED))
        ax.stairs(counts, bins, lw=1.4, color=col.get(method, MUTED),
                  label=f"{label}: median {np.median(d) * 1000:.0f} ms")
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))  # 0.01, not mathtext 10^-2 (slow)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("detection time (s, log scale): image capture → grasp, inpainting excluded")
    ax.set_ylabel("final attempts")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="y", color=GRID, lw=0.6)
    return _png(fig)


@_styled
def heat_map(by_object: pd.DataFrame) -> bytes | None:
    """Success % per method (rows) and object (columns), each cell labelled successes/judged."""
    b = by_object[by_object["judged"] > 0]
    if b.empty:
        return None
    import matplotlib

    objects = list(dict.fromkeys(by_object["object_id"]))
    split = b["outcome_source"].nunique() > 1
    keys = list(dict.fromkeys(zip(b["method"], b["outcome_source"], strict=True)))
    grid = np.full((len(keys), len(objects)), np.nan)
    text = [["–"] * len(objects) for _ in keys]
    for _, r in b.iterrows():
        i, j = keys.index((r["method"], r["outcome_source"])), objects.index(r["object_id"])
        grid[i, j] = r["success_pct"]
        text[i][j] = f"{r['successes']}/{r['judged']}"
    fig, ax = _figure((max(5.0, 0.72 * len(objects) + 2.2), 0.55 * len(keys) + 1.4))
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#eef0f2")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for i in range(len(keys)):
        for j in range(len(objects)):
            ax.text(j, i, text[i][j], ha="center", va="center", fontsize=7.5, color=INK)
    ax.set_xticks(range(len(objects)), objects, rotation=35, ha="right")
    ax.set_yticks(range(len(keys)), [f"{m} ({s})" if split else m for m, s in keys])
    ax.spines[:].set_visible(False)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="success %")
    return _png(fig)


@_styled
def failure_causes(causes: list[dict], methods: list[str]) -> bytes | None:
    """Why attempts failed (final failures) or trials were aborted, per method: stacked counts."""
    if not causes:
        return None
    split = len({c["source"] for c in causes}) > 1
    rows = list(dict.fromkeys((c["method"], c["source"]) for c in sorted(
        causes, key=lambda c: (methods.index(c["method"]) if c["method"] in methods else len(methods), c["source"]))))
    cats = list(dict.fromkeys(f"{c['cause']}" if c["kind"] == "failed" else f"aborted: {c['cause']}"
                              for c in sorted(causes, key=lambda c: (c["kind"] != "failed", -c["n"]))))
    counts = np.zeros((len(rows), len(cats)))
    for c in causes:
        cat = c["cause"] if c["kind"] == "failed" else f"aborted: {c['cause']}"
        counts[rows.index((c["method"], c["source"])), cats.index(cat)] += c["n"]
    palette = ["#c0504d", "#e07a2f", "#e8b64c", "#8c6d46", "#7a5ea8", "#3b6ea5", "#6b7b8c", "#4c9a5b"]
    fig, ax = _figure((7.5, 0.5 * len(rows) + 1.3))
    left = np.zeros(len(rows))
    y = np.arange(len(rows))
    for j, cat in enumerate(cats):
        aborted = cat.startswith("aborted: ")
        ax.barh(y, counts[:, j], left=left, height=0.6, label=cat, color=palette[j % len(palette)],
                hatch="//" if aborted else None, edgecolor="white", lw=0.6)
        left += counts[:, j]
    ax.set_yticks(y, [f"{m} ({s})" if split else m for m, s in rows])
    ax.invert_yaxis()
    ax.set_xlabel("attempts (final failures; hatched: aborted trials, not counted as failures)")
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(axis="x", color=GRID, lw=0.6)
    ax.set_axisbelow(True)
    return _png(fig)
