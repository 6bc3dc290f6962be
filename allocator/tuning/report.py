"""The monthly tuning report, ``tuning_YYYY-MM.md``, as Markdown text."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from allocator.tuning.scoring import HORIZON


def _table(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    if frame.empty:
        return "_(none)_"
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    lines = [header, rule]
    for row in frame.itertuples(index=False):
        cells = [format(v, floatfmt) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tuning_markdown(
    tuning: Any, base_id: int, version_id: int, status: str, changes: dict[str, list]
) -> str:
    """The report of one tuning (a :class:`allocator.research.monthly.MonthlyTuning`)."""
    a, d = tuning.analysis, tuning.decision
    day: dt.date = tuning.tuning_date
    recs = "\n".join(f"- **{r.name}**: {r.reason}" for r in a.recommendations) or "- none"
    notes = "\n".join(f"- {n}" for n in a.notes) or "- none"
    diff = pd.DataFrame(
        [(k, v[0], v[1]) for k, v in changes.items()], columns=["parameter", "old", "new"]
    )
    dropped = pd.DataFrame(a.dropped, columns=["candidate", "why dropped"])
    scored = a.scored[["date", "symbol", "action", "forward_return", "pnl", "score"]]
    return f"""# Strategy tuning {day:%Y-%m}

- tuning date: {day} (first NYSE session of the month); trades looked back on from
  {tuning.looked_back_from} to the session before
- base: config version #{base_id}; outcome: **{status}** (version #{version_id} from {day:%Y-%m}-01)
- {d.reason}

## Trades scored

{len(a.scored)} trades scored; {a.pending} pending (their {HORIZON} sessions are not complete
before the tuning date: scored next month). Average score
{a.scored["score"].mean() if len(a.scored) else float("nan"):.3f}; win rate
{(a.scored["pnl"] > 0).mean() if len(a.scored) else float("nan"):.0%}; portfolio drawdown over the
months {abs(a.drawdown):.1%}; share of signal days that bought {a.buy_share:.0%}.

## Performance by market condition

{_table(a.by_condition.reset_index())}

## Recommendations

{recs}

## Candidates replayed over {len(tuning.replay_sessions)} sessions before the tuning date

Objective: Sharpe − (min_sharpe_target / tolerance) × max(0, |max drawdown| − tolerance); a
candidate must beat the current config by more than 0.01.

{_table(d.table)}

Dropped before the replay:

{_table(dropped)}

## Parameter changes

{_table(diff)}

## Notes

{notes}

## Scored trades

{_table(scored)}
"""
