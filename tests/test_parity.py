"""One code path: the daily jobs run day by day and the backtest over the same sessions agree."""

import datetime as dt

import pytest

from allocator.jobs.backtest import run_backtest_job
from allocator.jobs.execute import execute_trades
from allocator.jobs.fetch import fetch_bars
from allocator.jobs.signal import generate_signal
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence import ledger
from allocator.shell.settings import get_settings
from tests.helpers import seed

# 60 sessions of the synthetic market with bullish, neutral and bearish stretches.
START, END = dt.date(2024, 6, 24), dt.date(2024, 9, 17)


def test_daily_jobs_and_backtest_produce_identical_trades(database_url, monkeypatch):
    from allocator.shell.persistence import make_engine
    from allocator.shell.persistence.migrate import upgrade

    engine = make_engine(database_url)
    upgrade(engine)
    sessions = calendar.sessions_between(START, END)
    assert len(sessions) >= 60
    seed(engine, dt.date(2023, 5, 1), calendar.previous_session(START))
    source = SyntheticSource()
    actions = []
    for day in sessions:  # the production day: 6:00 signal, 9:30 execute, 16:35 fetch
        actions.append(generate_signal(engine, day).signal.action)
        execute_trades(engine, day)
        fetch_bars(engine, day, source)
    assert {"BUY", "SELL"} <= set(actions)

    with engine.connect() as conn:
        daily = ledger.trades_frame(conn, START, END)
        book = ledger.load_book(conn)
    assert set(daily["status"]) == {"filled"}

    monkeypatch.setenv("DATABASE_URL", database_url)
    result = run_backtest_job(START, END, config_source="history", settings=get_settings())

    produced = list(
        zip(
            daily["trade_date"],
            daily["symbol"],
            daily["action"],
            daily["quantity"],
            daily["price"],
            strict=True,
        )
    )
    replayed = list(
        zip(
            result.trades["date"],
            result.trades["symbol"],
            result.trades["action"],
            result.trades["quantity"],
            result.trades["price"],
            strict=True,
        )
    )
    assert len(produced) > 60
    assert replayed == produced  # exactly: same floats, same order
    assert result.book.cash == book.cash
    assert result.book.holdings() == book.holdings()
    assert list(result.signals["action"]) == actions
    with engine.connect() as conn:
        valued = ledger.valuations_frame(conn, START, END)
    assert valued["total_value"].tolist() == pytest.approx(
        result.daily["total_value"].tolist(), rel=1e-12
    )
    engine.dispose()
