"""The backtest on its own: config schedules, benchmarks, weights, history and clear errors.

Everything here runs in memory on the seeded synthetic market: no database.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from allocator.backtest.benchmarks import BENCHMARK_SYMBOL, buy_with_cash
from allocator.backtest.engine import backtest_sessions
from allocator.backtest.schedule import ConfigSchedule, ScheduledConfig
from allocator.exceptions import BacktestError, MissingBarsError
from allocator.jobs.backtest import history_start, run_backtest
from allocator.portfolio.book import Book
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.strategy.config import TradingConfig
from allocator.strategy.risk import required_history

SYMBOLS = ("SPY", "QQQ", "DIA")
START, END = dt.date(2024, 3, 1), dt.date(2024, 6, 28)
SWITCH = dt.date(2024, 5, 1)


def bars_for(start: dt.date, end: dt.date, symbols=SYMBOLS) -> pd.DataFrame:
    source = SyntheticSource()
    return pd.concat(
        [source.fetch(s, start, end).assign(symbol=s) for s in symbols], ignore_index=True
    )


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    first = history_start(START, ConfigSchedule.constant(TradingConfig()))
    return bars_for(first, END)


def test_history_start_is_the_first_bar_of_the_signal_window():
    schedule = ConfigSchedule.constant(TradingConfig())
    first = history_start(START, schedule)
    window = calendar.sessions_between(first, calendar.previous_session(START))
    assert len(window) == required_history(TradingConfig())
    # the longest window of any config that applies from the start decides
    longer = TradingConfig(lookback_days=300)
    mixed = ConfigSchedule(
        [ScheduledConfig(dt.date.min, TradingConfig()), ScheduledConfig(SWITCH, longer)], "mixed"
    )
    assert (
        history_start(START, mixed)
        == calendar.last_n_sessions(calendar.previous_session(START), required_history(longer))[0]
    )


def test_a_config_version_that_changes_mid_period_applies_from_its_start_date(bars):
    before, after = TradingConfig(), TradingConfig(daily_capital=2500.0, allocation_neutral=0.6)
    schedule = ConfigSchedule(
        [ScheduledConfig(dt.date.min, before, 1), ScheduledConfig(SWITCH, after, 2)], "two"
    )
    result = run_backtest(bars, START, END, schedule)
    signals = result.signals.set_index("date")
    daily = result.daily.set_index("date")
    assert set(signals.loc[: dt.date(2024, 4, 30), "config_version"]) == {1}
    assert set(signals.loc[SWITCH:, "config_version"]) == {2}
    assert set(daily.loc[: dt.date(2024, 4, 30), "deposit"]) == {1000.0}
    assert set(daily.loc[SWITCH:, "deposit"]) == {2500.0}
    assert result.final_config == after
    # each half equals a backtest of that config alone, as long as the book carries over: the
    # first half is exactly the first config's own run
    alone = run_backtest(bars, START, dt.date(2024, 4, 30), ConfigSchedule.constant(before))
    pd.testing.assert_frame_equal(
        alone.trades, result.trades[result.trades["date"] < SWITCH].reset_index(drop=True)
    )
    # and the neutral allocation of the new config drives the decisions after the switch
    neutral_buys = result.signals[
        (result.signals["date"] >= SWITCH)
        & (result.signals["action"] == "BUY")
        & (result.signals["regime"].abs() <= 0.3)
    ]
    assert not neutral_buys.empty and set(neutral_buys["allocation_pct"]) == {0.6}


def test_benchmarks_get_the_same_deposits_and_fill_at_the_open(bars):
    result = run_backtest(bars, START, END, ConfigSchedule.constant(TradingConfig()))
    sessions = calendar.sessions_between(START, END)
    assert set(result.benchmarks) == {"all SPY", "equal weight", "cash"}
    for name, daily in result.benchmarks.items():
        assert daily["date"].tolist() == sessions, name
        assert daily["deposit"].tolist() == result.daily["deposit"].tolist(), name
        assert np.allclose(daily["total_value"], daily["cash"] + daily["positions_value"])
    cash = result.benchmarks["cash"]
    assert cash["total_value"].tolist() == [1000.0 * (i + 1) for i in range(len(sessions))]
    spy = result.benchmarks["all SPY"]
    # every deposit is spent at the open down to less than one share step and a cent
    opens = bars[bars["symbol"] == BENCHMARK_SYMBOL].set_index("date")["open"]
    assert (spy["cash"] < opens.reindex(sessions).to_numpy() * 1e-4 + 0.01).all()
    # the first day: 1000.00 at SPY's open, rounded down to 4 decimals
    first_open = float(opens[sessions[0]])
    quantity = np.floor(1000.0 / first_open * 1e4) / 1e4
    assert spy["positions_value"].iloc[0] == pytest.approx(
        quantity * float(bars.set_index(["symbol", "date"]).loc[("SPY", sessions[0]), "close"])
    )
    equal = result.benchmarks["equal weight"]
    assert (equal["positions_value"] > 0).all()
    assert result.comparison.loc["cash", "twr"] == 0.0
    assert list(result.comparison.index) == ["strategy", "all SPY", "equal weight", "cash"]


def test_buy_with_cash_spends_whole_cents_in_equal_parts():
    orders = buy_with_cash(["SPY", "QQQ", "DIA"])(Book(cash=1000.0))
    assert [o.amount for o in orders] == [333.33, 333.33, 333.33]
    assert buy_with_cash(["SPY"])(Book(cash=0.004)) == []


def test_weights_sum_to_one_every_session(bars):
    result = run_backtest(bars, START, END, ConfigSchedule.constant(TradingConfig()))
    weights = result.weights
    assert list(weights.columns) == [*SYMBOLS, "cash"]
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    assert (weights >= 0).all().all()
    daily = result.daily.set_index("date")
    assert np.allclose(weights["cash"], daily["cash"] / daily["total_value"])


def test_the_pure_engine_takes_the_sessions_it_is_given(bars):
    sessions = calendar.sessions_between(START, END)
    schedule = ConfigSchedule.constant(TradingConfig())
    direct = backtest_sessions(bars, sessions, schedule, with_benchmarks=False)
    via_job = run_backtest(bars, START, END, schedule, with_benchmarks=False)
    pd.testing.assert_frame_equal(direct.daily, via_job.daily)
    seen: list[dt.date] = []
    backtest_sessions(bars, sessions[:5], schedule, with_benchmarks=False, on_session=seen.append)
    assert seen == sessions[:5]


def test_empty_history_gives_a_clear_error():
    schedule = ConfigSchedule.constant(TradingConfig())
    empty = pd.DataFrame(columns=["symbol", "date", "open", "close"])
    with pytest.raises(MissingBarsError, match="no bars to backtest on: backfill history first"):
        run_backtest(empty, START, END, schedule)
    with pytest.raises(BacktestError, match="no NYSE session between"):
        run_backtest(bars_for(START, END), dt.date(2024, 3, 2), dt.date(2024, 3, 3), schedule)
    with pytest.raises(BacktestError, match="no session to backtest"):
        backtest_sessions(bars_for(START, END), [], schedule)


def test_too_short_history_names_what_the_signal_needs():
    schedule = ConfigSchedule.constant(TradingConfig())
    short = bars_for(calendar.last_n_sessions(START, 100)[0], END)
    with pytest.raises(MissingBarsError, match=r"not enough history .* needs 252 closes per asset"):
        run_backtest(short, START, END, schedule)
    # history that covers the window only part of the way: the first full window is named
    partial = bars_for(calendar.last_n_sessions(START, 200)[0], END)
    with pytest.raises(BacktestError, match=r"not enough history before 2024-03-01: .* is 2024-"):
        run_backtest(partial, START, END, schedule)
    with pytest.raises(BacktestError, match="no bar before 2024-03-01"):
        run_backtest(bars_for(START, END), START, START, schedule)


def test_a_gap_inside_the_period_names_the_symbol_and_the_dates(bars):
    holed = bars[~((bars["symbol"] == "QQQ") & (bars["date"] == dt.date(2024, 4, 2)))]
    with pytest.raises(MissingBarsError, match="QQQ: 2024-04-02"):
        run_backtest(holed, START, END, ConfigSchedule.constant(TradingConfig()))


def test_an_empty_schedule_is_refused():
    with pytest.raises(BacktestError, match="the config schedule is empty: seed a config first"):
        ConfigSchedule([], "none")
    schedule = ConfigSchedule([ScheduledConfig(SWITCH, TradingConfig())], "late")
    with pytest.raises(BacktestError, match="no config applies on 2024-03-01"):
        schedule.at(START)
