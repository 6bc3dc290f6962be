"""The backtest on its own: config schedules, benchmarks, weights, history and clear errors.

Everything here runs in memory on the seeded synthetic market: no database.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest

from allocator.backtest.benchmarks import (
    BENCHMARK_SYMBOL,
    buy_with_cash,
    buy_with_cash_rule,
    keep_cash,
    simulate_rule,
)
from allocator.backtest.engine import backtest_sessions
from allocator.backtest.prices import PriceTable
from allocator.backtest.schedule import ConfigSchedule, ScheduledConfig
from allocator.exceptions import BacktestError, MissingBarsError
from allocator.jobs.backtest import history_start, run_backtest
from allocator.money.quantities import (
    MAX_GRID_STEPS,
    floor_cents,
    fraction_of_holding,
    on_share_grid,
    share_steps_for_dollars,
    shares_for_dollars,
    shares_for_dollars_each,
    steps_of,
    to_cents,
)
from allocator.portfolio.book import Book, Position
from allocator.portfolio.fills import (
    ExecutionError,
    Order,
    fill_orders_at_open,
    fill_orders_in_place,
)
from allocator.portfolio.session import decide_session, orders_for, value_at_close
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.strategy.config import TradingConfig, preset
from allocator.strategy.features import trailing_corr
from allocator.strategy.market_state import market_state_table, market_states
from allocator.strategy.risk import CORRELATION_BLOCK, mean_pairwise_correlation, required_history

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
    mixes = ["SPY + cash at exposure", "equal weight + cash at exposure"]
    assert list(result.benchmarks) == ["all SPY", "equal weight", "cash", *mixes]
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
    assert list(result.comparison.index) == ["strategy", "all SPY", "equal weight", "cash", *mixes]


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


def test_the_first_date_with_a_full_window_named_by_the_error_is_one_that_works():
    """Bars from 2023-01-03, a start on 2024-01-03: the named date starts, the session before
    it does not (it once named the last close of the first full window, a session early)."""
    schedule = ConfigSchedule.constant(TradingConfig())
    end = dt.date(2024, 2, 29)
    bars = bars_for(dt.date(2023, 1, 3), end)
    with pytest.raises(BacktestError, match="not enough history before 2024-01-03") as caught:
        run_backtest(bars, dt.date(2024, 1, 3), end, schedule, with_benchmarks=False)
    named = dt.date.fromisoformat(str(caught.value).split("full window is ")[1][:10])
    assert named > dt.date(2024, 1, 3)
    first = run_backtest(bars, named, end, schedule, with_benchmarks=False)
    assert first.daily["date"].iloc[0] == named
    earlier = calendar.previous_session(named)
    with pytest.raises(BacktestError, match=f"full window is {named}"):
        run_backtest(bars, earlier, end, schedule, with_benchmarks=False)


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


# --- speed without a changed number (issue 12): each fast path against its plain definition ---

WIDE_SYMBOLS = ("SPY", *(f"W{i:02d}" for i in range(1, 20)))
LONG_START, LONG_END = dt.date(2021, 6, 1), dt.date(2023, 12, 29)


def _decimal_floor(value: Decimal, exponent: str) -> Decimal:
    return value.quantize(Decimal(exponent), rounding=ROUND_FLOOR)


def _d(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _awkward_values(rng: np.random.Generator, n: int) -> list[float]:
    """Dollars and prices as they come: cents, long floats, and exact grid multiples."""
    cents = np.round(rng.uniform(0.01, 5000, n), 2)
    floats = rng.uniform(0.0001, 1e5, n)
    exact = rng.integers(1, 10**7, n) / 10.0 ** rng.integers(0, 6, n)
    return [*cents.tolist(), *floats.tolist(), *exact.tolist()]


def test_the_fast_roundings_equal_the_decimal_definition():
    rng = np.random.default_rng(12)
    amounts = _awkward_values(rng, 4000)
    prices = _awkward_values(rng, 4000)
    rng.shuffle(prices)
    for amount, price in zip(amounts, prices, strict=True):
        exact = float(_decimal_floor(_d(amount) / _d(price), "0.0001"))
        assert shares_for_dollars(amount, price) == exact, (amount, price)
        # a quotient that lands on the grid exactly (the float shortcut must step aside)
        on_grid = round(price * 37 / 1e4, 10)
        assert shares_for_dollars(on_grid, price) == float(
            _decimal_floor(_d(on_grid) / _d(price), "0.0001")
        )
    for held, fraction in zip(amounts, rng.uniform(0, 1, len(amounts)), strict=True):
        for f in (float(fraction), 0.3, 0.7, 0.5):
            exact = min(float(_decimal_floor(_d(held) * _d(f), "0.0001")), held)
            assert fraction_of_holding(held, f) == exact, (held, f)
    ties = [k / 1000 + 0.005 for k in range(0, 10**6, 997)] + [800.005, 1.005, 2.675, 0.07]
    for dollars in [*amounts, *ties, *(a * 0.03 for a in amounts)]:
        cents = _d(dollars) * 100
        assert to_cents(dollars) == int(cents.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert floor_cents(dollars) == int(cents.quantize(Decimal(1), rounding=ROUND_FLOOR))


def test_share_steps_of_many_prices_equal_one_by_one():
    rng = np.random.default_rng(7)
    prices = np.array(_awkward_values(rng, 300))
    for dollars in (50.0, 333.33, 0.01, 2500.37, 25.0):
        one_by_one = [shares_for_dollars(dollars, p) for p in prices.tolist()]
        assert shares_for_dollars_each(dollars, prices.tolist()) == one_by_one
        steps = share_steps_for_dollars(dollars, prices)
        if steps is not None:
            assert (steps / 1e4).tolist() == one_by_one
            assert [steps_of(q) for q in one_by_one] == steps.tolist()
    # a price that divides the dollars onto the grid exactly needs the decimal path
    assert share_steps_for_dollars(50.0, np.array([25.0, 33.0])) is None


def test_grid_quantities_add_up_in_whole_steps():
    rng = np.random.default_rng(3)
    held = 0.0
    total = 0
    for k in rng.integers(1, 10**7, 3000).tolist():
        quantity = k / 1e4
        held = quantity if total == 0 else on_share_grid(held + quantity)
        total += k
        assert held == total / 1e4
    assert total < MAX_GRID_STEPS


def _deposits(n: int) -> list[float]:
    rng = np.random.default_rng(n)
    out = np.round(rng.uniform(0, 3000, n), 2).tolist()
    out[1] = 0.01  # a day whose cash buys nothing (less than a cent per symbol)
    out[2] = 1000.0
    return out


@pytest.fixture(scope="module")
def wide_prices() -> PriceTable:
    bars = bars_for(LONG_START, LONG_END, WIDE_SYMBOLS)
    # opens that divide a day's dollars onto the share grid: the array path must step aside
    exact = (bars["date"] == dt.date(2021, 6, 4)) & (bars["symbol"] == "W03")
    return PriceTable.from_bars(bars.assign(open=bars["open"].mask(exact, 25.0)))


@pytest.mark.parametrize("symbols", [["SPY"], ["SPY", "W01", "W02"], list(WIDE_SYMBOLS)])
def test_the_array_benchmarks_equal_the_order_by_order_rule(wide_prices, symbols):
    sessions = calendar.sessions_between(LONG_START, LONG_END)
    deposits = _deposits(len(sessions))
    fast = buy_with_cash_rule(wide_prices, sessions, deposits, symbols)
    plain = simulate_rule(wide_prices, sessions, deposits, buy_with_cash(symbols), symbols)
    pd.testing.assert_frame_equal(fast, plain, check_exact=True)
    assert [type(v) for v in fast["positions_value"]] == [type(v) for v in plain["positions_value"]]
    assert (plain["positions_value"] > 0).sum() > len(sessions) - 5  # it did buy
    cash = keep_cash(sessions, deposits)
    pd.testing.assert_frame_equal(
        cash, simulate_rule(wide_prices, sessions, deposits, lambda book: [], symbols)
    )
    assert cash["positions_value"].dtype == np.int64


def test_a_missing_open_still_names_the_symbol_in_the_benchmarks(wide_prices):
    sessions = calendar.sessions_between(LONG_START, dt.date(2021, 7, 30))
    opens = wide_prices.opens.copy()
    opens.loc[sessions[3], "W02"] = np.nan
    holed = PriceTable(opens, wide_prices.closes)
    with pytest.raises(ExecutionError, match="W02: no open price to fill the BUY"):
        buy_with_cash_rule(holed, sessions, [1000.0] * len(sessions), ["SPY", "W02"])


def test_mean_pairwise_correlation_equals_the_pairs_one_by_one_bit_for_bit():
    rng = np.random.default_rng(5)
    for rows in (0, 19, 20, 21, CORRELATION_BLOCK + 40):
        for n in (2, 3, 7):
            returns = rng.standard_normal((rows, n)) * 0.01
            if rows > 100:
                returns[rng.random(returns.shape) < 0.02] = np.nan
                returns[30:60, 0] = 0.0  # windows without movement: correlation 0
            total = None
            for i in range(n):
                for j in range(i + 1, n):
                    rho = trailing_corr(returns[:, i], returns[:, j], 20)
                    total = rho if total is None else total + rho
            expected = total / (n * (n - 1) // 2)
            got = mean_pairwise_correlation(returns)
            assert got.view(np.int64).tolist() == expected.view(np.int64).tolist(), (rows, n)


def test_the_state_table_reads_the_same_states_by_row():
    config = TradingConfig(assets=WIDE_SYMBOLS, momentum_weight=0.7, price_momentum_weight=0.3)
    bars = bars_for(calendar.last_n_sessions(LONG_START, 300)[0], LONG_END, WIDE_SYMBOLS)
    closes = PriceTable.from_bars(bars).closes
    states = market_states(closes, config)
    table = market_state_table(closes, config)
    assert table.dates == list(states)
    for row, state in enumerate(states.values()):
        from_table = table.state(row)
        assert from_table == state
        assert from_table.scores(config) == {s: a.score(config) for s, a in state.assets.items()}
        assert from_table.close("W05") == state.assets["W05"].close


def test_fills_in_place_equal_fills_on_a_copy():
    book = Book(cash=500.0, positions={"SPY": Position("SPY", 3.0, 400.0)})
    orders = [Order("SPY", "SELL", quantity=1.25), Order("QQQ", "BUY", amount=700.0)]
    opens = {"SPY": 410.5, "QQQ": 350.25}
    fills, copied = fill_orders_at_open(orders, opens, book)
    assert book == Book(cash=500.0, positions={"SPY": Position("SPY", 3.0, 400.0)})
    assert fill_orders_in_place(orders, opens, book) == fills
    assert book == copied


def _plain_backtest(bars: pd.DataFrame, sessions: list[dt.date], schedule: ConfigSchedule):
    """The backtest written out from the production steps: a state dict per config, the day's
    decision, deposit, fills on a copy of the book, valuation, weights as a dict per day."""
    prices = PriceTable.from_bars(bars)
    dates = prices.dates
    states, book, label = {}, Book(), None
    daily, trades, signals, weights = [], [], [], []
    for day in sessions:
        entry = schedule.at(day)
        config = entry.config
        key = (config.assets, config.lookback_days)
        if key not in states:
            states[key] = market_states(prices.closes[list(config.assets)], config)
        state = states[key][dates[dates.index(day) - 1]]
        decision = decide_session(state, config, book, label)
        label = decision.regime_label
        book.cash += config.daily_capital
        orders = orders_for(decision.allocations, decision.sell_quantities)
        fills, book = fill_orders_at_open(orders, prices.opens.loc[day].to_dict(), book)
        closes = prices.closes.loc[day].to_dict()
        value = value_at_close(book, closes)
        total = value.total_value
        daily.append((day, config.daily_capital, value.cash, value.positions_value, total))
        daily[-1] += (decision.action, len(fills))
        signals.append((day, decision.action, decision.regime, decision.risk))
        signals[-1] += (decision.allocation_pct, decision.confidence, entry.version_id)
        trades += [
            (day, f.symbol, f.action, f.quantity, f.price, f.amount)
            + (f.realized_pnl if f.action == "SELL" else np.nan,)
            for f in fills
        ]
        held = {s: p.quantity * closes[s] / total for s, p in book.positions.items()}
        weights.append({"date": day, **held, "cash": value.cash / total})
    columns = [*schedule.symbols, "cash"]
    weights = pd.DataFrame(weights).set_index("date").reindex(columns=columns).fillna(0.0)
    return daily, trades, signals, weights


@pytest.mark.parametrize("preset_name", ["seed", "default"])
@pytest.mark.parametrize("symbols", [SYMBOLS, WIDE_SYMBOLS])
def test_the_engine_equals_the_production_steps_written_out(preset_name, symbols):
    first = preset(preset_name).with_changes(assets=symbols)
    second = first.with_changes(lookback_days=200, momentum_weight=0.5, price_momentum_weight=0.5)
    schedule = ConfigSchedule(
        [ScheduledConfig(dt.date.min, first, 1), ScheduledConfig(dt.date(2023, 1, 3), second, 2)],
        "two",
    )
    bars = bars_for(calendar.last_n_sessions(LONG_START, 260)[0], LONG_END, symbols)
    sessions = calendar.sessions_between(LONG_START, LONG_END)
    result = backtest_sessions(bars, sessions, schedule)
    daily, trades, signals, weights = _plain_backtest(bars, sessions, schedule)
    assert set(result.signals["action"]) == {"BUY", "SELL", "HOLD"}
    expected = {
        "daily": pd.DataFrame(daily, columns=result.daily.columns),
        "trades": pd.DataFrame(trades, columns=result.trades.columns),
        "signals": pd.DataFrame(signals, columns=result.signals.columns),
    }
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(getattr(result, name), frame, check_exact=True)
    pd.testing.assert_frame_equal(result.weights, weights, check_exact=True)
