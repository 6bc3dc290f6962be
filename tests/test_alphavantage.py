"""AlphaVantageSource against the fake vendor over real sockets (tests/fakevendor.py).

Every test injects ``sleep`` and ``clock``, so nothing waits on a real delay or backoff; the
only real waiting is the 0.3 s client timeout of the timeout cases.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests

from allocator.exceptions import (
    MalformedResponseError,
    MarketDataError,
    PremiumRequiredError,
    RateLimitError,
    SettingsError,
    TransientVendorError,
    VendorError,
)
from allocator.shell.marketdata import MarketDataSource, make_source
from allocator.shell.marketdata.alphavantage import AlphaVantageSource, classify_notice
from allocator.shell.settings import get_settings
from tests import fakevendor
from tests.fakevendor import FAILURE_KINDS, FakeAlphaVantage

KEY = "SECRETKEY9876"
SYMBOL = "SPY"
START = dt.date(2024, 1, 1)
END = dt.date(2024, 12, 31)


class FakeClock:
    """``time.monotonic`` and ``time.sleep`` stand-ins: sleeping advances the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_bars(n: int, first: str = "2024-01-02") -> pd.DataFrame:
    days = pd.bdate_range(first, periods=n)
    base = [100.0 + i for i in range(n)]
    return pd.DataFrame(
        {
            "date": days.date,
            "open": base,
            "high": [b + 2.5 for b in base],
            "low": [b - 1.25 for b in base],
            "close": [b + 0.5 for b in base],
            "volume": [1_000_000 + i for i in range(n)],
        }
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def vendor(fake_vendor: FakeAlphaVantage) -> FakeAlphaVantage:
    fake_vendor.expected_api_key = KEY
    fake_vendor.set_bars(SYMBOL, make_bars(10))
    return fake_vendor


def source_for(fake: FakeAlphaVantage, clock: FakeClock, **options) -> AlphaVantageSource:
    options = {"delay": 0.0, "timeout": 2.0, "sleep": clock.sleep, "clock": clock, **options}
    return AlphaVantageSource(KEY, fake.url, **options)


# -- a good answer ------------------------------------------------------------------------------


def test_fetch_parses_values_dates_and_order_exactly(vendor, clock):
    vendor.set_bars(
        SYMBOL,
        pd.DataFrame(
            {
                "date": ["2024-03-05", "2024-03-04", "2024-03-06"],
                "open": [512.13, 510.0, 515.55555],
                "high": [514.5, 511.25, 516.0],
                "low": [509.875, 508.1, 514.0],
                "close": [513.0, 510.5, 515.9],
                "volume": [71234567, 60000000, 1],
            }
        ),
    )
    bars = source_for(vendor, clock).fetch(SYMBOL, START, END)

    expected = pd.DataFrame(
        {
            "date": [dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6)],
            "open": [510.0, 512.13, 515.5556],  # the vendor rounds to 4 decimals
            "high": [511.25, 514.5, 516.0],
            "low": [508.1, 509.875, 514.0],
            "close": [510.5, 513.0, 515.9],
            "volume": pd.Series([60000000, 71234567, 1], dtype="int64"),
        }
    )
    pd.testing.assert_frame_equal(bars, expected)
    assert isinstance(bars["date"].iloc[0], dt.date)


def test_fetch_sends_the_documented_query(vendor, clock):
    source_for(vendor, clock).fetch(SYMBOL, START, END)
    assert vendor.requests == [
        {
            "function": "TIME_SERIES_DAILY",
            "symbol": SYMBOL,
            "outputsize": "compact",
            "apikey": KEY,
            "datatype": "json",
        }
    ]


def test_fetch_clips_to_the_closed_range(vendor, clock):
    bars = source_for(vendor, clock).fetch(SYMBOL, dt.date(2024, 1, 3), dt.date(2024, 1, 5))
    assert list(bars["date"]) == [dt.date(2024, 1, 3), dt.date(2024, 1, 4), dt.date(2024, 1, 5)]
    assert list(bars["open"]) == [101.0, 102.0, 103.0]


