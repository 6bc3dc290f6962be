"""A sweep row's metrics from the replay kernel's arrays: the numbers of
:func:`allocator.portfolio.metrics.summary` that :func:`allocator.backtest.sweep.evaluate` reads.

``summary`` checks its inputs and builds a pandas Series for every metric (about 4 ms of a
20-year run, more than the replay itself). The kernel's arrays are clean by construction, so
:func:`metrics_row` takes :func:`~allocator.portfolio.metrics.summary_unchecked` (the shared
array formulas) and computes the others with the same NumPy operations, in the same order and
on the same arrays as their checked functions; where pandas computes a value itself (a Series'
``sum`` and ``mean``, which may use bottleneck) it calls pandas. ``tests/test_kernel.py`` proves
every value equal to ``evaluate``'s.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from allocator.portfolio import metrics
from allocator.portfolio.metrics import (
    PERIODS_PER_YEAR,
    _cagr,
    _divide,
    _flow_adjusted,
    _money_weighted,
)


def _sortino(values: np.ndarray, periods: float) -> float:
    """``metrics.sortino_ratio`` with a required return of 0."""
    if len(values) < 2:
        return math.nan
    shortfall = np.minimum(values - 0.0, 0.0)
    downside = float(np.sqrt(np.mean(np.square(shortfall))) * math.sqrt(periods))
    return _divide(np.mean(values - 0.0) * periods, downside)


def _calmar(values: np.ndarray, depth: float, periods: float) -> float:
    """``metrics.calmar_ratio`` given the maximum drawdown ``depth``."""
    if not depth < 0:
        return math.nan
    ratio = _cagr(values, periods) / abs(depth)
    return ratio if math.isfinite(ratio) else math.nan


def _turnover(amounts: np.ndarray, total: np.ndarray, periods: float) -> float:
    if len(total) == 0 or total.mean() <= 0:
        return math.nan
    return float(np.abs(amounts).sum() / total.mean() * periods / len(total))


def metrics_row(
    deposits: np.ndarray,
    cash: np.ndarray,
    positions: np.ndarray,
    amounts: np.ndarray,
    periods: float = PERIODS_PER_YEAR,
) -> dict[str, float | int]:
    """``summary``'s figures of a sweep row (the comparison's, ``turnover`` and
    ``avg_idle_cash``) from the daily deposits, cash and positions values (float arrays, one per
    session) and the amount of every fill in order."""
    total = cash + positions
    values = _flow_adjusted(total, deposits)
    shared = metrics.summary_unchecked(total, deposits, positions, periods=periods)
    final = float(total[-1]) if len(total) else math.nan
    return {
        "twr": shared["twr"],
        "cagr": shared["cagr"],
        "mwr": _money_weighted(deposits, final, periods) if len(total) else math.nan,
        "volatility": shared["volatility"],
        "sharpe": shared["sharpe"],
        "sortino": _sortino(values, periods),
        "max_drawdown": shared["max_drawdown"],
        "calmar": _calmar(values, shared["max_drawdown"], periods),
        "final_value": final,
        "total_deposits": float(pd.Series(deposits).sum()),
        "n_trades": len(amounts),
        "exposure": shared["exposure"],
        "turnover": _turnover(amounts, total, periods),
        "avg_idle_cash": float(pd.Series(cash / total).mean()),
    }
