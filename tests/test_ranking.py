"""Composite scores: hand-worked values, the trend consistency bonus, config weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from allocator.strategy.config import TradingConfig
from allocator.strategy.features import FEATURE_NAMES
from allocator.strategy.ranking import (
    asset_scores,
    rank_symbols,
    score_components,
    trend_consistent,
)

UP = {
    "returns_5d": 0.02,
    "returns_20d": 0.04,
    "returns_60d": 0.06,
    "volatility": 0.01,
    "sma20_distance": 0.02,
    "sma50_distance": 0.03,
}
MIXED = {**UP, "returns_5d": -0.02}


def hand_features(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    symbols = list(rows)
    columns = pd.MultiIndex.from_product([list(FEATURE_NAMES), symbols])
    data = [[rows[s].get(f, np.nan) for f, s in columns]]
    return pd.DataFrame(data, index=pd.Index(["2024-01-02"]), columns=columns)


def test_score_by_hand():
    # UP (see test_regime_risk): ram = tanh(0.854484) = 0.693405;
    #   pm = 0.6 * 0.666736 + 0.4 * 0.632785 = 0.653155
    #   base = 0.6 * 0.693405 + 0.4 * 0.653155 = 0.677305; all returns > 0: x 1.5 = 1.015957
    # MIXED (5d return -0.02): mean z = (-0.894427 + 0.894427 + 0.774597) / 3 = 0.258199
    #   ram = tanh(0.258199) = 0.252610; base = 0.6 * 0.252610 + 0.4 * 0.653155 = 0.412828
    #   signs differ: no bonus
    feats = hand_features({"UP": UP, "MIXED": MIXED})
    comps = score_components(feats)
    assert comps["price_momentum"]["UP"].iloc[0] == pytest.approx(0.653155, abs=1e-6)
    scores = asset_scores(feats, TradingConfig()).iloc[0]
    assert scores["UP"] == pytest.approx(1.015957, abs=1e-6)
    assert scores["MIXED"] == pytest.approx(0.412828, abs=1e-6)


def test_weights_come_from_config():
    feats = hand_features({"MIXED": MIXED})
    # momentum only: 0.252610; price momentum only: 0.653155
    only_momentum = TradingConfig(momentum_weight=1.0, price_momentum_weight=0.0)
    only_price = TradingConfig(momentum_weight=0.0, price_momentum_weight=1.0)
    assert asset_scores(feats, only_momentum).iloc[0, 0] == pytest.approx(0.252610, abs=1e-6)
    assert asset_scores(feats, only_price).iloc[0, 0] == pytest.approx(0.653155, abs=1e-6)


def test_weights_can_reorder_assets():
    # FAST: strong recent momentum, price near its averages; NEAR: weak momentum, far above SMAs
    fast = {**UP, "returns_5d": 0.05, "sma20_distance": 0.0, "sma50_distance": 0.0}
    near = {**UP, "returns_5d": 0.001, "returns_20d": 0.001, "returns_60d": 0.001}
    feats = hand_features({"FAST": fast, "NEAR": near})
    by_momentum = asset_scores(feats, TradingConfig(momentum_weight=0.9, price_momentum_weight=0.1))
    by_price = asset_scores(feats, TradingConfig(momentum_weight=0.1, price_momentum_weight=0.9))
    assert rank_symbols(by_momentum.iloc[0].to_dict())[0] == "FAST"
    assert rank_symbols(by_price.iloc[0].to_dict())[0] == "NEAR"


def test_trend_consistency_needs_one_strict_sign():
    down = {k: v if k == "volatility" else -v for k, v in UP.items()}
    flat = {**UP, "returns_20d": 0.0}
    feats = hand_features({"UP": UP, "DOWN": down, "MIXED": MIXED, "FLAT": flat})
    assert trend_consistent(feats).iloc[0].to_dict() == {
        "UP": True,
        "DOWN": True,
        "MIXED": False,
        "FLAT": False,
    }
    # the bonus pushes a consistent downtrend further below zero: the mirror of UP, -1.015957
    scores = asset_scores(feats, TradingConfig()).iloc[0]
    assert scores["DOWN"] == pytest.approx(-1.015957, abs=1e-6)


def test_rank_symbols_breaks_ties_by_name():
    assert rank_symbols({"QQQ": 0.5, "DIA": 0.5, "SPY": 0.9}) == ["SPY", "DIA", "QQQ"]
