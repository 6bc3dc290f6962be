"""Small builders shared by the database tests."""

from __future__ import annotations

import datetime as dt

from allocator.jobs.ingest import ingest
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence.configs import seed_default_config


def seed(engine, start: dt.date, end: dt.date, symbols=("SPY", "QQQ", "DIA"), source=None) -> None:
    """Seed the default config and store synthetic bars over [start, end]."""
    with engine.begin() as conn:
        seed_default_config(conn)
    if end >= start:
        ingest(engine, source or SyntheticSource(), list(symbols), start, end, progress=False)


def sessions_before(day: dt.date, n: int) -> dt.date:
    """The session ``n`` sessions before ``day``."""
    return calendar.last_n_sessions(calendar.previous_session(day), n)[0]
