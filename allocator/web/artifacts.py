"""``/artifacts/reports/...`` and ``/artifacts/runs/...``: files of the archive, read-only.

Reports (HTML, Markdown, figures) are shown in the browser; an archived notebook (``.ipynb``)
is sent as a download. Any path outside the two folders is refused with 403.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from allocator.web.security import PathRefused, resolve_artifact

router = APIRouter(prefix="/artifacts", tags=["artifacts"])

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".ipynb": "application/x-ipynb+json",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".parquet": "application/vnd.apache.parquet",
}
DOWNLOADS = (".ipynb", ".parquet")


@router.get("/{area}/{path:path}", summary="an archived file of runs/ or reports/")
def artifact(area: str, path: str, request: Request) -> FileResponse:
    folders: dict[str, Path] = request.app.state.artifact_folders
    if area not in folders:
        raise HTTPException(404, f"no artifact area {area!r}: use {' or '.join(folders)}")
    try:
        target = resolve_artifact(folders[area], path)
    except PathRefused:
        raise HTTPException(403, "refused: the path leads outside the archive") from None
    except FileNotFoundError:
        raise HTTPException(404, f"no file {path!r} in {area}") from None
    suffix = target.suffix.lower()
    media_type = MEDIA_TYPES.get(suffix, "application/octet-stream")
    if suffix in DOWNLOADS:
        return FileResponse(target, media_type=media_type, filename=target.name)
    return FileResponse(target, media_type=media_type)
