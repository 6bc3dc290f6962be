"""The signal job on a real database: storage, re-runs, stale data, point-in-time, config dates."""

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator.exceptions import MissingBarsError
from allocator.jobs.execute import execute_trades
from allocator.jobs.signal import generate_signal
from allocator.shell import calendar
from allocator.shell.persistence.configs import open_version
from allocator.shell.persistence.schema import daily_signals, price_history
from allocator.shell.persistence.signals import SignalError
from allocator.strategy.config import TradingConfig
from tests.helpers import seed

D = dt.date(2024, 7, 1)
HISTORY = dt.date(2023, 5, 1)


@pytest.fixture
def ready(engine):
    seed(engine, HISTORY, dt.date(2024, 7, 31))
    return engine


def _without_bars_from(engine, day):
    with engine.begin() as conn:
        conn.execute(price_history.delete().where(price_history.c.date >= day))


def test_signal_is_stored_once_in_the_seed_shape(ready):
    _without_bars_from(ready, D)
    result = generate_signal(ready, D)
    assert result.status == "created"
    s = result.signal
    assert s.model_type == "regime_based" and s.trade_date == D and s.config_id == 1
    fu = s.features_used
    assert {"regime", "risk", "action", "allocation_pct", "assets"} <= set(fu)
    assert set(fu["assets"]) == {"SPY", "QQQ", "DIA"}
    for asset in fu["assets"].values():
        assert {"returns_5d", "returns_20d", "returns_60d", "volatility", "score"} <= set(asset)
    assert fu["as_of"] == "2024-06-28"  # the close before the trade date
    if s.action == "BUY":
        budget = round(1000.0 * fu["allocation_pct"], 2)
        assert round(sum(s.allocations.values()), 2) == budget
    with ready.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(daily_signals)).scalar_one() == 1


def test_rerun_keeps_the_signal_unless_replaced(ready):
    first = generate_signal(ready, D)
    again = generate_signal(ready, D)
    assert again.status == "unchanged" and again.signal == first.signal
    replaced = generate_signal(ready, D, replace=True)
    assert replaced.status == "replaced" and replaced.signal.id == first.signal.id
    if first.signal.action == "BUY":
        execute_trades(ready, D)
        with pytest.raises(SignalError, match="cannot be replaced"):
            generate_signal(ready, D, replace=True)


def test_missing_previous_bar_fails_naming_it(ready):
    with ready.begin() as conn:
        conn.execute(
            price_history.delete()
            .where(price_history.c.date == dt.date(2024, 6, 28))
            .where(price_history.c.symbol == "QQQ")
        )
    with pytest.raises(MissingBarsError, match=r"QQQ \(last bar 2024-06-27\)") as err:
        generate_signal(ready, D)
    assert err.value.missing == {"QQQ": ["2024-06-28"]}
    assert "allocator run fetch --date 2024-06-28" in str(err.value)


def _signal_fingerprint(result):
    s = result.signal
    return s.action, s.allocations, s.features_used, s.confidence_score


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    factor=st.floats(0.5, 1.5).filter(lambda f: abs(f - 1) > 0.01),
    first_changed=st.integers(0, 15),
    symbol=st.sampled_from(["SPY", "QQQ", "DIA"]),
)
def test_bars_dated_on_or_after_the_trade_date_change_nothing(ready, factor, first_changed, symbol):
    with ready.begin() as conn:
        conn.execute(daily_signals.delete())
    before = _signal_fingerprint(generate_signal(ready, D))
    changed_from = calendar.sessions_between(D, dt.date(2024, 7, 31))[first_changed]
    with ready.begin() as conn:
        conn.execute(
            price_history.update()
            .where(price_history.c.symbol == symbol)
            .where(price_history.c.date >= changed_from)
            .values(
                open=price_history.c.open * factor,
                high=price_history.c.high * factor,
                low=price_history.c.low * factor,
                close=price_history.c.close * factor,
            )
        )
    after = _signal_fingerprint(generate_signal(ready, D, replace=True))
    assert after == before


def test_a_config_version_starting_after_the_trade_date_does_not_apply(ready):
    before = _signal_fingerprint(generate_signal(ready, D))
    different = TradingConfig().with_changes(
        regime_bullish_threshold=0.05, regime_bearish_threshold=-0.05, daily_capital=5000.0
    )
    with ready.begin() as conn:
        open_version(conn, different, calendar.next_session(D), created_by="test")
    assert _signal_fingerprint(generate_signal(ready, D, replace=True)) == before
    later = generate_signal(ready, calendar.next_session(D))
    assert later.signal.config_id == 2  # the new version applies from its start


def test_bearish_day_sells_the_holdings(ready):
    # August to October 2024 holds runs of bearish sessions in the synthetic market
    seed(ready, dt.date(2024, 8, 1), dt.date(2024, 10, 31))
    from allocator.shell.persistence.prices import load_bars, wide
    from allocator.strategy.calibration import signal_series

    with ready.connect() as conn:
        closes = wide(load_bars(conn, ["SPY", "QQQ", "DIA"]), "close", ["SPY", "QQQ", "DIA"])
    series = signal_series(closes, TradingConfig(), dt.date(2024, 8, 1), dt.date(2024, 10, 31))
    bearish = [d for d, label in series["regime_label"].items() if label == "bearish"]
    day = pd.Timestamp(bearish[0]).date()
    buy_day = calendar.previous_session(day)
    from allocator.shell.persistence.signals import save_signal

    with ready.begin() as conn:  # something must be held: a BUY the day before
        save_signal(
            conn,
            buy_day,
            action="BUY",
            confidence_score=1.0,
            allocations={"SPY": 500.0, "QQQ": 300.0},
            features_used={},
            config_id=1,
        )
    held = execute_trades(ready, buy_day).positions
    result = generate_signal(ready, day)
    assert result.signal.action == "SELL"
    sells = result.signal.sell_quantities
    assert set(sells) == {"SPY", "QQQ"}
    for symbol, quantity in sells.items():
        assert 0.3 * held[symbol] - 1e-4 <= quantity <= 0.7 * held[symbol] + 1e-4
    executed = execute_trades(ready, day)
    assert dict(zip(executed.trades["symbol"], executed.trades["quantity"], strict=True)) == sells
