"""The execute job (9:30 AM ET): deposit the day's capital and fill the day's signal at the open.

Orders come from the signal of the trade date only. They fill at that date's official open: from
``price_history`` when the bar is stored (recovery runs), from a live quote source when one is
configured, otherwise they are recorded as pending and the fetch job that stores the date's bar
fills them (:func:`~allocator.jobs.settlement.settle_pending`). One trade date is one
transaction; the schema's uniqueness makes a second run record nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from allocator.jobs.settlement import QuoteSource, fill_date, mark_to_market, settle_pending
from allocator.portfolio.book import Book, unrealized_pnl
from allocator.portfolio.fills import ExecutionError
from allocator.portfolio.session import orders_for
from allocator.shell import calendar
from allocator.shell.persistence import ledger
from allocator.shell.persistence.configs import version_by_id
from allocator.shell.persistence.prices import latest_closes
from allocator.shell.persistence.signals import require_signal
from allocator.shell.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class ExecutionResult:
    """What one execution of one trade date did, and the book after it."""

    trade_date: dt.date
    signal_id: int
    action: str
    deposited: bool
    status: str
    trades: pd.DataFrame
    book: Book
    realized_pnl: float
    unrealized_pnl: dict[str, float] = field(default_factory=dict)
    #: The latest stored close of each held symbol (for market values).
    closes: dict[str, float] = field(default_factory=dict)
    settled: list[tuple[dt.date, int]] = field(default_factory=list)
    #: True when the date was executed after a later one (``-p allow_out_of_order True``).
    out_of_order: bool = False

    @property
    def cash(self) -> float:
        return self.book.cash

    @property
    def positions(self) -> dict[str, float]:
        return self.book.holdings()

    def summary_line(self) -> str:
        filled = int((self.trades["status"] == "filled").sum()) if len(self.trades) else 0
        pending = int((self.trades["status"] == "pending").sum()) if len(self.trades) else 0
        return (
            f"execute {self.trade_date}: {self.action}, {filled} filled, {pending} pending, "
            f"cash {self.cash:,.2f}, realised P&L {self.realized_pnl:,.2f}, unrealised "
            f"{sum(self.unrealized_pnl.values()):,.2f}"
            + (" (OUT OF ORDER: a later date was already executed)" if self.out_of_order else "")
        )


def require_in_order(conn: sa.Connection, trade_date: dt.date, allow_out_of_order: bool) -> bool:
    """Refuse to execute ``trade_date`` once a later date is executed; True if out of order.

    The later days were decided on the cash and positions that executing ``trade_date`` now
    would change. Re-running a date that is already executed changes nothing and is allowed;
    ``allow_out_of_order`` lets an operator do it anyway (the report records it).
    """
    later = ledger.executed_after(conn, trade_date)
    if later is None or ledger.has_deposit(conn, trade_date):
        return False
    if not allow_out_of_order:
        raise ExecutionError(
            f"{later} is already executed: executing {trade_date} now would change the cash and "
            f"positions later days were decided on. If that is what you want, run it with "
            f"-p allow_out_of_order True (the report records it)"
        )
    log.warning("execute %s out of order: %s is already executed", trade_date, later)
    return True


def execute_trades(
    engine: sa.Engine,
    trade_date: dt.date,
    *,
    quotes: QuoteSource | None = None,
    allow_out_of_order: bool = False,
) -> ExecutionResult:
    """Deposit, record the signal's orders, and fill them at the open of ``trade_date``.

    Refused (:class:`ExecutionError`) while a later date is already executed, unless
    ``allow_out_of_order`` (see :func:`require_in_order`).
    """
    trade_date = calendar.require_session(trade_date, "trade date")
    with engine.connect() as conn:  # before settling anything: a refusal changes nothing
        require_in_order(conn, trade_date, allow_out_of_order)
    settled = settle_pending(engine, calendar.previous_session(trade_date), quotes=quotes)
    with engine.begin() as conn:
        ledger.lock_book(conn)  # the stale-state check and the balances read under the lock
        out_of_order = require_in_order(conn, trade_date, allow_out_of_order)
        stuck = sorted(
            {
                str(r.trade_date)
                for r in ledger.pending_trades(conn, through=calendar.previous_session(trade_date))
            }
        )
        if stuck:
            raise ExecutionError(
                f"orders of {', '.join(stuck)} are still pending (no open price stored): run "
                f"`allocator run fetch --date {stuck[0]}` first, so cash and holdings are known"
            )
        signal = require_signal(conn, trade_date)
        capital = version_by_id(conn, signal.config_id).config.daily_capital
        deposited = ledger.record_deposit(conn, trade_date, capital)
        orders = orders_for(signal.allocations, signal.sell_quantities)
        ledger.create_orders(conn, signal.id, trade_date, orders)
        fill_date(conn, trade_date, quotes)
        mark_to_market(conn, trade_date)
        result = _result(conn, trade_date, signal.id, signal.action, deposited)
    result.settled = settled
    result.out_of_order = out_of_order
    log.info(result.summary_line())
    return result


def _result(
    conn: sa.Connection, day: dt.date, signal_id: int, action: str, deposited: bool
) -> ExecutionResult:
    frame = ledger.trades_frame(conn, day, day)
    frame = frame[frame["signal_id"] == signal_id].reset_index(drop=True)
    book = ledger.load_book(conn)
    closes = latest_closes(conn, day, list(book.positions))
    realized = ledger.realized_pnl_total(conn)
    status = (
        "no orders"
        if frame.empty
        else "pending"
        if (frame["status"] == "pending").any()
        else "filled"
    )
    return ExecutionResult(
        trade_date=day,
        signal_id=signal_id,
        action=action,
        deposited=deposited,
        status=status,
        trades=frame[["symbol", "action", "quantity", "price", "amount", "status", "realized_pnl"]],
        book=book,
        realized_pnl=realized,
        unrealized_pnl=unrealized_pnl(book, closes),
        closes=closes,
    )


def positions_frame(result: ExecutionResult) -> pd.DataFrame:
    """Positions with average cost, latest close, market value and unrealised P&L."""
    rows = []
    for s, p in sorted(result.book.positions.items()):
        close = result.closes.get(s)
        rows.append(
            {
                "symbol": s,
                "quantity": p.quantity,
                "avg_cost": p.avg_cost,
                "close": close,
                "market_value": p.quantity * close if close is not None else None,
                "unrealized_pnl": result.unrealized_pnl.get(s),
            }
        )
    columns = ["symbol", "quantity", "avg_cost", "close", "market_value", "unrealized_pnl"]
    return pd.DataFrame(rows, columns=columns)


def run_execute(
    trade_date: dt.date | str,
    *,
    settings: Settings | None = None,
    allow_out_of_order: bool = False,
) -> ExecutionResult:
    """The execute job as the notebook calls it (settings from the environment)."""
    from allocator.shell.marketdata import make_quote_source
    from allocator.shell.persistence.migrate import migrated_engine

    settings = settings or get_settings()
    quotes = make_quote_source(settings)
    with migrated_engine(settings) as engine:
        return execute_trades(
            engine,
            calendar.to_date(trade_date, "trade_date"),
            quotes=quotes,
            allow_out_of_order=allow_out_of_order,
        )
