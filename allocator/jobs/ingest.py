"""Store bars from any source for a set of symbols: the shared step of backfill and fetch.

Each symbol is fetched and stored in its own transaction, so one failing symbol loses none of the
others' data, and a failing symbol stores nothing (the source validates its whole answer first).
An error that refuses every symbol (``stops_source``: a refused key, a spent quota) stops the
ingest: the symbols after it are reported as not attempted, and no more of the quota is spent.
Each failure's message is logged once; the summary line names the symbols.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from allocator.exceptions import (
    AllocatorError,
    ConfigNotFoundError,
    DatabaseError,
    JobError,
    MarketDataError,
    MixedHistoryError,
)
from allocator.shell import calendar
from allocator.shell.marketdata.base import MarketDataSource
from allocator.shell.persistence import ledger
from allocator.shell.persistence.configs import active_version
from allocator.shell.persistence.prices import (
    UpsertResult,
    delete_source_bars,
    stored_sources,
    symbols_from_source,
    upsert_bars,
)
from allocator.shell.persistence.runlock import writer_lock
from allocator.strategy.config import DEFAULT_ASSETS
from allocator.strategy.symbols import first_symbol_problem, split_symbols

log = logging.getLogger(__name__)


@dataclass
class SymbolOutcome:
    symbol: str
    result: UpsertResult | None = None
    error: str | None = None
    received: int = 0
    #: False when an earlier symbol's error stopped the source before this one was asked.
    attempted: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "failed" if self.attempted else "not attempted"


@dataclass
class IngestReport:
    """Per-symbol outcome of one ingestion run."""

    source: str
    start: dt.date
    end: dt.date
    outcomes: list[SymbolOutcome] = field(default_factory=list)
    #: The last NYSE session in [start, end]: the bar a complete answer ends with.
    last_session: dt.date | None = None

    @property
    def failed(self) -> list[SymbolOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def rows_inserted(self) -> dict[str, int]:
        return {o.symbol: (o.result.inserted if o.result else 0) for o in self.outcomes}

    @property
    def last_bar_dates(self) -> dict[str, dt.date | None]:
        return {o.symbol: (o.result.last_date if o.result else None) for o in self.outcomes}

    @property
    def ended_early(self) -> dict[str, dt.date | None]:
        """Symbols stored whose source's last bar is before :attr:`last_session` (None: no bar).

        The source had nothing newer: a CSV export that stops earlier, a vendor that has not
        published the day yet. The stored history then ends before the range asked for.
        """
        if self.last_session is None:
            return {}
        return {
            o.symbol: o.result.last_date
            for o in self.outcomes
            if o.ok
            and o.result is not None
            and (o.result.last_date is None or o.result.last_date < self.last_session)
        }

    def summary(self) -> pd.DataFrame:
        """One row per symbol: status, received, inserted, revised, unchanged, skipped, last bar."""
        rows = []
        for o in self.outcomes:
            r = o.result or UpsertResult(symbol=o.symbol)
            rows.append(
                {
                    "symbol": o.symbol,
                    "status": o.status,
                    "received": o.received,
                    "inserted": r.inserted,
                    "updated": r.updated,
                    "unchanged": r.unchanged,
                    "skipped_non_sessions": len(r.skipped_non_sessions),
                    "last_bar": r.last_date,
                    "error": o.error or "",
                }
            )
        return pd.DataFrame(rows)

    def summary_line(self) -> str:
        ok = [o for o in self.outcomes if o.ok]
        inserted = sum(self.rows_inserted.values())
        updated = sum(o.result.updated for o in ok if o.result)
        line = (
            f"{self.source} {self.start}..{self.end}: {len(ok)}/{len(self.outcomes)} symbols, "
            f"{inserted} bars inserted, {updated} revised"
        )
        if self.ended_early:
            ends = ", ".join(
                f"{symbol} {last or 'no bar'}" for symbol, last in self.ended_early.items()
            )
            line += f"; WARNING the source ends before {self.last_session}: {ends}"
        # The messages are logged once each as they happen; here only the names.
        failed = [o.symbol for o in self.failed if o.attempted]
        if failed:
            line += f"; FAILED {', '.join(failed)} (see the errors above)"
        skipped = [o.symbol for o in self.failed if not o.attempted]
        if skipped:
            line += f"; not attempted: {', '.join(skipped)}"
        return line


def ingest(
    engine: sa.Engine,
    source: MarketDataSource,
    symbols: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    on_revision: str = "update",
    progress: bool | None = None,
    replace_synthetic: bool = False,
) -> IngestReport:
    """Fetch ``symbols`` from ``source`` over [start, end] and upsert NYSE-session bars.

    One kind of history per database (:func:`refuse_mixed_history`): the synthetic market is
    refused on a database that holds real bars, and a real source on one that holds synthetic
    bars, unless ``replace_synthetic`` deletes those first. Ingests take turns (the ``prices``
    writer lock, held from that check to the last symbol), so two run at the same time store
    what they would have stored one after the other, never a mix of their sources.
    """
    symbols = checked_symbols(symbols)
    with writer_lock(engine, "prices"):
        refuse_mixed_history(engine, source.name, symbols, replace_synthetic=replace_synthetic)
        return _ingest_locked(engine, source, symbols, start, end, on_revision, progress)


def _ingest_locked(
    engine: sa.Engine,
    source: MarketDataSource,
    symbols: list[str],
    start: dt.date,
    end: dt.date,
    on_revision: str,
    progress: bool | None,
) -> IngestReport:
    from tqdm import tqdm

    sessions = calendar.sessions_between(start, end)
    report = IngestReport(
        source=source.name, start=start, end=end, last_session=sessions[-1] if sessions else None
    )
    label = f"{source.name} bars"
    bar = tqdm(symbols, desc=label, unit="symbol", disable=_quiet(progress), leave=False)
    stopped_at: str | None = None
    for symbol in bar:
        bar.set_postfix_str(symbol)
        outcome = SymbolOutcome(symbol=symbol)
        report.outcomes.append(outcome)
        if stopped_at is not None:
            outcome.attempted = False
            outcome.error = f"not attempted: {source.name} refused {stopped_at} (see above)"
            continue
        try:
            bars = source.fetch(symbol, start, end)
            outcome.received = len(bars)
            with _write_error_named(engine, report, symbol), engine.begin() as conn:
                outcome.result = upsert_bars(
                    conn, symbol, bars, source.name, sessions=sessions, on_revision=on_revision
                )
        except DatabaseError:
            raise  # not this symbol's fault: the next ones would fail the same way
        except MarketDataError as exc:
            outcome.error = str(exc).removeprefix(f"{symbol}: ")
            log.error("%s: %s", symbol, outcome.error)
            stopped_at = symbol if exc.stops_source else None
        except AllocatorError as exc:
            outcome.error = str(exc)
            log.error("%s: %s", symbol, exc)
        else:
            _log_stored(report, outcome)
    bar.close()
    return report


def _log_stored(report: IngestReport, outcome: SymbolOutcome) -> None:
    """Log what one symbol's ingest stored, and a warning when its source ended early."""
    r = outcome.result
    log.info(
        "%s: received %d, inserted %d, revised %d, unchanged %d, last bar %s",
        outcome.symbol,
        outcome.received,
        r.inserted,
        r.updated,
        r.unchanged,
        r.last_date,
    )
    if outcome.symbol in report.ended_early:
        log.warning(
            "%s: the source's last bar is %s, before %s, the last session asked for: "
            "the stored history ends there",
            outcome.symbol,
            r.last_date or "none",
            report.last_session,
        )


