"""What the API returns and the pages show, built once from the persistence layer.

Each ``*_view`` returns plain JSON-ready values (ISO dates, ``None`` for undefined numbers), so
the API serialises them as they are and the templates read the same dictionaries.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from allocator.exceptions import AllocatorError
from allocator.portfolio.book import unrealized_pnl
from allocator.portfolio.metrics import summary
from allocator.portfolio.slippage import monthly_summary, with_slippage
from allocator.shell.persistence import broker as orders_db
from allocator.shell.persistence import browse, ledger
from allocator.shell.persistence.configs import ConfigVersion
from allocator.shell.persistence.jobruns import JobRun
from allocator.shell.persistence.migrate import current_revision, head_revision
from allocator.shell.persistence.prices import latest_bar_date, latest_closes
from allocator.shell.persistence.signals import SignalRecord
from allocator.web import runinfo
from allocator.web.security import artifact_url

#: Valuations needed before the performance metrics mean anything (one return needs two).
MIN_VALUATIONS_FOR_METRICS = 2
#: Sessions before an annualised ratio (Sharpe, Sortino, Calmar) means anything: about three
#: months of the year's 252.
MIN_SESSIONS_FOR_ANNUALISED = 63
ANNUALISED = ("sharpe", "sortino", "calmar")


def jsonable(value: Any) -> Any:
    """``value`` with dates as ISO text, NaN/inf as None, numpy scalars as Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def health_view(engine: sa.Engine) -> dict[str, Any]:
    """Database reachable, migration current, newest bar and signal, pending orders."""
    found: dict[str, Any] = {"database": False, "migration_current": False, "error": None}
    try:
        browse.database_reachable(engine)
        found["database"] = True
        found["revision"], found["head_revision"] = current_revision(engine), head_revision()
        found["migration_current"] = found["revision"] == found["head_revision"]
        if found["migration_current"]:
            with engine.connect() as conn:
                signal = browse.latest_signal(conn)
                found["latest_bar_date"] = latest_bar_date(conn)
                found["latest_signal_date"] = signal.trade_date if signal else None
                found["pending_orders"] = browse.count_pending_orders(conn)
        else:
            found["error"] = "the database is not at the head revision: run `allocator db upgrade`"
    except (AllocatorError, sa.exc.SQLAlchemyError) as exc:
        found["error"] = str(exc).splitlines()[0]
    found["status"] = "ok" if found["migration_current"] and not found["error"] else "error"
    return jsonable(found)


def portfolio_view(conn: sa.Connection) -> dict[str, Any]:
    """Positions marked at their last stored close, cash, and the total value."""
    book = ledger.load_book(conn)
    as_of = latest_bar_date(conn)
    closes = latest_closes(conn, as_of, list(book.positions)) if as_of else {}
    pnl = unrealized_pnl(book, closes)
    positions = []
    for symbol, position in sorted(book.positions.items()):
        close = closes.get(symbol)
        positions.append(
            {
                "symbol": symbol,
                "quantity": position.quantity,
                "avg_cost": position.avg_cost,
                "cost_basis": position.cost_basis,
                "last_close": close,
                "market_value": None if close is None else position.quantity * close,
                "unrealized_pnl": pnl.get(symbol),
            }
        )
    positions_value = sum(p["market_value"] or 0.0 for p in positions)
    return jsonable(
        {
            "as_of": as_of,
            "positions": positions,
            "cash": book.cash,
            "positions_value": positions_value,
            "total_value": book.cash + positions_value,
            "unrealized_pnl": sum(pnl.values()),
        }
    )


def performance_view(conn: sa.Connection) -> dict[str, Any]:
    """Every valuation (oldest first) and, with enough of them, the flow-adjusted metrics."""
    daily = ledger.valuations_frame(conn)
    metrics = None
    if len(daily) >= MIN_VALUATIONS_FOR_METRICS:
        frame = daily.rename(columns={"valuation_date": "date"})
        deposits = frame["cumulative_deposits"]
        frame["deposit"] = deposits.diff().fillna(deposits.iloc[0])
        fills = ledger.trades_frame(conn)
        metrics = summary(frame, fills[fills["status"] == "filled"])
    return jsonable(
        {
            "valuations": daily.to_dict(orient="records"),
            "metrics": metrics,
            "min_valuations_for_metrics": MIN_VALUATIONS_FOR_METRICS,
            "notes": annualised_notes(metrics),
        }
    )