def test_fetch_of_a_range_without_bars_is_empty(vendor, clock):
    bars = source_for(vendor, clock).fetch(SYMBOL, dt.date(2030, 1, 1), dt.date(2030, 2, 1))
    assert bars.empty
    assert list(bars.columns) == ["date", "open", "high", "low", "close", "volume"]


def test_start_after_end_is_refused_before_calling(vendor, clock):
    with pytest.raises(ValueError, match="SPY: start 2024-02-01 is after end 2024-01-01"):
        source_for(vendor, clock).fetch(SYMBOL, dt.date(2024, 2, 1), dt.date(2024, 1, 1))
    assert vendor.requests == []


def test_compact_returns_the_latest_100_bars_and_warns_about_older_dates(vendor, clock, caplog):
    vendor.set_bars(SYMBOL, make_bars(150))
    caplog.set_level(logging.WARNING, logger="allocator.shell.marketdata.alphavantage")
    bars = source_for(vendor, clock).fetch(SYMBOL, START, END)
    assert len(bars) == 100
    assert bars["date"].iloc[-1] == make_bars(150)["date"].iloc[-1]
    assert "outputsize=compact returns only the latest 100 bars" in caplog.text


def test_full_is_sent_on_request_and_returns_every_bar_on_a_premium_key(vendor, clock):
    vendor.premium = True
    vendor.set_bars(SYMBOL, make_bars(150))
    bars = source_for(vendor, clock, outputsize="full").fetch(SYMBOL, START, END)
    assert len(bars) == 150
    assert vendor.requests[0]["outputsize"] == "full"


def test_full_on_a_free_key_raises_premium_required_once(vendor, clock):
    with pytest.raises(PremiumRequiredError) as caught:
        source_for(vendor, clock, outputsize="full").fetch(SYMBOL, START, END)
    assert "SPY" in str(caught.value)
    assert "outputsize=full parameter value is a premium feature" in str(caught.value)
    assert len(vendor.requests) == 1


def test_only_bars_published_by_visible_through_are_served(vendor, clock):
    vendor.visible_through = dt.date(2024, 1, 4)
    source = source_for(vendor, clock)
    assert source.fetch(SYMBOL, START, END)["date"].max() == dt.date(2024, 1, 4)
    vendor.visible_through = dt.date(2024, 1, 5)
    assert source.fetch(SYMBOL, START, END)["date"].max() == dt.date(2024, 1, 5)


def test_source_implements_the_protocol():
    source = AlphaVantageSource(KEY, "http://127.0.0.1:1/query")
    assert isinstance(source, MarketDataSource)
    assert source.name == "alphavantage"


# -- each failure, typed ------------------------------------------------------------------------

# kind -> (error type, transient, text the message must quote)
FAILURES = {
    "error_message": (VendorError, False, "Invalid API call. Please retry"),
    "invalid_api_key": (VendorError, False, "the parameter apikey is invalid or missing"),
    "information_daily_limit": (RateLimitError, False, "25 requests per day"),
    "information_burst": (RateLimitError, True, "spreading out your free API requests"),
    "note": (RateLimitError, True, "5 calls per minute and 500 calls per day"),
    "premium": (PremiumRequiredError, False, "is a premium feature"),
    "premium_endpoint": (PremiumRequiredError, False, "This is a premium endpoint"),
    "http_429": (TransientVendorError, True, "HTTP 429"),
    "http_500": (TransientVendorError, True, "HTTP 500"),
    "http_502": (TransientVendorError, True, "HTTP 502"),
    "http_503": (TransientVendorError, True, "HTTP 503"),
    "http_400": (VendorError, False, "HTTP 400"),
    "http_403": (VendorError, False, "HTTP 403"),
    "http_404": (VendorError, False, "HTTP 404"),
    "timeout": (TransientVendorError, True, "did not answer within 0.3 s"),
    "disconnect": (TransientVendorError, True, "connection to Alpha Vantage failed"),
    "malformed_json": (MalformedResponseError, False, '"Meta Data": { "1. Information"'),
    "missing_series": (MalformedResponseError, False, "no 'Time Series (Daily)'"),
    "missing_field": (MalformedResponseError, False, "bar 2024-01-15 lacks '4. close'"),
    "non_numeric": (MalformedResponseError, False, "close 'n/a' on 2024-01-15 is not a number"),
    "non_positive": (MalformedResponseError, False, "open 0.0 on 2024-01-15 is not above zero"),
    "high_below_low": (MalformedResponseError, False, "high 96.975 is below low 107.75"),
}
TRANSIENT = [kind for kind, (_, transient, _) in FAILURES.items() if transient]
PERMANENT = [kind for kind, (_, transient, _) in FAILURES.items() if not transient]


