"""``create_app(settings)``: the read-only FastAPI app over the database and the archive.

Requests pass, outermost first: CORS (only with explicit origins), the bearer token (only when
one is configured), the read-only gate (GET and HEAD; HEAD answered as GET without a body), then
the API, the pages and the artifacts. A database that cannot be reached is answered 503 with a
short page (JSON under ``/api/``), never a bare 500 (:func:`database_unavailable`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from allocator import __version__
from allocator.exceptions import DatabaseError
from allocator.shell.persistence import make_engine
from allocator.shell.settings import Settings, get_settings, mask_url
from allocator.web import api, artifacts, dashboard, docs, pages, trades
from allocator.web.security import WebSettings, bearer_matches, read_web_settings

log = logging.getLogger(__name__)

READ_METHODS = ("GET", "HEAD")
#: What a database that is down, refusing connections or not migrated raises.
DATABASE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError, DatabaseError)
#: Seconds a client is asked to wait before it asks again.
RETRY_AFTER = "30"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"referrer-policy", b"no-referrer"),
]


class ReadOnlyGate:
    """Answers 405 to anything but GET and HEAD; HEAD runs the GET route and drops the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in READ_METHODS:
            answer = PlainTextResponse(
                "405 Method Not Allowed: this app is read-only (GET and HEAD only)",
                status_code=405,
                headers={"Allow": ", ".join(READ_METHODS)},
            )
            await answer(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            elif message["type"] == "http.response.body" and method == "HEAD":
                message = {**message, "body": b""}
            await send(message)

        inner = {**scope, "method": "GET"} if method == "HEAD" else scope
        await self.app(inner, receive, send_with_headers)


class BearerToken:
    """Answers 401 unless the request carries ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not bearer_matches(given, self.token):
                answer = JSONResponse(
                    {"detail": "a bearer token is required: Authorization: Bearer <token>"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


def database_unavailable(request: Request, exc: Exception) -> Response:
    """503 for a request the database cannot answer: JSON under ``/api/``, else a short page.

    The reason (with host, user or file path) goes to the log on one line, masked; the answer
    says only what happened (``/api/health`` says more).
    """
    original = getattr(exc, "orig", None) or exc
    reason = (str(original).strip().splitlines() or [type(exc).__name__])[0]
    log.warning("database unavailable for %s: %s", request.url.path, mask_url(reason))
    message = "the database is unavailable: try again in a minute"
    headers = {"Retry-After": RETRY_AFTER}
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": message}, status_code=503, headers=headers)
    from allocator.web.templating import templates

    page = templates.TemplateResponse(request, "unavailable.html", {"message": message})
    page.status_code = 503
    page.headers.update(headers)
    return page


def create_app(settings: Settings | None = None, web: WebSettings | None = None) -> FastAPI:
    """The app over ``settings.database_url`` and the runs and reports folders."""
    settings = settings or get_settings()
    web = web or read_web_settings()
    engine = make_engine(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="Capital Allocator",
        version=__version__,
        description="Read-only view of the database and the audit archive.",
        lifespan=lifespan,
        # Swagger UI and ReDoc load their scripts from a CDN: /docs is served offline instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.artifact_folders = {"reports": settings.reports_dir, "runs": settings.runs_dir}
    app.add_exception_handler(RequestValidationError, api.invalid_request)
    for error in DATABASE_DOWN:
        app.add_exception_handler(error, database_unavailable)
    app.include_router(api.router)
    app.include_router(trades.api)
    app.include_router(artifacts.router)
    app.include_router(dashboard.router)
    app.include_router(pages.router)
    app.include_router(trades.pages)
    app.include_router(docs.router)
    # add_middleware wraps what is already there: the last added runs first.
    app.add_middleware(ReadOnlyGate)
    if web.api_token:
        app.add_middleware(BearerToken, token=web.api_token)
    if web.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(web.cors_origins),
            allow_methods=list(READ_METHODS),
            allow_headers=["Authorization"],
        )
    return app
