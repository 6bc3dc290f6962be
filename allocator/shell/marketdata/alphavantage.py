"""Daily bars (``TIME_SERIES_DAILY``) and live opens (``GLOBAL_QUOTE``) from Alpha Vantage.

What the vendor does (checked against its answers, see DESIGN.md "Facts worth knowing"):

- One GET to ``https://www.alphavantage.co/query`` with ``function=TIME_SERIES_DAILY``, ``symbol``,
  ``outputsize`` and ``apikey`` returns one symbol's unadjusted daily bars as JSON:
  ``{"Meta Data": {...}, "Time Series (Daily)": {"YYYY-MM-DD": {"1. open": "123.4500", ...,
  "5. volume": "123456"}}}``, newest date first, every value a string.
- ``outputsize=compact`` (the vendor's default) returns the latest 100 bars. ``outputsize=full``
  returns the whole history but is a premium feature: a free key gets an ``Information`` body
  instead of data.
- Almost every refusal comes back as **HTTP 200** with a one-key JSON body:
  ``"Error Message"`` (invalid call, unknown symbol, bad or missing key), ``"Information"`` (rate
  limits and premium-only features) or the older ``"Note"`` (per-minute limit). A free key allows
  25 requests a day and refuses bursts of more than about one request a second.
- ``function=GLOBAL_QUOTE`` with ``symbol`` and ``apikey`` returns the latest trading day's prices
  so far: ``{"Global Quote": {"01. symbol": "SPY", "02. open": "512.1300", "03. high": ...,
  "04. low": ..., "05. price": ..., "06. volume": "123456", "07. latest trading day":
  "YYYY-MM-DD", "08. previous close": ..., "09. change": ..., "10. change percent": "0.1234%"}}``.
  Before a session's first trade it still quotes the previous session. An unknown symbol gets
  ``{"Global Quote": {}}``, not an ``Error Message``. It counts against the same request limits.
- The daily-limit text quotes the caller's API key ("We have detected your API key as ..."), so
  every vendor text is redacted before it reaches an exception or a log line.

This module holds what is particular to the vendor's calls: its refusals, the bar source and the
quote source. The HTTP client (spacing, retries, typed failures, redaction) is
:mod:`.vendor_http`; the answers' parsers are :mod:`.alphavantage_parsers`, re-exported here.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pandas as pd

from allocator.exceptions import (
    MarketDataError,
    PremiumRequiredError,
    RateLimitError,
    SettingsError,
    VendorError,
)
from allocator.shell.marketdata.alphavantage_parsers import (
    BAR_FIELDS,
    FUNCTION,
    ORIGIN,
    QUOTE_FIELDS,
    QUOTE_FUNCTION,
    QUOTE_KEY,
    QUOTE_ORIGIN,
    SERIES_KEY,
    Quote,
    parse_daily_series,
    parse_global_quote,
)
from allocator.shell.marketdata.base import clip_to_range
from allocator.shell.marketdata.vendor_http import (
    VendorAPI,
    VendorClient,
    VendorClientSettings,
    mask_urllib3_logs,
)
from allocator.shell.settings import (
    ALPHAVANTAGE_DEFAULT_BACKOFF,
    ALPHAVANTAGE_DEFAULT_DELAY,
    ALPHAVANTAGE_DEFAULT_RETRIES,
    ALPHAVANTAGE_DEFAULT_URL,
    Settings,
    mask_url,
)

# The parsers and answer constants live in .alphavantage_parsers and the HTTP client in
# .vendor_http; callers import them from here, the vendor's one public module.
__all__ = [
    "BAR_FIELDS",
    "COMPACT_BARS",
    "FUNCTION",
    "ORIGIN",
    "OUTPUT_SIZES",
    "QUOTE_FIELDS",
    "QUOTE_FUNCTION",
    "QUOTE_KEY",
    "QUOTE_ORIGIN",
    "SERIES_KEY",
    "AlphaVantageQuotes",
    "AlphaVantageSource",
    "Quote",
    "classify_notice",
    "mask_urllib3_logs",
    "parse_daily_series",
    "parse_global_quote",
]

logger = logging.getLogger(__name__)

OUTPUT_SIZES = ("compact", "full")
#: How many bars ``outputsize=compact`` returns.
COMPACT_BARS = 100

# Words that mark a refusal that clears on its own within seconds. Checked before the daily and
# premium markers because the vendor's burst text also mentions "25 requests per day" and
# "premium endpoints".
_BURST_MARKERS = ("per second", "per minute", "spreading out", "sparingly", "burst", "frequency")
_PREMIUM_MARKERS = ("premium feature", "premium endpoint", "premium function")
_DAILY_MARKERS = ("per day", "daily rate limit", "daily limit")


def classify_notice(text: str) -> str:
    """Sort an ``Information``/``Note`` text into ``burst``, ``premium``, ``daily`` or ``unknown``.

    ``burst``: the per-second or per-minute limit (worth retrying after a pause). ``premium``: the
    request needs a paid plan (``outputsize=full``, premium endpoints). ``daily``: the free key's
    25 requests a day are spent; waiting seconds does not help.
    """
    lowered = text.lower()
    if any(marker in lowered for marker in _BURST_MARKERS):
        return "burst"
    if any(marker in lowered for marker in _PREMIUM_MARKERS):
        return "premium"
    if any(marker in lowered for marker in _DAILY_MARKERS):
        return "daily"
    return "unknown"


#: The client's view of the vendor: names for messages, defaults, how the key is sent, where to log.
ALPHA_VANTAGE = VendorAPI(
    name="Alpha Vantage",
    key_variable="ALPHAVANTAGE_API_KEY",
    url_variable="ALPHAVANTAGE_BASE_URL",
    default_url=ALPHAVANTAGE_DEFAULT_URL,
    default_delay=ALPHAVANTAGE_DEFAULT_DELAY,
    default_max_retries=ALPHAVANTAGE_DEFAULT_RETRIES,
    default_backoff=ALPHAVANTAGE_DEFAULT_BACKOFF,
    key_param="apikey",
    fixed_params={"datatype": "json"},
    log=logger,
)


class _VendorClient(VendorClient):
    """Calls to Alpha Vantage with one key: :class:`VendorClient` plus the vendor's refusals.

    :class:`AlphaVantageSource` and :class:`AlphaVantageQuotes` both call the vendor through
    this class, so a quote and a bar refusal read the same and are retried the same way.
    """

    def call(
        self, symbol: str, params: dict[str, str], *, data_key: str, premium_hint: str
    ) -> dict[str, Any]:
        """The JSON object the vendor answers to ``params`` (``function``, ``symbol``, ...).

        Retries transient failures; raises the last :class:`MarketDataError` otherwise.
        ``data_key`` names the object that holds the data (an answer with it is data even when
        a notice rides along); ``premium_hint`` is what a premium refusal tells the user to do.
        """

        def check(payload: dict[str, Any]) -> None:
            self._raise_for_vendor_message(symbol, payload, data_key, premium_hint)

        return self.get_json(
            symbol, params, origin=f"Alpha Vantage {params['function']}", check=check
        )

    def _raise_for_vendor_message(
        self, symbol: str, payload: dict[str, Any], data_key: str, premium_hint: str
    ) -> None:
        """Turn the vendor's HTTP-200 refusals into typed errors; pass data through."""
        if "Error Message" in payload:
            text = self.quote(payload["Error Message"])
            hint = (
                "check ALPHAVANTAGE_API_KEY"
                if "apikey" in text.lower()
                else "check the symbol and the request"
            )
            raise VendorError(symbol, f'Alpha Vantage refused the call: "{text}"; {hint}')
        notice_key = next((k for k in ("Information", "Note") if k in payload), None)
        if notice_key is None:
            return
        text = self.quote(payload[notice_key])
        if data_key in payload:
            # Data plus a notice (the demo key does this): the data is what was asked for.
            logger.warning("%s: Alpha Vantage %s: %s", symbol, notice_key, text)
            return
        kind = classify_notice(text)
        if kind == "burst":
            raise RateLimitError(
                symbol,
                f'Alpha Vantage per-second/per-minute limit: "{text}"; '
                "raise ALPHAVANTAGE_CALL_DELAY if this repeats",
                transient=True,
            )
        if kind == "daily":
            raise RateLimitError(
                symbol,
                f'Alpha Vantage daily request limit reached: "{text}"; retry after the vendor\'s '
                "daily reset, use a premium key, or import bars with --source csv",
                transient=False,
            )
        if kind == "premium":
            raise PremiumRequiredError(
                symbol,
                f'Alpha Vantage requires a premium plan for this request: "{text}"; {premium_hint}',
            )
        raise VendorError(symbol, f'Alpha Vantage refused the call ({notice_key}): "{text}"')