@contextlib.contextmanager
def _write_error_named(engine: sa.Engine, report: IngestReport, symbol: str) -> Iterator[None]:
    """A database that refuses the write (read-only, full, locked) stops the run on one line.

    The symbol's transaction is rolled back, so it stored nothing; the symbols before it are
    stored whole and named. The others are not fetched: they would fail the same way.
    """
    try:
        yield
    except sa.exc.DBAPIError as exc:
        from allocator.shell.persistence.engine import describe_database_error

        url = engine.url.render_as_string(hide_password=False)
        stored = [o.symbol for o in report.outcomes if o.result is not None and o.symbol != symbol]
        before = f"; {', '.join(stored)} stored before it" if stored else ""
        raise DatabaseError(
            f"{describe_database_error(url, exc)} ({symbol} stored nothing{before})"
        ) from None


def checked_symbols(symbols: Sequence[str], what: str = "symbols") -> list[str]:
    """``symbols`` upper-cased, or a :class:`JobError` naming the first one that is no ticker.

    Checked before anything is fetched or stored: a symbol names a file of the CSV source and a
    ``price_history`` key of at most 16 characters, so ``../x/SPY`` or a 40-character string
    must never get that far.
    """
    upper = split_symbols(symbols)
    problem = first_symbol_problem(upper) if upper else "no symbol given"
    if problem:
        raise JobError(f"{what}: {problem}")
    return upper


