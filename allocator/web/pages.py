"""Server-rendered pages: the runs list ``/runs``, one run ``/runs/{id}``, and a monthly tuning
report ``/tuning/{YYYY-MM}`` rendered from its Markdown.

The dashboard is :mod:`.dashboard`, the trade lists :mod:`.trades`, the API's page :mod:`.docs`.
Jinja2 templates ship inside the package (``allocator/web/templates``); the pages need no
front-end build, no chart library and nothing from another host.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParameter
from fastapi.responses import HTMLResponse

from allocator.notebook.jobspec import JOBS
from allocator.shell.persistence import browse
from allocator.shell.persistence.jobruns import STATUSES, list_runs
from allocator.web import views
from allocator.web.api import Page, engine_of, folders_of, run_filters, run_id_parameter
from allocator.web.dashboard import TUNING_DIR
from allocator.web.security import PathRefused, artifact_url, resolve_artifact
from allocator.web.templating import templates

router = APIRouter(include_in_schema=False)
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


def _render(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


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


def markdown_html(text: str) -> str:
    """Markdown as HTML, tables included; any HTML inside the Markdown is escaped, not run.

    mistune comes with nbconvert (a dependency), which renders the reports with it.
    """
    import mistune

    render = mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])
    return str(render(text))


@router.get("/tuning/{month}", response_class=HTMLResponse)
def tuning_report(
    request: Request,
    month: str = PathParameter(..., pattern=MONTH, description="the month, YYYY-MM"),
) -> HTMLResponse:
    folders = folders_of(request)
    name = f"{TUNING_DIR}/tuning_{month}.md"
    try:
        path = resolve_artifact(folders["reports"], name)
    except (PathRefused, FileNotFoundError):
        raise HTTPException(404, f"no tuning report for {month}") from None
    context = {
        "month": month,
        "body": markdown_html(path.read_text(encoding="utf-8")),
        "markdown": artifact_url(str(path), folders),
    }
    return _render(request, "tuning.html", context)
