"""The composite score that ranks assets, for every date at once.

Per asset and date, from the squashed trend components of :mod:`.regime` (each in
-1..+1, volatility-scaled, so assets of different volatility compare fairly):

- risk-adjusted momentum ``ram = tanh(mean(z_5, z_20, z_60) / k)``: the average of the 5-, 20-
  and 60-session returns each divided by the asset's volatility scaled to its horizon
  (``volatility x sqrt(N)``); the regime's ``momentum`` component;
- price momentum versus moving averages ``pm = 0.6 sma20 + 0.4 sma50``: the regime's SMA
  components in the design document's 0.3 : 0.2 proportion;
- ``base = momentum_weight x ram + price_momentum_weight x pm`` (weights from the config; they sum
  to 1, so ``base`` is in -1..+1);
- trend consistency bonus: ``score = 1.5 x base`` when the 5-, 20- and 60-session returns are all
  strictly positive or all strictly negative, else ``score = base``. The bonus scales the score
  away from 0 in both directions: a consistent uptrend ranks higher, a consistent downtrend
  lower. Scores are therefore in -1.5..+1.5.

Only assets with ``score > 0`` receive money (see :mod:`.decision`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from allocator.strategy.config import TradingConfig
from allocator.strategy.features import RETURN_HORIZONS
from allocator.strategy.regime import REGIME_WEIGHTS, trend_components

TREND_CONSISTENCY_BONUS = 1.5
#: Weights of the SMA-20 and SMA-50 components inside price momentum (the design's 0.3 : 0.2).
_SMA_TOTAL = REGIME_WEIGHTS["sma20"] + REGIME_WEIGHTS["sma50"]
PRICE_MOMENTUM_WEIGHTS: dict[str, float] = {
    "sma20": REGIME_WEIGHTS["sma20"] / _SMA_TOTAL,
    "sma50": REGIME_WEIGHTS["sma50"] / _SMA_TOTAL,
}


def trend_consistent(features: pd.DataFrame) -> pd.DataFrame:
    """True where the returns of every horizon (5, 20, 60 sessions) share a strict sign."""
    signs = [np.sign(features[f"returns_{n}d"].to_numpy()) for n in RETURN_HORIZONS]
    same = signs[0] != 0
    for previous, current in zip(signs, signs[1:], strict=False):
        same = same & (previous == current)
    vol = features["volatility"]
    return pd.DataFrame(same, index=vol.index, columns=vol.columns)


def score_components(features: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``momentum`` (ram), ``price_momentum`` (pm) and ``trend_consistent`` per date and asset."""
    comps = trend_components(features)
    pm = PRICE_MOMENTUM_WEIGHTS["sma20"] * comps["sma20"]
    pm = pm + PRICE_MOMENTUM_WEIGHTS["sma50"] * comps["sma50"]
    return {
        "momentum": comps["momentum"],
        "price_momentum": pm,
        "trend_consistent": trend_consistent(features),
    }


def composite_score(momentum, price_momentum, consistent, config: TradingConfig):
    """``(momentum_weight x ram + price_momentum_weight x pm) x (1.5 if consistent else 1)``.

    The one definition of the score, for one asset at one close (floats and a bool) or for every
    date and asset at once (frames or arrays of the same shape).
    """
    base = config.momentum_weight * momentum
    base = base + config.price_momentum_weight * price_momentum
    if isinstance(consistent, bool):  # one asset at one close: plain floats, no array
        return base * (TREND_CONSISTENCY_BONUS if consistent else 1.0)
    return base * np.where(consistent, TREND_CONSISTENCY_BONUS, 1.0)


def asset_scores(features: pd.DataFrame, config: TradingConfig) -> pd.DataFrame:
    """The composite score of every asset on every date (formula in the module doc)."""
    c = score_components(features)
    return composite_score(c["momentum"], c["price_momentum"], c["trend_consistent"], config)


def rank_symbols(scores: Mapping[str, float]) -> list[str]:
    """Symbols by score, highest first; equal scores in alphabetical order (deterministic)."""
    return sorted(scores, key=lambda symbol: (-scores[symbol], symbol))
