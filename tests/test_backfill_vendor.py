"""``allocator backfill --source alphavantage`` end to end: the CLI in-process, the fake vendor
over a real socket, and a real database (SQLite and PostgreSQL).

Each symbol is all or nothing: a vendor failure stores no row of that symbol, names it and the
vendor's words on one stderr line, exits 1, and stores the other symbols in full. Transient
failures are retried. The API key never reaches stdout, stderr or a log record.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd
import pytest
import sqlalchemy as sa

from allocator.cli.commands import main
from allocator.shell import calendar
from allocator.shell.persistence.schema import price_history
from tests.fakevendor import FAILURE_KINDS, FakeAlphaVantage

KEY = "BACKFILLKEY2468"
START, END = dt.date(2024, 3, 1), dt.date(2024, 4, 5)
SYMBOLS = ("SPY", "QQQ", "DIA")
FAILING = "QQQ"
TIMEOUT = 0.5
#: The vendor serves weekdays from February to mid-April: dates outside [START, END] and the
#: weekday holiday inside it (Good Friday, 2024-03-29) must not be stored.
SERVED_DAYS = pd.bdate_range("2024-02-01", "2024-04-12").date

# kind -> text of the vendor (or of the client about it) the stderr line must quote
FAILURES = {
    "error_message": "Invalid API call. Please retry or visit the documentation",
    "invalid_api_key": "the parameter apikey is invalid or missing",
    "information_daily_limit": "our standard API rate limit is 25 requests per day",
    "information_burst": "spreading out your free API requests more sparingly",
    "note": "Our standard API call frequency is 5 calls per minute",
    "premium": "The outputsize=full parameter value is a premium feature",
    "premium_endpoint": "This is a premium endpoint",
    "http_429": "HTTP 429",
    "http_500": "HTTP 500",
    "http_502": "HTTP 502",
    "http_503": "HTTP 503",
    "http_400": "HTTP 400",
    "http_403": "HTTP 403",
    "http_404": "HTTP 404",
    "timeout": f"Alpha Vantage did not answer within {TIMEOUT:g} s",
    "disconnect": "connection to Alpha Vantage failed",
    "malformed_json": 'answer is not JSON: "{ "Meta Data": { "1. Information": "Daily Prices',
    "missing_series": "answer has no 'Time Series (Daily)' object",
    "missing_field": "bar 2024-04-12 lacks '4. close'",
    "non_numeric": "close 'n/a' on 2024-04-12 is not a number",
    "non_positive": "open 0.0 on 2024-04-12 is not above zero",
    "high_below_low": "on 2024-04-12",
}
TRANSIENT = {
    "information_burst",
    "note",
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "timeout",
    "disconnect",
}
#: Retries the failure tests allow; a transient failure scripted once more is never cured.
RETRIES = 1


def test_every_failure_kind_of_the_fake_is_covered():
    assert set(FAILURES) == set(FAILURE_KINDS)


def served_bars(offset: float) -> pd.DataFrame:
    """Bars with 4-decimal prices that differ per symbol and per day."""
    n = len(SERVED_DAYS)
    opens = [round(100.0 + offset + 0.37 * i + 0.0123 * (i % 7), 4) for i in range(n)]
    return pd.DataFrame(
        {
            "date": SERVED_DAYS,
            "open": opens,
            "high": [round(o + 1.5 + 0.01 * (i % 5), 4) for i, o in enumerate(opens)],
            "low": [round(o - 1.25, 4) for o in opens],
            "close": [round(o + 0.4321, 4) for o in opens],
            "volume": [2_000_000 + 1_111 * i for i in range(n)],
        }
    )


SERVED = {symbol: served_bars(100.0 * i) for i, symbol in enumerate(SYMBOLS)}


def expected_rows(symbol: str) -> list[tuple]:
    """The served bars of ``symbol`` a backfill of [START, END] must store: sessions only."""
    sessions = set(calendar.sessions_between(START, END))
    frame = SERVED[symbol]
    frame = frame[frame["date"].isin(sessions)]
    return [tuple(row) for row in frame.itertuples(index=False)]


def stored_rows(engine: sa.Engine, symbol: str) -> list[tuple]:
    ph = price_history
    query = (
        sa.select(ph.c.date, ph.c.open, ph.c.high, ph.c.low, ph.c.close, ph.c.volume)
        .where(ph.c.symbol == symbol)
        .order_by(ph.c.date)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def row_counts(engine: sa.Engine) -> dict[str, int]:
    query = sa.select(price_history.c.symbol, sa.func.count()).group_by(price_history.c.symbol)
    with engine.connect() as conn:
        return dict(conn.execute(query).all())


def assert_fully_stored(engine: sa.Engine, symbol: str) -> None:
    stored, expected = stored_rows(engine, symbol), expected_rows(symbol)
    assert [r[0] for r in stored] == [r[0] for r in expected]
    for got, want in zip(stored, expected, strict=True):
        assert got[1:5] == pytest.approx(want[1:5], rel=0, abs=1e-9)
        assert got[5] == want[5]


@dataclass
class Run:
    code: int
    out: str
    err: str
    log: str


@pytest.fixture
def vendor(fake_vendor: FakeAlphaVantage) -> FakeAlphaVantage:
    fake_vendor.expected_api_key = KEY
    for symbol, frame in SERVED.items():
        fake_vendor.set_bars(symbol, frame)
    return fake_vendor


@pytest.fixture
def backfill(engine, database_url, vendor, monkeypatch, capsys, caplog):
    """Run ``allocator backfill --source alphavantage`` in-process against the fake vendor.

    Every run is checked for the API key in stdout, stderr and every log record.
    """
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", KEY)
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", vendor.url)
    monkeypatch.setenv("ALPHAVANTAGE_CALL_DELAY", "0")
    monkeypatch.setenv("ALPHAVANTAGE_TIMEOUT", str(TIMEOUT))
    monkeypatch.setenv("ALPHAVANTAGE_RETRY_BACKOFF", "0")
    caplog.set_level(logging.DEBUG)

    def run(*options: str, verbose: bool = False) -> Run:
        caplog.clear()
        code = main(
            [
                *(["-v"] if verbose else []),
                "backfill",
                "--source",
                "alphavantage",
                "--start",
                START.isoformat(),
                "--end",
                END.isoformat(),
                "--symbols",
                *SYMBOLS,
                *options,
            ]
        )
        captured = capsys.readouterr()
        result = Run(code, captured.out, captured.err, caplog.text)
        for text in (result.out, result.err, result.log):
            assert KEY not in text
        return result

    return run


# -- (a) a good backfill, then a re-run ---------------------------------------------------------


def test_backfill_stores_exactly_the_served_session_bars_and_a_rerun_adds_nothing(
    engine, vendor, backfill
):
    first = backfill()
    assert first.code == 0, first.err
    for symbol in SYMBOLS:
        assert_fully_stored(engine, symbol)
    counts = row_counts(engine)
    assert counts == {s: len(expected_rows(s)) for s in SYMBOLS}
    assert set(counts.values()) == {25}  # 26 weekdays in range, minus Good Friday
    assert "skipped 1 bar(s) dated on non-sessions: 2024-03-29" in first.log
    assert "3/3 symbols, 75 bars inserted, 0 revised" in first.out
    assert [q["symbol"] for q in vendor.requests] == list(SYMBOLS)
    assert {(q["function"], q["outputsize"], q["apikey"]) for q in vendor.requests} == {
        ("TIME_SERIES_DAILY", "compact", KEY)
    }

    again = backfill()
    assert again.code == 0, again.err
    assert row_counts(engine) == counts
    assert "3/3 symbols, 0 bars inserted, 0 revised" in again.out
    for symbol in SYMBOLS:
        assert_fully_stored(engine, symbol)


# -- (b) one symbol fails: nothing of it is stored, everything of the others is -----------------


@pytest.mark.parametrize("kind", list(FAILURES))
def test_a_failing_symbol_stores_nothing_names_itself_and_the_others_are_stored(
    engine, vendor, backfill, monkeypatch, kind
):
    monkeypatch.setenv("ALPHAVANTAGE_MAX_RETRIES", str(RETRIES))
    vendor.fail(FAILING, kind, times=RETRIES + 1)  # more than the retries: never cured
    result = backfill()

    assert result.code == 1
    # The reason once, on stderr (a retry's warning aside); the summary line names the symbol.
    failed = [line for line in result.err.splitlines() if " ERROR " in line]
    assert len(failed) == 1, result.err
    assert f"ERROR allocator.jobs.ingest: {FAILING}: " in failed[0]
    assert FAILURES[kind] in failed[0]
    assert FAILURES[kind] not in result.out
    assert f"FAILED {FAILING} (see the errors above)" in result.out
    assert row_counts(engine) == {"SPY": 25, "DIA": 25}  # no partial rows of QQQ
    assert_fully_stored(engine, "SPY")
    assert_fully_stored(engine, "DIA")
    attempts = RETRIES + 1 if kind in TRANSIENT else 1
    assert len(vendor.calls(FAILING)) == attempts


# -- (c) a transient failure is retried ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_503", "timeout"])
def test_a_transient_failure_is_retried_and_the_symbol_fully_stored(engine, vendor, backfill, kind):
    vendor.fail(FAILING, kind, times=1)
    result = backfill()
    assert result.code == 0, result.err
    assert "FAILED" not in result.err
    assert "retry 1 of 3" in result.log
    assert FAILURES[kind] in result.log
    for symbol in SYMBOLS:
        assert_fully_stored(engine, symbol)
    assert len(vendor.calls(FAILING)) == 2


# -- (d) a revised bar ----------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "stored_close"), [("update", "revised"), ("keep", "original")])
def test_a_revised_bar_is_logged_and_stored_per_policy(
    engine, vendor, backfill, policy, stored_close
):
    assert backfill().code == 0
    day = dt.date(2024, 3, 12)
    revised = SERVED[FAILING].copy()
    row = revised["date"] == day
    original = float(revised.loc[row, "close"].iloc[0])
    revised.loc[row, "close"] = original + 1.25
    revised.loc[row, "high"] = original + 1.25  # a valid bar keeps its close within low..high
    vendor.set_bars(FAILING, revised)
    counts = row_counts(engine)

    result = backfill("--on-revision", policy)
    assert result.code == 0, result.err
    assert row_counts(engine) == counts
    expected_log = f"{FAILING} {day}: vendor revised the bar (close {original} -> {original + 1.25}"
    assert expected_log in result.log
    assert expected_log in result.err  # operators see it on the console too
    closes = {r[0]: r[4] for r in stored_rows(engine, FAILING)}
    want = original + 1.25 if stored_close == "revised" else original
    assert closes[day] == pytest.approx(want)
    if policy == "update":
        assert "0 bars inserted, 1 revised" in result.out
        assert "stored the revision" in result.log
    else:
        assert "kept the stored bar" in result.log


# -- (e) the key stays secret, even in debug output ---------------------------------------------


def test_the_key_is_masked_in_debug_output_and_vendor_texts(engine, vendor, backfill):
    vendor.fail("SPY", "information_daily_limit")  # the vendor's text quotes the key
    vendor.fail("DIA", "invalid_api_key")
    result = backfill(verbose=True)  # the fixture asserts KEY is in none of out, err, log
    assert result.code == 1
    assert "apikey=***" in result.err  # request URLs are logged, masked
    assert "We have detected your API key as ***" in result.err
    assert row_counts(engine) == {"QQQ": 25}
