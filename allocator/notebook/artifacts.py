"""A run's artifacts once its kernel is done: kept whole, or removed and said why.

Every file is written atomically (:mod:`allocator.shell.atomic`), so none is ever truncated;
what can still go wrong is that one is *missing*: the disk filled before papermill's first save
(the claimed name is still empty), or a report or a figure could not be written. The runner
then records the run as failed with one line naming the path and the cause, records no path
that does not exist, and leaves nothing half done behind:

- :func:`keep_notebook` keeps the executed notebook if it is a whole notebook, with any secret
  value redacted; otherwise it removes it (and its sidecars) and says why;
- :func:`~allocator.notebook.render.render_or_remove` renders both reports and their figures,
  or removes all of them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from allocator.notebook.kernel import redact_file
from allocator.notebook.sidecar import sidecars_of
from allocator.shell.atomic import write_error_line

log = logging.getLogger(__name__)


def notebook_problem(path: Path) -> str | None:
    """Why ``path`` holds no archived notebook (never saved, not a notebook), or None."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"no notebook was archived ({path} is missing)"
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {path}: {exc}"
    if not text:
        return f"no notebook was archived (nothing was saved at {path})"
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError, TypeError):
        return f"{path} is not a whole notebook"
    return None if isinstance(cells, list) else f"{path} is not a whole notebook"


def remove_notebook(path: Path) -> None:
    """Remove an archived notebook that cannot be kept, and the sidecars written beside it."""
    for sidecar in sidecars_of(path):
        sidecar.unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def keep_notebook(
    path: Path, secrets: list[str], error: str | None
) -> tuple[bool, list[str], list[str]]:
    """(kept, failures, notes) for a run's executed notebook at ``path``.

    A notebook that was never saved whole is removed: a failure, unless ``error`` (the job's
    own) already names ``path``. A notebook whose secrets cannot be redacted (a full disk) is
    removed too: it would keep a secret. ``notes`` says how many secret values were redacted.
    """
    problem = notebook_problem(path)
    if problem is not None:
        remove_notebook(path)
        return False, [] if error and str(path) in error else [problem], []
    try:
        leaked = redact_file(path, secrets)
    except OSError as exc:
        remove_notebook(path)
        return False, [f"{write_error_line(exc)} (redacting it; the notebook was removed)"], []
    if not leaked:
        return True, [], []
    note = f"{leaked} secret value(s) found in the outputs were replaced by ***"
    log.warning("%s: %s", path.name, note)
    return True, [], [note]
