"""Book writes are serialized: concurrent processes depositing into one ledger lose nothing.

Each process opens its own engine, takes the book's lock and records a deposit, as the execute
job does; the ledger's balances must chain exactly (each is the previous one plus the amount).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pytest

from allocator.shell import calendar
from allocator.shell.persistence import ledger, make_engine
from allocator.shell.persistence.migrate import upgrade

DAYS = calendar.sessions_between(dt.date(2026, 8, 3), dt.date(2026, 9, 29))[:40]


def deposit(args: tuple[str, dt.date]) -> bool:
    url, day = args
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            ledger.lock_book(conn)
            return ledger.record_deposit(conn, day, 1000.0)
    finally:
        engine.dispose()


@pytest.mark.parametrize("same_date", [False, True], ids=["different dates", "same date"])
def test_concurrent_deposits_chain_exactly(database_url, same_date):
    engine = make_engine(database_url)
    upgrade(engine)
    days = [DAYS[0]] * 40 if same_date else DAYS
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        recorded = pool.map(deposit, [(database_url, d) for d in days])
    assert sum(recorded) == len(set(days))
    with engine.connect() as conn:
        assert ledger.cash_balance(conn) == 1000.0 * len(set(days))
        entries = ledger.cash_entries(conn)
    previous = 0.0
    for entry in entries:
        assert entry.balance == previous + entry.amount
        previous = entry.balance
    engine.dispose()
