"""The execute job (9:30 AM ET): deposit the day's capital and fill the day's signal at the open.

Orders come from the signal of the trade date only. With the simulated broker (the default) they
fill at that date's official open: from ``price_history`` when the bar is stored (recovery
runs), from a live quote source when one is configured, otherwise they are recorded as pending
and the fetch job that stores the date's bar fills them
(:func:`~allocator.jobs.settlement.settle_pending`). One trade date is one transaction; the
schema's uniqueness makes a second run record nothing new.

With a real broker (``ALLOCATOR_BROKER=alpaca``) the same transaction records the orders with
their deterministic client order ids, then each is sent to the broker
(:mod:`allocator.jobs.submission`) and stays pending until reconciliation records the broker's
fill (:mod:`allocator.jobs.reconciliation`: the fetch job). A rejection fails the job naming it,
after the other orders are sent.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from allocator.exceptions import OrderRejectedError
from allocator.jobs.reconciliation import reconcile
from allocator.jobs.settlement import QuoteSource, fill_date, mark_to_market, settle_pending
from allocator.jobs.submission import Submission, assign_client_ids, submit_orders
from allocator.portfolio.book import Book, unrealized_pnl
from allocator.portfolio.fills import ExecutionError
from allocator.portfolio.session import orders_for
from allocator.portfolio.slippage import with_slippage
from allocator.shell import calendar
from allocator.shell.broker.base import Broker
from allocator.shell.persistence import broker as orders_db
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
    #: ``simulated``, ``alpaca paper`` or ``alpaca LIVE``; what sending the orders did.
    broker: str = "simulated"
    submission: Submission | None = None
    #: The date's fills with the official open and their slippage (bps and $) where known.
    slippage: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def live(self) -> bool:
        return "LIVE" in self.broker

    @property
    def broker_summary(self) -> str:
        """One line on who fills the orders: the simulated broker, or what was sent to the real
        one (``LIVE ACCOUNT:`` first on a live account)."""
        if self.submission is None:
            return "simulated broker: orders fill at the official open from the bars"
        line = self.submission.summary_line()
        if self.submission.rejected:
            line += f" ({self.submission.rejection_text()})"
        return f"LIVE ACCOUNT: {line}" if self.live else line

    @property
    def cash(self) -> float:
        return self.book.cash

    @property
    def positions(self) -> dict[str, float]:
        return self.book.holdings()

    def summary_line(self) -> str:
        filled = int((self.trades["status"] == "filled").sum()) if len(self.trades) else 0
        pending = int((self.trades["status"] == "pending").sum()) if len(self.trades) else 0
        line = (
            f"execute {self.trade_date}: {self.action}, {filled} filled, {pending} pending, "
            f"cash {self.cash:,.2f}, realised P&L {self.realized_pnl:,.2f}, unrealised "
            f"{sum(self.unrealized_pnl.values()):,.2f}"
            + (" (OUT OF ORDER: a later date was already executed)" if self.out_of_order else "")
        )
        if self.submission is not None:
            line += f"; {self.submission.summary_line()}"
        return f"LIVE ACCOUNT: {line}" if self.live else line


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


def _stuck_check(conn: sa.Connection, trade_date: dt.date) -> None:
    earlier = calendar.previous_session(trade_date)
    rows = ledger.pending_trades(conn, through=earlier)
    stuck = sorted({str(r.trade_date) for r in rows})
    if not stuck:
        return
    if any(r.client_order_id is not None for r in rows):
        fix = f"`allocator broker reconcile --date {stuck[-1]}`"
        why = "not reconciled with the broker"
    else:
        fix = f"`allocator run fetch --date {stuck[0]}`"
        why = "no open price stored"
    raise ExecutionError(
        f"orders of {', '.join(stuck)} are still pending ({why}): run {fix} first, so cash "
        "and holdings are known"
    )


def _reconcile_earlier(engine: sa.Engine, broker: Broker, trade_date: dt.date) -> None:
    """Record the broker's fills of earlier dates a fetch job did not reconcile yet."""
    earlier = calendar.previous_session(trade_date)
    with engine.connect() as conn:
        waiting = orders_db.open_broker_orders(conn, earlier)
    if waiting:
        reconcile(engine, broker, earlier)


