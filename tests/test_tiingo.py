"""The Tiingo source against the fake Tiingo server (a real socket): parsing, every refusal,
retries, pacing, the token's secrecy, and ``allocator backfill --source tiingo`` and the fetch job
storing raw OHLCV on SQLite and PostgreSQL.

Nothing sleeps for real: the source gets a recording ``sleep`` and a still clock, and the CLI
runs with ``TIINGO_CALL_DELAY=0`` and ``TIINGO_RETRY_BACKOFF=0``.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest
import sqlalchemy as sa

from allocator.cli.commands import main
from allocator.exceptions import (
    MalformedResponseError,
    MarketDataError,
    RateLimitError,
    SettingsError,
    TransientVendorError,
    VendorError,
)
from allocator.jobs.fetch import FETCH_WINDOW_DAYS, run_fetch
from allocator.shell import calendar
from allocator.shell.marketdata import make_source
from allocator.shell.marketdata.base import BAR_COLUMNS
from allocator.shell.marketdata.tiingo import (
    TiingoSource,
    classify_limit,
    parse_daily_prices,
    prices_path,
)
from allocator.shell.persistence.schema import price_history
from allocator.shell.settings import TIINGO_DEFAULT_DELAY, get_settings, mask_url
from tests.faketiingo import FAILURE_KINDS, FakeTiingo, price_rows

KEY = "TIINGOKEY5f3a9c71"
SYMBOLS = ("SPY", "QQQ", "DIA")
FAILING = "QQQ"
START, END = dt.date(2005, 1, 3), dt.date(2005, 3, 31)
TIMEOUT = 0.5
#: Weekdays around the range: the holidays inside it (2005-01-17, 2005-02-21, Good Friday
#: 2005-03-25) and the days outside it must not be stored.
SERVED_DAYS = pd.bdate_range("2004-10-01", "2005-04-15").date


def served_bars(offset: float) -> pd.DataFrame:
    """Raw bars with 4-decimal prices that differ per symbol and per day."""
    n = len(SERVED_DAYS)
    opens = [round(80.0 + offset + 0.29 * i + 0.0137 * (i % 5), 4) for i in range(n)]
    return pd.DataFrame(
        {
            "date": SERVED_DAYS,
            "open": opens,
            "high": [round(o + 1.1 + 0.01 * (i % 3), 4) for i, o in enumerate(opens)],
            "low": [round(o - 0.95, 4) for o in opens],
            "close": [round(o + 0.3217, 4) for o in opens],
            "volume": [40_000_000 + 7_919 * i for i in range(n)],
        }
    )


SERVED = {symbol: served_bars(50.0 * i) for i, symbol in enumerate(SYMBOLS)}


@pytest.fixture
def tiingo(fake_tiingo: FakeTiingo) -> FakeTiingo:
    fake_tiingo.expected_api_key = KEY
    fake_tiingo.hang_seconds = 2 * TIMEOUT
    for symbol, frame in SERVED.items():
        fake_tiingo.set_bars(symbol, frame)
    return fake_tiingo


class Clock:
    """A clock that stands still unless told, and a ``sleep`` that only records."""

    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def source_for(fake: FakeTiingo, clock: Clock | None = None, **options) -> TiingoSource:
    clock = clock or Clock()
    options = {"delay": 0, "timeout": TIMEOUT, "max_retries": 0, "backoff": 2.0, **options}
    return TiingoSource(KEY, fake.url, sleep=clock.sleep, clock=clock, **options)


def raw_within(symbol: str, start: dt.date, end: dt.date, sessions_only: bool = False):
    frame = SERVED[symbol]
    frame = frame[(frame["date"] >= start) & (frame["date"] <= end)]
    if sessions_only:
        frame = frame[frame["date"].isin(set(calendar.sessions_between(start, end)))]
    return frame.reset_index(drop=True)


# -- parsing -------------------------------------------------------------------------------------


def test_fetch_returns_the_raw_bars_of_the_range_from_one_request(tiingo):
    bars = source_for(tiingo).fetch("SPY", START, END)

    expected = raw_within("SPY", START, END)
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert list(bars["date"]) == list(expected["date"])
    for column in ("open", "high", "low", "close"):
        assert bars[column].tolist() == pytest.approx(expected[column].tolist(), abs=1e-9)
    assert bars["volume"].dtype == "int64"
    assert bars["volume"].tolist() == expected["volume"].tolist()
    (request,) = tiingo.requests
    assert request["path"] == "/tiingo/daily/SPY/prices"
    assert (request["startDate"], request["endDate"]) == ("2005-01-03", "2005-03-31")
    assert request["format"] == "json"
    assert request["authorization"] == f"Token {KEY}"
    assert all(KEY not in value for name, value in request.items() if name != "authorization")


def test_parse_keeps_raw_prices_ignores_adjusted_ones_and_sorts_by_date():
    frame = served_bars(0.0).head(3)
    rows = price_rows(frame, adjustment=0.5)
    assert rows[0]["adjClose"] == pytest.approx(rows[0]["close"] * 0.5)

    bars = parse_daily_prices("SPY", list(reversed(rows)))

    assert list(bars["date"]) == list(frame["date"])
    assert bars["close"].tolist() == pytest.approx(frame["close"].tolist())
    assert bars["volume"].tolist() == frame["volume"].tolist()


def test_an_empty_answer_is_an_empty_frame_with_the_bar_columns(tiingo):
    assert list(parse_daily_prices("SPY", []).columns) == list(BAR_COLUMNS)
    tiingo.fail("SPY", "empty_list")
    bars = source_for(tiingo).fetch("SPY", START, END)
    assert bars.empty and list(bars.columns) == list(BAR_COLUMNS)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["2005-01-03"], "row 0 is '2005-01-03', not an object"),
        ([{"date": "2005-01-03T00:00:00.000Z", "open": 1.0}], "bar 2005-01-03 lacks 'high'"),
        (
            [{"date": "2005-01-03", "open": 0, "high": 2, "low": 1, "close": 1, "volume": 5}],
            "open 0.0 on 2005-01-03 is not above zero",
        ),
    ],
)
def test_a_malformed_row_names_the_symbol_and_the_row(rows, message):
    with pytest.raises(MalformedResponseError) as caught:
        parse_daily_prices("SPY", rows)
    assert str(caught.value).startswith("SPY: ") and message in str(caught.value)


def test_share_classes_are_written_with_a_hyphen():
    assert prices_path("BRK.B") == "/tiingo/daily/BRK-B/prices"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Error: You have run over your hourly request allocation.", "hourly"),
        ("Error: You have run over your daily request allocation.", "daily"),
        ("Error: You have run over your 500 symbol look up for this month.", "monthly"),
        ("", "unknown"),
    ],
)
def test_rate_limit_texts_are_classified(text, kind):
    assert classify_limit(text) == kind


# -- every refusal: typed, naming the symbol and what to do, never quoting the key ---------------

# kind -> (error type, transient, text the message must hold); None: not an error
FAILURES = {
    "http_401": (VendorError, False, 'Invalid token."); check TIINGO_API_KEY'),
    "http_403": (VendorError, False, "HTTP 403"),
    "http_404": (VendorError, False, "Tiingo does not know the ticker QQQ"),
    "http_429": (RateLimitError, True, "raise TIINGO_CALL_DELAY if this repeats"),
    "hourly_limit": (RateLimitError, False, "hourly limit reached"),
    "daily_limit": (RateLimitError, False, "re-run after the daily reset"),
    "monthly_symbols": (RateLimitError, False, "500 distinct symbols a month"),
    "http_500": (TransientVendorError, True, "Tiingo answered HTTP 500"),
    "http_503": (TransientVendorError, True, "Tiingo answered HTTP 503"),
    "malformed_json": (MalformedResponseError, False, "Tiingo daily prices answer is not JSON"),
    "empty_list": None,
    "detail_200": (VendorError, False, "Error: Ticker 'QQQ' not found"),
    "missing_field": (MalformedResponseError, False, "bar 2005-03-31 lacks 'close'"),
    "non_numeric": (MalformedResponseError, False, "close None on 2005-03-31 is not a number"),
    "timeout": (TransientVendorError, True, f"Tiingo did not answer within {TIMEOUT:g} s"),
    "disconnect": (TransientVendorError, True, "connection to Tiingo failed"),
}
ERRORS = [kind for kind, expected in FAILURES.items() if expected is not None]
TRANSIENT = [kind for kind in ERRORS if FAILURES[kind][1]]


def test_every_failure_kind_of_the_fake_is_covered():
    assert set(FAILURES) == set(FAILURE_KINDS)


@pytest.mark.parametrize("kind", ERRORS)
def test_each_refusal_is_a_typed_error_naming_the_symbol(tiingo, caplog, kind):
    caplog.set_level(logging.DEBUG)
    error_type, transient, text = FAILURES[kind]
    tiingo.fail(FAILING, kind)

    with pytest.raises(error_type) as caught:
        source_for(tiingo).fetch(FAILING, START, END)

    message = str(caught.value)
    assert caught.value.symbol == FAILING and message.startswith(f"{FAILING}: ")
    assert text in message
    assert caught.value.transient is transient
    assert len(tiingo.calls(FAILING)) == 1  # max_retries=0
    assert KEY not in message and KEY not in caplog.text


def test_a_bad_token_from_the_environment_is_refused_with_a_hint(tiingo):
    source = TiingoSource("WRONG-TOKEN-1234", tiingo.url, delay=0, max_retries=0)
    with pytest.raises(VendorError, match="Invalid token.*check TIINGO_API_KEY") as caught:
        source.fetch("SPY", START, END)
    assert "WRONG-TOKEN-1234" not in str(caught.value)


def test_a_wrong_base_url_names_the_setting(tiingo):
    source = TiingoSource(KEY, tiingo.url + "/nowhere", delay=0, max_retries=0)
    with pytest.raises(VendorError, match="HTTP 404.*check TIINGO_BASE_URL"):
        source.fetch("SPY", START, END)


def test_a_vendor_text_echoing_the_key_is_redacted(tiingo):
    client = source_for(tiingo)._client
    with pytest.raises(VendorError) as caught:
        client._raise_for_refusal("SPY", 401, f'{{"detail": "Invalid token {KEY}."}}')
    assert KEY not in str(caught.value) and "Invalid token ***." in str(caught.value)


# -- retries and pacing --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSIENT)
def test_transient_failures_are_retried_with_backoff_then_succeed(tiingo, kind):
    clock = Clock()
    tiingo.fail("SPY", kind, times=2)

    bars = source_for(tiingo, clock, max_retries=3, backoff=2.0).fetch("SPY", START, END)

    assert len(bars) == len(raw_within("SPY", START, END))
    assert len(tiingo.calls("SPY")) == 3
    assert clock.sleeps == [2.0, 4.0]  # backoff * 2**n, recorded, not slept


def test_retries_stop_after_max_retries(tiingo):
    tiingo.fail("SPY", "http_503", times=4)
    with pytest.raises(TransientVendorError, match="HTTP 503"):
        source_for(tiingo, max_retries=2, backoff=0).fetch("SPY", START, END)
    assert len(tiingo.calls("SPY")) == 3


@pytest.mark.parametrize("kind", ["hourly_limit", "daily_limit", "http_404", "http_401"])
def test_permanent_refusals_are_not_retried(tiingo, kind):
    tiingo.fail("SPY", kind, times=4)
    with pytest.raises(MarketDataError):
        source_for(tiingo, max_retries=3, backoff=0).fetch("SPY", START, END)
    assert len(tiingo.calls("SPY")) == 1


def test_calls_are_spaced_by_the_delay_and_one_call_serves_the_whole_range(tiingo):
    clock = Clock()
    source = source_for(tiingo, clock, delay=TIINGO_DEFAULT_DELAY)
    long_ago = dt.date(2004, 10, 1)
    for symbol in SYMBOLS:
        source.fetch(symbol, long_ago, END)
    assert clock.sleeps == [TIINGO_DEFAULT_DELAY, TIINGO_DEFAULT_DELAY]  # the clock stood still
    assert len(tiingo.requests) == len(SYMBOLS)


# -- settings ------------------------------------------------------------------------------------


def test_settings_are_read_and_the_key_is_a_secret():
    settings = get_settings(
        {
            "TIINGO_API_KEY": KEY,
            "TIINGO_BASE_URL": "http://127.0.0.1:9/",
            "TIINGO_CALL_DELAY": "0.25",
            "TIINGO_TIMEOUT": "12",
            "TIINGO_MAX_RETRIES": "5",
            "TIINGO_RETRY_BACKOFF": "0",
        }
    )
    assert settings.require_tiingo_key() == KEY
    assert settings.tiingo_base_url == "http://127.0.0.1:9/"
    assert (settings.tiingo_delay, settings.tiingo_timeout) == (0.25, 12.0)
    assert (settings.tiingo_max_retries, settings.tiingo_backoff) == (5, 0.0)
    assert KEY in settings.secret_values()
    assert KEY not in repr(settings)
    source = make_source("tiingo", settings=settings)
    assert isinstance(source, TiingoSource) and source.name == "tiingo"
    assert (source.delay, source.timeout, source.max_retries) == (0.25, 12.0, 5)
    assert KEY not in repr(source)


def test_defaults_and_the_missing_key():
    settings = get_settings({})
    assert settings.tiingo_base_url == "https://api.tiingo.com"
    assert settings.tiingo_delay == TIINGO_DEFAULT_DELAY == 1.5
    with pytest.raises(SettingsError, match="TIINGO_API_KEY is not set"):
        make_source("tiingo", settings=settings)


@pytest.mark.parametrize("name", ["TIINGO_CALL_DELAY", "TIINGO_MAX_RETRIES"])
def test_a_malformed_setting_names_the_variable(name):
    with pytest.raises(SettingsError, match=name):
        get_settings({name: "soon"})


def test_a_token_in_a_url_is_masked():
    assert mask_url("https://x/prices?token=ABC123&format=json") == (
        "https://x/prices?token=***&format=json"
    )


# -- allocator backfill --source tiingo, on both databases ---------------------------------------


def stored(engine: sa.Engine, symbol: str) -> list[tuple]:
    ph = price_history
    query = (
        sa.select(ph.c.date, ph.c.open, ph.c.high, ph.c.low, ph.c.close, ph.c.volume, ph.c.source)
        .where(ph.c.symbol == symbol)
        .order_by(ph.c.date)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def assert_raw_sessions_stored(engine: sa.Engine, symbol: str, start: dt.date, end: dt.date):
    rows, expected = stored(engine, symbol), raw_within(symbol, start, end, sessions_only=True)
    assert [r[0] for r in rows] == list(expected["date"])
    for row, want in zip(rows, expected.itertuples(index=False), strict=True):
        assert row[1:5] == pytest.approx((want.open, want.high, want.low, want.close), abs=1e-9)
        assert (row[5], row[6]) == (want.volume, "tiingo")


@pytest.fixture
def backfill(engine, database_url, tiingo, monkeypatch, capsys, caplog):
    """Run ``allocator backfill --source tiingo`` in-process; no output may hold the key."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TIINGO_API_KEY", KEY)
    monkeypatch.setenv("TIINGO_BASE_URL", tiingo.url)
    monkeypatch.setenv("TIINGO_CALL_DELAY", "0")
    monkeypatch.setenv("TIINGO_RETRY_BACKOFF", "0")
    monkeypatch.setenv("TIINGO_TIMEOUT", str(TIMEOUT))
    caplog.set_level(logging.DEBUG)

    def run(*options: str) -> tuple[int, str, str]:
        caplog.clear()
        code = main(
            ["-v", "backfill", "--source", "tiingo", "--start", START.isoformat()]
            + ["--end", END.isoformat(), "--symbols", *SYMBOLS, *options]
        )
        out, err = capsys.readouterr()
        for text in (out, err, caplog.text):
            assert KEY not in text
        return code, out, err + caplog.text

    return run


