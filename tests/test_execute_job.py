"""The execute job on a real database: deposits, fills at the open, pending orders, idempotency."""

import datetime as dt

import pytest
import sqlalchemy as sa

from allocator.jobs.execute import execute_trades
from allocator.jobs.fetch import fetch_bars
from allocator.portfolio.fills import ExecutionError
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence import ledger
from allocator.shell.persistence.prices import bars_on
from allocator.shell.persistence.schema import cash_ledger, trades, valuations
from allocator.shell.persistence.signals import SignalError, save_signal
from tests.helpers import seed

D = dt.date(2025, 3, 3)
PREV = dt.date(2025, 2, 28)


def _signal(engine, day, action="BUY", allocations=None, sells=None):
    with engine.begin() as conn:
        record, _ = save_signal(
            conn,
            day,
            action=action,
            confidence_score=0.5,
            allocations=allocations or {},
            features_used={"action": action, "sell_quantities": sells or {}},
            config_id=1,
        )
    return record


def _count(engine, table):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_buy_fills_at_the_open_of_the_trade_date(engine):
    seed(engine, dt.date(2025, 2, 3), D)
    _signal(engine, D, allocations={"SPY": 400.0, "QQQ": 350.0, "DIA": 250.0})
    result = execute_trades(engine, D)
    with engine.connect() as conn:
        opens = {s: b["open"] for s, b in bars_on(conn, D, ["SPY", "QQQ", "DIA"]).items()}
    assert result.deposited and result.status == "filled"
    by_symbol = result.trades.set_index("symbol")
    for symbol, dollars in {"SPY": 400.0, "QQQ": 350.0, "DIA": 250.0}.items():
        assert by_symbol.loc[symbol, "price"] == opens[symbol]
        assert by_symbol.loc[symbol, "quantity"] == pytest.approx(
            int(dollars / opens[symbol] * 1e4) / 1e4
        )
        assert by_symbol.loc[symbol, "amount"] == by_symbol.loc[symbol, "quantity"] * opens[symbol]
    assert result.cash == pytest.approx(1000.0 - by_symbol["amount"].sum())
    assert set(result.positions) == {"SPY", "QQQ", "DIA"}
    with engine.connect() as conn:
        assert [r.valuation_date for r in conn.execute(sa.select(valuations))] == [D]


def test_running_execute_twice_records_nothing_new(engine):
    seed(engine, dt.date(2025, 2, 3), D)
    _signal(engine, D, allocations={"SPY": 500.0})
    first = execute_trades(engine, D)
    counts = (_count(engine, trades), _count(engine, cash_ledger))
    second = execute_trades(engine, D)
    assert (_count(engine, trades), _count(engine, cash_ledger)) == counts == (1, 2)
    assert not second.deposited and second.cash == first.cash


def test_the_database_refuses_a_second_trade_for_a_signal_and_symbol(engine):
    seed(engine, dt.date(2025, 2, 3), D)
    signal = _signal(engine, D, allocations={"SPY": 500.0})
    execute_trades(engine, D)
    row = {
        "trade_date": D,
        "symbol": "SPY",
        "action": "BUY",
        "status": "pending",
        "ordered_amount": 1.0,
        "signal_id": signal.id,
        "created_at": dt.datetime.now(dt.UTC),
    }
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(trades.insert(), [row])
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            cash_ledger.insert(),
            [
                {
                    "entry_date": D,
                    "kind": "deposit",
                    "amount": 1.0,
                    "balance": 1.0,
                    "ref": f"deposit:{D}",
                    "created_at": dt.datetime.now(dt.UTC),
                }
            ],
        )


