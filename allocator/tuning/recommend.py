"""Recommendations, as the design document gives them, and the candidate changes they propose.

Recommendations (each with its reason, from the scored trades of the last months):

- **be more aggressive** — the win rate is above 65 % but fewer than half the signal days
  bought: raise the bullish allocations and ``cash_deploy_rate``;
- **reduce the neutral allocation** — the trades lose in choppy markets (average P&L below 0,
  or a win rate below 50 %, over at least 3 trades): lower ``allocation_neutral``;
- **tighten the risk thresholds** — the portfolio's drawdown over the months exceeded
  ``max_drawdown_tolerance``: lower both risk thresholds (high risk comes sooner) and raise
  ``sell_percentage``.

Candidates: every tunable parameter one step up and one step down (both directions, always),
plus each recommendation's joint change. Every parameter has a safe range (:data:`SAFE_RANGES`)
and a most it may move in one month (:data:`STEP_LIMITS`); a candidate outside them, or one that
makes an invalid config, is dropped with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from allocator.exceptions import ConfigValidationError
from allocator.strategy.config import TradingConfig

#: (low, high) a tuned parameter may take.
SAFE_RANGES: dict[str, tuple[float, float]] = {
    "allocation_low_risk": (0.3, 1.0),
    "allocation_medium_risk": (0.2, 1.0),
    "allocation_high_risk": (0.1, 0.8),
    "allocation_neutral": (0.0, 0.6),
    "risk_high_threshold": (50.0, 90.0),
    "risk_medium_threshold": (20.0, 65.0),
    "cash_deploy_rate": (0.0, 0.25),
    "sell_percentage": (0.3, 0.9),
}
#: The one step a candidate moves a parameter by, and the most it may move in one month.
STEPS: dict[str, float] = {
    "allocation_low_risk": 0.05,
    "allocation_medium_risk": 0.05,
    "allocation_high_risk": 0.05,
    "allocation_neutral": 0.05,
    "risk_high_threshold": 5.0,
    "risk_medium_threshold": 5.0,
    "cash_deploy_rate": 0.01,
    "sell_percentage": 0.1,
}
STEP_LIMITS: dict[str, float] = {
    "allocation_low_risk": 0.1,
    "allocation_medium_risk": 0.1,
    "allocation_high_risk": 0.1,
    "allocation_neutral": 0.1,
    "risk_high_threshold": 5.0,
    "risk_medium_threshold": 5.0,
    "cash_deploy_rate": 0.02,
    "sell_percentage": 0.1,
}
TUNABLE = tuple(SAFE_RANGES)
AGGRESSIVE, NEUTRAL_DOWN, TIGHTEN = (
    "be more aggressive",
    "reduce neutral allocation",
    ("tighten risk thresholds"),
)


@dataclass(frozen=True)
class Recommendation:
    name: str
    reason: str
    changes: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """A config change to replay: what it changes and why it is proposed."""

    name: str
    changes: dict[str, Any]
    origin: str


def recommendations(
    scored: pd.DataFrame,
    by_condition: pd.DataFrame,
    buy_share: float,
    drawdown: float,
    config: TradingConfig,
) -> list[Recommendation]:
    """The design document's three rules (module doc) applied to the months' results."""
    out = []
    win_rate = float((scored["pnl"] > 0).mean()) if len(scored) else float("nan")
    if win_rate > 0.65 and buy_share < 0.5:
        changes = {
            "allocation_low_risk": 0.1,
            "allocation_medium_risk": 0.1,
            "allocation_high_risk": 0.1,
            "cash_deploy_rate": 0.01,
        }
        out.append(
            Recommendation(
                AGGRESSIVE,
                f"win rate {win_rate:.0%} > 65 % but only {buy_share:.0%} of signal days bought",
                changes,
            )
        )
    choppy = by_condition.loc["choppy"] if "choppy" in by_condition.index else None
    if choppy is not None and choppy["n_trades"] >= 3:
        losing = choppy["avg_pnl"] < 0 or choppy["win_rate"] < 0.5
        if losing:
            out.append(
                Recommendation(
                    NEUTRAL_DOWN,
                    f"{int(choppy['n_trades'])} trades in choppy markets: win rate "
                    f"{choppy['win_rate']:.0%}, average P&L {choppy['avg_pnl']:,.2f}",
                    {"allocation_neutral": -0.1},
                )
            )
    tolerance = config.max_drawdown_tolerance / 100.0
    if abs(drawdown) > tolerance:
        out.append(
            Recommendation(
                TIGHTEN,
                f"drawdown {abs(drawdown):.1%} exceeded max_drawdown_tolerance {tolerance:.0%}",
                {
                    "risk_high_threshold": -5.0,
                    "risk_medium_threshold": -5.0,
                    "sell_percentage": 0.1,
                },
            )
        )
    return out


def candidates(
    config: TradingConfig, recs: list[Recommendation]
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Every valid candidate (module doc), and the dropped ones with the reason."""
    proposed = [
        Candidate(
            f"{name} {sign}{STEPS[name]:g}", {name: sign_value * STEPS[name]}, "both directions"
        )
        for name in TUNABLE
        for sign, sign_value in (("+", 1.0), ("-", -1.0))
    ]
    proposed += [Candidate(r.name, dict(r.changes), f"recommended: {r.reason}") for r in recs]
    kept, dropped = [], []
    for candidate in proposed:
        absolute, problem = apply_changes(config, candidate.changes)
        if problem:
            dropped.append((candidate.name, problem))
        else:
            kept.append(Candidate(candidate.name, absolute, candidate.origin))
    return kept, dropped


def apply_changes(
    config: TradingConfig, deltas: Mapping[str, float]
) -> tuple[dict[str, float], str | None]:
    """The absolute new values of ``deltas`` on ``config``, or why they are not allowed."""
    values = {}
    for name, delta in deltas.items():
        old = getattr(config, name)
        new = round(old + delta, 6)
        low, high = SAFE_RANGES[name]
        if abs(new - old) > STEP_LIMITS[name] + 1e-9:
            return {}, f"{name} would move {new - old:+g}, more than its monthly limit"
        if not low <= new <= high:
            return {}, f"{name} {new:g} is outside its safe range {low:g}..{high:g}"
        values[name] = new
    try:
        config.with_changes(**values)
    except ConfigValidationError as exc:
        return {}, str(exc)
    return values, None


def within_bounds(old: TradingConfig, new: TradingConfig) -> bool:
    """Whether ``new`` differs from ``old`` only in tunable parameters, within range and step."""
    for name, old_value in old.to_dict().items():
        new_value = getattr(new, name)
        if isinstance(old_value, list):
            new_value = list(new_value)
        if new_value == old_value:
            continue
        if name not in TUNABLE:
            return False
        low, high = SAFE_RANGES[name]
        if not low <= new_value <= high or abs(new_value - old_value) > STEP_LIMITS[name] + 1e-9:
            return False
    return True