def annualised_notes(metrics: Mapping[str, Any] | None) -> dict[str, str]:
    """Metric -> why it is not meaningful yet: an annualised ratio over fewer than
    :data:`MIN_SESSIONS_FOR_ANNUALISED` sessions ({} once there are enough)."""
    sessions = int((metrics or {}).get("n_sessions") or 0)
    if sessions >= MIN_SESSIONS_FOR_ANNUALISED:
        return {}
    reason = (
        f"annualised from {sessions} sessions: not meaningful before "
        f"{MIN_SESSIONS_FOR_ANNUALISED} (about three months)"
    )
    return dict.fromkeys(ANNUALISED, reason)


def signal_view(record: SignalRecord) -> dict[str, Any]:
    """A stored signal with its regime, risk and the full ``features_used``."""
    features = record.features_used
    return jsonable(
        {
            "id": record.id,
            "trade_date": record.trade_date,
            "action": record.action,
            "confidence_score": record.confidence_score,
            "regime": features.get("regime"),
            "regime_label": features.get("regime_label"),
            "risk": features.get("risk"),
            "allocations": record.allocations,
            "config_id": record.config_id,
            "model_type": record.model_type,
            "created_at": record.created_at,
            "features_used": features,
        }
    )


def config_view(version: ConfigVersion) -> dict[str, Any]:
    """One trading config version and when it applies."""
    return jsonable(
        {
            "id": version.id,
            "start_date": version.start_date,
            "end_date": version.end_date,
            "active": version.is_active,
            "created_by": version.created_by,
            "notes": version.notes,
            "created_at": version.created_at,
            "parameters": version.config.to_dict(),
        }
    )


def run_view(run: JobRun, folders: Mapping[str, Path]) -> dict[str, Any]:
    """A ``job_runs`` row with its period, its one-line result, and the app's links to its page
    and its artifacts (:mod:`.runinfo`)."""
    duration = run.duration.total_seconds() if run.duration is not None else None
    scraps = runinfo.scraps_of(run)
    return jsonable(
        {
            "id": run.id,
            "job": run.job,
            "trade_date": run.trade_date,
            "period": runinfo.run_period(run, scraps),
            "result": runinfo.run_result(run, scraps),
            "status": run.status,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "duration_seconds": duration,
            "git_commit": run.git_commit,
            "parameters": run.parameters,
            "error": run.error,
            "links": {
                "page": f"/runs/{run.id}",
                "html": artifact_url(run.html_path, folders),
                "markdown": artifact_url(run.md_path, folders),
                "notebook": artifact_url(run.notebook_path, folders),
                "trades": f"/runs/{run.id}/trades" if runinfo.keeps_trades(scraps) else None,
            },
        }
    )


#: Months of the slippage summary and fills of the recent list shown.
SLIPPAGE_MONTHS, SLIPPAGE_FILLS = 12, 10


def slippage_view(conn: sa.Connection) -> dict[str, Any]:
    """Each fill's slippage against the official open (basis points and dollars; positive is a
    cost), the most recent first, and by month (dollar-weighted), newest month first."""
    fills = orders_db.fills_with_opens(conn)
    months = monthly_summary(fills).tail(SLIPPAGE_MONTHS).iloc[::-1]
    recent = with_slippage(fills.tail(SLIPPAGE_FILLS)).iloc[::-1]
    columns = ["trade_date", "symbol", "action", "quantity", "price", "open", "slippage_bps"]
    recent = recent[[*columns, "slippage_usd", "client_order_id"]]
    rows = [
        {**jsonable(dict(zip(recent.columns, values, strict=True))), "broker": bool(values[-1])}
        for values in recent.itertuples(index=False, name=None)
    ]
    return {
        "months": [jsonable(r) for r in months.to_dict(orient="records")],
        "fills": [{k: v for k, v in r.items() if k != "client_order_id"} for r in rows],
    }
