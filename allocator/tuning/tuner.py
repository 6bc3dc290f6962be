"""One month's tuning, from the months' trades, signals and closes: analyse, then decide.

:func:`analyse` scores the trades, reads the market conditions, makes the recommendations and the
candidates (:mod:`.scoring`, :mod:`.conditions`, :mod:`.recommend`). The caller replays the
current config and every candidate over the trailing window and hands the replays to
:func:`decide_change`, which accepts a candidate only if it clears the bar of the tuning design
(:mod:`.acceptance`) on the objective (:mod:`.objective`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from allocator.portfolio import metrics
from allocator.strategy.config import TradingConfig
from allocator.tuning.acceptance import (
    Curve,
    TuningDesign,
    assess,
    drift_allowed,
    judge,
)
from allocator.tuning.conditions import (
    conditions_by_date,
    forward_market_returns,
    performance_by_condition,
)
from allocator.tuning.recommend import Candidate, Recommendation, candidates, recommendations
from allocator.tuning.scoring import score_trades

#: The row name of the current config in the replay table.
CURRENT = "current config"


@dataclass(frozen=True)
class TuningInputs:
    """What a tuning date knows: only data dated before it.

    ``trades`` (date, symbol, action, price, amount) and ``signals`` (date, action) of the months
    looked back on; ``daily`` (date, deposit, total_value) the portfolio's values then;
    ``closes`` wide closes of the assets from before the first trade to the day before.
    """

    tuning_date: dt.date
    config: TradingConfig
    trades: pd.DataFrame
    signals: pd.DataFrame
    daily: pd.DataFrame
    closes: pd.DataFrame


@dataclass
class TuningAnalysis:
    """Scores, conditions, recommendations and candidates; ``notes`` say what was missing."""

    scored: pd.DataFrame
    pending: int
    by_condition: pd.DataFrame
    buy_share: float
    drawdown: float
    recommendations: list[Recommendation]
    candidates: list[Candidate]
    dropped: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TuningDecision:
    """The replay table (current config and every candidate, with ``J``) and the outcome."""

    table: pd.DataFrame
    accepted: str | None
    new_config: TradingConfig | None
    reason: str

    @property
    def changes(self) -> dict[str, list]:
        return {} if self.accepted is None else self.table.attrs.get("changes", {})


def analyse(inputs: TuningInputs) -> TuningAnalysis:
    """Everything but the replay (module doc)."""
    notes: list[str] = []
    scored, pending = score_trades(inputs.trades, inputs.closes)
    if inputs.trades.empty:
        notes.append("no trades in the months looked back on")
    elif scored.empty:
        notes.append(f"no trade has its 10 sessions complete yet ({pending} pending)")
    conditions = conditions_by_date(inputs.closes) if len(inputs.closes) > 21 else pd.DataFrame()
    if conditions.empty:
        notes.append("too little history to read the market conditions")
        conditions = pd.DataFrame(columns=["condition"])
    by_condition = performance_by_condition(
        scored, inputs.signals, conditions, forward_market_returns(inputs.closes)
    )
    signals = inputs.signals
    buy_share = float((signals["action"] == "BUY").mean()) if len(signals) else float("nan")
    drawdown = _drawdown(inputs.daily)
    recs = recommendations(scored, by_condition, buy_share, drawdown, inputs.config)
    kept, dropped = candidates(inputs.config, recs)
    return TuningAnalysis(
        scored, pending, by_condition, buy_share, drawdown, recs, kept, dropped, notes
    )


def _drawdown(daily: pd.DataFrame) -> float:
    if len(daily) < 2:
        return 0.0
    d = daily.set_index("date")
    returns = metrics.daily_returns_flow_adjusted(d["total_value"], d["deposit"])
    return float(metrics.max_drawdown(returns))


def replay_points(analysis: TuningAnalysis) -> list[dict[str, Any]]:
    """The points to replay: the current config (no change) first, then every candidate."""
    return [{}] + [dict(c.changes) for c in analysis.candidates]


def decide_change(
    analysis: TuningAnalysis,
    curves: list[Curve],
    config: TradingConfig,
    design: TuningDesign,
    preset: TradingConfig | None = None,
) -> TuningDecision:
    """Accept the candidate with the largest ``J`` gain among those that clear ``design``'s bar
    (:func:`~allocator.tuning.acceptance.judge`) and stay within its drift from ``preset``;
    ``curves`` are the replays in the order of :func:`replay_points`."""
    names = [CURRENT] + [c.name for c in analysis.candidates]
    origins = [""] + [c.origin for c in analysis.candidates]
    assessed = [assess(curve, config, design) for curve in curves]
    rows = [a.metrics for a in assessed]
    table = pd.DataFrame(
        [
            {"candidate": n, "origin": o, **{k: r[k] for k in SHOWN}}
            for n, o, r in zip(names, origins, rows, strict=True)
        ]
    )
    if len(table) == 1:
        return TuningDecision(table, None, None, "no candidate to replay: the config stays")
    tried = len(curves) - 1
    verdicts = [judge(assessed[0], a, design, tried) for a in assessed[1:]]
    table["gain"] = [0.0] + [v.gain for v in verdicts]
    table["subwindows_won"] = [""] + [
        f"{v.wins}/{v.windows}" if v.windows else "" for v in verdicts
    ]
    blocked = [
        drift_allowed(preset or config, config.with_changes(**c.changes), design)
        for c in analysis.candidates
    ]
    table["passes"] = [False] + [
        v.passes and b is None for v, b in zip(verdicts, blocked, strict=True)
    ]
    table.attrs["design"] = design.name
    best = int(table["gain"].iloc[1:].to_numpy().argmax()) + 1
    passing = table.index[table["passes"]].tolist()
    if not passing:
        candidate = analysis.candidates[best - 1]
        why = blocked[best - 1] or _bar(design)
        return TuningDecision(
            table,
            None,
            None,
            f"no candidate clears the bar: the best, {candidate.name}, gains "
            f"{table['gain'].iloc[best]:+.3f} in J on the replay ({why}); the config stays",
        )
    chosen = max(passing, key=lambda i: table["gain"].iloc[i])
    candidate = analysis.candidates[chosen - 1]
    new = config.with_changes(**candidate.changes)
    table.attrs["changes"] = {k: [getattr(config, k), v] for k, v in candidate.changes.items()}
    won = table["subwindows_won"].iloc[chosen]
    return TuningDecision(
        table,
        candidate.name,
        new,
        f"accepted {candidate.name} ({candidate.origin}): J "
        f"{table['objective'].iloc[chosen]:.3f} against {table['objective'].iloc[0]:.3f} for the "
        f"current config (gain {table['gain'].iloc[chosen]:+.3f}"
        + (f", better in {won} sub-windows" if won else "")
        + f"; design {design.name})",
    )


#: The replay figures shown for each candidate.
SHOWN = ("sharpe", "max_drawdown", "twr", "exposure", "objective")


def _bar(design: TuningDesign) -> str:
    text = f"it must gain more than {design.margin:g}"
    if design.subwindow_months:
        text += (
            f" and do better in at least {design.min_subwindow_share:.0%} of its "
            f"{design.subwindow_months}-month sub-windows"
        )
    if design.alpha is not None:
        text += f", with a sub-window gain significant at {design.alpha:g} across the candidates"
    return text
