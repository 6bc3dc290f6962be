"""What a job notebook shows, and what it keeps out of its archived outputs.

Every job notebook's first code cell calls :func:`setup`: figures get the reports' style
(:func:`allocator.notebook.plots.setup`), and no warning, log record or progress bar is printed
into a cell's output, where it would be archived and rendered as raw text between the figures
(a Dask "Port 8787 is already in use" warning was). Instead:

- log records of level WARNING and above (and Python warnings, through :mod:`logging`) are kept
  in memory, and :func:`logged` shows them once, formatted, at the end of the report (nothing
  when there were none); records below WARNING are dropped, as Python does by default;
- progress bars are off (``TQDM_DISABLE``).

Outside a kernel (a test, a script) :func:`setup` changes nothing but the figures' style.
"""

from __future__ import annotations

import logging
import os

from allocator.notebook.tables import Table

#: The records kept by :func:`setup`'s handler, in order.
_KEPT: list[logging.LogRecord] = []
#: Messages longer than this are cut in the report (the full text is in the cron log's copy).
MAX_MESSAGE = 300


class _Keep(logging.Handler):
    """Keeps each record instead of printing it."""

    def emit(self, record: logging.LogRecord) -> None:
        _KEPT.append(record)


def setup() -> None:
    """Style the figures, keep warnings and log records out of the outputs, no progress bars."""
    from allocator.notebook import plots

    plots.setup()
    os.environ["TQDM_DISABLE"] = "1"
    logging.captureWarnings(True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, _Keep):
            root.removeHandler(handler)
    if not any(isinstance(h, _Keep) for h in root.handlers):
        keep = _Keep(level=logging.WARNING)
        root.addHandler(keep)
    # lastResort prints WARNING records to stderr when no handler takes them: ours takes them.
    logging.lastResort = None


def logged() -> Table | None:
    """The warnings logged during the run, one row each (None when there were none)."""
    if not _KEPT:
        return None
    rows = []
    for record in _KEPT:
        message = " ".join(record.getMessage().split())
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        source = "Python warning" if record.name == "py.warnings" else record.name
        rows.append([record.levelname.lower(), source, message])
    return Table(
        ["level", "from", "message"],
        rows,
        align="lll",
        title=f"Warnings logged during the run ({len(rows)})",
    )
