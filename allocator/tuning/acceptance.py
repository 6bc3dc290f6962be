"""How the tuner accepts a candidate: a design fixed before the walk-forward that judges it.

The design document's trade scores and recommendations propose the candidates
(:mod:`.recommend`); this module decides which, if any, is accepted, from each candidate's replay
beside the current config's over the same sessions.

A replay is a :class:`Curve`: the values at each close and the deposits of each session. The
objective ``J`` (:mod:`.objective`) is computed on its flow-adjusted returns (the formulas of
:mod:`allocator.portfolio.metrics`, on arrays: the tuner judges thousands of replays).

A :class:`TuningDesign` says

- how far back the replay reaches (``replay_months``; ``None``: as far as history allows) and
  whether it starts from the strategy's own book at that date (``continuing_book``) or from an
  empty one;
- the least history a decision needs (``min_replay_months``);
- the bar a candidate must clear: its ``J`` over the whole replay beats the current config's by
  more than ``margin`` and, with ``subwindow_months``, it also beats it in at least
  ``min_subwindow_share`` of the consecutive sub-windows of that length (counted back from the
  tuning date), so one lucky stretch cannot carry it;
- ``alpha``: with sub-windows, a statistical bar across the candidates tried: the mean of the
  candidate's sub-window ``J`` gains, over its standard error, must exceed the normal quantile
  ``z(1 - alpha / N)`` for ``N`` candidates (Bonferroni: the chance that any of ``N`` candidates
  with no real gain passes stays below ``alpha``);
- ``max_drift_steps``: how many of its steps (:data:`~.recommend.STEPS`) a parameter may drift
  from the preset in all (shrinkage toward the preset), or ``None`` for no cap.

The designs tried, and what walk-forward said of each, are in the README ("Monthly tuning").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from allocator.strategy.config import TradingConfig
from allocator.tuning.objective import objective
from allocator.tuning.recommend import STEPS

PERIODS_PER_YEAR = 252


@dataclass(frozen=True)
class Curve:
    """One replay's sessions (``datetime64[D]``), deposits, values and positions at the close."""

    dates: np.ndarray
    deposits: np.ndarray
    values: np.ndarray
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.dates)


@dataclass(frozen=True)
class TuningDesign:
    """How candidates are replayed and accepted (module doc)."""

    name: str
    replay_months: int | None = 12
    continuing_book: bool = False
    min_replay_months: int = 3
    margin: float = 0.01
    subwindow_months: int | None = None
    min_subwindow_share: float = 0.0
    max_drift_steps: float | None = None
    alpha: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


#: The designs the walk-forward compared (README, "Monthly tuning"). ``legacy`` is the tuner as
#: it was: 12 months from an empty book, best of ~17 by a 0.01 margin.
DESIGNS: dict[str, TuningDesign] = {
    d.name: d
    for d in (
        TuningDesign("legacy"),
        TuningDesign("five_years_empty", replay_months=60, min_replay_months=36),
        TuningDesign(
            "five_years_continuing", replay_months=60, continuing_book=True, min_replay_months=36
        ),
        TuningDesign(
            "five_years_subwindows",
            replay_months=60,
            continuing_book=True,
            min_replay_months=36,
            subwindow_months=12,
            min_subwindow_share=0.8,
        ),
        TuningDesign(
            "five_years_subwindows_capped",
            replay_months=60,
            continuing_book=True,
            min_replay_months=36,
            subwindow_months=12,
            min_subwindow_share=0.8,
            max_drift_steps=2.0,
        ),
        TuningDesign(
            "expanding_subwindows",
            replay_months=None,
            continuing_book=True,
            min_replay_months=36,
            subwindow_months=12,
            min_subwindow_share=0.8,
        ),
        TuningDesign(
            "expanding_empty_subwindows",
            replay_months=None,
            min_replay_months=36,
            subwindow_months=12,
            min_subwindow_share=0.8,
        ),
        TuningDesign(
            "five_years_ttest",
            replay_months=60,
            continuing_book=True,
            min_replay_months=36,
            subwindow_months=12,
            alpha=0.05,
        ),
        TuningDesign(
            "expanding_empty_ttest",
            replay_months=None,
            min_replay_months=36,
            subwindow_months=12,
            alpha=0.05,
        ),
    )
}


#: The design the tune job and the walk-forward use unless told otherwise: of the designs tried,
#: the one with a statistical bar (README, "Monthly tuning"). No design met the walk-forward
#: target, so the tune job proposes and applies only when asked (``APPLY_BY_DEFAULT``).
DEFAULT_DESIGN = "five_years_ttest"
#: Whether the tune job applies an accepted change without ``-p apply True``.
APPLY_BY_DEFAULT = False


def design_named(name: str) -> TuningDesign:
    """The design called ``name`` (one of :data:`DESIGNS`), or a ValueError listing them."""
    if name not in DESIGNS:
        raise ValueError(f"tuning design {name!r} is unknown: use one of {', '.join(DESIGNS)}")
    return DESIGNS[name]


def flow_adjusted_returns(curve: Curve) -> np.ndarray:
    """:func:`~allocator.portfolio.metrics.daily_returns_flow_adjusted` on arrays."""
    before = np.concatenate(([0.0], curve.values[:-1])) + curve.deposits
    out = np.zeros(len(curve))
    invested = before > 0
    out[invested] = curve.values[invested] / before[invested] - 1.0
    return out


