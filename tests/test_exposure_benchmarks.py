"""The exposure-matched benchmarks: a mix of SPY (or the assets in equal parts) and cash at the
strategy's own exposure, rebalanced at every open, with the same deposits.

Worked by hand on three sessions, checked against the rule written out as a loop, and placed
between its two ends: exposure 0 is the cash rule, exposure 1 is all-SPY (up to its rounding).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.backtest.benchmarks import (
    BENCHMARK_SYMBOL,
    EQUAL_WEIGHT_MIX,
    SPY_MIX,
    beats,
    benchmarks,
    buy_with_cash_rule,
    exposure_matched_metrics,
    exposure_matched_rule,
    keep_cash,
    mix_values,
    risky_leg,
)
from allocator.backtest.engine import MATCHED_EXPOSURE
from allocator.backtest.prices import PriceTable
from allocator.backtest.schedule import ConfigSchedule
from allocator.exceptions import BacktestError
from allocator.jobs.backtest import history_start, run_backtest
from allocator.portfolio import metrics
from allocator.strategy.config import preset
from tests.test_backtest import bars_for

DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]


def table(opens: dict[str, list[float]], closes: dict[str, list[float]], days=DAYS) -> PriceTable:
    return PriceTable(pd.DataFrame(opens, index=days), pd.DataFrame(closes, index=days))


def test_the_spy_mix_worked_by_hand():
    # x = 0.6, 1,000 deposited every session; SPY opens 100, 120, 100 and closes 105, 100, 105.
    # Day 1: W = 1000; 600 / 100 = 6 shares, cash 400; close 6 x 105 = 630, total 1030.
    # Day 2: W = 400 + 6 x 120 + 1000 = 2120; 1272 / 120 = 10.6 shares, cash 848;
    #        close 10.6 x 100 = 1060, total 1908.
    # Day 3: W = 848 + 10.6 x 100 + 1000 = 2908; 1744.8 / 100 = 17.448 shares, cash 1163.2;
    #        close 17.448 x 105 = 1832.04, total 2995.24.
    prices = table({"SPY": [100.0, 120.0, 100.0]}, {"SPY": [105.0, 100.0, 105.0]})
    leg = risky_leg(prices, DAYS, ["SPY"])
    frame = exposure_matched_rule(leg, [1000.0] * 3, 0.6)
    assert list(frame.columns) == ["date", "deposit", "cash", "positions_value", "total_value"]
    assert frame["date"].tolist() == DAYS and frame["deposit"].tolist() == [1000.0] * 3
    assert frame["cash"].tolist() == pytest.approx([400.0, 848.0, 1163.2], abs=1e-9)
    assert frame["positions_value"].tolist() == pytest.approx([630.0, 1060.0, 1832.04], abs=1e-9)
    assert frame["total_value"].tolist() == pytest.approx([1030.0, 1908.0, 2995.24], abs=1e-9)
    # flow-adjusted: 1030 / 1000, 1908 / (1030 + 1000), 2995.24 / (1908 + 1000)
    got = exposure_matched_metrics(leg, [1000.0] * 3, 0.6)
    assert got["twr"] == pytest.approx(1.03 * (1908 / 2030) * 1.03 - 1, abs=1e-12)
    assert got["max_drawdown"] == pytest.approx(1908 / 2030 - 1, abs=1e-12)
    assert got["exposure"] == pytest.approx((630 / 1030 + 1060 / 1908 + 1832.04 / 2995.24) / 3)


def test_the_equal_weight_mix_worked_by_hand():
    # x = 0.5 over A and B (a quarter of the value each); deposits 1000, 1000, 0.
    # Day 1: W = 1000; A 250 / 10 = 25, B 250 / 20 = 12.5, cash 500;
    #        close 25 x 12 + 12.5 x 20 = 550, total 1050.
    # Day 2: W = 500 + 25 x 12 + 12.5 x 16 + 1000 = 2000; A 500 / 12, B 500 / 16 = 31.25,
    #        cash 1000; close 500 / 12 x 12 + 31.25 x 16 = 1000, total 2000.
    # Day 3: W = 1000 + 500 / 12 x 15 + 31.25 x 16 = 2125; A 531.25 / 15, B 531.25 / 16,
    #        cash 1062.5; close 531.25 / 15 x 18 + 531.25 / 16 x 12 = 637.5 + 398.4375.
    prices = table(
        {"A": [10.0, 12.0, 15.0], "B": [20.0, 16.0, 16.0]},
        {"A": [12.0, 12.0, 18.0], "B": [20.0, 16.0, 12.0]},
    )
    cash, positions, total = mix_values(
        risky_leg(prices, DAYS, ["A", "B"]), [1000.0, 1000.0, 0.0], 0.5
    )
    assert cash.tolist() == pytest.approx([500.0, 1000.0, 1062.5], abs=1e-9)
    assert positions.tolist() == pytest.approx([550.0, 1000.0, 1035.9375], abs=1e-9)
    assert total.tolist() == pytest.approx([1050.0, 2000.0, 2098.4375], abs=1e-9)


def the_rule_as_a_loop(opens, closes, deposits, x):
    """The module doc's four steps, one session at a time, share by share."""
    n = opens.shape[1]
    shares, cash, rows = np.zeros(n), 0.0, []
    for t, deposit in enumerate(deposits):
        at_open = cash + float(shares @ opens[t]) + deposit
        shares = (x / n) * at_open / opens[t]
        cash = (1 - x) * at_open
        positions = float(shares @ closes[t])
        rows.append((cash, positions, cash + positions))
    return np.array(rows).reshape(len(deposits), 3)


