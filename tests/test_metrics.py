"""Tests of the metrics: values worked by hand, agreement with empyrical, and properties."""

from __future__ import annotations

import datetime as dt
import math

import empyrical
import empyrical.stats
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.portfolio import metrics as m

SESSIONS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]


def dated(values, start="2024-01-02"):
    """A Series of ``values`` on consecutive business days (Timestamps)."""
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype="float64")


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    """Equal within ``tol`` (relative or absolute); nan equals nan, inf equals the same inf."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


# --- flow-adjusted returns ----------------------------------------------------------------------


def test_flow_adjusted_returns_by_hand_and_twr_differs_from_simple_gain():
    # Day 1: deposit 100 before trading, close at 110         -> r1 = 110 / 100 - 1        = +10 %
    # Day 2: deposit 100 -> 110 + 100 = 210 invested, close 189 -> r2 = 189 / 210 - 1        = -10 %
    # Day 3: deposit 100 -> 189 + 100 = 289 invested, close 317.9 -> r3 = 317.9 / 289 - 1   = +10 %
    # TWR = 1.1 * 0.9 * 1.1 - 1 = 0.089, while gain / deposits = (317.9 - 300) / 300 = 0.059666...
    total = pd.Series([110.0, 189.0, 317.9], index=SESSIONS)
    deposits = pd.Series([100.0, 100.0, 100.0], index=SESSIONS)
    returns = m.daily_returns_flow_adjusted(total, deposits)
    assert list(returns.index) == SESSIONS
    assert returns.to_numpy() == pytest.approx([0.10, -0.10, 0.10], abs=1e-15)
    assert m.time_weighted_return(returns) == pytest.approx(0.089, abs=1e-15)
    simple_gain = (total.iloc[-1] - deposits.sum()) / deposits.sum()
    assert simple_gain == pytest.approx(0.0596667, abs=1e-7)


def test_flow_adjusted_returns_zero_denominator_is_zero_not_nan():
    # Nothing deposited and nothing held on day 1: nothing invested, return 0.
    # Day 2: 50 deposited, closes at 55 -> +10 %. Day 3: value falls to 0, day 4: 0 + 0 invested.
    total = dated([0.0, 55.0, 0.0, 0.0])
    deposits = dated([0.0, 50.0, 0.0, 0.0])
    returns = m.daily_returns_flow_adjusted(total, deposits)
    assert returns.to_numpy() == pytest.approx([0.0, 0.1, -1.0, 0.0])
    assert not returns.isna().any()


def test_flow_adjusted_returns_accept_date_and_timestamp_indexes_together():
    total = pd.Series([101.0, 203.0], index=SESSIONS[:2])
    deposits = pd.Series([100.0, 100.0], index=pd.to_datetime(SESSIONS[:2]))
    returns = m.daily_returns_flow_adjusted(total, deposits)
    assert list(returns.index) == SESSIONS[:2]  # labelled like total_value
    assert returns.iloc[1] == pytest.approx(203 / 201 - 1)


def test_flow_adjusted_returns_empty_is_empty():
    assert m.daily_returns_flow_adjusted(dated([]), dated([])).empty


@pytest.mark.parametrize(
    ("total", "deposits", "name"),
    [
        (dated([1.0, 2.0]), dated([1.0, 1.0], start="2024-02-01"), "deposits"),
        (dated([1.0, 2.0]), dated([1.0, 1.0, 1.0]), "deposits"),
        (dated([1.0, 2.0]), dated([1.0, -1.0]), "deposits"),
        (dated([1.0, math.nan]), dated([1.0, 1.0]), "total_value"),
        (dated([1.0, 2.0])[::-1], dated([1.0, 1.0])[::-1], "total_value"),
        (dated([-1.0, 2.0]), dated([1.0, 1.0]), "total_value"),
    ],
)
def test_flow_adjusted_returns_reject_bad_input_naming_it(total, deposits, name):
    with pytest.raises(ValueError, match=name):
        m.daily_returns_flow_adjusted(total, deposits)


# --- returns and growth -------------------------------------------------------------------------


def test_twr_cagr_by_hand():
    # +10 % then -10 %: 1.1 * 0.9 = 0.99 -> TWR -1 %.
    assert m.time_weighted_return([0.1, -0.1]) == pytest.approx(-0.01)
    # 126 sessions of growth 1.21 in total are half a year: CAGR = 1.21 ** 2 - 1 = 0.4641.
    half_year = np.full(126, 1.21 ** (1 / 126) - 1)
    assert m.cagr(half_year) == pytest.approx(0.4641, rel=1e-12)
    # periods=2: two returns are one year, so CAGR = TWR.
    assert m.cagr([0.1, -0.1], periods=2) == pytest.approx(-0.01)
    assert m.cumulative_returns([0.1, -0.1]).to_numpy() == pytest.approx([0.1, -0.01])


def test_empty_and_short_inputs_give_nan():
    for metric in (
        m.time_weighted_return,
        m.cagr,
        m.annual_volatility,
        m.sharpe_ratio,
        m.sortino_ratio,
        m.downside_risk,
        m.max_drawdown,
        m.calmar_ratio,
    ):
        assert math.isnan(metric([])), metric.__name__
    for metric in (m.annual_volatility, m.sharpe_ratio, m.sortino_ratio):
        assert math.isnan(metric([0.01])), metric.__name__
    assert m.max_drawdown_period([]) == (None, None, None, pytest.approx(math.nan, nan_ok=True))
    assert m.drawdown_series([]).empty
    assert math.isnan(m.hit_rate([]))
    assert math.isnan(m.exposure(dated([]), dated([])))
    assert math.isnan(m.turnover([], dated([])))
    assert math.isnan(m.money_weighted_return([], 0.0))


def test_returns_with_nan_are_rejected():
    with pytest.raises(ValueError, match="returns"):
        m.sharpe_ratio(dated([0.01, math.nan, 0.02]))
    with pytest.raises(ValueError, match="returns"):
        m.max_drawdown(np.ones((2, 2)))
    with pytest.raises(ValueError, match="periods"):
        m.cagr([0.01], periods=0)


# --- money-weighted return ----------------------------------------------------------------------


def test_mwr_two_deposits_by_hand():
    # periods=1 makes each session a year. 100 in at the start of session 0 (2 years before the
    # end), 100 at the start of session 1 (1 year before): 100 x**2 + 100 x = 231 with x = 1 + r
    # -> x**2 + x - 2.31 = 0 -> x = (-1 + sqrt(1 + 9.24)) / 2 = (-1 + 3.2) / 2 = 1.1 -> r = 10 %.
    assert m.money_weighted_return([100.0, 100.0], 231.0, periods=1) == pytest.approx(0.1, 1e-12)


def test_mwr_single_deposit_is_cagr():
    # 1000 deposited on the first of 252 sessions, worth 1100 at the last close: one year, +10 %.
    deposits = dated([1000.0] + [0.0] * 251)
    assert m.money_weighted_return(deposits, 1100.0) == pytest.approx(0.1, rel=1e-12)
    # The same portfolio's CAGR over the same sessions is the same number.
    total = dated(1000.0 * 1.1 ** (np.arange(1, 253) / 252))
    returns = m.daily_returns_flow_adjusted(total, deposits)
    assert m.cagr(returns) == pytest.approx(0.1, rel=1e-12)


def test_mwr_solves_the_flows_and_differs_from_twr():
    # The 3-day example with periods=1 (rates per session): 100 x**3 + 100 x**2 + 100 x = 317.9.
    # x = 1.0293: 1.09051 + 1.05946 + 1.0293 = 3.17927, so r is about 2.93 % per session, above
    # the TWR per session 1.089 ** (1 / 3) - 1 = 2.88 %: the most money (289) was invested on the
    # last, +10 % day, and only 100 on the first +10 % day.
    rate = m.money_weighted_return([100.0, 100.0, 100.0], 317.9, periods=1)
    x = 1 + rate
    assert 100 * x**3 + 100 * x**2 + 100 * x == pytest.approx(317.9, rel=1e-12)
    assert rate == pytest.approx(0.0293, abs=1e-4)
    twr_per_session = 1.089 ** (1 / 3) - 1
    assert twr_per_session == pytest.approx(0.0288, abs=1e-4)
    assert rate > twr_per_session


def test_mwr_edges_and_bad_input():
    assert m.money_weighted_return([100.0, 0.0], 0.0) == -1.0
    assert math.isnan(m.money_weighted_return([0.0, 0.0], 10.0))
    # a 1e6-fold gain in one session overflows to +inf rather than failing
    assert m.money_weighted_return([1.0], 1e6) == math.inf
    assert m.money_weighted_return([1.0, 1.0], 2.0, dates=SESSIONS[:2]) == 0.0
    with pytest.raises(ValueError, match="deposits"):
        m.money_weighted_return([100.0, -1.0], 100.0)
    with pytest.raises(ValueError, match="final_value"):
        m.money_weighted_return([100.0], -1.0)
    with pytest.raises(ValueError, match="final_value"):
        m.money_weighted_return([100.0], math.nan)
    with pytest.raises(ValueError, match="dates"):
        m.money_weighted_return([100.0], 100.0, dates=SESSIONS)
    with pytest.raises(ValueError, match="dates"):
        m.money_weighted_return([1.0, 1.0], 2.0, dates=SESSIONS[1::-1])


# --- risk ---------------------------------------------------------------------------------------

HAND = [0.01, -0.01, 0.02, 0.0]
# mean 0.005; deviations 0.005, -0.015, 0.015, -0.005; squares sum 500e-6; sample variance
# 500e-6 / 3; downside: min(r, 0) = 0, -0.01, 0, 0 -> mean of squares 1e-4 / 4 = 2.5e-5, root 0.005.


def test_volatility_sharpe_sortino_by_hand():
    assert m.annual_volatility(HAND, periods=1) == pytest.approx(math.sqrt(500e-6 / 3))
    assert m.annual_volatility(HAND) == pytest.approx(math.sqrt(500e-6 / 3 * 252))
    # Sharpe (periods=1) = 0.005 / sqrt(500e-6 / 3) = 0.005 * sqrt(6000) = sqrt(0.15).
    assert m.sharpe_ratio(HAND, periods=1) == pytest.approx(math.sqrt(0.15))
    assert m.sharpe_ratio(HAND) == pytest.approx(math.sqrt(0.15 * 252))
    # Subtracting a per-session risk-free rate of 0.005 leaves a mean excess of 0.
    assert m.sharpe_ratio(HAND, risk_free=0.005) == pytest.approx(0.0, abs=1e-12)
    assert m.downside_risk(HAND, periods=1) == pytest.approx(0.005)
    # Sortino (periods=1) = 0.005 / 0.005 = 1; with 252: 0.005 * 252 / (0.005 * sqrt(252)).
    assert m.sortino_ratio(HAND, periods=1) == pytest.approx(1.0)
    assert m.sortino_ratio(HAND) == pytest.approx(math.sqrt(252))


def test_zero_dispersion_ratios():
    assert m.sharpe_ratio([0.01, 0.01, 0.01]) == math.inf
    assert m.sharpe_ratio([-0.01, -0.01]) == -math.inf
    assert math.isnan(m.sharpe_ratio([0.0, 0.0]))
    assert m.sortino_ratio([0.01, 0.02]) == math.inf
    assert math.isnan(m.sortino_ratio([0.0, 0.0]))


def test_drawdown_dates_by_hand():
    # value: 1.1, 0.88, 0.924, 1.155, 1.09725, 1.09725
    # peak 1.1 on day 0, trough 0.88 on day 1 (-20 %), back above 1.1 on day 3 (1.155);
    # a later, smaller drawdown: 1.09725 / 1.155 - 1 = -5 % on days 4 and 5.
    returns = dated([0.10, -0.20, 0.05, 0.25, -0.05, 0.0])
    days = returns.index
    assert m.drawdown_series(returns).to_numpy() == pytest.approx(
        [0.0, -0.2, 0.924 / 1.1 - 1, 0.0, -0.05, -0.05]
    )
    assert m.max_drawdown(returns) == pytest.approx(-0.2)
    period = m.max_drawdown_period(returns)
    assert (period.peak, period.trough, period.recovery) == (days[0], days[1], days[3])
    assert period.depth == pytest.approx(-0.2)


def test_drawdown_not_recovered_and_from_the_first_day():
    # 1.1, 0.55, 0.66: -50 % from the day-0 peak, never back to 1.1.
    returns = pd.Series([0.1, -0.5, 0.2], index=SESSIONS)
    assert m.max_drawdown_period(returns) == (SESSIONS[0], SESSIONS[1], None, pytest.approx(-0.5))
    # A loss on the first day falls from the starting value, labelled with the first session.
    returns = pd.Series([-0.1, 0.2, 0.0], index=SESSIONS)
    assert m.max_drawdown_period(returns) == (
        SESSIONS[0],
        SESSIONS[0],
        SESSIONS[1],
        pytest.approx(-0.1),
    )
    # Never fell: no drawdown, no dates.
    assert m.max_drawdown_period([0.01, 0.0, 0.02]) == (None, None, None, 0.0)
    assert m.max_drawdown([0.01, 0.0, 0.02]) == 0.0


def test_calmar_by_hand():
    # periods=6: the 6 sessions are one year, so CAGR = TWR = 1.09725 - 1; max drawdown -20 %.
    returns = [0.10, -0.20, 0.05, 0.25, -0.05, 0.0]
    assert m.calmar_ratio(returns, periods=6) == pytest.approx(0.09725 / 0.2)
    assert math.isnan(m.calmar_ratio([0.01, 0.02]))  # no drawdown


# --- trading activity ---------------------------------------------------------------------------


def test_hit_rate_by_hand():
    # Scored: 10, -5, 0, 3 (None and NaN are open/unscored) -> hits 10 and 3 -> 2 / 4.
    assert m.hit_rate([10.0, -5.0, 0.0, None, math.nan, 3.0]) == 0.5
    assert m.hit_rate(pd.Series([1.0, np.nan])) == 1.0
    assert math.isnan(m.hit_rate([None, math.nan]))
    with pytest.raises(ValueError, match="trade_pnls"):
        m.hit_rate([1.0, "a lot"])


def test_exposure_and_turnover_by_hand():
    positions = pd.Series([0.0, 50.0, 150.0], index=SESSIONS)
    total = pd.Series([100.0, 200.0, 300.0], index=SESSIONS)
    # fractions 0, 0.25, 0.5 -> mean 0.25
    assert m.exposure(positions, total) == pytest.approx(0.25)
    # a session without capital is left out: (0.25 + 0.5) / 2
    assert m.exposure(positions, total.where(total != 100.0, 0.0)) == pytest.approx(0.375)
    # |100| + |-50| + |150| = 300 traded; mean value 200; 3 sessions of a 252-session year:
    # 300 / 200 * 252 / 3 = 126 times a year.
    assert m.turnover([100.0, -50.0, 150.0], total) == pytest.approx(126.0)
    assert m.turnover([100.0, -50.0, 150.0], total, periods=3) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="positions_value"):
        m.exposure(positions.iloc[:2], total)


# --- summary ------------------------------------------------------------------------------------


def test_summary_of_the_three_day_example():
    daily = pd.DataFrame(
        {
            "date": SESSIONS,
            "deposit": [100.0, 100.0, 100.0],
            "cash": [10.0, 0.0, 17.9],
            "positions_value": [100.0, 189.0, 300.0],
            "total_value": [110.0, 189.0, 317.9],
        }
    )
    trades = pd.DataFrame(
        {
            "symbol": ["SPY", "SPY", "QQQ"],
            "action": ["BUY", "SELL", "BUY"],
            "quantity": [1.0, 0.5, 2.0],
            "price": [100.0, 120.0, 50.0],
            "amount": [100.0, 60.0, 100.0],
            "realized_pnl": [math.nan, 10.0, math.nan],
        }
    )
    result = m.summary(daily, trades)
    expected_keys = {
        "twr", "cagr", "mwr", "volatility", "sharpe", "sortino", "max_drawdown",
        "max_drawdown_peak", "max_drawdown_trough", "calmar", "total_deposits", "final_value",
        "n_trades", "hit_rate", "exposure", "turnover",
    }  # fmt: skip
    assert expected_keys <= set(result)
    returns = [0.1, -0.1, 0.1]
    assert result["twr"] == pytest.approx(0.089)
    assert result["cagr"] == pytest.approx(1.089 ** (252 / 3) - 1)
    assert result["mwr"] == pytest.approx(m.money_weighted_return([100.0] * 3, 317.9))
    assert result["sharpe"] == pytest.approx(m.sharpe_ratio(returns))
    # value 1.1, 0.99, 1.089: -10 % from day 0 to day 1, not recovered
    assert result["max_drawdown"] == pytest.approx(-0.1)
    assert (result["max_drawdown_peak"], result["max_drawdown_trough"]) == tuple(SESSIONS[:2])
    assert result["max_drawdown_recovery"] is None
    assert result["total_deposits"] == 300.0
    assert result["final_value"] == 317.9
    assert (result["n_trades"], result["hit_rate"]) == (3, 1.0)
    assert result["exposure"] == pytest.approx((100 / 110 + 1 + 300 / 317.9) / 3)
    assert result["turnover"] == pytest.approx(260 / np.mean([110, 189, 317.9]) * 252 / 3)
    assert (result["start"], result["end"], result["n_sessions"]) == (SESSIONS[0], SESSIONS[2], 3)


def test_summary_empty_and_bad_frames():
    empty = pd.DataFrame(columns=["date", "deposit", "cash", "positions_value", "total_value"])
    result = m.summary(empty)
    assert math.isnan(result["twr"]) and math.isnan(result["mwr"])
    assert math.isnan(result["final_value"])
    assert (result["n_trades"], result["total_deposits"], result["start"]) == (0, 0.0, None)
    with pytest.raises(ValueError, match="daily is missing column.*positions_value"):
        m.summary(pd.DataFrame({"deposit": [1.0], "total_value": [1.0]}))
    with pytest.raises(ValueError, match="trades"):
        m.summary(empty, pd.DataFrame({"symbol": ["SPY"]}))


# --- agreement with empyrical -------------------------------------------------------------------

# (ours, empyrical's) for every metric whose definition is the same.
SAME_DEFINITION = [
    (m.time_weighted_return, empyrical.cum_returns_final),
    (m.cagr, empyrical.annual_return),
    (m.annual_volatility, empyrical.annual_volatility),
    (m.sharpe_ratio, empyrical.sharpe_ratio),
    (m.sortino_ratio, empyrical.sortino_ratio),
    (m.downside_risk, empyrical.downside_risk),
    (m.max_drawdown, empyrical.max_drawdown),
    (m.calmar_ratio, empyrical.calmar_ratio),
]
IDS = [ours.__name__ for ours, _ in SAME_DEFINITION]


@pytest.fixture(scope="module")
def seeded_returns() -> pd.Series:
    rng = np.random.default_rng(20240102)
    return dated(rng.normal(0.0004, 0.011, 750), start="2021-01-04")


@pytest.mark.parametrize(("ours", "theirs"), SAME_DEFINITION, ids=IDS)
def test_matches_empyrical_on_a_seeded_series(seeded_returns, ours, theirs):
    # empyrical-reloaded 0.7.1 works with pandas 3: compare on the dated Series and on its array.
    expected = float(theirs(seeded_returns))
    assert close(float(theirs(seeded_returns.to_numpy())), expected)
    assert close(ours(seeded_returns), expected)
    assert math.isfinite(expected)


def test_series_metrics_match_empyrical(seeded_returns):
    ours = m.cumulative_returns(seeded_returns)
    theirs = empyrical.cum_returns(seeded_returns)
    assert ours.index.equals(theirs.index)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        m.drawdown_series(seeded_returns).to_numpy(),
        empyrical.stats.drawdown_series(seeded_returns).to_numpy(),
        rtol=1e-12,
        atol=1e-15,
    )
    assert close(
        m.sharpe_ratio(seeded_returns, risk_free=0.0001),
        empyrical.sharpe_ratio(seeded_returns, risk_free=0.0001),
    )
    assert close(
        m.sortino_ratio(seeded_returns, required_return=0.001),
        empyrical.sortino_ratio(seeded_returns, required_return=0.001),
    )


# Returns on a 1-basis-point grid: realistic, and never so nearly constant that a standard deviation
# or drawdown is a rounding residue (there, the two libraries' summation orders give different
# noise and the ratios built on it are arbitrary).
grid_returns = st.lists(st.integers(-10_000, 10_000), max_size=60).map(
    lambda bps: np.array(bps, dtype="float64") / 10_000
)
# Any float returns from -100 % to +100 %, for the metrics that are well conditioned everywhere.
float_returns = st.lists(
    st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False), max_size=60
).map(lambda values: np.array(values, dtype="float64"))


@settings(max_examples=150, deadline=None)
@given(returns=grid_returns, periods=st.sampled_from([252, 12, 1]))
def test_matches_empyrical_on_generated_series(returns, periods):
    for ours, theirs in SAME_DEFINITION:
        if ours in (m.max_drawdown, m.time_weighted_return):
            expected = theirs(returns)
            got = ours(returns)
        else:
            expected = theirs(returns, annualization=periods)
            got = ours(returns, periods=periods)
        assert close(got, float(expected)), (ours.__name__, got, expected)


@settings(max_examples=150, deadline=None)
@given(returns=float_returns)
def test_well_conditioned_metrics_match_empyrical_on_any_floats(returns):
    pairs = [
        (m.time_weighted_return, empyrical.cum_returns_final),
        (m.cagr, empyrical.annual_return),
        (m.annual_volatility, empyrical.annual_volatility),
        (m.max_drawdown, empyrical.max_drawdown),
    ]
    for ours, theirs in pairs:
        assert close(ours(returns), float(theirs(returns))), ours.__name__


# --- properties ---------------------------------------------------------------------------------

# Deposits in cents, at least one of them positive.
deposit_lists = st.lists(st.integers(0, 10_000_000), min_size=1, max_size=40).filter(any)


@settings(max_examples=150, deadline=None)
@given(cents=deposit_lists)
def test_cash_only_portfolio_has_zero_twr_and_mwr(cents):
    deposits = dated(np.array(cents) / 100)
    total = deposits.cumsum()  # nothing bought: the value is the cash deposited so far
    returns = m.daily_returns_flow_adjusted(total, deposits)
    assert (returns == 0.0).all()
    assert m.time_weighted_return(returns) == 0.0
    assert m.money_weighted_return(deposits, float(total.iloc[-1])) == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 1_000_000), st.floats(-0.2, 0.2, allow_nan=False)),
        min_size=1,
        max_size=40,
    ),
    scale=st.sampled_from([2.0, 3.0, 0.01, 1000.0]),
)
def test_scaling_deposits_and_values_leaves_twr_unchanged(rows, scale):
    # A portfolio that earns r[t] on what it holds each day: value = (previous + deposit) (1 + r).
    deposits = dated([cents / 100 for cents, _ in rows])
    values, held = [], 0.0
    for (_, move), deposit in zip(rows, deposits, strict=True):
        held = (held + deposit) * (1 + move)
        values.append(held)
    total = dated(values)
    twr = m.time_weighted_return(m.daily_returns_flow_adjusted(total, deposits))
    scaled = m.time_weighted_return(m.daily_returns_flow_adjusted(total * scale, deposits * scale))
    if scale == 2.0:
        assert scaled == twr  # doubling is exact in binary floating point
    assert close(scaled, twr, 1e-12)


@settings(max_examples=100, deadline=None)
@given(cents=deposit_lists, growth=st.floats(0.5, 2.0))
def test_mwr_is_the_root_of_the_flows(cents, growth):
    # periods=1 keeps the rate moderate; at 252 a one-session halving is -1 + 1e-76 a year, which
    # rounds to -100 % and leaves nothing to check the flows with.
    deposits = np.array(cents, dtype="float64") / 100
    final = float(deposits.sum()) * growth
    rate = m.money_weighted_return(deposits, final, periods=1)
    years = len(deposits) - np.arange(len(deposits))
    assert float(np.sum(deposits * (1 + rate) ** years)) == pytest.approx(final, rel=1e-9)
    assert (rate > 0) == (growth > 1) or growth == 1


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 1_000_000), st.floats(-0.2, 0.2, allow_nan=False), st.floats(0, 1)
        ),
        min_size=1,
        max_size=40,
    )
)
def test_the_unchecked_summary_equals_the_summary_bit_for_bit(rows):
    deposits = [cents / 100 for cents, _, _ in rows]
    values, held = [], 0.0
    for (_, move, _), deposit in zip(rows, deposits, strict=True):
        held = (held + deposit) * (1 + move)
        values.append(held)
    positions = [value * share for value, (_, _, share) in zip(values, rows, strict=True)]
    daily = pd.DataFrame(
        {"date": pd.bdate_range("2024-01-02", periods=len(rows)).date, "deposit": deposits}
        | {"positions_value": positions, "total_value": values}
    )
    checked = m.summary(daily)
    fast = m.summary_unchecked(
        np.array(values), np.array(deposits), np.array(positions, dtype="float64")
    )
    assert set(fast) == set(m.UNCHECKED_METRICS)
    for key, value in fast.items():
        assert value == checked[key] or (math.isnan(value) and math.isnan(checked[key])), key
