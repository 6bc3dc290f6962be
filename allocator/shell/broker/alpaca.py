"""Alpaca's Trading API (v2) over plain HTTP: account, clock, assets, orders and positions.

Why not the ``alpaca-py`` SDK: the jobs need seven endpoints, and exact control over what is
retried. A GET (or a cancel) that meets a timeout, a 429 or a 5xx is simply asked again; an
order's POST never is, because a POST whose answer was lost may have placed the order. The
caller looks its deterministic ``client_order_id`` up instead, and only then submits again.
``requests`` is already a dependency; the SDK would add pydantic models, msgpack, websockets
and its own retry policy to learn and pin.

Documented behaviour this client relies on (Alpaca's "Placing Orders" and fractional-trading
pages): fractional and notional orders must be ``market`` orders with ``time_in_force=day``;
an order sent outside regular hours that is not for extended hours is queued for the next open;
``client_order_id`` is unique per account, and ``GET /v2/orders:by_client_order_id`` finds an
order by it. Errors come back as ``{"code": 40310000, "message": "insufficient buying power"}``
with the HTTP status: 401 bad keys, 403 buying power or a blocked account, 404 unknown order,
422 an invalid order (not fractionable, a client order id already used), 429 rate limited.

The key id and secret travel in the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers,
never in a URL, so no log line (ours or urllib3's) can show them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any

import requests

from allocator.exceptions import BrokerError
from allocator.shell.broker.base import (
    BrokerAccount,
    BrokerAsset,
    BrokerClock,
    BrokerOrder,
    OrderRequest,
)
from allocator.shell.settings import mask_url

log = logging.getLogger(__name__)

#: HTTP statuses worth asking again (for requests that are safe to repeat).
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
#: The most characters of the broker's text quoted in one message.
_QUOTE_LIMIT = 300


def _number(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _time(value: str) -> dt.datetime:
    """Alpaca's RFC 3339 times (``2026-12-07T09:30:00-05:00``, nanoseconds allowed)."""
    text = value.replace("Z", "+00:00")
    head, _, rest = text.partition(".")
    if rest:  # keep at most microseconds: fromisoformat refuses nanoseconds
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    return dt.datetime.fromisoformat(text)


def parse_order(data: dict) -> BrokerOrder:
    """A :class:`BrokerOrder` from Alpaca's order object (numbers arrive as strings)."""
    return BrokerOrder(
        id=str(data["id"]),
        client_order_id=str(data.get("client_order_id") or ""),
        symbol=str(data["symbol"]),
        side=str(data["side"]),
        status=str(data["status"]),
        qty=_number(data.get("qty")),
        notional=_number(data.get("notional")),
        filled_qty=_number(data.get("filled_qty")) or 0.0,
        filled_avg_price=_number(data.get("filled_avg_price")),
        submitted_at=data.get("submitted_at"),
        filled_at=data.get("filled_at"),
    )


def _error_of(response: requests.Response) -> tuple[int | None, str]:
    """(Alpaca's error code, its message) from an error answer (a JSON body or plain text)."""
    try:
        body = response.json()
    except ValueError:
        return None, (response.text or response.reason or "").strip()[:_QUOTE_LIMIT]
    if isinstance(body, dict):
        code = body.get("code")
        message = str(body.get("message") or body)[:_QUOTE_LIMIT]
        return (int(code) if isinstance(code, int) else None), message
    return None, str(body)[:_QUOTE_LIMIT]


