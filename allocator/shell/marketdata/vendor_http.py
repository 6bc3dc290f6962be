"""GET calls to a market-data vendor's JSON API: call spacing, retries, typed failures, redaction.

Nothing here knows one vendor's wording. A vendor module describes its API with a
:class:`VendorAPI` (its name, the settings to name in hints, how the key is sent, in a query
parameter or a header, and its logger) and hands :meth:`VendorClient.get_json` a check that turns
the vendor's own refusals, which often come back as HTTP 200, into
:class:`~allocator.exceptions.MarketDataError` subclasses. The client does the rest the same way
for every vendor:

- at least ``delay`` seconds between the starts of two calls (only the remainder is slept);
- retries of transient failures (HTTP 429 and 5xx, timeouts, dropped connections, and any
  :class:`MarketDataError` whose ``transient`` is true), retry ``n`` (from 0) after
  ``backoff * 2**n`` seconds;
- the API key never reaches an exception message or a log line (urllib3's DEBUG lines included).

An object that calls a vendor (a bar source, a quote source) derives from
:class:`VendorClientSettings`, which builds its client from the same constructor arguments for
every vendor, with the vendor's defaults.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests

from allocator.exceptions import (
    MalformedResponseError,
    MarketDataError,
    SettingsError,
    TransientVendorError,
    VendorError,
)
from allocator.shell.settings import mask_url

logger = logging.getLogger(__name__)

#: The most characters of vendor text quoted in one message.
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


@dataclass(frozen=True)
class VendorAPI:
    """What a :class:`VendorClient` needs to know about one vendor's API.

    Parameters
    ----------
    name:
        The vendor as messages name it, e.g. ``"Alpha Vantage"``.
    key_variable, url_variable:
        The settings a user fixes when the key is empty or the URL is wrong, e.g.
        ``ALPHAVANTAGE_API_KEY`` and ``ALPHAVANTAGE_BASE_URL``.
    default_url, default_delay, default_max_retries, default_backoff:
        What a :class:`VendorClientSettings` of this vendor uses when its caller leaves the base
        URL, the call spacing, the retries or the backoff unset (the ``*_DEFAULT_*`` settings).
    key_param:
        The query parameter that carries the API key, or ``None`` when the key travels in a header.
    key_header, key_scheme:
        The request header that carries the key instead (e.g. ``"Authorization"``) and the word
        before the key in it (e.g. ``"Token"``): a key in a header never appears in a URL, so not
        in a proxy's or urllib3's log either.
    fixed_params:
        Query parameters sent with every call (e.g. ``{"datatype": "json"}``).
    log:
        Where the client logs its waits, requests and retries: the vendor module's logger, so
        a cron log line names the vendor's module.
    """

    name: str
    key_variable: str
    url_variable: str
    default_url: str
    default_delay: float
    default_max_retries: int
    default_backoff: float
    key_param: str | None = "apikey"
    key_header: str | None = None
    key_scheme: str = ""
    fixed_params: Mapping[str, str] = field(default_factory=dict)
    log: logging.Logger = logger


@dataclass(frozen=True)
class _Call:
    """One :meth:`VendorClient.get_json` request, as its retries repeat it."""

    symbol: str
    params: Mapping[str, str]
    origin: str
    check: Callable[[Any], None]
    path: str
    refusal: Callable[[requests.Response], None] | None
    json_types: tuple[type, ...]


class VendorClient:
    """Calls to one vendor's JSON API with one key: call spacing, retries and typed errors.

    Parameters
    ----------
    api:
        The vendor's description (:class:`VendorAPI`).
    api_key:
        Sent as ``api.key_param`` or in ``api.key_header``; redacted from every message this
        client writes.
    base_url:
        The endpoint every call GETs.
    delay, timeout, max_retries, backoff:
        Minimum seconds between call starts, seconds to wait for an answer, retries after the
        first call (transient failures only), and the base of the exponential backoff.
    session, sleep, clock:
        A ``requests.Session`` (a new one when None), ``time.sleep`` and ``time.monotonic``;
        injected by tests.
    """

    def __init__(
        self,
        api: VendorAPI,
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
            raise SettingsError(f"{api.key_variable} is empty: export it or add it to .env")
        if delay < 0 or timeout <= 0 or max_retries < 0 or backoff < 0:
            raise SettingsError(
                f"{api.name} delay, backoff and max_retries must be >= 0 and timeout > 0 "
                f"(got delay={delay}, timeout={timeout}, max_retries={max_retries}, "
                f"backoff={backoff})"
            )
        self.api = api
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
        """Close the HTTP session's pooled connections."""
        self._session.close()

    def get_json(
        self,
        symbol: str,
        params: Mapping[str, str],
        *,
        origin: str,
        check: Callable[[Any], None],
        path: str = "",
        refusal: Callable[[requests.Response], None] | None = None,
        json_types: tuple[type, ...] = (dict,),
    ) -> Any:
        """The JSON the vendor answers to ``params``, after ``check`` accepted it.

        Retries transient failures; raises the last :class:`MarketDataError` otherwise.
        ``origin`` names the call in messages (e.g. ``"Alpha Vantage GLOBAL_QUOTE"``);
        ``check`` raises a :class:`MarketDataError` when the answer is a refusal, not data.
        ``path`` is appended to the base URL (a vendor with one URL per symbol). ``refusal``,
        when given, sees every answer of HTTP 400 or more first and may raise a vendor-specific
        error (an unknown symbol, a bad key); what it lets through gets the generic handling.
        ``json_types`` are the JSON values accepted as an answer (objects only by default).
        """
        call = _Call(symbol, params, origin, check, path, refusal, json_types)
        attempt = 0
        while True:
            try:
                return self._get_once(call)
            except MarketDataError as exc:
                if not exc.transient or attempt >= self.max_retries:
                    raise
                wait = self.backoff * 2**attempt
                attempt += 1
                self.api.log.warning(
                    "%s; retry %d of %d in %.1f s", exc, attempt, self.max_retries, wait
                )
                self._sleep(wait)

    def _wait_for_slot(self) -> None:
        """Sleep only what is left of ``delay`` since the previous call started."""
        if self._last_call is not None and self.delay > 0:
            remaining = self.delay - (self._clock() - self._last_call)
            if remaining > 0:
                self.api.log.debug("waiting %.2f s between %s calls", remaining, self.api.name)
                self._sleep(remaining)
        self._last_call = self._clock()

    def _get_once(self, call: _Call) -> Any:
        key = {self.api.key_param: self._api_key} if self.api.key_param else {}
        query = {**call.params, **key, **self.api.fixed_params}
        headers = {}
        if self.api.key_header:
            headers[self.api.key_header] = f"{self.api.key_scheme} {self._api_key}".lstrip()
        url = self.base_url.rstrip("/") + call.path if call.path else self.base_url
        self._wait_for_slot()
        response = self._send(call.symbol, url, query, headers)
        if call.refusal is not None and response.status_code >= 400:
            call.refusal(response)
        payload = self._read_response(call.symbol, response, call.origin, call.json_types)
        call.check(payload)
        return payload

    def _send(
        self, symbol: str, url: str, query: dict[str, str], headers: dict[str, str]
    ) -> requests.Response:
        """One GET; connection failures become typed errors, the key redacted from them."""
        name, where = self.api.name, mask_url(url)
        try:
            request = requests.Request("GET", url, params=query).prepare()
            self.api.log.debug("GET %s", mask_url(request.url or url))
            return self._session.get(url, params=query, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise TransientVendorError(
                symbol, f"{name} did not answer within {self.timeout:g} s ({where})"
            ) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise VendorError(
                symbol,
                f"cannot call {where!r}: {self.redact(str(exc))}; check {self.api.url_variable}",
            ) from None
        except requests.RequestException as exc:
            raise TransientVendorError(
                symbol, f"connection to {name} failed ({where}): {self.redact(str(exc))}"
            ) from None

    def _read_response(
        self,
        symbol: str,
        response: requests.Response,
        origin: str,
        json_types: tuple[type, ...] = (dict,),
    ) -> Any:
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientVendorError(
                symbol, f'{self.api.name} answered HTTP {status}: "{self.quote(response.text)}"'
            )
        if status >= 400:
            raise VendorError(
                symbol,
                f'{self.api.name} answered HTTP {status}: "{self.quote(response.text)}"; '
                f"check {self.api.url_variable}",
            )
        try:
            payload = json.loads(response.text)
        except ValueError:
            raise MalformedResponseError(
                symbol, f'{origin} answer is not JSON: "{self.quote(response.text)}"'
            ) from None
        if not isinstance(payload, json_types):
            wanted = "a JSON object" if json_types == (dict,) else "the JSON expected"
            raise MalformedResponseError(
                symbol, f'{origin} answer is not {wanted}: "{self.quote(response.text)}"'
            )
        return payload

    # -- redaction ----------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` without the API key, wherever the vendor or a library echoed it."""
        return mask_url(str(text)).replace(self._api_key, "***")

    def quote(self, text: Any) -> str:
        """Vendor text for a message: redacted, on one line, at most a few hundred characters."""
        flat = " ".join(self.redact(str(text)).split())
        return flat if len(flat) <= _QUOTE_LIMIT else flat[: _QUOTE_LIMIT - 3] + "..."


class VendorClientSettings:
    """An object that talks to one vendor through its own client, ``self._client``.

    A subclass names the vendor (``api``) and, when the vendor has refusals of its own to read,
    its :class:`VendorClient` subclass (``client_class``); the constructor is the same for every
    vendor.

    Parameters
    ----------
    api_key:
        The vendor's key, sent as ``api`` says; it never appears in an exception message, a log
        line or ``repr``.
    base_url:
        The vendor's endpoint (its ``*_BASE_URL`` setting); tests point it at a local fake.
        ``None``: ``api.default_url``.
    delay:
        Minimum seconds between the starts of two consecutive calls (retries included). Only the
        part not already elapsed is slept. ``None``: ``api.default_delay``.
    timeout:
        Seconds to wait for the vendor to connect and to answer.
    max_retries, backoff:
        Retries after the first call, for transient failures only; retry ``n`` (from 0) waits
        ``backoff * 2**n`` seconds first. ``None``: ``api.default_max_retries`` and
        ``api.default_backoff``.
    session, sleep, clock:
        Injected for tests: a ``requests.Session``, ``time.sleep`` and ``time.monotonic``.
    """

    api: ClassVar[VendorAPI]
    client_class: ClassVar[type[VendorClient]] = VendorClient
    _client: VendorClient

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        delay: float | None = None,
        timeout: float = 30.0,
        max_retries: int | None = None,
        backoff: float | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        api = self.api
        self._client = self.client_class(
            api,
            api_key,
            api.default_url if base_url is None else base_url,
            delay=api.default_delay if delay is None else delay,
            timeout=timeout,
            max_retries=api.default_max_retries if max_retries is None else max_retries,
            backoff=api.default_backoff if backoff is None else backoff,
            session=session,
            sleep=sleep,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={mask_url(self.base_url)!r}, delay={self.delay})"

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
