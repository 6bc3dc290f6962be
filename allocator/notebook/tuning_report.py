"""The monthly tuning's report: the tune notebook's blocks and ``tuning_YYYY-MM.md`` / ``.html``.

The answer first: :func:`tune_summary` says in one line what the month's tuning did (the change
made or proposed, or "no change" with the reason). Then only the sections that have something
to show: the trades scored, performance by market condition, the recommendations, the
candidates replayed, the parameter changes (:func:`sections`, each None when empty, so a month
without trades has no empty chart and no table of ``—``).

:func:`tuning_markdown` is the report the design document asks for,
``reports/strategy-tuning/tuning_YYYY-MM.md``, in plain Markdown (the web app renders it with
HTML escaped), and :func:`tuning_html` the same as a standalone page beside it, which the runs
index links (a browser shows a ``.md`` file as raw text).
"""

from __future__ import annotations

import datetime as dt
import html
import os
from pathlib import Path
from typing import Any

import pandas as pd

from allocator.notebook.formats import (
    cents,
    count,
    date,
    decimal,
    percent,
    ratio,
)
from allocator.notebook.page import CSS
from allocator.notebook.tables import Card, Cards, Link, Table
from allocator.tuning.scoring import HORIZON

#: What each tune status means to a reader.
OUTCOMES = {
    "changed": "changed",
    "replaced": "changed (this month's version replaced)",
    "withdrawn": "this month's change withdrawn",
    "proposed": "change proposed, not applied",
    "unchanged": "no change",
    "already tuned": "already tuned",
}


def _changes_text(changes: dict[str, list]) -> str:
    return ", ".join(f"{k} {_value(old)} → {_value(new)}" for k, (old, new) in changes.items())


