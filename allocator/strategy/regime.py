"""The market regime score in -1..+1 and its label, for every date at once.

The design document's recipe is ``regime = momentum x 0.5 + sma20 x 0.3 + sma50 x 0.2`` with
``momentum = avg(5d, 20d, 60d returns)``, aggregated across assets. Taken literally (raw decimal
returns) the score sits near +-0.05 and never reaches the +-0.3 thresholds, so each component is
first made scale-free and then squashed into -1..+1 (DESIGN, "Regime score"):

1. Volatility-scaled trend statistics, per asset, with ``s = max(volatility, VOLATILITY_FLOOR)``
   (the 20-session daily standard deviation; the floor keeps a flat series finite):

   - ``z_N = returns_Nd / (s * sqrt(N))`` for N in 5, 20, 60: the N-session return in units of its
     own standard deviation under a driftless random walk.
   - ``z_sma_n = sma{n}_distance / (s * sqrt(h_n))`` for n in 20, 50, with
     ``h_n = (n - 1)(2n - 1) / (6n)`` (6.175 for n = 20, 16.17 for n = 50): under a random walk
     ``price - SMA_n`` is the mean of the last ``n`` partial sums of returns, whose variance is
     ``h_n * s**2``; so ``z_sma_n`` is also a unit-variance statistic.

2. Components in -1..+1, squashed with one constant ``k = TREND_SCALE``:

   - ``momentum = tanh(mean(z_5, z_20, z_60) / k)``
   - ``sma20 = tanh(z_sma_20 / k)``, ``sma50 = tanh(z_sma_50 / k)``

3. Per asset ``regime_i = 0.5 momentum + 0.3 sma20 + 0.2 sma50`` (weights sum to 1, so within
   -1..+1), and the market regime is the equally weighted mean of ``regime_i`` over the assets.

``k`` was calibrated once on SPY, QQQ and DIA over 2005-2024 (see :mod:`.calibration`):
with ``k = 1`` a 1-sigma move gives a component of tanh(1) = 0.76. The value at date ``t`` uses
the 61 closes ending at ``t`` only.

Labels against the config: ``regime < regime_bearish_threshold`` is ``bearish``,
``regime > regime_bullish_threshold`` is ``bullish``, anything between (inclusive) ``neutral``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from allocator.strategy.config import TradingConfig
from allocator.strategy.features import RETURN_HORIZONS, SMA_WINDOWS

#: The design document's weights of the three regime components.
REGIME_WEIGHTS: dict[str, float] = {"momentum": 0.5, "sma20": 0.3, "sma50": 0.2}
#: Divisor of the volatility-scaled statistics before tanh (calibrated; see the module doc).
TREND_SCALE = 1.0
#: Least daily volatility used for scaling (0.01 % a day): keeps a flat price series finite.
VOLATILITY_FLOOR = 1e-4

BEARISH, NEUTRAL, BULLISH = "bearish", "neutral", "bullish"


def sma_horizon(n: int) -> float:
    """``h_n = (n-1)(2n-1)/(6n)``: variance of ``price - SMA_n`` in units of daily variance."""
    return (n - 1) * (2 * n - 1) / (6 * n)


def trend_components(features: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The squashed components ``momentum``, ``sma20``, ``sma50`` (dates x symbols, in -1..+1).

    ``features`` is the output of :func:`.compute_features`.
    """
    vol = features["volatility"]
    scale = np.maximum(vol.to_numpy(), VOLATILITY_FLOOR)
    z_sum = None
    for n in RETURN_HORIZONS:
        z = features[f"returns_{n}d"].to_numpy() / (scale * math.sqrt(n))
        z_sum = z if z_sum is None else z_sum + z
    mean_z = z_sum / len(RETURN_HORIZONS)
    out = {"momentum": np.tanh(mean_z / TREND_SCALE)}
    for n in SMA_WINDOWS:
        z = features[f"sma{n}_distance"].to_numpy() / (scale * math.sqrt(sma_horizon(n)))
        out[f"sma{n}"] = np.tanh(z / TREND_SCALE)
    return {name: pd.DataFrame(v, index=vol.index, columns=vol.columns) for name, v in out.items()}


def asset_regimes(features: pd.DataFrame) -> pd.DataFrame:
    """``0.5 momentum + 0.3 sma20 + 0.2 sma50`` per asset and date (dates x symbols)."""
    comps = trend_components(features)
    total = None
    for name, weight in REGIME_WEIGHTS.items():
        term = weight * comps[name]
        total = term if total is None else total + term
    return total


def regime_scores(features: pd.DataFrame) -> pd.Series:
    """The market regime per date: the mean of :func:`asset_regimes` over the assets.

    NaN on a date where any asset's regime is undefined (short history or a missing close).
    """
    per_asset = asset_regimes(features)
    return pd.Series(column_mean(per_asset.to_numpy()), index=per_asset.index, name="regime")


def column_mean(a: np.ndarray) -> np.ndarray:
    """Row-wise mean of a 2-D array, adding columns left to right (fixed order; NaN propagates)."""
    acc = a[:, 0].copy()
    for j in range(1, a.shape[1]):
        acc = acc + a[:, j]
    return acc / a.shape[1]


def regime_label(regime: float, config: TradingConfig) -> str:
    """``bearish`` below the bearish threshold, ``bullish`` above the bullish one, else neutral."""
    if regime < config.regime_bearish_threshold:
        return BEARISH
    if regime > config.regime_bullish_threshold:
        return BULLISH
    return NEUTRAL
