"""The execute and fetch reports' broker tables: each fill against the official open, by month.

The numbers come from :mod:`allocator.portfolio.slippage` (positive slippage is a cost); these
functions only lay them out through :mod:`allocator.notebook.formats`, as the reports' other
tables (:class:`~allocator.notebook.tables.Table`).
"""

from __future__ import annotations

import pandas as pd

from allocator.notebook.formats import cents, date, decimal, shares
from allocator.notebook.tables import Markdown, Table, frame_table, sentence

FILL_NOTES = (
    "Slippage: the fill's price against the trade date's official open (the bar's open), "
    "positive when it cost: a buy above the open, a sell below it. — : the open is not stored "
    "yet (the fetch job stores it at 4:35 PM).",
)


def _filled_by(client_order_id: object) -> str:
    return "broker" if isinstance(client_order_id, str) and client_order_id else "simulated"


def fills_against_open(fills: pd.DataFrame) -> Table:
    """One row per fill: shares, price, the official open, slippage in bps and dollars, and who
    filled it (``broker`` or ``simulated``)."""
    frame = fills.copy()
    if frame.empty:
        frame = pd.DataFrame(columns=[*fills.columns, "filled_by"])
    else:
        frame["filled_by"] = frame["client_order_id"].map(_filled_by)
    return frame_table(
        frame,
        {
            "trade_date": date,
            "quantity": shares,
            "price": cents,
            "open": cents,
            "slippage_bps": lambda v: decimal(v, 2),
            "slippage_usd": cents,
            "commission": cents,
        },
        columns=[
            "trade_date",
            "symbol",
            "action",
            "quantity",
            "price",
            "open",
            "slippage_bps",
            "slippage_usd",
            "commission",
            "filled_by",
        ],
        labels={
            "trade_date": "date",
            "quantity": "shares",
            "open": "official open",
            "slippage_bps": "slippage bps",
            "slippage_usd": "slippage $",
            "filled_by": "filled by",
        },
        align="lllrrrrrrl",
        notes=FILL_NOTES,
        empty="No fills on this date (orders still wait for the open, or nothing to trade).",
    )


def monthly_slippage(summary: pd.DataFrame) -> Table:
    """Each month's fills, dollars traded, slippage in dollars and dollar-weighted bps, and
    commissions (:func:`allocator.portfolio.slippage.monthly_summary`)."""
    return frame_table(
        summary,
        {
            "traded_usd": cents,
            "slippage_usd": cents,
            "slippage_bps": lambda v: decimal(v, 2),
            "commission_usd": cents,
        },
        labels={
            "traded_usd": "traded",
            "slippage_usd": "slippage $",
            "slippage_bps": "slippage bps",
            "commission_usd": "commissions",
        },
        notes=(
            "bps are dollar-weighted: the month's slippage over its fills' value at the open. "
            "Use the figure as the config's slippage_bps in a backtest.",
        ),
        empty="No fills in the last 12 months.",
    )


def broker_line(line: str) -> Markdown:
    """The broker's one line (``LIVE ACCOUNT`` in bold when it trades real money)."""
    if line.startswith("LIVE ACCOUNT"):
        return sentence(f"**LIVE ACCOUNT** — {line.removeprefix('LIVE ACCOUNT: ')}")
    return sentence(line)
