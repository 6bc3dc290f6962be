"""How often each regime and risk band occurs over a history: the calibration check.

The normalisation constants of :mod:`.regime` and :mod:`.risk` were chosen so
that, with the default config on SPY, QQQ and DIA over 2005-2024, every regime holds on at least
10 % of sessions, the market reads bearish on most sessions of October 2008 and March 2020, and
every risk band holds on at least 5 % of sessions (:data:`TARGETS`). This module measures those
distributions for any closes frame and config, so the claim can be rechecked on any data::

    python -m allocator.strategy.calibration --csv-dir /work/shared/data/market \\
        --start 2005-01-03 --end 2024-12-31

Shares are over *trade dates*: the session ``D`` counts with the signal it would get, computed
from the bars dated before ``D`` (the state of the previous session), exactly as the daily job
and the backtest see it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from allocator.exceptions import MissingBarsError
from allocator.strategy.config import TradingConfig
from allocator.strategy.market_state import compute_signal_frames
from allocator.strategy.regime import BEARISH, BULLISH, NEUTRAL, regime_label
from allocator.strategy.risk import RISK_BANDS, risk_band

REGIMES = (BEARISH, NEUTRAL, BULLISH)
#: Least share of trade dates for each regime, each risk band, and bearish in each stress month.
TARGETS = {"regime": 0.10, "risk_band": 0.05, "stress_bearish": 0.5}
STRESS_MONTHS = ("2008-10", "2020-03")


def signal_series(
    closes: pd.DataFrame, config: TradingConfig, start: dt.date, end: dt.date
) -> pd.DataFrame:
    """Regime and risk of the signal for every trade date in [start, end] (columns ``regime``,
    ``risk``, ``regime_label``, ``risk_band``; index: trade dates as :class:`datetime.date`).

    The trade dates are the rows of ``closes`` in the range; each gets the values of the row
    before it. Raises :class:`MissingBarsError` if any of them lacks a full lookback window.
    """
    frames = compute_signal_frames(closes, config)
    dates = pd.Index(pd.DatetimeIndex(pd.to_datetime(closes.index)).date)
    table = pd.DataFrame(
        {"regime": frames.regime.to_numpy(), "risk": frames.risk["risk"].to_numpy()},
        index=dates,
    ).shift(1)
    table = table[(table.index >= start) & (table.index <= end)]
    incomplete = table.index[table.isna().any(axis=1)]
    if len(table) == 0 or len(incomplete):
        first = incomplete[0] if len(incomplete) else start
        raise MissingBarsError(
            {s: [str(first)] for s in config.assets},
            f"the signal for {first} lacks {config.lookback_days} closes (lookback_days) of every "
            f"asset before it: give closes from earlier dates",
        )
    table["regime_label"] = [regime_label(r, config) for r in table["regime"].tolist()]
    table["risk_band"] = [risk_band(r, config) for r in table["risk"].tolist()]
    return table


def distributions(
    closes: pd.DataFrame,
    config: TradingConfig,
    start: dt.date,
    end: dt.date,
    months: Sequence[str] = STRESS_MONTHS,
) -> dict[str, object]:
    """Shares of trade dates in [start, end] per regime and risk band, and bearish per month.

    Returns ``{"sessions": n, "regime": {label: share}, "risk_band": {band: share},
    "bearish_by_month": {"YYYY-MM": share}, "risk_mean_by_regime": {label: mean risk}}``;
    shares are fractions in 0..1. ``months`` outside the range are left out.
    """
    table = signal_series(closes, config, start, end)
    month_of = np.array([d.strftime("%Y-%m") for d in table.index])
    labels = table["regime_label"].to_numpy()
    by_month = {
        m: float(np.mean(labels[month_of == m] == BEARISH)) for m in months if (month_of == m).any()
    }
    return {
        "sessions": len(table),
        "regime": {r: float(np.mean(labels == r)) for r in REGIMES},
        "risk_band": {b: float(np.mean(table["risk_band"].to_numpy() == b)) for b in RISK_BANDS},
        "bearish_by_month": by_month,
        "risk_mean_by_regime": {
            r: float(table["risk"][labels == r].mean()) if (labels == r).any() else float("nan")
            for r in REGIMES
        },
    }


def target_failures(result: dict[str, object]) -> list[str]:
    """The calibration targets (:data:`TARGETS`) that ``result`` misses, as sentences."""
    failures = []
    for name, share in result["regime"].items():
        if share < TARGETS["regime"]:
            failures.append(f"regime {name} on {share:.1%} of sessions (< {TARGETS['regime']:.0%})")
    for name, share in result["risk_band"].items():
        if share < TARGETS["risk_band"]:
            failures.append(
                f"risk band {name} on {share:.1%} of sessions (< {TARGETS['risk_band']:.0%})"
            )
    for month, share in result["bearish_by_month"].items():
        if share <= TARGETS["stress_bearish"]:
            failures.append(f"bearish on only {share:.1%} of {month}")
    return failures


def format_table(result: dict[str, object], config: TradingConfig) -> str:
    """The distributions as a plain-text table."""
    bear, bull = config.regime_bearish_threshold, config.regime_bullish_threshold
    lo, hi = config.risk_medium_threshold, config.risk_high_threshold
    rows = [
        ("sessions (trade dates)", f"{result['sessions']}"),
        (f"regime bearish (< {bear:g})", f"{result['regime'][BEARISH]:.1%}"),
        (f"regime neutral ({bear:g}..{bull:g})", f"{result['regime'][NEUTRAL]:.1%}"),
        (f"regime bullish (> {bull:g})", f"{result['regime'][BULLISH]:.1%}"),
        (f"risk low (< {lo:g})", f"{result['risk_band']['low']:.1%}"),
        (f"risk medium ({lo:g}..{hi:g})", f"{result['risk_band']['medium']:.1%}"),
        (f"risk high (> {hi:g})", f"{result['risk_band']['high']:.1%}"),
    ]
    rows += [(f"bearish in {m}", f"{s:.1%}") for m, s in result["bearish_by_month"].items()]
    rows += [(f"mean risk when {r}", f"{v:.1f}") for r, v in result["risk_mean_by_regime"].items()]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>7}" for name, value in rows)
