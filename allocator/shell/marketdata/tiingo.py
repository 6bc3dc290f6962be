"""Daily bars from Tiingo's end-of-day API: years of history on a free token.

What the vendor does (its end-of-day documentation, and DESIGN.md "Facts worth knowing"):

- ``GET https://api.tiingo.com/tiingo/daily/<ticker>/prices?startDate=YYYY-MM-DD&endDate=
  YYYY-MM-DD&format=json`` with the header ``Authorization: Token <key>`` returns a JSON array,
  oldest first, one object per session: ``{"date": "2024-01-02T00:00:00.000Z", "close": ...,
  "high": ..., "low": ..., "open": ..., "volume": ..., "adjClose": ..., "adjHigh": ...,
  "adjLow": ..., "adjOpen": ..., "adjVolume": ..., "divCash": ..., "splitFactor": ...}``,
  every value a JSON number. A known ticker without a bar in the range answers ``[]``.
- One request returns the whole range: a 20-year backfill of SPY, QQQ and DIA is 3 requests.
- The free plan allows about 50 requests an hour, 1,000 a day and 500 distinct symbols a month.
- Refusals are HTTP errors with a JSON ``{"detail": "..."}`` body: 401 or 403 for a bad or
  missing token, 404 ``"Error: Ticker 'XYZ' not found"`` for an unknown ticker, 429 for the rate
  limits (its text, sometimes plain rather than JSON, names the hourly or daily allocation or
  the monthly symbol count). The same ``detail`` object has been seen with HTTP 200 too.
- A refused token or a spent hourly, daily or monthly allocation refuses every symbol after it
  too: those errors stop the ingest (``stops_source``), so no more of the quota is spent.

This source stores the **raw** prices (``open`` ... ``volume``), the same basis as Alpha
Vantage's ``TIME_SERIES_DAILY`` and the CSV files, never the split- and dividend-adjusted ones.
The key travels only in the header, so it is in no URL and no log line. Spacing, retries and
redaction are :mod:`.vendor_http`'s.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any
from urllib.parse import quote

import pandas as pd
import requests

from allocator.exceptions import (
    MalformedResponseError,
    MarketDataError,
    RateLimitError,
    VendorError,
)
from allocator.shell.marketdata.base import BAR_COLUMNS, clip_to_range, empty_bars, validate_bars
from allocator.shell.marketdata.vendor_http import VendorAPI, VendorClient, VendorClientSettings
from allocator.shell.settings import (
    TIINGO_DEFAULT_BACKOFF,
    TIINGO_DEFAULT_DELAY,
    TIINGO_DEFAULT_RETRIES,
    TIINGO_DEFAULT_URL,
    Settings,
)

__all__ = [
    "ORIGIN",
    "TIINGO",
    "TiingoSource",
    "classify_limit",
    "parse_daily_prices",
    "prices_path",
]

logger = logging.getLogger(__name__)

ORIGIN = "Tiingo daily prices"

#: The client's view of the vendor: names for messages, defaults, the key in a header, where to log.
TIINGO = VendorAPI(
    name="Tiingo",
    key_variable="TIINGO_API_KEY",
    url_variable="TIINGO_BASE_URL",
    default_url=TIINGO_DEFAULT_URL,
    default_delay=TIINGO_DEFAULT_DELAY,
    default_max_retries=TIINGO_DEFAULT_RETRIES,
    default_backoff=TIINGO_DEFAULT_BACKOFF,
    key_param=None,
    key_header="Authorization",
    key_scheme="Token",
    fixed_params={"format": "json"},
    log=logger,
)

_KEY_HINT = "check TIINGO_API_KEY (the token on tiingo.com under Account > API)"
_RERUN = "a re-run stores only what is missing"


def prices_path(symbol: str) -> str:
    """The URL path of ``symbol``'s daily prices (share classes are written ``BRK-B``)."""
    return f"/tiingo/daily/{quote(symbol.replace('.', '-'), safe='')}/prices"


def classify_limit(text: str) -> str:
    """Sort a rate-limit text into ``hourly``, ``daily``, ``monthly`` or ``unknown``.

    ``hourly``/``daily``: the plan's requests of the hour or the day are spent. ``monthly``: the
    plan's distinct symbols of the month are spent. Waiting seconds clears none of them.
    """
    lowered = text.lower()
    if "symbol" in lowered and "month" in lowered:
        return "monthly"
    if "hour" in lowered:
        return "hourly"
    if any(word in lowered for word in ("daily", "per day", "a day")):
        return "daily"
    return "unknown"


_LIMIT_ADVICE = {
    "hourly": f"wait up to an hour, then re-run ({_RERUN})",
    "daily": f"re-run after the daily reset ({_RERUN})",
    "monthly": "the free plan serves 500 distinct symbols a month: wait for next month",
}