def test_every_failure_kind_of_the_fake_is_covered():
    assert set(FAILURES) == set(FAILURE_KINDS)


@pytest.mark.parametrize("kind", list(FAILURES))
def test_failure_raises_its_typed_error_naming_symbol_and_quoting_vendor(vendor, clock, kind):
    error_type, transient, quoted = FAILURES[kind]
    vendor.fail(SYMBOL, kind)
    source = source_for(vendor, clock, timeout=0.3, max_retries=0)
    with pytest.raises(error_type) as caught:
        source.fetch(SYMBOL, START, END)
    message = str(caught.value)
    assert caught.value.symbol == SYMBOL
    assert message.startswith("SPY: ")
    assert quoted in message
    assert caught.value.transient is transient
    assert KEY not in message
    assert len(vendor.requests) == 1


def test_unknown_symbol_gets_the_vendors_invalid_call_message(vendor, clock):
    with pytest.raises(VendorError) as caught:
        source_for(vendor, clock).fetch("NOPE", START, END)
    assert str(caught.value).startswith("NOPE: ")
    assert "Invalid API call" in str(caught.value)
    assert "check the symbol" in str(caught.value)
    assert len(vendor.requests) == 1


def test_wrong_key_is_refused_with_a_hint_and_without_echoing_it(vendor, clock):
    source = AlphaVantageSource("WRONGKEY", vendor.url, delay=0, sleep=clock.sleep, clock=clock)
    with pytest.raises(VendorError) as caught:
        source.fetch(SYMBOL, START, END)
    assert "apikey is invalid or missing" in str(caught.value)
    assert "ALPHAVANTAGE_API_KEY" in str(caught.value)
    assert "WRONGKEY" not in str(caught.value)
    assert vendor.requests[0]["apikey"] == "WRONGKEY"


def test_connection_refused_is_transient_and_hides_the_key(clock):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = AlphaVantageSource(
        KEY, f"http://127.0.0.1:{port}/query", delay=0, max_retries=0, sleep=clock.sleep
    )
    with pytest.raises(TransientVendorError) as caught:
        source.fetch(SYMBOL, START, END)
    assert str(caught.value).startswith("SPY: connection to Alpha Vantage failed")
    assert KEY not in str(caught.value)


def test_a_base_url_that_is_not_a_url_is_a_vendor_error_naming_the_setting(clock):
    source = AlphaVantageSource(KEY, "alphavantage.co/query", delay=0, sleep=clock.sleep)
    with pytest.raises(VendorError, match="check ALPHAVANTAGE_BASE_URL") as caught:
        source.fetch(SYMBOL, START, END)
    assert KEY not in str(caught.value)
    assert clock.sleeps == []


def test_a_daily_limit_reached_mid_run_refuses_further_calls(vendor, clock):
    vendor.daily_limit = 1
    source = source_for(vendor, clock)
    source.fetch(SYMBOL, START, END)
    with pytest.raises(RateLimitError) as caught:
        source.fetch(SYMBOL, START, END)
    assert caught.value.transient is False
    assert len(vendor.requests) == 2


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (fakevendor.BURST_LIMIT, "burst"),
        (fakevendor.NOTE_PER_MINUTE, "burst"),
        (fakevendor.DAILY_LIMIT.format(apikey="K"), "daily"),
        (
            "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per "
            "day. Please subscribe to any of the premium plans at "
            "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits.",
            "daily",
        ),
        (fakevendor.PREMIUM_FULL, "premium"),
        (fakevendor.PREMIUM_ENDPOINT, "premium"),
        ("Something the vendor has never said", "unknown"),
    ],
)
def test_classify_notice_reads_the_vendors_wording(text, kind):
    assert classify_notice(text) == kind


