"""Ten production days in a row, as cron runs them, against the fake vendor.

Each session D: 6:00 signal (the vendor has published bars up to the previous close), 9:30 execute
(the open of D is not known yet, so the orders wait as pending), 16:35 fetch (the vendor now
publishes D's bar; storing it fills the pending orders at D's open). No manual step: every BUY or
SELL signal must end as exactly its trades, filled at that day's open.
"""

import datetime as dt
import math

import sqlalchemy as sa

from allocator.jobs.execute import run_execute
from allocator.jobs.fetch import run_fetch
from allocator.jobs.signal import run_signal
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.migrate import upgrade
from allocator.shell.persistence.schema import daily_signals, trades
from allocator.shell.settings import get_settings
from tests.helpers import seed, vendor_history

SYMBOLS = ("SPY", "QQQ", "DIA")
# In the synthetic market these ten sessions turn from bullish to bearish.
FIRST, LAST = dt.date(2024, 9, 27), dt.date(2024, 10, 10)


def test_ten_sessions_of_the_schedule_need_no_manual_step(database_url, fake_vendor, monkeypatch):
    source = SyntheticSource()
    bars = {s: source.fetch(s, dt.date(2024, 1, 1), LAST) for s in SYMBOLS}
    for symbol, frame in bars.items():
        fake_vendor.set_bars(symbol, frame)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", "SIMULATION-KEY")
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", fake_vendor.url)
    monkeypatch.setenv("ALPHAVANTAGE_CALL_DELAY", "0")
    settings = get_settings()
    engine = make_engine(database_url)
    upgrade(engine)
    seed(engine, dt.date(2023, 6, 1), calendar.previous_session(FIRST), source=vendor_history())

    sessions = calendar.sessions_between(FIRST, LAST)
    assert len(sessions) == 10
    for day in sessions:
        fake_vendor.visible_through = calendar.previous_session(day)  # before the open
        run_signal(day, settings=settings)
        executed = run_execute(day, settings=settings)
        assert executed.status in ("pending", "no orders")  # 9:30: the open is not stored yet
        fake_vendor.visible_through = day  # after the close
        fetched = run_fetch(day, source="alphavantage", settings=settings)
        fetched.raise_for_errors()

    opens = {(s, d): o for s, f in bars.items() for d, o in zip(f["date"], f["open"], strict=True)}
    with engine.connect() as conn:
        signals = list(conn.execute(sa.select(daily_signals).order_by(daily_signals.c.trade_date)))
        recorded = list(conn.execute(sa.select(trades)))
    assert [s.trade_date for s in signals] == sessions
    actions = {s.action for s in signals}
    assert {"BUY", "SELL"} <= actions
    by_signal = {}
    for t in recorded:
        by_signal.setdefault(t.signal_id, []).append(t)
    for s in signals:
        made = {t.symbol: t for t in by_signal.get(s.id, [])}
        if s.action == "HOLD":
            assert made == {}
            continue
        if s.action == "BUY":
            expected = {sym: d for sym, d in s.allocations.items() if d > 0}
        else:
            expected = s.features_used["sell_quantities"]
        assert set(made) == set(expected), s.trade_date
        for symbol, t in made.items():
            assert t.status == "filled" and t.trade_date == s.trade_date
            assert t.price == opens[(symbol, s.trade_date)]  # that day's open, no other
            if s.action == "BUY":
                assert t.quantity == math.floor(expected[symbol] / t.price * 1e4 + 1e-7) / 1e4
            else:
                assert t.quantity == expected[symbol]
            assert t.amount == t.quantity * t.price
    engine.dispose()