def _value(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return decimal(value, 4).rstrip("0").rstrip(".") if value % 1 else decimal(value, 0)


def outcome_line(status: str, reason: str, changes: dict[str, list]) -> str:
    """``No change: <reason>`` or ``Changed: x 0.3 → 0.4 (<reason>)``, in one line."""
    outcome = _first_upper(OUTCOMES.get(status, status))
    if changes:
        return f"{outcome}: {_changes_text(changes)}. {_first_upper(reason)}."
    return f"{outcome}: {reason}."


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def tune_summary(result) -> Cards:
    """The month's outcome in one line, with the trades scored and the candidates replayed."""
    tuning = result.tuning
    changes = tuning.decision.changes if tuning else {}
    line = outcome_line(result.status, result.message, changes)
    report = report_link(result.report)
    cards = [
        Card(
            "outcome",
            OUTCOMES.get(result.status, result.status),
            f"tuning date {date(result.tuning_date)}",
        ),
        *([Card("monthly report", report)] if report else []),
        Card("config version", f"#{result.version.id}", f"base #{result.base.id}"),
    ]
    if tuning is not None:
        a = tuning.analysis
        cards += [
            Card("trades scored", count(len(a.scored)), f"{count(a.pending)} pending"),
            Card("candidates replayed", count(max(0, len(tuning.decision.table) - 1))),
        ]
    return Cards(cards, [line], tone="good" if changes else "")


def report_link(markdown_path) -> Link | None:
    """A link from this run's report to the month's ``tuning_YYYY-MM.html`` (None: no report)."""
    if markdown_path is None:
        return None
    from allocator.notebook.review import default_link_base
    from allocator.shell.settings import get_settings

    page = Path(markdown_path).with_suffix(".html")
    base = default_link_base(get_settings().reports_dir)
    return Link(page.name, Path(os.path.relpath(page, base)).as_posix())


# --- sections -----------------------------------------------------------------------------------


def scores_table(tuning) -> Table | None:
    """The scored trades' figures; None when no trade was scored."""
    a = tuning.analysis if tuning else None
    if a is None or a.scored.empty:
        return None
    scored = a.scored
    rows = [
        [
            "trades scored",
            count(len(scored)),
            f"{count(a.pending)} pending (their {HORIZON} sessions are not complete)",
        ],
        ["average score", decimal(scored["score"].mean(), 3, signed=True), "−1..+1"],
        ["win rate", percent((scored["pnl"] > 0).mean(), 0), "trades with a positive P&L"],
        ["portfolio drawdown", percent(-abs(a.drawdown)), "over the months looked back on"],
        ["signal days that bought", percent(a.buy_share, 0), ""],
    ]
    return Table(["figure", "value", "note"], rows, align="lrl", title="Trades scored")


CONDITION_COLUMNS = (
    ("n_trades", "trades", count),
    ("win_rate", "win rate", lambda v: percent(v, 0)),
    ("avg_pnl", "average P&L", cents),
    ("avg_score", "average score", lambda v: decimal(v, 3, signed=True)),
    ("signal_days", "signal days", count),
    ("buy_share", "buy share", lambda v: percent(v, 0)),
    ("market_after_buy", "market after a buy", lambda v: percent(v, 2, signed=True)),
    ("market_after_hold", "market after a hold", lambda v: percent(v, 2, signed=True)),
)


def conditions_table(tuning) -> Table | None:
    """Performance by market condition; None when no condition had a trade or a signal day."""
    frame = tuning.analysis.by_condition if tuning else pd.DataFrame()
    if frame.empty or not (frame.get("n_trades", 0).sum() or frame.get("signal_days", 0).sum()):
        return None
    shown = [c for c in CONDITION_COLUMNS if c[0] in frame.columns]
    rows = [[str(name), *(show(row[k]) for k, _, show in shown)] for name, row in frame.iterrows()]
    notes = ["— : no trade (or no signal day) in that condition."]
    return Table(
        ["condition", *(h for _, h, _ in shown)],
        rows,
        title="Performance by market condition",
        notes=notes,
    )


def recommendations_table(tuning) -> Table | None:
    recs = tuning.analysis.recommendations if tuning else []
    if not recs:
        return None
    rows = [[r.name, r.reason] for r in recs]
    return Table(["recommendation", "reason"], rows, align="ll", title="Recommendations")


CANDIDATE_COLUMNS = (
    ("sharpe", "Sharpe", ratio),
    ("max_drawdown", "max drawdown", percent),
    ("twr", "TWR", percent),
    ("exposure", "exposure", percent),
    ("objective", "objective J", lambda v: decimal(v, 3)),
    ("gain", "gain in J", lambda v: decimal(v, 3, signed=True)),
    ("subwindows_won", "sub-windows won", lambda v: str(v) or "—"),
    ("passes", "passes", lambda v: "yes" if v else "no"),
)


def candidates_table(tuning) -> Table | None:
    """Each candidate's replay against the current config; None when nothing was replayed."""
    table = tuning.decision.table if tuning else pd.DataFrame()
    if table.empty:
        return None
    shown = [c for c in CANDIDATE_COLUMNS if c[0] in table.columns]
    rows = [
        [str(r["candidate"]), *(show(r[k]) for k, _, show in shown)] for _, r in table.iterrows()
    ]
    sessions = len(tuning.replay_sessions)
    return Table(
        ["candidate", *(h for _, h, _ in shown)],
        rows,
        title=f"Candidates replayed over {count(sessions)} sessions before the tuning date",
        notes=["The first row is the current config; a candidate must clear the design's bar."],
    )


def changes_table(tuning) -> Table | None:
    changes = tuning.decision.changes if tuning else {}
    if not changes:
        return None
    rows = [[k, _value(old), _value(new)] for k, (old, new) in changes.items()]
    return Table(["parameter", "old", "new"], rows, align="lrr", title="Parameter changes")


def sections(tuning) -> list[Table]:
    """The sections that have something to show, in the report's order."""
    found = [
        scores_table(tuning),
        conditions_table(tuning),
        recommendations_table(tuning),
        candidates_table(tuning),
        changes_table(tuning),
    ]
    return [t for t in found if t is not None]


def dropped_table(tuning) -> Table | None:
    dropped = tuning.analysis.dropped if tuning else []
    if not dropped:
        return None
    return Table(
        ["candidate", "why dropped"],
        [list(d) for d in dropped],
        align="ll",
        title="Dropped before the replay",
    )


def scored_trades_table(tuning) -> Table | None:
    scored = tuning.analysis.scored if tuning else pd.DataFrame()
    if scored.empty:
        return None
    rows = [
        [
            date(t.date),
            t.symbol,
            t.action,
            percent(t.forward_return, 2, signed=True),
            cents(t.pnl),
            decimal(t.score, 3, signed=True),
        ]
        for t in scored.itertuples()
    ]
    columns = ["date", "symbol", "action", f"{HORIZON}-session return", "P&L", "score"]
    return Table(columns, rows, align="lllrrr", title="Scored trades")


# --- the report files ---------------------------------------------------------------------------


def tuning_markdown(tuning: Any, base_id: int, version_id: int, status: str, changes: dict) -> str:
    """The report of one tuning (a :class:`allocator.research.monthly.MonthlyTuning`), in plain
    Markdown: the outcome first, then only the sections with something in them."""
    day: dt.date = tuning.tuning_date
    line = outcome_line(status, tuning.decision.reason, changes)
    version = (
        f"new version #{version_id} from {day:%Y-%m}-01 (base #{base_id})"
        if status in ("changed", "replaced")
        else f"version #{version_id} stays"
    )
    head = (
        f"# Strategy tuning {day:%Y-%m}\n\n**{line}**\n\n"
        f"- tuning date: {day} (first NYSE session of the month); trades looked back on from "
        f"{tuning.looked_back_from} to the session before\n"
        f"- config: {version}\n"
    )
    reason = tuning.decision.reason
    notes = "".join(f"- {n}\n" for n in tuning.analysis.notes if n not in reason)
    parts = [head + (f"\n**Notes**\n\n{notes}" if notes else "")]
    replayed = candidates_table(tuning) is not None
    extra = [dropped_table(tuning) if replayed else None, scored_trades_table(tuning)]
    for table in [*sections(tuning), *(t for t in extra if t is not None)]:
        parts.append(table.markdown(heading="## "))
    objective = (
        "Objective: J = Sharpe − (min_sharpe_target / tolerance) × max(0, |max drawdown| − "
        "tolerance); a candidate must clear the tuning design's bar."
    )
    if replayed:
        parts.append(f"## Method\n\n{objective}\n")
    return "\n".join(parts)


def tuning_html(markdown: str, title: str) -> str:
    """``markdown`` (:func:`tuning_markdown`) as a standalone page in the reports' style."""
    import mistune

    render = mistune.create_markdown(escape=True, plugins=["table"])
    body = str(render(markdown)).replace(
        "<table>", '<div class="table-wrap"><table class="report">'
    )
    body = body.replace("</table>", "</table></div>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
