"""A fake Alpaca Trading API (v2) on a real socket, for tests and for manual runs.

It serves the documented JSON shapes: ``/v2/account``, ``/v2/clock``, ``/v2/assets/{symbol}``,
orders (``POST /v2/orders``, ``GET /v2/orders``, ``GET /v2/orders/{id}``,
``GET /v2/orders:by_client_order_id``, ``DELETE /v2/orders/{id}``) and ``/v2/positions``, with
numbers as strings the way Alpaca sends them, and its error bodies
``{"code": ..., "message": ...}``: 401 bad keys, 403 insufficient buying power (with
``buying_power`` and ``cost_basis``) or quantity, 404 unknown order, 422 validation (an asset
that is not fractionable, a client order id already used, qty and notional together), 429
rate limited. Nothing here calls Alpaca.

The test plays the market: :meth:`FakeAlpaca.set_time` moves the fake's clock (its
``/v2/clock`` follows the NYSE calendar: open 9:30-16:00 ET on sessions);
:meth:`FakeAlpaca.open_market` fills the open orders at the day's open plus a known slippage
(``fill_ratio`` leaves some partly filled); :meth:`FakeAlpaca.fail` scripts failures of the next
requests to a route. ``requests`` records every request (method, path, query, body).

From a shell (point ``APCA_API_BASE_URL`` at the printed URL)::

    python -m tests.fakealpaca --port 8097
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from allocator.shell import calendar

KEY_ID, SECRET = "PKTESTKEYID0001", "test-secret-key-0001"
EASTERN = calendar.EASTERN
#: Failure kinds :meth:`FakeAlpaca.fail` accepts, and what the fake does.
FAILURE_KINDS = {
    "http_401": "HTTP 401 request is not authorized",
    "http_403": "HTTP 403 insufficient buying power",
    "http_422": "HTTP 422 a validation error",
    "http_429": "HTTP 429 rate limit exceeded",
    "http_500": "HTTP 500 internal server error",
    "lost_answer": "the order is placed, then the connection drops before the answer",
}


def _money(x: float | None) -> str | None:
    return None if x is None else f"{x:.2f}"


def _qty(x: float | None) -> str | None:
    return None if x is None else f"{x:.9f}".rstrip("0").rstrip(".")


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Order:
    """An order as the fake keeps it."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    notional: float | None
    qty: float | None
    created_at: dt.datetime
    status: str = "accepted"
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    filled_at: dt.datetime | None = None
    canceled_at: dt.datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ("new", "accepted", "pending_new", "partially_filled")

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": _stamp(self.created_at),
            "updated_at": _stamp(self.filled_at or self.canceled_at or self.created_at),
            "submitted_at": _stamp(self.created_at),
            "filled_at": _stamp(self.filled_at) if self.filled_at else None,
            "expired_at": None,
            "canceled_at": _stamp(self.canceled_at) if self.canceled_at else None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.symbol)),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": _money(self.notional),
            "qty": _qty(self.qty),
            "filled_qty": _qty(self.filled_qty) or "0",
            "filled_avg_price": None
            if self.filled_avg_price is None
            else f"{self.filled_avg_price:.6f}",
            "order_class": "",
            "order_type": "market",
            "type": "market",
            "side": self.side,
            "time_in_force": "day",
            "limit_price": None,
            "stop_price": None,
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }


@dataclass
class Position:
    qty: float
    avg: float


@dataclass
class Reply:
    status: int
    body: object = None
    disconnect: bool = False


def _error(status: int, code: int, message: str, **extra) -> Reply:
    return Reply(status, {"code": code, "message": message, **extra})