def test_an_unrecognised_information_is_a_vendor_error(vendor, clock, monkeypatch):
    monkeypatch.setattr(fakevendor, "PREMIUM_ENDPOINT", "Something new from the vendor")
    vendor.fail(SYMBOL, "premium_endpoint")
    with pytest.raises(VendorError) as caught:
        source_for(vendor, clock).fetch(SYMBOL, START, END)
    assert type(caught.value) is VendorError
    assert '(Information): "Something new from the vendor"' in str(caught.value)
    assert len(vendor.requests) == 1


# -- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSIENT)
def test_transient_failures_are_retried_with_backoff_then_succeed(vendor, clock, kind):
    times = 1 if kind == "timeout" else 2
    vendor.fail(SYMBOL, kind, times=times)
    source = source_for(vendor, clock, timeout=0.3, max_retries=3, backoff=2.0)
    bars = source.fetch(SYMBOL, START, END)
    assert len(bars) == 10
    assert len(vendor.requests) == times + 1
    assert clock.sleeps == [2.0, 4.0][:times]


@pytest.mark.parametrize("kind", PERMANENT)
def test_permanent_failures_are_not_retried(vendor, clock, kind):
    vendor.fail(SYMBOL, kind, times=5)
    with pytest.raises(MarketDataError):
        source_for(vendor, clock, max_retries=3).fetch(SYMBOL, START, END)
    assert len(vendor.requests) == 1
    assert clock.sleeps == []


def test_exhausted_retries_reraise_the_last_error(vendor, clock, caplog):
    vendor.fail(SYMBOL, "http_500", times=2)
    vendor.fail(SYMBOL, "http_503", times=10)
    caplog.set_level(logging.WARNING, logger="allocator.shell.marketdata.alphavantage")
    with pytest.raises(TransientVendorError, match="HTTP 503"):
        source_for(vendor, clock, max_retries=3, backoff=0.5).fetch(SYMBOL, START, END)
    assert len(vendor.requests) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert "retry 3 of 3 in 2.0 s" in caplog.text


def test_max_retries_zero_makes_one_call(vendor, clock):
    vendor.fail(SYMBOL, "http_503", times=3)
    with pytest.raises(TransientVendorError):
        source_for(vendor, clock, max_retries=0).fetch(SYMBOL, START, END)
    assert len(vendor.requests) == 1


# -- call spacing -------------------------------------------------------------------------------


def test_calls_are_spaced_by_delay_sleeping_only_the_remainder(vendor, clock):
    source = source_for(vendor, clock, delay=12.0)
    source.fetch(SYMBOL, START, END)
    assert clock.sleeps == []  # the first call never waits
    source.fetch(SYMBOL, START, END)
    assert clock.sleeps == [12.0]
    clock.now += 5.0
    source.fetch(SYMBOL, START, END)
    assert clock.sleeps == [12.0, 7.0]
    clock.now += 30.0
    source.fetch(SYMBOL, START, END)
    assert clock.sleeps == [12.0, 7.0]
    assert len(vendor.requests) == 4


def test_a_retry_waits_for_both_its_backoff_and_the_call_spacing(vendor, clock):
    vendor.fail(SYMBOL, "information_burst")
    source_for(vendor, clock, delay=12.0, backoff=2.0).fetch(SYMBOL, START, END)
    assert clock.sleeps == [2.0, 10.0]
    assert len(vendor.requests) == 2


# -- secrets ------------------------------------------------------------------------------------


def test_the_api_key_never_reaches_a_message_or_a_log_line(vendor, clock, caplog):
    caplog.set_level(logging.DEBUG)
    messages = []
    for kind in FAILURES:
        vendor.fail(SYMBOL, kind, times=2)
        source = source_for(vendor, clock, timeout=0.3, max_retries=1)
        try:
            source.fetch(SYMBOL, START, END)
        except MarketDataError as exc:
            messages.extend([str(exc), repr(exc)])
        vendor.reset()
    source_for(vendor, clock).fetch(SYMBOL, START, END)
    assert len(messages) == 2 * len(FAILURES)
    assert "apikey=***" in caplog.text  # the request URL was logged, masked
    for text in [*messages, caplog.text, repr(source)]:
        assert KEY not in text


