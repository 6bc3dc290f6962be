"""The read-only JSON API under ``/api/``; its schema is at ``/openapi.json``.

Long lists are paged with ``limit`` (1..``MAX_LIMIT``, default ``DEFAULT_LIMIT``) and ``offset``
(0..``MAX_OFFSET``); each page says its ``next_offset`` (None on the last page). A number out of
its range, or not a whole number, is answered 422 naming the parameter and its allowed range
(:func:`invalid_request`), never passed on to the database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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


def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 for a malformed request: each error names the parameter, and a number its range.

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
        details.append(detail)
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


@router.get("/prices", summary="stored daily bars, oldest first")
def prices(
    symbol: str | None = Query(None, description="one symbol; default: the active config's"),
    start: dt.date | None = None,
    end: dt.date | None = None,
    page: Page = Depends(),
    engine: sa.Engine = Depends(engine_of),
) -> dict:
    with engine.connect() as conn:
        symbols = [symbol.upper()] if symbol else list(active_version(conn).config.assets)
        rows = browse.price_page(
            conn, symbols, start, end, limit=page.limit + 1, offset=page.offset
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


@router.get("/trades", summary="trades (pending, filled, cancelled), newest first")
def trades(page: Page = Depends(), engine: sa.Engine = Depends(engine_of)) -> dict:
    with engine.connect() as conn:
        return page.answer(browse.trade_page(conn, limit=page.limit + 1, offset=page.offset))


@router.get("/performance", summary="valuations and flow-adjusted metrics")
def performance(engine: sa.Engine = Depends(engine_of)) -> dict:
    with engine.connect() as conn:
        return views.performance_view(conn)


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
