"""``price_history``: idempotent upserts of daily bars, and point-in-time reads."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from allocator.shell.persistence.engine import utcnow
from allocator.shell.persistence.schema import price_history

log = logging.getLogger(__name__)

_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
#: Revision policies for a bar already stored with different values.
#: A stored bar the source now reports differently: ``update`` stores a revision of the same
#: source, ``keep`` keeps the stored bar, ``replace`` also lets another source overwrite it.
REVISION_POLICIES = ("update", "keep", "replace")


@dataclass
class UpsertResult:
    """What one upsert of one symbol's bars did."""

    symbol: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_non_sessions: list[dt.date] = field(default_factory=list)
    revisions: list[dict] = field(default_factory=list)
    last_date: dt.date | None = None


def _same(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def _insert_ignoring_duplicates(conn: sa.Connection, rows: list[dict]) -> None:
    """Insert rows; a row another process stored meanwhile is left as it is."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two supported engines
        conn.execute(price_history.insert(), rows)
        return
    stmt = insert(price_history).on_conflict_do_nothing(index_elements=["symbol", "date"])
    conn.execute(stmt, rows)


def _drop_non_sessions(
    symbol: str, bars: pd.DataFrame, sessions: Iterable[dt.date] | None, result: UpsertResult
) -> pd.DataFrame:
    """``bars`` without those dated on non-sessions, which are logged and noted in ``result``."""
    if sessions is None:
        return bars
    keep = bars["date"].isin(set(sessions))
    result.skipped_non_sessions = sorted(bars.loc[~keep, "date"].tolist())
    if result.skipped_non_sessions:
        log.warning(
            "%s: skipped %d bar(s) dated on non-sessions: %s",
            symbol,
            len(result.skipped_non_sessions),
            ", ".join(map(str, result.skipped_non_sessions[:5])),
        )
    return bars.loc[keep]


def _stored_bars(
    conn: sa.Connection, symbol: str, lo: dt.date, hi: dt.date
) -> dict[dt.date, sa.Row]:
    """The stored bars of ``symbol`` dated within [lo, hi], by date (id and values)."""
    return {
        row.date: row
        for row in conn.execute(
            sa.select(
                price_history.c.id,
                price_history.c.date,
                price_history.c.source,
                *[price_history.c[c] for c in _VALUE_COLUMNS],
            )
            .where(price_history.c.symbol == symbol)
            .where(price_history.c.date.between(lo, hi))
        )
    }


def _apply_revision(
    conn: sa.Connection,
    symbol: str,
    day: dt.date,
    stored: sa.Row,
    values: dict,
    *,
    source: str,
    now: dt.datetime,
    on_revision: str,
    result: UpsertResult,
) -> None:
    """Note and log a revision of a stored bar; replace the bar when the policy says so.

    A bar stored from another source is replaced only with ``on_revision="replace"``: real
    history is never silently overwritten by, say, the synthetic market.
    """
    result.revisions.append(
        {
            "date": day,
            "old_source": stored.source,
            "new_source": source,
            **{f"old_{c}": getattr(stored, c) for c in _VALUE_COLUMNS},
            **{f"new_{c}": values[c] for c in _VALUE_COLUMNS},
        }
    )
    other = stored.source != source
    store = on_revision == "replace" or (on_revision == "update" and not other)
    if store:
        outcome = "stored the revision" if not other else f"replaced the {stored.source} bar"
    elif other:
        outcome = f"kept the {stored.source} bar (pass --on-revision replace to take {source}'s)"
    else:
        outcome = "kept the stored bar"
    who = f"{source} reports the bar differently" if other else "vendor revised the bar"
    log.warning(
        "%s %s: %s (close %s -> %s, open %s -> %s); %s",
        symbol,
        day,
        who,
        stored.close,
        values["close"],
        stored.open,
        values["open"],
        outcome,
    )
    if store:
        conn.execute(
            price_history.update()
            .where(price_history.c.id == stored.id)
            .values(**values, source=source, fetched_at=now)
        )
        result.updated += 1


def stored_sources(conn: sa.Connection) -> set[str]:
    """The sources of the bars stored in ``price_history``."""
    return set(conn.execute(sa.select(price_history.c.source).distinct()).scalars())


def symbols_from_source(conn: sa.Connection, source: str) -> list[str]:
    """The symbols that have bars from ``source``, sorted."""
    stmt = sa.select(price_history.c.symbol).where(price_history.c.source == source).distinct()
    return sorted(conn.execute(stmt).scalars())


@dataclass(frozen=True)
class SourceSpan:
    """The bars one source holds in a range: its symbols, first and last date, and count."""

    source: str
    symbols: tuple[str, ...]
    first: dt.date
    last: dt.date
    bars: int

    def describe(self) -> str:
        """E.g. ``csv (SPY, QQQ, DIA 2004-01-02..2023-09-25, 14,901 bars)``."""
        return (
            f"{self.source} ({', '.join(self.symbols)} {self.first}..{self.last}, "
            f"{self.bars:,} bars)"
        )


def bar_sources(
    conn: sa.Connection, symbols: Sequence[str], start: dt.date, end: dt.date
) -> list[SourceSpan]:
    """The sources of the stored bars of ``symbols`` dated in [start, end], oldest first."""
    stmt = (
        sa.select(
            price_history.c.source,
            price_history.c.symbol,
            sa.func.min(price_history.c.date),
            sa.func.max(price_history.c.date),
            sa.func.count(),
        )
        .where(price_history.c.symbol.in_(list(symbols)))
        .where(price_history.c.date.between(start, end))
        .group_by(price_history.c.source, price_history.c.symbol)
    )
    spans: dict[str, list] = {}
    for source, symbol, first, last, count in conn.execute(stmt):
        span = spans.setdefault(source, [[], first, last, 0])
        span[0].append(symbol)
        span[1], span[2], span[3] = min(span[1], first), max(span[2], last), span[3] + count
    found = [
        SourceSpan(source, tuple(sorted(names)), first, last, count)
        for source, (names, first, last, count) in spans.items()
    ]
    return sorted(found, key=lambda span: (span.first, span.source))


def delete_source_bars(conn: sa.Connection, source: str) -> int:
    """Delete every bar stored from ``source``; the number deleted. In the caller's transaction."""
    return conn.execute(price_history.delete().where(price_history.c.source == source)).rowcount


def upsert_bars(
    conn: sa.Connection,
    symbol: str,
    bars: pd.DataFrame,
    source: str,
    *,
    sessions: Iterable[dt.date] | None = None,
    on_revision: str = "update",
) -> UpsertResult:
    """Store validated ``bars`` of ``symbol``; re-running with the same bars inserts nothing.

    Only dates in ``sessions`` (NYSE sessions) are stored; others are skipped and reported. A bar
    already stored with different values is a vendor revision: with ``on_revision="update"`` the
    stored bar is replaced if it came from the same source, with ``"replace"`` whatever its
    source, with ``"keep"`` it is left; either way it is logged with old and new values and
    returned in ``revisions``. Runs inside the caller's transaction.
    """
    if on_revision not in REVISION_POLICIES:
        raise ValueError(f"on_revision={on_revision!r}: use one of {REVISION_POLICIES}")
    result = UpsertResult(symbol=symbol)
    if bars.empty:
        return result
    bars = _drop_non_sessions(symbol, bars, sessions, result)
    if bars.empty:
        return result
    existing = _stored_bars(conn, symbol, min(bars["date"]), max(bars["date"]))
    now = utcnow()
    new_rows: list[dict] = []
    for bar in bars.itertuples(index=False):
        values = {c: getattr(bar, c) for c in _VALUE_COLUMNS}
        values["volume"] = int(values["volume"])
        stored = existing.get(bar.date)
        if stored is None:
            new_rows.append(
                {"symbol": symbol, "date": bar.date, **values, "source": source, "fetched_at": now}
            )
        elif all(_same(getattr(stored, c), values[c]) for c in _VALUE_COLUMNS):
            result.unchanged += 1
        else:
            _apply_revision(
                conn,
                symbol,
                bar.date,
                stored,
                values,
                source=source,
                now=now,
                on_revision=on_revision,
                result=result,
            )
    _insert_ignoring_duplicates(conn, new_rows)
    result.inserted = len(new_rows)
    result.last_date = max(bars["date"])
    return result


def load_bars(
    conn: sa.Connection,
    symbols: Sequence[str],
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    before: dt.date | None = None,
) -> pd.DataFrame:
    """Long frame (symbol, date, open, high, low, close, volume, source) sorted by date.

    ``before`` excludes bars dated on or after it: the signal for trade date D reads with
    ``before=D`` so nothing from D or later can reach it.
    """
    stmt = sa.select(
        price_history.c.symbol,
        price_history.c.date,
        *[price_history.c[c] for c in _VALUE_COLUMNS],
        price_history.c.source,
    ).where(price_history.c.symbol.in_(list(symbols)))
    if start is not None:
        stmt = stmt.where(price_history.c.date >= start)
    if end is not None:
        stmt = stmt.where(price_history.c.date <= end)
    if before is not None:
        stmt = stmt.where(price_history.c.date < before)
    stmt = stmt.order_by(price_history.c.date, price_history.c.symbol)
    rows = conn.execute(stmt).all()
    columns = ["symbol", "date", *_VALUE_COLUMNS, "source"]
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def wide(bars: pd.DataFrame, field_name: str, symbols: Sequence[str] | None = None) -> pd.DataFrame:
    """Pivot a long bar frame to dates × symbols for one field (``close``, ``open`` …)."""
    table = bars.pivot(index="date", columns="symbol", values=field_name).sort_index()
    if symbols is not None:
        table = table.reindex(columns=list(symbols))
    table.columns.name = None
    return table.astype("float64")


def bar_counts(conn: sa.Connection) -> pd.DataFrame:
    """Per symbol: number of bars, first and last date, and sources."""
    stmt = (
        sa.select(
            price_history.c.symbol,
            sa.func.count().label("bars"),
            sa.func.min(price_history.c.date).label("first"),
            sa.func.max(price_history.c.date).label("last"),
        )
        .group_by(price_history.c.symbol)
        .order_by(price_history.c.symbol)
    )
    return pd.DataFrame(
        [tuple(r) for r in conn.execute(stmt)], columns=["symbol", "bars", "first", "last"]
    )


def last_bar_dates(
    conn: sa.Connection, symbols: Sequence[str], before: dt.date | None = None
) -> dict[str, dt.date | None]:
    """The latest stored bar date of each symbol (optionally strictly before ``before``)."""
    stmt = sa.select(price_history.c.symbol, sa.func.max(price_history.c.date)).where(
        price_history.c.symbol.in_(list(symbols))
    )
    if before is not None:
        stmt = stmt.where(price_history.c.date < before)
    found = dict(conn.execute(stmt.group_by(price_history.c.symbol)).all())
    return {s: found.get(s) for s in symbols}


def bars_on(conn: sa.Connection, day: dt.date, symbols: Sequence[str]) -> dict[str, dict]:
    """The stored bar of each symbol dated ``day`` (symbols without one are absent)."""
    stmt = (
        sa.select(price_history)
        .where(price_history.c.date == day)
        .where(price_history.c.symbol.in_(list(symbols)))
    )
    return {row.symbol: dict(row._mapping) for row in conn.execute(stmt)}


def latest_closes(conn: sa.Connection, day: dt.date, symbols: Sequence[str]) -> dict[str, float]:
    """The latest close on or before ``day`` of each symbol (symbols without one are absent)."""
    latest = (
        sa.select(price_history.c.symbol, sa.func.max(price_history.c.date).label("last"))
        .where(price_history.c.symbol.in_(list(symbols)))
        .where(price_history.c.date <= day)
        .group_by(price_history.c.symbol)
        .subquery()
    )
    stmt = sa.select(price_history.c.symbol, price_history.c.close).join(
        latest,
        sa.and_(price_history.c.symbol == latest.c.symbol, price_history.c.date == latest.c.last),
    )
    return {symbol: float(close) for symbol, close in conn.execute(stmt)}


def latest_bar_date(conn: sa.Connection) -> dt.date | None:
    """The date of the newest stored bar of any symbol, or None when ``price_history`` is empty."""
    return conn.execute(sa.select(sa.func.max(price_history.c.date))).scalar_one()
