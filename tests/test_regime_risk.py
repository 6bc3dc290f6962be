"""Regime and risk: hand-worked values, bounds on any price path, what lookback_days drives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.strategy.config import TradingConfig
from allocator.strategy.features import FEATURE_NAMES, compute_features
from allocator.strategy.regime import (
    BEARISH,
    BULLISH,
    NEUTRAL,
    asset_regimes,
    regime_label,
    regime_scores,
    sma_horizon,
    trend_components,
)
from allocator.strategy.risk import (
    mean_pairwise_correlation,
    percentile_window,
    required_history,
    risk_band,
    risk_components,
    trailing_percentile,
)


def hand_features(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    """A one-date features frame from {symbol: {feature: value}} (other features NaN)."""
    symbols = list(rows)
    columns = pd.MultiIndex.from_product([list(FEATURE_NAMES), symbols])
    data = [[rows[s].get(f, np.nan) for f, s in columns]]
    return pd.DataFrame(data, index=pd.Index(["2024-01-02"]), columns=columns)


UP = {
    "returns_5d": 0.02,
    "returns_20d": 0.04,
    "returns_60d": 0.06,
    "volatility": 0.01,
    "sma20_distance": 0.02,
    "sma50_distance": 0.03,
}
DOWN = {k: (v if k == "volatility" else -v) for k, v in UP.items()}


def random_closes(seed: int, n: int, n_assets: int, vol: float = 0.012) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0003, vol, (n, n_assets))
    return pd.DataFrame(
        100 * np.exp(np.cumsum(returns, axis=0)),
        index=pd.bdate_range("2010-01-01", periods=n).date,
        columns=[f"S{i}" for i in range(n_assets)],
    )


def test_sma_horizon_by_hand():
    # h_n = (n-1)(2n-1)/(6n): 19 * 39 / 120 = 6.175 and 49 * 99 / 300 = 16.17
    assert sma_horizon(20) == pytest.approx(6.175)
    assert sma_horizon(50) == pytest.approx(16.17)


def test_regime_by_hand():
    # volatility 1 % a day:
    #   z5 = 0.02 / (0.01 sqrt 5) = 0.894427, z20 = 0.04 / (0.01 sqrt 20) = 0.894427,
    #   z60 = 0.06 / (0.01 sqrt 60) = 0.774597; mean 0.854484; momentum = tanh(.) = 0.693405
    #   z_sma20 = 0.02 / (0.01 sqrt 6.175) = 0.804844; sma20 = tanh(.) = 0.666736
    #   z_sma50 = 0.03 / (0.01 sqrt 16.17) = 0.746047; sma50 = tanh(.) = 0.632785
    #   regime = 0.5 * 0.693405 + 0.3 * 0.666736 + 0.2 * 0.632785 = 0.673280
    feats = hand_features({"UP": UP})
    comps = trend_components(feats)
    assert comps["momentum"].iloc[0, 0] == pytest.approx(0.693405, abs=1e-6)
    assert comps["sma20"].iloc[0, 0] == pytest.approx(0.666736, abs=1e-6)
    assert comps["sma50"].iloc[0, 0] == pytest.approx(0.632785, abs=1e-6)
    assert regime_scores(feats).iloc[0] == pytest.approx(0.673280, abs=1e-6)
    # a mirror-image asset cancels it: the market regime is the mean over assets
    both = hand_features({"UP": UP, "DOWN": DOWN})
    assert asset_regimes(both).iloc[0].tolist() == pytest.approx([0.673280, -0.673280], abs=1e-6)
    assert regime_scores(both).iloc[0] == pytest.approx(0.0, abs=1e-12)


def test_regime_labels_follow_config():
    cfg = TradingConfig()
    assert regime_label(-0.31, cfg) == BEARISH
    assert regime_label(-0.3, cfg) == NEUTRAL
    assert regime_label(0.3, cfg) == NEUTRAL
    assert regime_label(0.31, cfg) == BULLISH
    wide = cfg.with_changes(regime_bullish_threshold=0.5, regime_bearish_threshold=-0.5)
    assert regime_label(0.4, wide) == NEUTRAL
    assert regime_label(-0.4, wide) == NEUTRAL


def test_flat_prices_give_neutral_regime():
    closes = pd.DataFrame({"AAA": [50.0] * 80}, index=pd.bdate_range("2020-01-01", periods=80))
    regime = regime_scores(compute_features(closes))
    assert (regime.iloc[60:] == 0.0).all()


def test_trends_reach_both_labels():
    n = 120
    up = pd.DataFrame({"AAA": 100 * 1.004 ** np.arange(n) * (1 + 0.003 * np.sin(np.arange(n)))})
    down = pd.DataFrame({"AAA": 100 * 0.996 ** np.arange(n) * (1 + 0.003 * np.sin(np.arange(n)))})
    cfg = TradingConfig()
    assert regime_label(regime_scores(compute_features(up)).iloc[-1], cfg) == BULLISH
    assert regime_label(regime_scores(compute_features(down)).iloc[-1], cfg) == BEARISH


def test_trailing_percentile_by_hand():
    # mid-rank percentile in a window of 5: (#less + (#equal - 1) / 2) / 4
    assert trailing_percentile(np.array([1.0, 2, 3, 4, 5]), 5)[-1] == 1.0  # window high
    assert trailing_percentile(np.array([5.0, 4, 3, 2, 1]), 5)[-1] == 0.0  # window low
    assert trailing_percentile(np.array([2.0, 2, 2, 2, 2]), 5)[-1] == 0.5  # constant
    # 3 among (1, 5, 3, 2, 3): less = 2 (1, 2), equal = 2 -> (2 + 0.5) / 4 = 0.625
    assert trailing_percentile(np.array([1.0, 5, 3, 2, 3]), 5)[-1] == 0.625
    out = trailing_percentile(np.array([1.0, np.nan, 3, 2, 4, 5]), 3)
    assert np.isnan(out[:4]).all() and out[4] == 1.0 and out[5] == 1.0


def test_mean_pairwise_correlation_by_hand():
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    # pairs (x, x) = 1, (x, -x) = -1, (x, -x) = -1 -> mean -1/3
    three = np.column_stack([x, x, -x])
    assert mean_pairwise_correlation(three)[-1] == pytest.approx(-1 / 3)
    assert np.isnan(mean_pairwise_correlation(x[:, None])).all()


def test_risk_combines_components_70_30():
    cfg = TradingConfig(lookback_days=61)
    closes = random_closes(11, 200, 3)
    risk = risk_components(compute_features(closes), cfg).dropna()
    expected = 100 * (0.7 * risk["volatility_component"] + 0.3 * risk["comovement_component"])
    np.testing.assert_allclose(risk["risk"], expected)
    # the percentile window is lookback_days - 20 values; its first value needs lookback closes
    assert percentile_window(cfg) == 41 and required_history(cfg) == 61
    full = risk_components(compute_features(closes), cfg)["risk"]
    assert np.isnan(full.iloc[59]) and np.isfinite(full.iloc[60])


def test_single_asset_risk_is_volatility_percentile():
    cfg = TradingConfig(assets=("AAA",), lookback_days=61)
    closes = random_closes(5, 150, 1).rename(columns={"S0": "AAA"})
    risk = risk_components(compute_features(closes), cfg).dropna(subset=["risk"])
    np.testing.assert_allclose(risk["risk"], 100 * risk["volatility_component"])


def test_risk_band_follows_config():
    cfg = TradingConfig()
    assert [risk_band(r, cfg) for r in (39.9, 40.0, 70.0, 70.1)] == [
        "low",
        "medium",
        "medium",
        "high",
    ]
    assert risk_band(50.0, cfg.with_changes(risk_medium_threshold=55.0)) == "low"


def test_lookback_days_changes_risk():
    closes = random_closes(21, 400, 3)
    feats = compute_features(closes)
    short = risk_components(feats, TradingConfig(lookback_days=61))["risk"].iloc[-100:]
    long = risk_components(feats, TradingConfig(lookback_days=252))["risk"].iloc[-100:]
    assert not np.allclose(short, long)


def test_volatility_spike_reads_high_risk():
    rng = np.random.default_rng(8)
    calm = rng.normal(0.0, 0.005, (300, 3))
    storm = rng.normal(0.0, 0.03, (15, 1)) + rng.normal(0.0, 0.003, (15, 3))
    closes = pd.DataFrame(100 * np.exp(np.cumsum(np.vstack([calm, storm]), axis=0)))
    risk = risk_components(compute_features(closes), TradingConfig())["risk"]
    assert risk.iloc[-1] > 90  # vol and co-movement both at their yearly highs
    assert risk.iloc[250:300].mean() < 70


price_paths = st.integers(1, 3).flatmap(
    lambda k: st.lists(
        st.lists(st.floats(-0.25, 0.25), min_size=k, max_size=k), min_size=70, max_size=160
    )
)


@settings(max_examples=60, deadline=None)
@given(steps=price_paths, start=st.floats(0.01, 10_000))
def test_regime_and_risk_bounded_on_any_positive_path(steps, start):
    log_returns = np.array(steps)
    closes = pd.DataFrame(start * np.exp(np.cumsum(log_returns, axis=0)))
    cfg = TradingConfig(assets=tuple(f"S{i}" for i in range(closes.shape[1])), lookback_days=61)
    closes.columns = list(cfg.assets)
    feats = compute_features(closes)
    regime = regime_scores(feats).iloc[60:]
    risk = risk_components(feats, cfg)["risk"].iloc[60:]
    assert regime.notna().all() and risk.notna().all()
    assert ((regime >= -1) & (regime <= 1)).all()
    assert ((risk >= 0) & (risk <= 100)).all()
