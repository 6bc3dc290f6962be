"""The replay kernel equals the reference on histories read back from each database.

:mod:`tests.test_kernel` proves the equality on bars made in memory; here the bars go through
the production path first (stored by ``ingest`` in SQLite and PostgreSQL, read back by
``load_bars``), so whatever a database does to dates and floats on the way is covered too.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator.backtest.prices import PriceTable
from allocator.research.replayer import Replayer
from allocator.shell import calendar
from allocator.shell.persistence.prices import load_bars
from tests.helpers import seed
from tests.test_kernel import initial_states, replay_both, schedules, windows

SYMBOLS = ("SPY", "QQQ", "DIA", "XLF")
FIRST_BAR, PERIOD_START, LAST = dt.date(2021, 1, 4), dt.date(2022, 3, 1), dt.date(2023, 12, 29)


@pytest.fixture
def stored(engine):
    """The synthetic market stored in the database and read back, with its replayer."""
    seed(engine, FIRST_BAR, LAST, symbols=SYMBOLS)
    with engine.connect() as conn:
        bars = load_bars(conn, list(SYMBOLS), FIRST_BAR, LAST)
    return (
        bars,
        PriceTable.from_bars(bars),
        Replayer(bars),
        calendar.sessions_between(PERIOD_START, LAST),
    )


def test_random_configs_replay_alike_on_stored_history(stored):
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        window = data.draw(windows(stored[3]))
        schedule = data.draw(schedules(window))
        initial = data.draw(initial_states(schedule.symbols))
        _, ref, handed_over = replay_both(stored, window, schedule, initial)
        assert isinstance(ref, Exception) or not handed_over

    check()
