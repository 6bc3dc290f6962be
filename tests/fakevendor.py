"""A fake Alpha Vantage ``/query`` server on a real socket, for tests and for manual runs.

It answers ``function=TIME_SERIES_DAILY`` the way the vendor does: the same JSON shapes (newest
date first, every value a string with 4 decimals), the same HTTP-200 refusal bodies with the
vendor's own wording, ``compact`` = the latest 100 bars. It answers ``function=GLOBAL_QUOTE``
from the same bars (see below). Nothing here calls the real vendor.

In a test::

    def test_something(fake_vendor):               # fixture: a started server, stopped after
        fake_vendor.set_bars("SPY", frame)         # date, open, high, low, close, volume
        fake_vendor.visible_through = dt.date(2024, 3, 1)   # bars after it are "not published"
        fake_vendor.fail("SPY", "http_503", times=2)         # the next 2 SPY calls fail
        fake_vendor.live_open[("SPY", dt.date(2024, 3, 4))] = 512.5   # quoted at 9:30 that day
        source = AlphaVantageSource("KEY", fake_vendor.url, delay=0)
        ...
        assert fake_vendor.requests[0]["apikey"] == "KEY"

From a shell (another process points ``ALPHAVANTAGE_BASE_URL`` at the printed URL)::

    python -m tests.fakevendor --port 8099 --csv-dir DIR [--premium] [--api-key KEY]

Behaviour worth knowing:

- ``premium`` is ``False`` by default, like a free key: ``outputsize=full`` gets the vendor's
  premium ``Information`` body, so code that asks for ``full`` by accident fails here as it would
  in production. Set ``premium = True`` to serve every visible bar for ``full``.
- A missing ``apikey`` always gets the invalid-key ``Error Message``; when ``expected_api_key`` is
  set, any other key does too. Unknown symbols get the vendor's ``Invalid API call`` body.
- ``daily_limit`` (default ``None``): after that many requests, every call gets the daily-limit
  ``Information`` body, which (like the vendor's) quotes the caller's key.
- Scripted failures (:meth:`FakeAlphaVantage.fail`) are consumed one per request of that symbol
  (either function), after the key check. The data-corrupting kinds damage the newest bar of a
  normal answer, or the ``"02. open"``/``"03. high"`` of a quote.
- ``GLOBAL_QUOTE`` quotes the latest visible bar (open, high, low, close as ``"05. price"``,
  previous close from the bar before), unless ``live_open`` holds a later day for the symbol:
  then it quotes that day just after its open (open = high = low = price = the live open, volume
  0). ``live_open`` ignores ``visible_through``: it states what the vendor quotes right now. An
  unknown symbol gets ``{"Global Quote": {}}``, as the vendor answers; ``missing_series`` gets
  ``{}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from email.message import Message
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pandas as pd
import pytest

from allocator.shell.settings import mask_url
from tests.fakeserver import FakeServer, Reply, serve_until_interrupted

logger = logging.getLogger(__name__)

# The vendor's own texts (observed answers of www.alphavantage.co/query).
INVALID_CALL = (
    "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for {function}."
)
INVALID_API_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)
UNKNOWN_FUNCTION = "This API function ({function}) does not exist."
DAILY_LIMIT = (
    "We have detected your API key as {apikey} and our standard API rate limit is 25 requests "
    "per day. Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ "
    "to instantly remove all daily rate limits."
)
BURST_LIMIT = (
    "Thank you for using Alpha Vantage! Please consider spreading out your free API requests more "
    "sparingly (1 request per second). You may subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to lift the free key rate limit (25 requests per day), "
    "raise the per-second burst limit, and instantly unlock all premium endpoints"
)
NOTE_PER_MINUTE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and "
    "500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to "
    "target a higher API call frequency."
)
PREMIUM_FULL = (
    "Thank you for using Alpha Vantage! The outputsize=full parameter value is a premium feature "
    "for the TIME_SERIES_DAILY endpoint. You may subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to instantly unlock all premium features"
)
PREMIUM_ENDPOINT = (
    "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of "
    "the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium "
    "endpoints"
)
SERVER_ERROR_PAGE = (
    "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}"
    "</h1></center><hr><center>nginx</center></body></html>"
)

FUNCTION = "TIME_SERIES_DAILY"
QUOTE_FUNCTION = "GLOBAL_QUOTE"
PREMIUM_FUNCTIONS = ("TIME_SERIES_DAILY_ADJUSTED",)
COMPACT_BARS = 100

#: Every kind :meth:`FakeAlphaVantage.fail` accepts, with what the fake answers.
FAILURE_KINDS = {
    "error_message": "HTTP 200, Error Message: Invalid API call (as for an unknown symbol)",
    "invalid_api_key": "HTTP 200, Error Message: the parameter apikey is invalid or missing",
    "information_daily_limit": "HTTP 200, Information: 25 requests per day (quotes the key)",
    "information_burst": "HTTP 200, Information: spreading out ... (1 request per second)",
    "note": "HTTP 200, Note: 5 calls per minute and 500 calls per day (older wording)",
    "premium": "HTTP 200, Information: outputsize=full is a premium feature",
    "premium_endpoint": "HTTP 200, Information: This is a premium endpoint",
    "http_429": "HTTP 429 Too Many Requests",
    "http_500": "HTTP 500 Internal Server Error",
    "http_502": "HTTP 502 Bad Gateway",
    "http_503": "HTTP 503 Service Unavailable",
    "http_400": "HTTP 400 Bad Request",
    "http_403": "HTTP 403 Forbidden",
    "http_404": "HTTP 404 Not Found",
    "timeout": "no answer for hang_seconds (longer than the client's timeout)",
    "disconnect": "connection closed without an answer",
    "malformed_json": "HTTP 200, a truncated JSON document",
    "missing_series": "HTTP 200, Meta Data without 'Time Series (Daily)' (a quote: {})",
    "missing_field": "HTTP 200, newest bar lacks '4. close' (a quote: '02. open')",
    "non_numeric": "HTTP 200, newest bar's '4. close' is 'n/a' (a quote: '02. open')",
    "non_positive": "HTTP 200, newest bar's '1. open' is '0.0000' (a quote: '02. open')",
    "high_below_low": "HTTP 200, newest bar's '2. high' is below its '3. low' (a quote too)",
}
_DATA_KINDS = ("missing_field", "non_numeric", "non_positive", "high_below_low")
_PLACEHOLDER_BAR = {
    "date": dt.date(2024, 1, 2),
    "open": 100.0,
    "high": 101.0,
    "low": 99.0,
    "close": 100.5,
    "volume": 1000,
}


def _json(payload: dict) -> Reply:
    return Reply(body=json.dumps(payload, indent=4))


class FakeAlphaVantage(FakeServer):
    """A local stand-in for ``https://www.alphavantage.co/query`` (see the module docstring).

    Attributes a test may set at any time: ``visible_through``, ``premium``,
    ``expected_api_key``, ``daily_limit``, ``hang_seconds``, and ``live_open`` (``(symbol,
    day) -> open`` quoted by ``GLOBAL_QUOTE`` for a day after the latest visible bar).
    ``requests`` lists the query of every request received, as a ``dict`` of parameter name to
    value, oldest first.
    """

    failure_kinds = FAILURE_KINDS
    thread_name = "fake-alphavantage"
    server_version = "FakeAlphaVantage/1.0"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        premium: bool = False,
        expected_api_key: str | None = None,
        visible_through: dt.date | None = None,
        daily_limit: int | None = None,
        hang_seconds: float = 5.0,
    ):
        super().__init__(host, port, expected_api_key=expected_api_key, hang_seconds=hang_seconds)
        self.premium = premium
        self.visible_through = visible_through
        self.daily_limit = daily_limit
        self.live_open: dict[tuple[str, dt.date], float] = {}

    @property
    def url(self) -> str:
        """The query URL to put in ``ALPHAVANTAGE_BASE_URL``."""
        return f"http://{self.host}:{self.port}/query"

    # -- answering ----------------------------------------------------------------------------

    def log_request_line(self, line: str) -> None:
        logger.debug("fake vendor: %s", mask_url(line))

    def answer(self, path: str, query: dict[str, str], headers: Message) -> Reply:
        if path.rstrip("/") != "/query":
            return Reply(404, "Not Found", "text/plain")
        with self._lock:
            self.requests.append(dict(query))
            count = len(self.requests)
        apikey = query.get("apikey", "")
        if not apikey or (self.expected_api_key is not None and apikey != self.expected_api_key):
            return _json({"Error Message": INVALID_API_KEY})
        if self.daily_limit is not None and count > self.daily_limit:
            return _json({"Information": DAILY_LIMIT.format(apikey=apikey)})
        function = query.get("function", "")
        if function in PREMIUM_FUNCTIONS:
            return _json({"Information": PREMIUM_ENDPOINT})
        if function not in (FUNCTION, QUOTE_FUNCTION):
            return _json({"Error Message": UNKNOWN_FUNCTION.format(function=function)})
        symbol = query.get("symbol", "").upper()
        kind = self._next_failure(symbol)
        respond = self._quote_reply if function == QUOTE_FUNCTION else self._data_reply
        if kind == "timeout":
            # Hold the answer past the client's timeout, then send what it would have got.
            reply = respond(symbol, query, None)
            reply.hang = True
            return reply
        if kind is not None and kind not in _DATA_KINDS:
            return self._failure_reply(kind, apikey, symbol, function)
        return respond(symbol, query, kind)

    def _quote_reply(self, symbol: str, query: dict[str, str], kind: str | None) -> Reply:
        quote = self._quote_of(symbol)
        if quote is None and kind is None:
            return _json({"Global Quote": {}})
        if quote is None:
            quote = _quote_payload(symbol, pd.DataFrame([_PLACEHOLDER_BAR]))
        if kind is not None:
            _corrupt_quote(quote, kind)
        return _json({"Global Quote": quote})

    def _quote_of(self, symbol: str) -> dict[str, str] | None:
        bars = self._visible_bars(symbol)
        with self._lock:
            live = {d: p for (s, d), p in self.live_open.items() if s.upper() == symbol}
        last_bar = bars["date"].iloc[-1] if bars is not None and len(bars) else None
        live_day = max(live, default=None)
        if live_day is not None and (last_bar is None or live_day > last_bar):
            price = live[live_day]
            opening = {"date": live_day, "open": price, "high": price, "low": price}
            row = pd.DataFrame([{**opening, "close": price, "volume": 0}])
            history = bars if bars is not None else row.iloc[:0]
            return _quote_payload(symbol, pd.concat([history, row], ignore_index=True))
        if last_bar is None:
            return None
        return _quote_payload(symbol, bars)

    def _data_reply(self, symbol: str, query: dict[str, str], kind: str | None) -> Reply:
        function = query.get("function", FUNCTION)
        bars = self._visible_bars(symbol)
        if bars is None and kind is None:
            return _json({"Error Message": INVALID_CALL.format(function=function)})
        if bars is None:
            bars = pd.DataFrame([_PLACEHOLDER_BAR])
        full = query.get("outputsize", "compact") == "full"
        if full and not self.premium:
            return _json({"Information": PREMIUM_FULL})
        if not full:
            bars = bars.tail(COMPACT_BARS)
        if query.get("datatype") == "csv" and kind is None:
            return Reply(body=_csv_body(bars), content_type="application/x-download")
        payload = _daily_payload(symbol, bars, full)
        if kind is not None:
            _corrupt_newest_bar(payload, kind)
        return _json(payload)

    def _visible_bars(self, symbol: str) -> pd.DataFrame | None:
        with self._lock:
            bars = self._bars.get(symbol)
        if bars is None:
            return None
        if self.visible_through is not None:
            bars = bars[bars["date"] <= self.visible_through]
        return bars

    def _failure_reply(self, kind: str, apikey: str, symbol: str, function: str) -> Reply:
        if kind == "error_message":
            return _json({"Error Message": INVALID_CALL.format(function=function)})
        if kind == "invalid_api_key":
            return _json({"Error Message": INVALID_API_KEY})
        if kind == "information_daily_limit":
            return _json({"Information": DAILY_LIMIT.format(apikey=apikey)})
        if kind == "information_burst":
            return _json({"Information": BURST_LIMIT})
        if kind == "note":
            return _json({"Note": NOTE_PER_MINUTE})
        if kind == "premium":
            return _json({"Information": PREMIUM_FULL})
        if kind == "premium_endpoint":
            return _json({"Information": PREMIUM_ENDPOINT})
        if kind.startswith("http_"):
            status = int(kind.removeprefix("http_"))
            reason = BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]
            page = SERVER_ERROR_PAGE.format(status=status, reason=reason)
            return Reply(status, page, "text/html")
        if kind == "disconnect":
            return Reply(disconnect=True)
        if kind == "malformed_json":
            return Reply(body='{\n    "Meta Data": {\n        "1. Information": "Daily Prices')
        if kind == "missing_series" and function == QUOTE_FUNCTION:
            return _json({})
        if kind == "missing_series":
            return _json({"Meta Data": _meta_data(symbol, None, full=False)})
        raise AssertionError(f"unhandled failure kind {kind!r}")


def _meta_data(symbol: str, last: dt.date | None, *, full: bool) -> dict[str, str]:
    return {
        "1. Information": "Daily Prices (open, high, low, close) and Volumes",
        "2. Symbol": symbol,
        "3. Last Refreshed": last.isoformat() if last else "",
        "4. Output Size": "Full size" if full else "Compact",
        "5. Time Zone": "US/Eastern",
    }


def _daily_payload(symbol: str, bars: pd.DataFrame, full: bool) -> dict:
    newest_first = bars.iloc[::-1]
    series = {
        row.date.isoformat(): {
            "1. open": f"{row.open:.4f}",
            "2. high": f"{row.high:.4f}",
            "3. low": f"{row.low:.4f}",
            "4. close": f"{row.close:.4f}",
            "5. volume": f"{round(row.volume):d}",
        }
        for row in newest_first.itertuples(index=False)
    }
    last = newest_first["date"].iloc[0] if len(newest_first) else None
    return {"Meta Data": _meta_data(symbol, last, full=full), "Time Series (Daily)": series}


def _quote_payload(symbol: str, bars: pd.DataFrame) -> dict[str, str]:
    """The ``"Global Quote"`` object of the last row of ``bars`` (at least one row)."""
    last = bars.iloc[-1]
    previous = float(bars["close"].iloc[-2]) if len(bars) > 1 else float(last["open"])
    change = float(last["close"]) - previous
    return {
        "01. symbol": symbol,
        "02. open": f"{last['open']:.4f}",
        "03. high": f"{last['high']:.4f}",
        "04. low": f"{last['low']:.4f}",
        "05. price": f"{last['close']:.4f}",
        "06. volume": f"{round(last['volume']):d}",
        "07. latest trading day": last["date"].isoformat(),
        "08. previous close": f"{previous:.4f}",
        "09. change": f"{change:.4f}",
        "10. change percent": f"{change / previous * 100:.4f}%",
    }


def _corrupt_quote(quote: dict[str, str], kind: str) -> None:
    if kind == "missing_field":
        del quote["02. open"]
    elif kind == "non_numeric":
        quote["02. open"] = "n/a"
    elif kind == "non_positive":
        quote["02. open"] = "0.0000"
    elif kind == "high_below_low":
        quote["03. high"] = f"{float(quote['04. low']) * 0.9:.4f}"


def _csv_body(bars: pd.DataFrame) -> str:
    lines = ["timestamp,open,high,low,close,volume"]
    for row in bars.iloc[::-1].itertuples(index=False):
        lines.append(
            f"{row.date.isoformat()},{row.open:.4f},{row.high:.4f},{row.low:.4f},"
            f"{row.close:.4f},{round(row.volume):d}"
        )
    return "\r\n".join(lines) + "\r\n"


def _corrupt_newest_bar(payload: dict, kind: str) -> None:
    series = payload["Time Series (Daily)"]
    if not series:
        return
    bar = series[next(iter(series))]
    if kind == "missing_field":
        del bar["4. close"]
    elif kind == "non_numeric":
        bar["4. close"] = "n/a"
    elif kind == "non_positive":
        bar["1. open"] = "0.0000"
    elif kind == "high_below_low":
        bar["2. high"] = f"{float(bar['3. low']) * 0.9:.4f}"


@pytest.fixture
def fake_vendor():
    """A started :class:`FakeAlphaVantage` on a free port of 127.0.0.1, stopped after the test."""
    with FakeAlphaVantage() as server:
        yield server


def main(argv: list[str] | None = None) -> int:
    """Run the fake until interrupted (Ctrl-C or SIGTERM)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakevendor",
        description="Serve SYMBOL.csv files the way Alpha Vantage's TIME_SERIES_DAILY does.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    parser.add_argument("--csv-dir", type=Path, help="folder of SYMBOL.csv (date,open,...,volume)")
    parser.add_argument("--premium", action="store_true", help="serve outputsize=full")
    parser.add_argument("--api-key", help="accept only this apikey")
    parser.add_argument("--daily-limit", type=int, help="refuse calls after this many")
    parser.add_argument(
        "--visible-through", type=dt.date.fromisoformat, help="serve bars up to this date only"
    )
    args = parser.parse_args(argv)
    fake = FakeAlphaVantage(
        args.host,
        args.port,
        premium=args.premium,
        expected_api_key=args.api_key,
        visible_through=args.visible_through,
        daily_limit=args.daily_limit,
    )
    return serve_until_interrupted(fake, "Alpha Vantage", args.csv_dir)


if __name__ == "__main__":
    sys.exit(main())
