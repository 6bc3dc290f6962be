"""Capital deployment: idle cash in a BUY's budget, one sell per bearish spell, the presets.

The ``seed`` preset must keep deciding exactly as the design document's literal rules did before
these parameters existed: its figures on a fixed synthetic history are pinned below (computed
with the code before the change), and a migrated database re-decides its stored signals.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.backtest.schedule import ConfigSchedule
from allocator.jobs.backtest import history_start, run_backtest, run_backtest_job
from allocator.money.quantities import floor_cents, to_cents
from allocator.portfolio.book import Book
from allocator.portfolio.session import StrategyState, decide_session
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.settings import get_settings
from allocator.strategy.config import TradingConfig, preset
from allocator.strategy.decision import BUY, HOLD, SELL, decide
from allocator.strategy.market_state import AssetState, MarketState
from allocator.strategy.regime import BEARISH, BULLISH, NEUTRAL

AS_OF = dt.date(2024, 3, 1)
SEED = preset("seed")
DEFAULT = preset("default")


def asset(score: float) -> AssetState:
    """An asset whose composite score is ``score`` under weights summing to 1 (no bonus)."""
    return AssetState(100.0, 0.01, 0.02, 0.03, 0.01, 99.0, 98.0, 0.01, 0.02, score, score, False)


def state(regime: float, risk: float = 30.0) -> MarketState:
    assets = {"SPY": asset(0.6), "QQQ": asset(0.5), "DIA": asset(0.4)}
    return MarketState(AS_OF, 252, regime, risk, 0.3, 0.3, assets)


# --- the seed preset reproduces the code before the change ---------------------------------


def synthetic_bars(start: dt.date, end: dt.date, config: TradingConfig) -> pd.DataFrame:
    first = history_start(start, ConfigSchedule.constant(config))
    source = SyntheticSource()
    return pd.concat(
        [source.fetch(s, first, end).assign(symbol=s) for s in ("SPY", "QQQ", "DIA")],
        ignore_index=True,
    )


def test_the_seed_preset_reproduces_the_figures_before_the_change():
    start, end = dt.date(2022, 1, 3), dt.date(2024, 9, 17)
    result = run_backtest(
        synthetic_bars(start, end, SEED), start, end, ConfigSchedule.constant(SEED)
    )
    # pinned with the code before cash_deploy_rate and sell_trigger existed
    assert len(result.trades) == 1452
    assert result.metrics["final_value"] == 675606.0010532809
    assert result.metrics["twr"] == -0.02255856857969074
    assert result.metrics["exposure"] == 0.02050523111528086


def test_the_default_preset_invests_the_capital():
    start, end = dt.date(2022, 1, 3), dt.date(2024, 9, 17)
    bars = synthetic_bars(start, end, DEFAULT)
    seed = run_backtest(bars, start, end, ConfigSchedule.constant(SEED), with_benchmarks=False)
    default = run_backtest(bars, start, end, ConfigSchedule.constant(DEFAULT))
    # the synthetic market crashes often: 35 % invested here, against 2 % for the literal rules
    assert seed.metrics["exposure"] < 0.05
    assert default.metrics["exposure"] > 10 * seed.metrics["exposure"]
    assert (default.exposure()["exposure"] <= 1.0).all()


# --- budget identity ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    idle=st.floats(0.0, 1e7, allow_nan=False),
    rate=st.floats(0.0, 1.0),
    capital=st.floats(1.0, 1e5),
    regime=st.floats(-0.29, 1.0),
    risk=st.floats(0.0, 100.0),
)
def test_buy_allocations_sum_to_the_capital_share_plus_the_idle_cash_share(
    idle, rate, capital, regime, risk
):
    config = DEFAULT.with_changes(cash_deploy_rate=rate, daily_capital=capital)
    d = decide(state(regime, risk), config, idle_cash=idle)
    if d.action != BUY:
        assert d.action == HOLD and regime < 0
        return
    expected = to_cents(capital * d.allocation_pct) + floor_cents(rate * idle)
    assert round(sum(d.allocations.values()) * 100) == expected
    # the idle part never exceeds the idle cash: the budget is covered by cash + deposit
    assert sum(d.allocations.values()) <= capital * d.allocation_pct + 0.005 + idle
    assert d.features_used()["idle_cash"] == idle
    assert d.features_used()["cash_deploy_rate"] == rate


def test_idle_cash_is_added_by_rank_and_named_in_the_reason():
    config = DEFAULT.with_changes(cash_deploy_rate=0.5)
    d = decide(state(0.5), config, idle_cash=2000.0)
    # bullish, risk 30 (low): 0.8 x 1,000 + 0.5 x 2,000 = 1,800, split by rank
    assert sum(d.allocations.values()) == 1800.0
    assert d.allocations["SPY"] > d.allocations["QQQ"] > d.allocations["DIA"]
    assert "+ 0.5 of $2,000.00 idle cash (cash_deploy_rate) = $1,800.00" in d.reason
    assert (
        decide(state(0.5), SEED, idle_cash=2000.0).allocations
        == decide(state(0.5), SEED).allocations
    )


def test_idle_cash_must_be_a_balance():
    with pytest.raises(ValueError, match="idle_cash is -1.0: must be a cash balance >= 0"):
        decide(state(0.5), DEFAULT, idle_cash=-1.0)


# --- one sell per bearish spell -----------------------------------------------------------------


def run_sequence(regimes: list[float], config: TradingConfig) -> list[str]:
    """The actions of consecutive sessions with these regimes, holding 10 SPY throughout."""
    session = StrategyState(book=Book(cash=0.0))
    actions = []
    for regime in regimes:
        holdings_book = Book(cash=session.book.cash)
        holdings_book.positions = {"SPY": _position(10.0)}
        d = decide_session(state(regime), config, holdings_book, session.previous_label)
        session.previous_label = d.regime_label
        actions.append(d.action)
    return actions


def _position(quantity: float):
    from allocator.portfolio.book import Position

    return Position("SPY", quantity, 100.0)


SEQUENCE = [0.5, -0.5, -0.6, -0.4, 0.1, -0.5, -0.7, 0.5, -0.35]
LABELS = [BULLISH, BEARISH, BEARISH, BEARISH, NEUTRAL, BEARISH, BEARISH, BULLISH, BEARISH]


def test_spell_start_sells_on_the_first_bearish_session_of_each_spell_only():
    actions = run_sequence(SEQUENCE, DEFAULT)
    assert actions == [BUY, SELL, HOLD, HOLD, BUY, SELL, HOLD, BUY, SELL]


def test_every_session_sells_on_every_bearish_session():
    actions = run_sequence(SEQUENCE, DEFAULT.with_changes(sell_trigger="every_session"))
    assert actions == [BUY, SELL, SELL, SELL, BUY, SELL, SELL, BUY, SELL]


@given(st.lists(st.sampled_from([0.5, 0.1, -0.1, -0.5, -0.9]), min_size=1, max_size=40))
def test_spell_start_sells_exactly_where_a_bearish_spell_begins(regimes):
    actions = run_sequence(regimes, DEFAULT)
    for i, regime in enumerate(regimes):
        bearish = regime < DEFAULT.regime_bearish_threshold
        began = bearish and (i == 0 or regimes[i - 1] >= DEFAULT.regime_bearish_threshold)
        assert (actions[i] == SELL) == began


def test_the_reason_says_which_sell_rule_applied():
    holdings = {"SPY": 10.0}
    first = decide(state(-0.5), DEFAULT, holdings, previous_label=NEUTRAL)
    later = decide(state(-0.5), DEFAULT, holdings, previous_label=BEARISH)
    literal = decide(state(-0.5), SEED, holdings, previous_label=BEARISH)
    assert first.action == SELL and "first session of a bearish spell" in first.reason
    assert later.action == HOLD and "sell_trigger spell_start" in later.reason
    assert literal.action == SELL and "sell_trigger every_session" in literal.reason
    assert later.features_used()["sell_trigger"] == "spell_start"


# --- stored versions keep deciding as before -------------------------------------------------


def test_a_migrated_database_re_decides_its_stored_signals_identically(database_url, monkeypatch):
    """Signals stored under revision 0001's config (no deployment columns) are re-decided
    identically after the migration gives that version its old behaviour's values."""
    import sqlalchemy as sa

    from allocator.jobs.execute import execute_trades
    from allocator.jobs.fetch import fetch_bars
    from allocator.jobs.signal import generate_signal
    from allocator.shell.persistence import make_engine
    from allocator.shell.persistence.configs import active_version
    from allocator.shell.persistence.migrate import downgrade, upgrade
    from allocator.shell.persistence.signals import signals_between
    from tests.helpers import seed

    start, end = dt.date(2024, 6, 24), dt.date(2024, 9, 17)
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.begin() as conn:
        from allocator.shell.persistence.configs import seed_default_config

        seed_default_config(conn, SEED, preset_name="seed")
    seed(engine, dt.date(2023, 5, 1), calendar.previous_session(start))
    sessions = calendar.sessions_between(start, end)
    for day in sessions:
        generate_signal(engine, day)
        execute_trades(engine, day)
        fetch_bars(engine, day, SyntheticSource())
    # back to revision 0001: the version row loses the two columns, as stored before them
    downgrade(engine, "0001")
    columns = {c["name"] for c in sa.inspect(engine).get_columns("trading_config")}
    assert "cash_deploy_rate" not in columns and "sell_trigger" not in columns
    upgrade(engine)
    with engine.connect() as conn:
        assert active_version(conn).config == SEED
        stored = signals_between(conn, start, end)
    monkeypatch.setenv("DATABASE_URL", database_url)
    replay = run_backtest_job(start, end, config_source="history", settings=get_settings())
    assert [s.action for s in stored] == replay.signals["action"].tolist()
    replayed = replay.trades.groupby("date")
    assert {"BUY", "SELL"} <= {s.action for s in stored}
    for signal in stored:
        if signal.action == BUY:
            fills = replayed.get_group(signal.trade_date)
            assert set(fills["symbol"]) == set(signal.allocations)
    engine.dispose()
