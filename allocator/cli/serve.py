"""``allocator serve``: the read-only web app (dashboard, runs, trades, JSON API) under uvicorn.

    allocator serve [--host 127.0.0.1] [--port 8000] [--if-down]

Binding to anything but loopback needs ``ALLOCATOR_API_TOKEN`` (every request then carries
``Authorization: Bearer <token>``); without it the command refuses to start, on one line. A
database that is unreachable or not migrated does not stop the app: ``/api/health`` and the
dashboard say what is wrong.

``--if-down`` is the watchdog that ``allocator crontab --with-web`` runs every five minutes: it
asks ``/api/health`` on the port first and exits 0 at once, printing nothing, when the app
answers (200, or 503 while the database is not ready, or 401 when a token is needed and not
the one configured); only when nothing answers does it log one line and start the app.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request

from allocator.cli.bounds import whole_number
from allocator.shell.settings import get_settings

EXIT_OK = 0
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: Seconds the watchdog waits for ``/api/health``: a hung app counts as down.
HEALTH_TIMEOUT = 10
#: Answers of ``/api/health`` that only this app gives: ready, not ready, or token refused.
APP_STATUSES = (200, 401, 503)


def health_url(host: str, port: int) -> str:
    """Where the watchdog asks: the bound address, or loopback for a wildcard bind."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/api/health"


def app_answers(url: str, token: str | None = None) -> tuple[bool, str]:
    """Whether the web app answers ``url`` (its ``/api/health``), and what was seen.

    The app answers 200 or 503 with a JSON object holding ``status`` (401 with a ``detail``
    when a token is needed). Anything else on that port (another program, or nothing) is not
    the app.
    """
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT) as answer:
            status, body = answer.status, answer.read(65_536)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(65_536)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, str(getattr(exc, "reason", exc))
    try:
        found = json.loads(body)
    except ValueError:
        found = None
    ours = status in APP_STATUSES and isinstance(found, dict)
    ours = ours and ("status" in found or (status == 401 and "detail" in found))
    return ours, f"HTTP {status}"


def cmd_serve(args: argparse.Namespace) -> int:
    from allocator.web.security import read_web_settings, require_token_for

    web = read_web_settings()
    require_token_for(args.host, web)
    if args.if_down:
        url = health_url(args.host, args.port)
        up, seen = app_answers(url, web.api_token)
        if up:
            return EXIT_OK
        print(f"web app down ({url}: {seen}); starting allocator serve", flush=True)

    import uvicorn

    from allocator.web.app import create_app

    settings = get_settings()
    app = create_app(settings, web)
    print(f"serving {settings.masked_database_url} on http://{args.host}:{args.port}/")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", server_header=False)
    return EXIT_OK


def add_serve_parser(sub) -> argparse.ArgumentParser:
    serve = sub.add_parser("serve", help="the read-only web app: dashboard, runs and JSON API")
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})"
    )
    serve.add_argument(
        "--port",
        type=whole_number(1, 65_535),
        default=DEFAULT_PORT,
        help=f"port, 1..65535 (default {DEFAULT_PORT})",
    )
    serve.add_argument(
        "--if-down",
        action="store_true",
        help="watchdog (cron, every 5 minutes): start only if /api/health does not answer",
    )
    serve.set_defaults(func=cmd_serve)
    return serve
