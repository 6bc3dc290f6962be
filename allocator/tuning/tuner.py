"""One month's tuning, from the months' trades, signals and closes: analyse, then decide.

:func:`analyse` scores the trades, reads the market conditions, makes the recommendations and the
candidates (:mod:`.scoring`, :mod:`.conditions`, :mod:`.recommend`). The caller replays the
current config and every candidate over the trailing window with the production backtest and
hands the results to :func:`decide_change`, which accepts the best candidate only if it improves
the objective (:mod:`.objective`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from allocator.portfolio import metrics
from allocator.strategy.config import TradingConfig
from allocator.tuning.conditions import (
    conditions_by_date,
    forward_market_returns,
    performance_by_condition,
)
from allocator.tuning.objective import improves, objective
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
    analysis: TuningAnalysis, replays: list[dict[str, Any]], config: TradingConfig
) -> TuningDecision:
    """Accept the best candidate if its ``J`` beats the current config's (``replays`` in the
    order of :func:`replay_points`, each a row of backtest metrics)."""
    names = [CURRENT] + [c.name for c in analysis.candidates]
    origins = [""] + [c.origin for c in analysis.candidates]
    table = pd.DataFrame(
        [
            {
                "candidate": n,
                "origin": o,
                **{k: r.get(k, np.nan) for k in ("sharpe", "max_drawdown", "twr", "exposure")},
            }
            for n, o, r in zip(names, origins, replays, strict=True)
        ]
    )
    table["objective"] = [objective(r, config) for r in replays]
    current = float(table["objective"].iloc[0])
    if len(table) == 1:
        return TuningDecision(table, None, None, "no candidate to replay: the config stays")
    best = int(table["objective"].iloc[1:].to_numpy().argmax()) + 1
    candidate = analysis.candidates[best - 1]
    if not improves(float(table["objective"].iloc[best]), current):
        return TuningDecision(
            table,
            None,
            None,
            f"no candidate improves the objective: the best, {candidate.name}, scores "
            f"{table['objective'].iloc[best]:.3f} against {current:.3f} for the current config "
            f"(it must beat it by more than 0.01); the config stays",
        )
    new = config.with_changes(**candidate.changes)
    table.attrs["changes"] = {k: [getattr(config, k), v] for k, v in candidate.changes.items()}
    return TuningDecision(
        table,
        candidate.name,
        new,
        f"accepted {candidate.name} ({candidate.origin}): objective "
        f"{table['objective'].iloc[best]:.3f} against {current:.3f} for the current config",
    )
