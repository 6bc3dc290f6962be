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
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import requests

from allocator.exceptions import (
    MalformedResponseError,
    MarketDataError,
    PremiumRequiredError,
    RateLimitError,
    SettingsError,
    TransientVendorError,
    VendorError,
)
from allocator.shell.marketdata.base import clip_to_range, validate_bars
from allocator.shell.settings import (
    ALPHAVANTAGE_DEFAULT_BACKOFF,
    ALPHAVANTAGE_DEFAULT_DELAY,
    ALPHAVANTAGE_DEFAULT_RETRIES,
    ALPHAVANTAGE_DEFAULT_URL,
    Settings,
    mask_url,
)

logger = logging.getLogger(__name__)

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
OUTPUT_SIZES = ("compact", "full")
#: How many bars ``outputsize=compact`` returns.
COMPACT_BARS = 100
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

# Words that mark a refusal that clears on its own within seconds. Checked before the daily and
# premium markers because the vendor's burst text also mentions "25 requests per day" and
# "premium endpoints".
_BURST_MARKERS = ("per second", "per minute", "spreading out", "sparingly", "burst", "frequency")
_PREMIUM_MARKERS = ("premium feature", "premium endpoint", "premium function")
_DAILY_MARKERS = ("per day", "daily rate limit", "daily limit")
_QUOTE_LIMIT = 500


class _MaskApiKeys(logging.Filter):
    """Rewrites a record's message through :func:`mask_url` (urllib3 logs full request URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_url(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_urllib3_logs() -> None:
    """Mask ``apikey=`` in urllib3's DEBUG lines, which quote every request URL in full."""
    urllib3_logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _MaskApiKeys) for f in urllib3_logger.filters):
        urllib3_logger.addFilter(_MaskApiKeys())


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


class _VendorClient:
    """Calls to Alpha Vantage with one key: call spacing, retries and typed errors.

    :class:`AlphaVantageSource` and :class:`AlphaVantageQuotes` both call the vendor through
    this class, so a quote and a bar refusal read the same and are retried the same way. The
    parameters are those of :class:`AlphaVantageSource`.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        delay: float,
        timeout: float,
        max_retries: int,
        backoff: float,
        session: requests.Session | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ):
        if not api_key:
            raise SettingsError("ALPHAVANTAGE_API_KEY is empty: export it or add it to .env")
        if delay < 0 or timeout <= 0 or max_retries < 0 or backoff < 0:
            raise SettingsError(
                "Alpha Vantage delay, backoff and max_retries must be >= 0 and timeout > 0 "
                f"(got delay={delay}, timeout={timeout}, max_retries={max_retries}, "
                f"backoff={backoff})"
            )
        self._api_key = api_key
        self.base_url = base_url
        self.delay = float(delay)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._last_call: float | None = None
        mask_urllib3_logs()

    def close(self) -> None:
        self._session.close()

    def call(
        self, symbol: str, params: dict[str, str], *, data_key: str, premium_hint: str
    ) -> dict[str, Any]:
        """The JSON object the vendor answers to ``params`` (``function``, ``symbol``, ...).

        Retries transient failures; raises the last :class:`MarketDataError` otherwise.
        ``data_key`` names the object that holds the data (an answer with it is data even when
        a notice rides along); ``premium_hint`` is what a premium refusal tells the user to do.
        """
        attempt = 0
        while True:
            try:
                return self._call_once(symbol, params, data_key, premium_hint)
            except MarketDataError as exc:
                if not exc.transient or attempt >= self.max_retries:
                    raise
                wait = self.backoff * 2**attempt
                attempt += 1
                logger.warning("%s; retry %d of %d in %.1f s", exc, attempt, self.max_retries, wait)
                self._sleep(wait)

    def _wait_for_slot(self) -> None:
        """Sleep only what is left of ``delay`` since the previous call started."""
        if self._last_call is not None and self.delay > 0:
            remaining = self.delay - (self._clock() - self._last_call)
            if remaining > 0:
                logger.debug("waiting %.2f s between Alpha Vantage calls", remaining)
                self._sleep(remaining)
        self._last_call = self._clock()

    def _call_once(
        self, symbol: str, params: dict[str, str], data_key: str, premium_hint: str
    ) -> dict[str, Any]:
        query = {**params, "apikey": self._api_key, "datatype": "json"}
        self._wait_for_slot()
        try:
            request = requests.Request("GET", self.base_url, params=query).prepare()
            logger.debug("GET %s", mask_url(request.url or self.base_url))
            response = self._session.get(self.base_url, params=query, timeout=self.timeout)
        except requests.Timeout:
            raise TransientVendorError(
                symbol,
                f"Alpha Vantage did not answer within {self.timeout:g} s "
                f"({mask_url(self.base_url)})",
            ) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise VendorError(
                symbol,
                f"cannot call {mask_url(self.base_url)!r}: {self.redact(str(exc))}; "
                "check ALPHAVANTAGE_BASE_URL",
            ) from None
        except requests.RequestException as exc:
            raise TransientVendorError(
                symbol,
                f"connection to Alpha Vantage failed ({mask_url(self.base_url)}): "
                f"{self.redact(str(exc))}",
            ) from None
        origin = f"Alpha Vantage {params['function']}"
        payload = self._read_response(symbol, response, origin)
        self._raise_for_vendor_message(symbol, payload, data_key, premium_hint)
        return payload

    def _read_response(
        self, symbol: str, response: requests.Response, origin: str
    ) -> dict[str, Any]:
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientVendorError(
                symbol, f'Alpha Vantage answered HTTP {status}: "{self.quote(response.text)}"'
            )
        if status >= 400:
            raise VendorError(
                symbol,
                f'Alpha Vantage answered HTTP {status}: "{self.quote(response.text)}"; '
                "check ALPHAVANTAGE_BASE_URL",
            )
        try:
            payload = json.loads(response.text)
        except ValueError:
            raise MalformedResponseError(
                symbol, f'{origin} answer is not JSON: "{self.quote(response.text)}"'
            ) from None
        if not isinstance(payload, dict):
            raise MalformedResponseError(
                symbol, f'{origin} answer is not a JSON object: "{self.quote(response.text)}"'
            )
        return payload

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

    # -- redaction ----------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` without the API key, wherever the vendor or a library echoed it."""
        return mask_url(str(text)).replace(self._api_key, "***")

    def quote(self, text: Any) -> str:
        """Vendor text for a message: redacted, on one line, at most a few hundred characters."""
        flat = " ".join(self.redact(str(text)).split())
        return flat if len(flat) <= _QUOTE_LIMIT else flat[: _QUOTE_LIMIT - 3] + "..."


