import datetime as dt
import logging

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence.prices import (
    bar_counts,
    last_bar_dates,
    load_bars,
    upsert_bars,
    wide,
)
from allocator.shell.persistence.schema import price_history

START, END = dt.date(2025, 1, 2), dt.date(2025, 3, 31)


def _bars(symbol="SPY", start=START, end=END):
    return SyntheticSource().fetch(symbol, start, end)


def _count(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(price_history)).scalar_one()


def test_upsert_is_idempotent(engine):
    bars = _bars()
    sessions = calendar.sessions_between(START, END)
    with engine.begin() as conn:
        first = upsert_bars(conn, "SPY", bars, "synthetic", sessions=sessions)
    with engine.begin() as conn:
        second = upsert_bars(conn, "SPY", bars, "synthetic", sessions=sessions)
    assert first.inserted == len(bars) == len(sessions)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, len(bars))
    assert _count(engine) == len(bars)
    with engine.connect() as conn:
        stored = load_bars(conn, ["SPY"])
    assert stored["close"].tolist() == bars["close"].tolist()  # doubles round-trip exactly
    assert stored["date"].tolist() == bars["date"].tolist()


def test_revised_bar_is_updated_and_logged(engine, caplog):
    bars = _bars(end=dt.date(2025, 1, 10))
    with engine.begin() as conn:
        upsert_bars(conn, "SPY", bars, "synthetic")
    revised = bars.copy()
    revised.loc[2, "close"] = revised.loc[2, "close"] + 1.0
    with caplog.at_level(logging.WARNING), engine.begin() as conn:
        kept = upsert_bars(conn, "SPY", revised, "vendor")  # another source: kept by default
    assert kept.updated == 0 and len(kept.revisions) == 1
    with engine.begin() as conn:
        result = upsert_bars(conn, "SPY", revised, "vendor", on_revision="replace")
    assert result.updated == 1 and result.inserted == 0 and len(result.revisions) == 1
    assert "vendor reports the bar differently" in caplog.text
    assert "kept the synthetic bar (pass --on-revision replace" in caplog.text
    assert str(bars.loc[2, "date"]) in caplog.text
    with engine.connect() as conn:
        stored = load_bars(conn, ["SPY"])
    assert stored.loc[2, "close"] == revised.loc[2, "close"] and stored.loc[2, "source"] == "vendor"


def test_revised_bar_can_be_kept(engine):
    bars = _bars(end=dt.date(2025, 1, 10))
    with engine.begin() as conn:
        upsert_bars(conn, "SPY", bars, "synthetic")
    revised = bars.assign(close=bars["close"] * 1.01)
    with engine.begin() as conn:
        result = upsert_bars(conn, "SPY", revised, "vendor", on_revision="keep")
    assert result.updated == 0 and len(result.revisions) == len(bars)
    with engine.connect() as conn:
        assert load_bars(conn, ["SPY"])["close"].tolist() == bars["close"].tolist()


def test_only_sessions_are_stored(engine):
    bars = _bars(end=dt.date(2025, 1, 10))
    holiday = pd.DataFrame([{**bars.iloc[0].to_dict(), "date": dt.date(2025, 1, 9)}])
    mixed = pd.concat([bars, holiday]).sort_values("date").reset_index(drop=True)
    with engine.begin() as conn:
        result = upsert_bars(
            conn, "SPY", mixed, "x", sessions=calendar.sessions_between(START, END)
        )
    assert result.skipped_non_sessions == [dt.date(2025, 1, 9)]
    assert result.inserted == len(bars)


def test_point_in_time_reads(engine):
    with engine.begin() as conn:
        for symbol in ("SPY", "QQQ"):
            upsert_bars(conn, symbol, _bars(symbol), "synthetic")
    with engine.connect() as conn:
        before = load_bars(conn, ["SPY", "QQQ"], before=dt.date(2025, 2, 3))
        assert before["date"].max() == dt.date(2025, 1, 31)
        closes = wide(before, "close", ["SPY", "QQQ"])
        assert list(closes.columns) == ["SPY", "QQQ"]
        assert last_bar_dates(conn, ["SPY", "DIA"]) == {"SPY": END, "DIA": None}
        counts = bar_counts(conn)
    n = len(calendar.sessions_between(START, END))
    assert counts.set_index("symbol")["bars"].to_dict() == {"QQQ": n, "SPY": n}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunks=st.lists(st.tuples(st.integers(0, 55), st.integers(1, 20)), min_size=1, max_size=5))
def test_any_sequence_of_overlapping_upserts_stores_each_bar_once(engine, chunks):
    bars = _bars()
    with engine.begin() as conn:
        conn.execute(price_history.delete())
    seen = set()
    for offset, length in chunks:
        part = bars.iloc[offset : offset + length].reset_index(drop=True)
        with engine.begin() as conn:
            result = upsert_bars(conn, "SPY", part, "synthetic")
        assert result.inserted == len(set(part["date"]) - seen)
        seen |= set(part["date"])
    assert _count(engine) == len(seen)


def test_database_rejects_duplicate_bars(engine):
    bars = _bars(end=dt.date(2025, 1, 3))
    with engine.begin() as conn:
        upsert_bars(conn, "SPY", bars, "synthetic")
    row = {
        "symbol": "SPY",
        "date": START,
        "open": 1,
        "high": 2,
        "low": 0.5,
        "close": 1.5,
        "volume": 1,
        "source": "x",
        "fetched_at": dt.datetime.now(dt.UTC),
    }
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(price_history.insert(), [row])
