"""What a run's archive says, for the runs table and the dashboard: its scraps, its period, its
one-line result, and a backtest's full trade list.

The scraps are read from the archived notebook as JSON (the ``json`` and ``text`` scraps that
scrapbook glues as outputs), without scrapbook or a kernel; a table kept as a Parquet sidecar
stays a reference here (:func:`allocator.notebook.sidecar.is_reference`) until
:func:`run_trades` reads it, refusing a file whose SHA-256 is not the one the notebook recorded,
as :func:`allocator.notebook.sidecar.read_scraps` does. An archived notebook never changes, so
what is read is cached by path, size and modification time: a runs page of 100 rows reads each
notebook once per process.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from allocator.notebook.formats import dollars, percent
from allocator.notebook.sidecar import SCRAP_MIME, is_reference
from allocator.shell.digest import sha256_of
from allocator.shell.persistence.jobruns import JobRun

log = logging.getLogger(__name__)

TEXT_SCRAP_MIME = "application/scrapbook.scrap.text+json"
#: Jobs that cover a period, and the parameters naming its first and last trade date.
PERIOD_PARAMETERS = {
    "backtest": ("start", "end"),
    "sweep": ("start", "end"),
    "walkforward": ("start", "end"),
    "study": ("in_start", "out_end"),
    "review": ("start", "end"),
}
#: The review's default window: the 30 days before its end (notebooks/review.ipynb).
REVIEW_DAYS = 30
#: Characters of an error shown in a table cell (the run's page shows all of it).
SHORT_ERROR = 160
TUNE_RESULTS = {
    "unchanged": "no change",
    "withdrawn": "this month's change withdrawn",
}


class SidecarUnreadable(Exception):
    """A run's table sidecar is missing, changed, or not a plain file beside its notebook."""


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=1024)
def _scraps_cached(path: str, _stamp: tuple[int, int]) -> dict[str, Any]:
    try:
        cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError) as exc:
        log.warning("cannot read the scraps of %s: %s", path, exc)
        return {}
    found: dict[str, Any] = {}
    for cell in cells:
        for output in cell.get("outputs", []) if isinstance(cell, dict) else []:
            data = output.get("data") or {}
            for mime in (SCRAP_MIME, TEXT_SCRAP_MIME):
                scrap = data.get(mime)
                if isinstance(scrap, dict) and isinstance(scrap.get("name"), str):
                    found[scrap["name"]] = scrap.get("data")
    return found


def scraps_of(run: JobRun) -> dict[str, Any]:
    """The JSON and text scraps of the run's archived notebook ({} without one)."""
    if not run.notebook_path:
        return {}
    path = Path(run.notebook_path)
    stamp = _stamp(path)
    return {} if stamp is None else _scraps_cached(str(path), stamp)


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)[:10] if value else None


def run_period(run: JobRun, scraps: Mapping[str, Any]) -> str:
    """The trade dates a run covers: ``2005-01-03..2024-12-31`` for a backtest (the sessions its
    metrics cover, else its parameters), the trade date for a daily job."""
    if run.job not in PERIOD_PARAMETERS:
        return _iso(run.trade_date) or "—"
    first, last = PERIOD_PARAMETERS[run.job]
    parameters = run.parameters or {}
    metrics = scraps.get("metrics") if isinstance(scraps.get("metrics"), dict) else {}
    start = _iso(metrics.get("start")) or _iso(parameters.get(first))
    end = _iso(metrics.get("end")) or _iso(parameters.get(last))
    if run.job == "review":
        end = end or _iso(run.trade_date)
        if start is None and end:
            start = (dt.date.fromisoformat(end) - dt.timedelta(days=REVIEW_DAYS)).isoformat()
    return f"{start or 'the first bar'}..{end or 'the latest session'}"


def _short(text: str) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= SHORT_ERROR else line[: SHORT_ERROR - 1] + "…"


def _signal(scraps: Mapping[str, Any]) -> str:
    action = scraps.get("action")
    if not action:
        return ""
    allocations = scraps.get("allocations") or {}
    spent = sum(v for v in allocations.values() if isinstance(v, int | float) and v > 0)
    return f"{action} {dollars(spent)}" if action == "BUY" and spent else str(action)


