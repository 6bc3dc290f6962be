"""Alpha Vantage's JSON answers read into bars and quotes, every field checked.

Pure functions of one answer's decoded JSON; the wire format they read is described in
:mod:`allocator.shell.marketdata.alphavantage`, which calls them and re-exports them. Every
failure is a :class:`~allocator.exceptions.MalformedResponseError` (or a :class:`VendorError` for
a symbol the vendor does not quote) naming the symbol and the bad value.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from allocator.exceptions import MalformedResponseError, VendorError
from allocator.shell.marketdata.base import MIN_PRICE, validate_bars

FUNCTION = "TIME_SERIES_DAILY"
SERIES_KEY = "Time Series (Daily)"
#: Vendor field name -> our column, in the vendor's order.
BAR_FIELDS = {
    "1. open": "open",
    "2. high": "high",
    "3. low": "low",
    "4. close": "close",
    "5. volume": "volume",
}
ORIGIN = f"Alpha Vantage {FUNCTION}"

QUOTE_FUNCTION = "GLOBAL_QUOTE"
QUOTE_KEY = "Global Quote"
QUOTE_ORIGIN = f"Alpha Vantage {QUOTE_FUNCTION}"
#: Vendor field name -> :class:`Quote` attribute, for the fields a quote must carry.
QUOTE_FIELDS = {
    "02. open": "open",
    "03. high": "high",
    "04. low": "low",
    "05. price": "price",
    "06. volume": "volume",
    "07. latest trading day": "latest_trading_day",
    "08. previous close": "previous_close",
}


@dataclass(frozen=True)
class Quote:
    """One ``GLOBAL_QUOTE`` answer: the latest trading day's prices so far."""

    symbol: str
    latest_trading_day: dt.date
    open: float
    high: float
    low: float
    price: float
    volume: int
    previous_close: float


def parse_daily_series(symbol: str, payload: dict[str, Any]) -> pd.DataFrame:
    """Bars from a ``TIME_SERIES_DAILY`` JSON answer, checked by :func:`validate_bars`.

    Raises :class:`MalformedResponseError` when ``"Time Series (Daily)"`` is missing or not an
    object, when a bar lacks one of ``"1. open"`` ... ``"5. volume"``, or when a value fails
    validation (not a number, not above zero, high below low, duplicate date).
    """
    series = payload.get(SERIES_KEY)
    if not isinstance(series, dict):
        keys = ", ".join(repr(k) for k in payload) or "none"
        raise MalformedResponseError(
            symbol, f"{ORIGIN} answer has no {SERIES_KEY!r} object (keys: {keys})"
        )
    rows = []
    for day, bar in series.items():
        if not isinstance(bar, dict):
            raise MalformedResponseError(symbol, f"{ORIGIN}: bar {day} is not an object")
        missing = [name for name in BAR_FIELDS if name not in bar]
        if missing:
            raise MalformedResponseError(
                symbol,
                f"{ORIGIN}: bar {day} lacks {', '.join(repr(m) for m in missing)}",
            )
        rows.append({"date": day, **{col: bar[name] for name, col in BAR_FIELDS.items()}})
    frame = pd.DataFrame(rows, columns=["date", *BAR_FIELDS.values()])
    return validate_bars(symbol, frame, ORIGIN)


def _quote_body(symbol: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The ``"Global Quote"`` object, checked to be a quote of ``symbol`` with every field."""
    body = payload.get(QUOTE_KEY)
    if not isinstance(body, dict):
        keys = ", ".join(repr(k) for k in payload) or "none"
        raise MalformedResponseError(
            symbol, f"{QUOTE_ORIGIN} answer has no {QUOTE_KEY!r} object (keys: {keys})"
        )
    if not body:
        raise VendorError(
            symbol, f"{QUOTE_ORIGIN} has no quote for this symbol (empty {QUOTE_KEY!r}); check it"
        )
    quoted = str(body.get("01. symbol", symbol))
    if quoted.upper() != symbol.upper():
        raise MalformedResponseError(symbol, f"{QUOTE_ORIGIN} answered for {quoted!r}")
    missing = [name for name in QUOTE_FIELDS if name not in body]
    if missing:
        raise MalformedResponseError(
            symbol, f"{QUOTE_ORIGIN}: quote lacks {', '.join(repr(m) for m in missing)}"
        )
    return body


def _quote_day(symbol: str, body: dict[str, Any]) -> dt.date:
    """The quote's ``"07. latest trading day"`` as a date."""
    raw_day = body["07. latest trading day"]
    try:
        return dt.date.fromisoformat(str(raw_day))
    except ValueError:
        raise MalformedResponseError(
            symbol, f"{QUOTE_ORIGIN}: latest trading day {raw_day!r} is not a date"
        ) from None


def _quote_values(symbol: str, body: dict[str, Any], day: dt.date) -> dict[str, float]:
    """The quote's numbers by :class:`Quote` attribute, each checked to be a finite number."""
    values: dict[str, float] = {}
    for name, attribute in QUOTE_FIELDS.items():
        if attribute == "latest_trading_day":
            continue
        raw = body[name]
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise MalformedResponseError(
                symbol, f"{QUOTE_ORIGIN}: {attribute} {raw!r} on {day} is not a number"
            )
        values[attribute] = value
    return values


def _check_quote_prices(symbol: str, values: dict[str, float], raw_open: Any, day: dt.date) -> None:
    """Only the open fills orders: it must be a real price; the rest must merely be sane."""
    if values["open"] <= 0:
        raise MalformedResponseError(
            symbol, f"{QUOTE_ORIGIN}: open {raw_open!r} on {day} is not above zero"
        )
    if values["open"] < MIN_PRICE:
        raise MalformedResponseError(
            symbol,
            f"{QUOTE_ORIGIN}: open {raw_open!r} on {day} is below the smallest price {MIN_PRICE:g}",
        )
    negative = [a for a, v in values.items() if v < 0]
    if negative:
        raise MalformedResponseError(
            symbol, f"{QUOTE_ORIGIN}: {negative[0]} {values[negative[0]]} on {day} is negative"
        )
    if values["high"] < values["low"]:
        raise MalformedResponseError(
            symbol, f"{QUOTE_ORIGIN}: high {values['high']} is below low {values['low']} on {day}"
        )


def parse_global_quote(symbol: str, payload: dict[str, Any]) -> Quote:
    """A :class:`Quote` from a ``GLOBAL_QUOTE`` JSON answer.

    Raises :class:`VendorError` when the vendor has no quote for ``symbol`` (``"Global Quote"``
    is empty, its answer to an unknown symbol), and :class:`MalformedResponseError` when the
    object is missing, names another symbol or lacks a field, when the date does not parse, a
    value is not a number or is negative, the open is not above zero, or high is below low.
    """
    body = _quote_body(symbol, payload)
    day = _quote_day(symbol, body)
    values = _quote_values(symbol, body, day)
    _check_quote_prices(symbol, values, body["02. open"], day)
    return Quote(
        symbol=symbol,
        latest_trading_day=day,
        open=values["open"],
        high=values["high"],
        low=values["low"],
        price=values["price"],
        volume=round(values["volume"]),
        previous_close=values["previous_close"],
    )
