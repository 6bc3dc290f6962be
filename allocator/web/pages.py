"""Server-rendered pages: the dashboard ``/``, the runs list ``/runs`` and one run ``/runs/{id}``.

Jinja2 templates ship inside the package (``allocator/web/templates``); the equity curve is an
inline SVG polyline computed here, so the pages need no front-end build and no chart library.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from allocator.notebook.jobspec import JOBS
from allocator.shell.persistence import browse
from allocator.shell.persistence.jobruns import STATUSES, list_runs
from allocator.web import views
from allocator.web.api import Page, engine_of, folders_of, run_filters, run_id_parameter

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
RECENT_RUNS = 10
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 220, 8

router = APIRouter(include_in_schema=False)


def money(value: float | None) -> str:
    if value is None:
        return ""
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


templates.env.filters["money"] = money
templates.env.filters["percent"] = percent
templates.env.filters["number"] = number


def polyline_points(
    series: Sequence[Sequence[float]], width: int, height: int, pad: int = CHART_PAD
) -> list[str]:
    """SVG ``points`` text for each series of ``series``, all on one shared y scale.

    x spreads the observations evenly over the width; y maps the lowest value of all series to
    the bottom and the highest to the top (a flat chart sits in the middle).
    """
    values = [v for s in series for v in s]
    if not values:
        return ["" for _ in series]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    found = []
    for s in series:
        step = inner_w / max(len(s) - 1, 1)
        points = []
        for i, v in enumerate(s):
            y = inner_h / 2 if high == low else inner_h * (high - v) / span
            points.append(f"{pad + i * step:.1f},{pad + y:.1f}")
        found.append(" ".join(points))
    return found


def equity_chart(valuations: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The dashboard's equity curve: total value and cumulative deposits per valuation."""
    if not valuations:
        return None
    value = [v["total_value"] for v in valuations]
    deposits = [v["cumulative_deposits"] for v in valuations]
    value_points, deposit_points = polyline_points([value, deposits], CHART_WIDTH, CHART_HEIGHT)
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "value_points": value_points,
        "deposit_points": deposit_points,
        "first": valuations[0]["valuation_date"],
        "last": valuations[-1]["valuation_date"],
        "low": min(value + deposits),
        "high": max(value + deposits),
    }


def _render(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, engine: sa.Engine = Depends(engine_of)) -> HTMLResponse:
    health = views.health_view(engine)
    context: dict[str, Any] = {"health": health, "signal": None, "portfolio": None}
    if health["status"] == "ok":
        with engine.connect() as conn:
            latest = browse.latest_signal(conn)
            context["signal"] = views.signal_view(latest) if latest else None
            context["portfolio"] = views.portfolio_view(conn)
            performance = views.performance_view(conn)
        context["chart"] = equity_chart(performance["valuations"])
        context["metrics"] = performance["metrics"]
        folders = folders_of(request)
        context["runs"] = [views.run_view(r, folders) for r in list_runs(engine, limit=RECENT_RUNS)]
    return _render(request, "dashboard.html", context)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    filters: dict = Depends(run_filters),
    page: Page = Depends(),
    engine: sa.Engine = Depends(engine_of),
) -> HTMLResponse:
    found = list_runs(engine, **filters, limit=page.limit + 1, offset=page.offset)
    answer = page.answer([views.run_view(r, folders_of(request)) for r in found])
    query = {k: ("" if v is None else str(v)) for k, v in filters.items()}
    return _render(
        request,
        "runs.html",
        {
            "runs": answer["items"],
            "page": answer,
            "filters": query,
            "jobs": sorted(JOBS),
            "statuses": STATUSES,
        },
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request,
    run_id: int = run_id_parameter(),
    engine: sa.Engine = Depends(engine_of),
) -> HTMLResponse:
    found = browse.find_run(engine, run_id)
    if found is None:
        raise HTTPException(404, f"no job run {run_id}")
    return _render(request, "run.html", {"run": views.run_view(found, folders_of(request))})