def _fetch(scraps: Mapping[str, Any]) -> str:
    stored = scraps.get("rows_inserted")
    if not isinstance(stored, dict):
        return ""
    bars = sum(v for v in stored.values() if isinstance(v, int))
    parts = [f"{bars} bar{'s' if bars != 1 else ''} stored"]
    fills = sum(n for pair in scraps.get("settled") or [] for n in pair[1:2] if isinstance(n, int))
    if fills:
        parts.append(f"{fills} order{'s' if fills != 1 else ''} filled")
    if scraps.get("missing"):
        parts.append("missing " + ", ".join(map(str, scraps["missing"])))
    return ", ".join(parts)


def _execute(scraps: Mapping[str, Any]) -> str:
    status = scraps.get("status")
    if not status:
        return ""
    shown = {"pending": "orders pending (fill at the open)", "filled": "orders filled"}
    text = shown.get(status, str(status))
    cash = scraps.get("cash")
    return f"{text}, cash {dollars(cash)}" if isinstance(cash, int | float) else text


def _change_text(changes: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {pair[0]} → {pair[1]}" for name, pair in changes.items())


def _tune(scraps: Mapping[str, Any]) -> str:
    status, changes = scraps.get("status"), scraps.get("changes") or {}
    if not status:
        return ""
    if status in TUNE_RESULTS:
        return TUNE_RESULTS[status]
    if changes and isinstance(changes, dict):
        prefix = "proposed, not applied" if status == "proposed" else status
        return f"{prefix}: {_change_text(changes)}"
    return "no change" if not changes else str(status)


def _backtest(scraps: Mapping[str, Any]) -> str:
    metrics = scraps.get("metrics")
    if not isinstance(metrics, dict):
        return ""
    return f"TWR {percent(metrics.get('twr'))}, max drawdown {percent(metrics.get('max_drawdown'))}"


def _study(scraps: Mapping[str, Any]) -> str:
    met = scraps.get("target_met")
    return "" if met is None else ("target met" if met else "target missed")


def _review(scraps: Mapping[str, Any]) -> str:
    if not isinstance(scraps.get("runs"), int):
        return ""
    return f"{scraps['runs']} runs, {scraps.get('failed', 0)} to look at"


def _sweep(scraps: Mapping[str, Any]) -> str:
    n = scraps.get("n_configs")
    return f"{n} configs" if isinstance(n, int) else ""


RESULTS = {
    "signal": _signal,
    "fetch": _fetch,
    "execute": _execute,
    "tune": _tune,
    "backtest": _backtest,
    "study": _study,
    "walkforward": _study,
    "review": _review,
    "sweep": _sweep,
}


def run_result(run: JobRun, scraps: Mapping[str, Any]) -> str:
    """One line: the error of a failed run, the reason a run was skipped, else what it did
    (a signal's action, a backtest's TWR, a tuning's change or "no change"...)."""
    if run.status in ("failed", "abandoned", "skipped"):
        return _short(run.error or run.status)
    if run.status == "running":
        return "running"
    found = RESULTS.get(run.job)
    try:
        return found(scraps) if found else ""
    except (TypeError, ValueError, AttributeError, IndexError):  # a scrap of an older shape
        return ""


def keeps_trades(scraps: Mapping[str, Any]) -> bool:
    """True when the run kept its full trade list as a sidecar (a backtest's ``trades``)."""
    return is_reference(scraps.get("trades"))


def run_trades(run: JobRun) -> pd.DataFrame | None:
    """A backtest run's full trade list, from its ``trades`` Parquet sidecar (None: the run
    kept none). Raises :class:`SidecarUnreadable` when the file is missing or changed."""
    reference = scraps_of(run).get("trades")
    if not is_reference(reference):
        return None
    notebook = Path(run.notebook_path or "")
    name = str(reference["sidecar"])
    path = notebook.with_name(name)
    if Path(name).name != name or not path.is_file():
        raise SidecarUnreadable(f"the trade list of run {run.id} ({name}) is missing")
    stamp = _stamp(path)
    if stamp is None:
        raise SidecarUnreadable(f"the trade list of run {run.id} ({name}) cannot be read")
    return _trades_cached(str(path), stamp, str(reference["sha256"]))


@functools.lru_cache(maxsize=4)
def _trades_cached(path: str, _stamp: tuple[int, int], sha256: str) -> pd.DataFrame:
    if sha256_of(Path(path)) != sha256:
        raise SidecarUnreadable(
            f"{os.path.basename(path)} changed after the run (its SHA-256 is not the one the "
            "notebook recorded): restore it from a copy, or re-run the backtest"
        )
    return pd.read_parquet(path)
