"""The decision: actions, allocations and sells by hand and by property; market states."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.exceptions import MissingBarsError
from allocator.money.quantities import fraction_of_holding, to_cents
from allocator.strategy.config import PARAMETER_NAMES, TradingConfig, preset
from allocator.strategy.decision import (
    BUY,
    HOLD,
    RANK_BANDS,
    SELL,
    decide,
    rank_weights,
    sell_fraction,
    split_cents,
)
from allocator.strategy.market_state import (
    AssetState,
    MarketState,
    compute_signal_frames,
    market_state_at,
    market_states,
    signal_state,
)

AS_OF = dt.date(2024, 3, 1)


def asset(score: float, close: float = 100.0, consistent: bool = False) -> AssetState:
    """An asset whose score is ``score`` under any weights (momentum = price momentum)."""
    return AssetState(
        close=close,
        returns_5d=0.01,
        returns_20d=0.02,
        returns_60d=-0.03,
        volatility=0.01,
        sma_20=close,
        sma_50=close,
        sma20_distance=0.0,
        sma50_distance=0.0,
        momentum=score,
        price_momentum=score,
        trend_consistent=consistent,
    )


def state(regime: float, risk: float, scores: dict[str, float], **closes: float) -> MarketState:
    return MarketState(
        as_of=AS_OF,
        lookback_days=252,
        regime=regime,
        risk=risk,
        volatility_component=risk / 100,
        comovement_component=risk / 100,
        assets={s: asset(v, closes.get(s, 100.0)) for s, v in scores.items()},
    )


def random_closes(seed: int, n: int, symbols=("SPY", "QQQ", "DIA")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0003, 0.011, (n, 1))
    returns = market * rng.uniform(0.8, 1.3, len(symbols)) + rng.normal(0, 0.004, (n, len(symbols)))
    return pd.DataFrame(
        np.round(100 * np.exp(np.cumsum(returns, axis=0)), 4),
        index=pd.bdate_range("2004-01-01", periods=n).date,
        columns=list(symbols),
    )


CFG = preset("seed")
EVEN = {"SPY": 0.5, "QQQ": 0.5, "DIA": 0.5}


# --- hand-worked decisions -------------------------------------------------------------------


def test_bullish_low_risk_even_scores():
    # risk 30 < 40: 80 % of $1000 = $800; equal scores -> weights (0.40, 0.35, 0.25), ties ranked
    # by name: DIA $320, QQQ $280, SPY $200
    d = decide(state(0.5, 30.0, EVEN), CFG)
    assert (d.action, d.regime_label, d.allocation_pct) == (BUY, "bullish", 0.8)
    assert d.allocations == {"DIA": 320.0, "QQQ": 280.0, "SPY": 200.0}
    assert d.sell_quantities == {}


def test_bullish_concentrated_scores():
    # scores 0.8, 0.4, 0.2: c = (0.8 - 0.2) / 0.8 = 0.75
    # weights = (0.40 + 0.75 * 0.10, 0.35 - 0.75 * 0.05, 0.25 - 0.75 * 0.05)
    #         = (0.475, 0.3125, 0.2125); of $800: $380, $250, $170
    d = decide(state(0.5, 30.0, {"SPY": 0.8, "QQQ": 0.4, "DIA": 0.2}), CFG)
    assert d.allocations == pytest.approx({"SPY": 380.0, "QQQ": 250.0, "DIA": 170.0})


@pytest.mark.parametrize(
    ("risk", "pct"), [(39.9, 0.8), (40.0, 0.5), (55.0, 0.5), (70.0, 0.5), (70.1, 0.3)]
)
def test_bullish_allocation_by_risk_band(risk, pct):
    d = decide(state(0.5, risk, EVEN), CFG)
    assert d.allocation_pct == pct
    assert sum(d.allocations.values()) == pytest.approx(1000 * pct)


def test_two_positive_assets_by_hand():
    # scores 0.6, 0.3 (DIA negative gets nothing): c = (0.6 - 0.3) / 0.6 = 0.5
    # 3-asset weights (0.45, 0.325, 0.2125); top two rescaled by 0.775: (0.580645, 0.419355)
    # of 80000 cents: 46451.6 and 33548.4 -> 46452 and 33548 (largest remainder)
    d = decide(state(0.5, 30.0, {"SPY": 0.6, "QQQ": 0.3, "DIA": -0.1}), CFG)
    assert d.allocations == {"SPY": 464.52, "QQQ": 335.48}


def test_single_asset_gets_everything():
    cfg = TradingConfig(assets=("SPY",))
    d = decide(state(0.5, 30.0, {"SPY": 0.2}), cfg)
    assert d.allocations == {"SPY": 800.0}


def test_neutral_buys_small_when_leaning_up():
    up = decide(state(0.1, 30.0, EVEN), CFG)
    assert (up.action, up.regime_label, up.allocation_pct) == (BUY, "neutral", 0.2)
    assert sum(up.allocations.values()) == pytest.approx(200.0)
    down = decide(state(-0.1, 30.0, EVEN), CFG)
    assert (down.action, down.allocations) == (HOLD, {})
    assert "leaning down" in down.reason


def test_no_positive_score_holds():
    d = decide(state(0.5, 30.0, {"SPY": -0.1, "QQQ": 0.0, "DIA": -0.5}), CFG)
    assert d.action == HOLD and "no asset scores above 0" in d.reason


def test_bearish_sells_by_hand():
    # regime -0.65: f = 0.3 + (0.7 - 0.3) * (-0.3 + 0.65) / (-0.3 + 1) = 0.3 + 0.4 * 0.5 = 0.5
    # SPY 10 -> 5.0000 ($400 -> -$2000.00); QQQ 1.2345 -> 0.61725 rounded down 0.6172
    # (at $300: -$185.16)
    s = state(-0.65, 80.0, EVEN, SPY=400.0, QQQ=300.0)
    d = decide(s, CFG, holdings={"SPY": 10.0, "QQQ": 1.2345, "DIA": 0.0})
    assert (d.action, d.regime_label) == (SELL, "bearish")
    assert d.allocation_pct == pytest.approx(0.5)
    assert d.sell_quantities == {"SPY": 5.0, "QQQ": 0.6172}
    assert d.allocations == {"SPY": -2000.0, "QQQ": -185.16}
    # last_close overrides the state's closes for the estimate
    d2 = decide(s, CFG, holdings={"SPY": 10.0}, last_close={"SPY": 410.0})
    assert d2.allocations == {"SPY": -2050.0}


def test_bearish_with_nothing_held_holds():
    d = decide(state(-0.65, 80.0, EVEN), CFG, holdings={})
    assert d.action == HOLD and "nothing is held" in d.reason
    tiny = decide(state(-0.65, 80.0, EVEN), CFG, holdings={"SPY": 0.0001})
    assert tiny.action == HOLD and "too small" in tiny.reason


def test_selling_a_symbol_without_a_price_names_it():
    with pytest.raises(MissingBarsError, match="XLE"):
        decide(state(-0.65, 80.0, EVEN), CFG, holdings={"XLE": 3.0})
    d = decide(state(-0.65, 80.0, EVEN), CFG, holdings={"XLE": 3.0}, last_close={"XLE": 90.0})
    assert d.sell_quantities == {"XLE": 1.5}


def test_sell_fraction_by_hand():
    assert sell_fraction(-0.3, CFG) == pytest.approx(0.3)
    assert sell_fraction(-0.65, CFG) == pytest.approx(0.5)
    assert sell_fraction(-1.0, CFG) == pytest.approx(0.7)
    assert sell_fraction(-1.0, CFG.with_changes(sell_percentage=0.9)) == pytest.approx(0.9)


def test_confidence_by_hand():
    # bullish 0.65: clarity (0.65 - 0.3) / 0.7 = 0.5; risk 30 -> agreement 0.7
    # confidence = 0.7 * 0.5 + 0.3 * 0.7 = 0.56
    assert decide(state(0.65, 30.0, EVEN), CFG).confidence == pytest.approx(0.56)
    # neutral 0.0: clarity = min(0.3, 0.3) / 0.3 = 1; risk 50 -> 0.7 + 0.15 = 0.85
    assert decide(state(0.0, 50.0, EVEN), CFG).confidence == pytest.approx(0.85)
    # bearish -0.65: clarity 0.5; sells agree with high risk: 80 -> 0.35 + 0.24 = 0.59
    sell = decide(state(-0.65, 80.0, EVEN), CFG, holdings={"SPY": 1.0})
    assert sell.confidence == pytest.approx(0.59)


def test_rank_weights_and_cents_by_hand():
    assert rank_weights([0.3]) == [1.0]
    assert rank_weights([1.0, 1.0, 1.0]) == pytest.approx([0.40, 0.35, 0.25])
    assert rank_weights([1.0, 0.5, 0.25]) == pytest.approx([0.475, 0.3125, 0.2125])
    assert rank_weights([1.0, 1.0]) == pytest.approx([0.4 / 0.75, 0.35 / 0.75])
    # four or more: the top three share the budget
    assert rank_weights([1.0, 1.0, 1.0, 0.5]) == pytest.approx([0.40, 0.35, 0.25, 0.0])
    # 100 cents at (1/3, 1/3, 1/3): 33 each and the spare cent to the first
    assert split_cents(100, [1 / 3, 1 / 3, 1 / 3]) == [34, 33, 33]
    assert to_cents(800.005) == 80001 and to_cents(1000 * 0.3) == 30000


def test_features_used_is_plain_json():
    d = decide(state(0.5, 30.0, EVEN), CFG)
    used = d.features_used()
    text = json.dumps(used, allow_nan=False)
    assert json.loads(text) == used
    assert {"regime", "risk", "action", "allocation_pct", "assets"} <= set(used)
    spy = used["assets"]["SPY"]
    for key in ("returns_5d", "returns_20d", "returns_60d", "volatility", "score"):
        assert type(spy[key]) is float
    assert {"sma20_distance", "sma50_distance"} <= set(spy)


def test_undefined_features_name_the_symbol():
    with pytest.raises(MissingBarsError, match="undefined features for QQQ"):
        decide(state(0.5, 30.0, {**EVEN, "QQQ": float("nan")}), CFG)


def test_state_built_with_other_lookback_is_refused():
    with pytest.raises(ValueError, match="lookback_days"):
        decide(state(0.5, 30.0, EVEN), CFG.with_changes(lookback_days=100))


# --- every config parameter drives some decision ---------------------------------------------

MOMENTUM_VS_PRICE = {
    "SPY": AssetState(100, 0.01, 0.02, 0.03, 0.01, 100, 100, 0, 0, 0.9, 0.1, False),
    "QQQ": AssetState(100, 0.01, 0.02, 0.03, 0.01, 100, 100, 0, 0, 0.1, 0.9, False),
}


def _two_state(regime=0.5, risk=30.0):
    return MarketState(AS_OF, 252, regime, risk, 0.3, 0.3, MOMENTUM_VS_PRICE)


#: Parameters that no decision reads, each with the reason; every other parameter needs a case.
EXEMPT = {
    "lookback_days": "sets the window the market state is built from, not what decide does with "
    "a given state (decide refuses a state of another lookback): see "
    "test_lookback_days_changes_decisions",
    "max_drawdown_tolerance": "drives monthly tuning only (its objective), not the daily decision",
    "min_sharpe_target": "drives monthly tuning only (its objective), not the daily decision",
    "slippage_bps": "a fill cost: prices the fills at the open, not the decision "
    "(tests/test_execution.py, tests/test_parity.py)",
    "commission_per_order": "a fill cost: charged on each fill, not part of the decision "
    "(tests/test_execution.py, tests/test_parity.py)",
}

#: SPY leads on momentum, QQQ on price momentum; DIA scores 0.5 under any weights.
WEIGHTED = MarketState(AS_OF, 252, 0.5, 30.0, 0.3, 0.3, {**MOMENTUM_VS_PRICE, "DIA": asset(0.5)})

# (parameter, the changes applied to CFG, state, holdings); the weights must sum to 1, so a
# weight's case moves both.
PARAMETER_CASES = [
    ("daily_capital", {"daily_capital": 2000.0}, state(0.5, 30.0, EVEN), None),
    ("assets", {"assets": ("SPY", "QQQ")}, state(0.5, 30.0, EVEN), None),
    ("regime_bullish_threshold", {"regime_bullish_threshold": 0.6}, state(0.5, 30.0, EVEN), None),
    (
        "regime_bearish_threshold",
        {"regime_bearish_threshold": -0.7},
        state(-0.5, 30.0, EVEN),
        {"SPY": 10.0},
    ),
    ("risk_high_threshold", {"risk_high_threshold": 80.0}, state(0.5, 75.0, EVEN), None),
    ("risk_medium_threshold", {"risk_medium_threshold": 50.0}, state(0.5, 45.0, EVEN), None),
    ("allocation_low_risk", {"allocation_low_risk": 0.9}, state(0.5, 30.0, EVEN), None),
    ("allocation_medium_risk", {"allocation_medium_risk": 0.6}, state(0.5, 50.0, EVEN), None),
    ("allocation_high_risk", {"allocation_high_risk": 0.4}, state(0.5, 90.0, EVEN), None),
    ("allocation_neutral", {"allocation_neutral": 0.1}, state(0.1, 30.0, EVEN), None),
    ("sell_percentage", {"sell_percentage": 0.9}, state(-0.8, 80.0, EVEN), {"SPY": 10.0}),
    (
        "momentum_weight",
        {"momentum_weight": 0.9, "price_momentum_weight": 0.1},
        WEIGHTED,
        None,
    ),
    (
        "price_momentum_weight",
        {"momentum_weight": 0.2, "price_momentum_weight": 0.8},
        WEIGHTED,
        None,
    ),
    # idle cash 5,000: a rate of 0.5 adds 2,500 to the BUY's budget
    ("cash_deploy_rate", {"cash_deploy_rate": 0.5}, state(0.5, 30.0, EVEN), None),
    # the second session of a bearish spell: every_session sells, spell_start holds
    ("sell_trigger", {"sell_trigger": "spell_start"}, state(-0.5, 30.0, EVEN), {"SPY": 10.0}),
]
#: What the morning knew besides the state: cash before the deposit and yesterday's label.
CONTEXT = {"idle_cash": 5000.0, "previous_label": "bearish"}


def test_every_parameter_has_a_case_or_a_reason():
    tested = [case[0] for case in PARAMETER_CASES]
    assert len(tested) == len(set(tested)), "a parameter has two cases"
    assert not set(tested) & set(EXEMPT), "a parameter is both tested and exempt"
    assert all(reason.strip() for reason in EXEMPT.values())
    covered = set(tested) | set(EXEMPT)
    uncovered = sorted(set(PARAMETER_NAMES) - covered)
    assert not uncovered, f"add a case to PARAMETER_CASES or a reason to EXEMPT for {uncovered}"
    assert covered == set(PARAMETER_NAMES), (
        f"not parameters: {sorted(covered - set(PARAMETER_NAMES))}"
    )


@pytest.mark.parametrize(
    ("name", "changes", "s", "holdings"), PARAMETER_CASES, ids=[c[0] for c in PARAMETER_CASES]
)
def test_each_parameter_changes_a_decision(name, changes, s, holdings):
    assert name in changes
    changed = CFG.with_changes(**changes)
    assert getattr(changed, name) != getattr(CFG, name)
    before = decide(s, CFG, holdings, **CONTEXT)
    after = decide(s, changed, holdings, **CONTEXT)
    assert (before.action, before.allocations, before.sell_quantities) != (
        after.action,
        after.allocations,
        after.sell_quantities,
    )


def test_scoring_weights_change_allocations():
    cfg = TradingConfig(assets=("SPY", "QQQ"))
    by_momentum = decide(
        _two_state(), cfg.with_changes(momentum_weight=0.8, price_momentum_weight=0.2)
    )
    by_price = decide(
        _two_state(), cfg.with_changes(momentum_weight=0.2, price_momentum_weight=0.8)
    )
    assert by_momentum.allocations["SPY"] > by_momentum.allocations["QQQ"]
    assert by_price.allocations["QQQ"] > by_price.allocations["SPY"]


def test_lookback_days_changes_decisions():
    closes = random_closes(4, 700)
    short, long = TradingConfig(lookback_days=100), TradingConfig(lookback_days=300)
    a, b = market_states(closes, short), market_states(closes, long)
    common = sorted(set(a) & set(b))
    differ = [
        d for d in common if decide(a[d], short).allocations != decide(b[d], long).allocations
    ]
    assert differ


# --- properties ------------------------------------------------------------------------------

score_lists = st.lists(st.floats(-1.5, 1.5, allow_nan=False), min_size=1, max_size=7)


@settings(max_examples=300, deadline=None)
@given(
    scores=score_lists,
    capital=st.floats(0.01, 1e6),
    risk=st.floats(0, 100),
    regime=st.floats(0.31, 1.0),
)
def test_buy_allocations_sum_to_budget_by_rank(scores, capital, risk, regime):
    symbols = [f"A{i}" for i in range(len(scores))]
    cfg = TradingConfig(assets=tuple(symbols), daily_capital=capital)
    s = state(regime, risk, dict(zip(symbols, scores, strict=True)))
    d = decide(s, cfg)
    positive = [v for v in d.scores.values() if v > 0]
    budget = to_cents(capital * d.allocation_pct)
    if not positive or budget == 0:
        assert d.action == HOLD and d.allocations == {}
        return
    assert d.action == BUY
    cents = {k: round(v * 100) for k, v in d.allocations.items()}
    assert sum(cents.values()) == budget
    assert all(v >= 0 for v in cents.values())
    assert all(d.scores[k] > 0 for k in d.allocations)
    ranked = sorted(d.scores, key=lambda k: (-d.scores[k], k))
    ranked_cents = [cents.get(k, 0) for k in ranked if d.scores[k] > 0]
    assert ranked_cents == sorted(ranked_cents, reverse=True)
    if len(positive) == 3 and budget >= 100:
        for c, (lo, hi) in zip(ranked_cents, RANK_BANDS, strict=True):
            assert lo * budget - 1 <= c <= hi * budget + 1


@settings(max_examples=300, deadline=None)
@given(
    holdings=st.dictionaries(
        st.sampled_from(["SPY", "QQQ", "DIA"]),
        st.integers(0, 10**9).map(lambda q: q / 10_000),
        min_size=1,
    ),
    regime=st.floats(-1.0, -0.3, exclude_max=True),
    sell_pct=st.floats(0.3, 1.0),
)
def test_sell_quantities_within_holdings(holdings, regime, sell_pct):
    cfg = CFG.with_changes(sell_percentage=sell_pct)
    d = decide(state(regime, 80.0, EVEN), cfg, holdings=holdings)
    if d.action == HOLD:
        assert all(
            fraction_of_holding(q, sell_fraction(regime, cfg)) == 0 for q in holdings.values()
        )
        return
    assert d.action == SELL
    fraction = d.allocation_pct
    assert 0.3 - 1e-12 <= fraction <= sell_pct + 1e-12
    for symbol, quantity in d.sell_quantities.items():
        held = holdings[symbol]
        assert 0 < quantity <= held
        assert round(quantity, 4) == quantity
        assert held * fraction - 1e-4 - 1e-9 <= quantity <= held * fraction + 1e-9
        # every close in the state is $100: the estimate is -(quantity x 100) in cents
        assert d.allocations[symbol] == -(to_cents(quantity * 100.0) / 100)


# --- market states from closes ---------------------------------------------------------------


@pytest.fixture(scope="module")
def closes():
    return random_closes(1, 600)


def test_states_for_every_date_after_warm_up(closes):
    states = market_states(closes, CFG)
    dates = list(closes.index)
    assert list(states) == dates[CFG.lookback_days - 1 :]
    frames = compute_signal_frames(closes, CFG)
    scores = frames.scores(CFG)
    last = dates[-1]
    assert [states[last].assets[s].score(CFG) for s in CFG.assets] == scores.iloc[-1].tolist()
    for as_of in (dates[CFG.lookback_days - 1], dates[400], last):
        assert market_state_at(closes, CFG, as_of) == states[as_of]


@settings(max_examples=25, deadline=None)
@given(
    position=st.integers(251, 598),
    factor=st.floats(0.2, 5.0),
    symbol=st.sampled_from(["SPY", "QQQ", "DIA"]),
    data=st.data(),
)
def test_future_closes_change_nothing(closes, position, factor, symbol, data):
    as_of = closes.index[position]
    later = data.draw(st.integers(position + 1, len(closes) - 1))
    changed = closes.copy()
    changed.iloc[later:, changed.columns.get_loc(symbol)] *= factor
    assert market_state_at(changed, CFG, as_of) == market_state_at(closes, CFG, as_of)


def test_signal_state_uses_bars_before_the_trade_date(closes):
    trade_date = closes.index[500]
    s = signal_state(closes, CFG, trade_date)
    assert s.as_of == closes.index[499]
    changed = closes.copy()
    changed.iloc[500:] *= 0.5
    assert signal_state(changed, CFG, trade_date) == s


def test_missing_close_names_the_symbol(closes):
    gap = closes.copy()
    gap.iloc[450, 1] = np.nan  # QQQ
    with pytest.raises(MissingBarsError, match="QQQ") as err:
        market_state_at(gap, CFG, closes.index[460])
    assert "QQQ" in err.value.missing
    with pytest.raises(MissingBarsError, match=f"QQQ on {closes.index[450]}"):
        market_states(gap, CFG)


def test_short_history_names_the_symbol(closes):
    late = closes.copy()
    late.iloc[:400, 2] = np.nan  # DIA starts late
    with pytest.raises(MissingBarsError, match="DIA has 100 of the 252 closes"):
        market_state_at(late, CFG, closes.index[499])
    with pytest.raises(MissingBarsError, match="needs 252 closes"):
        market_state_at(closes.iloc[:100], CFG, closes.index[99])
    with pytest.raises(MissingBarsError, match="IWM"):
        market_state_at(closes, CFG.with_changes(assets=("SPY", "IWM")), closes.index[-1])


@pytest.mark.parametrize("n_assets", [1, 2, 5])
def test_any_number_of_assets(n_assets):
    symbols = tuple(f"X{i}" for i in range(n_assets))
    cfg = TradingConfig(assets=symbols, lookback_days=61)
    closes = random_closes(9, 200, symbols)
    states = market_states(closes, cfg)
    assert len(states) == 140
    for s in list(states.values())[::10]:
        d = decide(s, cfg, {symbols[0]: 1.0})
        assert -1 <= d.regime <= 1 and 0 <= d.risk <= 100 and 0 <= d.confidence <= 1