@dataclass
class FakeAlpaca:
    """A local stand-in for ``https://paper-api.alpaca.markets`` (see the module docstring)."""

    host: str = "127.0.0.1"
    port: int = 0
    cash: float = 100_000.0
    account_number: str = "PA3FAKE00001"
    fractionable: dict[str, bool] = field(
        default_factory=lambda: {"SPY": True, "QQQ": True, "DIA": True}
    )
    orders: dict[str, Order] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    now: dt.datetime = field(default_factory=lambda: dt.datetime(2024, 7, 1, 8, 0, tzinfo=EASTERN))

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, collections.deque[str]] = collections.defaultdict(
            collections.deque
        )
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeAlpaca:
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.fake = self  # type: ignore[attr-defined]
        self._httpd, self.port = httpd, httpd.server_address[1]
        thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        thread.start()
        self._thread = thread
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeAlpaca:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def environ(self) -> dict[str, str]:
        """The settings that point the jobs at this fake."""
        return {
            "ALLOCATOR_BROKER": "alpaca",
            "APCA_API_BASE_URL": self.url,
            "APCA_API_KEY_ID": KEY_ID,
            "APCA_API_SECRET_KEY": SECRET,
        }

    # -- the test plays the market ----------------------------------------------------------

    def set_time(self, day: dt.date, hour: int, minute: int = 0) -> None:
        """Move the clock to ``hour:minute`` ET on ``day``."""
        with self._lock:
            self.now = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=EASTERN)

    def fail(self, route: str, kind: str, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``route`` (``submit``, ``lookup``, ``order``,
        ``cancel``, ``account``, ``clock``, ``positions``, ``asset``) with ``kind``."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure {kind!r}; choose from {sorted(FAILURE_KINDS)}")
        with self._lock:
            self._failures[route].extend([kind] * times)

    def open_market(
        self,
        day: dt.date,
        opens: dict[str, float],
        slippage_bps: float = 0.0,
        fill_ratio: dict[str, float] | None = None,
    ) -> None:
        """9:30 ET on ``day``: fill the open orders at ``open x (1 + bps)`` (BUY) or
        ``open x (1 - bps)`` (SELL); ``fill_ratio[symbol]`` < 1 fills that share only."""
        self.set_time(day, 9, 31)
        factor = slippage_bps / 10_000.0
        with self._lock:
            for order in self.orders.values():
                if not order.is_open:
                    continue
                price = opens[order.symbol] * (1 + factor if order.side == "buy" else 1 - factor)
                price = round(price, 6)
                wanted = order.qty if order.qty is not None else order.notional / price
                ratio = (fill_ratio or {}).get(order.symbol, 1.0)
                self._fill(order, int(wanted * ratio * 1e9) / 1e9, price, ratio < 1)

    def _fill(self, order: Order, qty: float, price: float, partial: bool) -> None:
        order.filled_qty, order.filled_avg_price = qty, price
        order.status, order.filled_at = ("partially_filled" if partial else "filled"), self.now
        held = self.positions.get(order.symbol)
        if order.side == "buy":
            self.cash -= round(qty * price, 2)
            if held is None:
                self.positions[order.symbol] = Position(qty, price)
            else:
                total = round(held.qty + qty, 9)
                held.avg = (held.qty * held.avg + qty * price) / total
                held.qty = total
        else:
            self.cash += round(qty * price, 2)
            held.qty = round(held.qty - qty, 9)
            if held.qty <= 0:
                del self.positions[order.symbol]

    def close_market(self, day: dt.date) -> None:
        """16:35 ET on ``day``: after the close (open orders stay open until cancelled)."""
        self.set_time(day, 16, 35)

    def placed(self) -> list[str]:
        """The client order ids of every order placed, in order."""
        return [o.client_order_id for o in self.orders.values()]

    # -- answering ---------------------------------------------------------------------------

    def _clock(self) -> dict:
        today = self.now.astimezone(EASTERN).date()
        opening = dt.time(9, 30)
        if calendar.is_session(today) and self.now.time() < dt.time(16, 0):
            day = today
        else:
            day = calendar.next_session(today)
        is_open = day == today and opening <= self.now.time() < dt.time(16, 0)
        next_day = calendar.next_session(day) if is_open else day
        return {
            "timestamp": self.now.isoformat(),
            "is_open": is_open,
            "next_open": dt.datetime.combine(next_day, opening, tzinfo=EASTERN).isoformat(),
            "next_close": dt.datetime.combine(day, dt.time(16), tzinfo=EASTERN).isoformat(),
        }

    def _open_buys(self) -> float:
        return sum(o.notional or 0.0 for o in self.orders.values() if o.is_open and o.side == "buy")

    def _account(self) -> dict:
        buying_power = self.cash - self._open_buys()
        return {
            "id": "904837e3-3b76-47ec-b432-046db621571b",
            "account_number": self.account_number,
            "status": "ACTIVE",
            "currency": "USD",
            "cash": _money(self.cash),
            "buying_power": _money(buying_power),
            "non_marginable_buying_power": _money(buying_power),
            "portfolio_value": _money(self.cash),
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "shorting_enabled": False,
            "multiplier": "1",
        }

    def _positions(self) -> list[dict]:
        return [
            {
                "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
                "symbol": symbol,
                "exchange": "ARCA",
                "asset_class": "us_equity",
                "avg_entry_price": f"{p.avg:.6f}",
                "qty": _qty(p.qty),
                "qty_available": _qty(p.qty),
                "side": "long",
                "market_value": _money(p.qty * p.avg),
                "cost_basis": _money(p.qty * p.avg),
            }
            for symbol, p in sorted(self.positions.items())
        ]

    def _asset(self, symbol: str) -> Reply:
        if symbol not in self.fractionable:
            return _error(404, 40410000, "asset not found")
        return Reply(
            200,
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
                "class": "us_equity",
                "exchange": "ARCA",
                "symbol": symbol,
                "name": f"{symbol} ETF",
                "status": "active",
                "tradable": True,
                "marginable": True,
                "shortable": True,
                "easy_to_borrow": True,
                "fractionable": self.fractionable[symbol],
            },
        )

    def _submit(self, body: dict) -> Reply:
        symbol, side = str(body.get("symbol", "")).upper(), body.get("side")
        notional, qty = body.get("notional"), body.get("qty")
        if (notional is None) == (qty is None):
            return _error(422, 40010001, "qty or notional is required, not both")
        if body.get("type") != "market" or body.get("time_in_force") != "day":
            return _error(422, 40010001, "fractional orders must be market day orders")
        if symbol not in self.fractionable:
            return _error(422, 40010001, f'asset "{symbol}" not found')
        if not self.fractionable[symbol]:
            return _error(422, 40010001, f"asset {symbol} is not fractionable")
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if len(cid) > 48:
            return _error(422, 40010001, "client_order_id must be no more than 48 characters")
        if any(o.client_order_id == cid for o in self.orders.values()):
            return _error(422, 40010001, "client_order_id must be unique")
        notional = None if notional is None else float(notional)
        qty = None if qty is None else float(qty)
        if side == "buy" and notional is not None:
            power = self.cash - self._open_buys()
            if notional > power:
                return _error(
                    403,
                    40310000,
                    "insufficient buying power",
                    buying_power=_money(power),
                    cost_basis=_money(notional),
                )
        if side == "sell":
            held = self.positions.get(symbol)
            have = held.qty if held else 0.0
            if qty > have + 1e-9:
                return _error(
                    403,
                    40310000,
                    f"insufficient qty available for order (requested: {_qty(qty)}, "
                    f"available: {_qty(have)})",
                )
        status = "new" if self._clock()["is_open"] else "accepted"
        order = Order(str(uuid.uuid4()), cid, symbol, side, notional, qty, self.now, status)
        self.orders[order.id] = order
        return Reply(200, order.to_json())

    def _by_client_id(self, cid: str) -> Reply:
        for order in self.orders.values():
            if order.client_order_id == cid:
                return Reply(200, order.to_json())
        return _error(404, 40410000, "order not found")

    def _cancel(self, order_id: str) -> Reply:
        order = self.orders.get(order_id)
        if order is None:
            return _error(404, 40410000, "order not found")
        if not order.is_open:
            return _error(422, 42210000, "order is not cancelable")
        order.status, order.canceled_at = "canceled", self.now
        return Reply(204)

    def _route(self, method: str, path: str) -> str:
        if path == "/v2/orders" and method == "POST":
            return "submit"
        if path == "/v2/orders:by_client_order_id":
            return "lookup"
        if path.startswith("/v2/orders/"):
            return "cancel" if method == "DELETE" else "order"
        return path.removeprefix("/v2/").split("/")[0]

    def answer(self, method: str, path: str, query: dict, body: dict, headers) -> Reply:
        with self._lock:
            self.requests.append({"method": method, "path": path, "query": query, "body": body})
            if headers.get("APCA-API-KEY-ID") != KEY_ID or (
                headers.get("APCA-API-SECRET-KEY") != SECRET
            ):
                return _error(401, 40110000, "request is not authorized")
            route = self._route(method, path)
            queue = self._failures.get(route)
            kind = queue.popleft() if queue else None
            if kind is not None and kind != "lost_answer":
                return _failure(kind)
            reply = self._dispatch(method, path, route, query, body)
            if kind == "lost_answer":
                return Reply(0, disconnect=True)
            return reply

    def _dispatch(self, method, path, route, query, body) -> Reply:
        if route == "account":
            return Reply(200, self._account())
        if route == "clock":
            return Reply(200, self._clock())
        if route == "positions":
            return Reply(200, self._positions())
        if route == "assets":
            return self._asset(unquote(path.rsplit("/", 1)[-1]).upper())
        if route == "submit":
            return self._submit(body)
        if route == "lookup":
            return self._by_client_id(query.get("client_order_id", ""))
        if route == "cancel":
            return self._cancel(path.rsplit("/", 1)[-1])
        if route == "order":
            order = self.orders.get(path.rsplit("/", 1)[-1])
            return (
                Reply(200, order.to_json()) if order else _error(404, 40410000, "order not found")
            )
        if route == "orders":
            return Reply(200, [o.to_json() for o in self.orders.values()])
        return _error(404, 40400000, "endpoint not found")


def _failure(kind: str) -> Reply:
    return {
        "http_401": _error(401, 40110000, "request is not authorized"),
        "http_403": _error(403, 40310000, "insufficient buying power"),
        "http_422": _error(422, 40010001, "invalid order"),
        "http_429": _error(429, 42910000, "rate limit exceeded"),
        "http_500": _error(500, 50010000, "internal server error"),
    }[kind]


class _Handler(BaseHTTPRequestHandler):
    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        reply = self.server.fake.answer(method, parts.path, query, body, self.headers)
        if reply.disconnect:
            self.close_connection = True
            return
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's dispatch names
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        pass


@pytest.fixture
def fake_alpaca(monkeypatch):
    """A started :class:`FakeAlpaca`, with the settings pointing the jobs at it."""
    with FakeAlpaca() as server:
        for name, value in server.environ().items():
            monkeypatch.setenv(name, value)
        yield server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakealpaca", description="Serve a fake Alpaca paper account."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8097)
    args = parser.parse_args(argv)
    with FakeAlpaca(args.host, args.port) as fake:
        print(f"fake Alpaca at {fake.url} (key {KEY_ID}, secret {SECRET})", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
