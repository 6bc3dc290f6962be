"""The daily fetch job (4:35 PM ET): store the closing bars of a trade date.

It asks the source for a window ending on the trade date (the vendor's ``compact`` answer covers
the last 100 sessions, so a missed day is filled in too), stores every session bar idempotently,
and reports which symbols still lack the trade date's bar. Symbols are independent: one failure
stores nothing for that symbol and everything for the others, then the job fails naming it.

With a real broker (``ALLOCATOR_BROKER=alpaca``) it then reconciles the book with the broker
(:func:`~allocator.jobs.reconciliation.reconcile`): the day's fills at the broker's prices, what
was left open cancelled, positions and cash compared. Every fill of the day is reported beside
the official open just stored: its slippage in basis points and dollars, and by month.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from allocator.exceptions import BrokerError, MarketDataError, MissingBarsError
from allocator.jobs.ingest import IngestReport, checked_symbols, default_symbols, ingest
from allocator.jobs.reconciliation import Reconciliation, reconcile
from allocator.jobs.settlement import mark_to_market, settle_pending
from allocator.portfolio.slippage import monthly_summary, with_slippage
from allocator.shell import calendar
from allocator.shell.broker.base import Broker
from allocator.shell.marketdata import make_source
from allocator.shell.marketdata.base import MarketDataSource
from allocator.shell.persistence import broker as orders_db
from allocator.shell.persistence import ledger
from allocator.shell.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: Calendar days of history asked for on each fetch: about 100 sessions, the vendor's compact size.
FETCH_WINDOW_DAYS = 145
#: Calendar days of fills the monthly slippage summary covers (the last 12 months).
SUMMARY_DAYS = 366


@dataclass
class FetchResult:
    """What the fetch job stored for one trade date."""

    trade_date: dt.date
    report: IngestReport
    #: Pending orders this run filled at their date's open: (trade date, number of fills).
    settled: list[tuple[dt.date, int]] = field(default_factory=list)
    #: Whether the portfolio was marked to market at the trade date's close.
    valued: bool = False
    #: ``simulated``, ``alpaca paper`` or ``alpaca LIVE``; the reconciliation with a broker.
    broker: str = "simulated"
    reconciliation: Reconciliation | None = None
    #: Why the broker could not be reconciled (raised after the bars are stored and glued).
    broker_error: BrokerError | None = None
    #: The trade date's fills with the official open and their slippage; the last 12 months.
    slippage: pd.DataFrame = field(default_factory=pd.DataFrame)
    monthly_slippage: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def live(self) -> bool:
        return "LIVE" in self.broker

    @property
    def broker_summary(self) -> str:
        """One line on who filled the orders: the simulated broker, or the reconciliation with
        the real one (``LIVE ACCOUNT:`` first on a live account)."""
        if self.broker_error is not None:
            line = f"{self.broker}: not reconciled: {self.broker_error}"
        elif self.reconciliation is not None:
            line = self.reconciliation.summary_line()
        else:
            return "simulated broker: orders fill at the official open from the bars"
        return f"LIVE ACCOUNT: {line}" if self.live else line

    @property
    def rows_inserted(self) -> dict[str, int]:
        return self.report.rows_inserted

    @property
    def last_bar_date(self) -> dt.date | None:
        """The latest date for which every symbol has a bar from this run (None if any failed)."""
        dates = [d for d in self.report.last_bar_dates.values()]
        return None if not dates or any(d is None for d in dates) else min(dates)

    @property
    def last_bar_date_iso(self) -> str:
        """:attr:`last_bar_date` as ISO text, empty when a symbol stored nothing (for scraps)."""
        return self.last_bar_date.isoformat() if self.last_bar_date else ""

    @property
    def settled_pairs(self) -> list[list]:
        """:attr:`settled` as JSON-friendly ``[ISO date, fills]`` pairs (for scraps)."""
        return [[day.isoformat(), n] for day, n in self.settled]

    @property
    def missing(self) -> list[str]:
        """Symbols without the trade date's bar after this run."""
        return [s for s, d in self.report.last_bar_dates.items() if d != self.trade_date]

    @property
    def summary(self) -> pd.DataFrame:
        return self.report.summary()

    def raise_for_errors(self) -> None:
        """Fail the job (after everything else is stored) if a symbol failed or lacks its bar,
        or the broker could not be reconciled."""
        if self.broker_error is not None:
            raise self.broker_error
        if self.report.failed:
            first = self.report.failed[0]
            names = ", ".join(o.symbol for o in self.report.failed)
            stored = ", ".join(o.symbol for o in self.report.outcomes if o.ok)
            outcome = f"{stored} stored" if stored else "nothing was stored"
            raise MarketDataError(first.symbol, f"{first.error} (failed: {names}; {outcome})")
        if self.missing:
            raise MissingBarsError(
                {s: [self.trade_date.isoformat()] for s in self.missing},
                f"the source has no bar for {self.trade_date} yet for "
                f"{', '.join(self.missing)}: re-run the fetch job later",
            )


