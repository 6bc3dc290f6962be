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
#: Prices at or above this are refused: no ETF trades near it, and 1e308 breaks every sum.
MAX_PRICE = 1e7
#: Prices below this are refused: the smallest tick of a US stock under $1 (1e-300 is no price,
#: and a quantity bought at it overflows every sum).
MIN_PRICE = 0.0001
#: Volumes at or above this are refused (a day's volume of the busiest ETF is ~1e9 shares).
MAX_VOLUME = 1e15


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

    Checks: every column present; dates parse and are unique; prices numeric, finite, at least
    :data:`MIN_PRICE` and below :data:`MAX_PRICE`; ``low <= open, close <= high``; volume a whole
    number, not negative and below :data:`MAX_VOLUME` (12.5 shares is refused, not stored as 12).
    Returns a copy sorted by date with float prices and integer volumes.
    ``origin`` says where the rows came from, for the message. One bad row refuses the whole
    frame, so nothing of a symbol with a bad bar is stored.
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
    _check_ranges(symbol, out, origin)
    dupes = out["date"].duplicated()
    if dupes.any():
        raise MalformedResponseError(
            symbol, f"{origin}: date {out['date'][dupes].iloc[0]} appears twice"
        )
    out["volume"] = out["volume"].astype("int64")
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def _check_ranges(symbol: str, out: pd.DataFrame, origin: str) -> None:
    """Prices in [MIN_PRICE, MAX_PRICE), low <= open, close <= high, whole volumes in
    [0, MAX_VOLUME).

    The first failing row is named with its date and values (each message is a template
    filled with that row).
    """
    checks = []
    for column in PRICE_COLUMNS:
        checks += [
            (out[column] <= 0, f"{column} {{{column}}} on {{date}} is not above zero"),
            (
                out[column] < MIN_PRICE,
                f"{column} {{{column}:g}} on {{date}} is below the smallest price {MIN_PRICE:g}",
            ),
            (
                out[column] >= MAX_PRICE,
                f"{column} {{{column}:g}} on {{date}} is not below {MAX_PRICE:g}",
            ),
        ]
    checks.append((out["high"] < out["low"], "high {high} is below low {low} on {date}"))
    for column in ("open", "close"):
        checks.append(
            (
                (out[column] < out["low"]) | (out[column] > out["high"]),
                f"{column} {{{column}}} on {{date}} is outside low {{low}}..high {{high}}",
            )
        )
    checks += [
        (out["volume"] < 0, "volume {volume} on {date} is negative"),
        (
            out["volume"] != np.floor(out["volume"]),
            "volume {volume} on {date} is not a whole number of shares",
        ),
        (
            out["volume"] >= MAX_VOLUME,
            f"volume {{volume:g}} on {{date}} is not below {MAX_VOLUME:g}",
        ),
    ]
    for bad, message in checks:
        if bad.any():
            row = out[bad].iloc[0].to_dict()
            raise MalformedResponseError(symbol, f"{origin}: {message.format(**row)}")


def clip_to_range(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    mask = (frame["date"] >= start) & (frame["date"] <= end)
    return frame.loc[mask].reset_index(drop=True)
