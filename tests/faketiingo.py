"""A fake Tiingo end-of-day API on a real socket, for tests and for manual runs.

It answers ``GET /tiingo/daily/<ticker>/prices?startDate=&endDate=&format=json`` the way Tiingo
does: a JSON array of the bars dated within the range, oldest first, each with the raw
``open``/``high``/``low``/``close``/``volume``, the adjusted ``adj*`` fields, ``divCash`` and
``splitFactor``; and its refusals as HTTP errors with a ``{"detail": ...}`` body. Nothing here
calls the real vendor.

In a test::

    def test_something(fake_tiingo):                # fixture: a started server, stopped after
        fake_tiingo.set_bars("SPY", frame)          # date, open, high, low, close, volume
        fake_tiingo.fail("SPY", "http_503", times=2)  # the next 2 SPY calls fail
        source = TiingoSource("KEY", fake_tiingo.url, delay=0)
        ...
        assert fake_tiingo.requests[0]["authorization"] == "Token KEY"

From a shell (another process points ``TIINGO_BASE_URL`` at the printed URL)::

    python -m tests.faketiingo --port 8098 --csv-dir DIR [--api-key KEY]

Behaviour worth knowing:

- Every request needs ``Authorization: Token <key>``: without one it gets 401 "Authentication
  credentials were not provided."; when ``expected_api_key`` is set, any other token gets 401
  "Invalid token." (the wording of the vendor's REST framework).
- An unknown ticker gets 404 ``{"detail": "Error: Ticker 'XYZ' not found"}``. A known ticker
  without bars in the range gets ``[]``. Without ``startDate`` only the latest bar is served.
- The adjusted prices are the raw ones times ``adjustment`` (default 0.5), and the adjusted
  volume the raw one divided by it, so a test can tell which of the two a client stored.
- Scripted failures (:meth:`FakeTiingo.fail`) are consumed one per request of that symbol,
  after the token check; see :data:`FAILURE_KINDS`. ``requests`` records every request: its
  path, ``symbol``, query parameters and ``authorization`` header.
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
from urllib.parse import unquote

import pandas as pd
import pytest

from tests.fakeserver import FakeServer, Reply, serve_until_interrupted

logger = logging.getLogger(__name__)

NOT_FOUND = "Error: Ticker '{ticker}' not found"
NO_CREDENTIALS = "Authentication credentials were not provided."
INVALID_TOKEN = "Invalid token."
# Rate-limit wordings as clients of the real API quote them; the daily and monthly ones have
# been seen as plain text rather than JSON.
HOURLY_LIMIT = "Error: You have run over your hourly request allocation."
DAILY_LIMIT = "Error: You have run over your daily request allocation."
MONTHLY_SYMBOLS = "Error: You have run over your 500 symbol look up for this month."
SERVER_ERROR_PAGE = "<html><body><h1>{status} {reason}</h1></body></html>"
PRICES_PREFIX, PRICES_SUFFIX = "/tiingo/daily/", "/prices"

#: Every kind :meth:`FakeTiingo.fail` accepts, with what the fake answers.
FAILURE_KINDS = {
    "http_401": 'HTTP 401, {"detail": "Invalid token."}',
    "http_403": 'HTTP 403, {"detail": "You do not have permission to perform this action."}',
    "http_404": "HTTP 404, the unknown-ticker detail (as if the symbol did not exist)",
    "http_429": "HTTP 429 with an empty body (no limit named)",
    "hourly_limit": "HTTP 429, JSON detail: the hourly request allocation",
    "daily_limit": "HTTP 429, plain text: the daily request allocation",
    "monthly_symbols": "HTTP 429, plain text: the 500 symbols of the month",
    "http_500": "HTTP 500, an HTML page",
    "http_503": "HTTP 503, an HTML page",
    "malformed_json": "HTTP 200, a truncated JSON array",
    "empty_list": "HTTP 200, []",
    "detail_200": "HTTP 200, a detail object instead of the array (unknown ticker wording)",
    "missing_field": "HTTP 200, the newest bar lacks 'close'",
    "non_numeric": "HTTP 200, the newest bar's close is null",
    "timeout": "no answer for hang_seconds (longer than the client's timeout)",
    "disconnect": "connection closed without an answer",
}


def _json(payload, status: int = 200) -> Reply:
    return Reply(status, json.dumps(payload))


def price_rows(bars: pd.DataFrame, adjustment: float) -> list[dict]:
    """Tiingo's ``/prices`` objects of ``bars`` (oldest first)."""
    rows = []
    for bar in bars.itertuples(index=False):
        raw = {c: round(float(getattr(bar, c)), 4) for c in ("close", "high", "low", "open")}
        volume = int(round(bar.volume))
        rows.append(
            {
                "date": f"{bar.date.isoformat()}T00:00:00.000Z",
                **raw,
                "volume": volume,
                **{f"adj{c.title()}": round(v * adjustment, 6) for c, v in raw.items()},
                "adjVolume": int(round(volume / adjustment)),
                "divCash": 0.0,
                "splitFactor": 1.0,
            }
        )
    return rows