class _ClientSettings:
    """The call settings of an object that talks to the vendor through ``self._client``."""

    _client: _VendorClient

    @property
    def base_url(self) -> str:
        return self._client.base_url

    @property
    def delay(self) -> float:
        return self._client.delay

    @property
    def timeout(self) -> float:
        return self._client.timeout

    @property
    def max_retries(self) -> int:
        return self._client.max_retries

    @property
    def backoff(self) -> float:
        return self._client.backoff

    def close(self) -> None:
        """Close the HTTP session's pooled connections."""
        self._client.close()


class AlphaVantageSource(_ClientSettings):
    """Daily OHLCV bars of one symbol per call from Alpha Vantage (:class:`MarketDataSource`).

    Parameters
    ----------
    api_key:
        The Alpha Vantage key. It is sent as the ``apikey`` query parameter and never appears in
        an exception message, a log line or ``repr``.
    base_url:
        The vendor's query URL (``ALPHAVANTAGE_BASE_URL``); tests point it at a local fake.
    delay:
        Minimum seconds between the starts of two consecutive calls (retries included). Only the
        part not already elapsed is slept.
    timeout:
        Seconds to wait for the vendor to connect and to answer.
    outputsize:
        ``compact`` (latest 100 bars, free) or ``full`` (whole history, premium keys only).
    max_retries:
        Retries after the first call, for transient failures only (HTTP 5xx and 429, timeouts,
        dropped connections, the per-second/per-minute limit). Retry ``n`` (from 0) waits
        ``backoff * 2**n`` seconds first.
    session, sleep, clock:
        Injected for tests: a ``requests.Session``, ``time.sleep`` and ``time.monotonic``.
    """

    name = "alphavantage"

    def __init__(
        self,
        api_key: str,
        base_url: str = ALPHAVANTAGE_DEFAULT_URL,
        *,
        delay: float = ALPHAVANTAGE_DEFAULT_DELAY,
        timeout: float = 30.0,
        outputsize: str = "compact",
        max_retries: int = ALPHAVANTAGE_DEFAULT_RETRIES,
        backoff: float = ALPHAVANTAGE_DEFAULT_BACKOFF,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        if outputsize not in OUTPUT_SIZES:
            raise SettingsError(
                f"outputsize={outputsize!r} is not valid: use 'compact' (latest 100 bars) "
                "or 'full' (whole history, premium keys only)"
            )
        self._client = _VendorClient(
            api_key,
            base_url,
            delay=delay,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            session=session,
            sleep=sleep,
            clock=clock,
        )
        self.outputsize = outputsize

    @classmethod
    def from_settings(cls, settings: Settings, outputsize: str = "compact") -> AlphaVantageSource:
        """A source built from the ``ALPHAVANTAGE_*`` settings.

        Raises :class:`SettingsError` naming ``ALPHAVANTAGE_API_KEY`` when no key is set.
        """
        return cls(
            settings.require_api_key(),
            settings.alphavantage_base_url,
            delay=settings.alphavantage_delay,
            timeout=settings.alphavantage_timeout,
            outputsize=outputsize,
            max_retries=settings.alphavantage_max_retries,
            backoff=settings.alphavantage_backoff,
        )

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


class AlphaVantageQuotes(_ClientSettings):
    """Official opens from Alpha Vantage's ``GLOBAL_QUOTE``, for the 9:30 execute job.

    Implements :class:`allocator.jobs.execute.QuoteSource`. A symbol's open is returned only
    when the quote's ``"07. latest trading day"`` is the day asked for: before the open the
    vendor still quotes the previous session, and that open must never fill today's orders. A
    symbol without a usable quote (the day has not started, any vendor failure) is left out with
    a warning, so its orders stay pending for the fetch job; this never fails the execution.

    Parameters are those of :class:`AlphaVantageSource` (without ``outputsize``).
    """

    name = "alphavantage"

    def __init__(
        self,
        api_key: str,
        base_url: str = ALPHAVANTAGE_DEFAULT_URL,
        *,
        delay: float = ALPHAVANTAGE_DEFAULT_DELAY,
        timeout: float = 30.0,
        max_retries: int = ALPHAVANTAGE_DEFAULT_RETRIES,
        backoff: float = ALPHAVANTAGE_DEFAULT_BACKOFF,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._client = _VendorClient(
            api_key,
            base_url,
            delay=delay,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            session=session,
            sleep=sleep,
            clock=clock,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> AlphaVantageQuotes:
        """Quotes built from the ``ALPHAVANTAGE_*`` settings (the key is required)."""
        return cls(
            settings.require_api_key(),
            settings.alphavantage_base_url,
            delay=settings.alphavantage_delay,
            timeout=settings.alphavantage_timeout,
            max_retries=settings.alphavantage_max_retries,
            backoff=settings.alphavantage_backoff,
        )

    def __repr__(self) -> str:
        return f"AlphaVantageQuotes(base_url={mask_url(self.base_url)!r}, delay={self.delay})"

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


def parse_global_quote(symbol: str, payload: dict[str, Any]) -> Quote:
    """A :class:`Quote` from a ``GLOBAL_QUOTE`` JSON answer.

    Raises :class:`VendorError` when the vendor has no quote for ``symbol`` (``"Global Quote"``
    is empty, its answer to an unknown symbol), and :class:`MalformedResponseError` when the
    object is missing, names another symbol or lacks a field, when the date does not parse, a
    value is not a number or is negative, the open is not above zero, or high is below low.
    """
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
    raw_day = body["07. latest trading day"]
    try:
        day = dt.date.fromisoformat(str(raw_day))
    except ValueError:
        raise MalformedResponseError(
            symbol, f"{QUOTE_ORIGIN}: latest trading day {raw_day!r} is not a date"
        ) from None
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
    # Only the open fills orders: it must be a real price; the rest must merely be sane.
    if values["open"] <= 0:
        raise MalformedResponseError(
            symbol, f"{QUOTE_ORIGIN}: open {body['02. open']!r} on {day} is not above zero"
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