def _arguments_from(settings: Settings) -> dict[str, Any]:
    """The constructor arguments the ``ALPHAVANTAGE_*`` settings give (the key is required).

    Raises :class:`SettingsError` naming ``ALPHAVANTAGE_API_KEY`` when no key is set.
    """
    return {
        "api_key": settings.require_api_key(),
        "base_url": settings.alphavantage_base_url,
        "delay": settings.alphavantage_delay,
        "timeout": settings.alphavantage_timeout,
        "max_retries": settings.alphavantage_max_retries,
        "backoff": settings.alphavantage_backoff,
    }


class AlphaVantageSource(VendorClientSettings):
    """Daily OHLCV bars of one symbol per call from Alpha Vantage (:class:`MarketDataSource`).

    Parameters
    ----------
    api_key, base_url, delay, timeout, max_retries, backoff, session, sleep, clock:
        As for every vendor (:class:`VendorClientSettings`). The key is sent as the ``apikey``
        query parameter; ``base_url`` is the vendor's query URL (``ALPHAVANTAGE_BASE_URL``). The
        transient failures retried are HTTP 5xx and 429, timeouts, dropped connections and the
        per-second/per-minute limit.
    outputsize:
        ``compact`` (latest 100 bars, free) or ``full`` (whole history, premium keys only).
    """

    name = "alphavantage"
    api = ALPHA_VANTAGE
    client_class = _VendorClient
    _client: _VendorClient

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        outputsize: str = "compact",
        **options: Any,
    ):
        if outputsize not in OUTPUT_SIZES:
            raise SettingsError(
                f"outputsize={outputsize!r} is not valid: use 'compact' (latest 100 bars) "
                "or 'full' (whole history, premium keys only)"
            )
        super().__init__(api_key, base_url, **options)
        self.outputsize = outputsize

    @classmethod
    def from_settings(cls, settings: Settings, outputsize: str = "compact") -> AlphaVantageSource:
        """A source built from the ``ALPHAVANTAGE_*`` settings.

        Raises :class:`SettingsError` naming ``ALPHAVANTAGE_API_KEY`` when no key is set.
        """
        return cls(**_arguments_from(settings), outputsize=outputsize)

    def __repr__(self) -> str:
        return (
            f"AlphaVantageSource(base_url={mask_url(self.base_url)!r}, "
            f"outputsize={self.outputsize!r}, delay={self.delay})"
        )

    # -- the MarketDataSource interface --------------------------------------------------------

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Bars of ``symbol`` dated within [start, end], validated and sorted by date.

        One vendor call (plus retries of transient failures). With ``outputsize=compact`` the
        vendor only has the latest 100 bars; older dates in the range are simply absent, and a
        warning says so.
        """
        if start > end:
            raise ValueError(f"{symbol}: start {start} is after end {end}")
        payload = self._client.call(
            symbol,
            {"function": FUNCTION, "symbol": symbol, "outputsize": self.outputsize},
            data_key=SERIES_KEY,
            premium_hint=(
                "use outputsize=compact (latest 100 bars) or import history with --source csv"
            ),
        )
        bars = parse_daily_series(symbol, payload)
        if (
            self.outputsize == "compact"
            and len(bars) >= COMPACT_BARS
            and bars["date"].iloc[0] > start
        ):
            logger.warning(
                "%s: outputsize=compact returns only the latest %d bars, the oldest dated %s; "
                "bars from %s are not available (use a premium key with outputsize=full, "
                "or --source csv)",
                symbol,
                COMPACT_BARS,
                bars["date"].iloc[0],
                start,
            )
        clipped = clip_to_range(bars, start, end)
        logger.info(
            "%s: %d bar(s) from Alpha Vantage within %s..%s (outputsize=%s)",
            symbol,
            len(clipped),
            start,
            end,
            self.outputsize,
        )
        return clipped


class AlphaVantageQuotes(VendorClientSettings):
    """Official opens from Alpha Vantage's ``GLOBAL_QUOTE``, for the 9:30 execute job.

    Implements :class:`allocator.jobs.execute.QuoteSource`. A symbol's open is returned only
    when the quote's ``"07. latest trading day"`` is the day asked for: before the open the
    vendor still quotes the previous session, and that open must never fill today's orders. A
    symbol without a usable quote (the day has not started, any vendor failure) is left out with
    a warning, so its orders stay pending for the fetch job; this never fails the execution.

    Parameters are those of :class:`AlphaVantageSource` (without ``outputsize``).
    """

    name = "alphavantage"
    api = ALPHA_VANTAGE
    client_class = _VendorClient
    _client: _VendorClient

    @classmethod
    def from_settings(cls, settings: Settings) -> AlphaVantageQuotes:
        """Quotes built from the ``ALPHAVANTAGE_*`` settings (the key is required)."""
        return cls(**_arguments_from(settings))

    def quote(self, symbol: str) -> Quote:
        """The vendor's latest quote of ``symbol``; raises :class:`MarketDataError` subclasses."""
        payload = self._client.call(
            symbol,
            {"function": QUOTE_FUNCTION, "symbol": symbol},
            data_key=QUOTE_KEY,
            premium_hint="the orders stay pending until the fetch job stores the day's bar",
        )
        return parse_global_quote(symbol, payload)

    def official_opens(self, symbols: list[str], day: dt.date) -> dict[str, float]:
        """The open of ``day`` for each symbol the vendor already quotes on ``day``."""
        opens: dict[str, float] = {}
        for symbol in symbols:
            try:
                quote = self.quote(symbol)
            except MarketDataError as exc:
                logger.warning("%s; its orders of %s stay pending", exc, day)
                continue
            if quote.latest_trading_day != day:
                logger.warning(
                    "%s: Alpha Vantage quotes %s, not %s (no open yet); its orders of %s stay "
                    "pending",
                    symbol,
                    quote.latest_trading_day,
                    day,
                    day,
                )
                continue
            opens[symbol] = quote.open
            logger.info(
                "%s: open of %s from Alpha Vantage GLOBAL_QUOTE: %.4f", symbol, day, quote.open
            )
        return opens
