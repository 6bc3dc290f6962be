"""The one interface every market data source implements, and the checks every bar passes.

A source returns, for one symbol and a closed date range, a DataFrame with columns
``date, open, high, low, close, volume`` (``date`` as :class:`datetime.date`, ascending, unique).
Sources raise :class:`~allocator.exceptions.MarketDataError` subclasses naming the symbol; they
never return a partly valid frame.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from allocator.exceptions import MalformedResponseError

BAR_COLUMNS = ("date", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")


@runtime_checkable
class MarketDataSource(Protocol):
    """Daily OHLCV bars for one symbol at a time."""

    #: Stored in ``price_history.source`` for every bar this source provides.
    name: str

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Bars of ``symbol`` dated within [start, end], validated by :func:`validate_bars`."""
        ...


def empty_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="object" if c == "date" else "float64") for c in BAR_COLUMNS}
    )


def validate_bars(symbol: str, frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Check and normalise ``frame``; raise :class:`MalformedResponseError` naming the bad row.

    Checks: every column present; dates parse and are unique; prices numeric, finite, above zero;
    ``high >= low``; volume numeric and not negative. Returns a copy sorted by date with float
    prices and integer volumes. ``origin`` says where the rows came from, for the message.
    """
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise MalformedResponseError(symbol, f"{origin} is missing column(s) {', '.join(missing)}")
    out = frame.loc[:, list(BAR_COLUMNS)].copy()
    if out.empty:
        return empty_bars()
    try:
        out["date"] = [dt.date.fromisoformat(str(d)[:10]) for d in out["date"]]
    except ValueError as exc:
        raise MalformedResponseError(symbol, f"{origin} has a bad date: {exc}") from None
    for column in (*PRICE_COLUMNS, "volume"):
        values = pd.to_numeric(out[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.astype("float64"))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise MalformedResponseError(
                symbol,
                f"{origin}: {column} {frame[column].iloc[i]!r} on {out['date'].iloc[i]} "
                "is not a number",
            )
        out[column] = values.astype("float64")
    for column in PRICE_COLUMNS:
        bad = out[column] <= 0
        if bad.any():
            row = out[bad].iloc[0]
            raise MalformedResponseError(
                symbol, f"{origin}: {column} {row[column]} on {row['date']} is not above zero"
            )
    bad = out["high"] < out["low"]
    if bad.any():
        row = out[bad].iloc[0]
        raise MalformedResponseError(
            symbol, f"{origin}: high {row['high']} is below low {row['low']} on {row['date']}"
        )
    if (out["volume"] < 0).any():
        row = out[out["volume"] < 0].iloc[0]
        raise MalformedResponseError(
            symbol, f"{origin}: volume {row['volume']} on {row['date']} is negative"
        )
    dupes = out["date"].duplicated()
    if dupes.any():
        raise MalformedResponseError(
            symbol, f"{origin}: date {out['date'][dupes].iloc[0]} appears twice"
        )
    out["volume"] = out["volume"].round().astype("int64")
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def clip_to_range(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    mask = (frame["date"] >= start) & (frame["date"] <= end)
    return frame.loc[mask].reset_index(drop=True)
