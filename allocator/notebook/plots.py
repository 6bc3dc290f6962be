"""Small, light figures for the job notebooks and reports (no logic: data in, figure out).

Figures are kept small: 72 dpi, and shown in a notebook as 8-bit palette PNGs of at most
:data:`PALETTE_COLORS` colours (:func:`compact_png`) instead of matplotlib's 32-bit RGBA, which
makes a 20-year line chart about 3 times smaller with no visible difference. The archived
notebook holds each figure once, and the reports link the same bytes as a PNG file
(:mod:`.render`), so a trading day's three runs stay well under 250 KB.
"""

from __future__ import annotations

import base64
import io

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

FIGSIZE = (7.0, 2.8)
DPI = 72
#: Colours of a figure's palette: enough for antialiased lines and areas to look the same as RGBA.
PALETTE_COLORS = 64


def compact_png(fig: Figure, colors: int = PALETTE_COLORS) -> bytes | None:
    """``fig`` as an 8-bit palette PNG, cropped to its content like the notebook's inline figures.

    Parameters
    ----------
    fig
        The figure; one without axes (nothing drawn) gives None, as IPython's own formatter does.
    colors
        The palette's size (2..256), chosen by maximum coverage without dithering: on the job
        figures, 64 colours keep every pixel within 30 of 255 per channel of the RGBA rendering
        (median cut turns a thin green threshold line blue), at a third of its size.

    Returns
    -------
    bytes or None
        The PNG file's bytes.
    """
    from PIL import Image

    if not fig.axes:
        return None
    rgba = io.BytesIO()
    fig.savefig(rgba, format="png", dpi=fig.dpi, bbox_inches="tight", facecolor="white")
    image = Image.open(rgba).convert("RGB")
    palette = image.quantize(
        colors=colors, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE
    )
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _inline_png(fig: Figure) -> str | None:
    data = compact_png(fig)
    return None if data is None else base64.b64encode(data).decode("ascii")


def use_compact_png() -> bool:
    """Show figures in this IPython kernel as :func:`compact_png`; False outside IPython."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return False
    # Loading the inline backend registers IPython's own PNG formatter; load it first so it
    # does not replace this one at the notebook's first figure.
    plt.switch_backend(matplotlib.rcParams["backend"])
    formatters = shell.display_formatter.formatters
    for formatter in formatters.values():
        formatter.pop(Figure, None)
    formatters["image/png"].for_type(Figure, _inline_png)
    return True


def setup() -> None:
    """Compact defaults for every figure of a notebook, shown as palette PNGs."""
    use_compact_png()
    plt.rcParams.update(
        {
            "figure.figsize": FIGSIZE,
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 9,
            "legend.frameon": False,
        }
    )


def _figure(title: str):
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    ax.set_title(title, loc="left", fontsize=10)
    return fig, ax


def normalized_closes(closes: pd.DataFrame, title: str = "Closes, rebased to 100"):
    """Each symbol's closes divided by its first close in the window, × 100."""
    fig, ax = _figure(title)
    rebased = closes / closes.iloc[0] * 100.0
    for symbol in rebased.columns:
        ax.plot(pd.to_datetime(rebased.index), rebased[symbol], label=symbol, linewidth=1.2)
    ax.legend(loc="upper left", ncols=len(rebased.columns))
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def regime_and_risk(
    history: pd.DataFrame, bullish: float, bearish: float, title: str = "Regime and risk"
):
    """Regime (−1..+1, with its thresholds) above risk (0..100) for dated rows."""
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(FIGSIZE[0], FIGSIZE[1] * 1.4), dpi=DPI, sharex=True
    )
    dates = pd.to_datetime(history.index)
    top.plot(dates, history["regime"], color="tab:blue", linewidth=1.2)
    top.axhline(bullish, color="tab:green", linestyle="--", linewidth=0.8)
    top.axhline(bearish, color="tab:red", linestyle="--", linewidth=0.8)
    top.set_ylim(-1.05, 1.05)
    top.set_ylabel("regime")
    top.set_title(title, loc="left", fontsize=10)
    bottom.plot(dates, history["risk"], color="tab:orange", linewidth=1.2)
    bottom.set_ylim(0, 100)
    bottom.set_ylabel("risk")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def allocations(dollars: dict[str, float], title: str = "Allocations ($)"):
    """Bars of dollars per symbol (negative for sells)."""
    fig, ax = _figure(title)
    symbols = list(dollars)
    values = [dollars[s] for s in symbols]
    colors = ["tab:green" if v >= 0 else "tab:red" for v in values]
    ax.bar(symbols, values, color=colors)
    ax.axhline(0, color="black", linewidth=0.6)
    fig.tight_layout()
    return fig


