"""Performance over periods, for a tearsheet: drawdown episodes, calendar returns, rolling ratios.

Pure functions over a Series of decimal returns per session indexed by date (the time-weighted
returns of :func:`allocator.portfolio.metrics.daily_returns_flow_adjusted`, so deposits are
never returns). They extend :mod:`allocator.portfolio.metrics` with what QuantStats' tearsheet
shows beside the headline figures, with the same definitions:

- :func:`drawdown_episodes`: every fall below a high-water mark, its peak, trough and recovery
  (the worst one is :func:`~allocator.portfolio.metrics.max_drawdown_period`);
- :func:`calendar_returns`: the compounded return of each month or year;
- :func:`rolling_sharpe` and :func:`rolling_volatility`: the annualised figures of
  :mod:`~allocator.portfolio.metrics` over a trailing window of sessions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from allocator.portfolio.metrics import PERIODS_PER_YEAR, drawdown_series

#: The columns of :func:`drawdown_episodes`.
EPISODE_COLUMNS = ["peak", "trough", "recovery", "depth", "sessions", "days"]


def drawdown_episodes(returns: pd.Series, worst: int | None = None) -> pd.DataFrame:
    """Every drawdown episode of the compounded returns, deepest first.

    Parameters
    ----------
    returns : pd.Series
        Decimal returns per session, noncumulative, indexed by ascending dates.
    worst : int, optional
        Keep only the ``worst`` deepest episodes.

    Returns
    -------
    pd.DataFrame
        One row per episode (a run of sessions whose close is below the last high-water mark),
        columns :data:`EPISODE_COLUMNS`: ``peak`` (the session of the high-water mark the episode
        starts from; the first session when the value fell from its very start, as in
        :func:`~allocator.portfolio.metrics.max_drawdown_period`), ``trough`` (the first session
        of its deepest close), ``recovery`` (the first session back at or above the peak; None
        while not recovered), ``depth`` (the deepest drawdown, a negative decimal), ``sessions``
        (from the peak to the recovery, or to the last session when not recovered) and ``days``
        (the same span in calendar days). Ties in depth keep the earlier episode first.
    """
    drawdowns = drawdown_series(returns)
    values = drawdowns.to_numpy()
    index = list(drawdowns.index)
    below = values < 0
    rows = []
    i, n = 0, len(values)
    while i < n:
        if not below[i]:
            i += 1
            continue
        start = i
        while i < n and below[i]:
            i += 1
        trough = start + int(np.argmin(values[start:i]))
        peak = start - 1 if start > 0 else 0
        end = i if i < n else n - 1
        recovery = index[i] if i < n else None
        rows.append(
            (index[peak], index[trough], recovery, float(values[trough]), end - peak)
            + (_calendar_days(index[peak], index[end]),)
        )
    table = pd.DataFrame(rows, columns=EPISODE_COLUMNS)
    table = table.sort_values("depth", kind="stable").reset_index(drop=True)
    return table if worst is None else table.head(worst)


def _calendar_days(first, last) -> float:
    try:
        return float((pd.Timestamp(last) - pd.Timestamp(first)).days)
    except (TypeError, ValueError):
        return math.nan


def calendar_returns(returns: pd.Series, frequency: str = "month") -> pd.Series:
    """The compounded return of each calendar month or year.

    Parameters
    ----------
    returns : pd.Series
        Decimal returns per session, indexed by ascending dates.
    frequency : {"month", "year"}

    Returns
    -------
    pd.Series
        ``prod(1 + r) - 1`` over the sessions of each period, indexed by ``(year, month)``
        tuples (a MultiIndex named ``year`` and ``month``) or by year; periods without a session
        are absent. A partial first or last period is the return of its sessions only.
    """
    if frequency not in ("month", "year"):
        raise ValueError(f"frequency must be 'month' or 'year', got {frequency!r}")
    series = pd.Series(returns, dtype="float64")
    dates = pd.to_datetime(pd.Index(series.index))
    keys = [dates.year, dates.month] if frequency == "month" else [dates.year]
    names = ["year", "month"] if frequency == "month" else ["year"]
    grouped = (1.0 + series).groupby(keys).prod() - 1.0
    grouped.index.names = names
    return grouped.rename("return")


def monthly_table(returns: pd.Series) -> pd.DataFrame:
    """Monthly returns as a table: one row per year, columns 1..12 (NaN where no session), and
    ``year``, the compounded return of the row's sessions (:func:`calendar_returns`)."""
    months = calendar_returns(returns, "month").unstack("month")
    months = months.reindex(columns=range(1, 13))
    months["year"] = calendar_returns(returns, "year")
    months.columns.name = None
    return months


def _window(window: int) -> int:
    if window < 2:
        raise ValueError(f"window must be at least 2 sessions, got {window}")
    return window


def rolling_volatility(
    returns: pd.Series, window: int = PERIODS_PER_YEAR, periods: float = PERIODS_PER_YEAR
) -> pd.Series:
    """Annualised volatility over each trailing ``window`` of sessions.

    ``std(r, ddof=1) * sqrt(periods)`` of the ``window`` returns ending at each session, as
    :func:`~allocator.portfolio.metrics.annual_volatility`; NaN for the first ``window - 1``
    sessions (the window is not full).
    """
    series = pd.Series(returns, dtype="float64")
    return series.rolling(_window(window)).std(ddof=1) * math.sqrt(periods)


def rolling_sharpe(
    returns: pd.Series, window: int = PERIODS_PER_YEAR, periods: float = PERIODS_PER_YEAR
) -> pd.Series:
    """Annualised Sharpe ratio (risk-free 0) over each trailing ``window`` of sessions.

    ``mean(r) / std(r, ddof=1) * sqrt(periods)`` of the ``window`` returns ending at each
    session, as :func:`~allocator.portfolio.metrics.sharpe_ratio`; NaN for the first
    ``window - 1`` sessions and where the window's returns are all equal.
    """
    series = pd.Series(returns, dtype="float64")
    rolling = series.rolling(_window(window))
    std = rolling.std(ddof=1)
    return (rolling.mean() / std.where(std > 1e-15)) * math.sqrt(periods)