def _reconcile(engine: sa.Engine, broker: Broker, result: FetchResult) -> None:
    """Reconcile with ``broker`` into ``result``; a broker failure is kept for later."""
    result.broker = broker.label
    try:
        result.reconciliation = reconcile(engine, broker, result.trade_date)
    except BrokerError as exc:
        log.error("cannot reconcile with %s: %s", broker.label, exc)
        result.broker_error = exc


def _slippage(engine: sa.Engine, result: FetchResult) -> None:
    day = result.trade_date
    with engine.connect() as conn:
        fills = orders_db.fills_with_opens(conn, day - dt.timedelta(days=SUMMARY_DAYS), day)
    result.slippage = with_slippage(fills[fills["trade_date"] == day].reset_index(drop=True))
    result.monthly_slippage = monthly_summary(fills)


def fetch_bars(
    engine: sa.Engine,
    trade_date: dt.date,
    source: MarketDataSource,
    symbols: Sequence[str] | None = None,
    *,
    now: dt.datetime | None = None,
    broker: Broker | None = None,
) -> FetchResult:
    """Store the bars of ``symbols`` for the window ending on ``trade_date``; with a
    ``broker``, reconcile the book with it."""
    trade_date = calendar.require_session(trade_date, "trade date")
    complete = calendar.latest_complete_session(now)
    if trade_date > complete:
        raise MissingBarsError(
            {},
            f"the bar of {trade_date} is not complete before its 16:00 ET close "
            f"(latest complete session: {complete}); the fetch job runs at 16:35 ET",
        )
    start = trade_date - dt.timedelta(days=FETCH_WINDOW_DAYS)
    symbols = checked_symbols(symbols or default_symbols(engine))  # "SPY" is one symbol
    report = ingest(engine, source, symbols, start, trade_date, progress=False)
    result = FetchResult(trade_date=trade_date, report=report)
    log.info("fetch %s: %s", trade_date, report.summary_line())
    if broker is not None:
        _reconcile(engine, broker, result)
    # The bars just stored carry the opens that pending orders wait for, and the closes that
    # value the portfolio: fill and mark now, so no manual step follows a 9:30 execution.
    result.settled = settle_pending(engine, trade_date)
    with engine.begin() as conn:
        ledger.lock_book(conn)
        result.valued = mark_to_market(conn, trade_date)
    for day, n in result.settled:
        log.info("filled %d pending order(s) of %s at its open", n, day)
    _slippage(engine, result)
    return result


def run_fetch(
    trade_date: dt.date | str,
    *,
    source: str = "alphavantage",
    symbols: Sequence[str] | None = None,
    csv_dir: str | None = None,
    settings: Settings | None = None,
) -> FetchResult:
    """The fetch job as the notebook calls it: settings from the environment, then fetch.

    ``source`` is a name :func:`~allocator.shell.marketdata.make_source` knows: ``alphavantage``
    (``ALPHAVANTAGE_API_KEY``), ``tiingo`` (``TIINGO_API_KEY``), ``csv`` (with ``csv_dir``) or
    ``synthetic``.
    """
    from allocator.shell.broker import make_broker
    from allocator.shell.persistence.migrate import migrated_engine

    settings = settings or get_settings()
    broker = make_broker(settings)
    with migrated_engine(settings) as engine:
        src = make_source(source, settings=settings, csv_dir=csv_dir)
        day = calendar.to_date(trade_date, "trade_date")
        return fetch_bars(engine, day, src, symbols, broker=broker)


def recent_closes(
    trade_date: dt.date | str,
    sessions: int = 60,
    *,
    symbols: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Stored closes (dates × symbols) of the last ``sessions`` sessions up to ``trade_date``."""
    from allocator.shell.persistence.migrate import migrated_engine
    from allocator.shell.persistence.prices import load_bars, wide

    with migrated_engine(settings) as engine:
        day = calendar.to_date(trade_date, "trade_date")
        symbols = [s.upper() for s in (symbols or default_symbols(engine))]
        first = calendar.last_n_sessions(day, sessions)[0]
        with engine.connect() as conn:
            bars = load_bars(conn, symbols, first, day)
        return wide(bars, "close", symbols)