def test_orders_wait_as_pending_until_the_fetch_stores_the_open(engine):
    seed(engine, dt.date(2025, 2, 3), PREV)  # D's bar is not stored yet: it is 9:30 on D
    _signal(engine, D, allocations={"SPY": 600.0, "QQQ": 200.0})
    result = execute_trades(engine, D)
    assert result.status == "pending" and result.cash == 1000.0 and result.positions == {}
    assert set(result.trades["status"]) == {"pending"}
    fetched = fetch_bars(engine, D, SyntheticSource(), ["SPY", "QQQ", "DIA"])
    assert fetched.settled == [(D, 2)] and fetched.valued
    with engine.connect() as conn:
        filled = {r.symbol: r for r in conn.execute(sa.select(trades))}
        opens = {s: b["open"] for s, b in bars_on(conn, D, ["SPY", "QQQ"]).items()}
        assert {s: r.status for s, r in filled.items()} == {"SPY": "filled", "QQQ": "filled"}
        assert {s: r.price for s, r in filled.items()} == opens
        book = ledger.load_book(conn)
    assert book.cash == pytest.approx(1000.0 - sum(r.amount for r in filled.values()))
    # a second fetch fills nothing twice
    again = fetch_bars(engine, D, SyntheticSource(), ["SPY", "QQQ", "DIA"])
    assert again.settled == [] and _count(engine, trades) == 2


def test_sell_exactly_as_signalled_and_realise_pnl(engine):
    seed(engine, dt.date(2025, 2, 3), dt.date(2025, 3, 4))
    _signal(engine, D, allocations={"SPY": 900.0})
    bought = execute_trades(engine, D)
    held = bought.positions["SPY"]
    sell = round(held * 0.5, 4)
    day2 = dt.date(2025, 3, 4)
    _signal(engine, day2, action="SELL", allocations={"SPY": -1.0}, sells={"SPY": sell})
    sold = execute_trades(engine, day2)
    row = sold.trades.iloc[0]
    assert row["action"] == "SELL" and row["quantity"] == sell
    assert sold.positions["SPY"] == pytest.approx(held - sell)
    assert row["realized_pnl"] == pytest.approx(
        sell * (row["price"] - bought.trades.iloc[0]["price"])
    )
    assert sold.realized_pnl == pytest.approx(row["realized_pnl"])


def test_execute_needs_the_signal_of_that_date(engine):
    seed(engine, dt.date(2025, 2, 3), D)
    _signal(engine, PREV, allocations={"SPY": 100.0})
    with pytest.raises(SignalError, match="no signal for 2025-03-03"):
        execute_trades(engine, D)
    assert _count(engine, cash_ledger) == 0  # nothing deposited when nothing can execute


def test_earlier_pending_orders_block_a_later_execution(engine):
    seed(engine, dt.date(2025, 2, 3), dt.date(2025, 2, 27))
    _signal(engine, PREV, allocations={"SPY": 100.0})
    execute_trades(engine, PREV)  # pending: PREV's bar is missing
    _signal(engine, D, allocations={"SPY": 100.0})
    with pytest.raises(ExecutionError, match="orders of 2025-02-28 are still pending"):
        execute_trades(engine, D)


def test_an_earlier_date_is_refused_once_a_later_one_is_executed(engine):
    seed(engine, dt.date(2025, 2, 3), D)
    _signal(engine, PREV, allocations={"SPY": 300.0})
    _signal(engine, D, allocations={"SPY": 500.0})
    execute_trades(engine, D)
    before = (_count(engine, trades), _count(engine, cash_ledger))
    with pytest.raises(ExecutionError, match="allow_out_of_order True") as refused:
        execute_trades(engine, PREV)
    assert f"{D} is already executed" in str(refused.value)
    assert (_count(engine, trades), _count(engine, cash_ledger)) == before  # nothing changed
    assert not execute_trades(engine, D).out_of_order  # re-running the later date still works

    late = execute_trades(engine, PREV, allow_out_of_order=True)
    assert late.out_of_order and late.deposited
    assert "OUT OF ORDER" in late.summary_line()
    assert not execute_trades(engine, PREV).out_of_order  # now executed: a re-run is a no-op
