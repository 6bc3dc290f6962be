"""Concurrent backfills from two sources store one source's history, never a mix.

Two real processes ingest the same symbols from sources that disagree on every price. Each
source pauses in every fetch, so without turns their per-symbol writes interleave and the
surviving source differs from symbol to symbol (as a probe once found on PostgreSQL). With the
``prices`` writer lock the result is what one ran after the other gives: every bar from the
source that went first, and the other's differences kept out as revisions.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time

import pandas as pd
import sqlalchemy as sa

from allocator.jobs.ingest import ingest
from allocator.shell import calendar
from allocator.shell.marketdata.base import validate_bars
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.schema import price_history

SYMBOLS = [f"SYM{i}" for i in range(6)]
START, END = dt.date(2026, 10, 1), dt.date(2026, 10, 30)


#: Seconds each source takes per symbol: A is steady, B slow at first and then fast, so without
#: turns A stores the first symbols and B overtakes it for the last ones.
PACE = {"vendor-a": [0.4] * 6, "vendor-b": [1.4, 0.05, 0.05, 0.05, 0.05, 0.05]}


class SlowSource:
    """A source whose prices are ``level`` everywhere, and that takes its time per symbol."""

    def __init__(self, name: str, level: float) -> None:
        self.name, self.level = name, level
        self.pace = list(PACE[name])

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        time.sleep(self.pace.pop(0))
        days = calendar.sessions_between(start, end)
        p = self.level
        frame = pd.DataFrame(
            {"date": days, "open": p, "high": p, "low": p, "close": p, "volume": 1000}
        )
        return validate_bars(symbol, frame, self.name)


def backfill(args: tuple[str, str, float, float]) -> None:
    url, name, level, start_at = args
    engine = make_engine(url)
    time.sleep(max(0.0, start_at - time.time()))  # both start together, whatever spawn took
    try:
        ingest(engine, SlowSource(name, level), SYMBOLS, START, END, progress=False)
    finally:
        engine.dispose()


def test_concurrent_backfills_store_one_sources_history(database_url, engine):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        start_at = time.time() + 8
        jobs = [
            (database_url, "vendor-a", 100.0, start_at),
            (database_url, "vendor-b", 200.0, start_at),
        ]
        pool.map(backfill, jobs, chunksize=1)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(price_history.c.symbol, price_history.c.source, price_history.c.close)
        ).all()
    assert {r.symbol for r in rows} == set(SYMBOLS)
    assert len(rows) == len(SYMBOLS) * len(calendar.sessions_between(START, END))
    (winner,) = {(r.source, r.close) for r in rows}  # one source, for every symbol and date
    assert winner in {("vendor-a", 100.0), ("vendor-b", 200.0)}
