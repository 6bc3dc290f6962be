"""Trade statistics of a run's fills: count, win rate, profit factor, average holding.

Pure functions over the fills of a backtest or of the ledger (one row per fill: ``date``,
``symbol``, ``action`` BUY or SELL, ``quantity``, ``amount`` in dollars and ``realized_pnl``, the
realised P&L of a SELL against the weighted-average cost; NaN on buys).

A *closed trade* is a SELL: the only fill that realises a profit or a loss. The win rate and the
profit factor are over sells. The book keeps a weighted-average cost, which has no holding
period; :func:`holding_days` therefore matches the shares sold to the shares bought first in,
first out (FIFO) for the time they were held, never for the P&L.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import pandas as pd

from allocator.portfolio.metrics import hit_rate

#: A remainder of a lot below this many shares is rounding, not a holding.
_SHARE_EPSILON = 1e-9


def profit_factor(realized_pnl: pd.Series) -> float:
    """Gross profit over gross loss of the closed trades.

    Parameters
    ----------
    realized_pnl : pd.Series
        Realised P&L of each trade in dollars; NaN (a buy, not closed) is left out.

    Returns
    -------
    float
        ``sum(pnl > 0) / |sum(pnl < 0)|``, unitless (above 1: the wins outweigh the losses).
        ``nan`` when no closed trade lost money (the ratio has no meaning) or none was closed.
    """
    pnl = pd.Series(realized_pnl, dtype="float64").dropna()
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    return float(gains / losses) if losses > 0 else math.nan


def holding_days(trades: pd.DataFrame) -> pd.Series:
    """Calendar days each sold share was held, matched FIFO, one entry per lot consumed.

    Parameters
    ----------
    trades : pd.DataFrame
        Fills in date order with ``date``, ``symbol``, ``action`` and ``quantity`` (shares).

    Returns
    -------
    pd.Series
        Indexed by nothing in particular: the days held (sell date − buy date) of each part of
        a buy lot a sell consumed, with the shares as ``weights`` in the Series' ``attrs``.
        Shares sold beyond the recorded buys (a book that started with holdings) are left out.
    """
    lots: dict[str, deque] = {}
    held, weights = [], []
    for day, symbol, action, quantity in trades[
        ["date", "symbol", "action", "quantity"]
    ].itertuples(index=False):
        when = pd.Timestamp(day)
        queue = lots.setdefault(symbol, deque())
        if action == "BUY":
            queue.append([when, float(quantity)])
            continue
        remaining = float(quantity)
        while remaining > _SHARE_EPSILON and queue:
            lot = queue[0]
            used = min(lot[1], remaining)
            held.append(float((when - lot[0]).days))
            weights.append(used)
            lot[1] -= used
            remaining -= used
            if lot[1] <= _SHARE_EPSILON:
                queue.popleft()
    series = pd.Series(held, dtype="float64", name="days")
    series.attrs["weights"] = weights
    return series


def average_holding_days(trades: pd.DataFrame) -> float:
    """The share-weighted mean of :func:`holding_days`: how long a sold share was held on
    average, in calendar days; ``nan`` when nothing was sold."""
    days = holding_days(trades)
    weights = np.asarray(days.attrs["weights"], dtype="float64")
    if not len(days) or weights.sum() <= 0:
        return math.nan
    return float(np.average(days.to_numpy(), weights=weights))


def trade_statistics(trades: pd.DataFrame) -> dict[str, Any]:
    """The trade statistics of a run, in one dictionary.

    Returns
    -------
    dict
        ``n_trades`` (fills), ``n_buys``, ``n_sells``, ``bought`` and ``sold`` (dollars),
        ``win_rate`` (share of sells with a positive realised P&L,
        :func:`~allocator.portfolio.metrics.hit_rate`), ``profit_factor``
        (:func:`profit_factor`), ``average_win`` and ``average_loss`` (dollars per winning and
        losing sell), ``realized_pnl`` (dollars, all sells), ``average_holding_days``
        (:func:`average_holding_days`). Undefined figures are ``nan``.
    """
    actions = trades["action"] if len(trades) else pd.Series([], dtype="object")
    amounts = pd.Series(trades["amount"] if len(trades) else [], dtype="float64").abs()
    pnl = pd.Series(trades["realized_pnl"] if len(trades) else [], dtype="float64")
    sells = pnl[(actions == "SELL").to_numpy()].dropna() if len(trades) else pnl
    wins, losses = sells[sells > 0], sells[sells < 0]
    return {
        "n_trades": len(trades),
        "n_buys": int((actions == "BUY").sum()),
        "n_sells": int((actions == "SELL").sum()),
        "bought": float(amounts[(actions == "BUY").to_numpy()].sum()) if len(trades) else 0.0,
        "sold": float(amounts[(actions == "SELL").to_numpy()].sum()) if len(trades) else 0.0,
        "win_rate": hit_rate(sells),
        "profit_factor": profit_factor(sells),
        "average_win": float(wins.mean()) if len(wins) else math.nan,
        "average_loss": float(losses.mean()) if len(losses) else math.nan,
        "realized_pnl": float(sells.sum()),
        "average_holding_days": average_holding_days(trades) if len(trades) else math.nan,
    }
