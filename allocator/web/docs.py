"""``/docs``: the JSON API's endpoints, read from the app's own OpenAPI schema, on a plain page.

FastAPI's default ``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from a
public CDN, so on a machine without internet they are blank pages, and they make every visitor's
browser call a third party. The app turns them off (``docs_url=None, redoc_url=None``) and serves
this page instead: each endpoint with its summary, its parameters (type, allowed range, default,
description) and its answers, and a link to the schema itself (``/openapi.json``). No script.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from allocator.web.templating import templates

router = APIRouter(include_in_schema=False)


def _type(schema: dict[str, Any]) -> str:
    options = schema.get("anyOf") or [schema]
    names = [o.get("format") or o.get("type") for o in options if o.get("type") != "null"]
    text = " or ".join(str(n) for n in names if n) or "any"
    return f"{text} (optional)" if len(options) > len(names) else text


def _limits(schema: dict[str, Any]) -> str:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    parts = []
    if low is not None or high is not None:
        parts.append(f"{'' if low is None else low}..{'' if high is None else high}")
    for option in schema.get("anyOf") or [schema]:
        if option.get("pattern"):
            parts.append(f"pattern {option['pattern']}")
        if option.get("maxLength"):
            parts.append(f"at most {option['maxLength']} characters")
    return ", ".join(parts)


def parameter_row(parameter: dict[str, Any]) -> dict[str, str]:
    """One parameter of the schema as the page shows it."""
    schema = parameter.get("schema") or {}
    default = schema.get("default")
    return {
        "name": parameter.get("name", ""),
        "in": parameter.get("in", ""),
        "required": "yes" if parameter.get("required") else "no",
        "type": _type(schema),
        "limits": _limits(schema),
        "default": "" if default is None else str(default),
        "description": parameter.get("description") or schema.get("description") or "",
    }


def endpoints(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation of an OpenAPI schema: method, path, summary, parameters, answers."""
    found = []
    for path, operations in sorted(schema.get("paths", {}).items()):
        for method, operation in operations.items():
            parameters = [parameter_row(p) for p in operation.get("parameters", [])]
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary") or "",
                    "parameters": parameters,
                    "responses": sorted(operation.get("responses", {})),
                    "example": path if "{" not in path and method == "get" else None,
                }
            )
    return found


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    schema = request.app.openapi()
    context = {
        "title": schema.get("info", {}).get("title", "API"),
        "version": schema.get("info", {}).get("version", ""),
        "description": schema.get("info", {}).get("description", ""),
        "endpoints": endpoints(schema),
    }
    return templates.TemplateResponse(request, "docs.html", context)
