"""Features: hand-worked values, windows, and bit-identical numbers on truncated history."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.strategy.features import (
    FEATURE_NAMES,
    MIN_FEATURE_HISTORY,
    check_closes,
    closes_frame,
    compute_features,
    trailing_corr,
    trailing_std,
    trailing_sum,
)


def sessions(n: int) -> list[dt.date]:
    return list(pd.bdate_range("2020-01-01", periods=n).date)


def frame(values: dict[str, list[float]]) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    return pd.DataFrame(values, index=sessions(n), dtype="float64")


def test_linear_series_by_hand():
    # close[t] = 100 + t for t = 0..69
    closes = frame({"AAA": [100.0 + t for t in range(70)]})
    f = compute_features(closes)["returns_5d"]["AAA"]
    # r5 at t=5: 105 / 100 - 1 = 0.05; at t=69: 169 / 164 - 1
    assert f.iloc[5] == pytest.approx(0.05, abs=1e-15)
    assert f.iloc[69] == pytest.approx(169 / 164 - 1, abs=1e-15)
    feats = compute_features(closes)
    # r20 at t=20: 120 / 100 - 1 = 0.2; r60 at t=60: 160 / 100 - 1 = 0.6
    assert feats[("returns_20d", "AAA")].iloc[20] == pytest.approx(0.2, abs=1e-15)
    assert feats[("returns_60d", "AAA")].iloc[60] == pytest.approx(0.6, abs=1e-15)
    # SMA-20 at t=19 = mean(100..119) = 109.5; distance = 119 / 109.5 - 1 = 0.0867580
    assert feats[("sma_20", "AAA")].iloc[19] == pytest.approx(109.5, abs=1e-12)
    assert feats[("sma20_distance", "AAA")].iloc[19] == pytest.approx(0.0867580, abs=1e-7)
    # SMA-50 at t=49 = mean(100..149) = 124.5; distance = 149 / 124.5 - 1 = 0.1967871
    assert feats[("sma_50", "AAA")].iloc[49] == pytest.approx(124.5, abs=1e-12)
    assert feats[("sma50_distance", "AAA")].iloc[49] == pytest.approx(0.1967871, abs=1e-7)


def test_windows_are_nan_until_full():
    closes = frame({"AAA": [100.0 + t for t in range(70)]})
    feats = compute_features(closes)
    first_valid = {
        "returns_1d": 1,
        "returns_5d": 5,
        "returns_20d": 20,
        "returns_60d": 60,
        "volatility": 20,  # 20 daily returns need 21 closes
        "sma_20": 19,
        "sma_50": 49,
        "sma20_distance": 19,
        "sma50_distance": 49,
        "close": 0,
    }
    assert set(first_valid) == set(FEATURE_NAMES)
    for name, first in first_valid.items():
        column = feats[(name, "AAA")]
        assert column.iloc[:first].isna().all(), name
        assert column.iloc[first:].notna().all(), name
    assert MIN_FEATURE_HISTORY == 61


def test_volatility_by_hand():
    # daily returns alternate +1 % and -1 %: over 20 of them the mean is 0 and the sample
    # standard deviation is sqrt(20 * 0.01**2 / 19) = 0.0102598
    price, prices = 100.0, [100.0]
    for t in range(25):
        price *= 1.01 if t % 2 == 0 else 0.99
        prices.append(price)
    vol = compute_features(frame({"AAA": prices}))[("volatility", "AAA")]
    assert vol.iloc[20] == pytest.approx(0.0102598, abs=1e-7)
    assert vol.iloc[:20].isna().all()


def test_agrees_with_pandas_rolling():
    rng = np.random.default_rng(7)
    closes = frame(
        {s: list(50 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))) for s in ("AAA", "BBB")}
    )
    feats = compute_features(closes)
    for s in ("AAA", "BBB"):
        c = closes[s]
        for n in (5, 20, 60):
            np.testing.assert_allclose(feats[(f"returns_{n}d", s)], c.pct_change(n), rtol=1e-12)
        daily = c.pct_change()
        np.testing.assert_allclose(feats[("volatility", s)], daily.rolling(20).std(), rtol=1e-9)
        np.testing.assert_allclose(feats[("sma_50", s)], c.rolling(50).mean(), rtol=1e-12)


def test_trailing_helpers_by_hand():
    a = np.array([[1.0], [2.0], [3.0], [4.0]])
    # sums of 3: NaN, NaN, 1+2+3 = 6, 2+3+4 = 9
    np.testing.assert_array_equal(trailing_sum(a, 3)[:, 0], [np.nan, np.nan, 6.0, 9.0])
    # std of (1, 2, 3) with ddof=1 is 1
    assert trailing_std(a, 3)[2, 0] == pytest.approx(1.0)
    x = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    assert trailing_corr(x, 2 * x + 1, 5)[-1] == pytest.approx(1.0)
    assert trailing_corr(x, -x, 5)[-1] == pytest.approx(-1.0)
    # a series that does not move has no measurable correlation: reported as 0
    assert trailing_corr(x, np.full(5, 3.0), 5)[-1] == 0.0


def test_closes_frame_unions_dates():
    bars = {
        "AAA": pd.DataFrame({"date": ["2024-01-02", "2024-01-03"], "close": [1.0, 2.0]}),
        "BBB": pd.DataFrame({"date": ["2024-01-03", "2024-01-04"], "close": [3.0, 4.0]}),
    }
    closes = closes_frame(bars)
    assert list(closes.index) == [dt.date(2024, 1, d) for d in (2, 3, 4)]
    assert list(closes.columns) == ["AAA", "BBB"]
    assert math.isnan(closes.loc[dt.date(2024, 1, 2), "BBB"])
    assert closes.loc[dt.date(2024, 1, 4), "BBB"] == 4.0


def test_bad_closes_are_named():
    closes = frame({"AAA": [1.0, 2.0, 0.0]})
    with pytest.raises(ValueError, match="AAA close 0.0"):
        check_closes(closes)
    with pytest.raises(ValueError, match="not ascending"):
        check_closes(closes.iloc[::-1])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(80, 400),
    keep=st.integers(MIN_FEATURE_HISTORY, 400),
    n_assets=st.integers(1, 4),
)
def test_truncated_history_gives_bit_identical_last_row(seed, n, keep, n_assets):
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0003, rng.uniform(0.002, 0.05), (n, n_assets))
    closes = pd.DataFrame(
        100 * np.exp(np.cumsum(returns, axis=0)),
        index=sessions(n),
        columns=[f"S{i}" for i in range(n_assets)],
    )
    keep = min(keep, n)
    full = compute_features(closes).iloc[-1].to_numpy()
    short = compute_features(closes.iloc[-keep:]).iloc[-1].to_numpy()
    assert np.array_equal(full, short, equal_nan=False)