def test_backfill_stores_raw_ohlcv_of_every_session_and_a_rerun_adds_nothing(
    engine, tiingo, backfill
):
    code, out, log = backfill()

    assert code == 0, log
    sessions = calendar.sessions_between(START, END)
    assert len(sessions) == 61
    for symbol in SYMBOLS:
        assert_raw_sessions_stored(engine, symbol, START, END)
    assert "3/3 symbols, 183 bars inserted, 0 revised" in out
    assert [r["symbol"] for r in tiingo.requests] == list(SYMBOLS)  # one request per symbol
    assert {(r["startDate"], r["endDate"], r["authorization"]) for r in tiingo.requests} == {
        ("2005-01-03", "2005-03-31", f"Token {KEY}")
    }

    code, out, _ = backfill()
    assert code == 0 and "3/3 symbols, 0 bars inserted, 0 revised" in out


def test_backfill_names_a_failing_symbol_and_stores_the_others(engine, tiingo, backfill):
    tiingo.fail(FAILING, "http_404")
    code, out, log = backfill()

    assert code == 1
    assert f"{FAILING}: Tiingo does not know the ticker {FAILING}" in log
    assert f"FAILED {FAILING} (see the errors above)" in out
    assert stored(engine, FAILING) == []
    for symbol in ("SPY", "DIA"):
        assert_raw_sessions_stored(engine, symbol, START, END)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("http_401", "Tiingo refused the token"),
        ("http_403", "Tiingo refused the token"),
        ("hourly_limit", "Tiingo hourly limit reached"),
        ("daily_limit", "Tiingo daily limit reached"),
        ("monthly_symbols", "Tiingo monthly limit reached"),
    ],
)
def test_a_refused_token_or_a_spent_quota_stops_at_the_first_symbol(
    engine, tiingo, backfill, capsys, caplog, kind, message
):
    """The first refusal that refuses every symbol stops the backfill: QQQ and DIA are not
    requested (they would spend the hourly quota for nothing), and each message is printed once."""
    tiingo.fail("SPY", kind)
    caplog.clear()
    code = main(
        ["backfill", "--source", "tiingo", "--start", START.isoformat()]
        + ["--end", END.isoformat(), "--symbols", *SYMBOLS]
    )
    out, err = capsys.readouterr()

    assert code == 1
    assert [r["symbol"] for r in tiingo.requests] == ["SPY"]
    assert (out + err).count(message) == 1, out + err
    assert "ERROR allocator.jobs.ingest: SPY: " + message in err
    assert "FAILED SPY (see the errors above); not attempted: QQQ, DIA" in out
    assert [line.split()[:3] for line in out.splitlines()[3:5]] == [
        ["QQQ", "not", "attempted"],
        ["DIA", "not", "attempted"],
    ]
    assert all(stored(engine, symbol) == [] for symbol in SYMBOLS)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage().split(":")[0] for r in errors] == ["SPY"]


