"""The read-only JSON API under ``/api/``; its schema is at ``/openapi.json``.

Long lists are paged with ``limit`` (1..``MAX_LIMIT``, default ``DEFAULT_LIMIT``) and ``offset``
(0..``MAX_OFFSET``); each page says its ``next_offset`` (None on the last page). A number out of
its range, or not a whole number, is answered 422 naming the parameter and its allowed range
(:func:`invalid_request`), never passed on to the database.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from allocator.shell.persistence import browse
from allocator.shell.persistence.configs import active_version, all_versions
from allocator.shell.persistence.jobruns import STATUSES, list_runs
from allocator.web import views

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
#: Far beyond any table here; it keeps ``offset + limit`` within every database's integers.
MAX_OFFSET = 1_000_000_000
#: The largest id an ``INTEGER`` primary key holds on PostgreSQL (2**31 - 1).
MAX_ID = 2_147_483_647
#: The allowed range of every whole number a request may carry, by parameter name.
BOUNDS = {"limit": (1, MAX_LIMIT), "offset": (0, MAX_OFFSET), "run_id": (1, MAX_ID)}
#: The dates a ``start`` or ``end`` filter may name: far beyond any history, within every
#: database's date type.
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
DATE_BOUNDS = {"start": (FIRST_DATE, LAST_DATE), "end": (FIRST_DATE, LAST_DATE)}
#: Characters of a rejected value echoed back in a 422 answer.
SHOWN_INPUT = 40

router = APIRouter(prefix="/api", tags=["api"])


def run_id_parameter() -> int:
    """The ``run_id`` path parameter: a job run's id, 1..``MAX_ID``."""
    return PathParameter(..., ge=1, le=MAX_ID, description="the job run's id")


def _shown(value: Any) -> Any:
    text = value if isinstance(value, str) else None
    if text is None or len(text) <= SHOWN_INPUT:
        return value
    return f"{text[: SHOWN_INPUT - 3]}... ({len(text)} characters)"


def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """422 for a malformed request: each error names the parameter, and a number or a date its
    range (JSON; a short page for a browser, which asks for HTML, outside ``/api/``).

    FastAPI's own answer echoes the whole value (a 4,001-digit ``offset`` comes back in full)
    and says only which bound was crossed; this one says what is allowed.
    """
    details = []
    for error in exc.errors():
        name = str(error.get("loc", ("", ""))[-1])
        detail = {"loc": list(error.get("loc", ())), "msg": error.get("msg", "invalid")}
        detail["type"] = error.get("type", "value_error")
        if "input" in error:
            detail["input"] = _shown(error["input"])
        if name in BOUNDS:
            low, high = BOUNDS[name]
            detail["msg"] = f"{name} must be a whole number from {low} to {high}"
            detail["allowed"] = {"minimum": low, "maximum": high}
        elif name in DATE_BOUNDS and detail["type"] != "date_order":
            low, high = DATE_BOUNDS[name]
            detail["msg"] = f"{name} must be a date (YYYY-MM-DD) from {low} to {high}"
            detail["allowed"] = {"minimum": low.isoformat(), "maximum": high.isoformat()}
        details.append(detail)
    wants_page = "text/html" in request.headers.get("accept", "")
    if wants_page and not request.url.path.startswith("/api/"):
        from allocator.web.templating import templates

        page = templates.TemplateResponse(request, "invalid.html", {"details": details})
        page.status_code = 422
        return page
    return JSONResponse({"detail": details}, status_code=422)


def engine_of(request: Request) -> sa.Engine:
    return request.app.state.engine


def folders_of(request: Request) -> dict:
    return request.app.state.artifact_folders


class Page:
    """``limit`` and ``offset`` query parameters, shared by every paged list."""

    def __init__(
        self,
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="rows per page"),
        offset: int = Query(0, ge=0, le=MAX_OFFSET, description="rows to skip"),
    ) -> None:
        self.limit, self.offset = limit, offset

    def answer(self, rows: list[Any]) -> dict[str, Any]:
        """One page of ``rows`` (fetched with ``limit + 1`` to learn whether more follow)."""
        more = len(rows) > self.limit
        return {
            "items": views.jsonable(rows[: self.limit]),
            "limit": self.limit,
            "offset": self.offset,
            "next_offset": self.offset + self.limit if more else None,
        }


@router.get("/health", summary="database, migration, newest bar and signal, pending orders")
def health(engine: sa.Engine = Depends(engine_of)) -> JSONResponse:
    found = views.health_view(engine)
    return JSONResponse(found, status_code=200 if found["status"] == "ok" else 503)


def _checked_date(raw: str | None, name: str) -> dt.date | None:
    """``raw`` as a date within :data:`DATE_BOUNDS` (blank: None), else a 422 naming ``name``."""
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        day = None
    low, high = DATE_BOUNDS[name]
    if day is None or not low <= day <= high:
        error = {"loc": ("query", name), "msg": "not a date", "type": "value_error", "input": raw}
        raise RequestValidationError([error])
    return day


SYMBOL_PATTERN = r"^[A-Za-z0-9.\-]{1,16}$"


