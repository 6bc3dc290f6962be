"""Monthly tuning: trade scores, bounded candidates, point-in-time, versioning, walk-forward."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.backtest.engine import backtest_sessions
from allocator.backtest.schedule import ConfigSchedule
from allocator.research.monthly import (
    cluster_replay,
    inputs_from_run,
    months_before,
    tune_month,
    walk_forward_retune,
)
from allocator.research.replay import history_start
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.strategy.config import preset
from allocator.tuning.acceptance import DESIGNS, Curve
from allocator.tuning.objective import objective
from allocator.tuning.recommend import SAFE_RANGES, STEP_LIMITS, candidates, within_bounds
from allocator.tuning.scoring import score_trade, score_trades
from allocator.tuning.tuner import TuningInputs, analyse, decide_change, replay_points

DEFAULT = preset("default")
SYMBOLS = ("SPY", "QQQ", "DIA")


# --- scores worked by hand -----------------------------------------------------------------


def test_a_buy_that_rises_steadily_with_the_market_scores_high():
    window = np.linspace(101.0, 110.0, 10)  # bought at 100, up 10 %, never below the price
    market = np.linspace(1.001, 1.05, 10)
    s = score_trade("BUY", 100.0, window, market)
    assert s["forward_return"] == pytest.approx(0.10)
    assert s["profitability"] == pytest.approx(0.3 * np.tanh(2.0))
    assert s["drawdown"] == 0.0
    assert s["alignment"] == pytest.approx(0.3 * np.tanh(0.05 / 0.02))
    assert 0.7 < s["score"] <= 0.8


def test_a_sell_before_a_rise_scores_low_and_scores_are_clipped():
    window = np.array([100.0, 95.0, 100, 105, 110, 115, 120, 125, 130, 135])
    s = score_trade("SELL", 100.0, window, window / 100.0)
    assert s["profitability"] < -0.29 and s["drawdown"] == -0.4 and s["alignment"] < -0.29
    assert s["score"] == -1.0


def test_a_trade_whose_ten_sessions_are_incomplete_is_pending():
    dates = calendar.sessions_between(dt.date(2024, 1, 2), dt.date(2024, 2, 29))
    closes = pd.DataFrame({"SPY": np.linspace(100, 120, len(dates))}, index=dates)
    trades = pd.DataFrame(
        {
            "date": [dates[5], dates[-5]],
            "symbol": ["SPY", "SPY"],
            "action": ["BUY", "BUY"],
            "price": [101.0, 118.0],
            "amount": [1000.0, 1000.0],
        }
    )
    scored, pending = score_trades(trades, closes)
    assert len(scored) == 1 and pending == 1 and scored["date"].iloc[0] == dates[5]


# --- bounds and step limits hold for any history ---------------------------------------------


def random_inputs(seed: int, n_trades: int, drawdown: float) -> TuningInputs:
    rng = np.random.default_rng(seed)
    day = dt.date(2024, 4, 1)
    dates = calendar.sessions_between(dt.date(2023, 11, 1), calendar.previous_session(day))
    closes = pd.DataFrame(
        {s: 100 * np.exp(np.cumsum(rng.normal(0, 0.012, len(dates)))) for s in SYMBOLS},
        index=dates,
    )
    chosen = sorted(rng.choice(len(dates) - 40, size=n_trades) + 40) if n_trades else []
    trades = pd.DataFrame(
        {
            "date": [dates[i] for i in chosen],
            "symbol": rng.choice(SYMBOLS, size=n_trades),
            "action": rng.choice(["BUY", "SELL"], size=n_trades, p=[0.7, 0.3]),
            "price": [float(closes["SPY"].iloc[i]) for i in chosen],
            "amount": rng.uniform(10, 500, size=n_trades),
        }
    )
    trades["price"] = [
        float(closes.loc[d, s]) * rng.uniform(0.99, 1.01)
        for d, s in zip(trades["date"], trades["symbol"], strict=True)
    ]
    signal_days = dates[-60:]
    signals = pd.DataFrame(
        {"date": signal_days, "action": rng.choice(["BUY", "HOLD", "SELL"], len(signal_days))}
    )
    values = 1000 * np.arange(1, 61) * (1 + np.linspace(0, drawdown, 60))
    daily = pd.DataFrame({"date": signal_days, "deposit": 1000.0, "total_value": values})
    config = DEFAULT.with_changes(allocation_neutral=float(rng.uniform(0, 0.6)))
    return TuningInputs(day, config, trades, signals, daily, closes)


def random_curve(rng, sessions: int = 260, drift: float = 0.0) -> Curve:
    """A replay whose value compounds random daily returns on $1,000 deposits."""
    dates = np.array(calendar.sessions_between(dt.date(2023, 1, 3), dt.date(2024, 12, 31)))[
        :sessions
    ].astype("datetime64[D]")
    returns = rng.normal(drift, 0.01, sessions)
    values, value = [], 0.0
    for r in returns:
        value = (value + 1000.0) * (1.0 + r)
        values.append(value)
    values = np.array(values)
    return Curve(dates, np.full(sessions, 1000.0), values, values * 0.6)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_trades=st.integers(0, 60),
    drawdown=st.floats(-0.5, 0.2),
    design=st.sampled_from(sorted(DESIGNS)),
)
def test_every_candidate_and_every_accepted_change_stays_in_bounds(
    seed, n_trades, drawdown, design
):
    inputs = random_inputs(seed, n_trades, drawdown)
    analysis = analyse(inputs)
    for candidate in analysis.candidates:
        changed = inputs.config.with_changes(**candidate.changes)
        assert within_bounds(inputs.config, changed), candidate
    points = replay_points(analysis)
    rng = np.random.default_rng(seed)
    curves = [random_curve(rng, drift=rng.normal(0, 0.001)) for _ in points]
    decision = decide_change(analysis, curves, inputs.config, DESIGNS[design], DEFAULT)
    if decision.new_config is not None:
        assert within_bounds(inputs.config, decision.new_config)
        chosen = decision.table.set_index("candidate").loc[decision.accepted]
        assert chosen["passes"] and chosen["gain"] > DESIGNS[design].margin
        assert chosen["objective"] == pytest.approx(
            decision.table["objective"].iloc[0] + chosen["gain"]
        )
        for name, (old, new) in decision.changes.items():
            low, high = SAFE_RANGES[name]
            assert low <= new <= high and abs(new - old) <= STEP_LIMITS[name] + 1e-9


def test_candidates_outside_the_safe_range_are_dropped_with_a_reason():
    edge = DEFAULT.with_changes(
        cash_deploy_rate=0.0,
        allocation_low_risk=1.0,
        risk_medium_threshold=60.0,
        risk_high_threshold=65.0,
    )
    kept, dropped = candidates(edge, [])
    names = {c.name for c in kept}
    assert "cash_deploy_rate -0.01" not in names and "allocation_low_risk +0.05" not in names
    reasons = dict(dropped)
    assert "outside its safe range" in reasons["cash_deploy_rate -0.01"]
    assert (
        "allocation_low_risk 1.05 is outside its safe range" in reasons["allocation_low_risk +0.05"]
    )
    # a move that would put the thresholds out of order makes no valid config
    assert "need 0 <= medium (65.0) < high (65.0)" in reasons["risk_medium_threshold +5"]
    assert "risk_medium_threshold -5" in names


def test_the_objective_penalises_drawdown_beyond_the_tolerance():
    assert objective({"sharpe": 1.2, "max_drawdown": -0.10}, DEFAULT) == 1.2
    # 5 points beyond the 15 % tolerance cost 5/15 of the 1.0 target
    assert objective({"sharpe": 1.2, "max_drawdown": -0.20}, DEFAULT) == pytest.approx(1.2 - 1 / 3)
    assert objective({"sharpe": float("nan"), "max_drawdown": 0.0}, DEFAULT) == 0.0


# --- point-in-time: the walk-forward tuning step ---------------------------------------------

START, END = dt.date(2024, 1, 2), dt.date(2024, 4, 30)
TUNING_DAY = dt.date(2024, 4, 1)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    first = history_start(months_before(START, 13), ConfigSchedule.constant(DEFAULT))
    source = SyntheticSource()
    return pd.concat(
        [source.fetch(s, first, END).assign(symbol=s) for s in SYMBOLS], ignore_index=True
    )


def tuning_on(bars: pd.DataFrame):
    sessions = calendar.sessions_between(START, calendar.previous_session(TUNING_DAY))
    run = backtest_sessions(bars, sessions, ConfigSchedule.constant(DEFAULT), with_benchmarks=False)
    from allocator.backtest.engine import StrategyRun

    so_far = StrategyRun(run.daily, run.trades, run.signals, run.weights, run.book)
    inputs = inputs_from_run(TUNING_DAY, so_far, bars, DEFAULT, 3)
    return tune_month(inputs, cluster_replay(bars), bars)


def test_tuning_ignores_every_bar_dated_on_or_after_the_tuning_date(bars):
    before = tuning_on(bars)
    shaken = bars.copy()
    later = shaken["date"] >= TUNING_DAY
    rng = np.random.default_rng(7)
    for column in ("open", "high", "low", "close"):
        shaken.loc[later, column] *= rng.uniform(0.5, 1.5, later.sum())
    after = tuning_on(shaken)
    pd.testing.assert_frame_equal(before.analysis.scored, after.analysis.scored)
    pd.testing.assert_frame_equal(before.decision.table, after.decision.table)
    assert before.decision.reason == after.decision.reason
    assert len(before.decision.table) > 1  # candidates were replayed


def test_the_walk_forward_backtest_tunes_each_month_with_the_same_step(bars):
    log: list = []
    result = backtest_sessions(
        bars,
        calendar.sessions_between(START, END),
        ConfigSchedule.constant(DEFAULT),
        retune=walk_forward_retune(bars, cluster_replay(bars), log=log),
    )
    assert [m.tuning_date for m in log] == [
        dt.date(2024, 2, 1),
        dt.date(2024, 3, 1),
        dt.date(2024, 4, 1),
    ]
    for day, config in result.config_changes:
        assert day in {m.tuning_date for m in log}
        assert within_bounds(DEFAULT, config) or config != DEFAULT
    changed = [m for m in log if m.decision.new_config is not None]
    assert len(result.config_changes) == len(changed)


# --- the tune job on the database --------------------------------------------------------------

QUARTER = (dt.date(2026, 8, 3), dt.date(2026, 10, 30))
NOVEMBER = dt.date(2026, 11, 2)  # the first session of November 2026


def run_quarter(engine) -> None:
    from allocator.jobs.execute import execute_trades
    from allocator.jobs.fetch import fetch_bars
    from allocator.jobs.signal import generate_signal
    from allocator.shell.persistence.configs import seed_default_config
    from tests.helpers import seed

    with engine.begin() as conn:
        seed_default_config(conn, preset("seed"), preset_name="seed")
    seed(engine, dt.date(2025, 6, 1), calendar.previous_session(QUARTER[0]))
    for day in calendar.sessions_between(*QUARTER):
        generate_signal(engine, day)
        execute_trades(engine, day)
        fetch_bars(engine, day, SyntheticSource())


def test_tuning_versions_the_config_once_a_month_and_the_next_signal_uses_it(engine, tmp_path):
    from allocator.exceptions import JobError
    from allocator.jobs.signal import generate_signal
    from allocator.jobs.tune import tune
    from allocator.shell.persistence.configs import all_versions

    run_quarter(engine)
    result = tune(engine, NOVEMBER, tmp_path, design="legacy", apply=True)
    assert result.status == "changed", result.message
    old, new = all_versions(engine.connect())
    assert (old.end_date, new.start_date, new.end_date) == (
        dt.date(2026, 10, 31),
        dt.date(2026, 11, 1),
        None,
    )
    assert new.created_by == "tune" and new.notes.startswith("accepted ")
    assert within_bounds(old.config, new.config) and new.config != old.config
    changes = result.tuning.decision.changes
    assert changes and all(getattr(new.config, k) == v[1] for k, v in changes.items())
    table = result.tuning.decision.table.set_index("candidate")
    assert table.loc[result.tuning.decision.accepted, "objective"] > table.iloc[0]["objective"]
    report = tmp_path / "strategy-tuning" / "tuning_2026-11.md"
    text = report.read_text()
    assert result.report == report and text.startswith("# Strategy tuning 2026-11\n\n**Changed: ")
    assert f"new version #{new.id} from 2026-11-01" in text and "<table" not in text
    assert "<table" in report.with_suffix(".html").read_text(), "the same report as a page"
    # a re-run, forced or not, changes nothing
    again = tune(engine, NOVEMBER, tmp_path, design="legacy", apply=True)
    assert again.status == "already tuned" and again.version.id == new.id
    assert len(all_versions(engine.connect())) == 2
    # replace re-tunes the month while no signal uses its version
    replaced = tune(engine, NOVEMBER, tmp_path, replace=True, design="legacy", apply=True)
    assert replaced.status in ("replaced", "withdrawn")
    assert len(all_versions(engine.connect())) == (2 if replaced.status == "replaced" else 1)
    signal = generate_signal(engine, NOVEMBER)
    assert signal.signal.config_id == replaced.version.id
    if replaced.status == "replaced":
        with pytest.raises(JobError, match="is used by 1 signal"):
            tune(engine, NOVEMBER, tmp_path, replace=True, design="legacy", apply=True)


def test_a_month_without_trades_changes_nothing_and_says_so(engine, tmp_path):
    from allocator.jobs.tune import tune
    from allocator.shell.persistence.configs import seed_default_config
    from tests.helpers import seed

    with engine.begin() as conn:
        seed_default_config(conn)
    seed(engine, dt.date(2025, 6, 1), calendar.previous_session(NOVEMBER))
    result = tune(engine, NOVEMBER, tmp_path, design="legacy", apply=True)
    assert result.status == "unchanged" and result.version.id == result.base.id
    assert "no trades in the months looked back on" in result.message
    assert "no trades in the months looked back on" in result.report.read_text()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(21, 90), flat=st.booleans())
def test_conditions_of_every_window_at_once_equal_a_fit_per_window(seed, n, flat):
    from allocator.tuning.conditions import WINDOW, conditions_by_date, market_index, trend_fit

    rng = np.random.default_rng(seed)
    steps = np.zeros((n, 3)) if flat else rng.normal(0, 0.01, (n, 3))
    dates = calendar.sessions_between(dt.date(2024, 1, 2), dt.date(2024, 12, 31))[:n]
    closes = pd.DataFrame(100 * np.exp(np.cumsum(steps, axis=0)), index=dates, columns=SYMBOLS)
    frame = conditions_by_date(closes)
    log_index = np.log(market_index(closes).to_numpy())
    assert list(frame.index) == dates[WINDOW:]
    for k, i in enumerate(range(WINDOW, n)):
        slope, r2 = trend_fit(log_index[i - WINDOW : i])
        assert frame["slope"].iloc[k] == pytest.approx(slope, abs=1e-12)
        assert frame["r2"].iloc[k] == pytest.approx(r2, abs=1e-9)
