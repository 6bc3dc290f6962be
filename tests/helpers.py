"""Small builders shared by the database tests."""

from __future__ import annotations

import datetime as dt

from allocator.jobs.ingest import ingest
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence.configs import seed_default_config


def vendor_history(name: str = "alphavantage") -> SyntheticSource:
    """The synthetic market stored as ``name``'s history: what the fake vendor serves.

    A database holds one kind of history, so the fetch job (a real source) refuses one seeded
    with the synthetic source's bars; tests whose fake vendor serves the synthetic market seed
    its history under the vendor's name instead.
    """
    source = SyntheticSource()
    source.name = name
    return source


def seed(engine, start: dt.date, end: dt.date, symbols=("SPY", "QQQ", "DIA"), source=None) -> None:
    """Seed the default config and store synthetic bars over [start, end]."""
    with engine.begin() as conn:
        seed_default_config(conn)
    if end >= start:
        ingest(engine, source or SyntheticSource(), list(symbols), start, end, progress=False)


def sessions_before(day: dt.date, n: int) -> dt.date:
    """The session ``n`` sessions before ``day``."""
    return calendar.last_n_sessions(calendar.previous_session(day), n)[0]