@st.composite
def markets(draw, symbols=st.integers(1, 3)):
    """Prices that move up to 5 % a session, deposits in whole cents from $100, an exposure."""
    n, days = draw(symbols), draw(st.integers(1, 30))
    moves = st.floats(-0.05, 0.05, allow_nan=False)
    first = draw(st.lists(st.floats(20.0, 500.0), min_size=n, max_size=n))
    steps = draw(st.lists(st.lists(moves, min_size=2 * n, max_size=2 * n), min_size=days))
    steps = np.array(steps[:days] + [[0.0] * 2 * n] * (days - len(steps[:days])))
    opens, closes, price = np.zeros((days, n)), np.zeros((days, n)), np.array(first)
    for t in range(days):
        opens[t] = price * (1 + steps[t, :n])
        closes[t] = opens[t] * (1 + steps[t, n:])
        price = closes[t]
    cents = draw(st.lists(st.integers(10_000, 500_000), min_size=days, max_size=days))
    return opens, closes, [c / 100 for c in cents], draw(st.floats(0.0, 1.0))


def sessions_of(days: int) -> list[dt.date]:
    return list(pd.bdate_range("2020-01-02", periods=days).date)


def prices_of(opens, closes, symbols) -> PriceTable:
    days = sessions_of(len(opens))
    return PriceTable(
        pd.DataFrame(opens, index=days, columns=symbols),
        pd.DataFrame(closes, index=days, columns=symbols),
    )


@settings(max_examples=200, deadline=None)
@given(market=markets())
def test_the_closed_form_is_the_rule_and_cash_plus_positions_is_the_value(market):
    opens, closes, deposits, x = market
    symbols = ["SPY", "QQQ", "DIA"][: opens.shape[1]]
    leg = risky_leg(prices_of(opens, closes, symbols), sessions_of(len(opens)), symbols)
    cash, positions, total = mix_values(leg, deposits, x)
    assert (cash + positions == total).all()
    assert (cash >= 0).all() and (positions >= 0).all()
    expected = the_rule_as_a_loop(opens, closes, deposits, x)
    # a billionth of a dollar absolute: an exposure of 5e-324 leaves a subnormal position
    np.testing.assert_allclose(
        np.column_stack([cash, positions, total]), expected, rtol=1e-10, atol=1e-9
    )


@settings(max_examples=100, deadline=None)
@given(market=markets(symbols=st.just(1)))
def test_exposure_zero_is_the_cash_rule_and_one_is_all_spy(market):
    opens, closes, deposits, x = market
    days = sessions_of(len(opens))
    prices = prices_of(opens, closes, ["SPY"])
    leg = risky_leg(prices, days, ["SPY"])
    idle = exposure_matched_rule(leg, deposits, 0.0)
    cash = keep_cash(days, deposits)
    assert idle["cash"].tolist() == cash["cash"].tolist()
    assert idle["total_value"].tolist() == cash["total_value"].tolist()
    assert (idle["positions_value"] == 0).all()
    # all-SPY keeps less than one share step and a cent in cash: the returns barely differ
    full = exposure_matched_rule(leg, deposits, 1.0)
    spy = buy_with_cash_rule(prices, days, deposits, ["SPY"])
    ours, theirs = (
        metrics.daily_returns_flow_adjusted(f["total_value"], f["deposit"]) for f in (full, spy)
    )
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=0, atol=1e-4)
    assert (full["cash"] == 0).all()
    # in between, the mix's own exposure at the close is x moved by the day's open-to-close only
    mixed = metrics.summary(exposure_matched_rule(leg, deposits, x))["exposure"]
    assert mixed == pytest.approx(x, abs=0.03)


