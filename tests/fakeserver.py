"""What every fake vendor server shares: a threaded HTTP server on a real socket, the bars it
serves, scripted failures and the record of requests.

A fake vendor (:mod:`tests.fakevendor`, :mod:`tests.faketiingo`) derives from :class:`FakeServer`
and adds what is its own: its URL, how it answers a request (:meth:`FakeServer.answer`), its
failure kinds and how it logs a request line. Nothing here knows a vendor's wording.
"""

from __future__ import annotations

import collections
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

import pandas as pd

BAR_COLUMNS = ("date", "open", "high", "low", "close", "volume")
#: ``fail(ANY_SYMBOL, ...)`` scripts a failure for whichever symbol is asked next.
ANY_SYMBOL = "*"


@dataclass
class Reply:
    """One answer: status, body and content type; or hold it (``hang``), or drop the connection."""

    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    hang: bool = False
    disconnect: bool = False


def normalise_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the bar columns only, ``date`` as :class:`datetime.date`, sorted ascending."""
    lower = frame.rename(columns=lambda c: str(c).strip().lower())
    if "date" not in lower.columns and "timestamp" in lower.columns:
        lower = lower.rename(columns={"timestamp": "date"})
    missing = [c for c in BAR_COLUMNS if c not in lower.columns]
    if missing:
        raise ValueError(f"bars need columns {', '.join(BAR_COLUMNS)}; missing {missing}")
    out = lower.loc[:, list(BAR_COLUMNS)].copy()
    out["date"] = pd.to_datetime(out["date"]).dt.date
    return out.sort_values("date").reset_index(drop=True)


class FakeServer:
    """A local stand-in for a vendor's API: the lifecycle, the bars and the scripted failures.

    A subclass sets ``failure_kinds`` (kind -> what the fake answers), ``thread_name`` and
    ``server_version``, and implements :meth:`answer` and :meth:`log_request_line`.
    ``requests`` lists what every request asked, oldest first, as the subclass records it.
    """

    failure_kinds: ClassVar[Mapping[str, str]]
    thread_name: ClassVar[str]
    server_version: ClassVar[str]

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        expected_api_key: str | None = None,
        hang_seconds: float = 5.0,
    ):
        self.host, self.port = host, port
        self.expected_api_key = expected_api_key
        self.hang_seconds = hang_seconds
        self.requests: list[dict[str, str]] = []
        self._bars: dict[str, pd.DataFrame] = {}
        self._failures: dict[str, collections.deque[str]] = collections.defaultdict(
            collections.deque
        )
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on ``host:port`` (port 0: any free port) in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server((self.host, self.port), _Handler)
        httpd.fake = self
        self._httpd, self.port = httpd, httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},  # stop() waits up to one interval
            name=f"{self.thread_name}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes any request held by a ``timeout`` failure."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- what to serve ------------------------------------------------------------------------

    def set_bars(self, symbol: str, frame: pd.DataFrame) -> None:
        """Serve ``frame`` (date, open, high, low, close, volume) as the history of ``symbol``."""
        bars = normalise_bars(frame)
        with self._lock:
            self._bars[symbol.upper()] = bars

    def load_csv_dir(self, directory: str | Path) -> list[str]:
        """Serve every ``SYMBOL.csv`` in ``directory``; returns the symbols loaded."""
        loaded = []
        for path in sorted(Path(directory).glob("*.csv")):
            self.set_bars(path.stem, pd.read_csv(path))
            loaded.append(path.stem.upper())
        return loaded

    def fail(self, symbol: str, kind: str, times: int = 1) -> None:
        """Answer the next ``times`` requests for ``symbol`` with failure ``kind``.

        ``symbol`` may be :data:`ANY_SYMBOL`; a symbol's own script is used first.
        """
        if kind not in self.failure_kinds:
            raise ValueError(
                f"unknown failure kind {kind!r}; choose from {sorted(self.failure_kinds)}"
            )
        with self._lock:
            self._failures[symbol.upper()].extend([kind] * times)

    def calls(self, symbol: str | None = None) -> list[dict[str, str]]:
        """Recorded requests, optionally only those for ``symbol``."""
        with self._lock:
            recorded = list(self.requests)
        if symbol is None:
            return recorded
        return [r for r in recorded if r.get("symbol", "").upper() == symbol.upper()]

    def reset(self) -> None:
        """Forget recorded requests and pending failures (bars and settings stay)."""
        with self._lock:
            self.requests.clear()
            self._failures.clear()

    @property
    def url(self) -> str:
        """The URL a client puts in the vendor's ``*_BASE_URL``."""
        raise NotImplementedError

    # -- answering ----------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str], headers: Message) -> Reply:
        """The reply to a GET of ``path`` with ``query`` and request ``headers``."""
        raise NotImplementedError

    def log_request_line(self, line: str) -> None:
        """Log one line of http.server's request log (the vendor decides what to mask)."""
        raise NotImplementedError

    def _next_failure(self, symbol: str) -> str | None:
        with self._lock:
            for key in (symbol, ANY_SYMBOL):
                queue = self._failures.get(key)
                if queue:
                    return queue.popleft()
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (timeout test) leaves a broken pipe: not worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def version_string(self) -> str:
        return f"{self.server.fake.server_version} {self.sys_version}"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        fake = self.server.fake
        reply = fake.answer(parts.path, query, self.headers)
        if reply.disconnect:
            self.close_connection = True
            return
        if reply.hang:
            fake._stopping.wait(fake.hang_seconds)
        body = reply.body.encode("utf-8")
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        self.server.fake.log_request_line(format % args)


def serve_until_interrupted(fake: FakeServer, vendor: str, csv_dir: Path | None) -> int:
    """Serve ``csv_dir``'s ``SYMBOL.csv`` files until Ctrl-C or SIGTERM; print where, once."""
    symbols = fake.load_csv_dir(csv_dir) if csv_dir else []

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    with fake:
        print(
            f"fake {vendor} serving {', '.join(symbols) or 'no symbols'} at {fake.url}",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0