class FakeTiingo(FakeServer):
    """A local stand-in for ``https://api.tiingo.com`` (see the module docstring)."""

    failure_kinds = FAILURE_KINDS
    thread_name = "fake-tiingo"
    server_version = "FakeTiingo/1.0"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        expected_api_key: str | None = None,
        adjustment: float = 0.5,
        hang_seconds: float = 5.0,
    ):
        super().__init__(host, port, expected_api_key=expected_api_key, hang_seconds=hang_seconds)
        self.adjustment = adjustment

    @property
    def url(self) -> str:
        """The API root to put in ``TIINGO_BASE_URL``."""
        return f"http://{self.host}:{self.port}"

    # -- answering ----------------------------------------------------------------------------

    def log_request_line(self, line: str) -> None:
        # The request line holds no token (it travels in a header), so it may be logged as is.
        logger.debug("fake tiingo: %s", line)

    def answer(self, path: str, query: dict[str, str], headers: Message) -> Reply:
        authorization = headers.get("Authorization", "")
        if not (path.startswith(PRICES_PREFIX) and path.endswith(PRICES_SUFFIX)):
            return _json({"detail": "Not found."}, 404)
        ticker = unquote(path[len(PRICES_PREFIX) : -len(PRICES_SUFFIX)])
        symbol = ticker.upper()
        with self._lock:
            self.requests.append(
                {"path": path, "symbol": symbol, **query, "authorization": authorization}
            )
        scheme, _, token = authorization.partition(" ")
        if scheme != "Token" or not token:
            return _json({"detail": NO_CREDENTIALS}, 401)
        if self.expected_api_key is not None and token != self.expected_api_key:
            return _json({"detail": INVALID_TOKEN}, 401)
        kind = self._next_failure(symbol)
        if kind == "timeout":
            reply = self._data_reply(ticker, query, None)
            reply.hang = True
            return reply
        if kind is not None and kind not in ("missing_field", "non_numeric"):
            return _failure_reply(kind, ticker)
        return self._data_reply(ticker, query, kind)

    def _data_reply(self, ticker: str, query: dict[str, str], kind: str | None) -> Reply:
        with self._lock:
            bars = self._bars.get(ticker.upper())
        if bars is None:
            return _json({"detail": NOT_FOUND.format(ticker=ticker)}, 404)
        start, end = query.get("startDate"), query.get("endDate")
        if start:
            bars = bars[bars["date"] >= dt.date.fromisoformat(start)]
        if end:
            bars = bars[bars["date"] <= dt.date.fromisoformat(end)]
        if not start:
            bars = bars.tail(1)
        rows = price_rows(bars, self.adjustment)
        if rows and kind == "missing_field":
            del rows[-1]["close"]
        elif rows and kind == "non_numeric":
            rows[-1]["close"] = None
        return _json(rows)


def _failure_reply(kind: str, ticker: str) -> Reply:
    fixed = {
        "http_401": _json({"detail": INVALID_TOKEN}, 401),
        "http_403": _json({"detail": "You do not have permission to perform this action."}, 403),
        "http_404": _json({"detail": NOT_FOUND.format(ticker=ticker)}, 404),
        "http_429": Reply(429, "", "text/plain"),
        "hourly_limit": _json({"detail": HOURLY_LIMIT}, 429),
        "daily_limit": Reply(429, DAILY_LIMIT, "text/plain"),
        "monthly_symbols": Reply(429, MONTHLY_SYMBOLS, "text/plain"),
        "malformed_json": Reply(body='[{"date":"2005-01-03T00:00:00.000Z","close":12'),
        "empty_list": _json([]),
        "detail_200": _json({"detail": NOT_FOUND.format(ticker=ticker)}),
        "disconnect": Reply(disconnect=True),
    }
    if kind in fixed:
        return fixed[kind]
    status = int(kind.removeprefix("http_"))
    reason = BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]
    return Reply(status, SERVER_ERROR_PAGE.format(status=status, reason=reason), "text/html")


@pytest.fixture
def fake_tiingo():
    """A started :class:`FakeTiingo` on a free port of 127.0.0.1, stopped after the test."""
    with FakeTiingo() as server:
        yield server


def main(argv: list[str] | None = None) -> int:
    """Run the fake until interrupted (Ctrl-C or SIGTERM)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.faketiingo",
        description="Serve SYMBOL.csv files the way Tiingo's daily prices endpoint does.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8098, help="0 picks a free port")
    parser.add_argument("--csv-dir", type=Path, help="folder of SYMBOL.csv (date,open,...,volume)")
    parser.add_argument("--api-key", help="accept only this token")
    args = parser.parse_args(argv)
    fake = FakeTiingo(args.host, args.port, expected_api_key=args.api_key)
    return serve_until_interrupted(fake, "Tiingo", args.csv_dir)


if __name__ == "__main__":
    sys.exit(main())
