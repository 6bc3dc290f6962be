"""The review report's blocks: the answer first (counts by job and status), then the runs.

``notebooks/review.ipynb`` reads the archived runs with :mod:`.review` (a DataFrame, one row per
run) and shows them with these: every table fits 1,280 px (one short ``result`` column instead
of one column per glued number), numbers are rounded, a link's text names the run it opens
(``signal 2026-11-25``), and a section with nothing in it (no failure, no skipped run) is not
shown at all (its function returns None).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from allocator.notebook.formats import MISSING, cents, count, date, decimal
from allocator.notebook.review import Window
from allocator.notebook.tables import Card, Cards, Link, Table

#: Statuses in the order the counts show them.
STATUSES = ("succeeded", "failed", "unverified", "incomplete", "unreadable", "abandoned")
#: The tune job's statuses as a reader says them.
TUNE_OUTCOMES = {"unchanged": "no change", "proposed": "change proposed", "changed": "changed"}


def _value(row, name: str):
    value = row.get(name) if hasattr(row, "get") else getattr(row, name, None)
    return None if value is None or (isinstance(value, float) and value != value) else value


def result_text(row) -> str:
    """A run's result in a few words, from the numbers its job glued."""
    job, get = row["job"], (lambda name: _value(row, name))
    if job == "signal" and get("action"):
        regime = decimal(get("regime"), 2, signed=True)
        return f"{get('action')}, regime {regime}, risk {decimal(get('risk'), 0)}"
    if job == "execute" and get("cash") is not None:
        return f"cash {cents(get('cash'))}, orders {get('job_status') or MISSING}"
    if job == "fetch" and get("last_bar_date"):
        return f"bars to {date(get('last_bar_date'))}"
    if job == "tune" and get("job_status"):
        return TUNE_OUTCOMES.get(get("job_status"), str(get("job_status")))
    if job in ("backtest", "walkforward", "study") and get("headline"):
        return str(get("headline"))
    if get("target_met") is not None:
        return "target met" if get("target_met") else "target missed"
    if job == "sweep" and get("n_configs") is not None:
        return f"{count(get('n_configs'))} configs"
    if job == "review" and get("runs") is not None:
        return f"{count(get('runs'))} runs, {count(get('failed'))} not succeeded"
    return MISSING


def run_name(row) -> str:
    """``signal 2026-11-25``, or ``backtest 2005-01-03..2024-12-31`` for a run over a period."""
    period = _value(row, "period")
    return f"{row['job']} {period or date(row['trade_date'])}"


def _link(row, column: str, text: str, missing: str = MISSING) -> Link | str:
    href = _value(row, column)
    return Link(text, href) if isinstance(href, str) and href else missing


def summary(table: pd.DataFrame, window: Window) -> Cards:
    """The answer first: how many runs, how many need a look, and the counts by job and status."""
    n = len(table)
    bad = int((table["status"] != "succeeded").sum()) if n else 0
    cards = [
        Card("window", f"{date(window.start)} .. {date(window.end)}"),
        Card("runs", count(n)),
        Card("succeeded", count(n - bad)),
        Card("to look at", count(bad), "failed, unverified or incomplete" if bad else "none"),
    ]
    sentence = (
        f"{count(bad)} of {count(n)} runs did not succeed: see Failures below."
        if bad
        else ("Every run succeeded." if n else "No archived run in this window.")
    )
    return Cards(
        cards, [sentence], tone="bad" if bad else "good", extra=[counts(table)] if n else []
    )


def counts(table: pd.DataFrame) -> Table:
    """Runs per job (rows) and status (columns), with a total."""
    pivot = pd.crosstab(table["job"], table["status"])
    statuses = [s for s in STATUSES if s in pivot.columns] + [
        s for s in pivot.columns if s not in STATUSES
    ]
    rows = [
        [job, *(count(pivot.loc[job, s]) for s in statuses), count(pivot.loc[job].sum())]
        for job in pivot.index
    ]
    return Table(["job", *statuses, "total"], rows, title="Runs by job and status")


def runs(table: pd.DataFrame) -> Table:
    """Every run, oldest first: its name (linking its report), status, start, duration, result."""
    rows = []
    for _, row in table.iterrows():
        started = row["started_utc"]
        rows.append(
            [
                _link(row, "report", run_name(row), run_name(row)),
                str(row["status"]),
                started.strftime("%Y-%m-%d %H:%M") if isinstance(started, dt.datetime) else MISSING,
                f"{decimal(row['seconds'], 1)} s"
                if _value(row, "seconds") is not None
                else MISSING,
                result_text(row),
                _link(row, "notebook", "notebook"),
            ]
        )
    columns = ["run (report)", "status", "started (UTC)", "took", "result", "archive"]
    return Table(
        columns, rows, align="lllrll", title="Every run", empty="No archived runs in this window."
    )


def at_a_glance(view: pd.DataFrame) -> Table | None:
    """Trade dates down, jobs across, the latest run's status (None when there is no run)."""
    if view.empty:
        return None
    rows = [[date(day), *(str(v) or "" for v in row)] for day, row in view.iterrows()]
    notes = ["An empty cell: no run that day (or a skipped one)."]
    return Table(
        ["trade date", *map(str, view.columns)],
        rows,
        align="l" * (1 + len(view.columns)),
        title="The window at a glance",
        notes=notes,
    )


def failures(bad: pd.DataFrame) -> Table | None:
    """The runs that did not succeed, with their error (None when there are none)."""
    if bad.empty:
        return None
    rows = [
        [
            _link(row, "report", run_name(row), run_name(row)),
            str(row["status"]),
            str(_value(row, "error") or MISSING),
            _link(row, "notebook", "notebook"),
        ]
        for _, row in bad.iterrows()
    ]
    notes = [
        "A failed run's report shows its error at the top and its notebook the traceback. An "
        "unverified run's notebook or tables changed after the run recorded their SHA-256 "
        "(`allocator runs --verify`)."
    ]
    return Table(
        ["run (report)", "status", "error", "archive"],
        rows,
        align="llll",
        title="Failures",
        notes=notes,
    )


def skipped(frame: pd.DataFrame) -> Table | None:
    """Skipped runs (market closed, not the month's first session); None when there are none."""
    if frame.empty:
        return None
    rows = [[f"{r.job} {date(r.trade_date)}", str(r.reason or MISSING)] for r in frame.itertuples()]
    return Table(["run", "why skipped"], rows, align="ll", title="Skipped runs (no notebook)")