class AlpacaBroker:
    """Orders at Alpaca (paper or live), through its REST API at ``base_url``."""

    name = "alpaca"

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        base_url: str,
        *,
        live: bool = False,
        timeout: float = 15.0,
        max_retries: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.endpoint = base_url.rstrip("/")
        self.live = live
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        self._session = requests.Session()
        self._session.headers.update(
            {
                "APCA-API-KEY-ID": key_id,
                "APCA-API-SECRET-KEY": secret_key,
                "Accept": "application/json",
                "User-Agent": "capital-allocator",
            }
        )

    @property
    def label(self) -> str:
        return "alpaca LIVE" if self.live else "alpaca paper"

    def __repr__(self) -> str:  # never the keys
        return f"AlpacaBroker({mask_url(self.endpoint)!r}, live={self.live})"

    # -- HTTP ---------------------------------------------------------------------------------

    def _send(self, method: str, path: str, params: dict | None, body: dict | None):
        url = f"{self.endpoint}{path}"
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else None
        return self._session.request(
            method, url, params=params, data=data, headers=headers, timeout=self.timeout
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        retry: bool = True,
    ) -> Any:
        """The JSON answer of ``method path`` (None for an empty one); a refusal raises
        :class:`BrokerError` with the HTTP status, Alpaca's code and message. Timeouts, dropped
        connections, 429 and 5xx are retried (``backoff x 2**n`` s) when ``retry``."""
        attempts = 1 + (self.max_retries if retry else 0)
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._send(method, path, params, body)
            except requests.RequestException as exc:
                why = f"{type(exc).__name__}: no answer from {mask_url(self.endpoint)}"
                if attempt + 1 < attempts:
                    log.warning("alpaca %s %s: %s; retrying", method, path, why)
                    continue
                raise BrokerError(f"{method} {path}: {why}") from None
            if response.status_code in RETRYABLE and attempt + 1 < attempts:
                log.warning("alpaca %s %s: HTTP %s; retrying", method, path, response.status_code)
                continue
            return self._answer(method, path, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _answer(self, method: str, path: str, response: requests.Response) -> Any:
        if response.status_code >= 400:
            code, message = _error_of(response)
            hint = ""
            if response.status_code == 401:
                hint = " (check APCA_API_KEY_ID, APCA_API_SECRET_KEY and APCA_API_BASE_URL)"
            raise BrokerError(
                f"{method} {path}: HTTP {response.status_code}: {message}{hint}",
                status=response.status_code,
                code=code,
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise BrokerError(
                f"{method} {path}: the answer is not JSON: {response.text[:_QUOTE_LIMIT]!r}"
            ) from None

    # -- the endpoints ------------------------------------------------------------------------

    def account(self) -> BrokerAccount:
        data = self.request("GET", "/v2/account")
        return BrokerAccount(
            number=str(data.get("account_number") or data.get("id")),
            status=str(data.get("status", "")),
            cash=float(data["cash"]),
            buying_power=float(data["buying_power"]),
            trading_blocked=bool(data.get("trading_blocked") or data.get("account_blocked")),
        )

    def clock(self) -> BrokerClock:
        data = self.request("GET", "/v2/clock")
        return BrokerClock(
            timestamp=_time(data["timestamp"]),
            is_open=bool(data["is_open"]),
            next_open=_time(data["next_open"]),
            next_close=_time(data["next_close"]),
        )

    def asset(self, symbol: str) -> BrokerAsset | None:
        """The asset, or None when Alpaca does not know the symbol (404)."""
        try:
            data = self.request("GET", f"/v2/assets/{symbol}")
        except BrokerError as exc:
            if exc.status == 404:
                return None
            raise
        return BrokerAsset(
            str(data["symbol"]), bool(data.get("tradable")), bool(data.get("fractionable"))
        )

    def submit(self, request: OrderRequest) -> BrokerOrder:
        """POST a market day order; never retried here (see the module doc)."""
        body: dict[str, Any] = {
            "symbol": request.symbol,
            "side": request.side,
            "type": "market",
            "time_in_force": "day",
            "client_order_id": request.client_order_id,
        }
        if request.notional is not None:
            body["notional"] = f"{request.notional:.2f}"
        else:
            body["qty"] = f"{request.qty:.9f}".rstrip("0").rstrip(".")
        return parse_order(self.request("POST", "/v2/orders", body=body, retry=False))

    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """The order placed with ``client_order_id``, or None when there is none (404)."""
        try:
            data = self.request(
                "GET",
                "/v2/orders:by_client_order_id",
                params={"client_order_id": client_order_id},
            )
        except BrokerError as exc:
            if exc.status == 404:
                return None
            raise
        return parse_order(data)

    def order(self, order_id: str) -> BrokerOrder:
        return parse_order(self.request("GET", f"/v2/orders/{order_id}"))

    def orders(self, after: dt.datetime, until: dt.datetime) -> list[BrokerOrder]:
        """Every order submitted between ``after`` and ``until`` (any status)."""
        params = {
            "status": "all",
            "after": after.isoformat(),
            "until": until.isoformat(),
            "limit": "500",
            "direction": "asc",
        }
        return [parse_order(o) for o in self.request("GET", "/v2/orders", params=params)]

    def cancel(self, order_id: str) -> None:
        """Ask Alpaca to cancel an open order (422 when it is no longer cancelable: ignored,
        the caller reads the order's final status next)."""
        try:
            self.request("DELETE", f"/v2/orders/{order_id}")
        except BrokerError as exc:
            if exc.status != 422:
                raise
            log.info("alpaca: order %s is no longer cancelable (%s)", order_id, exc.message)

    def positions(self) -> dict[str, float]:
        """Shares held per symbol (long positions positive, short negative)."""
        held: dict[str, float] = {}
        for p in self.request("GET", "/v2/positions"):
            qty = float(p["qty"])
            held[str(p["symbol"])] = -abs(qty) if p.get("side") == "short" else qty
        return held