def default_symbols(engine: sa.Engine) -> tuple[str, ...]:
    """The active config's assets, then any other symbol still held (an asset a newer config
    dropped: its bars still value and sell it); the design document's defaults before any
    config exists."""
    with engine.connect() as conn:
        try:
            assets = active_version(conn).config.assets
        except ConfigNotFoundError:
            return DEFAULT_ASSETS
        held = ledger.load_book(conn).holdings()
    return tuple(assets) + tuple(sorted(s for s in held if s not in assets))


def _quiet(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None shows a bar only on a terminal."""
    return None if progress is None else not progress


#: The name of the synthetic market's source (``SyntheticSource.name``).
SYNTHETIC = "synthetic"


def refuse_mixed_history(
    engine: sa.Engine,
    source_name: str,
    symbols: Sequence[str] = (),
    *,
    replace_synthetic: bool = False,
) -> None:
    """Raise :class:`MixedHistoryError` when ``source_name``'s bars would mix two kinds of history.

    The synthetic market's made-up prices and a real source's never share a database: a
    backtest over both would read a made-up market up to one day and the real one after it.
    The synthetic source is refused on a database holding real bars; a real source on one
    holding synthetic bars, unless ``replace_synthetic``, which deletes every synthetic bar
    first (signals and trades already recorded stay as they were recorded).
    """
    with engine.connect() as conn:
        sources = stored_sources(conn)
    if source_name == SYNTHETIC:
        others = sorted(sources - {SYNTHETIC})
        if others:
            raise MixedHistoryError(
                f"the database holds bars from {', '.join(others)}: the synthetic market would "
                "mix made-up prices with that history; use another DATABASE_URL to try things out"
            )
        return
    if SYNTHETIC not in sources:
        return
    if replace_synthetic:
        with engine.begin() as conn:
            held = symbols_from_source(conn, SYNTHETIC)
            deleted = delete_source_bars(conn, SYNTHETIC)
        log.warning(
            "deleted %d synthetic bars of %s before storing %s bars (--replace-synthetic)",
            deleted,
            ", ".join(held),
            source_name,
        )
        return
    with engine.connect() as conn:
        held = symbols_from_source(conn, SYNTHETIC)
    named = [s for s in symbols if s in held] or held
    raise MixedHistoryError(
        f"{', '.join(named)}: the stored bars are synthetic (made-up prices, e.g. the demo's) "
        f"and {source_name} bars must not mix with them: use a new DATABASE_URL for real "
        "history, or pass --replace-synthetic to `allocator backfill` to delete the synthetic "
        "bars first"
    )
