"""Trade lists, paged and filtered by symbol and date: the ledger's and a backtest run's.

- ``/trades`` and ``/api/trades``: the trades of the database (pending, filled, cancelled),
  newest first;
- ``/runs/{id}/trades`` and ``/api/runs/{id}/trades``: the full trade list of a backtest run,
  read from the Parquet file beside its archived notebook (:func:`runinfo.run_trades`), in the
  order the run made them. A report shows a few trades and links here; as it is written before
  it knows its run's id, it may link ``/runs/by-notebook/<stem>/trades`` instead (``<stem>``: its
  archived notebook's name without ``.ipynb``, e.g. ``backtest_2026-12-05_20261205T135018Z``),
  which redirects to the run's page.

Both take ``symbol``, ``start``, ``end`` (:class:`~allocator.web.api.Filters`), ``limit`` and
``offset`` (:class:`~allocator.web.api.Page`); anything out of range is answered 422.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParameter
from fastapi.responses import HTMLResponse, RedirectResponse

from allocator.shell.persistence import browse
from allocator.shell.persistence.jobruns import JobRun
from allocator.web import runinfo, views
from allocator.web.api import Filters, Page, engine_of, folders_of, run_id_parameter
from allocator.web.templating import templates

api = APIRouter(prefix="/api", tags=["api"])
pages = APIRouter(include_in_schema=False)
#: An archived notebook's name (allocator.notebook.archive): job_date_stamp[-n].
NOTEBOOK_STEM = r"^[a-z][a-z0-9_]*_\d{4}-\d{2}-\d{2}_\d{8}T\d{6}Z(-\d+)?$"


def _ledger_rows(engine: sa.Engine, filters: Filters, page: Page) -> list[dict]:
    with engine.connect() as conn:
        return browse.trade_page(
            conn,
            limit=page.limit + 1,
            offset=page.offset,
            symbol=filters.symbol,
            start=filters.start,
            end=filters.end,
        )


def _run_with_trades(engine: sa.Engine, run_id: int) -> tuple[JobRun, pd.DataFrame]:
    """The run ``run_id`` and its full trade list, or 404 saying why there is none."""
    run = browse.find_run(engine, run_id)
    if run is None:
        raise HTTPException(404, f"no job run {run_id}")
    try:
        frame = runinfo.run_trades(run)
    except runinfo.SidecarUnreadable as exc:
        raise HTTPException(404, str(exc)) from None
    if frame is None:
        raise HTTPException(
            404, f"run {run_id} ({run.job}) kept no trade list: only a backtest run has one"
        )
    return run, frame


def selected(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The rows of a run's trade list that pass ``filters`` (dates are ISO text there)."""
    keep = pd.Series(True, index=frame.index)
    if filters.symbol:
        keep &= frame["symbol"] == filters.symbol
    dates = frame["date"].astype(str).str[:10]
    if filters.start:
        keep &= dates >= filters.start.isoformat()
    if filters.end:
        keep &= dates <= filters.end.isoformat()
    return frame[keep]


def _page_of(frame: pd.DataFrame, page: Page) -> list[dict]:
    rows = frame.iloc[page.offset : page.offset + page.limit + 1]
    return rows.to_dict(orient="records")


@api.get("/trades", summary="trades (pending, filled, cancelled), newest first")
def trades(
    filters: Filters = Depends(), page: Page = Depends(), engine: sa.Engine = Depends(engine_of)
) -> dict:
    return page.answer(_ledger_rows(engine, filters, page))


@api.get("/runs/{run_id}/trades", summary="a backtest run's full trade list, in its order")
def run_trades(
    run_id: int = run_id_parameter(),
    filters: Filters = Depends(),
    page: Page = Depends(),
    engine: sa.Engine = Depends(engine_of),
) -> dict:
    _, frame = _run_with_trades(engine, run_id)
    chosen = selected(frame, filters)
    return {"run_id": run_id, "total": len(chosen), **page.answer(_page_of(chosen, page))}


def _row(trade: dict[str, Any]) -> dict[str, Any]:
    """A trade of either list as the trades table shows it."""
    pending = trade.get("status") == "pending"
    return {
        "date": str(trade.get("trade_date") or trade.get("date") or "")[:10],
        "symbol": trade.get("symbol"),
        "action": trade.get("action"),
        "status": trade.get("status") or "filled",
        "quantity": trade.get("ordered_quantity") if pending else trade.get("quantity"),
        "price": trade.get("price"),
        "amount": trade.get("ordered_amount") if pending else trade.get("amount"),
        "realized_pnl": trade.get("realized_pnl"),
    }


def _render(request: Request, context: dict[str, Any]) -> HTMLResponse:
    answer = context["page"]
    context["rows"] = [_row(t) for t in answer["items"]]
    context["first_row"] = answer["offset"] + 1
    context["last_row"] = answer["offset"] + len(answer["items"])
    return templates.TemplateResponse(request, "trades.html", context)


@pages.get("/trades", response_class=HTMLResponse)
def trades_page(
    request: Request,
    filters: Filters = Depends(),
    page: Page = Depends(),
    engine: sa.Engine = Depends(engine_of),
) -> HTMLResponse:
    answer = page.answer(_ledger_rows(engine, filters, page))
    with engine.connect() as conn:
        symbols, span = browse.trade_symbols(conn), browse.trade_span(conn)
    context = {"page": answer, "filters": filters.query(), "symbols": symbols, "span": span}
    return _render(request, {**context, "run": None, "total": None, "action": "/trades"})


@pages.get("/runs/{run_id}/trades", response_class=HTMLResponse)
def run_trades_page(
    request: Request,
    run_id: int = run_id_parameter(),
    filters: Filters = Depends(),
    page: Page = Depends(),
    engine: sa.Engine = Depends(engine_of),
) -> HTMLResponse:
    run, frame = _run_with_trades(engine, run_id)
    chosen = selected(frame, filters)
    dates = frame["date"].astype(str).str[:10]
    span = (dates.min(), dates.max()) if len(frame) else (None, None)
    shown = views.run_view(run, folders_of(request))
    context = {
        "page": page.answer(_page_of(chosen, page)),
        "filters": filters.query(),
        "symbols": sorted(frame["symbol"].unique()),
        "span": span,
        "run": shown,
        "total": len(chosen),
        "all_trades": len(frame),
        "action": f"/runs/{run_id}/trades",
    }
    return _render(request, context)


@pages.get("/runs/by-notebook/{stem}/trades")
def trades_by_notebook(
    request: Request,
    stem: str = PathParameter(..., pattern=NOTEBOOK_STEM, max_length=120),
    engine: sa.Engine = Depends(engine_of),
) -> RedirectResponse:
    """The trade list of the run archived as ``<stem>.ipynb`` (a report's link), by redirect."""
    run = browse.find_run_by_notebook(engine, stem)
    if run is None:
        raise HTTPException(404, f"no run archived as {stem}.ipynb in this database")
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/runs/{run.id}/trades{query}", status_code=307)