class Filters:
    """``symbol``, ``start`` and ``end`` query parameters, shared by the prices and trades lists.

    A date outside :data:`DATE_BOUNDS`, a malformed one, a ``start`` after ``end`` or a symbol
    that is not 1-16 letters, digits, dots or dashes is answered 422 (:func:`invalid_request`).
    """

    def __init__(
        self,
        symbol: str | None = Query(None, description="one symbol, e.g. SPY; blank: all of them"),
        start: str | None = Query(None, description="first date, YYYY-MM-DD (1900..2199)"),
        end: str | None = Query(None, description="last date, YYYY-MM-DD (1900..2199)"),
    ) -> None:
        if symbol and not re.fullmatch(SYMBOL_PATTERN, symbol):
            message = "symbol must be 1-16 letters, digits, dots or dashes, e.g. SPY"
            error = {"loc": ("query", "symbol"), "msg": message, "type": "value_error"}
            raise RequestValidationError([{**error, "input": symbol}])
        self.symbol = symbol.upper() if symbol else None
        self.start, self.end = _checked_date(start, "start"), _checked_date(end, "end")
        if self.start and self.end and self.start > self.end:
            message = f"start {self.start} is after end {self.end}: swap them"
            error = {"loc": ("query", "start"), "msg": message, "type": "date_order"}
            raise RequestValidationError([error])

    def query(self) -> dict[str, str]:
        """The filters in use, as query parameters (for the pages' links)."""
        found = {"symbol": self.symbol, "start": self.start, "end": self.end}
        return {k: str(v) for k, v in found.items() if v is not None}


@router.get("/prices", summary="stored daily bars, oldest first")
def prices(
    filters: Filters = Depends(),
    page: Page = Depends(),
    engine: sa.Engine = Depends(engine_of),
) -> dict:
    with engine.connect() as conn:
        symbol = filters.symbol
        symbols = [symbol] if symbol else list(active_version(conn).config.assets)
        rows = browse.price_page(
            conn, symbols, filters.start, filters.end, limit=page.limit + 1, offset=page.offset
        )
    return page.answer(rows)


@router.get("/signals", summary="daily signals with features_used, newest first")
def signals(page: Page = Depends(), engine: sa.Engine = Depends(engine_of)) -> dict:
    with engine.connect() as conn:
        found = browse.signal_page(conn, limit=page.limit + 1, offset=page.offset)
    return page.answer([views.signal_view(s) for s in found])


@router.get("/portfolio", summary="positions, cash and total value at the last close")
def portfolio(engine: sa.Engine = Depends(engine_of)) -> dict:
    with engine.connect() as conn:
        return views.portfolio_view(conn)


@router.get("/cash", summary="cash ledger entries, newest first")
def cash(page: Page = Depends(), engine: sa.Engine = Depends(engine_of)) -> dict:
    with engine.connect() as conn:
        return page.answer(browse.ledger_page(conn, limit=page.limit + 1, offset=page.offset))


@router.get("/performance", summary="valuations and flow-adjusted metrics")
def performance(engine: sa.Engine = Depends(engine_of)) -> dict:
    with engine.connect() as conn:
        return views.performance_view(conn)


@router.get("/slippage", summary="fills against the official open: recent fills, by month")
def slippage(engine: sa.Engine = Depends(engine_of)) -> dict:
    with engine.connect() as conn:
        return views.slippage_view(conn)


@router.get("/configs", summary="every trading config version, oldest first")
def configs(engine: sa.Engine = Depends(engine_of)) -> dict:
    with engine.connect() as conn:
        return {"items": [views.config_view(v) for v in all_versions(conn)]}


def _date_or_none(raw: str | None, name: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise HTTPException(422, f"{name}={raw!r} is not a date: use YYYY-MM-DD") from None


def run_filters(
    job: str | None = None,
    status: str | None = None,
    since: str | None = Query(None, description="first trade date, YYYY-MM-DD"),
    until: str | None = Query(None, description="last trade date, YYYY-MM-DD"),
) -> dict[str, Any]:
    """The runs filters shared by the API and the runs page (blank values mean no filter)."""
    if status and status not in STATUSES:
        raise HTTPException(422, f"status={status!r}: use one of {', '.join(STATUSES)}")
    return {
        "job": job or None,
        "status": status or None,
        "since": _date_or_none(since, "since"),
        "until": _date_or_none(until, "until"),
    }


@router.get("/runs", summary="job runs, newest first, with links to their artifacts")
def runs(
    filters: dict = Depends(run_filters),
    page: Page = Depends(),
    engine: sa.Engine = Depends(engine_of),
    folders: dict = Depends(folders_of),
) -> dict:
    found = list_runs(engine, **filters, limit=page.limit + 1, offset=page.offset)
    return page.answer([views.run_view(r, folders) for r in found])


@router.get("/runs/{run_id}", summary="one job run with links to its artifacts")
def run(
    run_id: int = run_id_parameter(),
    engine: sa.Engine = Depends(engine_of),
    folders: dict = Depends(folders_of),
) -> dict:
    found = browse.find_run(engine, run_id)
    if found is None:
        raise HTTPException(404, f"no job run {run_id}")
    return views.run_view(found, folders)
