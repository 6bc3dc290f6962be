"""Legible figures for the job notebooks and reports (no logic: data in, figure out).

Every figure is drawn for the report's full width at 1280 px: :data:`WIDTH` inches (1,060 CSS
pixels at :data:`CSS_DPI`), text at 10-12.5 pt (13-17 px, never under 11 px), money on a dollar
axis (``$1.2M``), shares and returns on a percent axis, dates as short labels. It is stored as
an SVG (:func:`compact_svg`: text as text, sharp at any zoom; a daily job's chart of a few
months takes 15-25 KB), or, when it draws thousands of points (a backtest's curves,
``fig.allocator_png``), as an 8-bit palette PNG (:func:`compact_png`: 2× by default, about a
third of matplotlib's RGBA bytes with no visible difference). The archived notebook holds each
figure once, and the reports link the same bytes as a file (:mod:`.render`).

The backtest's tearsheet figures are in :mod:`.performance_plots`; this module holds the
setup, the axes and the daily jobs' figures. A figure function given nothing to draw returns
None and draws nothing (no empty axes in a report).
"""

from __future__ import annotations

import base64
import io
import re

import matplotlib
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from allocator.notebook.formats import compact_dollars, decimal, percent

#: Width of every figure in inches, and the CSS pixels per inch it is shown at (1,060 px).
WIDTH = 10.6
CSS_DPI = 100
#: The PNG's pixels per CSS pixel.
SCALE = 2
HEIGHT = 3.6
#: Colours of a figure's palette: enough for antialiased lines and areas to look the same as RGBA.
PALETTE_COLORS = 64
#: One colour per run, the same in every figure: the strategy, then its benchmarks.
RUN_COLORS = {
    "strategy": "#1f4e99",
    "all SPY": "#d95f02",
    "equal weight": "#7570b3",
    "cash": "#999999",
    "SPY + cash at exposure": "#e6ab02",
    "equal weight + cash at exposure": "#66a61e",
}


def compact_png(fig: Figure, colors: int | None = None) -> bytes | None:
    """``fig`` as a 2× 8-bit palette PNG (:data:`SCALE`), at its own size (no cropping).

    A figure may ask for another scale and palette with ``fig.allocator_png = (scale,
    colors)`` (a 20-year backtest's figures do: see :mod:`.performance_plots`).

    Parameters
    ----------
    fig
        The figure; one without axes (nothing drawn) gives None, as IPython's own formatter does.
    colors
        The palette's size (2..256; default the figure's, else :data:`PALETTE_COLORS`), chosen
        by maximum coverage without dithering: on the job figures, 64 colours keep every pixel
        within 32 of 255 per channel of the RGBA rendering (median cut turns a thin green
        threshold line blue), at a third of its size.

    Returns
    -------
    bytes or None
        The PNG file's bytes.
    """
    from PIL import Image

    if not fig.axes:
        return None
    scale, own_colors = getattr(fig, "allocator_png", (SCALE, PALETTE_COLORS))
    colors = colors or own_colors
    rgba = io.BytesIO()
    fig.savefig(rgba, format="png", dpi=fig.dpi * scale, facecolor="white")
    image = Image.open(rgba).convert("RGB")
    palette = image.quantize(
        colors=colors, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE
    )
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


#: The SVG backend's settings: text stays text (the browser draws it, sharp at any size) and the
#: ids are the same on every run.
SVG_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "allocator"}
_FONTS = re.compile(r"font-family: [^;\"]*")
_GEOMETRY = re.compile(r'\b(d|x|y|transform|points)="([^"]*)"')
_DECIMALS = re.compile(r"(\d\.\d\d)\d+")


def _rounded(match: re.Match) -> str:
    """A geometry attribute on one line, its numbers cut to two decimals (text is untouched)."""
    numbers = " ".join(_DECIMALS.sub(r"\1", match.group(2)).split())  # a path on one line
    return f'{match.group(1)}="{numbers}"'


def compact_svg(fig: Figure) -> str | None:
    """``fig`` as a small SVG: text as text, coordinates to 1/100 of a point, no date, one short
    font list; None for a figure without axes."""
    if not fig.axes:
        return None
    out = io.StringIO()
    with plt.rc_context(SVG_STYLE):
        fig.savefig(out, format="svg", facecolor="white", metadata={"Date": None})
    text = _GEOMETRY.sub(_rounded, out.getvalue())
    return _FONTS.sub("font-family: 'DejaVu Sans', Arial, Helvetica, sans-serif", text)


def wants_png(fig: Figure) -> bool:
    """A figure of many points is stored as a PNG (``fig.allocator_png``), others as SVG."""
    return hasattr(fig, "allocator_png")


def _inline_png(fig: Figure) -> tuple[str, dict] | None:
    data = compact_png(fig) if wants_png(fig) else None
    if data is None:
        return None
    width, height = fig.get_size_inches() * fig.dpi
    size = {"width": round(width), "height": round(height)}
    return base64.b64encode(data).decode("ascii"), size


def _inline_svg(fig: Figure) -> str | None:
    return None if wants_png(fig) else compact_svg(fig)


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
    formatters["image/svg+xml"].for_type(Figure, _inline_svg)
    return True


STYLE = {
    "figure.figsize": (WIDTH, HEIGHT),
    "figure.dpi": CSS_DPI,
    "savefig.dpi": CSS_DPI,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10.5,
    "axes.titlesize": 12.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10.5,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "lines.linewidth": 1.4,
}


def setup() -> None:
    """Legible defaults for every figure of a notebook (:data:`STYLE`), shown as 2× PNGs."""
    use_compact_png()
    plt.rcParams.update(STYLE)