def detail_of(text: str) -> str:
    """The ``detail`` of a Tiingo error body, or the body itself when it is not that JSON."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text
    if isinstance(payload, dict) and isinstance(payload.get("detail"), str):
        return payload["detail"]
    return text


def _is_rate_limit(text: str) -> bool:
    lowered = text.lower()
    return "allocation" in lowered or "rate limit" in lowered or "too many" in lowered


def parse_daily_prices(symbol: str, payload: list[Any]) -> pd.DataFrame:
    """The raw OHLCV bars of a ``/prices`` answer, validated by :func:`validate_bars`.

    The adjusted fields (``adjClose`` ...) are ignored. Raises :class:`MalformedResponseError`
    naming the first row that is not an object or lacks a raw field.
    """
    if not payload:
        return empty_bars()
    rows = []
    for i, row in enumerate(payload):
        if not isinstance(row, dict):
            raise MalformedResponseError(
                symbol, f"{ORIGIN}: row {i} is {row!r}, not an object; re-run later"
            )
        missing = [c for c in BAR_COLUMNS if c not in row]
        if missing:
            raise MalformedResponseError(
                symbol,
                f"{ORIGIN}: bar {str(row.get('date', f'#{i}'))[:10]} lacks "
                f"{', '.join(repr(c) for c in missing)}; re-run later or use another source",
            )
        rows.append({c: row[c] for c in BAR_COLUMNS})
    # object dtype keeps a JSON null as None, so the message quotes it rather than "nan"
    frame = pd.DataFrame(rows, columns=list(BAR_COLUMNS), dtype=object)
    return validate_bars(symbol, frame, ORIGIN)


def _stops(error: MarketDataError) -> MarketDataError:
    """``error``, marked as refusing every later symbol too (see ``stops_source``)."""
    error.stops_source = True
    return error


class _TiingoClient(VendorClient):
    """Calls to Tiingo with one token: :class:`VendorClient` plus the vendor's refusals."""

    def daily_prices(self, symbol: str, start: dt.date, end: dt.date) -> list[Any]:
        """The ``/prices`` rows of ``symbol`` dated in [start, end], oldest first."""

        def refusal(response: requests.Response) -> None:
            self._raise_for_refusal(symbol, response.status_code, response.text)

        def check(payload: Any) -> None:
            if isinstance(payload, dict):
                self._raise_for_refusal(symbol, 200, json.dumps(payload))

        return self.get_json(
            symbol,
            {"startDate": start.isoformat(), "endDate": end.isoformat()},
            origin=ORIGIN,
            check=check,
            path=prices_path(symbol),
            refusal=refusal,
            json_types=(list, dict),
        )

    def _raise_for_refusal(self, symbol: str, status: int, body: str) -> None:
        """Typed errors for Tiingo's refusals; lets 5xx and unknown 4xx through to the client."""
        if status >= 500:
            return  # the client retries it as a transient failure
        text = self.quote(detail_of(body))
        lowered = text.lower()
        said = (
            f'Tiingo answered HTTP {status}: "{text}"' if text else f"Tiingo answered HTTP {status}"
        )
        if status in (401, 403) or "token" in lowered:
            raise _stops(VendorError(symbol, f"Tiingo refused the token ({said}); {_KEY_HINT}"))
        if "not found" in lowered and "ticker" in lowered:
            raise VendorError(
                symbol,
                f"Tiingo does not know the ticker {symbol} ({said}); check the symbol, or load "
                "it with another source",
            )
        if status == 429 or _is_rate_limit(text):
            kind = classify_limit(text)
            if kind in _LIMIT_ADVICE:
                raise _stops(
                    RateLimitError(
                        symbol,
                        f"Tiingo {kind} limit reached ({said}); {_LIMIT_ADVICE[kind]}",
                        transient=False,
                    )
                )
            raise RateLimitError(
                symbol,
                f"Tiingo rate limit ({said}); raise TIINGO_CALL_DELAY if this repeats",
                transient=True,
            )
        if status == 200:
            raise MalformedResponseError(
                symbol, f"{ORIGIN} answer is an object, not a list of bars ({said}); re-run later"
            )


class TiingoSource(VendorClientSettings):
    """Daily raw OHLCV bars of one symbol per call from Tiingo (:class:`MarketDataSource`).

    Parameters are those of every vendor (:class:`VendorClientSettings`). The token is sent in
    the ``Authorization: Token`` header only, so it never appears in a URL either; ``base_url``
    is the API's root (``TIINGO_BASE_URL``). One call returns a symbol's whole range, so a
    backfill makes one call per symbol. The transient failures retried are HTTP 5xx, a 429 that
    names no hourly/daily/monthly limit, timeouts and dropped connections.
    """

    name = "tiingo"
    api = TIINGO
    client_class = _TiingoClient
    _client: _TiingoClient

    @classmethod
    def from_settings(cls, settings: Settings) -> TiingoSource:
        """A source built from the ``TIINGO_*`` settings.

        Raises :class:`SettingsError` naming ``TIINGO_API_KEY`` when no key is set.
        """
        return cls(
            settings.require_tiingo_key(),
            settings.tiingo_base_url,
            delay=settings.tiingo_delay,
            timeout=settings.tiingo_timeout,
            max_retries=settings.tiingo_max_retries,
            backoff=settings.tiingo_backoff,
        )

    # -- the MarketDataSource interface --------------------------------------------------------

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Raw bars of ``symbol`` dated within [start, end], validated and sorted by date.

        One vendor call (plus retries of transient failures) for the whole range.
        """
        if start > end:
            raise ValueError(f"{symbol}: start {start} is after end {end}")
        bars = clip_to_range(
            parse_daily_prices(symbol, self._client.daily_prices(symbol, start, end)), start, end
        )
        if bars.empty:
            logger.warning(
                "%s: Tiingo has no bar within %s..%s (listed later, or delisted?)",
                symbol,
                start,
                end,
            )
        logger.info("%s: %d bar(s) from Tiingo within %s..%s", symbol, len(bars), start, end)
        return bars
