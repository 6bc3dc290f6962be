"""``allocator serve``: the read-only web app (dashboard, runs, JSON API) under uvicorn.

    allocator serve [--host 127.0.0.1] [--port 8000]

Binding to anything but loopback needs ``ALLOCATOR_API_TOKEN`` (every request then carries
``Authorization: Bearer <token>``); without it the command refuses to start, on one line. A
database that is unreachable or not migrated does not stop the app: ``/api/health`` and the
dashboard say what is wrong.
"""

from __future__ import annotations

import argparse

from allocator.cli.bounds import whole_number
from allocator.shell.settings import get_settings

EXIT_OK = 0
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from allocator.web.app import create_app
    from allocator.web.security import read_web_settings, require_token_for

    web = read_web_settings()
    require_token_for(args.host, web)
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
    serve.set_defaults(func=cmd_serve)
    return serve