def figure(title: str, rows: int = 1, height: float = HEIGHT, **kw):
    """A full-width figure of ``rows`` axes sharing their x axis, titled; (fig, axes)."""
    fig, axes = plt.subplots(rows, 1, figsize=(WIDTH, height), dpi=CSS_DPI, sharex=True, **kw)
    first = axes[0] if rows > 1 else axes
    first.set_title(title)
    return fig, axes


def dollar_axis(ax, axis: str = "y") -> None:
    """Ticks in dollars, ``$250k``, ``$1.5M``."""
    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(lambda v, _: compact_dollars(v)))


def percent_axis(ax, axis: str = "y", digits: int = 0, scale: float = 1.0) -> None:
    """Ticks of decimals (``0.25``) as percentages (``25 %``); ``scale`` 0.01 for values
    already in percent."""
    formatter = FuncFormatter(lambda v, _: percent(v * scale, digits))
    getattr(ax, f"{axis}axis").set_major_formatter(formatter)


def date_axis(ax) -> None:
    """Dates as short, non-overlapping labels (years on long spans, months on short ones)."""
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _dates(index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(index))


def normalized_closes(closes: pd.DataFrame, title: str = "Closes, rebased to 100"):
    """Each symbol's closes divided by its first close in the window, × 100."""
    if closes.empty:
        return None
    fig, ax = figure(title)
    rebased = closes / closes.iloc[0] * 100.0
    for symbol in rebased.columns:
        ax.plot(_dates(rebased.index), rebased[symbol], label=symbol)
    ax.legend(loc="upper left", ncols=len(rebased.columns))
    date_axis(ax)
    return fig


def regime_and_risk(
    history: pd.DataFrame, bullish: float, bearish: float, title: str = "Regime and risk"
):
    """Regime (−1..+1, with its thresholds) above risk (0..100) for dated rows."""
    if history.empty:
        return None
    fig, (top, bottom) = figure(title, rows=2, height=HEIGHT * 1.35)
    dates = _dates(history.index)
    top.plot(dates, history["regime"], color="#1f4e99", linewidth=1.0)
    top.axhline(bullish, color="#1e7b34", linestyle="--", linewidth=1.0, label="bullish above")
    top.axhline(bearish, color="#c0392b", linestyle="--", linewidth=1.0, label="bearish below")
    top.set_ylim(-1.05, 1.05)
    top.set_ylabel("regime (−1..+1)")
    top.legend(loc="lower left", ncols=2)
    bottom.plot(dates, history["risk"], color="#d95f02", linewidth=1.0)
    bottom.set_ylim(0, 100)
    bottom.set_ylabel("risk (0..100)")
    date_axis(bottom)
    return fig


def heatmap(table: pd.DataFrame, title: str, show=None, *, scale: str = "RdYlGn"):
    """A table (rows x columns of one metric) as a heatmap, each value written in its cell with
    ``show`` (default: two decimals); None when the table is empty."""
    if table.empty:
        return None
    show = show or (lambda v: decimal(v, 2))
    rows, cols = table.shape
    fig, ax = figure(title, height=max(2.6, 1.2 + 0.42 * rows))
    values = table.to_numpy(dtype="float64")
    image = ax.imshow(values, cmap=scale, aspect="auto")
    ax.grid(False)
    ax.set_xticks(range(cols), [str(c) for c in table.columns])
    ax.set_yticks(range(rows), [str(i) for i in table.index])
    ax.set_xlabel(str(table.columns.name or ""))
    ax.set_ylabel(str(table.index.name or ""))
    for (i, j), value in np.ndenumerate(values):
        if value == value:
            ax.text(j, i, show(value), ha="center", va="center", fontsize=10.5)
    fig.colorbar(image, ax=ax, format=FuncFormatter(lambda v, _: show(v)))
    return fig


def score_distribution(scores: pd.Series, title: str = "Trade scores (−1..+1)"):
    """A histogram of the trades' scores; None when no trade was scored."""
    values = pd.Series(scores, dtype="float64").dropna()
    if values.empty:
        return None
    fig, ax = figure(title, height=3.0)
    ax.hist(values.to_numpy(), bins=20, range=(-1.0, 1.0), color="#1f4e99")
    ax.set_xlabel("score")
    ax.set_ylabel("trades")
    return fig


def by_condition(frame: pd.DataFrame, title: str = "Win rate and buy share by market condition"):
    """Bars of the win rate and the share of buying days in each market condition; None when
    no condition has a trade or a signal day."""
    columns = [c for c in ("win_rate", "buy_share") if c in frame.columns]
    data = frame[columns].astype("float64").dropna(how="all") if columns else frame
    if data.empty:
        return None
    fig, ax = figure(title, height=3.0)
    data.rename(columns={"win_rate": "win rate", "buy_share": "buy share"}).plot.bar(ax=ax, rot=0)
    ax.set_ylim(0, 1)
    ax.set_xlabel("")
    percent_axis(ax)
    return fig


def candidate_objectives(table: pd.DataFrame, title: str = "Replay objective of each candidate"):
    """Horizontal bars of each candidate's objective, the current config in grey; None when
    nothing was replayed."""
    if table.empty:
        return None
    fig, ax = figure(title, height=max(2.4, 0.9 + 0.32 * len(table)))
    colors = ["#999999"] + ["#1f4e99"] * (len(table) - 1)
    ax.barh(table["candidate"], table["objective"].astype("float64"), color=colors)
    ax.invert_yaxis()
    ax.set_xlabel("objective J")
    return fig
