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
    """Slope, R², volatility and condition on every date with ``WINDOW`` closes before it."""
    log_index = np.log(market_index(closes).to_numpy())
    rows = []
    for i in range(WINDOW, len(log_index)):
        window = log_index[i - WINDOW : i]
        slope, r2 = trend_fit(window)
        rows.append((closes.index[i], slope, r2, float(np.std(np.diff(window), ddof=1))))
    frame = pd.DataFrame(rows, columns=["date", "slope", "r2", "volatility"]).set_index("date")
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
    cond = conditions["condition"]
    trades = scored.assign(condition=scored["date"].map(cond))
    days = signals.assign(condition=signals["date"].map(cond), market=signals["date"].map(forward))
    rows = []
    for name in CONDITIONS:
        t = trades[trades["condition"] == name]
        d = days[days["condition"] == name]
        buys, holds = d[d["action"] == "BUY"], d[d["action"] == "HOLD"]
        rows.append(
            {
                "condition": name,
                "n_trades": len(t),
                "win_rate": float((t["pnl"] > 0).mean()) if len(t) else np.nan,
                "avg_pnl": float(t["pnl"].mean()) if len(t) else np.nan,
                "avg_score": float(t["score"].mean()) if len(t) else np.nan,
                "signal_days": len(d),
                "buy_share": float(len(buys) / len(d)) if len(d) else np.nan,
                "market_after_buy": float(buys["market"].mean()) if len(buys) else np.nan,
                "market_after_hold": float(holds["market"].mean()) if len(holds) else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("condition")
