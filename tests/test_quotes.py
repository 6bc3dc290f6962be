"""Live opens from Alpha Vantage's GLOBAL_QUOTE, against the fake vendor over real sockets.

The quote source must hand the execute job a symbol's open only when the vendor quotes the very
trade date, and must never fail the execution: every vendor failure leaves the symbol out, so its
orders stay pending for the fetch job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pandas as pd
import pytest
import requests
import sqlalchemy as sa

from allocator.exceptions import MalformedResponseError, SettingsError, VendorError
from allocator.jobs.execute import execute_trades
from allocator.jobs.fetch import fetch_bars
from allocator.shell.marketdata import make_quote_source
from allocator.shell.marketdata.alphavantage import AlphaVantageQuotes, Quote, parse_global_quote
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence.schema import trades
from allocator.shell.persistence.signals import save_signal
from allocator.shell.settings import Settings, get_settings
from tests.fakevendor import FAILURE_KINDS, FakeAlphaVantage
from tests.helpers import seed

KEY = "QUOTEKEY4321"
DAY = dt.date(2024, 3, 5)
PREVIOUS = dt.date(2024, 3, 4)
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


def bars(symbol_offset: float = 0.0) -> pd.DataFrame:
    days = [dt.date(2024, 3, 1), PREVIOUS, DAY]
    base = [100.0 + symbol_offset + i for i in range(len(days))]
    return pd.DataFrame(
        {
            "date": days,
            "open": base,
            "high": [b + 2.0 for b in base],
            "low": [b - 1.0 for b in base],
            "close": [b + 0.5 for b in base],
            "volume": [1_000_000 + i for i in range(len(days))],
        }
    )


@pytest.fixture
def vendor(fake_vendor: FakeAlphaVantage) -> FakeAlphaVantage:
    """SPY and QQQ served; it is 9:30 on DAY: the bars end at PREVIOUS."""
    fake_vendor.expected_api_key = KEY
    fake_vendor.set_bars("SPY", bars())
    fake_vendor.set_bars("QQQ", bars(50.0))
    fake_vendor.visible_through = PREVIOUS
    return fake_vendor


def quotes_for(fake: FakeAlphaVantage, **options) -> AlphaVantageQuotes:
    sleeps: list[float] = []
    options = {"delay": 0.0, "timeout": 2.0, "backoff": 0.0, "sleep": sleeps.append, **options}
    return AlphaVantageQuotes(KEY, fake.url, **options)


# -- the answer ---------------------------------------------------------------------------------


def test_quote_reads_every_field_and_sends_the_documented_query(vendor):
    quote = quotes_for(vendor).quote("SPY")
    assert quote == Quote(
        symbol="SPY",
        latest_trading_day=PREVIOUS,
        open=101.0,
        high=103.0,
        low=100.0,
        price=101.5,
        volume=1_000_001,
        previous_close=100.5,
    )
    assert vendor.requests == [
        {"function": "GLOBAL_QUOTE", "symbol": "SPY", "apikey": KEY, "datatype": "json"}
    ]


def test_the_fake_serves_the_vendors_quote_shape(vendor):
    answer = requests.get(
        vendor.url, params={"function": "GLOBAL_QUOTE", "symbol": "spy", "apikey": KEY}, timeout=2
    ).json()
    assert answer == {
        "Global Quote": {
            "01. symbol": "SPY",
            "02. open": "101.0000",
            "03. high": "103.0000",
            "04. low": "100.0000",
            "05. price": "101.5000",
            "06. volume": "1000001",
            "07. latest trading day": "2024-03-04",
            "08. previous close": "100.5000",
            "09. change": "1.0000",
            "10. change percent": "0.9950%",
        }
    }


# -- which day's open ---------------------------------------------------------------------------


def test_before_the_open_the_previous_sessions_quote_gives_no_open(vendor, caplog):
    caplog.set_level(logging.WARNING, logger="allocator.shell.marketdata.alphavantage")
    assert quotes_for(vendor).official_opens(["SPY", "QQQ"], DAY) == {}
    assert "SPY: Alpha Vantage quotes 2024-03-04, not 2024-03-05 (no open yet)" in caplog.text


def test_after_the_open_the_days_open_is_returned_only_for_symbols_quoted_that_day(vendor):
    vendor.live_open[("SPY", DAY)] = 512.1234
    assert quotes_for(vendor).official_opens(["SPY", "QQQ"], DAY) == {"SPY": 512.1234}
    vendor.live_open[("QQQ", DAY)] = 440.5
    assert quotes_for(vendor).official_opens(["SPY", "QQQ"], DAY) == {
        "SPY": 512.1234,
        "QQQ": 440.5,
    }


def test_once_the_days_bar_is_published_its_open_is_returned(vendor):
    vendor.visible_through = DAY
    assert quotes_for(vendor).official_opens(["SPY", "QQQ"], DAY) == {"SPY": 102.0, "QQQ": 152.0}


def test_a_quote_of_a_later_day_is_not_the_open_of_an_earlier_one(vendor):
    vendor.visible_through = DAY
    assert quotes_for(vendor).official_opens(["SPY"], PREVIOUS) == {}


# -- failures never fail the execution ----------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(FAILURE_KINDS))
def test_a_vendor_failure_leaves_that_symbol_out_and_the_others_in(vendor, kind, caplog):
    caplog.set_level(logging.WARNING, logger="allocator.shell.marketdata.alphavantage")
    vendor.live_open[("SPY", DAY)] = 512.0
    vendor.live_open[("QQQ", DAY)] = 440.0
    vendor.fail("SPY", kind, times=2)
    opens = quotes_for(vendor, timeout=0.3, max_retries=1).official_opens(["SPY", "QQQ"], DAY)
    assert opens == {"QQQ": 440.0}
    assert "SPY: " in caplog.text and "its orders of 2024-03-05 stay pending" in caplog.text
    assert len(vendor.calls("SPY")) == (2 if kind in TRANSIENT else 1)
    assert KEY not in caplog.text


def test_every_transient_kind_is_listed():
    from tests.test_alphavantage import TRANSIENT as DAILY_TRANSIENT

    assert set(DAILY_TRANSIENT) == TRANSIENT


@pytest.mark.parametrize("kind", ["http_503", "timeout", "information_burst"])
def test_a_transient_failure_is_retried_and_the_open_returned(vendor, kind):
    vendor.live_open[("SPY", DAY)] = 512.0
    vendor.fail("SPY", kind)
    assert quotes_for(vendor, timeout=0.3).official_opens(["SPY"], DAY) == {"SPY": 512.0}
    assert len(vendor.calls("SPY")) == 2


def test_an_unknown_symbol_gets_an_empty_quote_and_a_vendor_error(vendor):
    with pytest.raises(VendorError, match="NOPE: Alpha Vantage GLOBAL_QUOTE has no quote"):
        quotes_for(vendor).quote("NOPE")
    assert quotes_for(vendor).official_opens(["NOPE"], DAY) == {}


def test_a_wrong_key_is_not_echoed(vendor, caplog):
    caplog.set_level(logging.DEBUG)
    source = AlphaVantageQuotes("WRONGKEY99", vendor.url, delay=0)
    assert source.official_opens(["SPY"], DAY) == {}
    assert "apikey is invalid or missing" in caplog.text
    assert "WRONGKEY99" not in caplog.text and "WRONGKEY99" not in repr(source)


def test_the_daily_limit_text_quoting_the_key_is_redacted(vendor, caplog):
    caplog.set_level(logging.DEBUG)
    vendor.daily_limit = 0
    assert quotes_for(vendor).official_opens(["SPY"], DAY) == {}
    assert "daily request limit reached" in caplog.text
    assert "We have detected your API key as ***" in caplog.text
    assert KEY not in caplog.text


# -- parsing ------------------------------------------------------------------------------------

GOOD = {
    "01. symbol": "SPY",
    "02. open": "512.1300",
    "03. high": "514.0000",
    "04. low": "510.5000",
    "05. price": "513.2000",
    "06. volume": "7123456",
    "07. latest trading day": "2024-03-05",
    "08. previous close": "511.0000",
    "09. change": "2.2000",
    "10. change percent": "0.4305%",
}


def test_parse_global_quote_reads_the_documented_shape():
    quote = parse_global_quote("SPY", {"Global Quote": GOOD})
    assert (quote.latest_trading_day, quote.open, quote.volume) == (DAY, 512.13, 7123456)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"02. open": None}, "quote lacks '02. open'"),
        ({"07. latest trading day": "2024-13-01"}, "latest trading day '2024-13-01' is not a date"),
        ({"02. open": "n/a"}, "open 'n/a' on 2024-03-05 is not a number"),
        ({"02. open": "0.0000"}, "open '0.0000' on 2024-03-05 is not above zero"),
        ({"02. open": "1e-300"}, "open '1e-300' on 2024-03-05 is below the smallest price 0.0001"),
        ({"06. volume": "-5"}, "volume -5.0 on 2024-03-05 is negative"),
        ({"03. high": "500.0000"}, "high 500.0 is below low 510.5 on 2024-03-05"),
        ({"01. symbol": "QQQ"}, "answered for 'QQQ'"),
    ],
)
def test_parse_global_quote_refuses_a_bad_quote(change, message):
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(MalformedResponseError, match=message) as caught:
        parse_global_quote("SPY", {"Global Quote": body})
    assert str(caught.value).startswith("SPY: Alpha Vantage GLOBAL_QUOTE")


def test_parse_global_quote_without_the_object_lists_the_keys():
    with pytest.raises(MalformedResponseError, match=r"no 'Global Quote' object \(keys: none\)"):
        parse_global_quote("SPY", {})


# -- settings -----------------------------------------------------------------------------------


def _settings(tmp_path, **env) -> Settings:
    return get_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **env}, dotenv=False)


@pytest.mark.parametrize("value", [None, "", "none", " None "])
def test_no_quote_source_by_default(tmp_path, value):
    env = {} if value is None else {"ALLOCATOR_QUOTE_SOURCE": value}
    settings = _settings(tmp_path, **env)
    assert settings.quote_source is None
    assert make_quote_source(settings) is None


def test_alphavantage_quote_source_from_settings(tmp_path, fake_vendor):
    settings = _settings(
        tmp_path,
        ALLOCATOR_QUOTE_SOURCE="AlphaVantage",
        ALPHAVANTAGE_API_KEY=KEY,
        ALPHAVANTAGE_BASE_URL=fake_vendor.url,
        ALPHAVANTAGE_CALL_DELAY="0.25",
        ALPHAVANTAGE_TIMEOUT="4",
        ALPHAVANTAGE_MAX_RETRIES="1",
        ALPHAVANTAGE_RETRY_BACKOFF="0.5",
    )
    quotes = make_quote_source(settings)
    assert isinstance(quotes, AlphaVantageQuotes)
    assert quotes.name == "alphavantage"
    assert (quotes.base_url, quotes.delay, quotes.timeout) == (fake_vendor.url, 0.25, 4.0)
    assert (quotes.max_retries, quotes.backoff) == (1, 0.5)
    assert KEY not in repr(quotes)


def test_an_unknown_quote_source_names_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="ALLOCATOR_QUOTE_SOURCE='yahoo' is not a quote source"):
        _settings(tmp_path, ALLOCATOR_QUOTE_SOURCE="yahoo")
    settings = dataclasses.replace(_settings(tmp_path), quote_source="yahoo")
    with pytest.raises(SettingsError, match="ALLOCATOR_QUOTE_SOURCE='yahoo'"):
        make_quote_source(settings)


def test_the_alphavantage_quote_source_needs_a_key(tmp_path):
    with pytest.raises(SettingsError, match="ALPHAVANTAGE_API_KEY is not set"):
        make_quote_source(_settings(tmp_path, ALLOCATOR_QUOTE_SOURCE="alphavantage"))


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"ALPHAVANTAGE_MAX_RETRIES": "many"}, "ALPHAVANTAGE_MAX_RETRIES='many'"),
        ({"ALPHAVANTAGE_MAX_RETRIES": "-1"}, "ALPHAVANTAGE_MAX_RETRIES='-1' is negative"),
        ({"ALPHAVANTAGE_RETRY_BACKOFF": "x"}, "ALPHAVANTAGE_RETRY_BACKOFF='x'"),
    ],
)
def test_malformed_retry_settings_name_the_variable(tmp_path, env, needle):
    with pytest.raises(SettingsError, match=needle):
        _settings(tmp_path, **env)


# -- with the execute job, on both databases ----------------------------------------------------

TRADE_DAY = dt.date(2025, 3, 3)
BEFORE = dt.date(2025, 2, 28)
SYMBOLS = ("SPY", "QQQ", "DIA")


@pytest.fixture
def market(engine, fake_vendor):
    """Synthetic history stored through BEFORE and served by the fake; a BUY signal for
    TRADE_DAY; the fake does not quote TRADE_DAY until a test sets ``live_open``."""
    seed(engine, dt.date(2025, 2, 3), BEFORE)
    for symbol in SYMBOLS:
        fake_vendor.set_bars(
            symbol, SyntheticSource().fetch(symbol, dt.date(2025, 2, 3), TRADE_DAY)
        )
    fake_vendor.visible_through = BEFORE
    fake_vendor.expected_api_key = KEY
    with engine.begin() as conn:
        save_signal(
            conn,
            TRADE_DAY,
            action="BUY",
            confidence_score=0.5,
            allocations={"SPY": 600.0, "QQQ": 400.0},
            features_used={"action": "BUY", "sell_quantities": {}},
            config_id=1,
        )
    return fake_vendor


def _trades(engine) -> dict[str, tuple[str, float | None]]:
    with engine.connect() as conn:
        return {r.symbol: (r.status, r.price) for r in conn.execute(sa.select(trades))}


def test_execute_fills_at_the_live_opens(engine, market):
    market.live_open[("SPY", TRADE_DAY)] = 571.25
    market.live_open[("QQQ", TRADE_DAY)] = 502.5
    result = execute_trades(engine, TRADE_DAY, quotes=quotes_for(market))
    assert result.status == "filled"
    assert _trades(engine) == {"SPY": ("filled", 571.25), "QQQ": ("filled", 502.5)}


def test_execute_leaves_orders_pending_until_every_open_is_quoted(engine, market):
    market.live_open[("SPY", TRADE_DAY)] = 571.25  # QQQ has not traded yet
    market.fail("QQQ", "http_503", times=5)
    result = execute_trades(engine, TRADE_DAY, quotes=quotes_for(market, max_retries=1))
    assert result.status == "pending" and result.cash == 1000.0
    assert _trades(engine) == {"SPY": ("pending", None), "QQQ": ("pending", None)}
    fetched = fetch_bars(engine, TRADE_DAY, SyntheticSource(), list(SYMBOLS))
    assert fetched.settled == [(TRADE_DAY, 2)]
    opens = SyntheticSource().fetch("SPY", TRADE_DAY, TRADE_DAY)["open"].iloc[0]
    assert _trades(engine)["SPY"] == ("filled", opens)  # the bar's open, not the live quote's
