"""The market risk score in 0..100, for every date at once.

``risk = 100 x (0.7 x volatility_component + 0.3 x comovement_component)`` (seed: volatility 70 %,
correlation/diversity 30 %; higher = riskier). Both components are in 0..1 and use their whole
range on real history because each is the *trailing percentile* of a raw measure within the
lookback window (DESIGN, "Risk score 0-100"):

- raw volatility ``v[t]``: the mean over assets of the 20-session daily volatility (see
  :mod:`.features`);
- raw co-movement ``c[t]``: the mean over all asset pairs of the Pearson correlation of daily
  returns over the 20 sessions ending at ``t`` (high = the assets move together = little
  diversification). With one asset there is no pair: the co-movement component is then taken
  equal to the volatility component, so risk is the volatility percentile alone.
- component ``p[t]`` of a raw series ``x``: the mid-rank percentile of ``x[t]`` among the
  ``K = lookback_days - 20`` values ``x[t-K+1..t]``::

      p[t] = (#{s: x[s] < x[t]} + (#{s: x[s] = x[t]} - 1) / 2) / (K - 1)

  0 at the lowest value of the window, 1 at the highest, 0.5 for a constant series.

What ``lookback_days`` (``L``) drives: the percentile window. Each raw value needs 21 closes, so
the risk at ``t`` reads exactly the ``L`` closes ending at ``t`` — which is also the minimum
history the signal requires (:func:`required_history`). Risk is therefore relative: it says how
stressed the market is compared with the trailing ``L`` sessions (about a year by default).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from allocator.strategy.config import TradingConfig
from allocator.strategy.features import VOLATILITY_WINDOW
from allocator.strategy.regime import column_mean

VOLATILITY_WEIGHT = 0.7
COMOVEMENT_WEIGHT = 0.3
#: Sessions of daily returns over which pairwise correlations are measured.
COMOVEMENT_WINDOW = VOLATILITY_WINDOW
#: The risk bands of :func:`risk_band`, lowest first.
RISK_BANDS = ("low", "medium", "high")

RISK_COLUMNS = (
    "volatility_raw",
    "comovement_raw",
    "volatility_component",
    "comovement_component",
    "risk",
)


def percentile_window(config: TradingConfig) -> int:
    """``K = lookback_days - 20``: how many raw values each percentile ranks against."""
    return config.lookback_days - VOLATILITY_WINDOW


def required_history(config: TradingConfig) -> int:
    """Closes per asset the signal reads, ending with the last bar before the trade date.

    ``lookback_days``: the percentile window plus the 20 returns behind its first value. It is at
    least 61 (config validation), which also covers the 60-session return and the SMA-50.
    """
    return config.lookback_days


def trailing_percentile(x: np.ndarray, window: int) -> np.ndarray:
    """Mid-rank percentile of ``x[t]`` among ``x[t-window+1..t]`` (formula in the module doc).

    NaN until ``window`` values exist, and wherever the window holds a NaN. Counts are integers,
    so a value does not depend on anything outside its window.
    """
    out = np.full(x.shape, np.nan)
    if x.shape[0] < window or window < 2:
        return out
    win = sliding_window_view(x, window)
    current = win[:, -1:]
    less = (win < current).sum(axis=1)
    equal = (win == current).sum(axis=1)
    p = (less + 0.5 * (equal - 1)) / (window - 1)
    p[np.isnan(win).any(axis=1)] = np.nan
    out[window - 1 :] = p
    return out


def mean_pairwise_correlation(returns: np.ndarray, window: int = COMOVEMENT_WINDOW) -> np.ndarray:
    """Mean over all column pairs of the trailing correlation of ``returns`` (dates x assets).

    All NaN with fewer than two columns. Each pair's correlation is
    :func:`~allocator.strategy.features.trailing_corr`, bit for bit: the same operations in the
    same order, but what depends on one column only (its window means, deviations and sum of
    squares) is computed once per column instead of once per pair, and the pairs sharing a first
    column are done together, a block of rows at a time. The pairs are summed in the order
    ``(0, 1), (0, 2), ..., (1, 2), ...``.
    """
    n_rows, n_assets = returns.shape
    out = np.full(n_rows, np.nan)
    if n_assets < 2 or n_rows < window:
        return out
    pairs = n_assets * (n_assets - 1) // 2
    by_asset = np.ascontiguousarray(returns.T)  # one contiguous row per asset
    for start in range(window - 1, n_rows, CORRELATION_BLOCK):
        stop = min(start + CORRELATION_BLOCK, n_rows)
        out[start:stop] = _pair_sum(by_asset, window, start, stop) / pairs
    return out


#: Sessions whose pair correlations are computed together (bounds the memory used).
CORRELATION_BLOCK = 1024


def _pair_sum(by_asset: np.ndarray, window: int, start: int, stop: int) -> np.ndarray:
    """Sum over the asset pairs of the trailing correlations at sessions ``start..stop-1``
    (``by_asset``: assets x sessions)."""
    total = by_asset[:, start:stop].copy()  # the window sum, in trailing_sum's order
    for k in range(1, window):
        total = total + by_asset[:, start - k : stop - k]
    mean = total / window
    # deviations[k][:, t]: each asset's return k sessions before t minus its window mean at t
    deviations = [by_asset[:, start - k : stop - k] - mean for k in range(window)]
    squares = deviations[0] * deviations[0]
    for d in deviations[1:]:
        squares = squares + d * d
    roots = np.sqrt(squares)
    pair_sum = None
    for i in range(by_asset.shape[0] - 1):
        products = deviations[0][i] * deviations[0][i + 1 :]
        term = np.empty_like(products)
        for d in deviations[1:]:
            np.multiply(d[i], d[i + 1 :], out=term)
            np.add(products, term, out=products)
        denom = roots[i] * roots[i + 1 :]
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.where(denom > 0, products / denom, 0.0)
        rho = np.where(np.isnan(products + denom), np.nan, np.clip(rho, -1.0, 1.0))
        for row in rho:
            pair_sum = row if pair_sum is None else pair_sum + row
    return pair_sum


def risk_components(features: pd.DataFrame, config: TradingConfig) -> pd.DataFrame:
    """Raw measures, components and the risk score per date (columns :data:`RISK_COLUMNS`).

    ``features`` is the output of :func:`.compute_features`; ``risk`` is NaN
    on dates without a full lookback window for every asset.
    """
    vol = features["volatility"].to_numpy()
    returns = features["returns_1d"].to_numpy()
    k = percentile_window(config)
    vol_raw = column_mean(vol)
    vol_comp = trailing_percentile(vol_raw, k)
    if vol.shape[1] >= 2:
        co_raw = mean_pairwise_correlation(returns)
        co_comp = trailing_percentile(co_raw, k)
    else:
        co_raw = np.full(vol.shape[0], np.nan)
        co_comp = vol_comp
    risk = 100.0 * (VOLATILITY_WEIGHT * vol_comp + COMOVEMENT_WEIGHT * co_comp)
    return pd.DataFrame(
        {
            "volatility_raw": vol_raw,
            "comovement_raw": co_raw,
            "volatility_component": vol_comp,
            "comovement_component": co_comp,
            "risk": np.clip(risk, 0.0, 100.0),
        },
        index=features.index,
    )


def risk_band(risk: float, config: TradingConfig) -> str:
    """``high`` above ``risk_high_threshold``, ``medium`` from ``risk_medium_threshold``, else low.

    The bands of the bullish allocation percentage.
    """
    if risk > config.risk_high_threshold:
        return "high"
    if risk >= config.risk_medium_threshold:
        return "medium"
    return "low"
