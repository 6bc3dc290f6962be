"""Market conditions on each trade date, and how the strategy did in each.

The market is the equal-weight index of the assets (each rebased to 1). On a date ``d`` its
condition is read from the ``WINDOW`` (20) closes before ``d``:

- a least-squares line through the log index against time: slope and ``R²``;
- the volatility: the standard deviation of the window's daily log returns.

``momentum`` when ``R² > 0.6`` (a strong trend, either way); ``choppy`` when ``R² < 0.3`` and the
volatility is above its median over the period looked at; ``mixed`` otherwise.

Performance by condition: the trades scored in each (count, win rate, average P&L, average
score), and *buy against hold*: the share of signal days that bought, and the market's average
10-session return after the days that bought against after the days that held.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOW = 20
MOMENTUM_R2, CHOPPY_R2 = 0.6, 0.3
MOMENTUM, CHOPPY, MIXED = "momentum", "choppy", "mixed"
CONDITIONS = (MOMENTUM, CHOPPY, MIXED)


def market_index(closes: pd.DataFrame) -> pd.Series:
    """The equal-weight index: the mean of each asset's closes rebased to its first close."""
    rebased = closes / closes.iloc[0]
    return rebased.mean(axis=1)


def trend_fit(log_prices: np.ndarray) -> tuple[float, float]:
    """(slope per session, R²) of the least-squares line through ``log_prices``."""
    t = np.arange(len(log_prices), dtype="float64")
    slope, intercept = np.polyfit(t, log_prices, 1)
    fitted = intercept + slope * t
    total = float(np.sum((log_prices - log_prices.mean()) ** 2))
    r2 = 1.0 - float(np.sum((log_prices - fitted) ** 2)) / total if total > 0 else 0.0
    return float(slope), r2


def conditions_by_date(closes: pd.DataFrame) -> pd.DataFrame:
    """Slope, R², volatility and condition on every date with ``WINDOW`` closes before it.

    The fits of every window at once: for ``t = 0..WINDOW-1`` and the window's log prices ``y``,
    ``slope = Σ(t - t̄)(y - ȳ) / Σ(t - t̄)²`` and ``R² = slope² Σ(t - t̄)² / Σ(y - ȳ)²`` (0 for a flat
    window): the least-squares line of :func:`trend_fit`, without a fit per date.
    """
    log_index = np.log(market_index(closes).to_numpy())
    if len(log_index) <= WINDOW:
        return pd.DataFrame(columns=["slope", "r2", "volatility", "condition"])
    windows = np.lib.stride_tricks.sliding_window_view(log_index, WINDOW)[:-1]
    t = np.arange(WINDOW, dtype="float64") - (WINDOW - 1) / 2.0
    centred = windows - windows.mean(axis=1, keepdims=True)
    t_square = float(np.sum(t * t))
    slope = centred @ t / t_square
    total = np.sum(centred * centred, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, slope * slope * t_square / total, 0.0)
    volatility = np.std(np.diff(windows, axis=1), axis=1, ddof=1)
    frame = pd.DataFrame(
        {"slope": slope, "r2": r2, "volatility": volatility},
        index=pd.Index(closes.index[WINDOW:], name="date"),
    )
    high_vol = frame["volatility"] > frame["volatility"].median()
    frame["condition"] = np.where(
        frame["r2"] > MOMENTUM_R2,
        MOMENTUM,
        np.where((frame["r2"] < CHOPPY_R2) & high_vol, CHOPPY, MIXED),
    )
    return frame


def forward_market_returns(closes: pd.DataFrame, horizon: int = 10) -> pd.Series:
    """The index's return from each date's previous close to the close ``horizon`` sessions on."""
    index = market_index(closes)
    return index.shift(-(horizon - 1)) / index.shift(1) - 1.0


def performance_by_condition(
    scored: pd.DataFrame, signals: pd.DataFrame, conditions: pd.DataFrame, forward: pd.Series
) -> pd.DataFrame:
    """One row per condition: trades, win rate, average P&L and score, buys against holds."""
    cond = dict(zip(conditions.index, conditions["condition"], strict=True))
    after = dict(zip(forward.index, forward.to_numpy(dtype="float64"), strict=True))
    trade_cond = np.array([cond.get(d) for d in scored["date"]], dtype=object)
    pnl = scored["pnl"].to_numpy(dtype="float64")
    score = scored["score"].to_numpy(dtype="float64")
    day_cond = np.array([cond.get(d) for d in signals["date"]], dtype=object)
    market = np.array([after.get(d, np.nan) for d in signals["date"]], dtype="float64")
    action = signals["action"].to_numpy()
    rows = []
    for name in CONDITIONS:
        t, d = trade_cond == name, day_cond == name
        buys, holds = d & (action == "BUY"), d & (action == "HOLD")
        rows.append(
            {
                "condition": name,
                "n_trades": int(t.sum()),
                "win_rate": float((pnl[t] > 0).mean()) if t.any() else np.nan,
                "avg_pnl": float(pnl[t].mean()) if t.any() else np.nan,
                "avg_score": float(score[t].mean()) if t.any() else np.nan,
                "signal_days": int(d.sum()),
                "buy_share": float(buys.sum() / d.sum()) if d.any() else np.nan,
                "market_after_buy": _mean(market[buys]),
                "market_after_hold": _mean(market[holds]),
            }
        )
    return pd.DataFrame(rows).set_index("condition")


def _mean(values: np.ndarray) -> float:
    """The mean of the values that are not NaN (as pandas' ``mean``), NaN when none is."""
    known = values[~np.isnan(values)]
    return float(known.mean()) if len(known) else np.nan