def sharpe(returns: np.ndarray) -> float:
    """Annualised Sharpe ratio (risk-free 0): ``mean / std(ddof=1) x sqrt(252)``; NaN under 2
    returns, and NaN when every return is equal (no variance: ``J`` then counts it as 0)."""
    if len(returns) < 2 or returns.max() == returns.min():
        return math.nan
    return float(np.mean(returns) / np.std(returns, ddof=1) * math.sqrt(PERIODS_PER_YEAR))


def max_drawdown(returns: np.ndarray) -> float:
    """The worst fall of the compounded returns from a peak (the start counts as one), ``<= 0``."""
    if len(returns) == 0:
        return 0.0
    wealth = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.concatenate(([1.0], wealth)))[1:]
    return float(np.min(wealth / peak - 1.0))


def curve_metrics(
    curve: Curve, config: TradingConfig, returns: np.ndarray | None = None
) -> dict[str, float]:
    """Sharpe, max drawdown, TWR, exposure and ``J`` of a replay (``returns``: its
    :func:`flow_adjusted_returns`, when already computed)."""
    returns = flow_adjusted_returns(curve) if returns is None else returns
    funded = curve.values > 0
    exposure = (
        float(np.mean(curve.positions[funded] / curve.values[funded])) if funded.any() else math.nan
    )
    row = {
        "sharpe": sharpe(returns),
        "max_drawdown": max_drawdown(returns),
        "twr": float(np.prod(1.0 + returns) - 1.0),
        "exposure": exposure,
    }
    row["objective"] = objective(row, config)
    return row


def subwindow_objectives(
    curve: Curve, config: TradingConfig, months: int, returns: np.ndarray | None = None
) -> list[float]:
    """``J`` of each block of ``months`` calendar months, counted back from the last session
    (the oldest block may be shorter; one under 15 sessions is left out), oldest first."""
    returns = flow_adjusted_returns(curve) if returns is None else returns
    month = curve.dates.astype("datetime64[M]").astype(np.int64)
    block = (month[-1] - month) // months
    bounds = np.flatnonzero(np.diff(block)) + 1  # blocks are contiguous, newest last
    out = []
    for part in np.split(returns, bounds):
        if len(part) >= 15:
            row = {"sharpe": sharpe(part), "max_drawdown": max_drawdown(part)}
            out.append(objective(row, config))
    return out


@dataclass(frozen=True)
class Assessment:
    """One replay's figures (:func:`curve_metrics`) and its sub-window objectives."""

    metrics: dict[str, float]
    subwindows: list[float]


def assess(curve: Curve, config: TradingConfig, design: TuningDesign) -> Assessment:
    """The figures :func:`judge` compares, computed once per replay."""
    returns = flow_adjusted_returns(curve)
    parts = (
        subwindow_objectives(curve, config, design.subwindow_months, returns)
        if design.subwindow_months
        else []
    )
    return Assessment(curve_metrics(curve, config, returns), parts)


@dataclass(frozen=True)
class Verdict:
    """A candidate against the current config: ``J`` gain, sub-windows won, and the outcome."""

    gain: float
    wins: int
    windows: int
    passes: bool


def judge(
    current: Assessment, candidate: Assessment, design: TuningDesign, tried: int = 1
) -> Verdict:
    """Whether ``candidate`` clears the design's bar against ``current`` (module doc);
    ``tried``: how many candidates were replayed (the ``alpha`` bar's ``N``)."""
    gain = candidate.metrics["objective"] - current.metrics["objective"]
    passes = gain > design.margin
    wins = windows = 0
    if design.subwindow_months:
        mine, theirs = candidate.subwindows, current.subwindows
        windows = len(mine)
        wins = sum(a > b for a, b in zip(mine, theirs, strict=True))
        passes = passes and windows > 0 and wins >= design.min_subwindow_share * windows
        if design.alpha is not None:
            gains = np.array(mine) - np.array(theirs)
            passes = passes and t_statistic(gains) > NormalDist().inv_cdf(1 - design.alpha / tried)
    return Verdict(gain, wins, windows, passes)


def t_statistic(gains: np.ndarray) -> float:
    """``mean / (std(ddof=1) / sqrt(n))`` of the sub-window gains; NaN under 3 of them, and
    +inf when they are all equal and positive."""
    if len(gains) < 3:
        return math.nan
    spread = float(np.std(gains, ddof=1))
    mean = float(np.mean(gains))
    if spread == 0.0:
        return math.inf if mean > 0 else math.nan
    return mean / (spread / math.sqrt(len(gains)))


def drift_allowed(preset: TradingConfig, new: TradingConfig, design: TuningDesign) -> str | None:
    """None when every tunable parameter of ``new`` is within ``max_drift_steps`` steps of the
    preset's value, else why not."""
    if design.max_drift_steps is None:
        return None
    for name, step in STEPS.items():
        drift = abs(getattr(new, name) - getattr(preset, name)) / step
        if drift > design.max_drift_steps + 1e-9:
            return (
                f"{name} would drift {drift:g} steps from the preset's "
                f"{getattr(preset, name):g} (at most {design.max_drift_steps:g})"
            )
    return None
