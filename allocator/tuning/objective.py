"""The objective a tuned config must improve, set by the design document's two targets.

``J = Sharpe − (min_sharpe_target / tolerance) × max(0, |max drawdown| − tolerance)``, where
``tolerance = max_drawdown_tolerance / 100``: the Sharpe ratio of the replay, less a penalty for
every point of drawdown beyond the tolerance, scaled so that exceeding the tolerance by the
tolerance itself costs one target Sharpe. A candidate is accepted only when its ``J`` beats the
current config's ``J`` on the same replay by more than :data:`MIN_IMPROVEMENT` (noise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from allocator.strategy.config import TradingConfig

MIN_IMPROVEMENT = 0.01


def objective(metrics: Mapping[str, float], config: TradingConfig) -> float:
    """``J`` of one replay (module doc); NaN Sharpe (no variance) counts as 0."""
    tolerance = config.max_drawdown_tolerance / 100.0
    sharpe = float(metrics["sharpe"])
    sharpe = 0.0 if math.isnan(sharpe) else sharpe
    excess = max(0.0, abs(float(metrics["max_drawdown"])) - tolerance)
    return sharpe - config.min_sharpe_target / tolerance * excess


def improves(candidate: float, current: float) -> bool:
    """Whether a candidate's ``J`` beats the current one by more than :data:`MIN_IMPROVEMENT`."""
    return candidate > current + MIN_IMPROVEMENT
