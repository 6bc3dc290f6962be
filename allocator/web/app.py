"""``create_app(settings)``: the read-only FastAPI app over the database and the archive.

Requests pass, outermost first: CORS (only with explicit origins), the bearer token (only when
one is configured), the read-only gate (GET and HEAD; HEAD answered as GET without a body), then
the API, the pages and the artifacts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from allocator import __version__
from allocator.shell.persistence import make_engine
from allocator.shell.settings import Settings, get_settings
from allocator.web import api, artifacts, pages
from allocator.web.security import WebSettings, bearer_matches, read_web_settings

READ_METHODS = ("GET", "HEAD")
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
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.artifact_folders = {"reports": settings.reports_dir, "runs": settings.runs_dir}
    app.add_exception_handler(RequestValidationError, api.invalid_request)
    app.include_router(api.router)
    app.include_router(artifacts.router)
    app.include_router(pages.router)
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
