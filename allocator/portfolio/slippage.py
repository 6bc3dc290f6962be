"""Slippage against the official open — pure functions over fills.

The strategy decides as if every order filled at the day's official open. A broker fills at or
after it, at another price; the difference is the cost that trading reveals, and the number a
backtest can then use (the config's ``slippage_bps``).

Conventions
-----------
* The official open is the ``open`` of the day's bar (the price the simulated broker fills at).
* Slippage is signed so that a **positive number is a cost**: a BUY above the open, a SELL below
  it. In basis points, ``s x (price / open - 1) x 10,000``; in dollars,
  ``s x quantity x (price - open)``, with ``s = +1`` for a BUY and ``-1`` for a SELL.
* Over many fills (a month), the basis points are dollar-weighted: the dollars of slippage over
  the dollars the fills would have traded at the open (``sum(quantity x open)``), x 10,000. A
  simple average would let a $5 fill count as much as a $5,000 one.
* Commissions are reported beside slippage, never inside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Columns :func:`with_slippage` adds.
SLIPPAGE_COLUMNS = ["slippage_bps", "slippage_usd"]
#: Columns of :func:`monthly_summary`.
MONTHLY_COLUMNS = [
    "month",
    "fills",
    "traded_usd",
    "slippage_usd",
    "slippage_bps",
    "commission_usd",
]


def _sign(action: str) -> float:
    return 1.0 if action == "BUY" else -1.0


def slippage_bps(action: str, price: float, open_price: float) -> float:
    """Basis points a fill at ``price`` paid beyond the official open (positive: a cost).

    >>> round(slippage_bps("BUY", 100.05, 100.0), 6), round(slippage_bps("SELL", 99.9, 100.0), 6)
    (5.0, 10.0)
    """
    return _sign(action) * (price / open_price - 1.0) * 10_000.0


def slippage_dollars(action: str, quantity: float, price: float, open_price: float) -> float:
    """Dollars a fill of ``quantity`` at ``price`` paid beyond the official open.

    >>> round(slippage_dollars("BUY", 2.0, 100.05, 100.0), 6)
    0.1
    """
    return _sign(action) * quantity * (price - open_price)


def with_slippage(fills: pd.DataFrame) -> pd.DataFrame:
    """``fills`` (action, quantity, price, open) with ``slippage_bps`` and ``slippage_usd`` per
    fill; NaN where the open is not known yet."""
    out = fills.copy()
    sign = np.where(out["action"] == "BUY", 1.0, -1.0)
    price = out["price"].astype(float)
    opens = out["open"].astype(float)
    # + 0.0 turns a SELL's -0.0 (a fill exactly at the open) into 0.0
    out["slippage_bps"] = sign * (price / opens - 1.0) * 10_000.0 + 0.0
    out["slippage_usd"] = sign * out["quantity"].astype(float) * (price - opens) + 0.0
    return out


def monthly_summary(fills: pd.DataFrame) -> pd.DataFrame:
    """Per calendar month of ``trade_date``: fills, dollars traded (at the fill price),
    slippage in dollars and dollar-weighted basis points (module doc), and commissions.

    Fills whose open is not known are left out of the slippage figures but counted and traded.
    """
    if fills.empty:
        return pd.DataFrame(columns=MONTHLY_COLUMNS)
    f = with_slippage(fills)
    f["month"] = pd.to_datetime(f["trade_date"]).dt.strftime("%Y-%m")
    f["at_open"] = f["quantity"].astype(float) * f["open"].astype(float)
    f["commission"] = f["commission"].astype(float).fillna(0.0)
    grouped = f.groupby("month", sort=True)
    known = f.dropna(subset=["open"]).groupby("month", sort=True)
    out = pd.DataFrame(
        {
            "fills": grouped.size(),
            "traded_usd": grouped["amount"].sum(),
            "slippage_usd": known["slippage_usd"].sum(),
            "at_open": known["at_open"].sum(),
            "commission_usd": grouped["commission"].sum(),
        }
    )
    out["slippage_bps"] = out["slippage_usd"] / out["at_open"] * 10_000.0
    return out.reset_index()[MONTHLY_COLUMNS]
