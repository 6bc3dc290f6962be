"""The tearsheet's figures of a backtest (the backtest, the study and the walk-forward reports).

QuantStats' tearsheet is the reference for what is shown: cumulative returns against the
benchmarks (log scale when the range needs it), the portfolio value against the money put in,
the underwater (drawdown) chart, monthly returns as a heatmap, yearly returns against the
benchmarks, rolling 12-month Sharpe ratio and volatility, and the allocation over time. The
figures are drawn here with matplotlib (QuantStats itself is not a dependency: its figures are
fixed-size and its metrics are not this package's; the numbers come from
:mod:`allocator.portfolio.metrics` and :mod:`allocator.portfolio.periods`).

Every function takes plain frames (one column per run, a dated index) and returns a figure of
:mod:`.plots`' width and style, or None when there is nothing to draw. Long daily series are
drawn from weekly or monthly points (:func:`sampled`), where a daily line would only add noise
and bytes.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.ticker import LogLocator, NullLocator

from allocator.notebook.formats import percent
from allocator.notebook.plots import (
    HEIGHT,
    RUN_COLORS,
    _dates,
    date_axis,
    dollar_axis,
    figure,
    percent_axis,
)

#: Sessions beyond which a daily series is drawn from weekly points (about two years), and
#: beyond which from monthly points (six years): :func:`sampled`.
WEEKLY_ABOVE = 520
MONTHLY_ABOVE = 1500
#: A cumulative growth range (max / min of the growth of $1) beyond which the axis is log.
LOG_RANGE = 4.0
#: How the figures of a period longer than :data:`WEEKLY_ABOVE` sessions are stored: (scale,
#: palette colours). Up to :data:`SVG_UP_TO` sessions a figure is an SVG, in between a 2x PNG.
LONG_PNG = (1, 24)
SVG_UP_TO = 130
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def sampled(frame: pd.DataFrame | pd.Series, how: str = "last"):
    """``frame`` as drawn: daily up to :data:`WEEKLY_ABOVE` sessions, then one point a week,
    then beyond :data:`MONTHLY_ABOVE` sessions one a month: the period's ``last`` value,
    ``mean`` or ``min`` (a drawdown's depth survives). The index becomes Timestamps."""
    data = frame.copy()
    data.index = _dates(data.index)
    if len(data) <= WEEKLY_ABOVE:
        return data
    rule = "ME" if len(data) > MONTHLY_ABOVE else "W-FRI"
    return getattr(data.resample(rule), how)().dropna(how="all")


def _scaled(fig, sessions: int) -> None:
    """How a figure of ``sessions`` points is stored: SVG up to :data:`SVG_UP_TO` sessions, a
    2x PNG up to :data:`WEEKLY_ABOVE`, beyond that a 1x PNG of 24 colours (:data:`LONG_PNG`)."""
    if sessions > WEEKLY_ABOVE:
        fig.allocator_png = LONG_PNG
    elif sessions > SVG_UP_TO:
        fig.allocator_png = (2, 64)


def _color(name: str) -> str | None:
    return RUN_COLORS.get(name)


def _lines(ax, frame: pd.DataFrame, emphasis: str = "strategy") -> None:
    """One line per run, the strategy thicker; the legend above the axes, right of the title."""
    for name in frame.columns:
        width = 2.0 if name == emphasis else 1.3
        ax.plot(frame.index, frame[name], label=name, color=_color(name), linewidth=width)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=len(frame.columns))


def _log_axis(ax, growth: pd.DataFrame) -> bool:
    """A log axis when ``growth`` spans more than :data:`LOG_RANGE` times, ticks at 1-2-5."""
    spread = float(growth.max().max() / max(growth.min().min(), 1e-9))
    if spread <= LOG_RANGE:
        return False
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_locator(NullLocator())
    return True