# -- settings -----------------------------------------------------------------------------------


def test_from_settings_without_a_key_names_the_variable(tmp_path):
    settings = get_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, dotenv=False)
    with pytest.raises(SettingsError, match="ALPHAVANTAGE_API_KEY"):
        AlphaVantageSource.from_settings(settings)


def test_from_settings_reads_url_delay_and_timeout(tmp_path, fake_vendor):
    settings = get_settings(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "ALPHAVANTAGE_API_KEY": KEY,
            "ALPHAVANTAGE_BASE_URL": fake_vendor.url,
            "ALPHAVANTAGE_CALL_DELAY": "0.5",
            "ALPHAVANTAGE_TIMEOUT": "7",
        },
        dotenv=False,
    )
    source = AlphaVantageSource.from_settings(settings, outputsize="full")
    assert (source.base_url, source.delay, source.timeout, source.outputsize) == (
        fake_vendor.url,
        0.5,
        7.0,
        "full",
    )
    made = make_source("alphavantage", settings=settings)
    assert isinstance(made, AlphaVantageSource)
    assert made.outputsize == "compact"


def test_a_bad_outputsize_is_a_settings_error():
    with pytest.raises(SettingsError, match="outputsize='huge'"):
        AlphaVantageSource(KEY, "http://127.0.0.1:1/query", outputsize="huge")


# -- the fake itself ----------------------------------------------------------------------------


def test_fake_serves_the_vendors_json_shape(vendor):
    answer = requests.get(
        vendor.url,
        params={"function": "TIME_SERIES_DAILY", "symbol": "spy", "apikey": KEY},
        timeout=2,
    ).json()
    assert answer["Meta Data"] == {
        "1. Information": "Daily Prices (open, high, low, close) and Volumes",
        "2. Symbol": "SPY",
        "3. Last Refreshed": "2024-01-15",
        "4. Output Size": "Compact",
        "5. Time Zone": "US/Eastern",
    }
    series = answer["Time Series (Daily)"]
    assert list(series)[:2] == ["2024-01-15", "2024-01-12"]  # newest first
    assert series["2024-01-02"] == {
        "1. open": "100.0000",
        "2. high": "102.5000",
        "3. low": "98.7500",
        "4. close": "100.5000",
        "5. volume": "1000000",
    }


def test_fake_refuses_a_missing_key_and_serves_csv_on_request(vendor):
    missing = requests.get(vendor.url, params={"function": "TIME_SERIES_DAILY"}, timeout=2)
    assert missing.json() == {"Error Message": fakevendor.INVALID_API_KEY}
    csv = requests.get(
        vendor.url,
        params={
            "function": "TIME_SERIES_DAILY",
            "symbol": SYMBOL,
            "apikey": KEY,
            "datatype": "csv",
        },
        timeout=2,
    ).text.splitlines()
    assert csv[:2] == [
        "timestamp,open,high,low,close,volume",
        "2024-01-15,109.0000,111.5000,107.7500,109.5000,1000009",
    ]


def test_fake_rejects_an_unknown_failure_kind(fake_vendor):
    with pytest.raises(ValueError, match="unknown failure kind 'meltdown'"):
        fake_vendor.fail(SYMBOL, "meltdown")


def test_fake_runs_standalone_from_a_csv_dir(tmp_path, clock):
    make_bars(5).to_csv(tmp_path / "QQQ.csv", index=False)
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakevendor", "--port", "0", "--csv-dir", str(tmp_path)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        line = process.stdout.readline()
        assert "serving QQQ at http://127.0.0.1:" in line, line
        url = line.rsplit(" at ", 1)[1].strip()
        source = AlphaVantageSource(KEY, url, delay=0, sleep=clock.sleep)
        assert list(source.fetch("QQQ", START, END)["close"]) == [100.5, 101.5, 102.5, 103.5, 104.5]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