def positions_value(frame: pd.DataFrame, title: str = "Positions at market value ($)"):
    """Bars of the market value of each position (columns: symbol, market_value)."""
    fig, ax = _figure(title)
    ax.bar(frame["symbol"], frame["market_value"], color="tab:blue")
    fig.tight_layout()
    return fig


def equity_curves(curves: pd.DataFrame, title: str = "Portfolio value ($)"):
    """One line per column (strategy and benchmarks), dated index."""
    fig, ax = _figure(title)
    dates = pd.to_datetime(curves.index)
    for name in curves.columns:
        ax.plot(dates, curves[name], label=name, linewidth=1.0)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def drawdown(series: pd.Series, title: str = "Drawdown of the time-weighted return"):
    fig, ax = _figure(title)
    dates = pd.to_datetime(series.index)
    ax.fill_between(dates, series.to_numpy() * 100.0, 0.0, color="tab:red", alpha=0.4)
    ax.set_ylabel("%")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def stacked_allocation(weights: pd.DataFrame, title: str = "Allocation over time (share of value)"):
    """Stacked areas of each holding's (and cash's) share of the portfolio value."""
    fig, ax = _figure(title)
    dates = pd.to_datetime(weights.index)
    ax.stackplot(
        dates, *[weights[c].to_numpy() for c in weights.columns], labels=list(weights.columns)
    )
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", ncols=len(weights.columns))
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def exposure_and_idle_cash(
    frame: pd.DataFrame, title: str = "Exposure (invested share) and idle cash ($)"
):
    """Exposure in % (left axis) and the cash held in dollars (right axis), dated index."""
    fig, ax = _figure(title)
    dates = pd.to_datetime(frame.index)
    ax.plot(dates, frame["exposure"].to_numpy() * 100.0, color="tab:blue", linewidth=1.0)
    ax.set_ylabel("exposure %", color="tab:blue")
    ax.set_ylim(0, 100)
    cash = ax.twinx()
    cash.plot(dates, frame["cash"].to_numpy(), color="tab:gray", linewidth=0.8)
    cash.set_ylabel("idle cash $", color="tab:gray")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def heatmap(table: pd.DataFrame, title: str, fmt: str = "{:.2f}"):
    """A table (rows x columns of one metric) as a heatmap with each value written in its cell."""
    fig, ax = _figure(title)
    values = table.to_numpy(dtype="float64")
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns])
    ax.set_yticks(range(len(table.index)), [str(i) for i in table.index])
    ax.set_xlabel(str(table.columns.name or ""))
    ax.set_ylabel(str(table.index.name or ""))
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, fmt.format(value), ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def score_distribution(scores: pd.Series, title: str = "Trade scores (-1..+1)"):
    """A histogram of the trades' scores."""
    fig, ax = _figure(title)
    ax.hist(scores.to_numpy(dtype="float64"), bins=20, range=(-1.0, 1.0), color="tab:blue")
    ax.set_xlabel("score")
    fig.tight_layout()
    return fig


def by_condition(frame: pd.DataFrame, title: str = "Win rate and buy share by market condition"):
    """Bars of the win rate and the share of buying days in each market condition."""
    fig, ax = _figure(title)
    columns = [c for c in ("win_rate", "buy_share") if c in frame.columns]
    if len(frame) and columns:
        frame[columns].astype("float64").plot.bar(ax=ax, rot=0)
        ax.set_ylim(0, 1)
    fig.tight_layout()
    return fig


def candidate_objectives(table: pd.DataFrame, title: str = "Replay objective of each candidate"):
    """Horizontal bars of each candidate's objective; the current config in grey."""
    fig, ax = _figure(title)
    if len(table):
        colors = ["tab:gray"] + ["tab:blue"] * (len(table) - 1)
        ax.barh(table["candidate"], table["objective"].astype("float64"), color=colors)
        ax.invert_yaxis()
    fig.tight_layout()
    return fig