def returns_and_drawdown(
    growth: pd.DataFrame, drawdowns: pd.DataFrame, title: str = "Cumulative return"
):
    """Two panels sharing the dates: the cumulative time-weighted return of each run (columns
    of ``growth``, the growth of $1; a log axis when it spans more than :data:`LOG_RANGE`
    times), and under it the drawdowns (underwater: the strategy filled, the others as lines)."""
    if growth.empty:
        return None
    data, under = sampled(growth), sampled(drawdowns, "min")
    fig, (top, bottom) = figure(title, rows=2, height=HEIGHT * 1.5, height_ratios=[3, 2])
    _scaled(fig, len(growth))
    _lines(top, data)
    if _log_axis(top, data):
        top.set_title(f"{title} (log scale)")
    top.yaxis.set_major_formatter(lambda v, _: percent(v - 1.0, 0))
    top.set_ylabel("time-weighted return")
    first = under.columns[0]
    bottom.fill_between(under.index, under[first], 0.0, color=_color(first), alpha=0.35)
    for name in under.columns[1:]:
        bottom.plot(under.index, under[name], color=_color(name), linewidth=1.1)
    bottom.set_ylim(top=0)
    bottom.set_ylabel("drawdown")
    percent_axis(bottom)
    date_axis(bottom)
    return fig


def portfolio_value(values: pd.DataFrame, deposits: pd.Series, title: str | None = None):
    """Each run's value (columns) with the same deposits, and the money deposited so far;
    a log axis when the values span more than 30 times."""
    if values.empty:
        return None
    data = sampled(values)
    paid = sampled(deposits.cumsum())
    positive = data[data > 0]
    log = float(positive.max().max() / max(positive.min().min(), 1e-9)) > LOG_RANGE
    name = title or "Portfolio value with the same deposits" + (" (log scale)" if log else "")
    fig, ax = figure(name)
    _scaled(fig, len(values))
    _lines(ax, data)
    ax.plot(paid.index, paid, label="deposited", color="black", linestyle=":", linewidth=1.3)
    ax.legend(loc="upper left", ncols=len(data.columns) + 1)
    if log:
        _log_axis(ax, data.clip(lower=1.0))
    dollar_axis(ax)
    date_axis(ax)
    return fig


def rolling_ratios(
    sharpe: pd.DataFrame,
    volatility: pd.DataFrame,
    title: str = "Rolling 12-month Sharpe ratio and volatility",
):
    """Two panels sharing the dates: the rolling Sharpe ratio, then the rolling volatility (%),
    one line per run; None before a full window."""
    sharpe, volatility = sharpe.dropna(how="all"), volatility.dropna(how="all")
    if sharpe.empty:
        return None
    fig, (top, bottom) = figure(title, rows=2, height=HEIGHT * 1.4)
    _scaled(fig, len(sharpe))
    _lines(top, sampled(sharpe))
    top.axhline(0, color="black", linewidth=0.6)
    top.set_ylabel("Sharpe ratio")
    _lines(bottom, sampled(volatility))
    bottom.get_legend().remove()
    bottom.set_ylabel("volatility")
    percent_axis(bottom)
    date_axis(bottom)
    return fig


def allocation(weights: pd.DataFrame, title: str = "Allocation over time (share of value)"):
    """Stacked areas of each holding's (and cash's) share of the value (weekly or monthly means
    on long periods)."""
    if weights.empty:
        return None
    data = sampled(weights.fillna(0.0), "mean")
    fig, ax = figure(title)
    _scaled(fig, len(weights))
    palette = ["#1f4e99", "#d95f02", "#7570b3", "#66a61e", "#e6ab02", "#a6761d"]
    colors = [
        palette[i % len(palette)] if c != "cash" else "#cfcfcf" for i, c in enumerate(data.columns)
    ]
    ax.stackplot(
        data.index,
        *[data[c].to_numpy() for c in data.columns],
        labels=list(data.columns),
        colors=colors,
        linewidth=0,
    )
    ax.set_ylim(0, 1)
    ax.margins(x=0)
    ax.legend(loc="upper left", ncols=len(data.columns), frameon=True, framealpha=0.9)
    percent_axis(ax)
    date_axis(ax)
    return fig