@settings(max_examples=100, deadline=None)
@given(market=markets())
def test_the_cheap_metrics_equal_the_summary_of_the_frame_bit_for_bit(market):
    opens, closes, deposits, x = market
    symbols = ["SPY", "QQQ", "DIA"][: opens.shape[1]]
    leg = risky_leg(prices_of(opens, closes, symbols), sessions_of(len(opens)), symbols)
    summary = metrics.summary(exposure_matched_rule(leg, deposits, x))
    for key, value in exposure_matched_metrics(leg, np.array(deposits), x).items():
        assert value == summary[key] or (math.isnan(value) and math.isnan(summary[key])), key


def test_bad_inputs_are_named():
    prices = table({"SPY": [100.0, math.nan, 100.0]}, {"SPY": [105.0, 100.0, 105.0]})
    with pytest.raises(BacktestError, match="SPY: no positive open and close on 2024-01-03"):
        risky_leg(prices, DAYS, ["SPY"])
    with pytest.raises(BacktestError, match="QQQ: no positive open and close on 2024-01-02"):
        risky_leg(prices, DAYS, ["QQQ"])
    leg = risky_leg(table({"SPY": [1.0] * 3}, {"SPY": [1.0] * 3}), DAYS, ["SPY"])
    with pytest.raises(ValueError, match="exposure must be within 0..1"):
        mix_values(leg, [1.0] * 3, 1.2)
    with pytest.raises(ValueError, match=r"one amount per session \(3\), got 2"):
        mix_values(leg, [1.0] * 2, 0.5)


def test_beating_means_a_higher_sharpe_and_a_shallower_drawdown():
    mix = {"sharpe": 0.68, "max_drawdown": -0.216}
    assert beats({"sharpe": 0.70, "max_drawdown": -0.19}, mix)
    assert not beats({"sharpe": 0.66, "max_drawdown": -0.19}, mix)  # the default preset, 2015-24
    assert not beats({"sharpe": 0.70, "max_drawdown": -0.30}, mix)
    assert not beats({"sharpe": math.nan, "max_drawdown": -0.1}, mix)


def test_the_backtest_compares_with_the_mixes_at_its_own_exposure():
    start, end = dt.date(2024, 3, 1), dt.date(2024, 6, 28)
    schedule = ConfigSchedule.constant(preset("default"))
    bars = bars_for(history_start(start, schedule), end)
    result = run_backtest(bars, start, end, schedule)
    x = result.metrics["exposure"]
    assert list(result.comparison.index) == [
        "strategy",
        "all SPY",
        "equal weight",
        "cash",
        SPY_MIX,
        EQUAL_WEIGHT_MIX,
    ]
    matched = result.comparison[MATCHED_EXPOSURE]
    assert matched[SPY_MIX] == matched[EQUAL_WEIGHT_MIX] == x and matched.isna().sum() == 4
    deposits = result.daily["deposit"].tolist()
    prices = PriceTable.from_bars(bars)
    days = result.daily["date"].tolist()
    leg = risky_leg(prices, days, [BENCHMARK_SYMBOL])
    pd.testing.assert_frame_equal(
        result.benchmarks[SPY_MIX], exposure_matched_rule(leg, deposits, x)
    )
    spy_mix = result.comparison.loc[SPY_MIX]
    cheap = exposure_matched_metrics(leg, deposits, x)
    assert (spy_mix["sharpe"], spy_mix["max_drawdown"], spy_mix["twr"]) == (
        cheap["sharpe"],
        cheap["max_drawdown"],
        cheap["twr"],
    )
    assert spy_mix["exposure"] == pytest.approx(x, abs=0.005)
    # the other benchmarks are the same as without the mixes
    plain = benchmarks(prices, days, deposits, list(preset("default").assets))
    for name, frame in plain.items():
        pd.testing.assert_frame_equal(result.benchmarks[name], frame, check_exact=True)
