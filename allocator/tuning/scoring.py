"""Each trade scored −1..+1 from how the 10 sessions after it went.

For a trade of ``symbol`` filled at price ``p`` on session ``d``, with ``direction`` +1 for a BUY
and −1 for a SELL, the window is the 10 closes of sessions ``d .. d+9`` (the fill is at ``d``'s
open, so ``d``'s close is the first). With ``r = close[d+9] / p − 1``:

- **profitability** (±0.3): ``0.3 × tanh(direction × r / 0.05)``: a 5 % move the trade's way
  earns 0.23;
- **Sharpe impact** (±0.2): ``0.2 × tanh(direction × r / (σ × √10) / 2)``, with ``σ`` the standard
  deviation of the 10 daily log returns from ``p`` through the window: the move per unit of the
  risk taken;
- **drawdown contribution** (−0.4..0): ``−0.4 × min(1, adverse / 0.10)``, with ``adverse`` the
  worst move against the trade inside the window (``max(0, 1 − min(close) / p)`` for a BUY,
  ``max(0, max(close) / p − 1)`` for a SELL): a 10 % adverse excursion costs the full 0.4;
- **market alignment** (±0.3): ``0.3 × tanh(direction × m / 0.02)``, with ``m`` the return over the
  window of the equal-weight market of all assets (each rebased to its close before ``d``): a
  trade with the market's move scores up, against it down.

``score = clip(sum, −1, 1)``. A trade scores only when its whole window is known on the tuning
date: a trade whose 10th session closes on or after the tuning date is **not scored** (it is
counted as ``pending`` and scored next month). Only closes dated before the tuning date are read.
``pnl`` is ``direction × r × amount`` in dollars; a trade *wins* when it is positive.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Sessions after a trade that score it.
HORIZON = 10
PROFIT_SCALE, DRAWDOWN_SCALE, MARKET_SCALE = 0.05, 0.10, 0.02
WEIGHTS = {"profitability": 0.3, "sharpe_impact": 0.2, "drawdown": 0.4, "alignment": 0.3}
SCORE_COLUMNS = [
    "date",
    "symbol",
    "action",
    "price",
    "amount",
    "forward_return",
    "pnl",
    "profitability",
    "sharpe_impact",
    "drawdown",
    "alignment",
    "score",
]


def score_trade(
    action: str, price: float, window: np.ndarray, market: np.ndarray
) -> dict[str, float]:
    """The four terms and the score of one trade (module doc); ``window``/``market`` hold the
    trade's 10 closes and the market index over the same sessions (rebased to 1 before them)."""
    direction = 1.0 if action == "BUY" else -1.0
    r = window[-1] / price - 1.0
    logs = np.diff(np.log(np.concatenate([[price], window])))
    sigma = float(np.std(logs, ddof=1)) if len(logs) > 1 else 0.0
    per_risk = direction * r / (sigma * math.sqrt(HORIZON)) if sigma > 0 else 0.0
    if direction > 0:
        adverse = max(0.0, 1.0 - float(window.min()) / price)
    else:
        adverse = max(0.0, float(window.max()) / price - 1.0)
    terms = {
        "profitability": WEIGHTS["profitability"] * math.tanh(direction * r / PROFIT_SCALE),
        "sharpe_impact": WEIGHTS["sharpe_impact"] * math.tanh(per_risk / 2.0),
        "drawdown": -WEIGHTS["drawdown"] * min(1.0, adverse / DRAWDOWN_SCALE),
        "alignment": WEIGHTS["alignment"]
        * math.tanh(direction * (market[-1] - 1.0) / MARKET_SCALE),
    }
    return {"forward_return": r, **terms, "score": min(1.0, max(-1.0, sum(terms.values())))}


def score_trades(trades: pd.DataFrame, closes: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Scores of the trades whose window is complete in ``closes``, and how many are pending.

    ``trades`` has columns date, symbol, action, price, amount; ``closes`` is wide (dates ×
    symbols), holding only bars dated before the tuning date.
    """
    if trades.empty or closes.empty:
        return pd.DataFrame(columns=SCORE_COLUMNS), 0
    dates = pd.Index(closes.index)
    values = closes.to_numpy(dtype="float64")
    position = {d: i for i, d in enumerate(dates)}
    rows, pending = [], 0
    for trade in trades.itertuples(index=False):
        i = position.get(trade.date)
        if i is None or i + HORIZON > len(dates) or i == 0:
            pending += 1
            continue
        j = list(closes.columns).index(trade.symbol)
        window = values[i : i + HORIZON, j]
        market = np.nanmean(values[i : i + HORIZON] / values[i - 1], axis=1)
        terms = score_trade(trade.action, float(trade.price), window, market)
        direction = 1.0 if trade.action == "BUY" else -1.0
        pnl = direction * terms["forward_return"] * float(trade.amount)
        rows.append(
            {
                "date": trade.date,
                "symbol": trade.symbol,
                "action": trade.action,
                "price": float(trade.price),
                "amount": float(trade.amount),
                "pnl": pnl,
                **terms,
            }
        )
    return pd.DataFrame(rows, columns=SCORE_COLUMNS), pending
