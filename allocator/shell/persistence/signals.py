"""``daily_signals``: one signal per trade date, kept unless a replacement is asked for."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from allocator.exceptions import AllocatorError
from allocator.shell.persistence.engine import utcnow
from allocator.shell.persistence.schema import daily_signals, trades

MODEL_TYPE = "regime_based"


class SignalError(AllocatorError):
    """A signal is missing, or cannot be replaced."""


@dataclass(frozen=True)
class SignalRecord:
    id: int
    trade_date: dt.date
    model_type: str
    action: str
    confidence_score: float
    allocations: dict[str, float]
    features_used: dict[str, Any]
    config_id: int
    created_at: dt.datetime

    @property
    def sell_quantities(self) -> dict[str, float]:
        return dict(self.features_used.get("sell_quantities") or {})


def _record(row: sa.Row) -> SignalRecord:
    m = row._mapping
    return SignalRecord(
        id=m["id"],
        trade_date=m["trade_date"],
        model_type=m["model_type"],
        action=m["action"],
        confidence_score=m["confidence_score"],
        allocations={k: float(v) for k, v in (m["allocations"] or {}).items()},
        features_used=m["features_used"] or {},
        config_id=m["config_id"],
        created_at=m["created_at"],
    )


def get_signal(conn: sa.Connection, trade_date: dt.date) -> SignalRecord | None:
    row = conn.execute(
        sa.select(daily_signals).where(daily_signals.c.trade_date == trade_date)
    ).first()
    return _record(row) if row else None


def require_signal(conn: sa.Connection, trade_date: dt.date) -> SignalRecord:
    found = get_signal(conn, trade_date)
    if found is None:
        raise SignalError(
            f"no signal for {trade_date}: run `allocator run signal --date {trade_date}` first"
        )
    return found


def signals_between(conn: sa.Connection, start: dt.date, end: dt.date) -> list[SignalRecord]:
    rows = conn.execute(
        sa.select(daily_signals)
        .where(daily_signals.c.trade_date.between(start, end))
        .order_by(daily_signals.c.trade_date)
    )
    return [_record(r) for r in rows]


def save_signal(
    conn: sa.Connection,
    trade_date: dt.date,
    *,
    action: str,
    confidence_score: float,
    allocations: dict[str, float],
    features_used: dict[str, Any],
    config_id: int,
    replace: bool = False,
) -> tuple[SignalRecord, str]:
    """Store the signal of ``trade_date``; returns it and created, unchanged or replaced.

    An existing signal is left as it is unless ``replace``; a signal whose trades were already
    recorded cannot be replaced (its trades would no longer match it).
    """
    values = {
        "model_type": MODEL_TYPE,
        "action": action,
        "confidence_score": float(confidence_score),
        "allocations": allocations,
        "features_used": features_used,
        "config_id": config_id,
        "created_at": utcnow(),
    }
    existing = get_signal(conn, trade_date)
    if existing is None:
        conn.execute(daily_signals.insert().values(trade_date=trade_date, **values))
        return get_signal(conn, trade_date), "created"
    if not replace:
        return existing, "unchanged"
    n_trades = conn.execute(
        sa.select(sa.func.count()).select_from(trades).where(trades.c.signal_id == existing.id)
    ).scalar_one()
    if n_trades:
        raise SignalError(
            f"the signal of {trade_date} already has {n_trades} trade(s) recorded; it cannot be "
            "replaced (its trades would no longer match it)"
        )
    conn.execute(daily_signals.update().where(daily_signals.c.id == existing.id).values(**values))
    return get_signal(conn, trade_date), "replaced"


def count_signals_using(conn: sa.Connection, config_id: int) -> int:
    """How many stored signals were decided with config version ``config_id``."""
    return conn.execute(
        sa.select(sa.func.count())
        .select_from(daily_signals)
        .where(daily_signals.c.config_id == config_id)
    ).scalar_one()