def execute_trades(
    engine: sa.Engine,
    trade_date: dt.date,
    *,
    quotes: QuoteSource | None = None,
    allow_out_of_order: bool = False,
    broker: Broker | None = None,
) -> ExecutionResult:
    """Deposit, record the signal's orders, and fill them at the open of ``trade_date``, or
    send them to ``broker`` (None: the simulated broker).

    Refused (:class:`ExecutionError`) while a later date is already executed, unless
    ``allow_out_of_order`` (see :func:`require_in_order`). With a broker, a rejected order
    raises :class:`~allocator.exceptions.OrderRejectedError` naming each, after the others
    are sent and recorded.
    """
    trade_date = calendar.require_session(trade_date, "trade date")
    with engine.connect() as conn:  # before settling anything: a refusal changes nothing
        require_in_order(conn, trade_date, allow_out_of_order)
    if broker is not None:
        _reconcile_earlier(engine, broker, trade_date)
    settled = settle_pending(engine, calendar.previous_session(trade_date), quotes=quotes)
    with engine.begin() as conn:
        ledger.lock_book(conn)  # the stale-state check and the balances read under the lock
        out_of_order = require_in_order(conn, trade_date, allow_out_of_order)
        _stuck_check(conn, trade_date)
        signal = require_signal(conn, trade_date)
        capital = version_by_id(conn, signal.config_id).config.daily_capital
        deposited = ledger.record_deposit(conn, trade_date, capital)
        orders = orders_for(signal.allocations, signal.sell_quantities)
        ledger.create_orders(conn, signal.id, trade_date, orders)
        if broker is not None:
            assign_client_ids(conn, signal.id, trade_date)
        fill_date(conn, trade_date, quotes)
        mark_to_market(conn, trade_date)
    submission = submit_orders(engine, broker, trade_date) if broker is not None else None
    with engine.connect() as conn:
        result = _result(conn, trade_date, signal.id, signal.action, deposited)
    result.settled, result.out_of_order = settled, out_of_order
    result.broker, result.submission = broker.label if broker else "simulated", submission
    log.info(result.summary_line())
    if submission is not None and submission.rejected:
        raise OrderRejectedError(
            f"{result.broker} rejected order(s) of {trade_date}: {submission.rejection_text()} "
            "(recorded as cancelled with the broker's reason; the other orders were sent)"
        )
    return result


def _result(
    conn: sa.Connection, day: dt.date, signal_id: int, action: str, deposited: bool
) -> ExecutionResult:
    frame = ledger.trades_frame(conn, day, day)
    frame = frame[frame["signal_id"] == signal_id].reset_index(drop=True)
    columns = ["symbol", "action", "quantity", "price", "amount", "status", "realized_pnl"]
    sent = orders_db.broker_orders_of(conn, day)
    if sent:  # orders at a broker: their ids, the broker's status and its reason
        extra = pd.DataFrame(
            [(r.symbol, r.client_order_id, r.broker_status, r.broker_reason) for r in sent],
            columns=["symbol", "client_order_id", "broker_status", "broker_reason"],
        )
        frame = frame.merge(extra, on="symbol", how="left")
        columns += ["client_order_id", "broker_status", "broker_reason"]
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
        trades=frame[columns],
        book=book,
        realized_pnl=realized,
        unrealized_pnl=unrealized_pnl(book, closes),
        closes=closes,
        slippage=with_slippage(orders_db.fills_with_opens(conn, day, day)),
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
    from allocator.shell.alerts import alert_rejected_orders
    from allocator.shell.broker import make_broker
    from allocator.shell.marketdata import make_quote_source
    from allocator.shell.persistence.migrate import migrated_engine

    settings = settings or get_settings()
    quotes = make_quote_source(settings)
    broker = make_broker(settings)
    day = calendar.to_date(trade_date, "trade_date")
    with migrated_engine(settings) as engine:
        try:
            return execute_trades(
                engine, day, quotes=quotes, allow_out_of_order=allow_out_of_order, broker=broker
            )
        except OrderRejectedError as exc:
            alert_rejected_orders(settings, day, str(exc))
            raise