def test_an_unknown_ticker_does_not_stop_the_others(engine, tiingo, backfill):
    tiingo.fail("SPY", "http_404")
    code, out, _ = backfill()
    assert code == 1
    assert [r["symbol"] for r in tiingo.requests] == list(SYMBOLS)
    assert "FAILED SPY (see the errors above)" in out and "not attempted" not in out
    for symbol in ("QQQ", "DIA"):
        assert_raw_sessions_stored(engine, symbol, START, END)


def test_backfill_retries_a_transient_failure(engine, tiingo, backfill):
    tiingo.fail(FAILING, "http_429")
    tiingo.fail("DIA", "http_500")
    code, _, log = backfill()

    assert code == 0, log
    assert "retry 1 of 3" in log
    for symbol in SYMBOLS:
        assert_raw_sessions_stored(engine, symbol, START, END)


def test_backfill_without_a_key_names_the_variable(database_url, engine, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["backfill", "--source", "tiingo", "--start", "2005-01-03"]) == 2
    assert "TIINGO_API_KEY is not set" in capsys.readouterr().err


# -- the fetch job with source tiingo ------------------------------------------------------------


def test_the_fetch_job_stores_the_window_from_tiingo(engine, database_url, tiingo, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TIINGO_API_KEY", KEY)
    monkeypatch.setenv("TIINGO_BASE_URL", tiingo.url)
    monkeypatch.setenv("TIINGO_CALL_DELAY", "0")

    result = run_fetch(END.isoformat(), source="tiingo", symbols=list(SYMBOLS))

    result.raise_for_errors()
    assert result.last_bar_date == END and result.missing == []
    window_start = END - dt.timedelta(days=FETCH_WINDOW_DAYS)
    assert {r["startDate"] for r in tiingo.requests} == {window_start.isoformat()}
    for symbol in SYMBOLS:
        assert_raw_sessions_stored(engine, symbol, window_start, END)
