"""``allocator backfill``: load history from a source into ``price_history``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from allocator.exceptions import CalendarError
from allocator.jobs.ingest import IngestReport, checked_symbols, default_symbols, ingest
from allocator.shell import calendar
from allocator.shell.marketdata.base import MarketDataSource


def resolve_range(
    *,
    days: int | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    now: dt.datetime | None = None,
) -> tuple[dt.date, dt.date]:
    """Turn ``--days N`` or ``--start/--end`` into a closed date range of sessions."""
    if days is not None and (start is not None):
        raise CalendarError("give either --days or --start/--end, not both")
    if days is not None:
        if days < 1:
            raise CalendarError(f"--days {days}: give a positive number of sessions")
        last = (
            calendar.to_date(end, "--end")
            if end is not None
            else calendar.latest_complete_session(now)
        )
        sessions = calendar.last_n_sessions(last, days)
        return sessions[0], sessions[-1]
    if start is None:
        raise CalendarError("give --days N or --start YYYY-MM-DD (with an optional --end)")
    first = calendar.to_date(start, "--start")
    last = (
        calendar.to_date(end, "--end") if end is not None else calendar.latest_complete_session(now)
    )
    if last < first:
        raise CalendarError(f"--end {last} is before --start {first}")
    complete = calendar.latest_complete_session(now)
    if last > complete:
        raise CalendarError(
            f"--end {last} is after the latest complete session {complete}: "
            "a bar exists only after its session's close"
        )
    return first, last


def backfill(
    engine: sa.Engine,
    source: MarketDataSource,
    start: dt.date,
    end: dt.date,
    symbols: Sequence[str] | None = None,
    *,
    on_revision: str = "update",
    progress: bool | None = None,
    replace_synthetic: bool = False,
) -> IngestReport:
    """Store every session bar of ``symbols`` in [start, end]; a re-run inserts nothing new.

    ``replace_synthetic`` deletes the database's synthetic bars before a real source stores
    its own (:func:`~allocator.jobs.ingest.refuse_mixed_history`).
    """
    symbols = checked_symbols(symbols or default_symbols(engine), "--symbols")
    return ingest(
        engine,
        source,
        symbols,
        start,
        end,
        on_revision=on_revision,
        progress=progress,
        replace_synthetic=replace_synthetic,
    )
