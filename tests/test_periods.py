"""The tearsheet's metrics: drawdown episodes, calendar returns, rolling ratios, trade statistics.

Every expected number is worked by hand in the test (or is the whole-period metric of
:mod:`allocator.portfolio.metrics` over the same window).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from allocator.portfolio import metrics, periods
from allocator.portfolio.trade_stats import (
    average_holding_days,
    profit_factor,
    trade_statistics,
)

DAYS = [dt.date(2024, 1, 29) + dt.timedelta(days=i) for i in range(8)]


def series(values, days=DAYS) -> pd.Series:
    return pd.Series(values, index=days[: len(values)], dtype="float64")


def test_drawdown_episodes_by_hand():
    # values 1.25, 1.0, 1.25, 1.0, 1.25, 1.5625 (exact in binary): two 20 % falls
    returns = series([0.25, -0.2, 0.25, -0.2, 0.25, 0.25])
    table = periods.drawdown_episodes(returns)
    assert list(table.columns) == periods.EPISODE_COLUMNS
    assert len(table) == 2
    first, second = table.iloc[0], table.iloc[1]
    # both fall 20 % from their peak; the earlier is listed first on a tie
    assert first["depth"] == pytest.approx(-0.2) and second["depth"] == pytest.approx(-0.2)
    assert (first["peak"], first["trough"], first["recovery"]) == (DAYS[0], DAYS[1], DAYS[2])
    assert (first["sessions"], first["days"]) == (2, 2.0)
    assert (second["peak"], second["trough"], second["recovery"]) == (DAYS[2], DAYS[3], DAYS[4])


def test_the_worst_episode_is_the_max_drawdown_period_and_an_open_one_has_no_recovery():
    rng = np.random.default_rng(3)
    days = pd.bdate_range("2020-01-01", periods=400).date
    returns = pd.Series(rng.normal(0.0003, 0.012, 400), index=days)
    worst = periods.drawdown_episodes(returns, worst=5)
    period = metrics.max_drawdown_period(returns)
    assert len(worst) == 5 and worst["depth"].is_monotonic_increasing
    assert (worst.iloc[0]["peak"], worst.iloc[0]["trough"]) == (period.peak, period.trough)
    assert worst.iloc[0]["depth"] == pytest.approx(period.depth)
    falling = series([0.01, -0.05, -0.05])
    (open_episode,) = periods.drawdown_episodes(falling).itertuples()
    assert open_episode.recovery is None and open_episode.sessions == 2  # peak to the last
    assert periods.drawdown_episodes(series([0.01, 0.02])).empty


def test_calendar_returns_compound_each_month_and_year():
    days = [dt.date(2024, 1, 30), dt.date(2024, 1, 31), dt.date(2024, 2, 1), dt.date(2025, 1, 2)]
    returns = pd.Series([0.10, 0.10, -0.50, 0.20], index=days)
    months = periods.calendar_returns(returns, "month")
    assert months.loc[(2024, 1)] == pytest.approx(0.21)  # 1.1 x 1.1 - 1
    assert months.loc[(2024, 2)] == pytest.approx(-0.5)
    years = periods.calendar_returns(returns, "year")
    assert years.loc[2024] == pytest.approx(1.21 * 0.5 - 1)  # -39.5 %
    table = periods.monthly_table(returns)
    assert list(table.columns) == [*range(1, 13), "year"]
    assert math.isnan(table.loc[2024, 3]) and table.loc[2025, "year"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="frequency"):
        periods.calendar_returns(returns, "week")


def test_rolling_ratios_equal_the_whole_period_metrics_over_each_window():
    rng = np.random.default_rng(11)
    returns = pd.Series(
        rng.normal(0.0004, 0.01, 300), index=pd.bdate_range("2021-01-01", periods=300)
    )
    sharpe = periods.rolling_sharpe(returns, window=252)
    vol = periods.rolling_volatility(returns, window=252)
    assert sharpe.iloc[:251].isna().all() and vol.iloc[:251].isna().all()
    for end in (252, 280, 300):
        window = returns.iloc[end - 252 : end]
        assert sharpe.iloc[end - 1] == pytest.approx(metrics.sharpe_ratio(window))
        assert vol.iloc[end - 1] == pytest.approx(metrics.annual_volatility(window))
    flat = pd.Series([0.001] * 5, index=pd.bdate_range("2021-01-01", periods=5))
    assert periods.rolling_sharpe(flat, window=3).iloc[2:].isna().all(), "no deviation, no ratio"
    with pytest.raises(ValueError, match="at least 2"):
        periods.rolling_sharpe(returns, window=1)


def fills(rows) -> pd.DataFrame:
    columns = ["date", "symbol", "action", "quantity", "price", "amount", "realized_pnl"]
    return pd.DataFrame(rows, columns=columns)


def test_trade_statistics_by_hand():
    day = dt.date(2024, 3, 1)
    trades = fills(
        [
            (day, "SPY", "BUY", 10.0, 100.0, 1000.0, np.nan),
            (day + dt.timedelta(days=10), "SPY", "BUY", 10.0, 110.0, 1100.0, np.nan),
            # sells 15: the 10 of day 0 held 20 days, 5 of day 10 held 10 days
            (day + dt.timedelta(days=20), "SPY", "SELL", 15.0, 120.0, 1800.0, 100.0),
            (day + dt.timedelta(days=25), "QQQ", "BUY", 2.0, 50.0, 100.0, np.nan),
            (day + dt.timedelta(days=30), "QQQ", "SELL", 1.0, 25.0, 25.0, -50.0),
            (day + dt.timedelta(days=30), "SPY", "SELL", 5.0, 130.0, 650.0, 30.0),
        ]
    )
    stats = trade_statistics(trades)
    assert (stats["n_trades"], stats["n_buys"], stats["n_sells"]) == (6, 3, 3)
    assert stats["bought"] == 2200.0 and stats["sold"] == 2475.0
    assert stats["win_rate"] == pytest.approx(2 / 3)
    assert stats["profit_factor"] == pytest.approx(130 / 50)
    assert (stats["average_win"], stats["average_loss"]) == (65.0, -50.0)
    assert stats["realized_pnl"] == 80.0
    # share-weighted: 10 x 20 + 5 x 10 (first sell), 1 x 5 (QQQ), 5 x 20 (second SPY sell)
    assert stats["average_holding_days"] == pytest.approx((200 + 50 + 5 + 100) / 21)


def test_undefined_trade_statistics_are_nan():
    assert math.isnan(profit_factor(pd.Series([10.0, np.nan]))), "no losing trade"
    only_buys = fills([(dt.date(2024, 3, 1), "SPY", "BUY", 1.0, 10.0, 10.0, np.nan)])
    stats = trade_statistics(only_buys)
    assert math.isnan(stats["win_rate"]) and math.isnan(stats["average_holding_days"])
    assert math.isnan(average_holding_days(only_buys))
    assert trade_statistics(fills([]))["n_trades"] == 0
